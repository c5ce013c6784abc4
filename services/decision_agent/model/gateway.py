"""What every model call goes through: cache, token budgets, circuit breaker, timeout,
retries on throttling with backoff, output validation, metrics.

`ModelGateway.ask` returns a validated answer or raises `ModelFallback` with the reason;
it never raises anything else, so the caller's deterministic path always has the last word.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from services.common.breaker import AsyncCircuitBreaker, CircuitOpenError
from services.common.retry import RetryPolicy
from services.decision_agent.model import metrics
from services.decision_agent.model.errors import ModelError, ModelOutputInvalid, ModelTimeout
from services.decision_agent.model.port import ModelPort, ModelReply, ModelRequest, cache_key
from services.decision_agent.model.store import DailyTokenBudget, PromptCache

log = structlog.get_logger("model")

OutputT = TypeVar("OutputT", bound=BaseModel)


class ModelFallback(Exception):
    """The model cannot answer this prompt now; `reason` labels the fallback metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Prices:
    """USD per million tokens (the endpoint's list price; for the cost estimate only)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_mtok + tokens_out * self.output_per_mtok) / 1e6


@dataclass
class FlowLedger:
    """One analysis's share: its token budget, its deadline and what it spent."""

    token_limit: int
    deadline: float  # on `clock`
    clock: Callable[[], float] = time.monotonic
    tokens_reserved: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    @classmethod
    def starting_now(
        cls, token_limit: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> FlowLedger:
        return cls(token_limit, clock() + seconds, clock)

    def remaining_s(self) -> float:
        return self.deadline - self.clock()

    def reserve(self, tokens: int) -> bool:
        if self.tokens_reserved + tokens > self.token_limit:
            return False
        self.tokens_reserved += tokens
        return True

    def settle(self, reserved: int, reply: ModelReply, cost: float) -> None:
        self.tokens_reserved += reply.tokens_in + reply.tokens_out - reserved
        self.tokens_in += reply.tokens_in
        self.tokens_out += reply.tokens_out
        self.cost_usd += cost

    def release(self, reserved: int) -> None:
        self.tokens_reserved -= reserved


@dataclass(frozen=True)
class Answer(Generic[OutputT]):
    output: OutputT
    from_cache: bool
    tokens_in: int = 0
    tokens_out: int = 0
    model_id: str = ""


@dataclass
class GatewayConfig:
    timeout_s: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    prices: Prices = field(default_factory=Prices)


class ModelGateway:
    def __init__(
        self,
        port: ModelPort,
        *,
        breaker: AsyncCircuitBreaker,
        cache: PromptCache | None,
        day_budget: DailyTokenBudget,
        config: GatewayConfig | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.port = port
        self.breaker = breaker
        self.cache = cache
        self.day_budget = day_budget
        self.config = config or GatewayConfig()
        self._sleep = sleep

    @property
    def backend(self) -> str:
        return self.port.backend

    @property
    def model_id(self) -> str:
        return self.port.model_id

    async def ask(self, request: ModelRequest, flow: FlowLedger) -> Answer[BaseModel]:
        try:
            return await self._ask(request, flow)
        except ModelFallback as exc:
            metrics.MODEL_FALLBACKS.labels(request.prompt_id, exc.reason).inc()
            log.warning(
                "model_fallback", prompt=request.prompt_id, reason=exc.reason, error=str(exc)
            )
            raise

    async def _ask(self, request: ModelRequest, flow: FlowLedger) -> Answer[BaseModel]:
        key = cache_key(request, self.port.backend, self.port.model_id)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                try:
                    output = request.output_model.model_validate(cached)
                except ValidationError:
                    pass  # the output model changed since: ask again
                else:
                    metrics.MODEL_CACHE_HITS.labels(request.prompt_id).inc()
                    return Answer(output, from_cache=True, model_id=self.port.model_id)
        estimate = request.estimated_tokens()
        if not flow.reserve(estimate):
            raise ModelFallback(
                "budget_exhausted",
                f"this analysis's token budget ({flow.token_limit}) cannot cover ~{estimate}",
            )
        day = self.day_budget.reserve(estimate)
        if day is None:
            flow.release(estimate)
            raise ModelFallback(
                "budget_exhausted", f"today's token budget ({self.day_budget.limit}) is spent"
            )
        try:
            reply = await self._call_with_retries(request, flow)
        except BaseException:
            flow.release(estimate)
            self.day_budget.release(day, estimate)
            raise
        cost = self.config.prices.cost(reply.tokens_in, reply.tokens_out)
        flow.settle(estimate, reply, cost)
        self.day_budget.settle(day, estimate, reply.tokens_in + reply.tokens_out, cost)
        metrics.MODEL_TOKENS.labels(request.prompt_id, "in").inc(reply.tokens_in)
        metrics.MODEL_TOKENS.labels(request.prompt_id, "out").inc(reply.tokens_out)
        metrics.MODEL_COST.labels(request.prompt_id).inc(cost)
        try:
            output = request.output_model.model_validate(reply.tool_input)
        except ValidationError as exc:
            metrics.MODEL_CALLS.labels(request.prompt_id, self.backend, "invalid_output").inc()
            problem = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise ModelFallback(
                ModelOutputInvalid.reason,
                f"answer fails the {request.output_model.__name__} schema at {where}: "
                f"{problem['msg']}",
            ) from None
        if self.cache is not None:
            self.cache.put(
                key,
                request.prompt_id,
                reply.model_id,
                reply.tool_input,
                reply.tokens_in,
                reply.tokens_out,
            )
        return Answer(
            output,
            from_cache=False,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            model_id=reply.model_id,
        )

    async def _call_with_retries(self, request: ModelRequest, flow: FlowLedger) -> ModelReply:
        policy = self.config.policy
        attempt = 0
        while True:
            remaining = flow.remaining_s()
            if remaining <= 0:
                raise ModelFallback("deadline", "this analysis's model time is used up")
            timeout = min(self.config.timeout_s, remaining)
            started = time.perf_counter()
            try:
                reply = await self.breaker.call(self._timed, request, timeout)
            except CircuitOpenError as exc:
                raise ModelFallback("breaker_open", str(exc)) from None
            except ModelError as exc:
                metrics.MODEL_CALLS.labels(request.prompt_id, self.backend, exc.reason).inc()
                attempt += 1
                if not exc.retryable or attempt >= policy.max_attempts:
                    raise ModelFallback(exc.reason, str(exc)) from None
                delay = min(
                    max(policy.delay(attempt - 1), exc.retry_after_s or 0.0), policy.max_delay_s
                )
                if delay >= flow.remaining_s():
                    raise ModelFallback(exc.reason, f"{exc} (no time left to retry)") from None
                log.info(
                    "model_retry",
                    prompt=request.prompt_id,
                    reason=exc.reason,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                )
                await self._sleep(delay)
                continue
            except Exception as exc:  # an adapter bug must not take the flow down
                metrics.MODEL_CALLS.labels(request.prompt_id, self.backend, "error").inc()
                raise ModelFallback("error", f"{type(exc).__name__}: {exc}") from None
            finally:
                metrics.MODEL_LATENCY.labels(request.prompt_id, self.backend).observe(
                    time.perf_counter() - started
                )
            metrics.MODEL_CALLS.labels(request.prompt_id, self.backend, "ok").inc()
            return reply

    async def _timed(self, request: ModelRequest, timeout_s: float) -> ModelReply:
        try:
            async with asyncio.timeout(timeout_s):
                return await self.port.complete(request)
        except TimeoutError:
            raise ModelTimeout(f"no answer within {timeout_s:.1f} s") from None

    async def close(self) -> None:
        await self.port.close()
