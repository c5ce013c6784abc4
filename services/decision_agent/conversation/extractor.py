"""What conversation intelligence extracts from customer calls, and the extractor Protocol.

The deterministic lexicon extractor (`lexicon.LexiconExtractor`) implements the Protocol
today; a language-model extractor can implement the same Protocol later and be swapped in
without touching the scoring code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple, Protocol

from contracts.common import Evidence
from contracts.dataset import Account, Call, Contact
from services.decision_agent import trusted


class MentionKind(StrEnum):
    TECHNICAL_REQUIREMENT = "technical_requirement"
    OBJECTION = "objection"
    COMPETITOR = "competitor"
    NEXT_STEP = "next_step"


class Mention(NamedTuple):
    """One thing said on one call: ``label`` is the class (latency, no_budget, snowflake).

    Immutable, and cheap to make (a tuple: ~10 are made per first-scored call). ``evidence``
    cites it in results; it is built once with the mention and shared by every result that
    cites it (results are read-only by convention). Build with :func:`mention`.
    """

    kind: MentionKind
    label: str
    call_id: str
    call_date: date
    field: str
    snippet: str
    evidence: Evidence


def mention(
    kind: MentionKind,
    label: str,
    call_id: str,
    call_date: date,
    field: str,
    snippet: str,
    call_day: str | None = None,
) -> Mention:
    """``call_day`` is ``call_date.isoformat()`` when the caller has it already."""
    day = call_day or call_date.isoformat()
    evidence = trusted.evidence("gong_call_f", call_id, field, day, label, snippet)
    return Mention(kind, label, call_id, call_date, field, snippet, evidence)


class StakeholderPresence(NamedTuple):
    """A customer-side participant on a call, with the roles their contact title implies.

    Immutable; ``evidence`` is built with it and shared, as for :class:`Mention`. Build with
    :func:`stakeholder_presence`.
    """

    call_id: str
    call_date: date
    email: str
    title: str | None
    roles: frozenset[str]
    evidence: Evidence


def stakeholder_presence(
    call_id: str, call_date: date, email: str, title: str | None, roles: frozenset[str]
) -> StakeholderPresence:
    evidence = trusted.evidence(
        "gong_call_f", call_id, "participant_emails", call_date.isoformat(), email, title
    )
    return StakeholderPresence(call_id, call_date, email, title, roles, evidence)


@dataclass(frozen=True)
class ConversationSignals:
    """Everything extracted from a deal's customer calls, in a deterministic order."""

    calls: tuple[Call, ...] = ()
    mentions: tuple[Mention, ...] = ()
    stakeholders: tuple[StakeholderPresence, ...] = ()
    _by_kind: dict[MentionKind, tuple[Mention, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _by_role: dict[str, tuple[StakeholderPresence, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _by_label: dict[tuple[MentionKind, str], tuple[Mention, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        # Grouped once: factors and checks ask for the same kinds and labels many times.
        grouped: dict[MentionKind, list[Mention]] = {}
        labelled: dict[tuple[MentionKind, str], list[Mention]] = {}
        for mention in self.mentions:
            grouped.setdefault(mention.kind, []).append(mention)
            labelled.setdefault((mention.kind, mention.label), []).append(mention)
        self._by_kind.update({kind: tuple(items) for kind, items in grouped.items()})
        self._by_label.update({key: tuple(items) for key, items in labelled.items()})

    def of_kind(self, kind: MentionKind, label: str | None = None) -> tuple[Mention, ...]:
        """Mentions of ``kind`` (and ``label``) in call order."""
        if label is None:
            return self._by_kind.get(kind, ())
        return self._by_label.get((kind, label), ())

    def labels(self, kind: MentionKind) -> list[str]:
        """Distinct labels of ``kind`` in first-seen order."""
        return list(dict.fromkeys(m.label for m in self.of_kind(kind)))

    def with_role(self, role: str) -> tuple[StakeholderPresence, ...]:
        found = self._by_role.get(role)
        if found is None:
            found = self._by_role[role] = tuple(s for s in self.stakeholders if role in s.roles)
        return found


class Extractor(Protocol):
    """Turns customer calls (already filtered by the data agent) into signals."""

    def extract(
        self, calls: Sequence[Call], contacts: Sequence[Contact], account: Account
    ) -> ConversationSignals: ...
