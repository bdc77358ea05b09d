"""Component fixtures: a REAL agent (built by ``build_agent``, its API served over HTTP, the
reconciler, pollers and sender running in-process) against the three simulators."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from tests.helpers import free_port
from vesagent.agent import Agent, build_agent, shutdown
from vesagent.api import serve
from vesagent.settings import Settings
from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.topology import VES_PASSWORD, VES_USER, extra_info, vesagent_config
from vesagent.sim.ves import VesCollectorSim

OWNER, REGION = "CloudOwner", "RegionOne"
VIMID = f"{OWNER}_{REGION}"
API_USER, API_PASSWORD = "ops", "s3cret-api-pw"
PREFIX = "/api/multicloud/v0"


@dataclass
class RealAgent:
    """A running agent and the simulators it talks to."""

    agent: Agent
    url: str
    aai: AaiSim
    openstack: OpenStackSim
    ves: VesCollectorSim

    def configure(self, *, ves_password: str = VES_PASSWORD) -> None:
        config = vesagent_config(
            self.ves.url, "v7", [{"domain": "fault", "type": "vm", "tenant": "admin"}]
        )
        config["poll_interval_default"] = 1
        config["ves_subscription"]["password"] = ves_password
        self.aai.set_extra_info(OWNER, REGION, extra_info(config))

    def get(self, path: str) -> Any:
        response = requests.get(self.url + PREFIX + path, auth=(API_USER, API_PASSWORD), timeout=5)
        response.raise_for_status()
        return response

    def collector_up(self) -> bool | None:
        """``collector_up`` of the region in ``GET /vesagent`` (None until it is listed)."""
        regions = self.get("/vesagent").json()["regions"]
        return regions[0]["collector_up"] if regions else None

    @property
    def endpoint(self) -> str:
        return f"{self.ves.url}/eventListener/v7"


@pytest.fixture(name="real")
def _real(tmp_path: Path) -> Iterator[RealAgent]:
    openstack = OpenStackSim(regions=(REGION,)).start()
    ves = VesCollectorSim(username=VES_USER, password=VES_PASSWORD).start()
    aai = AaiSim().start()
    aai.put_region(
        AaiSim.make_region(
            OWNER,
            REGION,
            extra_info=None,
            keystone_url=openstack.keystone_url,
            username="admin",
            password="admin",
            project="admin",
        )
    )
    settings = Settings(
        aai_url=aai.url,
        state_dir=tmp_path / "state",
        listen=f"127.0.0.1:{free_port()}",
        aai_sync_interval=0.5,
        api_username=API_USER,
        api_password=SecretStr(API_PASSWORD),
    )
    agent = build_agent(settings)
    server = serve(agent)
    agent.sender.start()
    loop = threading.Thread(target=agent.reconciler.run, args=(agent.stop_event, 0.5), daemon=True)
    loop.start()
    try:
        yield RealAgent(agent, f"http://{server.effective_listen}", aai, openstack, ves)
    finally:
        shutdown(agent)
        server.close()
        loop.join(5)
        for sim in (aai, openstack, ves):
            sim.stop()
