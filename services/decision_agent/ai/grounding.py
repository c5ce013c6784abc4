"""Grounding: a model's claim is published only when the data supports it.

- A quote must occur in the cited call's own text (case, whitespace, curly quotes and
  dashes aside), as one contiguous span of at least `MIN_QUOTE_CHARS` characters.
- A cited id (call, stakeholder e-mail, recommendation id, flag code) must exist in the
  dataset or the analysis, and a class label must be one the prompt offered.
- Every number, date and id-like token in a narrative must appear in the analysis's facts
  (a number may be rounded, or written as a percentage of a ratio in the facts).

A claim that fails is dropped, logged and counted (`revops_model_grounding_rejections_total`
by check); the rest of the answer is kept.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import structlog

from services.decision_agent.model import metrics

log = structlog.get_logger("grounding")

MIN_QUOTE_CHARS = 8
_QUOTE_MARKS = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_DASHES = re.compile(r"[\u2010-\u2015]")
_ELLIPSIS = re.compile(r"^(?:\.\.\.|\u2026)\s*|\s*(?:\.\.\.|\u2026)$")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,%-]*")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?")
_NUMBER_WITH_UNIT = re.compile(r"([-+]?\d+(?:\.\d+)?)-?[a-zA-Z]{1,12}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def normalise(text: str) -> str:
    """Lower case, one space for any whitespace run, straight quotes, plain hyphens."""
    return " ".join(_DASHES.sub("-", text.translate(_QUOTE_MARKS)).lower().split())


def clean_quote(quote: str) -> str:
    """The quote without surrounding quotation marks or a leading/trailing ellipsis."""
    return _ELLIPSIS.sub("", quote.strip().strip("\"'\u201c\u201d\u2018\u2019").strip())


def quote_occurs(quote: str, texts: Iterable[str | None]) -> bool:
    needle = normalise(clean_quote(quote))
    if len(needle) < MIN_QUOTE_CHARS:
        return False
    return any(needle in normalise(text) for text in texts if text)


@dataclass(frozen=True)
class Rejection:
    """One dropped claim: which check failed, on what."""

    prompt: str
    check: str
    claim: str
    detail: str


class Rejections:
    """Collects the rejections of one prompt's answer and counts them once each."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        self.items: list[Rejection] = []

    def add(self, check: str, claim: str, detail: str) -> None:
        rejection = Rejection(self.prompt, check, claim[:200], detail[:300])
        self.items.append(rejection)
        metrics.GROUNDING_REJECTIONS.labels(self.prompt, check).inc()
        log.warning(
            "grounding_rejected",
            prompt=self.prompt,
            check=check,
            claim=rejection.claim,
            detail=rejection.detail,
        )

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------- numbers


def _decimals(token: str) -> int:
    return len(token.split(".", 1)[1].rstrip("%")) if "." in token else 0


class FactIndex:
    """Every number, date and word of a facts document, to check a text against.

    A number written with ``d`` decimals is supported when some number ``f`` of the facts
    rounds to it at ``d`` decimals, as ``f`` or (for a percentage) as ``100 * f``: "67%" is
    supported by a ratio 0.6749 in the facts, "45" by a score of 45, "1,200" by 1200.0.
    Rounding half-even (Python's own formatting) and half-up are both accepted.
    """

    MAX_DECIMALS = 4

    def __init__(self, facts: Any) -> None:
        self.dates: set[str] = set()
        self.words: set[str] = set()
        self._seen: set[float] = set()
        self._walk(facts)
        # Sorted once; a narrative's few numbers are then each a bisection away.
        self._values = sorted(self._seen)

    def _add_number(self, value: float) -> None:
        if math.isfinite(value):
            self._seen.add(abs(value))
            self._seen.add(abs(value) * 100)

    def _add_text(self, text: str) -> None:
        self.dates.update(_DATE.findall(text))
        self.words.update(word.rstrip(".,%").lower() for word in _WORD.findall(text))
        for number in _NUMBER.findall(_DATE.sub(" ", text)):
            self._add_number(float(number.rstrip("%").replace(",", "")))

    def _walk(self, node: Any) -> None:
        if isinstance(node, bool) or node is None:
            return
        if isinstance(node, int | float):
            self._add_number(float(node))
            self.words.add(str(node).lower())
        elif isinstance(node, str):
            self._add_text(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                self._add_text(str(key))
                self._walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                self._walk(item)

    def number_supported(self, token: str) -> bool:
        digits = min(_decimals(token), self.MAX_DECIMALS)
        try:
            value = abs(Decimal(token.rstrip("%").replace(",", "").lstrip("+-")))
        except InvalidOperation:
            return False
        step = Decimal(1).scaleb(-digits)
        # Only facts within half a step of the value can round to it.
        low = float(value - step / 2) - 1e-9
        high = float(value + step / 2) + 1e-9
        for fact in self._values[bisect_left(self._values, low) : bisect_right(self._values, high)]:
            exact = Decimal(repr(fact))
            if value in (
                exact.quantize(step, ROUND_HALF_EVEN),
                exact.quantize(step, ROUND_HALF_UP),
            ):
                return True
        return False

    def unsupported(self, text: str) -> list[str]:
        """The dates, numbers and id-like words of ``text`` the facts do not contain."""
        missing = [d for d in _DATE.findall(text) if d not in self.dates]
        for word in _WORD.findall(_DATE.sub(" ", text)):
            word = word.rstrip(".,")
            if not any(ch.isdigit() for ch in word):
                continue
            if _NUMBER.fullmatch(word):
                if not self.number_supported(word):
                    missing.append(word)
            elif (unit := _NUMBER_WITH_UNIT.fullmatch(word)) is not None:
                if not self.number_supported(unit.group(1)):
                    missing.append(word)
            elif word.lower() not in self.words:
                missing.append(word)  # an id (rec-7, TCK-123, 006...): must be in the facts
        return missing


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]
