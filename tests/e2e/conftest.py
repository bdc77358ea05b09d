"""End-to-end fixtures: the three simulators and ``vesagent run`` as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import free_port, metric_value, wait_until
from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.topology import VES_PASSWORD, VES_USER, extra_info, vesagent_config
from vesagent.sim.ves import VesCollectorSim

OWNER = "CloudOwner"


@dataclass
class World:
    """Simulators plus helpers to configure regions in A&AI."""

    aai: AaiSim
    openstack: OpenStackSim
    ves: VesCollectorSim

    def add_region(
        self,
        region: str,
        backlogs: list[dict[str, Any]],
        *,
        version: str = "v5",
        poll: float = 1,
        other_keys: dict[str, Any] | None = None,
    ) -> None:
        config = vesagent_config(self.ves.url, version, backlogs)
        config["poll_interval_default"] = poll
        self.aai.put_region(
            AaiSim.make_region(
                OWNER,
                region,
                extra_info=extra_info(config, **(other_keys or {})),
                keystone_url=self.openstack.keystone_url,
                username="admin",
                password="admin",
                project="admin",
            )
        )

    def set_config(
        self, region: str, backlogs: list[dict[str, Any]], version: str = "v5", poll: float = 1
    ) -> None:
        config = vesagent_config(self.ves.url, version, backlogs)
        config["poll_interval_default"] = poll
        self.aai.set_extra_info(OWNER, region, extra_info(config))

    def faults(self, source_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.ves.events()
            if e["commonEventHeader"]["domain"] == "fault"
            and (source_id is None or e["commonEventHeader"].get("sourceId") == source_id)
        ]


@pytest.fixture
def world() -> Iterator[World]:
    openstack = OpenStackSim(regions=("RegionOne", "RegionTwo")).start()
    ves = VesCollectorSim(username=VES_USER, password=VES_PASSWORD).start()
    aai = AaiSim().start()
    try:
        yield World(aai, openstack, ves)
    finally:
        for sim in (aai, openstack, ves):
            sim.stop()


@dataclass
class AgentProcess:
    """``vesagent run`` in a subprocess, with its stderr in a file for post-mortems."""

    env: dict[str, str]
    log_path: Path
    listen: str
    proc: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    def start(self) -> AgentProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vesagent", "run", *self.extra_args],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        wait_until(self._ready, 20, "agent /readyz")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.logs()}")
        try:
            return requests.get(self.url + "/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def logs(self) -> str:
        """Everything the agent wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float | None:
        """The agent's ``name`` on /metrics, summed over the samples with these labels."""
        return metric_value(self.url, name, labels)

    def polls(self, region: str, outcome: str = "ok") -> float:
        """Poll cycles of ``region`` with this outcome (``ok`` or ``error``) so far."""
        vimid = f"{OWNER}_{region}"
        return self.metric("vesagent_polls_total", vimid=vimid, outcome=outcome) or 0.0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


@pytest.fixture
def agent_factory(world: World, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def make(sync: float = 0.5, state_dir: Path | None = None, **env: str) -> AgentProcess:
        listen = f"127.0.0.1:{free_port()}"
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VESAGENT_")},
            "VESAGENT_AAI_URL": world.aai.url,
            "VESAGENT_AAI_SYNC_INTERVAL": str(sync),
            "VESAGENT_STATE_DIR": str(state_dir or tmp_path / "state"),
            "VESAGENT_LISTEN": listen,
            "VESAGENT_LOG_LEVEL": "debug",
            **env,
        }
        agent = AgentProcess(full_env, tmp_path / f"agent-{len(started)}.log", listen)
        started.append(agent)
        return agent.start()

    yield make
    for agent in started:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(5)
