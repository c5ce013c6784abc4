"""The fast ASCII phrase scanner finds exactly what the general case-insensitive pattern finds."""

from __future__ import annotations

import re
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.decision_agent.conversation.lexicon import (
    CALL_TEXT_FIELDS,
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


def general_matches(texts: list[str]) -> list[tuple[int, int, int, str]]:
    return [
        (index, m.start(), m.end(), _normalise(m.group(0)))
        for index, text in enumerate(texts)
        for m in EXTRACTOR._pattern.finditer(text)
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(texts(), min_size=1, max_size=5))
def test_ascii_scanner_matches_general_pattern(fields: list[str]) -> None:
    """One pass over the joined fields finds what scanning each field alone finds."""
    scanner = EXTRACTOR._ascii_scanner
    assert scanner is not None and all(text.isascii() for text in fields)
    fast = [(i, start, end, _normalise(found)) for i, start, end, found in scanner.matches(fields)]
    assert fast == general_matches(fields)


@settings(max_examples=100, deadline=None)
@given(texts(alphabet="\u00e9\u0130\u017f\u212a\u00df "), texts())
def test_extractor_gives_the_same_mentions_with_and_without_the_scanner(
    brief: str, transcript: str
) -> None:
    call = builders.call("C1", date(2024, 5, 1), brief, transcript=transcript, next_steps=brief)
    general = LexiconExtractor(EXTRACTOR.lexicon)
    general._ascii_scanner = None
    assert LexiconExtractor(EXTRACTOR.lexicon)._mentions(call) == general._mentions(call)


def test_scanner_is_only_used_for_phrases_bounded_by_word_characters() -> None:
    assert AsciiPhraseScanner.build(["dbt", "sub-second", "gb/day"]) is not None
    assert AsciiPhraseScanner.build(["c++"]) is None
    assert AsciiPhraseScanner.build([".net"]) is None
    assert AsciiPhraseScanner.build(["café"]) is None
    assert AsciiPhraseScanner.build(["a\x00b"]) is None
    # Two matches sharing one separator are both found (phrases end on word characters).
    scanner = AsciiPhraseScanner.build(["dbt", "kafka"])
    assert scanner is not None
    found = scanner.matches(["DBT kafka,dbt", "", "kafka"])
    assert [(m[0], m[3]) for m in found] == [(0, "dbt"), (0, "kafka"), (0, "dbt"), (2, "kafka")]
    pattern = _phrase_pattern(["dbt", "kafka"])
    assert [m.group(0) for m in pattern.finditer("DBT kafka,dbt")] == ["DBT", "kafka", "dbt"]


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_whitespace_normalising_matches_the_regex_definition(text: str) -> None:
    expected = re.sub(r"\s+", " ", text.strip().lower())
    assert _normalise(text) == expected
    assert " ".join(text.split()) == re.sub(r"\s+", " ", text).strip()


@settings(max_examples=200, deadline=None)
@given(st.lists(texts(), min_size=1, max_size=5))
def test_distinct_matches_are_the_first_of_each_matched_text(fields: list[str]) -> None:
    scanner = EXTRACTOR._ascii_scanner
    assert scanner is not None
    first: dict[str, tuple[int, int, int, str]] = {}
    for found in scanner.matches(fields):
        first.setdefault(found[3], found)
    assert scanner.matches(fields, distinct=True) == list(first.values())


@settings(max_examples=200, deadline=None)
@given(texts(), texts(), texts())
def test_mentions_from_distinct_matches_equal_mentions_from_every_match(
    brief: str, key_points: str, transcript: str
) -> None:
    """A repeated matched text maps to (kind, label) keys already met, so skipping it in the
    scan loses nothing: compare with keeping the first mention of each key over every match."""
    call = builders.call("C1", date(2024, 5, 1), brief, transcript=transcript)
    call = call.model_copy(update={"key_points": key_points, "next_steps": None})
    texts_ = ("", key_points, brief, call.title, transcript)
    scanner = EXTRACTOR._ascii_scanner
    assert scanner is not None
    expected: dict[tuple[str, str], tuple[str, str]] = {}
    for index, start, end, matched in scanner.matches(texts_):
        for kind, label in EXTRACTOR._labels.get(matched) or EXTRACTOR._labels[_normalise(matched)]:
            snippet = EXTRACTOR._snippet(texts_[index], start, end)
            expected.setdefault((kind, label), (CALL_TEXT_FIELDS[index], snippet))
    got = {(m.kind, m.label): (m.field, m.snippet) for m in EXTRACTOR._mentions(call)}
    assert got == expected
    assert list(got) == list(expected)
