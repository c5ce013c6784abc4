"""Compensating actions for steps that must not stand alone (the seed's compensating
transactions, run as action jobs because every effect here is an external delivery).

The rules come from `routing.yaml`; this module only decides, from the recorded results,
which of them apply. It is called once, when the last planned result arrives, inside the
transaction that records it (see `ExecutionRepository.record_result`).
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.actions import ActionJob, ActionResult, ActionStatus, DeliveryMode
from services.common.ids import derived_uuid
from services.execution_agent.executions import Compensation, ExecutionState
from services.execution_agent.routing import CompensationRule, RoutingRules

# A step "stood" when its effect happened or is certain to happen (queued for a digest).
STOOD = (ActionStatus.SUCCESS, ActionStatus.QUEUED)
# Compensating jobs come after every planned job in the ordering.
COMPENSATION_SEQUENCE_BASE = 10_000


def plan_compensations(state: ExecutionState, routing: RoutingRules) -> list[Compensation]:
    """One compensating job per (rule, step job that stood while a required companion failed)."""
    jobs_by_route: dict[str, list[ActionJob]] = {}
    for job in state.planned_actions:
        jobs_by_route.setdefault(str(job.context.get("route")), []).append(job)
    compensations: list[Compensation] = []
    for rule in routing.compensations:
        failed = [
            job
            for route in rule.requires
            for job in jobs_by_route.get(route, [])
            if _status(state, job) is ActionStatus.FAILED
        ]
        if not failed:
            continue
        for step in jobs_by_route.get(rule.step, []):
            if _status(state, step) in STOOD:
                job = _compensating_job(rule, step, failed, state, len(compensations))
                compensations.append(
                    Compensation(
                        rule=rule.name,
                        reason=rule.reason,
                        compensates=step.action_id,
                        failed=[f.action_id for f in failed],
                        job=job,
                    )
                )
    return compensations


def compensation_planner(routing: RoutingRules) -> Callable[[ExecutionState], list[Compensation]]:
    """The callable `ExecutionRepository.record_result(compensate=...)` expects."""
    return lambda state: plan_compensations(state, routing)


def _status(state: ExecutionState, job: ActionJob) -> ActionStatus | None:
    result = state.results.get(job.action_id)
    return result.status if result else None


def _compensating_job(
    rule: CompensationRule,
    step: ActionJob,
    failed: list[ActionJob],
    state: ExecutionState,
    index: int,
) -> ActionJob:
    step_result: ActionResult = state.results[step.action_id]
    action_id = str(derived_uuid("compensation", step.request_id, rule.name, step.action_id))
    return ActionJob(
        action_id=action_id,
        request_id=step.request_id,
        based_on=step.action_id,
        type=rule.action.type,
        channel=rule.action.channel,
        destination=rule.action.destination,
        template=rule.action.template,
        delivery_mode=DeliveryMode.IMMEDIATE,
        priority=step.priority,
        account_id=step.account_id,
        opportunity_id=step.opportunity_id,
        insight_id=step.insight_id,
        sequence=COMPENSATION_SEQUENCE_BASE + index,
        context={
            **step.context,
            "route": f"compensation:{rule.name}",
            "delivery_mode": DeliveryMode.IMMEDIATE.value,
            "compensation": {
                "rule": rule.name,
                "reason": rule.reason,
                "compensates": step.action_id,
                "step_response": step_result.response,
                "failed": [
                    {
                        "action_id": job.action_id,
                        "channel": job.channel.value,
                        "destination": job.destination,
                        "error": state.results[job.action_id].error,
                    }
                    for job in failed
                ],
            },
        },
    )
