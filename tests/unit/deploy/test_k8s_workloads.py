"""Rendered Kubernetes manifests: schema validity, hardening, wiring of every workload."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import kubernetes_validate
import pytest

from contracts.analysis_types import ANALYSIS_TYPES
from deploy.tools.sync_k8s import CONFIG_SOURCES, configmap_key, stale_files
from tests.unit.deploy.tooling import OVERLAYS, by_name, of_kind, pod_spec, render_overlay

KUBERNETES_VERSION = "1.33.0"
# Custom resources of operators the manifests rely on; kubernetes-validate has no schema for
# them, so their content is checked by the dedicated tests (Kafka, autoscaling, monitoring).
CUSTOM_KINDS = {
    "KafkaTopic",
    "KafkaUser",
    "ScaledObject",
    "TriggerAuthentication",
    "ServiceMonitor",
    "PrometheusRule",
}
SERVICE_PORTS = {
    "data-agent": 9101,
    "decision-agent": 9102,
    "execution-agent": 9103,
    "webhook-processor": 9104,
    "ingress": 8080,
    "console": 8090,
}
CONSUMERS = ("data-agent", "decision-agent", "execution-agent", "webhook-processor")
STATEFUL = ("execution-agent", "webhook-processor", "console")


def deployments(overlay: str) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"].removeprefix("revops-"): d
        for d in of_kind(render_overlay(overlay), "Deployment")
    }


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, workload["metadata"]["name"]
    result: dict[str, Any] = containers[0]
    return result


def env_of(workload: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container(workload).get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_resources_validate_against_the_kubernetes_schema(overlay: str) -> None:
    validated, problems = 0, []
    for resource in render_overlay(overlay):
        name = f"{resource['kind']}/{resource['metadata']['name']}"
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
            validated += 1
        except kubernetes_validate.SchemaNotFoundError:
            if resource["kind"] not in CUSTOM_KINDS:
                problems.append(f"{name}: no schema for this kind in {KUBERNETES_VERSION}")
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)
    assert validated >= 35  # every core kind: workloads, services, policies, config


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(deployments("prod")["data-agent"])
    container(deployment)["livenessProbes"] = container(deployment).pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_deployment_per_service_running_its_serve_command(overlay: str) -> None:
    found = deployments(overlay)
    assert set(found) == set(SERVICE_PORTS)
    for service, port in SERVICE_PORTS.items():
        main = container(found[service])
        assert main["args"] == ["serve", service]
        assert [p["containerPort"] for p in main["ports"]] == [port]
        assert pod_spec(found[service])["serviceAccountName"] == f"revops-{service}"
    accounts = by_name(render_overlay(overlay), "ServiceAccount")
    assert {f"revops-{s}" for s in SERVICE_PORTS} <= set(accounts)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_on_its_health_endpoints(overlay: str) -> None:
    for service, workload in deployments(overlay).items():
        main = container(workload)
        port_names = {p["name"]: p["containerPort"] for p in main["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = main[probe]["httpGet"]
            assert get["path"] == path, (service, probe)
            assert port_names[get["port"]] == SERVICE_PORTS[service], (service, probe)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_hardened_and_bounded(overlay: str) -> None:
    resources = render_overlay(overlay)
    workloads = of_kind(resources, "Deployment") + of_kind(resources, "CronJob")
    scheduled_jobs = sum(spec.is_job for spec in ANALYSIS_TYPES.values())
    # six services, a CronJob per scheduled job of the contracts, the suspended DLQ replay
    assert len(workloads) == 6 + scheduled_jobs + 1
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod, main = pod_spec(workload), container(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        security = main["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert "add" not in security["capabilities"], name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(main["resources"][bound]), (name, bound)
        volumes = {v["name"]: v for v in pod["volumes"]}
        tmp = [m for m in main["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_shipped(overlay: str) -> None:
    resources = render_overlay(overlay)
    assert of_kind(resources, "Secret") == []
    common = next(
        cm
        for cm in of_kind(resources, "ConfigMap")
        if cm["metadata"]["name"].startswith("revops-common")
    )
    secret_like = ("PASSWORD", "_SECRET", "TOKEN", "API_KEY", "CLIENT_ID")
    assert not [k for k in common["data"] if k.endswith(secret_like)]
    for workload in deployments(overlay).values():
        password = env_of(workload)["REVOPS_KAFKA_SASL_PASSWORD"]
        # The Secret the Strimzi User Operator writes for the workload's own KafkaUser.
        assert password["valueFrom"]["secretKeyRef"]["name"] == workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_state_lives_in_postgresql_in_prod_and_in_a_pod_volume_in_dev(overlay: str) -> None:
    found = deployments(overlay)
    for service in STATEFUL:
        workload = found[service]
        env = env_of(workload)
        state_dir = env["REVOPS_STATE_DIR"]["value"]
        mount = next(m for m in container(workload)["volumeMounts"] if m["mountPath"] == state_dir)
        volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
        assert "emptyDir" in volume  # scratch only: nothing a replica needs to share
        if overlay.startswith("prod"):
            assert workload["spec"].get("strategy", {}).get("type") != "Recreate"
            assert workload["spec"]["replicas"] == 3
    for service in (*CONSUMERS, "ingress", "console"):
        dsn = env_of(found[service]).get("REVOPS_DATABASE_URL")
        if overlay.startswith("prod"):
            assert dsn is not None, service
            assert dsn["valueFrom"]["secretKeyRef"] == {"name": "revops-database", "key": "url"}
        else:
            assert dsn is None  # dev: the embedded SQLite files
    if overlay.startswith("prod"):
        resources = render_overlay(overlay)
        assert of_kind(resources, "PersistentVolumeClaim") == []  # nothing pins a pod to a node
        [egress] = [
            p
            for p in of_kind(resources, "NetworkPolicy")
            if p["metadata"]["name"].endswith("allow-postgresql")
        ]
        [selector] = egress["spec"]["podSelector"]["matchExpressions"]
        assert set(selector["values"]) == {*CONSUMERS, "ingress", "console"}


@pytest.mark.parametrize("overlay", ("prod", "prod-hpa"))
def test_no_service_is_capped_at_one_replica(overlay: str) -> None:
    resources = render_overlay(overlay)
    bounds = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in of_kind(resources, "HorizontalPodAutoscaler")
    } | {
        s["spec"]["scaleTargetRef"]["name"]: s["spec"]["maxReplicaCount"]
        for s in of_kind(resources, "ScaledObject")
    }
    assert {f"revops-{s}" for s in (*CONSUMERS, "ingress")} <= set(bounds)
    assert all(high > 1 for high in bounds.values()), bounds


def test_the_cloudnative_pg_overlay_runs_the_database_and_hands_its_dsn_over() -> None:
    resources = render_overlay("prod-cnpg")
    [cluster] = of_kind(resources, "Cluster")
    assert cluster["spec"]["instances"] >= 3
    assert cluster["spec"]["bootstrap"]["initdb"]["localeCollate"] == "C"
    found = {
        d["metadata"]["name"].removeprefix("revops-"): d for d in of_kind(resources, "Deployment")
    }
    for service in (*CONSUMERS, "ingress", "console"):
        dsn = env_of(found[service])["REVOPS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert dsn == {"name": "revops-db-app", "key": "uri"}  # written by the operator


def test_config_maps_publish_every_rule_routing_webhook_and_template_file() -> None:
    assert stale_files() == [], "run: python -m deploy.tools.sync_k8s"
    resources = render_overlay("prod")
    configmaps = {
        cm["metadata"]["name"].rsplit("-", 1)[0]: cm for cm in of_kind(resources, "ConfigMap")
    }
    found = deployments("prod")
    for source in CONFIG_SOURCES:
        files = source.files()
        expected = {configmap_key(p.relative_to(source.folder)): p.read_text() for p in files}
        assert configmaps[source.configmap]["data"] == expected
        workload = found[source.deployment.removeprefix("revops-")]
        volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == source.volume)
        assert volume["configMap"]["name"] == configmaps[source.configmap]["metadata"]["name"]
        assert {i["path"] for i in volume["configMap"]["items"]} == {
            p.relative_to(source.folder).as_posix() for p in files
        }
        assert any(m["name"] == source.volume for m in container(workload)["volumeMounts"])


def test_cronjobs_publish_the_scheduled_triggers() -> None:
    cronjobs = by_name(render_overlay("prod"), "CronJob")
    fleet, deals = cronjobs["revops-fleet-scan"], cronjobs["revops-deal-review"]
    assert fleet["spec"]["schedule"] == "0 8 * * *"
    assert container(fleet)["args"] == ["trigger", "fleet-scan"]
    minute, hour, day_of_month, month, day_of_week = deals["spec"]["schedule"].split()
    assert (day_of_month, month) == ("*", "*") and day_of_week.isdigit()
    assert minute.isdigit() and hour.isdigit()
    assert container(deals)["args"] == ["trigger", "deal-review"]
    for job in (fleet, deals):
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert job["spec"].get("suspend") is False
        assert pod_spec(job)["serviceAccountName"] == "revops-scheduler"
    replay = cronjobs["revops-dlq-replay"]
    assert replay["spec"]["suspend"] is True
    assert container(replay)["args"] == ["dlq", "replay"]
    assert pod_spec(replay)["serviceAccountName"] == "revops-dlq-replay"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(overlay: str) -> None:
    resources = render_overlay(overlay)
    budgets = of_kind(resources, "PodDisruptionBudget")
    for workload in of_kind(resources, "Deployment"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, workload["metadata"]["name"]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "extend _selects for other operators"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _allowed(overlay: str, direction: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Rules of `direction` ('egress' or 'ingress') of the policies that select a pod."""
    rules: list[dict[str, Any]] = []
    for policy in of_kind(render_overlay(overlay), "NetworkPolicy"):
        if _selects(policy["spec"]["podSelector"], labels):
            rules.extend(policy["spec"].get(direction, []))
    return rules


