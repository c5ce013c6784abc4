"""Prometheus metrics of the AI layer (decision agent)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MODEL_CALLS = Counter(
    "revops_model_calls_total",
    "Model calls by outcome (ok, throttled, timeout, unavailable, refused, invalid_output, ...)",
    ["prompt", "backend", "outcome"],
)
MODEL_TOKENS = Counter(
    "revops_model_tokens_total", "Tokens billed by the model endpoint", ["prompt", "direction"]
)
MODEL_LATENCY = Histogram(
    "revops_model_latency_seconds",
    "One model call, request to answer",
    ["prompt", "backend"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
MODEL_CACHE_HITS = Counter(
    "revops_model_cache_hits_total", "Prompts answered by the prompt cache (no tokens)", ["prompt"]
)
MODEL_FALLBACKS = Counter(
    "revops_model_fallbacks_total",
    "Prompts that fell back to the deterministic path, by reason",
    ["prompt", "reason"],
)
GROUNDING_REJECTIONS = Counter(
    "revops_model_grounding_rejections_total",
    "Model claims dropped because the calls or the analysis do not support them",
    ["prompt", "check"],
)
MODEL_COST = Counter("revops_model_cost_usd_total", "Estimated model spend (USD)", ["prompt"])
FLOW_COST = Histogram(
    "revops_model_flow_cost_usd",
    "Estimated model spend of one analysis (USD; cache hits cost nothing)",
    ["analysis_type"],
    buckets=(0, 0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
KNOWLEDGE_RETRIEVALS = Counter(
    "revops_knowledge_retrievals_total",
    "Knowledge retrievals for a prompt's context, by backend and outcome",
    ["backend", "outcome"],
)
