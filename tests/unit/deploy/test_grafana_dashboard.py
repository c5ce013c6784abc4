"""The Grafana dashboard: valid JSON, valid PromQL, only exported metrics, required views."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy.tooling import DEPLOY_DIR, EXPORTED_METRICS, metric_family, require_tool

DASHBOARD = DEPLOY_DIR / "grafana" / "revops-dashboard.json"
# Grafana's own variables, replaced by a plain duration to check the PromQL offline.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def concrete(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_dashboard_identity_and_unique_panel_ids() -> None:
    board = dashboard()
    assert board["uid"] == "revops-overview"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    names = [v["name"] for v in board["templating"]["list"]]
    assert "datasource" in names
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": concrete(expr)}
                    for i, expr in enumerate(expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_expressions_use_only_exported_metrics() -> None:
    used = set()
    for expr in expressions():
        body = re.sub(r'"[^"]*"|\[[^\]]*\]|\{[^}]*\}', "", concrete(expr))
        used |= {
            w
            for w in re.findall(r"\b[a-z_]+(?:_[a-z]+)+\b", body)
            if w.startswith(("revops_", "kafka_"))
        }
        if re.search(r"\bup\b", body):
            used.add("up")
    unknown = {m for m in used if metric_family(m) not in EXPORTED_METRICS}
    assert not unknown
    assert len(used) >= 10


def test_required_views_are_present() -> None:
    joined = "\n".join(expressions())
    assert "rate(revops_flows_completed_total" in joined and "* 60" in joined  # per minute
    for quantile in ("0.5", "0.95", "0.99"):
        per_stage = rf"histogram_quantile\({quantile}, sum by \(le, service, stage\) "
        assert re.search(per_stage + r"\(rate\(revops_stage_seconds_bucket", joined), quantile
    assert "revops_consumer_lag" in joined
    assert "revops_messages_dead_lettered_total" in joined
    assert "revops_circuit_breaker_state" in joined
    assert "sum by (channel, status) (rate(revops_deliveries_total" in joined
    breaker = next(p for p in panels() if "revops_circuit_breaker_state" in p["targets"][0]["expr"])
    states = breaker["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {k: v["text"] for k, v in states.items()} == {
        "0": "closed",
        "1": "half-open",
        "2": "open",
    }
