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
from typing import Protocol

from contracts.common import Evidence
from contracts.dataset import Account, Call, Contact
from services.decision_agent.deal_quality import trusted


class MentionKind(StrEnum):
    TECHNICAL_REQUIREMENT = "technical_requirement"
    OBJECTION = "objection"
    COMPETITOR = "competitor"
    NEXT_STEP = "next_step"


@dataclass(frozen=True)
class Mention:
    """One thing said on one call: ``label`` is the class (latency, no_budget, snowflake)."""

    kind: MentionKind
    label: str
    call_id: str
    call_date: date
    field: str
    snippet: str

    def evidence(self) -> Evidence:
        """Built once, on first use, and shared (results are read-only by convention)."""
        found: Evidence | None = self.__dict__.get("_evidence")
        if found is None:
            found = self.__dict__["_evidence"] = trusted.evidence(
                "gong_call_f",
                self.call_id,
                self.field,
                self.call_date.isoformat(),
                self.label,
                self.snippet,
            )
        return found


@dataclass(frozen=True)
class StakeholderPresence:
    """A customer-side participant on a call, with the roles their contact title implies."""

    call_id: str
    call_date: date
    email: str
    title: str | None
    roles: frozenset[str]

    def evidence(self) -> Evidence:
        """Built once, on first use, and shared (results are read-only by convention)."""
        found: Evidence | None = self.__dict__.get("_evidence")
        if found is None:
            found = self.__dict__["_evidence"] = trusted.evidence(
                "gong_call_f",
                self.call_id,
                "participant_emails",
                self.call_date.isoformat(),
                self.email,
                self.title,
            )
        return found


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
