"""Call understanding by a model: one prompt per customer call, grounded claim by claim.

One call per prompt: a call's text never changes once recorded, so its answer is cached for
good and re-analysing a deal after a new call costs one prompt, not all of them. The most
recent `max_calls` calls are read, `concurrency` at a time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts.analysis import CallInsight, CallInsightKind, ModelUse
from contracts.dataset import Account, Call, Contact
from services.decision_agent.ai.grounding import Rejections, clean_quote, quote_occurs
from services.decision_agent.ai.outputs import STANCES, CallUnderstanding
from services.decision_agent.conversation.extractor import StakeholderPresence
from services.decision_agent.conversation.lexicon import LexiconExtractor
from services.decision_agent.conversation.rule_models import (
    OBJECTION_CLASSES,
    STAKEHOLDER_ROLES,
    TECHNICAL_REQUIREMENTS,
)
from services.decision_agent.model.gateway import FlowLedger, ModelFallback, ModelGateway
from services.decision_agent.model.port import ModelRequest
from services.decision_agent.prompts.catalog import Prompt

PROMPT_ID = "call_understanding"
CLASSES: dict[str, Sequence[str]] = {
    "objections": OBJECTION_CLASSES,
    "technical_requirements": TECHNICAL_REQUIREMENTS,
    "stakeholder_roles": STAKEHOLDER_ROLES,
    "stances": STANCES,
}
#: (name shown to the model, Call field); the title is in the prompt's header line.
SECTIONS = (
    ("brief", "brief"),
    ("key points", "key_points"),
    ("next steps", "next_steps"),
    ("transcript", "transcript"),
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def call_texts(call: Call) -> list[str | None]:
    """Where a quote may come from: the call's own text fields."""
    return [call.title, call.brief, call.key_points, call.next_steps, call.transcript]


def call_sections(call: Call, max_chars: int) -> list[dict[str, str]]:
    """The call's text fields in order, cut to ``max_chars`` in total (the transcript, last,
    is the one usually cut)."""
    sections = []
    left = max_chars
    for name, field in SECTIONS:
        text = (getattr(call, field) or "").strip()
        if not text or left <= 0:
            continue
        cut = text[:left]
        sections.append({"name": name, "text": cut + (" [...]" if len(cut) < len(text) else "")})
        left -= len(cut)
    return sections


@dataclass(frozen=True)
class CallPerson:
    email: str
    title: str | None


def customer_people(stakeholders: Sequence[StakeholderPresence]) -> dict[str, list[CallPerson]]:
    """Customer participants per call id (the lexicon extractor's view of who is who)."""
    people: dict[str, list[CallPerson]] = {}
    for s in stakeholders:
        people.setdefault(s.call_id, []).append(CallPerson(s.email, s.title))
    return people


class CompetitorNames:
    """A model's competitor label in the lexicon's names where it is one of them
    ("Google BigQuery" -> bigquery), else as a lower-case slug."""

    def __init__(self, lexicon_competitors: dict[str, list[str]]) -> None:
        self._aliases = [
            (_NOT_ALNUM.sub("", phrase.lower()), label)
            for label, phrases in lexicon_competitors.items()
            for phrase in [label, *phrases]
        ]

    def __call__(self, label: str) -> str:
        squashed = _NOT_ALNUM.sub("", label.lower())
        for alias, known in self._aliases:
            if alias and alias in squashed:
                return known
        return _NOT_ALNUM.sub("_", label.lower()).strip("_")[:40]


