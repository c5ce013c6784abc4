"""Deterministic conversation intelligence: phrase lexicons (data file) matched in calls."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache
from operator import attrgetter
from pathlib import Path

from contracts.dataset import Account, Call, Contact
from services.common.rulefiles import load_rule_file
from services.decision_agent.conversation.extractor import (
    ConversationSignals,
    Mention,
    MentionKind,
    StakeholderPresence,
    mention,
    stakeholder_presence,
)
from services.decision_agent.conversation.rule_models import ConversationLexicon

DEFAULT_LEXICON_PATH = Path(__file__).with_name("lexicons.yaml")
#: Call fields searched, in the order their snippets are preferred as evidence. next_steps
#: comes first: a non-empty one is itself the call's next-step mention, before any phrase.
CALL_TEXT_FIELDS = ("next_steps", "key_points", "brief", "title", "transcript")
_call_texts = attrgetter(*CALL_TEXT_FIELDS)
#: Joins a call's fields for one scan; never part of a phrase (AsciiPhraseScanner.build).
_FIELD_SEPARATOR = "\x00"
NEXT_STEP_LABEL = "next_step"
MENTION_CACHE_SIZE = 50_000  # calls; first-in first-out beyond that

_WORD = re.compile(r"\w")


def _normalise(text: str) -> str:
    """Lowercase, whitespace runs as one space, no space at the ends."""
    return " ".join(text.lower().split())  # str.split() splits where the regex \s+ would


def _phrase_trie(phrases: Iterable[str]) -> str:
    """All phrases as one regex body built as a character trie (far fewer branches to try at
    each position than a flat alternation)."""
    trie: dict[str, dict] = {}
    for phrase in {_normalise(p) for p in phrases if p.strip()}:
        node = trie
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_regex(trie)


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """The phrases matched on word boundaries, case-insensitive."""
    return re.compile(rf"(?<!\w){_phrase_trie(phrases)}(?!\w)", re.IGNORECASE)


class AsciiPhraseScanner:
    """The same matches as :func:`_phrase_pattern` on ASCII texts, about twice as fast.

    For ASCII text and ASCII phrases, case-insensitive matching is matching the lowercased
    text (no case folding of every character tried), and "no word character before the
    phrase" is "a non-word character before it" once the text is prefixed with a space (no
    look-behind at every position). This holds only when every phrase starts and ends with a
    word character (so two matches never need the same separator); :meth:`build` returns None
    otherwise and the caller keeps the general pattern. A call's fields are scanned in one
    pass, joined by a separator that is neither a word character nor whitespace, so no phrase
    spans two fields and each field starts and ends on a boundary, as when scanned alone.
    """

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._pattern = pattern

    @classmethod
    def build(cls, phrases: Iterable[str]) -> AsciiPhraseScanner | None:
        normalised = {_normalise(p) for p in phrases if p.strip()}
        if not all(
            p.isascii() and _WORD.match(p[0]) and _WORD.match(p[-1]) and _FIELD_SEPARATOR not in p
            for p in normalised
        ):
            return None
        return cls(re.compile(rf"\W{_phrase_trie(normalised)}(?!\w)"))

    def matches(
        self, texts: Sequence[str], distinct: bool = False
    ) -> list[tuple[int, int, int, str]]:
        """(text index, start, end, matched text lowercased) for each match (ASCII only);
        with ``distinct``, only the first match of each matched text."""
        padded = " " + _FIELD_SEPARATOR.join(texts).lower()
        starts = []
        offset = 1
        for text in texts:
            starts.append(offset)
            offset += len(text) + 1
        found = []
        seen: set[str] = set()
        index, last = 0, len(texts) - 1
        for match in self._pattern.finditer(padded):
            boundary, end = match.span()
            start = boundary + 1
            matched = padded[start:end]
            if distinct:
                if matched in seen:
                    continue
                seen.add(matched)
            while index < last and starts[index + 1] <= start:
                index += 1
            base = starts[index]
            found.append((index, start - base, end - base, matched))
        return found


def _trie_regex(node: dict[str, dict]) -> str:
    branches = [
        (r"\s+" if char == " " else re.escape(char)) + _trie_regex(child)
        for char, child in sorted(node.items())
        if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


@lru_cache(maxsize=65_536)
def _domain(email_or_domain: str) -> str:
    value = email_or_domain.strip().lower()
    value = value.rsplit("@", 1)[-1]
    value = value.removeprefix("http://").removeprefix("https://").split("/", 1)[0]
    return value.removeprefix("www.")


class LexiconExtractor:
    """Implements :class:`~services.decision_agent.conversation.extractor.Extractor`."""

    def __init__(self, lexicon: ConversationLexicon) -> None:
        self.lexicon = lexicon
        self._labels: dict[str, list[tuple[MentionKind, str]]] = {}
        sections: list[tuple[MentionKind, dict[str, list[str]]]] = [
            (MentionKind.TECHNICAL_REQUIREMENT, lexicon.technical_requirements),
            (MentionKind.OBJECTION, lexicon.objections),
            (MentionKind.COMPETITOR, lexicon.competitors),
            (MentionKind.NEXT_STEP, {NEXT_STEP_LABEL: lexicon.next_steps}),
        ]
        for kind, mapping in sections:
            for label, phrases in mapping.items():
                for phrase in phrases:
                    entry = (kind, label)
                    bucket = self._labels.setdefault(_normalise(phrase), [])
                    if entry not in bucket:
                        bucket.append(entry)
        self._pattern = _phrase_pattern(self._labels)
        self._ascii_scanner = AsciiPhraseScanner.build(self._labels)
        self._role_patterns = {
            role: _phrase_pattern(phrases) for role, phrases in lexicon.stakeholder_roles.items()
        }
        self._half_snippet = lexicon.snippet_chars // 2
        self._mention_cache: dict[tuple[object, ...], tuple[Mention, ...]] = {}
        self._presence_cache: dict[tuple[object, ...], StakeholderPresence] = {}

    @classmethod
    def from_file(cls, path: Path = DEFAULT_LEXICON_PATH) -> LexiconExtractor:
        return cls(load_rule_file(path, ConversationLexicon))

    # ------------------------------------------------------------------ extraction

    def extract(
        self, calls: Sequence[Call], contacts: Sequence[Contact], account: Account
    ) -> ConversationSignals:
        ordered = tuple(sorted(calls, key=lambda c: (c.start_ts, c.call_id)))
        mentions: list[Mention] = []
        stakeholders: list[StakeholderPresence] = []
        contacts_by_email = {c.email.strip().lower(): c for c in contacts if c.email}
        account_domain = _domain(account.sf_company_domain or "")
        # The same people attend most of a deal's calls: who is a customer (and their title)
        # is worked out once per deal and participant, not once per call.
        customers: dict[str, tuple[str, str | None] | None] = {}
        for call in ordered:
            mentions.extend(self._mentions(call))
            stakeholders.extend(
                self._stakeholders(call, contacts_by_email, account_domain, customers)
            )
        return ConversationSignals(
            calls=ordered, mentions=tuple(mentions), stakeholders=tuple(stakeholders)
        )

    def _mentions(self, call: Call) -> tuple[Mention, ...]:
        """Mentions depend only on the call's own text, which never changes once recorded,
        so they are cached by content: re-scoring a deal does not re-scan its calls."""
        texts: tuple[str | None, ...] = _call_texts(call)
        key = (call.call_id, call.start_ts, texts)
        cached = self._mention_cache.get(key)
        if cached is None:
            cached = self._scan(call, tuple(text or "" for text in texts))
            if len(self._mention_cache) >= MENTION_CACHE_SIZE:
                self._mention_cache.pop(next(iter(self._mention_cache)))
            self._mention_cache[key] = cached
        return cached

    def _scan(self, call: Call, texts: tuple[str, ...]) -> tuple[Mention, ...]:
        """The first mention of each (kind, label) on the call, fields in CALL_TEXT_FIELDS
        order; ``texts`` are those fields ("" when empty)."""
        seen: set[tuple[MentionKind, str]] = set()
        found: list[Mention] = []
        call_id, call_date = call.call_id, call.start_ts.date()
        day = call_date.isoformat()
        next_steps = texts[0]
        if next_steps.strip():
            kind, label = MentionKind.NEXT_STEP, NEXT_STEP_LABEL
            seen.add((kind, label))
            snippet = self._snippet(next_steps, 0, 0)
            found.append(mention(kind, label, call_id, call_date, "next_steps", snippet, day))
        labels = self._labels
        # Only the first match of each matched text: a repeat maps to the same (kind, label)
        # keys, all already seen, so it could add nothing (calls repeat phrases a lot).
        for index, start, end, matched in self._distinct_matches(texts):
            # A lowercased match is usually the phrase itself; normalise only otherwise.
            keys = labels.get(matched) or labels.get(_normalise(matched)) or ()
            for key in keys:
                if key in seen:
                    continue
                seen.add(key)
                snippet = self._snippet(texts[index], start, end)
                kind, label = key
                field_name = CALL_TEXT_FIELDS[index]
                found.append(mention(kind, label, call_id, call_date, field_name, snippet, day))
        return tuple(found)

    def _distinct_matches(self, texts: tuple[str, ...]) -> list[tuple[int, int, int, str]]:
        """(text index, start, end, matched text) in text order, then position order, for
        the first match of each matched text."""
        if self._ascii_scanner is not None and "".join(texts).isascii():
            return self._ascii_scanner.matches(texts, distinct=True)
        found = []
        seen: set[str] = set()
        for index, text in enumerate(texts):
            for match in self._pattern.finditer(text):
                matched = match.group(0)
                if matched not in seen:
                    seen.add(matched)
                    found.append((index, match.start(), match.end(), matched))
        return found

    def _snippet(self, text: str, start: int, end: int) -> str:
        lo = max(0, start - self._half_snippet)
        hi = min(len(text), end + self._half_snippet)
        snippet = " ".join(text[lo:hi].split())  # whitespace runs as one space, trimmed
        return f"{'...' if lo > 0 else ''}{snippet}{'...' if hi < len(text) else ''}"

    def _stakeholders(
        self,
        call: Call,
        contacts_by_email: dict[str, Contact],
        account_domain: str,
        customers: dict[str, tuple[str, str | None] | None],
    ) -> list[StakeholderPresence]:
        """``customers``: a per-deal memo of :meth:`_customer` by raw participant email."""
        present: list[StakeholderPresence] = []
        seen: set[str] = set()
        call_id, day = call.call_id, call.start_ts.date()
        for raw in call.participant_emails:
            if raw in customers:
                customer = customers[raw]
            else:
                customer = customers[raw] = _customer(raw, contacts_by_email, account_domain)
            if customer is None or customer[0] in seen:
                continue
            email, title = customer
            seen.add(email)
            present.append(self._presence(call_id, day, email, title))
        return present

    def _presence(
        self, call_id: str, day: date, email: str, title: str | None
    ) -> StakeholderPresence:
        """Presences are immutable facts, shared between re-scorings of the same deal."""
        key = (call_id, day, email, title)
        found = self._presence_cache.get(key)
        if found is None:
            if len(self._presence_cache) >= MENTION_CACHE_SIZE:
                self._presence_cache.pop(next(iter(self._presence_cache)))
            found = stakeholder_presence(call_id, day, email, title, self.roles_for_title(title))
            self._presence_cache[key] = found
        return found

    def roles_for_title(self, title: str | None) -> frozenset[str]:
        if not title:
            return frozenset()
        return _roles_cached(self, title)


def _customer(
    raw: str, contacts_by_email: dict[str, Contact], account_domain: str
) -> tuple[str, str | None] | None:
    """(email, contact title) when the participant is on the customer side: a known contact,
    or an address at the account's domain (or a subdomain of it)."""
    email = raw.strip().lower()
    if not email:
        return None
    contact = contacts_by_email.get(email)
    if contact is not None:
        return email, contact.title
    domain = _domain(email)
    if account_domain and (domain == account_domain or domain.endswith("." + account_domain)):
        return email, None
    return None


@lru_cache(maxsize=4096)
def _roles_cached(extractor: LexiconExtractor, title: str) -> frozenset[str]:
    return frozenset(
        role for role, pattern in extractor._role_patterns.items() if pattern.search(title)
    )
