"""The Kubernetes overlay of the PostgreSQL mode (``deploy/kubernetes-postgresql``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

OVERLAY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes-postgresql"


def text(name: str) -> str:
    return (OVERLAY / name).read_text()


def test_deployment_reads_the_state_url_from_a_secret_and_has_no_shard() -> None:
    """The URL (with its password) comes from a Secret; nothing pins a shard or a count."""
    deployment = re.sub(r"#.*", "", text("deployment.yaml"))
    assert "kind: Deployment" in deployment
    assert re.search(
        r"- name: VESAGENT_STATE_URL\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: vesagent-state"
        r"\n\s+key: url",
        deployment,
    )
    for pinned in ("VESAGENT_SHARD", "VESAGENT_REPLICAS", "VESAGENT_POD_INDEX", "postgresql://"):
        assert pinned not in deployment
    assert "readOnlyRootFilesystem: true" in deployment and "volumeClaimTemplates" not in deployment
    assert "name: vesagent-state" in text("secret-state.yaml")


def test_overlay_replaces_the_statefulset_and_adds_a_disruption_budget() -> None:
    """The SQLite StatefulSet is deleted from the base; a PDB keeps all but one replica up."""
    kustomization = text("kustomization.yaml")
    assert "- ../kubernetes" in kustomization
    assert re.search(
        r"\$patch: delete\n\s+apiVersion: apps/v1\n\s+kind: StatefulSet", kustomization
    )
    listed = set(re.findall(r"^  - (\S+\.yaml)$", kustomization, re.M))
    assert listed == {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"}
    assert "kind: PodDisruptionBudget" in text("pdb.yaml")
    assert "maxUnavailable: 1" in text("pdb.yaml")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_overlay_builds_with_kustomize() -> None:
    """``kubectl kustomize`` renders the overlay: a Deployment and a PDB, no StatefulSet."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    kinds = re.findall(r"^kind: (\S+)$", rendered.stdout, re.M)
    assert "Deployment" in kinds and "PodDisruptionBudget" in kinds
    assert "StatefulSet" not in kinds
