from __future__ import annotations

from services.common.security.policy import topic_consumers, topic_producers
from services.common.settings import TopicNames


def test_every_consumed_topic_has_producers_and_a_consumer() -> None:
    topics = TopicNames()
    producers, consumers = topic_producers(topics), topic_consumers(topics)
    for topic in topics.consumed():
        assert "dlq_replay" in producers[topic]
        assert consumers[topic] not in producers[topic] - {"dlq_replay"}  # no self-loops
    assert producers[topics.datasets] == {"data_agent", "dlq_replay"}
    assert producers[topics.actions] == {"execution_agent", "dlq_replay"}
    assert consumers[topics.actions] == "webhook_processor"
    assert consumers[topics.action_results] == "execution_agent"


def test_renamed_topics_follow_configuration() -> None:
    topics = TopicNames(datasets="prod.datasets")
    assert topic_producers(topics)["prod.datasets"] == {"data_agent", "dlq_replay"}
    assert "revops.datasets" not in topic_producers(topics)
