"""The delivery engine: durable outbox in, one worker set per destination out.

`enqueue_batch` only stores a consumed batch of jobs (idempotently, keyed by action_id) in one
transaction, a savepoint per job, and wakes the destinations' workers, so the Kafka offsets can
be committed at once (`enqueue` is the same for one job). Each destination has its own lanes
(an account always maps to the same lane, so one account's jobs are delivered in order),
its own rate limiter, circuit breaker and retry policy: a destination that fails only
blocks its own lanes. A lane claims up to `CLAIM_BATCH` jobs in one statement, delivers them
in order, and writes their final states together (finishes.py). While its breaker is open
the jobs wait (up to `max_pending_age_s`) instead of burning retries, and attempts that
merely probe a half-open breaker are not counted, so a destination down for minutes gets its
backlog once it is back. Permanent
failures (unknown destination, template error, missing field, 4xx) are dead-lettered at
once; every final outcome is published as an ActionResult. HTTP destinations each keep their
own pool of keep-alive connections (at most one per lane), and results finished close
together are published in one call (`ResultBatcher`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiolimiter import AsyncLimiter

from contracts.actions import ActionJob, ActionResult, ActionStatus, Channel, DeliveryMode
from services.common.breaker import AsyncCircuitBreaker, CircuitOpenError
from services.common.records import Deferred
from services.common.retry import RetryPolicy
from services.common.settings import get_settings
from services.webhook_processor import metrics
from services.webhook_processor.channels import (
    Message,
    build,
    supports_digest,
    target_of,
    ticket_id_of,
)
from services.webhook_processor.config import (
    Destination,
    EmailSmtpDestination,
    OutboxFileDestination,
    WebhooksConfig,
    channel_of,
)
from services.webhook_processor.delivery_log import (
    CLAIM_LEASE_S,
    DELIVERED,
    FAILED,
    PENDING,
    Attempt,
    DeliveryLog,
    Finish,
    OutboxRow,
    lane_key,
)
from services.webhook_processor.egress import EgressDenied, EgressPolicy
from services.webhook_processor.finishes import FINISH_WINDOW_S, FinishBuffer, Finished
from services.webhook_processor.rendering import PermanentDeliveryError, TemplateRenderer
from services.webhook_processor.result_batches import ResultBatcher
from services.webhook_processor.specs import (
    DeliverySpec,
    EmailSpec,
    HttpRequestSpec,
    RetryableDeliveryError,
    SendOutcome,
)
from services.webhook_processor.transports import (
    EnvironmentProxies,
    HttpTransport,
    OutboxFileTransport,
    SmtpTransport,
)

PublishResults = Callable[[Sequence[ActionResult]], Awaitable[None]]
DeadLetter = Callable[[ActionJob, str, str], Awaitable[None]]

log = structlog.get_logger(__name__)

IDLE_POLL_S = 5.0  # lanes re-read the outbox this often, for rows other processes added
# Finished deliveries whose results are still being published; past this many the lanes
# wait, so a broker outage cannot pile up unbounded work in memory.
MAX_UNPUBLISHED = 1000
# Jobs a lane claims in one statement and then delivers one after another. More saves
# statements; fewer leaves more of a busy lane's jobs to the other replicas.
CLAIM_BATCH = 20


@dataclass
class _Lane:
    finishes: FinishBuffer  # its delivered jobs' final states, written together
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _DestinationRuntime:
    name: str
    config: Destination
    channel: str
    target: str
    retry: RetryPolicy
    breaker: AsyncCircuitBreaker
    breaker_poll_s: float
    limiter: AsyncLimiter
    timeout_s: float
    max_pending_age_s: float
    lanes: list[_Lane]
    outbox: OutboxFileTransport | None
    http: HttpTransport | None = None  # set by start(): this destination's connection pool
    paused_until: float = 0.0  # monotonic; set by 429 Retry-After, honoured by every lane

    def lane_for(self, key: str) -> _Lane:
        return self.lanes[lane_key(key) % len(self.lanes)]

    @property
    def sends_http(self) -> bool:
        return self.outbox is None and not isinstance(self.config, EmailSmtpDestination)


@dataclass(frozen=True)
class Intake:
    """A consumed job for `enqueue_batch`. Jobs sharing an `order_key` (their Kafka key) are
    stored in order; once one of them fails, the later ones are not attempted."""

    job: ActionJob
    replay: bool = False  # back from the DLQ: a failed job is tried again
    order_key: bytes | None = None


@dataclass(frozen=True)
class _Publication:
    """A result to publish; `action_id` names the outbox row to mark published after it."""

    result: ActionResult
    action_id: str | None


@dataclass
class _Stored:
    """What storing one job decided, acted on once the batch's transaction committed."""

    wake: _DestinationRuntime | None = None  # a pending row: count it, wake its lane
    account_id: str = ""
    failed: tuple[ActionJob, ActionResult, str, str] | None = None  # refused at intake
    queued: ActionResult | None = None  # a digest job: its "queued" result, every time
    counted: tuple[str, str, str] | None = None  # (destination, channel, status) for metrics


