"""The fast ASCII phrase scanner finds exactly what the general case-insensitive pattern finds."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.decision_agent.conversation.lexicon import (
    AsciiPhraseScanner,
    LexiconExtractor,
    _normalise,
    _phrase_pattern,
)
from tests.unit.deal_quality import builders

EXTRACTOR = LexiconExtractor.from_file()
PHRASES = sorted(EXTRACTOR._labels)
SEPARATORS = [" ", "  ", "\n", "\t ", "-", "/", ", ", ".", "'", "_", "x", "9", ""]


def _case(draw: st.DrawFn, text: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in text)


@st.composite
def texts(draw: st.DrawFn, alphabet: str = "") -> str:
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        piece = draw(
            st.one_of(st.sampled_from(PHRASES), st.text(alphabet or "abcdeklnpst 9", max_size=6))
        )
        parts.append(_case(draw, piece.replace(" ", draw(st.sampled_from([" ", "  ", "\n"])))))
        parts.append(draw(st.sampled_from([*SEPARATORS, *alphabet])))
    return "".join(parts)


def general_matches(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), _normalise(m.group(0))) for m in EXTRACTOR._pattern.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(texts())
def test_ascii_scanner_matches_general_pattern(text: str) -> None:
    scanner = EXTRACTOR._ascii_scanner
    assert scanner is not None and text.isascii()
    fast = [(start, end, _normalise(found)) for start, end, found in scanner.matches(text)]
    assert fast == general_matches(text)


@settings(max_examples=100, deadline=None)
@given(texts(alphabet="\u00e9\u0130\u017f\u212a\u00df "), texts())
def test_extractor_gives_the_same_mentions_with_and_without_the_scanner(
    brief: str, transcript: str
) -> None:
    call = builders.call("C1", date(2024, 5, 1), brief, transcript=transcript, next_steps=brief)
    general = LexiconExtractor(EXTRACTOR.lexicon)
    general._ascii_scanner = None
    assert EXTRACTOR._scan(call) == general._scan(call)


def test_scanner_is_only_used_for_phrases_bounded_by_word_characters() -> None:
    assert AsciiPhraseScanner.build(["dbt", "sub-second", "gb/day"]) is not None
    assert AsciiPhraseScanner.build(["c++"]) is None
    assert AsciiPhraseScanner.build([".net"]) is None
    assert AsciiPhraseScanner.build(["café"]) is None
    # Two matches sharing one separator are both found (phrases end on word characters).
    scanner = AsciiPhraseScanner.build(["dbt", "kafka"])
    assert scanner is not None
    assert [m[2] for m in scanner.matches("DBT kafka,dbt")] == ["dbt", "kafka", "dbt"]
    pattern = _phrase_pattern(["dbt", "kafka"])
    assert [m.group(0) for m in pattern.finditer("DBT kafka,dbt")] == ["DBT", "kafka", "dbt"]
