"""Evidence as people read it: one line per claim's source, and the quoted passages of calls
found again in the call's text and highlighted."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterable

from markupsafe import Markup

from contracts.analysis import AnalysisResults
from contracts.common import Evidence

CALL_SOURCE = "gong_call_f"
CALL_FIELDS = ("title", "brief", "key_points", "next_steps", "transcript")
_SPACES = re.compile(r"\s+")


def describe(e: Evidence) -> str:
    """`gong_call_f CALL-9 key_points 2025-05-02: "we need sub-second dashboards"`."""
    parts = [e.source]
    parts += [p for p in (e.ref, e.field, e.date) if p]
    text = " ".join(parts)
    if e.value not in (None, "", [], {}):
        text += f" = {_value(e.value)}"
    if e.snippet:
        text += f': "{e.snippet}"'
    return text


def _value(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def all_evidence(analysis: AnalysisResults) -> list[Evidence]:
    body = analysis.analysis_results
    found: list[Evidence] = []
    for detail in body.score_details.values():
        for factor in detail.factors:
            found += factor.evidence
    for flag in body.flags:
        found += flag.evidence
    for rec in analysis.recommendations:
        found += rec.evidence
    return found


def quotes_by_call(evidence: Iterable[Evidence]) -> dict[str, set[str]]:
    """call id -> the passages the analysis quoted from it."""
    quotes: dict[str, set[str]] = defaultdict(set)
    for e in evidence:
        if e.source == CALL_SOURCE and e.ref and e.snippet:
            passage = _SPACES.sub(" ", e.snippet).strip().removeprefix("...").removesuffix("...")
            if passage.strip():
                quotes[e.ref].add(passage.strip())
    return dict(quotes)


def highlight(text: str | None, passages: Iterable[str]) -> tuple[Markup, int]:
    """`text` (whitespace runs as one space, as the analysis quoted it) escaped, with every
    occurrence of a passage in `<mark>`; returns the markup and how many were marked."""
    if not text:
        return Markup(""), 0
    flat = _SPACES.sub(" ", text).strip()
    folded = flat.casefold()
    spans: list[tuple[int, int]] = []
    for passage in passages:
        needle = passage.casefold()
        start = folded.find(needle)
        while start >= 0 and needle:
            spans.append((start, start + len(needle)))
            start = folded.find(needle, start + len(needle))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    out, cursor = [], 0
    for lo, hi in merged:
        out.append(html.escape(flat[cursor:lo]))
        out.append(f'<mark class="quote">{html.escape(flat[lo:hi])}</mark>')
        cursor = hi
    out.append(html.escape(flat[cursor:]))
    return Markup("".join(out)), len(merged)
