"""Console fixtures: the three simulators and one agent, in-process, shared by a test module.

The agent is built by ``build_agent`` and served by the same ``serve`` as ``vesagent run``; only
the process boundary is skipped, for speed (the browser tests need one agent per module, and
``vesagent run``'s own start-up is covered by tests/e2e).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, wait_until
from vesagent.agent import Agent, build_agent, shutdown
from vesagent.api import ApiServer, serve
from vesagent.history import HISTORY
from vesagent.settings import Settings
from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.topology import VES_PASSWORD, VES_USER, vesagent_config
from vesagent.sim.ves import VesCollectorSim

OWNER = "CloudOwner"


@dataclass
class Console:
    """The simulators, the running agent and the console's base URL."""

    aai: AaiSim
    openstack: OpenStackSim
    ves: VesCollectorSim
    agent: Agent
    server: ApiServer

    @property
    def url(self) -> str:
        return f"http://{self.server.effective_listen}/ui/"

    def config(self, backlogs: list[dict[str, Any]], poll: float = 1) -> dict[str, Any]:
        config = vesagent_config(self.ves.url, "v7", backlogs)
        config["poll_interval_default"] = poll
        return config

    def add_region(self, region: str, extra: str) -> None:
        self.aai.put_region(
            AaiSim.make_region(
                OWNER,
                region,
                extra_info=extra,
                keystone_url=self.openstack.keystone_url,
                username="admin",
                password="admin",
                project="admin",
            )
        )

    def stored(self, region: str) -> str | None:
        body = self.aai.region(OWNER, region)
        assert body is not None
        value = body.get("cloud-extra-info")
        return value if isinstance(value, str) else None

    def sync(self) -> None:
        assert self.agent.reconciler.sync()


def start_console(tmp: Path, **settings: Any) -> Console:
    """Simulators plus an in-process agent listening on a free loopback port."""
    openstack = OpenStackSim(regions=("RegionOne", "RegionTwo")).start()
    ves = VesCollectorSim(username=VES_USER, password=VES_PASSWORD).start()
    aai = AaiSim().start()
    agent = build_agent(
        Settings(
            aai_url=aai.url,
            state_dir=tmp / "state",
            listen=f"127.0.0.1:{free_port()}",
            aai_sync_interval=0.5,
            **settings,
        )
    )
    server = serve(agent)
    agent.sender.start()
    if agent.notifications is not None:  # as ``vesagent run`` does
        agent.notifications.start()
    threading.Thread(
        target=agent.reconciler.run, args=(agent.stop_event, 0.5), name="reconcile", daemon=True
    ).start()
    wait_until(lambda: agent.reconciler.ready, 10, "the first A&AI read")
    return Console(aai, openstack, ves, agent, server)


def stop_console(console: Console) -> None:
    shutdown(console.agent)
    console.server.close()
    for sim in (console.aai, console.openstack, console.ves):
        sim.stop()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    HISTORY.reset()
    running = start_console(tmp_path_factory.mktemp("console"))
    try:
        yield running
    finally:
        stop_console(running)
