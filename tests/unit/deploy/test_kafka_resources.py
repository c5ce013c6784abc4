"""Strimzi KafkaTopics and KafkaUsers: every topic with its DLQ twin, least-privilege ACLs."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.settings import TopicNames, dlq_topic
from tests.unit.deploy.tooling import OVERLAYS, by_name, of_kind, render_overlay

TOPICS = TopicNames()

# Who reads and who writes what (the pipeline of the architecture guide). Consumers also
# write the DLQ twin of each topic they consume; that is added below, not listed here.
READS: dict[str, list[str]] = {
    "data-agent": [TOPICS.triggers],
    "decision-agent": [TOPICS.datasets],
    "execution-agent": [TOPICS.decisions, TOPICS.action_results],
    "webhook-processor": [TOPICS.actions],
    "ingress": [TOPICS.flow_results],
    "scheduler": [],
    "dlq-replay": [dlq_topic(t) for t in TOPICS.consumed()],
    "console": [dlq_topic(t) for t in TOPICS.consumed()],  # its dead-letter replays
}
WRITES: dict[str, list[str]] = {
    "data-agent": [TOPICS.datasets],
    "decision-agent": [TOPICS.decisions],
    "execution-agent": [TOPICS.actions, TOPICS.flow_results],
    "webhook-processor": [TOPICS.action_results],
    "ingress": [TOPICS.triggers],
    "scheduler": [TOPICS.triggers],
    "dlq-replay": TOPICS.consumed(),
    "console": TOPICS.consumed(),
}


def expected_writes(user: str) -> set[str]:
    dead_letters = {dlq_topic(t) for t in READS[user] if t in TOPICS.consumed()}
    return set(WRITES[user]) | dead_letters


def acl_topics(user: dict[str, Any], operation: str) -> set[str]:
    return {
        acl["resource"]["name"]
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == "topic" and operation in acl["operations"]
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_kafka_topic_for_every_topic_and_every_dlq(overlay: str) -> None:
    topics = {t["spec"]["topicName"]: t for t in of_kind(render_overlay(overlay), "KafkaTopic")}
    assert set(topics) == set(TOPICS.all_topics())
    for consumed in TOPICS.consumed():
        assert dlq_topic(consumed) in topics, f"{consumed} has no DLQ twin"
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "revops-kafka"
        replicas, min_isr = (
            topic["spec"]["replicas"],
            topic["spec"]["config"]["min.insync.replicas"],
        )
        # acks=all keeps working with one broker down only when min ISR < replicas (or == 1).
        assert min_isr == 1 or min_isr < replicas


def test_production_topics_survive_a_broker_loss() -> None:
    for topic in of_kind(render_overlay("prod"), "KafkaTopic"):
        assert topic["spec"]["replicas"] >= 3
        assert topic["spec"]["config"]["min.insync.replicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kafka_user_names_only_its_own_topics_and_group(overlay: str) -> None:
    users = by_name(render_overlay(overlay), "KafkaUser")
    assert set(users) == {f"revops-{name}" for name in READS}
    for name in READS:
        user = users[f"revops-{name}"]
        assert user["spec"]["authentication"]["type"] in {"scram-sha-512", "tls"}
        assert acl_topics(user, "Read") == set(READS[name]), name
        assert acl_topics(user, "Write") == expected_writes(name), name
        groups = {
            acl["resource"]["name"]
            for acl in user["spec"]["authorization"]["acls"]
            if acl["resource"]["type"] == "group"
        }
        expected_group = {f"revops.{name.replace('-', '_')}"} if READS[name] else set()
        assert groups == expected_group, name
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"]["type"] in {"topic", "group"}, name
            assert acl["resource"].get("patternType", "literal") == "literal", name
            assert "*" not in acl["resource"]["name"], name
            assert not {"All", "Alter", "Delete", "AlterConfigs"} & set(acl["operations"]), name


def test_each_consumer_may_dead_letter_what_it_consumes_and_replay_may_return_it() -> None:
    users = by_name(render_overlay("prod"), "KafkaUser")
    for consumed in TOPICS.consumed():
        readers = [n for n, u in users.items() if consumed in acl_topics(u, "Read")]
        assert len(readers) == 1, consumed
        assert dlq_topic(consumed) in acl_topics(users[readers[0]], "Write")
        assert dlq_topic(consumed) in acl_topics(users["revops-dlq-replay"], "Read")
        assert consumed in acl_topics(users["revops-dlq-replay"], "Write")


def test_every_workload_authenticates_as_an_existing_kafka_user() -> None:
    resources = render_overlay("prod")
    users = set(by_name(resources, "KafkaUser"))
    workloads = of_kind(resources, "Deployment") + of_kind(resources, "CronJob")
    for workload in workloads:
        spec = workload["spec"]
        if workload["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
        assert env["REVOPS_KAFKA_SASL_USERNAME"]["value"] in users, workload["metadata"]["name"]
