"""The AI layer of the decision agent: call understanding and narratives by a language
model, grounded against the dataset and the analysis, with the deterministic analysis as
the fallback (see docs/ai-layer.md). Scores never come from here."""
