"""The operator's first day, against the running stack: a rejected trigger reaches its
sender at once, `--wait` prints a summary line (JSON with --json), `revops dlq list` names
the request, and a plain Kafka client (kcat) that shares none of the project's code publishes
a raw trigger and reads its flow output, with the same correlation id in the Kafka header as
in the envelope."""

from __future__ import annotations

import subprocess
import time
import uuid

import orjson
import pytest

from services.common.security import AUTH_HEADER
from services.common.security.batch_signing import BATCH_PROOF_HEADER, BATCH_TOKEN_HEADER
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from tests.support.cli import run_revops
from tests.unit.deploy.tooling import require_tool

pytestmark = pytest.mark.kafka


def revops(stack, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """The `revops` command as a user runs it, pointed at the stack."""
    env = {
        "REVOPS_VAR_DIR": str(stack.var_dir),
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers,
    }
    return run_revops(env, *args, timeout_s=timeout_s)


def two_deals_of_different_accounts(stack) -> tuple[dict, dict]:
    warehouse = open_warehouse(stack.settings)
    try:
        deals = warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": 100})
    finally:
        warehouse.close()
    first = deals[0]
    other = next(d for d in deals if d["sf_account_id"] != first["sf_account_id"])
    return first, other


def test_a_rejected_trigger_is_reported_to_its_sender_and_listed_with_its_request(stack):
    deal, other = two_deals_of_different_accounts(stack)
    request_id = f"cli-rejected-{uuid.uuid4().hex[:8]}"
    # The opportunity belongs to another account: the data agent rejects the trigger.
    result = revops(
        stack,
        "trigger", "deal-quality",
        "--account-id", other["sf_account_id"],
        "--opportunity-id", deal["opportunity_id"],
        "--request-id", request_id,
        "--wait", "--timeout", "90",
    )  # fmt: skip
    assert result.returncode == 1
    assert "no flow output within" not in result.stderr  # it did not wait for the timeout
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("[rejected]")]
    assert line.startswith(f"[rejected] {request_id}: UNKNOWN_SUBJECT: ")
    assert "revops dlq show revops.triggers.dlq:" in line

    listed = revops(stack, "dlq", "list", "--topic", "revops.triggers", "--code", "UNKNOWN_SUBJECT")
    assert listed.returncode == 0, listed.stderr
    (row,) = [x for x in listed.stdout.splitlines() if request_id in x]
    assert "UNKNOWN_SUBJECT" in row


def test_wait_prints_one_summary_line_and_the_json_only_when_asked(stack):
    deal, _ = two_deals_of_different_accounts(stack)
    common = ["trigger", "deal-quality", "--account-id", deal["sf_account_id"],
              "--opportunity-id", deal["opportunity_id"], "--wait", "--timeout", "90"]  # fmt: skip
    plain = revops(stack, *common, "--request-id", f"cli-{uuid.uuid4().hex[:8]}")
    assert plain.returncode == 0, plain.stderr
    published, summary = plain.stdout.strip().splitlines()
    assert published.startswith("published request_id=cli-")
    assert summary.startswith(("[success] deal_quality", "[partial] deal_quality"))
    assert deal["opportunity_id"] in summary and "actions" in summary

    as_json = revops(stack, *common, "--request-id", f"cli-{uuid.uuid4().hex[:8]}", "--json")
    assert as_json.returncode == 0, as_json.stderr
    _, summary, *document = as_json.stdout.strip().splitlines()
    flow = orjson.loads("\n".join(document))
    assert flow["subject"]["opportunity_id"] == deal["opportunity_id"]
    assert summary.startswith(f"[{flow['status']}] deal_quality")


def test_a_foreign_kafka_client_publishes_a_trigger_and_reads_its_flow_output(stack):
    kcat = require_tool("kcat")
    bootstrap = stack.settings.kafka_bootstrap_servers
    deal, _ = two_deals_of_different_accounts(stack)
    request_id = f"kcat-{uuid.uuid4().hex[:8]}"
    trigger = {
        "trigger_type": "manual",
        "request_id": request_id,
        "parameters": {
            "account_id": deal["sf_account_id"],
            "opportunity_id": deal["opportunity_id"],
            "analysis_type": "deal_quality",
        },
    }
    subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", stack.settings.topics.triggers,
         "-k", deal["sf_account_id"]],
        input=orjson.dumps(trigger) + b"\n",
        capture_output=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    record = read_flow_output_with_kcat(
        kcat, bootstrap, stack.settings.topics.flow_results, request_id
    )
    envelope = orjson.loads(record["payload"])
    flow = envelope["payload"]
    assert flow["request_id"] == request_id
    assert flow["subject"]["opportunity_id"] == deal["opportunity_id"]
    assert flow["status"] in {"success", "partial"}
    headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
    assert headers["correlation_id"] == envelope["metadata"]["correlation_id"]
    # Signed by the execution agent, in the form of the stack's signing mode.
    signature = {AUTH_HEADER, BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER} & set(headers)
    if stack.settings.signing_mode == "batch":
        assert signature == {BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER}
    else:
        assert signature == {AUTH_HEADER}


def read_flow_output_with_kcat(
    kcat: str, bootstrap: str, topic: str, request_id: str, timeout_s: float = 90.0
) -> dict:
    """kcat -C reads the topic to its end (-e) as JSON envelopes (-J), until the flow
    output of `request_id` is there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = subprocess.run(
            [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        for line in result.stdout.splitlines():
            record = orjson.loads(line)
            payload = orjson.loads(record["payload"] or "null") or {}
            if payload.get("metadata", {}).get("request_id") == request_id:
                return record
        time.sleep(1.0)
    raise AssertionError(f"no flow output for {request_id} on {topic} in {timeout_s} s")


def test_deal_review_wait_follows_every_open_deal_to_its_end(stack):
    """`trigger deal-review --wait`: a plain progress line on a non-terminal stderr, then one
    summary line counting the review's flows by how they ended."""
    from services.common.stages import load_stage_model
    from services.data_agent.builders import open_opportunities

    warehouse = open_warehouse(stack.settings)
    try:
        deals = len(open_opportunities(warehouse, load_stage_model()))
    finally:
        warehouse.close()
    assert deals > 0
    rid = f"review-{uuid.uuid4().hex[:8]}"
    done = revops(stack, "trigger", "deal-review", "--request-id", rid, "--wait", "--timeout",
                  "400", timeout_s=450)  # fmt: skip
    assert done.returncode == 0, done.stderr
    published, summary = done.stdout.strip().splitlines()
    assert published == (
        f"published request_id={rid} to {stack.settings.topics.triggers} "
        f"({deals:,} open deal(s) to review)"
    )
    assert summary.startswith(f"{rid}: {deals:,} of {deals:,} deal flow(s) ended (")
    assert f"deal review: {deals:,} deals in " in done.stderr  # the plain progress's last line
