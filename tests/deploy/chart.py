"""Render the Helm chart with the real Helm engine and validate objects against Kubernetes schemas.

Helm comes from the ``helm-python-sdk`` wheel (PyPI): Helm's own Go SDK (``helm.sh/helm/v4``)
built as a shared library, so rendering and linting are Helm's, not an imitation. The Kubernetes
OpenAPI schemas come from ``kubernetes-validate``. Tests skip, naming the package, only where
the package cannot be installed (the Helm wheel exists for Linux x86_64 only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "vesagent"
VALUES_SETS = {
    path.name.removesuffix("-values.yaml"): path for path in (CHART / "ci").glob("*.yaml")
}
# Kubernetes versions the objects must be valid for: the oldest the chart supports
# (Chart.yaml kubeVersion), some in between, and the newest the schemas know.
KUBE_VERSIONS = ("1.27.0", "1.30.0", "1.33.0", "1.37.0")
RELEASE = "vesagent"
NAMESPACE = "onap"

helm: Any = pytest.importorskip(
    "helm_python", reason="helm-python-sdk (Helm's Go SDK) cannot be installed on this platform"
)
kubernetes_validate: Any = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed (make test installs it)"
)


def values_of(name: str) -> dict[str, Any]:
    """The values set deploy/helm/vesagent/ci/<name>-values.yaml."""
    loaded: dict[str, Any] = yaml.safe_load(VALUES_SETS[name].read_text(encoding="utf-8"))
    return loaded


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object ``helm template`` would print for these values (NOTES.txt left out)."""
    chart = helm.Chart.load(CHART)
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def render_error(values: dict[str, Any]) -> str:
    """The message Helm fails with for these values (fails the test if rendering succeeds)."""
    with pytest.raises(helm.HelmError) as raised:
        render(values)
    return str(raised.value)


def schema_errors(obj: dict[str, Any], version: str) -> str | None:
    """Why ``obj`` is invalid for Kubernetes ``version`` (strict: unknown fields fail), or None.

    Objects of custom resources (ServiceMonitor, PrometheusRule) have no built-in schema:
    they are checked by the tests that know them.
    """
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return None
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f"{obj['kind']} {obj['metadata']['name']} at {where}: {exc.message}"
    return None


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The only object of this kind."""
    found = by_kind(objects, kind)
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def container_env(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The agent container's ``env`` entries by name."""
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return {entry["name"]: entry for entry in container["env"]}
