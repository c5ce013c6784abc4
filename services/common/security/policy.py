"""Who may produce to each topic and who consumes it: the data the verifier is built from.

The flow is fixed by the architecture (triggers -> datasets -> decisions -> actions ->
action-results -> flow-results), so this is a small table, not configuration. The DLQ replay
tool re-publishes failed records under its own identity, so it may produce to every topic.
Raw triggers come from outside (the Kafka ACL and the HTTP ingress authenticate them); the
ingress signs the triggers it accepts, so a consumer of triggers may choose to verify them.
"""

from __future__ import annotations

from contracts.common import AgentName
from services.common.settings import TopicNames


def topic_producers(topics: TopicNames) -> dict[str, set[str]]:
    """topic -> the services allowed as `iss` of records on it (the verifier's allow-list)."""
    producers = {
        topics.triggers: {AgentName.INGRESS.value},
        topics.datasets: {AgentName.DATA_AGENT.value},
        topics.decisions: {AgentName.DECISION_AGENT.value},
        topics.actions: {AgentName.EXECUTION_AGENT.value},
        topics.action_results: {AgentName.WEBHOOK_PROCESSOR.value},
        topics.flow_results: {AgentName.EXECUTION_AGENT.value},
    }
    return {topic: {*issuers, AgentName.DLQ_REPLAY.value} for topic, issuers in producers.items()}


def topic_consumers(topics: TopicNames) -> dict[str, str]:
    """topic -> the service that consumes it (the `aud` a producer signs for)."""
    return {
        topics.triggers: AgentName.DATA_AGENT.value,
        topics.datasets: AgentName.DECISION_AGENT.value,
        topics.decisions: AgentName.EXECUTION_AGENT.value,
        topics.actions: AgentName.WEBHOOK_PROCESSOR.value,
        topics.action_results: AgentName.EXECUTION_AGENT.value,
        topics.flow_results: AgentName.FLOW_OUTPUT.value,
    }
