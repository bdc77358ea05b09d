"""Opt-in (``make itest-image``): the agent from the built image, against the simulators.

``make itest-image`` builds the image (``make image``) and sets ``VESAGENT_ITEST_IMAGE`` and
``VESAGENT_ITEST_ENGINE``; without them every test here skips. The simulators run on the host's
127.0.0.1 and the container shares the host network, as an operator's smoke test would. The
container runs as the image's uid with a read-only root filesystem, like the Helm chart's pods.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import OWNER, World
from tests.helpers import free_port, wait_until
from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.topology import VES_PASSWORD, VES_USER
from vesagent.sim.ves import VesCollectorSim

IMAGE = os.environ.get("VESAGENT_ITEST_IMAGE", "")
# The engine command with its global options, e.g. "podman --runtime runc".
ENGINE = shlex.split(os.environ.get("VESAGENT_ITEST_ENGINE", "podman"))
# Extra `run` options the host needs (e.g. lower --ulimit values inside a sandbox).
RUN_ARGS = shlex.split(os.environ.get("VESAGENT_ITEST_RUN_ARGS", ""))

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="opt-in: `make itest-image` builds the image and sets VESAGENT_ITEST_IMAGE"
)


def engine(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the container engine (podman or docker)."""
    return subprocess.run(
        [*ENGINE, *args], capture_output=True, text=True, timeout=300, check=check
    )


@pytest.fixture
def world() -> Iterator[World]:
    openstack = OpenStackSim(regions=("RegionOne",)).start()
    ves = VesCollectorSim(username=VES_USER, password=VES_PASSWORD).start()
    aai = AaiSim().start()
    try:
        yield World(aai, openstack, ves)
    finally:
        for sim in (aai, openstack, ves):
            sim.stop()


@pytest.fixture
def container(world: World) -> Iterator[dict[str, Any]]:
    port = free_port()
    name = f"vesagent-itest-{port}"
    engine(
        "run", *RUN_ARGS, "--detach", "--name", name, "--network", "host", "--read-only",
        "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-e", f"VESAGENT_AAI_URL={world.aai.url}",
        "-e", "VESAGENT_AAI_SYNC_INTERVAL=1",
        "-e", f"VESAGENT_LISTEN=127.0.0.1:{port}",
        IMAGE,
    )  # fmt: skip
    try:
        yield {"name": name, "url": f"http://127.0.0.1:{port}"}
    finally:
        logs = engine("logs", name, check=False)
        print(logs.stdout[-4000:], logs.stderr[-4000:])  # shown when a test fails
        engine("rm", "--force", name, check=False)


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def test_image_keeps_its_healthcheck_and_runs_as_10001() -> None:
    """--format docker kept HEALTHCHECK; the image runs as uid 10001 and leaves the sims out."""
    (config,) = json.loads(engine("image", "inspect", IMAGE).stdout)
    # docker keeps it in Config, podman at the top level; an OCI-format build drops it.
    healthcheck = (config["Config"].get("Healthcheck") or config["Healthcheck"])["Test"]
    assert "/healthz" in " ".join(healthcheck)
    assert config["Config"]["User"].split(":")[0] == "10001"
    missing = engine(
        "run",
        *RUN_ARGS,
        "--rm",
        "--entrypoint",
        "python",
        IMAGE,
        "-c",
        "import vesagent.sim",
        check=False,
    )
    assert missing.returncode != 0 and "ModuleNotFoundError" in missing.stderr


def test_agent_from_the_image_reports_a_vm_fault(world: World, container: dict[str, Any]) -> None:
    """The containerised agent reads A&AI, polls Nova and delivers the fault to the collector;
    /healthz and the image's own HEALTHCHECK pass while it works."""
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.openstack.set_status("RegionOne", vm, "ERROR")
    world.add_region("RegionOne", [{"domain": "fault", "type": "vm", "tenant": "admin"}])
    wait_until(lambda: _status(container["url"] + "/readyz") == 200, 60, "the agent /readyz")
    assert _status(container["url"] + "/healthz") == 200
    wait_until(lambda: world.faults(vm), 60, f"the fault of {vm} from region {OWNER}_RegionOne")
    if os.path.basename(ENGINE[0]) == "podman":
        assert engine("healthcheck", "run", container["name"], check=False).returncode == 0
    uid = engine("exec", container["name"], "id", "-u").stdout.strip()
    assert uid == "10001"
