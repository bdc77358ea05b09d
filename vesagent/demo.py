"""``make demo``: the simulators, the agent as a real subprocess, and a VM failing and recovering.

Prints where everything listens, then every VES event the collector simulator accepts, while
it breaks and repairs VMs in both regions (v5 in RegionOne, v7 in RegionTwo). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from vesagent.sim.topology import OWNER, start_world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _describe(event: dict[str, Any]) -> str:
    header = event["commonEventHeader"]
    fault = event.get("faultFields", {})
    return (
        f"{header['domain']:<9} {header['eventName']:<34} source={header['sourceName']:<8} "
        f"severity={fault.get('eventSeverity', '-'):<8} seq={header['sequence']} "
        f"eventId={header['eventId']}"
    )


def run_demo(args: argparse.Namespace) -> int:
    world = start_world()
    listen = f"127.0.0.1:{_free_port()}"
    state = tempfile.mkdtemp(prefix="vesagent-demo-")
    env = {
        **os.environ,
        "VESAGENT_AAI_URL": world.aai.url,
        "VESAGENT_AAI_SYNC_INTERVAL": "2",
        "VESAGENT_STATE_DIR": state,
        "VESAGENT_LISTEN": listen,
        "VESAGENT_LOG_FORMAT": "console",
    }
    agent = subprocess.Popen([sys.executable, "-m", "vesagent", "run"], env=env)
    print(f"A&AI       {world.aai.url}/aai/v13/cloud-infrastructure/cloud-regions")
    print(f"OpenStack  {world.openstack.keystone_url}")
    print(f"VES        {world.ves.url}/eventListener/v5|v7")
    print(f"agent      http://{listen}/metrics  /readyz  /api/multicloud/v0/vesagent")
    print(f"state      {state}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = 0
    cycle = 0
    try:
        scenarios = [
            ("RegionOne", world.servers["RegionOne"][0], "ERROR"),
            ("RegionTwo", world.servers["RegionTwo"][-1], "SHUTOFF"),
        ]
        while not stop.is_set() and (args.cycles == 0 or cycle < args.cycles):
            region, server_id, status = scenarios[cycle % len(scenarios)]
            cycle += 1
            name = world.openstack.server(region, server_id)["name"]
            for new_status in (status, "ACTIVE"):
                fault = {"code": 500, "message": "demo: hypervisor lost the guest"}
                print(f"\n>>> {OWNER}_{region}: {name} -> {new_status}", flush=True)
                world.openstack.set_status(
                    region, server_id, new_status, fault=fault if new_status == "ERROR" else None
                )
                deadline = time.monotonic() + 30
                while not stop.is_set() and time.monotonic() < deadline:
                    events = world.ves.events()
                    for event in events[seen:]:
                        print(f"    VES <- {_describe(event)}", flush=True)
                    grew = len(events) > seen
                    seen = len(events)
                    if grew:
                        break
                    stop.wait(0.2)
                stop.wait(3)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
        world.stop()
    print(f"\ndemo stopped; {seen} VES events received", flush=True)
    return 0
