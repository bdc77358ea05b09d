"""A demo world for the simulators: two regions, a few tenants, about 20 VMs.

Used by ``vesagent sim`` and ``make demo``; end-to-end tests build their own, smaller worlds
with the same calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.ves import VesCollectorSim

OWNER = "CloudOwner"
REGIONS = ("RegionOne", "RegionTwo")
VES_USER, VES_PASSWORD = "sample1", "sample1"


@dataclass
class World:
    """The three running simulators and what was put in them."""

    aai: AaiSim
    openstack: OpenStackSim
    ves: VesCollectorSim
    servers: dict[str, list[str]]

    def stop(self) -> None:
        for sim in (self.aai, self.openstack, self.ves):
            sim.stop()


def vesagent_config(ves_url: str, version: str, backlogs: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``vesagent_config`` object pointing at the VES simulator."""
    return {
        "ves_subscription": {
            "endpoint": f"{ves_url}/eventListener/{version}",
            "username": VES_USER,
            "password": VES_PASSWORD,
        },
        "poll_interval_default": 2,
        "backlogs": backlogs,
    }


def extra_info(config: dict[str, Any], **other: Any) -> str:
    """A cloud-extra-info string holding ``config`` beside other systems' keys."""
    return json.dumps({**other, "vesagent_config": config})


def start_world(aai_port: int = 0, openstack_port: int = 0, ves_port: int = 0) -> World:
    """Start the three simulators and load the demo topology."""
    openstack = OpenStackSim(regions=REGIONS, port=openstack_port).start()
    ves = VesCollectorSim(username=VES_USER, password=VES_PASSWORD, port=ves_port).start()
    aai = AaiSim(port=aai_port).start()
    openstack.add_project("tenant-a")
    openstack.add_project("tenant-b")
    servers: dict[str, list[str]] = {}
    servers["RegionOne"] = openstack.create_servers(
        "RegionOne", 6, project="tenant-a", prefix="vfw"
    ) + openstack.create_servers("RegionOne", 4, project="tenant-b", prefix="vlb")
    servers["RegionTwo"] = openstack.create_servers(
        "RegionTwo", 6, project="tenant-a", prefix="vdns", host="compute-2"
    ) + openstack.create_servers("RegionTwo", 4, project="admin", prefix="onap")
    one = vesagent_config(
        ves.url,
        "v5",
        [
            {"domain": "fault", "type": "vm", "tenant": "tenant-a"},
            {"domain": "heartbeat", "type": "vim", "poll_interval": 20},
            {
                "domain": "measurement",
                "type": "vm",
                "tenant": "tenant-a",
                "source": "vfw-2",
                "poll_interval": 15,
            },
        ],
    )
    two = vesagent_config(
        ves.url,
        "v7",
        [
            {"domain": "fault", "type": "vm", "tenant": "tenant-a", "source": "vdns-1"},
            {"domain": "fault", "type": "vm", "tenant": "admin"},
            {"domain": "fault", "type": "host"},
            {"domain": "fault", "type": "vim"},
            {
                "domain": "tca",
                "type": "vm",
                "tenant": "tenant-a",
                "source": "vdns-1",
                "poll_interval": 3,
                "thresholds": [{"metric": "cpu.percentUsage", "above": 90, "severity": "MAJOR"}],
            },
        ],
    )
    for region, config in zip(REGIONS, (one, two), strict=True):
        aai.put_region(
            AaiSim.make_region(
                OWNER,
                region,
                extra_info=extra_info(config, **{"openstack-region-id": region}),
                keystone_url=openstack.keystone_url,
                username="admin",
                password="admin",
                project="admin",
            )
        )
    return World(aai, openstack, ves, servers)