def _egress_ports_to_public_internet(rules: list[dict[str, Any]]) -> set[int]:
    public = ipaddress.ip_address("1.1.1.1")
    ports: set[int] = set()
    for rule in rules:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block and public in ipaddress.ip_network(block["cidr"]):
                ports |= {p["port"] for p in rule["ports"]}
    return ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_only_what_each_service_needs(
    overlay: str,
) -> None:
    policies = of_kind(render_overlay(overlay), "NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(default_deny) == 1
    internet = {"webhook-processor"}
    warehouse = {"data-agent", "execution-agent", "console"}
    for service, workload in deployments(overlay).items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        egress = _allowed(overlay, "egress", labels)
        ports = {p["port"] for rule in egress for p in rule.get("ports", [])}
        assert {53, 9093} <= ports, service
        https = _egress_ports_to_public_internet(egress)
        expected = {443, 587} if service in internet else {443} if service in warehouse else set()
        assert https == expected, service
        assert all(rule.get("to") for rule in egress), f"{service}: egress rule without peers"
        ingress = _allowed(overlay, "ingress", labels)
        sources = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in ingress
            for peer in rule["from"]
        }
        assert sources == (
            {"monitoring", "ingress-nginx"} if service in ("ingress", "console") else {"monitoring"}
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_expose_metrics_and_the_servicemonitor_selects_them(overlay: str) -> None:
    resources = render_overlay(overlay)
    services = by_name(resources, "Service")
    (monitor,) = of_kind(resources, "ServiceMonitor")
    selector = monitor["spec"]["selector"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    for service, port in SERVICE_PORTS.items():
        svc = services[f"revops-{service}"]
        assert _selects(selector, svc["metadata"]["labels"])
        metrics = next(p for p in svc["spec"]["ports"] if p["name"] == "metrics")
        assert metrics["port"] == port
    for web in ("revops-ingress", "revops-console"):
        assert any(p["name"] == "http" for p in services[web]["spec"]["ports"])


def test_consumers_autoscale_on_lag_with_keda_in_prod_and_hpa_in_the_fallback() -> None:
    keda = render_overlay("prod")
    scaled = by_name(keda, "ScaledObject")
    assert set(scaled) == {f"revops-{s}" for s in CONSUMERS}
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] == name
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "kafka"
            expected_group = "revops." + name.removeprefix("revops-").replace("-", "_")
            assert trigger["metadata"]["consumerGroup"] == expected_group
    hpa = by_name(render_overlay("prod-hpa"), "HorizontalPodAutoscaler")
    assert {f"revops-{s}" for s in CONSUMERS} <= set(hpa)
    assert of_kind(render_overlay("prod-hpa"), "ScaledObject") == []
    for overlay in OVERLAYS:
        resources = render_overlay(overlay)
        hpa_targets = [
            h["spec"]["scaleTargetRef"]["name"]
            for h in of_kind(resources, "HorizontalPodAutoscaler")
        ]
        keda_targets = [
            s["spec"]["scaleTargetRef"]["name"] for s in of_kind(resources, "ScaledObject")
        ]
        assert not set(hpa_targets) & set(keda_targets), overlay
        assert len(hpa_targets + keda_targets) == len(set(hpa_targets + keda_targets)), overlay


def test_every_scheduled_job_of_the_contracts_has_a_cronjob() -> None:
    cronjobs = by_name(render_overlay("prod"), "CronJob")
    scheduled = {
        tuple(container(job)["args"])
        for job in cronjobs.values()
        if job["spec"].get("suspend") is False
    }
    jobs = [spec for spec in ANALYSIS_TYPES.values() if spec.is_job]
    assert jobs
    for spec in jobs:
        assert ("trigger", spec.command) in scheduled, spec.command
