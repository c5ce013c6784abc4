"""A minimal action job for the outbox tests of this folder."""

from __future__ import annotations

from contracts import ActionJob, ActionType, Channel


def slack_job(action_id: str, account_id: str, request_id: str = "req-1") -> ActionJob:
    return ActionJob(
        action_id=action_id,
        request_id=request_id,
        based_on="rec-1",
        type=ActionType.NOTIFICATION,
        channel=Channel.SLACK,
        destination="slack_deals",
        template="deal_alert",
        account_id=account_id,
    )
