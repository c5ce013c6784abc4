"""Find and run the external tools of the deployment tests (kustomize, promtool).

`deploy/tools/install-tools.sh` puts them in `<repo>/.cache/tools/bin` (or
`$REVOPS_TOOLS_DIR/bin`); a tool on PATH is used otherwise. In CI (`CI=true`) a missing tool
fails the test: a green run must mean the manifests were really rendered and checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
DEPLOY_DIR = REPO_ROOT / "deploy"
K8S_DIR = DEPLOY_DIR / "k8s"
OVERLAYS = ("dev", "prod", "prod-hpa")
INSTALL_HINT = "install it with: bash deploy/tools/install-tools.sh"


def _tools_bin_dir() -> Path:
    configured = os.environ.get("REVOPS_TOOLS_DIR")
    return (Path(configured) if configured else REPO_ROOT / ".cache" / "tools") / "bin"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Path of `name`; fails in CI and skips elsewhere when the tool is not installed."""
    local = _tools_bin_dir() / name
    found = str(local) if local.is_file() and os.access(local, os.X_OK) else shutil.which(name)
    if found:
        return found
    message = f"{name} not found in {_tools_bin_dir()} nor on PATH; {INSTALL_HINT}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@cache
def _render(kustomize: str, overlay: str) -> str:
    result = subprocess.run(
        [kustomize, "build", "--load-restrictor", "LoadRestrictionsNone", str(K8S_DIR / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kustomize build {overlay} failed:\n{result.stderr}")
    return result.stdout


def render_overlay(overlay: str) -> list[dict[str, Any]]:
    """The resources `kustomize build` gives for `deploy/k8s/overlays/<overlay>`.

    Rendered and parsed once per session: callers must not mutate the result (copy first).
    """
    return _parse(_render(require_tool("kustomize"), f"overlays/{overlay}"))


@cache
def _parse(text: str) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc]


def of_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind]


def by_name(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in of_kind(resources, kind)}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod template spec of a Deployment or a CronJob."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


# Metric families the services export (the issue's list) plus Prometheus' own `up` and
# kafka-exporter's lag; alerts and the dashboard may use nothing else.
EXPORTED_METRICS = frozenset(
    {
        "revops_messages_consumed_total",
        "revops_messages_produced_total",
        "revops_messages_failed_total",
        "revops_messages_dead_lettered_total",
        "revops_message_processing_seconds",
        "revops_batch_records",
        "revops_consumer_lag",
        "revops_circuit_breaker_state",
        "revops_flows_completed_total",
        "revops_flow_duration_seconds",
        "revops_stage_seconds",
        "revops_housekeeping_runs_total",
        "revops_service_info",
        "revops_deliveries_total",
        "revops_delivery_seconds",
        "revops_delivery_pending",
        "up",
        "kafka_consumergroup_lag",
    }
)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_family(name: str) -> str:
    """`revops_stage_seconds_bucket` -> `revops_stage_seconds`."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in EXPORTED_METRICS:
            return name.removesuffix(suffix)
    return name
