"""Notifications vs polling (issue 19), in one run: detection latency, Nova requests and bytes.

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
repository): without them the figures are skipped, saying why. Response bytes are the bodies
the simulator sent (its request log counts them).

``measure_watermark_bytes`` (in-process, no broker) shows the bytes before and after the
watermark moved to Nova's own clock: the same poller with the old 60 s overlap before the
agent's clock (a ``ServerCache`` parameter only this bench uses) as the baseline.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import threading
import time
import warnings
from datetime import timedelta
from pathlib import Path
from statistics import fmean as mean
from typing import Any

import requests

from vesagent.bench.report import Figure
from vesagent.bench.scale import AgentProcess
from vesagent.bench.world import (
    SimClock,
    aai_region,
    first_arrivals,
    old_servers,
    percentile,
    region_spec,
    wait_for,
)
from vesagent.pollers.openstack import ComputeClient
from vesagent.pollers.poller import RegionPoller
from vesagent.pollers.servers import FULL_EVERY, OVERLAP_OWN_CLOCK, ServerCache
from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.ves import VesCollectorSim
from vesagent.store import Store

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
        before_bytes = {r: openstack.requests.total_bytes(f"/compute/{r}/") for r in regions}
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
        used_bytes = {
            r: openstack.requests.total_bytes(f"/compute/{r}/") - before_bytes[r] for r in regions
        }

        received = wait_for(
            lambda: first_arrivals(ves, flipped), interval + 15, "every flipped VM's raise"
        )

        # A quiet period of one safety interval: the steady cost of each mode.
        quiet_before = {r: openstack.requests.total(f"/compute/{r}/") for r in regions}
        quiet_bytes_before = {r: openstack.requests.total_bytes(f"/compute/{r}/") for r in regions}
        q0 = time.monotonic()
        pause.wait(quiet)
        quiet_elapsed = time.monotonic() - q0
        quiet_used = {
            r: openstack.requests.total(f"/compute/{r}/") - quiet_before[r] for r in regions
        }
        quiet_bytes = {
            r: openstack.requests.total_bytes(f"/compute/{r}/") - quiet_bytes_before[r]
            for r in regions
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
    bytes_per_hour = {r: quiet_bytes[r] * 3600.0 / quiet_elapsed for r in regions}
    # The window with changes: what the same changes cost in each mode, scaled to an hour.
    busy_bytes_per_hour = {r: used_bytes[r] * 3600.0 / elapsed for r in regions}
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
                "modes",
            },
        ),
        Figure(
            "notif_nova_bytes_per_hour",
            "Nova response bytes/region/hour with notifications, quiet region",
            "B",
            bytes_per_hour[NOTIFIED],
            bytes_per_hour[POLLED],
            f"polling every {interval:g} s (same run)",
            "fewer",
            bytes_per_hour[NOTIFIED] < bytes_per_hour[POLLED],
            {
                **common,
                "quiet_window_s": round(quiet_elapsed, 1),
                "notified_bytes_per_hour": round(bytes_per_hour[NOTIFIED]),
                "polled_bytes_per_hour": round(bytes_per_hour[POLLED]),
                "notified_with_host_checks_bytes_per_hour": round(bytes_per_hour[NOTIFIED_HOSTS]),
                "with_changes_notified_bytes_per_hour": round(busy_bytes_per_hour[NOTIFIED]),
                "with_changes_polled_bytes_per_hour": round(busy_bytes_per_hour[POLLED]),
                "note": "response bodies as the simulator sent them (no gzip); the watermark "
                "from Nova's clock in both modes (see nova_bytes_per_hour_watermark)",
            },
        ),
    ], side


# -- response bytes: Nova's clock as the watermark vs the old own-clock overlap -----------------
BEFORE, AFTER = "OwnClockOverlap", "NovaClock"
WATERMARK_FULL: dict[str, Any] = {"vms": 3000, "polls": 15, "changed": 2, "step": 2.0}
WATERMARK_QUICK: dict[str, Any] = {"vms": 300, "polls": 6, "changed": 2, "step": 1.0}


def measure_watermark_bytes(
    vms: int = 3000,
    polls: int = 15,
    changed: int = 2,
    step: float = 2.0,
    interval: float = 10.0,
) -> tuple[list[Figure], dict[str, Any]]:
    """Nova response bytes per region per hour, polling every ``interval`` with ``changed``
    servers changing between two polls, with the watermark from Nova's clock (``after``) and
    with the old overlap of ``OVERLAP_OWN_CLOCK`` before the agent's clock (``before``, the
    way a peer does it; Nova sends no ``Date`` header, as the simulator by default).

    The figure is the mean per poll (listing and ``os-services`` apart) times the polls an
    hour holds; the full listings (every ``FULL_EVERY`` s, the same in both, measured once)
    are added in the notes only, as they would hide the difference.

    Time is compressed so that the bench stays short: polls run every ``step`` seconds and the
    baseline's overlap shrinks by the same factor (60 s / 10 s becomes 12 s / 2 s), so a change
    is listed about as many times as it would be in real time.
    """
    scale = interval / step
    regions = (BEFORE, AFTER)
    clock = SimClock()
    with (
        OpenStackSim(regions=regions, clock=clock) as sim,
        tempfile.TemporaryDirectory(prefix="vesagent-bench-wm-") as tmp,
    ):
        ids = {r: old_servers(sim, clock, r, vms) for r in regions}
        store = Store(Path(tmp))
        pollers: dict[str, RegionPoller] = {}
        try:
            for region in regions:
                spec = region_spec(sim.keystone_url, region, "http://127.0.0.1:9/eventListener/v7")
                poller = RegionPoller(spec, store, ComputeClient, full_every=math.inf)
                if region == BEFORE:
                    overlap = timedelta(seconds=OVERLAP_OWN_CLOCK.total_seconds() / scale)
                    poller.cache = ServerCache(math.inf, own_clock_overlap=overlap)
                pollers[region] = poller

            def listing_bytes(region: str) -> int:
                return sim.requests.total_bytes(f"/compute/{region}/v2.1/servers")

            def services_bytes(region: str) -> int:
                return sim.requests.total_bytes(f"/compute/{region}/v2.1/os-services")

            full = {}
            for region, poller in pollers.items():
                before = listing_bytes(region)
                assert poller.poll().full
                full[region] = listing_bytes(region) - before
            rng = random.Random(7)
            per_poll: dict[str, list[int]] = {r: [] for r in regions}
            per_poll_hosts: dict[str, list[int]] = {r: [] for r in regions}
            listed: dict[str, list[int]] = {r: [] for r in regions}
            pause = threading.Event()
            # Warm-up: the baseline's overlap fills before anything is counted.
            warm = math.ceil(OVERLAP_OWN_CLOCK.total_seconds() / interval) + 1
            t0 = time.monotonic()
            for n in range(warm + polls):
                pause.wait(max(0.0, t0 + n * step - time.monotonic()))
                for region in regions:
                    # The same changes in both regions: servers flip ERROR / ACTIVE.
                    for sid in rng.sample(ids[region], changed):
                        state = "ERROR" if rng.random() < 0.5 else "ACTIVE"
                        sim.set_status(region, sid, state)
                for region, poller in pollers.items():
                    lb, sb = listing_bytes(region), services_bytes(region)
                    outcome = poller.poll()
                    assert outcome.ok and not outcome.full, outcome.error
                    if n >= warm:
                        per_poll[region].append(listing_bytes(region) - lb)
                        per_poll_hosts[region].append(services_bytes(region) - sb)
                        listed[region].append(outcome.servers_seen)
        finally:
            for poller in pollers.values():
                poller.close()
            store.close()
    hour_polls = 3600.0 / interval
    full_per_hour = 3600.0 / FULL_EVERY
    # The polls between full listings, where the watermark matters; the full listings (the
    # same in both) are added in the notes, as they would hide the difference.
    per_hour = {r: (mean(per_poll[r]) + mean(per_poll_hosts[r])) * hour_polls for r in regions}
    with_full = {r: per_hour[r] + full[r] * full_per_hour for r in regions}
    mean_listed = {r: sum(listed[r]) / max(1, len(listed[r])) for r in regions}
    hosts_share = {
        r: mean(per_poll_hosts[r]) / max(1.0, mean(per_poll[r]) + mean(per_poll_hosts[r]))
        for r in regions
    }
    side = {
        "vms": vms,
        "changed_per_poll": changed,
        "interval_s": interval,
        "time_compressed_x": scale,
        "bytes_per_poll_listing": {r: round(mean(per_poll[r])) for r in regions},
        "bytes_per_poll_os_services": {r: round(mean(per_poll_hosts[r])) for r in regions},
        "servers_listed_per_poll": {r: round(mean_listed[r], 2) for r in regions},
        "os_services_share_of_poll_bytes": {r: round(hosts_share[r], 2) for r in regions},
        "full_listing_bytes": full[AFTER],
        "full_listings_per_hour": full_per_hour,
        "with_full_listings_bytes_per_hour": {r: round(with_full[r]) for r in regions},
    }
    return [
        Figure(
            "nova_bytes_per_hour_watermark",
            f"Nova bytes/region/hour of changes-since polls, Nova's clock ({vms:,} VMs)",
            "B",
            per_hour[AFTER],
            per_hour[BEFORE],
            f"{OVERLAP_OWN_CLOCK.total_seconds():g} s overlap before own clock (old, peers)",
            "fewer",
            per_hour[AFTER] < per_hour[BEFORE],
            {
                **side,
                "note": "polls every 10 s (time compressed, see the docstring) with their "
                f"os-services reads; {changed} servers change between polls; the full "
                "listings every 600 s (the same in both) are in with_full_listings",
            },
        )
    ], side
