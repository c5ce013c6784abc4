"""The Kafka client settings the peer shares with the project: copied, not imported (the peer
imports nothing from the product), and checked equal to the project's defaults by a test.
A module of its own: the stages run as `python -m bench.peer.stage`, and the load runner
importing the stage module for them would load it twice."""

MAX_RECORDS = 500  # the project's batch_max_records default
LINGER_MS = 1  # the project's kafka_linger_ms default (the load producers use it too)
# The project's kafka_commit_interval_ms default. The stages of the product's flow commit at most
# this often, as the project's services do; the four-stage yardstick commits after every
# batch, as issue 15 describes it.
COMMIT_INTERVAL_MS = 500
