"""The Helm chart, rendered by Helm for every values set in its ci/ folder, linted, and validated.

Each values set (minimal, SQLite, PostgreSQL, TLS) must render to objects valid against the
Kubernetes schemas of several versions; the tests then check what each mode promises: a
StatefulSet with one PVC per shard in SQLite mode, a Deployment with the database URL from a
Secret in PostgreSQL mode, credentials only through Secrets, egress only where it is needed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    ROOT,
    VALUES_SETS,
    by_kind,
    container_env,
    helm,
    one,
    render,
    render_error,
    schema_errors,
    values_of,
)

STATE_DIR = "/var/lib/vesagent"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(values_of(name)) for name in VALUES_SETS}


def test_every_values_set_exists() -> None:
    """The four values sets the issue names are in the chart's ci/ folder."""
    assert set(VALUES_SETS) >= {"minimal", "sqlite", "postgresql", "tls"}


@pytest.mark.parametrize("name", ["minimal", "sqlite", "postgresql", "tls"])
def test_values_set_lints_clean(name: str) -> None:
    """``helm lint --strict`` finds no warning or error with the values set."""
    report = helm.lint(CHART, values_of(name), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_lint_reports_a_broken_template(tmp_path: Path) -> None:
    """Lint is not a rubber stamp: a template with a YAML error is reported."""
    broken = tmp_path / "vesagent"
    broken.mkdir()
    for item in ("Chart.yaml", "values.yaml"):
        (broken / item).write_text((CHART / item).read_text(encoding="utf-8"), encoding="utf-8")
    (broken / "templates").mkdir()
    (broken / "templates" / "bad.yaml").write_text("kind: [unclosed\n", encoding="utf-8")
    report = helm.lint(broken, {}, strict=True)
    assert any(m["severity"] == 3 for m in report["messages"]) or report["errors"]


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(
    rendered: dict[str, list[dict[str, Any]]], version: str
) -> None:
    """Every object of every values set validates (strictly) against that version's schemas."""
    errors = [
        f"{name}: {error}"
        for name, objects in rendered.items()
        for obj in objects
        if (error := schema_errors(obj, version))
    ]
    assert not errors, "\n".join(errors)


def test_rendered_object_counts(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """What each values set deploys (the counts go in the deployment notes)."""
    kinds = {name: sorted(obj["kind"] for obj in objects) for name, objects in rendered.items()}
    minimal = "ConfigMap NetworkPolicy PodDisruptionBudget Secret Secret Service Service"
    assert kinds["minimal"] == sorted([*minimal.split(), "ServiceAccount", "StatefulSet"])
    assert "ServiceMonitor" in kinds["sqlite"] and "PrometheusRule" in kinds["sqlite"]
    assert "Deployment" in kinds["postgresql"] and "StatefulSet" not in kinds["postgresql"]
    for name, objects in rendered.items():
        names = [(o["kind"], o["metadata"]["name"]) for o in objects]
        assert len(names) == len(set(names)), f"{name}: duplicate objects"


def test_minimal_needs_only_the_aai_password() -> None:
    """Without an A&AI password (or Secret) the install fails naming the value to set."""
    message = render_error({})
    assert "credentials.aai.password" in message


def test_unknown_state_mode_is_refused() -> None:
    """A misspelt state mode fails naming the value and the modes that exist."""
    message = render_error({**values_of("minimal"), "state": {"mode": "postgres"}})
    assert "state.mode" in message and "sqlite, postgresql" in message


def test_postgresql_mode_needs_the_database_url() -> None:
    """PostgreSQL mode without a URL or Secret fails naming credentials.postgresql.url."""
    message = render_error({**values_of("minimal"), "state": {"mode": "postgresql"}})
    assert "credentials.postgresql.url" in message


def test_sqlite_shards_match_the_replica_count(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """SQLite: a StatefulSet whose VESAGENT_REPLICAS equals spec.replicas, a PVC per pod."""
    sts = one(rendered["sqlite"], "StatefulSet")
    env = container_env(sts)
    assert sts["spec"]["replicas"] == 3
    assert env["VESAGENT_REPLICAS"]["value"] == "3"
    index = env["VESAGENT_POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert index == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert "VESAGENT_SHARD" not in env and "VESAGENT_STATE_URL" not in env
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    headless = [s for s in by_kind(rendered["sqlite"], "Service") if s["spec"].get("clusterIP")]
    assert [s["metadata"]["name"] for s in headless] == [sts["spec"]["serviceName"]]


def test_postgresql_mode_is_a_deployment_with_the_url_from_a_secret(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """PostgreSQL: a Deployment of any size, URL and lease settings from Secret/ConfigMap."""
    objects = rendered["postgresql"]
    deployment = one(objects, "Deployment")
    env = container_env(deployment)
    assert deployment["spec"]["replicas"] == 3
    assert env["VESAGENT_STATE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "vesagent-postgres-url",
        "key": "url",
    }
    assert "VESAGENT_REPLICAS" not in env
    assert env["VESAGENT_AAI_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "onap-aai-vesagent"
    config = settings_of(objects)
    assert config["VESAGENT_LEASE_TTL"] == "20"
    assert config["VESAGENT_COMPLEX"] == "clli1,clli2"
    # The external Secrets are used, not created; the API credentials are generated.
    secrets = {s["metadata"]["name"] for s in by_kind(objects, "Secret")}
    assert secrets == {"vesagent-api-creds"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["state"]


def test_tls_mounts_the_ca_where_the_agent_reads_it(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """TLS: the CA Secret is mounted read-only at the path VESAGENT_AAI_CA_FILE names."""
    objects = rendered["tls"]
    workload = one(objects, "Deployment")
    config = settings_of(objects)
    assert config["VESAGENT_AAI_URL"].startswith("https://")
    assert config["VESAGENT_AAI_INSECURE"] == "false"
    pod = workload["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["ca"]["secret"]["secretName"] == "onap-ca-bundle"
    assert mounts["ca"]["readOnly"] is True
    ca_file = config["VESAGENT_AAI_CA_FILE"]
    assert ca_file == mounts["ca"]["mountPath"] + "/" + volumes["ca"]["secret"]["items"][0]["path"]
    url = base64.b64decode(
        next(s for s in by_kind(objects, "Secret") if s["metadata"]["name"].endswith("pg-url"))[
            "data"
        ]["url"]
    ).decode()
    assert f"sslrootcert={ca_file}" in url


def test_credentials_reach_the_pod_only_through_secrets(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """No password in a ConfigMap or a literal env value; API credentials always set."""
    for name, objects in rendered.items():
        workload = next(o for o in objects if o["kind"] in ("StatefulSet", "Deployment"))
        env = container_env(workload)
        for var in ("VESAGENT_AAI_PASSWORD", "VESAGENT_API_USERNAME", "VESAGENT_API_PASSWORD"):
            assert "secretKeyRef" in env[var]["valueFrom"], (name, var)
        assert all("PASSWORD" not in k for k in settings_of(objects)), name
        literal = json.dumps([e.get("value") for e in env.values()])
        assert "secret" not in literal.lower(), name
    read = container_env(one(rendered["sqlite"], "StatefulSet"))
    assert read["VESAGENT_API_READ_USERNAME"]["valueFrom"]["secretKeyRef"]["key"] == "login"
    assert "VESAGENT_API_READ_USERNAME" not in container_env(
        one(rendered["minimal"], "StatefulSet")
    )


def test_generated_api_password_is_random_and_given_ones_are_kept(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """A generated API password is long and random; a given one is used as is."""
    first = render(values_of("minimal"))
    generated = [
        base64.b64decode(
            one([s for s in objs if s["metadata"]["name"] == "vesagent-api-creds"], "Secret")[
                "data"
            ]["password"]
        )
        for objs in (first, rendered["minimal"])
    ]
    assert len(generated[0]) >= 24 and generated[0] != generated[1]
    given = next(
        s
        for s in by_kind(rendered["tls"], "Secret")
        if s["metadata"]["name"] == "vesagent-api-creds"
    )
    assert base64.b64decode(given["data"]["password"]) == b"tls-api-secret"


def test_pods_are_locked_down(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Non-root uid 10001, read-only root, no capabilities, no service account token."""
    for name, objects in rendered.items():
        workload = next(o for o in objects if o["kind"] in ("StatefulSet", "Deployment"))
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["automountServiceAccountToken"] is False, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {STATE_DIR, "/tmp"} <= mounts, name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        spread = pod["topologySpreadConstraints"][0]
        assert spread["labelSelector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]
    hard = one(rendered["sqlite"], "StatefulSet")["spec"]["template"]["spec"]["affinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in hard["podAntiAffinity"]


def settings_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The agent's settings ConfigMap (the dashboard ConfigMap is another one)."""
    (config,) = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == "vesagent"]
    data: dict[str, str] = config["data"]
    return data


def _egress_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


def test_network_policy_opens_only_what_each_mode_needs(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """Ingress from the named namespaces to the API port; egress to RabbitMQ and PostgreSQL
    only when notifications or PostgreSQL mode are on."""
    minimal = one(rendered["minimal"], "NetworkPolicy")
    (ingress,) = minimal["spec"]["ingress"]
    allowed = {
        f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for f in ingress["from"]
    }
    assert allowed == {"onap", "monitoring"}
    assert ingress["ports"] == [{"protocol": "TCP", "port": "http"}]
    assert {53, 8443, 5000, 8774} <= _egress_ports(minimal)
    assert not {5432, 5671, 5672} & _egress_ports(minimal)
    sqlite = one(rendered["sqlite"], "NetworkPolicy")
    rabbit = [r for r in sqlite["spec"]["egress"] if any(p["port"] == 5671 for p in r["ports"])]
    assert rabbit and rabbit[0]["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
    pg = one(rendered["postgresql"], "NetworkPolicy")
    to_db = [r for r in pg["spec"]["egress"] if any(p["port"] == 5432 for p in r["ports"])]
    assert to_db[0]["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "databases"
    }


def test_labels_follow_the_oom_and_kubernetes_conventions(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """Every object carries the recommended labels; selectors use only the stable ones."""
    for objects in rendered.values():
        for obj in objects:
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "vesagent", obj["kind"]
            assert labels["app.kubernetes.io/instance"] == "vesagent"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["helm.sh/chart"].startswith("vesagent-")
    selector = one(rendered["minimal"], "StatefulSet")["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/name": "vesagent",
        "app.kubernetes.io/instance": "vesagent",
    }
    image = one(rendered["minimal"], "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "nexus3.onap.org:10001/onap/vesagent:0.1.0"


def test_monitoring_objects_carry_the_shipped_rules_and_dashboard(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """PrometheusRule and the dashboard ConfigMap hold exactly deploy/prometheus and grafana."""
    objects = rendered["sqlite"]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/vesagent-rules.yaml").read_text("utf-8"))
    assert one(objects, "PrometheusRule")["spec"]["groups"] == rules["groups"]
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    dashboards = [
        c for c in by_kind(objects, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    (dashboard,) = dashboards
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((ROOT / "deploy/grafana/vesagent.json").read_text("utf-8"))
    assert json.loads(dashboard["data"]["vesagent.json"]) == shipped
    # With the ServiceMonitor on, the Service drops its scrape annotations (no double scrape).
    service = next(s for s in by_kind(objects, "Service") if "clusterIP" not in s["spec"])
    assert "prometheus.io/scrape" not in (service["metadata"].get("annotations") or {})


def test_chart_copies_of_rules_and_dashboard_are_identical() -> None:
    """files/ in the chart are byte copies of deploy/prometheus and deploy/grafana
    (refresh: cp deploy/prometheus/vesagent-rules.yaml deploy/grafana/vesagent.json ...)."""
    pairs = {
        "deploy/prometheus/vesagent-rules.yaml": "files/vesagent-rules.yaml",
        "deploy/grafana/vesagent.json": "files/vesagent-dashboard.json",
    }
    for source, copy in pairs.items():
        assert (ROOT / source).read_bytes() == (CHART / copy).read_bytes(), f"{copy} != {source}"


def test_plain_manifests_are_valid_kubernetes() -> None:
    """deploy/kubernetes (kubectl apply -k) validates against the same schemas."""
    for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not obj or obj.get("kind") == "Kustomization":
                continue
            for version in KUBE_VERSIONS:
                assert schema_errors(obj, version) is None, (path.name, version)
