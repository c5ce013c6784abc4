"""Alert rules: promtool unit tests, one source of truth, runbook links, known metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

from contracts import AgentName
from tests.unit.deploy.tooling import (
    DEPLOY_DIR,
    EXPORTED_METRICS,
    metric_family,
    of_kind,
    render_overlay,
    require_tool,
)

ALERTS_FILE = DEPLOY_DIR / "prometheus" / "alerts.yaml"
# Minute-step cases, and day-long cases evaluated every 15 minutes to stay fast.
ALERTS_TEST_FILES = (
    DEPLOY_DIR / "prometheus" / "alerts.test.yaml",
    DEPLOY_DIR / "prometheus" / "alerts.daily.test.yaml",
)
RUNBOOK = DEPLOY_DIR / "RUNBOOK.md"
REQUIRED_ALERTS = {
    "RevopsDeadLetterQueueReceiving",
    "RevopsConsumerLagHigh",
    "RevopsCircuitBreakerOpen",
    "RevopsHighErrorRate",
    "RevopsNoFlowCompleted",
    "RevopsWebhookDeliveryFailureRate",
    "RevopsServiceDown",
    "RevopsHousekeepingFailing",
}
# PromQL words that look like metric names but are not.
PROMQL_WORDS = {
    "sum", "by", "max", "min", "rate", "increase", "or", "and", "unless", "offset", "absent",
    "vector", "service", "topic", "code", "breaker", "status", "channel", "destination",
    "partition", "task", "outcome",
}  # fmt: skip


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str, cwd: Path = DEPLOY_DIR / "prometheus") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rules_are_valid_promql() -> None:
    result = promtool("check", "rules", ALERTS_FILE.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", *(f.name for f in ALERTS_TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(ALERTS_TEST_FILES)


def test_promtool_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    original = ALERTS_FILE.read_text()
    assert "revops_consumer_lag) > 1000" in original
    (tmp_path / ALERTS_FILE.name).write_text(
        original.replace("revops_consumer_lag) > 1000", "revops_consumer_lag) > 5000")
    )
    shutil.copy(ALERTS_TEST_FILES[0], tmp_path / ALERTS_TEST_FILES[0].name)
    result = promtool("test", "rules", ALERTS_TEST_FILES[0].name, cwd=tmp_path)
    assert result.returncode != 0
    assert "RevopsConsumerLagHigh" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert names == REQUIRED_ALERTS
    cases = [
        case
        for path in ALERTS_TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for name in names:
        outcomes = [bool(c["exp_alerts"]) for c in cases if c["alertname"] == name]
        assert True in outcomes, f"{name} never shown firing"
        assert False in outcomes, f"{name} never shown quiet"


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_explains_itself_and_links_an_existing_runbook_section() -> None:
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip()
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "deploy/RUNBOOK.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no '{anchor}' section in RUNBOOK.md"
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_alerts_use_only_exported_metrics() -> None:
    for rule in alert_rules():
        expr = re.sub(r'"[^"]*"', "", rule["expr"])  # drop label values
        expr = re.sub(r"\[[^\]]*\]", "", expr)  # and range durations
        expr = re.sub(r"offset\s+\d+[smhdwy]", "", expr)  # and offsets
        words = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr)) - PROMQL_WORDS
        unknown = {w for w in words if metric_family(w) not in EXPORTED_METRICS}
        assert not unknown, f"{rule['alert']}: {unknown}"


def test_the_prometheus_rule_is_alerts_yaml() -> None:
    (rule,) = of_kind(render_overlay("prod"), "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS_FILE.read_text())["groups"]


def _test_groups() -> list[dict[str, Any]]:
    return [
        test for path in ALERTS_TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]
    ]


def test_every_counter_alert_fires_from_an_absent_series_and_from_zero() -> None:
    """A counter alert must see the first event of a series exported at 0 and of a series
    born at its first event (no zero export): each is shown firing in a test."""
    counter_alerts = {r["alert"] for r in alert_rules() if "_total" in r["expr"]}
    assert len(counter_alerts) >= 5
    for name in counter_alerts:
        starts = set()
        for test in _test_groups():
            fires = any(
                case["alertname"] == name and case["exp_alerts"] for case in test["alert_rule_test"]
            )
            if fires:
                starts |= {
                    str(series["values"]).split()[0][0]
                    for series in test["input_series"]
                    if "_total" in series["series"]
                }
        assert "_" in starts, f"{name}: no firing case from an absent series"
        assert "0" in starts, f"{name}: no firing case from a series exported at 0"


def test_alerts_do_not_depend_on_scrape_job_or_target_labels() -> None:
    for rule in alert_rules():
        assert not re.search(r"\b(job|instance|pod|namespace)\b", rule["expr"]), rule["alert"]


def test_service_down_covers_every_service_by_its_own_label() -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == "RevopsServiceDown"]
    named = set(re.findall(r'revops_service_info\{service="([a-z_]+)"\}', rule["expr"]))
    services = {
        AgentName.DATA_AGENT, AgentName.DECISION_AGENT, AgentName.EXECUTION_AGENT,
        AgentName.WEBHOOK_PROCESSOR, AgentName.INGRESS,
    }  # fmt: skip
    assert named == {s.value for s in services}


def test_the_service_monitor_keeps_the_services_own_labels() -> None:
    (monitor,) = of_kind(render_overlay("prod"), "ServiceMonitor")
    assert all(e.get("honorLabels") is True for e in monitor["spec"]["endpoints"])


def test_the_hpa_fallback_selects_lag_by_the_services_own_names() -> None:
    names = {a.value for a in AgentName}
    for hpa in of_kind(render_overlay("prod-hpa"), "HorizontalPodAutoscaler"):
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "External":
                selector = metric["external"]["metric"]["selector"]["matchLabels"]
                assert selector["service"] in names, hpa["metadata"]["name"]


def test_every_revops_metric_the_rules_may_use_is_really_exported() -> None:
    # Importing them registers the runtime's and the deliveries' metrics.
    import services.common.metrics
    import services.webhook_processor.metrics  # noqa: F401

    registered = {family.name for family in REGISTRY.collect()}
    # prometheus_client names a counter family without its `_total` suffix.
    registered |= {f"{name}_total" for name in registered}
    ours = {m for m in EXPORTED_METRICS if m.startswith("revops_")}
    assert ours <= registered, ours - registered