def ground_call(
    call: Call,
    answer: CallUnderstanding,
    people: Sequence[CallPerson],
    competitor_name: CompetitorNames,
    rejections: Rejections,
) -> list[CallInsight]:
    """The answer's claims that the call supports, each once."""
    texts = call_texts(call)
    emails = {p.email.lower() for p in people}
    found: list[CallInsight] = []
    seen: set[tuple[str, str, str | None]] = set()

    def keep(
        kind: CallInsightKind,
        label: str,
        quote: str,
        stakeholder: str | None = None,
        stance: str | None = None,
        detail: str | None = None,
    ) -> None:
        claim = f"{kind.value}:{label} {quote!r}"
        if not quote_occurs(quote, texts):
            rejections.add("quote_not_in_call", claim, f"not in the text of call {call.call_id}")
            return
        key = (kind.value, label, stakeholder)
        if key in seen:
            return
        seen.add(key)
        found.append(
            CallInsight(
                kind=kind,
                label=label,
                call_id=call.call_id,
                quote=clean_quote(quote),
                stakeholder=stakeholder,
                stance=stance,
                detail=detail,
            )
        )

    def known(kind: CallInsightKind, label: str, allowed: Sequence[str], quote: str) -> bool:
        if label in allowed:
            return True
        rejections.add("unknown_label", f"{kind.value}:{label} {quote!r}", f"not one of {allowed}")
        return False

    for item in answer.objections:
        label = item.label.strip().lower()
        if known(CallInsightKind.OBJECTION, label, OBJECTION_CLASSES, item.quote):
            keep(CallInsightKind.OBJECTION, label, item.quote)
    for item in answer.technical_requirements:
        label = item.label.strip().lower()
        kind = CallInsightKind.TECHNICAL_REQUIREMENT
        if known(kind, label, TECHNICAL_REQUIREMENTS, item.quote):
            keep(kind, label, item.quote)
    for item in answer.competitors:
        label = competitor_name(item.label)
        if not label:
            rejections.add("unknown_label", f"competitor {item.label!r}", "empty name")
            continue
        keep(CallInsightKind.COMPETITOR, label, item.quote)
    for person in answer.stakeholders:
        email = person.email.strip().lower()
        role, stance = person.role.strip().lower(), person.stance.strip().lower()
        claim = f"stakeholder {email} {role}/{stance}"
        if email not in emails:
            rejections.add(
                "unknown_stakeholder", claim, f"not a customer participant of {call.call_id}"
            )
            continue
        kind = CallInsightKind.STAKEHOLDER
        if known(kind, role, STAKEHOLDER_ROLES, person.quote) and known(
            kind, stance, STANCES, person.quote
        ):
            keep(kind, role, person.quote, stakeholder=email, stance=stance)
    for step in answer.next_steps:
        keep(
            CallInsightKind.NEXT_STEP,
            "next_step",
            step.quote,
            detail=step.action.strip()[:300] or None,
        )
    return found


class CallReader:
    def __init__(
        self,
        gateway: ModelGateway,
        prompt: Prompt,
        lexicon: LexiconExtractor,
        *,
        max_calls: int = 6,
        call_chars: int = 6000,
        concurrency: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 1024,
    ) -> None:
        self.gateway = gateway
        self.prompt = prompt
        self.lexicon = lexicon
        self.competitor_name = CompetitorNames(lexicon.lexicon.competitors)
        self.max_calls = max_calls
        self.call_chars = call_chars
        self.concurrency = max(1, concurrency)
        self.temperature = temperature
        self.max_tokens = prompt.spec.max_tokens or max_tokens

    def request_for(self, call: Call, people: Sequence[CallPerson]) -> ModelRequest:
        variables: dict[str, Any] = {
            "call": {
                "id": call.call_id,
                "date": call.start_ts.date().isoformat(),
                "title": call.title,
                "sections": call_sections(call, self.call_chars),
            },
            "participants": [{"email": p.email, "title": p.title} for p in people],
            "classes": {name: list(values) for name, values in CLASSES.items()},
        }
        system, user = self.prompt.render(**variables)
        spec = self.prompt.spec
        return ModelRequest(
            prompt_id=spec.id,
            prompt_version=self.prompt.version,
            system=system,
            user=user,
            tool_name=spec.tool_name,
            tool_description=spec.tool_description,
            output_model=CallUnderstanding,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )

    async def read_call(
        self, call: Call, people: Sequence[CallPerson], flow: FlowLedger
    ) -> tuple[list[CallInsight], ModelUse]:
        request = self.request_for(call, people)
        use = ModelUse(
            prompt=request.prompt_id,
            prompt_version=request.prompt_version,
            ref=call.call_id,
            outcome="fallback",
        )
        try:
            answer = await self.gateway.ask(request, flow)
        except ModelFallback as exc:
            return [], use.model_copy(update={"reason": exc.reason})
        assert isinstance(answer.output, CallUnderstanding)
        rejections = Rejections(request.prompt_id)
        insights = ground_call(call, answer.output, people, self.competitor_name, rejections)
        return insights, use.model_copy(
            update={
                "outcome": "cache" if answer.from_cache else "model",
                "tokens_in": answer.tokens_in,
                "tokens_out": answer.tokens_out,
                "grounding_rejections": len(rejections),
            }
        )

    def calls_to_read(self, calls: Sequence[Call]) -> list[Call]:
        recent = sorted(calls, key=lambda c: (c.start_ts, c.call_id))[-self.max_calls :]
        return recent if self.max_calls > 0 else []

    async def read(
        self,
        calls: Sequence[Call],
        contacts: Sequence[Contact],
        account: Account,
        flow: FlowLedger,
    ) -> tuple[list[CallInsight], list[ModelUse]]:
        chosen = self.calls_to_read(calls)
        if not chosen:
            return [], []
        people = customer_people(self.lexicon.extract(chosen, contacts, account).stakeholders)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def read_one(call: Call) -> tuple[list[CallInsight], ModelUse]:
            async with semaphore:
                return await self.read_call(call, people.get(call.call_id, []), flow)

        results = await asyncio.gather(*(read_one(call) for call in chosen))
        insights = [insight for found, _ in results for insight in found]
        return insights, [use for _, use in results]