class DeliveryEngine:
    def __init__(
        self,
        config: WebhooksConfig,
        delivery_log: DeliveryLog,
        publish_results: PublishResults,
        dead_letter: DeadLetter,
        *,
        renderer: TemplateRenderer | None = None,
        outbox_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.log = delivery_log
        self._publish = publish_results
        self._results: ResultBatcher[_Publication] = ResultBatcher(self._flush_results)
        self._dead_letter = dead_letter
        self._renderer = renderer or TemplateRenderer()
        self._outbox_dir = outbox_dir or get_settings().resolved_outbox_dir
        self._egress = EgressPolicy(config.egress)
        self._smtp = SmtpTransport(self._egress)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._emitting: set[asyncio.Task[None]] = set()
        self._unpublished = asyncio.Semaphore(MAX_UNPUBLISHED)
        self._started = False
        self._destinations = {
            name: self._runtime(name, dest) for name, dest in config.destinations.items()
        }

    def _runtime(self, name: str, dest: Destination) -> _DestinationRuntime:
        breaker = self.config.breaker_policy(name)
        rate = self.config.rate_limit(name)
        outbox = None
        if isinstance(dest, OutboxFileDestination):
            outbox = OutboxFileTransport(dest.file or self._outbox_dir / f"{name}.jsonl", name)
        return _DestinationRuntime(
            name=name,
            config=dest,
            channel=channel_of(dest).value,
            target=target_of(dest),
            retry=self.config.retry_policy(name),
            breaker=AsyncCircuitBreaker(
                f"webhook:{name}",
                failure_threshold=breaker.failure_threshold,
                success_threshold=breaker.success_threshold,
                timeout_s=breaker.timeout_s,
            ),
            breaker_poll_s=min(max(breaker.timeout_s / 5, 0.02), 1.0),
            limiter=AsyncLimiter(rate.rate, rate.period_s),
            timeout_s=self.config.timeout_s(name),
            max_pending_age_s=self.config.max_pending_age_s(name),
            lanes=[
                _Lane(FinishBuffer(self.log, self._finished, FINISH_WINDOW_S))
                for _ in range(self.config.concurrency(name))
            ],
            outbox=outbox,
        )

    def breaker_state(self, destination: str) -> str:
        return self._destinations[destination].breaker.state

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume: publish results a crash left unpublished, fail rows for destinations no
        longer configured, then start every lane (which picks up its pending rows)."""
        if self._started:
            return
        self._stopping.clear()
        self._open_pools()
        await asyncio.gather(
            *(
                self._emit(
                    row.action_id, self._jobs_of(row), row.results(), row.error_code, row.error
                )
                for row in self.log.unpublished()
            )
        )
        for name in self.log.pending_destinations():
            if name not in self._destinations:
                await self._fail_orphans(name)
        for d in self._destinations.values():
            metrics.DELIVERY_PENDING.labels(d.name).set(self.log.pending_count(d.name))
            for index, lane in enumerate(d.lanes):
                task = asyncio.create_task(self._run_lane(d, index, lane), name=f"{d.name}#{index}")
                self._tasks.append(task)
        self._started = True

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful: an attempt in flight finishes (bounded by its timeout); waiting jobs stay
        pending in the outbox and are resumed by the next start."""
        self._stopping.set()
        for d in self._destinations.values():
            for lane in d.lanes:
                lane.wake.set()
        if self._tasks:
            _done, still = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        self._tasks.clear()
        for d in self._destinations.values():
            for lane in d.lanes:
                await lane.finishes.drain()
        if self._emitting:  # results still unpublished stay in the outbox for the next start
            _done, still = await asyncio.wait(set(self._emitting), timeout=timeout_s)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        for d in self._destinations.values():
            if d.http is not None:
                await d.http.close()
                d.http = None
        await asyncio.to_thread(self._smtp.close)
        self._started = False

    def _open_pools(self) -> None:
        """One keep-alive pool per HTTP destination, as many connections as it has lanes:
        each lane reuses its connection from job to job instead of opening one per job."""
        proxies = EnvironmentProxies.from_environment()
        for d in self._destinations.values():
            if d.sends_http:
                d.http = HttpTransport(self._egress, proxies, max_connections=len(d.lanes))

    # --- intake -----------------------------------------------------------------------------

    def _precheck(self, job: ActionJob) -> tuple[str, str] | None:
        d = self._destinations.get(job.destination)
        if d is None:
            known = ", ".join(sorted(self._destinations))
            return "unknown_destination", (
                f"destination {job.destination!r} is not in webhooks.yaml (known: {known})"
            )
        if job.channel.value != d.channel and not isinstance(d.config, OutboxFileDestination):
            return "channel_mismatch", (
                f"job channel {job.channel.value!r} but destination {d.name!r} is a "
                f"{d.channel} destination ({d.config.type})"
            )
        return None

    async def enqueue(self, job: ActionJob, *, replay: bool = False) -> None:
        """Store one job durably and return; delivery happens in the destination's lane.

        `replay`: the job comes back from the DLQ; if it had failed it is tried again (a
        delivered job is never sent twice: the outbox row keyed by action_id says so)."""
        [outcome] = await self.enqueue_batch([Intake(job, replay)])
        if outcome is not None:
            raise outcome

    async def enqueue_batch(self, intakes: Sequence[Intake]) -> list[BaseException | None]:
        """Store a consumed batch of jobs in ONE transaction (set-based; a savepoint per job
        when one fails: services/common/stores/batch.py), then wake the lanes and publish
        what intake itself decided (refusals, "queued" digest results). Returns per job
        None (stored, or already stored) or the exception that rolled its writes back
        (`Deferred` for later jobs of a failed job's order key).

        Raises StoreUnavailableError when the database is out of reach (nothing stored), and
        whatever publishing raised (everything stored stays stored: a redelivery of the
        batch finds the rows and publishes again, as `enqueue` always did)."""
        outcomes = self._store_batch(intakes)
        stored = [o for o in outcomes if isinstance(o, _Stored)]
        for o in stored:
            if o.wake is not None:
                metrics.DELIVERY_PENDING.labels(o.wake.name).inc()
                o.wake.lane_for(o.account_id).wake.set()
        queued = [_Publication(o.queued, None) for o in stored if o.queued is not None]
        emits = [
            self._emit(job.action_id, [job], [result], code, message)
            for job, result, code, message in (o.failed for o in stored if o.failed is not None)
        ]
        if queued or emits:
            for done in await asyncio.gather(
                self._results.submit(queued), *emits, return_exceptions=True
            ):
                if isinstance(done, BaseException):
                    raise done
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    def _store_batch(self, intakes: Sequence[Intake]) -> list[_Stored | BaseException]:
        """Synchronous on purpose: nothing else on the event loop can slip a statement into
        the batch's transaction (the Database nests by thread). One transaction, all jobs
        at once; when one fails, again job by job so it fails alone
        (services/common/stores/batch.py)."""
        outcomes = self.log.in_one_transaction(
            intakes,
            self._store,
            # Unkeyed jobs wait for no other job.
            key_of=lambda intake: intake.order_key if intake.order_key is not None else id(intake),
            prepare=lambda batch: self.log.add_jobs(
                [i.job for i in batch if self._precheck(i.job) is None and not self._digest(i.job)]
            ),
        )
        for intake, o in zip(intakes, outcomes, strict=True):
            if isinstance(o, BaseException) and not isinstance(o, Deferred):
                log.warning("job_not_stored", action_id=intake.job.action_id, error=str(o))
        for o in outcomes:  # counted once committed: a rolled-back job counts nothing
            if isinstance(o, _Stored) and o.counted is not None:
                self._count(*o.counted)
        return outcomes

    def _digest(self, job: ActionJob) -> bool:
        """Whether the job waits for a digest (its destination must be known)."""
        d = self._destinations[job.destination]
        return job.delivery_mode != DeliveryMode.IMMEDIATE and supports_digest(d.config)

    def _store(self, intake: Intake) -> _Stored:
        job = intake.job
        problem = self._precheck(job)
        if problem is not None:
            code, message = problem
            if not self.log.add_job(job, status=FAILED):
                return _Stored()  # refused before: its result is out (or resumed at start)
            result = self._result(job, ActionStatus.FAILED, 0, error=f"{code}: {message}")
            self.log.finish(job.action_id, FAILED, [result], code, message)
            return _Stored(
                failed=(job, result, code, message),
                counted=(job.destination, job.channel.value, "failed"),
            )
        d = self._destinations[job.destination]
        if self._digest(job):
            # The "queued" result goes out on every (re)delivery of the job, not only the
            # first: a crash between queueing and the result's acknowledgement must not lose
            # it (the flow would wait for it forever); its idempotency key makes a repeat
            # harmless downstream.
            return _Stored(
                queued=self._result(
                    job, ActionStatus.QUEUED, 0, response={"digest": job.delivery_mode.value}
                ),
                counted=(d.name, d.channel, "queued") if self.log.queue_digest(job) else None,
            )
        stored = self.log.add_job(job) or (intake.replay and self.log.reopen_failed(job.action_id))
        return _Stored(wake=d if stored else None, account_id=job.account_id)

    async def flush_digests(
        self, mode: DeliveryMode | str, *, wait: bool = True, timeout_s: float = 120.0
    ) -> dict[str, str]:
        """Cut one digest per destination for `mode` (daily_digest | weekly_summary) and,
        with `wait`, return once each is delivered or failed: {digest_id: status}."""
        mode = DeliveryMode(mode)
        batches = self.log.cut_digests(mode.value)
        for b in batches:
            d = self._destinations.get(b.destination)
            if d is not None:
                metrics.DELIVERY_PENDING.labels(d.name).inc()
                d.lane_for(b.destination).wake.set()
        ids = [b.digest_id for b in batches]
        deadline = time.monotonic() + timeout_s
        while wait and time.monotonic() < deadline:
            if all(self.log.status(i) != PENDING for i in ids):
                break
            await asyncio.sleep(0.05)
        return {i: self.log.status(i) or "unknown" for i in ids}

    # --- lanes ------------------------------------------------------------------------------

    async def _run_lane(self, d: _DestinationRuntime, index: int, lane: _Lane) -> None:
        while not self._stopping.is_set():
            lane.wake.clear()
            try:
                # Before claiming: the jobs whose final states still wait are pending, and
                # still ours, so a claim would hand them out again.
                await lane.finishes.flush()
            except Exception:
                log.exception("finish_write_failed", destination=d.name, waiting=len(lane.finishes))
                await self._sleep(1.0)
                continue
            rows = self.log.next_pending_many(d.name, len(d.lanes), index, CLAIM_BATCH)
            if not rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), IDLE_POLL_S)
                continue
            await self._deliver_claimed(d, lane, rows)
        try:
            await lane.finishes.flush()
        except Exception:  # they stay pending: delivered again, with the same keys
            log.exception("finish_write_failed", destination=d.name, waiting=len(lane.finishes))

    async def _deliver_claimed(
        self, d: _DestinationRuntime, lane: _Lane, rows: list[OutboxRow]
    ) -> None:
        """Deliver a lane's claimed jobs in order, each finished (delivered, or failed for
        good) before the next one starts, so an account's jobs go out one after another. The
        rest of the claimed set waits for a new claim when stopping (handed back), when an
        error stopped a job (still ours: the next claim returns it first), or when half the
        claims' lease is gone (claiming them again renews it)."""
        renew_at = time.time() + CLAIM_LEASE_S / 2
        for n, row in enumerate(rows):
            if self._stopping.is_set():
                try:
                    self.log.release([r.action_id for r in rows[n:]])
                except Exception:  # their lease runs out instead
                    log.exception("claim_release_failed", destination=d.name)
                return
            if time.time() > renew_at:
                return
            try:
                await self._deliver(d, lane, row)
            except Exception:  # a bug must not kill the lane; the row stays pending
                log.exception("delivery_lane_error", destination=d.name, action_id=row.action_id)
                await self._sleep(1.0)
                return

    async def _sleep(self, seconds: float) -> None:
        """Sleep that ends early on stop()."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    @staticmethod
    def _jobs_of(row: OutboxRow) -> list[ActionJob]:
        return row.digest_jobs()[1] if row.kind == "digest" else [row.job()]

    def _message(self, d: _DestinationRuntime, row: OutboxRow) -> tuple[Message, list[ActionJob]]:
        if row.kind == "digest":
            mode, jobs = row.digest_jobs()
            return Message.for_digest(row.action_id, mode, d.name, jobs), jobs
        job = row.job()
        # A ticket update whose planner did not know the ticket's id yet: the opening job
        # went through this outbox first (same account, same lane), so its id is here.
        ticket_id = self.log.ticket_id(job.updates_ticket) if job.updates_ticket else None
        return Message.for_job(job, d.name, ticket_id), [job]

    async def _deliver(self, d: _DestinationRuntime, lane: _Lane, row: OutboxRow) -> None:
        msg, jobs = self._message(d, row)
        attempts = row.attempts
        last_error = row.error or ""
        while not self._stopping.is_set():
            age = time.time() - row.enqueued_at
            if age > d.max_pending_age_s:
                message = (
                    f"pending {age:.0f}s > max {d.max_pending_age_s:.0f}s "
                    f"(breaker {d.breaker.state}); last error: {last_error or 'none'}"
                )
                self._fail(d, lane, row, jobs, attempts, "max_pending_age_exceeded", message)
                return
            # Not "closed": this call, if the breaker lets it through, probes the destination.
            # (The breaker itself moves open -> half_open when a call is tried after its
            # timeout, so we always try and let CircuitOpenError tell us to wait.)
            probing = d.breaker.state != "closed"
            pause = d.paused_until - time.monotonic()
            if pause > 0:
                await self._sleep(pause)
                continue
            started = time.perf_counter()
            try:
                spec = build(d.config, msg, self._renderer)
                result = await d.breaker.call(self._send_guarded, d, spec, msg.idempotency_key)
                if isinstance(result, Exception):
                    raise result
            except CircuitOpenError:
                await self._sleep(d.breaker_poll_s)
                continue
            except PermanentDeliveryError as exc:
                latency = self._observe(d, started)
                error = f"{exc.code}: {exc.message}"
                attempt = Attempt(d.name, attempts + 1, "permanent_failure", None, latency, error)
                self._fail(d, lane, row, jobs, attempts + 1, exc.code, exc.message, attempt)
                return
            except RetryableDeliveryError as exc:
                latency = self._observe(d, started)
                last_error = f"{exc.code}: {exc.message}"
                counted = not probing or exc.code == "rate_limited"
                if counted:
                    attempts += 1
                    self.log.set_attempts(row.action_id, attempts)
                self.log.record_attempt(
                    row.action_id,
                    d.name,
                    attempts,
                    "retry" if counted else "probe_failed",
                    exc.status_code,
                    latency,
                    last_error,
                )
                self._count(d.name, d.channel, "retry")
                if attempts >= d.retry.max_attempts:
                    self._fail(
                        d,
                        lane,
                        row,
                        jobs,
                        attempts,
                        "retries_exhausted",
                        f"{attempts} attempts failed; last: {last_error}",
                    )
                    return
                if exc.retry_after_s is not None:
                    d.paused_until = time.monotonic() + exc.retry_after_s
                    continue
                if counted:
                    await self._sleep(d.retry.delay(attempts - 1))
                continue
            latency = self._observe(d, started)
            attempts += 1
            self._succeed(d, lane, row, jobs, attempts, result, latency)
            return

    async def _send_guarded(
        self, d: _DestinationRuntime, spec: DeliverySpec, key: str
    ) -> SendOutcome | Exception:
        """Runs inside the breaker: only outages raise (and count against the breaker); a
        rate limit or a rejection is returned, since the destination did answer."""
        try:
            async with d.limiter:
                return await self._send(d, spec, key)
        except EgressDenied as exc:
            return PermanentDeliveryError(exc.code, exc.message)
        except PermanentDeliveryError as exc:
            return exc
        except RetryableDeliveryError as exc:
            if exc.code == "rate_limited":
                return exc
            raise

    async def _send(self, d: _DestinationRuntime, spec: DeliverySpec, key: str) -> SendOutcome:
        if d.outbox is not None:
            return await d.outbox.send(spec, key)
        if isinstance(spec, EmailSpec):
            assert isinstance(d.config, EmailSmtpDestination)
            return await self._smtp.send(spec, d.timeout_s)
        assert isinstance(spec, HttpRequestSpec) and d.http is not None
        outcome = await d.http.send(spec, d.timeout_s)
        if d.config.type == "slack_api" and outcome.response.get("ok") is False:
            error = str(outcome.response.get("error", "unknown"))
            if error == "ratelimited":
                raise RetryableDeliveryError("rate_limited", "Slack API: ratelimited", 429)
            raise PermanentDeliveryError("slack_api_error", f"Slack API answered ok=false: {error}")
        return outcome

    # --- outcomes ---------------------------------------------------------------------------

    def _observe(self, d: _DestinationRuntime, started: float) -> float:
        elapsed = time.perf_counter() - started
        metrics.DELIVERY_SECONDS.labels(d.channel).observe(elapsed)
        return round(elapsed * 1000, 3)

    @staticmethod
    def _count(destination: str, channel: str, status: str) -> None:
        metrics.DELIVERIES.labels(channel, destination, status).inc()

    def _result(
        self,
        job: ActionJob,
        status: ActionStatus,
        attempts: int,
        *,
        response_code: int | None = None,
        response: dict[str, object] | None = None,
        error: str | None = None,
        latency_ms: float | None = None,
    ) -> ActionResult:
        d = self._destinations.get(job.destination)
        return ActionResult.of_job(
            job,
            d.target if d else "unknown",
            status,
            attempts=attempts,
            response_code=response_code,
            response=dict(response or {}),
            error=error,
            latency_ms=latency_ms,
        )

    def _succeed(
        self,
        d: _DestinationRuntime,
        lane: _Lane,
        row: OutboxRow,
        jobs: list[ActionJob],
        attempts: int,
        outcome: SendOutcome,
        latency_ms: float,
    ) -> None:
        response = dict(outcome.response)
        if row.kind == "digest":
            response["digest_id"] = row.action_id
        elif jobs[0].channel is Channel.TICKET and jobs[0].updates_ticket is None:
            ticket_id = ticket_id_of(d.config, response, row.action_id)
            if ticket_id is not None:  # the result carries it to the execution agent too
                response["ticket_id"] = ticket_id
                self.log.remember_ticket(row.action_id, d.name, ticket_id)
        results = [
            self._result(
                job,
                ActionStatus.SUCCESS,
                attempts,
                response_code=outcome.status_code,
                response=response,
                latency_ms=latency_ms,
            )
            for job in jobs
        ]
        # The successful attempt's row and the final state: written with the lane's others.
        attempt = Attempt(d.name, attempts, "success", outcome.status_code, latency_ms)
        lane.finishes.add(
            Finished(Finish(row.action_id, DELIVERED, results, attempt=attempt), jobs)
        )
        metrics.DELIVERY_PENDING.labels(d.name).dec()
        self._count(d.name, d.channel, "success")

    def _fail(
        self,
        d: _DestinationRuntime,
        lane: _Lane,
        row: OutboxRow,
        jobs: list[ActionJob],
        attempts: int,
        code: str,
        message: str,
        attempt: Attempt | None = None,
    ) -> None:
        """Fail the job for good; `attempt`: the one that failed it, if not logged yet."""
        results = [
            self._result(job, ActionStatus.FAILED, attempts, error=f"{code}: {message}")
            for job in jobs
        ]
        final = Finish(row.action_id, FAILED, results, code, message, attempt)
        lane.finishes.add(Finished(final, jobs))
        metrics.DELIVERY_PENDING.labels(d.name).dec()
        self._count(d.name, d.channel, "failed")
        log.warning(
            "delivery_failed", destination=d.name, action_id=row.action_id, code=code, error=message
        )

    async def _finished(self, finished: Finished) -> None:
        """A final state is written: publish its results (and dead-letter a failure's jobs)."""
        final = finished.final
        emit = self._emit(
            final.action_id, finished.jobs, final.results, final.error_code, final.error
        )
        await self._in_background(emit)

    async def _fail_orphans(self, destination: str) -> None:
        code = "unknown_destination"
        message = f"destination {destination!r} was removed from webhooks.yaml"
        while (row := self.log.next_pending(destination, 1, 0)) is not None:
            jobs = self._jobs_of(row)
            results = [
                self._result(j, ActionStatus.FAILED, row.attempts, error=f"{code}: {message}")
                for j in jobs
            ]
            self.log.finish(row.action_id, FAILED, results, code, message)
            await self._emit(row.action_id, jobs, results, code, message)

    async def _in_background(self, emit: Coroutine[Any, Any, None]) -> None:
        """Run an `_emit` in the background, so the lane goes on with its next job while the
        results wait for their flush (the outbox row keeps them until they are published,
        so a crash re-publishes them at the next start)."""
        await self._unpublished.acquire()
        task = asyncio.create_task(emit)
        self._emitting.add(task)
        task.add_done_callback(self._emitted)

    def _emitted(self, task: asyncio.Task[None]) -> None:
        self._emitting.discard(task)
        self._unpublished.release()

    async def _emit(
        self,
        action_id: str,
        jobs: list[ActionJob],
        results: list[ActionResult],
        code: str | None,
        message: str | None,
    ) -> None:
        """Dead-letter (on failure) and publish, retrying while the broker is unreachable;
        the outbox row keeps the results until they are published (and marked so by the
        flush that carried them), so a crash re-publishes."""
        delay = 0.5
        while True:
            try:
                if code is not None:
                    for job in jobs:
                        await self._dead_letter(job, code, message or "")
                await self._results.submit([_Publication(r, action_id) for r in results])
            except Exception:
                log.exception("result_publish_failed", action_id=action_id)
                if self._stopping.is_set():
                    return
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if not results:
                self.log.mark_published(action_id)
            return

    async def _flush_results(self, batch: list[_Publication]) -> None:
        """One publish call for the results that finished close together, then one write
        marking their outbox rows published."""
        await self._publish([p.result for p in batch])
        self.log.mark_published_many(list(dict.fromkeys(p.action_id for p in batch if p.action_id)))
