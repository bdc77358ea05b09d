"""``make demo``: the simulators, the agent as a real subprocess, and a cloud misbehaving.

Prints where everything listens, then every VES event the collector simulator accepts, while
it breaks and repairs things in both regions (v5 in RegionOne, v7 in RegionTwo): a VM fails
and recovers, a compute host dies and comes back, a VM's CPU crosses a threshold; heartbeats
and measurements flow meanwhile. Ctrl-C (or ``--cycles N``) stops it.
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
from collections.abc import Callable
from typing import Any

from vesagent.sim.topology import OWNER, World, start_world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def describe(event: dict[str, Any]) -> str:
    """One line per VES event, whatever its domain and version."""
    header = event["commonEventHeader"]
    detail = ""
    if "faultFields" in event:
        fault = event["faultFields"]
        detail = f"{fault['alarmCondition']} {fault['eventSeverity']}"
    elif "thresholdCrossingAlertFields" in event:
        tca = event["thresholdCrossingAlertFields"]
        detail = f"{tca['alertAction']} {tca['eventSeverity']}"
    else:
        block = event.get("measurementFields") or event.get("measurementsForVfScalingFields")
        if block and block.get("cpuUsageArray"):
            detail = f"cpu {block['cpuUsageArray'][0]['percentUsage']}%"
    return (
        f"{header['domain']:<24} {header['eventName']:<38} {header['sourceName']:<22} "
        f"{detail:<28} seq={header['sequence']}"
    )


def _scenarios(world: World) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
    """(what, break it, repair it) steps the demo cycles through."""
    os_ = world.openstack
    vm_one, vm_two = world.servers["RegionOne"][0], world.servers["RegionTwo"][-1]
    vdns = world.servers["RegionTwo"][0]
    return [
        (
            f"{OWNER}_RegionOne: {os_.server('RegionOne', vm_one)['name']} -> ERROR",
            lambda: os_.set_status(
                "RegionOne",
                vm_one,
                "ERROR",
                fault={"code": 500, "message": "demo: hypervisor lost the guest"},
            ),
            lambda: os_.set_status("RegionOne", vm_one, "ACTIVE"),
        ),
        (
            f"{OWNER}_RegionTwo: host compute-1 dies",
            lambda: os_.set_service("RegionTwo", "compute-1", up=False),
            lambda: os_.set_service("RegionTwo", "compute-1", up=True),
        ),
        (
            f"{OWNER}_RegionTwo: {os_.server('RegionTwo', vdns)['name']} CPU at 97%",
            lambda: os_.set_cpu("RegionTwo", vdns, 97),
            lambda: os_.set_cpu("RegionTwo", vdns, 12),
        ),
        (
            f"{OWNER}_RegionTwo: {os_.server('RegionTwo', vm_two)['name']} -> SHUTOFF",
            lambda: os_.set_status("RegionTwo", vm_two, "SHUTOFF"),
            lambda: os_.set_status("RegionTwo", vm_two, "ACTIVE"),
        ),
    ]


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
    print(f"console    http://{listen}/ui/   <- watch the story here", flush=True)
    print(f"A&AI       {world.aai.url}/aai/v13/cloud-infrastructure/cloud-regions  (AAI/AAI)")
    print(f"OpenStack  {world.openstack.keystone_url}  (admin/admin)")
    print(f"VES        {world.ves.url}/eventListener/v5|v7  (sample1/sample1)")
    print(f"agent      http://{listen}/metrics  /readyz  /api/multicloud/v0/vesagent")
    print(f"           vesagent status --url http://{listen}")
    print(f"state      {state}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    printed = 0

    def show_new(wait: float) -> None:
        nonlocal printed
        deadline = time.monotonic() + wait
        while not stop.is_set() and time.monotonic() < deadline:
            events = world.ves.events()
            for event in events[printed:]:
                print(f"    VES <- {describe(event)}", flush=True)
            printed = len(events)
            stop.wait(0.2)

    cycle = 0
    try:
        show_new(4)
        steps = _scenarios(world)
        while not stop.is_set() and (args.cycles == 0 or cycle < args.cycles):
            what, breaks, repairs = steps[cycle % len(steps)]
            cycle += 1
            print(f"\n>>> {what}", flush=True)
            breaks()
            show_new(7)
            print(">>> repaired", flush=True)
            repairs()
            show_new(7)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
        world.stop()
    domains = sorted({e["commonEventHeader"]["domain"] for e in world.ves.events()})
    print(f"\ndemo stopped; {printed} VES events received ({', '.join(domains)})", flush=True)
    return 0
