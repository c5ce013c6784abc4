"""Settings for every service, read from `REVOPS_*` environment variables (pydantic-settings).

The defaults are the embedded mode: a local broker on 127.0.0.1:19092, state and the demo
warehouse under `var/` in the project folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TopicNames(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVOPS_TOPIC_", extra="ignore")

    triggers: str = "revops.triggers"
    datasets: str = "revops.datasets"
    decisions: str = "revops.decisions"
    actions: str = "revops.actions"
    action_results: str = "revops.action-results"
    flow_results: str = "revops.flow-results"

    def consumed(self) -> list[str]:
        """Topics some service consumes; each has a `<topic>.dlq` twin."""
        return [self.triggers, self.datasets, self.decisions, self.actions, self.action_results]

    def all_topics(self) -> list[str]:
        return [*self.consumed(), self.flow_results, *(dlq_topic(t) for t in self.consumed())]

    def flow_ending_dlqs(self) -> list[str]:
        """DLQs whose dead letter ends its flow (no flow output follows): the trigger, its
        dataset or its decision was rejected. Senders watch these for their request."""
        return [dlq_topic(t) for t in (self.triggers, self.datasets, self.decisions)]


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVOPS_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    # Production clusters: SASL_SSL with SCRAM-SHA-512 (Strimzi KafkaUser) or SSL (mTLS).
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_SSL | SASL_PLAINTEXT
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    topic_partitions: int = 6
    # Consumer groups are `<prefix>.<service>`; two stacks sharing a cluster use two prefixes.
    consumer_group_prefix: str = "revops"
    topics: TopicNames = Field(default_factory=TopicNames)

    var_dir: Path = PROJECT_ROOT / "var"
    state_dir: Path | None = None
    # PostgreSQL DSN of the shared operational store (every replica of every service); unset:
    # one SQLite file per store under state_dir (the embedded default).
    database_url: str | None = Field(default=None, repr=False)
    warehouse_backend: str = "duckdb"  # duckdb | firebolt
    warehouse_path: Path | None = None
    # The data agent's embedded warehouse connection (DuckDB): buffer pool and threads.
    # Operators that can spill (joins, aggregates, sorts) use `<warehouse>.tmp` beyond it.
    # 64MB: the buffer pool keeps table blocks up to the limit, so on a 10,000-account
    # warehouse 256MB held ~30 MB more at the same CPU (docs/batch-pipeline.md).
    warehouse_memory_limit: str = "64MB"
    warehouse_threads: int = Field(default=1, ge=1)
    # How long the data agent keeps warehouse-wide statistics (how long won deals spent in
    # each stage) before reading them again; 0 reads them for every batch.
    warehouse_stats_ttl_s: float = Field(default=300.0, ge=0)
    # The data agent answers its subject reads from an SQLite copy of the embedded (DuckDB)
    # warehouse's subject tables, made at start-up under state_dir (warehouse/replica.py).
    warehouse_replica: bool = True
    rules_dir: Path = PROJECT_ROOT / "services" / "decision_agent" / "rules"
    routing_file: Path = PROJECT_ROOT / "services" / "execution_agent" / "routing.yaml"
    webhooks_file: Path = PROJECT_ROOT / "services" / "webhook_processor" / "webhooks.yaml"
    templates_dir: Path = PROJECT_ROOT / "services" / "webhook_processor" / "templates"
    outbox_dir: Path | None = None
    keys_dir: Path | None = None

    # Signed envelopes between agents (services.common.security).
    signing_enabled: bool = True
    auto_dev_keys: bool = True  # embedded default: create missing keys; off in production
    # `batch`: one signed Merkle root per flush and audience
    # (services/common/security/batch_signing.py); `record`: one token per produced record.
    # Consumers verify both kinds, so producers can switch during a rolling upgrade.
    signing_mode: Literal["record", "batch"] = "batch"

    # Reliability contract (seed defaults).
    max_attempts: int = 3
    retry_initial_delay_s: float = 0.5
    retry_max_delay_s: float = 30.0
    retry_jitter: float = 0.1
    breaker_failure_threshold: int = 5
    breaker_success_threshold: int = 3
    breaker_timeout_s: float = 60.0

    # Language model of the decision agent (services/decision_agent/model, docs/ai-layer.md):
    # call understanding and narratives only, never a score. "none" = deterministic path.
    model_backend: str = "none"  # none | bedrock | openai | recorded
    model_id: str = ""  # Bedrock model id, or the model name an OpenAI-compatible server knows
    model_inference_profile: str | None = None  # Bedrock inference profile id/ARN (invoked)
    model_region: str | None = None
    model_endpoint_url: str | None = None  # OpenAI-compatible base URL; Bedrock override
    model_api_key_secret: str = "model-api-key"  # OpenAI-compatible key; "" = no key
    model_aws_credentials_secret: str | None = None  # JSON keys; unset = AWS default chain
    model_temperature: float = 0.0
    model_max_tokens: int = 1024
    model_timeout_s: float = 30.0  # per model call
    model_max_attempts: int = 3  # throttling, timeouts, 5xx: retried with backoff
    model_retry_initial_delay_s: float = 1.0
    model_retry_max_delay_s: float = 20.0
    model_flow_deadline_s: float = 90.0  # all model work of one analysis
    model_tokens_per_flow: int = 40_000
    model_tokens_per_day: int = 5_000_000
    model_cache_ttl_s: float = 30 * 86400.0
    model_price_input_per_mtok: float = 0.0  # USD per million tokens, for the cost estimate
    model_price_output_per_mtok: float = 0.0
    model_recordings: Path | None = None  # the recorded backend replays this JSONL file
    model_record_to: Path | None = None  # append every live answer here (to replay later)
    model_max_calls: int = 6  # most recent customer calls read per analysis
    model_call_chars: int = 6000  # characters of one call given to the model
    model_concurrency: int = 4  # model calls of one analysis in flight at once
    prompts_dir: Path = PROJECT_ROOT / "services" / "decision_agent" / "prompts"
    knowledge_backend: str = "local"  # local (rule files + knowledge/) | bedrock
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    knowledge_base_id: str | None = None  # Bedrock Knowledge Bases id (knowledge_backend=bedrock)
    knowledge_top_k: int = 4

    batch_max_records: int = 500
    # A consumer's poll cap starts here and doubles while polls come back full, up to
    # batch_max_records (services/common/batch_size.py): small batches at light load.
    batch_min_records: int = Field(default=50, ge=1)
    # Batch signing: an output waits at most this long for others to share its signature
    # (a partition group's outputs are sent as soon as its handler returns).
    output_linger_ms: float = Field(default=3.0, ge=0)
    # How long one poll of a service's consumer waits for records. aiokafka returns as soon
    # as a fetch brings records, so a long wait adds no latency: it only sets how often an
    # idle consumer wakes up (5 ms polls plus FastStream's sleep after each empty one cost an
    # idle service ~3.6 % of a core; 200 ms, ~0.4 %).
    kafka_poll_wait_ms: int = Field(default=200, ge=1)
    # The consumer's fetch requests: the broker answers once it holds fetch_min_bytes for
    # the consumer or after fetch_max_wait_ms. Larger minimums mean fewer, fuller fetches
    # under load, at up to fetch_max_wait_ms more latency per stage at light load.
    kafka_fetch_min_bytes: int = Field(default=1, ge=1)
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=0)
    # The producer waits this long for more records to share a produce request (a consumed
    # batch's partition groups flush one after the other); once the runtime waits for the
    # acks it ends the wait (runtime.send_lingering_now). 0 made a single flow ~12 ms faster
    # and cost ~5 % of the sustained rate (docs/batch-pipeline.md, "Fourteenth round").
    kafka_linger_ms: int = Field(default=1, ge=0)
    # Offsets are committed at most this often (and always before partitions are revoked or
    # the consumer stops): a commit per batch cost ~0.5 ms of CPU per commit at light load,
    # and what a crash redelivers is skipped by idempotency key (services/common/offset_commits).
    # 0 commits after every batch.
    kafka_commit_interval_ms: int = Field(default=500, ge=0)
    # Batches of an embedded warehouse or store (the DuckDB file, the SQLite file) are read
    # and written in the event loop's thread instead of a worker thread: a hand-over costs
    # two cross-thread wake-ups, more than such a batch at light load (services/common/
    # worker_threads.py). Firebolt and PostgreSQL always use worker threads.
    embedded_work_inline: bool = True
    # Partitions of one consumed batch handled at once (each in offset order): overlaps the
    # I/O of one partition's records (queries, deliveries, acks) with another's.
    partition_concurrency: int = Field(default=6, ge=1)
    # Housekeeping inside each service (services.common.periodic). Idempotency keys are kept
    # longer than Kafka keeps records (7 days by default): a redelivered record must still
    # find its key.
    housekeeping_interval_s: float = 3600.0
    # How often the execution agent exports insight changes to the warehouse
    # (services/execution_agent/warehouse_export); 0 turns the job off.
    insights_export_interval_s: float = 60.0
    idempotency_retention_s: float = 8 * 86400.0
    # Delivery attempts are the audit trail of what was sent where: kept far longer.
    delivery_audit_retention_s: float = 90 * 86400.0
    # How long a stopping service waits for its Kafka clients to close (unacknowledged
    # records are given up on: their input offsets were not committed).
    stop_timeout_s: float = 15.0
    # How often each consumer measures its group's lag (revops_consumer_lag).
    lag_interval_s: float = 15.0
    metrics_host: str = "127.0.0.1"
    # `revops run`: the four services listen on this port and the next three.
    run_base_port: int = 9101
    # `revops run`: the web console's port (its own setting, so that stacks with other base
    # ports do not all reach for the same console port).
    console_port: int = 8090
    log_level: str = "INFO"
    log_format: str = "json"  # json | console

    @property
    def resolved_state_dir(self) -> Path:
        return self.state_dir or self.var_dir / "state"

    @property
    def embedded_warehouse(self) -> bool:
        """The warehouse is the DuckDB file (`REVOPS_WAREHOUSE_BACKEND`, any case), not a
        server (Firebolt)."""
        return self.warehouse_backend.lower() == "duckdb"

    @property
    def resolved_warehouse_path(self) -> Path:
        return self.warehouse_path or self.var_dir / "warehouse" / "demo.duckdb"

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir or self.var_dir / "keys"

    @property
    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.var_dir / "outbox"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
