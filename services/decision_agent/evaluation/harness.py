"""Scoring an extractor on the labelled excerpts: precision and recall per class.

Each excerpt becomes one customer call (its text as the transcript, its people as the
account's contacts). An extractor returns (class, label) pairs per excerpt; a pair is right
when the excerpt expects it. Classes: objection, competitor, technical_requirement,
stakeholder (``email:stance``) and next_step. Counts are summed over the set (micro
average); ``all`` sums every class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from contracts.analysis import CallInsightKind
from contracts.dataset import Account, Call, Contact
from services.common.rulefiles import load_rule_file
from services.decision_agent.ai.call_reader import CallPerson, CallReader
from services.decision_agent.conversation.extractor import MentionKind
from services.decision_agent.conversation.lexicon import LexiconExtractor
from services.decision_agent.evaluation.rule_models import ConversationEvalSet, Excerpt
from services.decision_agent.model.gateway import FlowLedger

DEFAULT_SET = Path(__file__).with_name("conversations.yaml")
CLASSES = ("objection", "competitor", "technical_requirement", "stakeholder", "next_step")
VENDOR_EMAIL = "ae@vendor.example"
CALL_TIME = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)

Pair = tuple[str, str]


def load_set(path: Path = DEFAULT_SET) -> list[Excerpt]:
    return list(load_rule_file(path, ConversationEvalSet).excerpts)


def expected(excerpt: Excerpt) -> set[Pair]:
    e = excerpt.expect
    pairs = {("objection", label) for label in e.objections}
    pairs |= {("competitor", label) for label in e.competitors}
    pairs |= {("technical_requirement", label) for label in e.requirements}
    pairs |= {("stakeholder", f"{email}:{stance}") for email, stance in e.stances.items()}
    if e.next_step:
        pairs.add(("next_step", "next_step"))
    return pairs


def excerpt_call(excerpt: Excerpt) -> tuple[Call, list[Contact], Account]:
    """The excerpt as a customer call of an account whose contacts are its people."""
    domain = next(iter(excerpt.people), "customer@customer.example").split("@", 1)[1]
    account = Account(
        sf_account_id=f"acct-{excerpt.id}", sf_account_name="Customer", sf_company_domain=domain
    )
    contacts = [
        Contact(
            contact_id=f"{excerpt.id}-{n}",
            email=email,
            title=title,
            sf_account_id=account.sf_account_id,
        )
        for n, (email, title) in enumerate(excerpt.people.items())
    ]
    call = Call(
        call_id=excerpt.id,
        title="Customer call",
        start_ts=CALL_TIME,
        participant_emails=[*excerpt.people, VENDOR_EMAIL],
        sf_account_id=account.sf_account_id,
        transcript=excerpt.text,
    )
    return call, contacts, account


class Predictor(Protocol):
    name: str

    async def predict(self, excerpt: Excerpt) -> set[Pair]: ...


class LexiconPredictor:
    """The deterministic lexicon: phrases, no stance (it reads titles, not what people say)."""

    name = "lexicon"
    KINDS = {
        MentionKind.OBJECTION: "objection",
        MentionKind.COMPETITOR: "competitor",
        MentionKind.TECHNICAL_REQUIREMENT: "technical_requirement",
        MentionKind.NEXT_STEP: "next_step",
    }

    def __init__(self, lexicon: LexiconExtractor | None = None) -> None:
        self.lexicon = lexicon or LexiconExtractor.from_file()

    async def predict(self, excerpt: Excerpt) -> set[Pair]:
        call, contacts, account = excerpt_call(excerpt)
        signals = self.lexicon.extract([call], contacts, account)
        return {(self.KINDS[m.kind], m.label) for m in signals.mentions}


class ModelPredictor:
    """The configured model through the AI layer's call reader (grounding included: a claim
    whose quote is not in the excerpt does not count)."""

    def __init__(self, reader: CallReader, tokens_per_excerpt: int, deadline_s: float) -> None:
        self.reader = reader
        self.name = f"model ({reader.gateway.backend} {reader.gateway.model_id})"
        self.tokens_per_excerpt = tokens_per_excerpt
        self.deadline_s = deadline_s
        self.fallbacks: dict[str, str] = {}  # excerpt id -> why the model did not answer

    async def predict(self, excerpt: Excerpt) -> set[Pair]:
        call, _, _ = excerpt_call(excerpt)
        people = [CallPerson(email, title) for email, title in excerpt.people.items()]
        flow = FlowLedger.starting_now(self.tokens_per_excerpt, self.deadline_s)
        insights, use = await self.reader.read_call(call, people, flow)
        if use.outcome == "fallback":
            self.fallbacks[excerpt.id] = use.reason or "unknown"
        pairs = set()
        for insight in insights:
            if insight.kind == CallInsightKind.STAKEHOLDER:
                pairs.add(("stakeholder", f"{insight.stakeholder}:{insight.stance}"))
            else:
                pairs.add((insight.kind.value, insight.label))
        return pairs


@dataclass
class ClassScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)


@dataclass
class Miss:
    excerpt: str
    missed: list[Pair]
    extra: list[Pair]


@dataclass
class Report:
    extractor: str
    excerpts: int
    classes: dict[str, ClassScore] = field(default_factory=dict)
    tags: dict[str, tuple[int, int]] = field(default_factory=dict)  # tag -> (excerpts, right)
    misses: list[Miss] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)

    @property
    def overall(self) -> ClassScore:
        return ClassScore(
            sum(c.tp for c in self.classes.values()),
            sum(c.fp for c in self.classes.values()),
            sum(c.fn for c in self.classes.values()),
        )

    def as_dict(self) -> dict[str, object]:
        def row(score: ClassScore) -> dict[str, object]:
            return {
                "tp": score.tp,
                "fp": score.fp,
                "fn": score.fn,
                "precision": score.precision,
                "recall": score.recall,
                "f1": score.f1,
            }

        return {
            "extractor": self.extractor,
            "excerpts": self.excerpts,
            "classes": {name: row(score) for name, score in self.classes.items()},
            "all": row(self.overall),
            "tags": {t: {"excerpts": n, "all_right": ok} for t, (n, ok) in self.tags.items()},
            "misses": [
                {"excerpt": m.excerpt, "missed": m.missed, "extra": m.extra} for m in self.misses
            ],
            "fallbacks": self.fallbacks,
        }


def score(name: str, excerpts: Sequence[Excerpt], predictions: dict[str, set[Pair]]) -> Report:
    report = Report(name, len(excerpts), {c: ClassScore() for c in CLASSES})
    tags: dict[str, list[int]] = {}
    for excerpt in excerpts:
        gold = expected(excerpt)
        found = predictions.get(excerpt.id, set())
        for kind, _ in found & gold:
            report.classes[kind].tp += 1
        for kind, _ in found - gold:
            report.classes[kind].fp += 1
        for kind, _ in gold - found:
            report.classes[kind].fn += 1
        right = found == gold
        for tag in excerpt.tags:
            counts = tags.setdefault(tag, [0, 0])
            counts[0] += 1
            counts[1] += int(right)
        if not right:
            report.misses.append(Miss(excerpt.id, sorted(gold - found), sorted(found - gold)))
    report.tags = {tag: (n, ok) for tag, (n, ok) in sorted(tags.items())}
    return report


async def evaluate(
    predictor: Predictor, excerpts: Sequence[Excerpt], concurrency: int = 4
) -> Report:
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(excerpt: Excerpt) -> tuple[str, set[Pair]]:
        async with semaphore:
            return excerpt.id, await predictor.predict(excerpt)

    predictions = dict(await asyncio.gather(*(one(e) for e in excerpts)))
    report = score(predictor.name, excerpts, predictions)
    report.fallbacks = dict(getattr(predictor, "fallbacks", {}))
    return report
