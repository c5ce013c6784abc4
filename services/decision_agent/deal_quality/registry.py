"""The code a deal rubric names: factor measures, consistency checks and risk checks.

The rule files (`rule_models.py`) name each piece of code by a string; `factors.py`,
`completeness.py` and `risks.py` register theirs here with the decorators below. The rule
models read these registries to refuse a name no code answers to, without importing the
code itself (which would make the rule models and the code import each other). The package
imports the three modules (`__init__.py`), so a loaded rule file always sees every name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from contracts.common import Evidence
from services.decision_agent.deal_quality.context import DealContext


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ factor measures


class FactorOutcome(NamedTuple):
    """Share of the factor's points earned; a NamedTuple because ~40 are made per deal."""

    fraction: float
    explanation: str
    evidence: tuple[Evidence, ...] = ()
    gap: str | None = None


MeasureFn = Callable[[DealContext, Any], FactorOutcome]


@dataclass(frozen=True)
class Measure:
    name: str
    params: type[Params]
    fn: MeasureFn


MEASURES: dict[str, Measure] = {}


def measure(
    name: str, params: type[Params] = Params
) -> Callable[[Callable[[DealContext, Any], FactorOutcome]], Callable[..., FactorOutcome]]:
    def register(fn: Callable[[DealContext, Any], FactorOutcome]) -> Callable[..., FactorOutcome]:
        MEASURES[name] = Measure(name, params, fn)
        return fn

    return register


# ------------------------------------------------------------------ consistency checks


class CheckOutcome(NamedTuple):
    passed: bool
    explanation: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class ConsistencyCheck:
    name: str
    params: type[Params]
    fn: Callable[[DealContext, Any], CheckOutcome]


CONSISTENCY_CHECKS: dict[str, ConsistencyCheck] = {}


def consistency_check(
    name: str, params: type[Params] = Params
) -> Callable[[Callable[[DealContext, Any], CheckOutcome]], Callable[..., CheckOutcome]]:
    def register(fn: Callable[[DealContext, Any], CheckOutcome]) -> Callable[..., CheckOutcome]:
        CONSISTENCY_CHECKS[name] = ConsistencyCheck(name, params, fn)
        return fn

    return register


# ------------------------------------------------------------------ risk checks


class Hit(NamedTuple):
    """A check that fired: values for the description template and the evidence."""

    details: dict[str, str]
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Check:
    name: str
    params: type[Params]
    provides: tuple[str, ...]
    fn: Callable[[DealContext, Any], Hit | None]


CHECKS: dict[str, Check] = {}


def check(
    name: str, params: type[Params] = Params, provides: tuple[str, ...] = ()
) -> Callable[[Callable[[DealContext, Any], Hit | None]], Callable[..., Hit | None]]:
    def register(fn: Callable[[DealContext, Any], Hit | None]) -> Callable[..., Hit | None]:
        CHECKS[name] = Check(name, params, provides, fn)
        return fn

    return register
