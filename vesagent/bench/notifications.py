"""Notifications vs polling (issue 19), in one run: detection latency and Nova requests.

One ``vesagent run`` subprocess watches two regions of the Nova simulator with the same VMs
and backlog: ``Polled`` lists servers every ``interval`` (10 s), ``Notified`` has
``notifications`` on a private RabbitMQ (safety listing every 60 s). During the window random
VMs of both regions go to ERROR at random times; for ``Notified`` the change is also published
as Nova publishes it (oslo.messaging Notifier, messagingv2, a payload recorded on a real Nova).
Latency is the state change at the simulator -> the VES simulator's 202 (``received_at``);
Nova requests are counted by the simulator and scaled to an hour.

The VM backlog watches no hosts (``host_faults: false``): compute-host liveness keeps
``poll_interval`` with or without notifications (a dead host sends nothing), so it would add
the same ``os-services`` requests to both modes; a third region measures that case for the
notes. Needs ``rabbitmq-server`` and the repository's ``tests/`` (``make bench`` runs from the
repository): without them the figures are skipped, saying why.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import requests

from vesagent.bench.report import Figure
from vesagent.bench.scale import AgentProcess
from vesagent.bench.world import SimClock, aai_region, first_arrivals, percentile, wait_for
from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.ves import VesCollectorSim

POLLED, NOTIFIED, NOTIFIED_HOSTS = "Polled", "Notified", "NotifiedHosts"
FULL: dict[str, Any] = {"vms": 3000, "window": 60.0, "flips": 20, "safety": 60.0}
QUICK: dict[str, Any] = {"vms": 300, "window": 20.0, "flips": 10, "safety": 20.0}
API = "/api/multicloud/v0"


def _harness() -> tuple[Any, str | None]:
    try:
        # oslo.messaging's publisher pulls in eventlet and dnspython: their deprecations are noise.
        warnings.filterwarnings("ignore", message=r"(?s).*[Ee]ventlet is deprecated")
        warnings.filterwarnings("ignore", message="DSA is deprecated")
        from tests import rabbitmq  # the repository's private-broker harness
    except ImportError:
        return None, "run from the repository (tests/rabbitmq.py not importable)"
    return rabbitmq, rabbitmq.available()


def _extra(endpoint: str, interval: float, notif: dict[str, Any] | None, hosts: bool) -> str:
    config: dict[str, Any] = {
        "ves_subscription": {"endpoint": endpoint},
        "poll_interval_default": interval,
        "backlogs": [{"domain": "fault", "type": "vm", "tenant": "admin", "host_faults": hosts}],
    }
    if notif is not None:
        config["notifications"] = notif
    return json.dumps({"vesagent_config": config})


def _connected(agent: AgentProcess, region: str) -> bool:
    url = f"{agent.url}{API}/CloudOwner_{region}/vesagent"
    notif = requests.get(url, timeout=5).json().get("status", {}).get("notifications", {})
    return notif.get("state") == "connected"


def measure_notifications(
    vms: int = 3000,
    window: float = 60.0,
    flips: int = 20,
    interval: float = 10.0,
    safety: float = 60.0,
    quiet: float | None = None,
    seed: int = 11,
) -> tuple[list[Figure], dict[str, Any]]:
    """The two figures (latency p99, Nova requests per hour); empty when no broker."""
    # Two safety listings are due in this window, whatever the phase of the poll timer.
    quiet = 2 * safety + interval if quiet is None else quiet
    harness, missing = _harness()
    if missing:
        print(f" skipped: {missing}", end="")
        return [], {"skipped": missing}
    rng = random.Random(seed)
    regions = (POLLED, NOTIFIED, NOTIFIED_HOSTS)
    clock = SimClock()
    node = harness.RabbitNode().start()
    openstack = OpenStackSim(regions=regions, clock=clock)
    ves = VesCollectorSim()
    aai = AaiSim()
    for sim in (openstack, ves, aai):
        sim.start()
    workdir = tempfile.TemporaryDirectory(prefix="vesagent-bench-notif-")
    agent: AgentProcess | None = None
    publisher = harness.NovaPublisher(node.url)
    try:
        with clock.past():
            ids = {r: openstack.create_servers(r, vms) for r in regions}
        endpoint = f"{ves.url}/eventListener/v7"
        notif = {"transport_url": node.url, "safety_poll_interval": safety}
        extras = {
            POLLED: _extra(endpoint, interval, None, False),
            NOTIFIED: _extra(endpoint, interval, notif, False),
            NOTIFIED_HOSTS: _extra(endpoint, interval, notif, True),
        }
        tmp = Path(workdir.name)
        agent = AgentProcess.start(aai.url, tmp / "state", 1.0, tmp / "agent.log")
        aai.load(
            {"cloud-region": [aai_region(r, openstack.keystone_url, extras[r]) for r in regions]}
        )
        running = agent

        def tracked() -> bool:
            listed = running.regions()
            return len(listed) == len(regions) and all(
                r["tracked_servers"] == vms and r["last_poll_ok"] for r in listed
            )

        wait_for(tracked, 120, "every region tracked")
        wait_for(lambda: _connected(running, NOTIFIED), 30, "the listener connected")
        wait_for(lambda: _connected(running, NOTIFIED_HOSTS), 30, "the listener connected")

        plan = sorted(
            (rng.uniform(0.5, window - 0.5), region, vm)
            for region in regions
            for vm in rng.sample(ids[region], flips)
        )
        flipped: dict[str, tuple[str, float]] = {}
        before = {r: openstack.requests.total(f"/compute/{r}/") for r in regions}
        pause = threading.Event()
        w0 = time.monotonic()
        for offset, region, vm in plan:
            pause.wait(max(0.0, w0 + offset - time.monotonic()))
            openstack.set_status(region, vm, "ERROR")
            flipped[vm] = (region, time.time())
            if region != POLLED:
                body = openstack.server(region, vm)
                publisher.info("instance.update", harness.instance_update(body, "active", "error"))
        pause.wait(max(0.0, w0 + window - time.monotonic()))
        elapsed = time.monotonic() - w0
        used = {r: openstack.requests.total(f"/compute/{r}/") - before[r] for r in regions}

        received = wait_for(
            lambda: first_arrivals(ves, flipped), interval + 15, "every flipped VM's raise"
        )

        # A quiet period of one safety interval: the steady cost of each mode.
        quiet_before = {r: openstack.requests.total(f"/compute/{r}/") for r in regions}
        q0 = time.monotonic()
        pause.wait(quiet)
        quiet_elapsed = time.monotonic() - q0
        quiet_used = {
            r: openstack.requests.total(f"/compute/{r}/") - quiet_before[r] for r in regions
        }
    finally:
        publisher.close()
        if agent is not None:
            agent.stop()
        for sim in (aai, ves, openstack):
            sim.stop()
        node.stop()
        workdir.cleanup()

    lat = {
        r: [received[vm] - at for vm, (region, at) in flipped.items() if region == r]
        for r in regions
    }
    per_hour = {r: quiet_used[r] * 3600.0 / quiet_elapsed for r in regions}
    per_change = {r: used[r] / flips for r in regions}
    p50 = {r: percentile(lat[r], 0.5) for r in regions}
    p99 = {r: percentile(lat[r], 0.99) for r in regions}
    side = {"window_s": round(elapsed, 1), "flips_per_region": flips, "vms_per_region": vms}
    common = {**side, "interval_s": interval, "safety_poll_interval_s": safety}
    return [
        Figure(
            "notif_detection_latency_p99",
            f"Detection p99 with notifications (p50 {p50[NOTIFIED] * 1000:.0f} ms)",
            "s",
            p99[NOTIFIED],
            p99[POLLED],
            f"polling every {interval:g} s (same run, p50 {p50[POLLED]:.2f} s)",
            "<= 1 s and 10x lower",
            p99[NOTIFIED] <= 1.0 and p99[NOTIFIED] * 10 <= p99[POLLED],
            {
                **common,
                "notified_p50_s": round(p50[NOTIFIED], 3),
                "notified_p99_s": round(p99[NOTIFIED], 3),
                "polled_p50_s": round(p50[POLLED], 3),
                "polled_p99_s": round(p99[POLLED], 3),
                "with_host_checks_p99_s": round(p99[NOTIFIED_HOSTS], 3),
            },
        ),
        Figure(
            "notif_nova_requests_per_hour",
            "Nova requests/region/hour with notifications, quiet region",
            "req",
            per_hour[NOTIFIED],
            per_hour[POLLED],
            f"polling every {interval:g} s (same run)",
            "5x fewer",
            per_hour[NOTIFIED] * 5 <= per_hour[POLLED],
            {
                **common,
                "quiet_window_s": round(quiet_elapsed, 1),
                "notified_per_hour": round(per_hour[NOTIFIED]),
                "polled_per_hour": round(per_hour[POLLED]),
                "notified_with_host_checks_per_hour": round(per_hour[NOTIFIED_HOSTS]),
                "requests_per_change_notified": round(per_change[NOTIFIED], 2),
                "requests_per_change_polled_window": round(per_change[POLLED], 2),
                "note": "each change costs a doorbell poll (1 listing, 2 requests when it "
                "finds a change); host liveness (os-services) keeps poll_interval in both "
                "modes; response bytes are not counted by the simulator",
            },
        ),
    ], side
