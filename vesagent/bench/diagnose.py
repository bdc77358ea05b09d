"""What limits a figure: cProfile (CPU time) of the full poll, a memory breakdown per region.

Run automatically for a missed goal (and always with ``--profile``); the text goes under the
table and into ``bench-results.json``.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import gc
import io
import pstats
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from vesagent.bench.world import SimClock, old_servers, region_spec
from vesagent.pollers.openstack import ComputeClient
from vesagent.pollers.poller import RegionPoller
from vesagent.sim.openstack import OpenStackSim
from vesagent.store import Store

REGION = "Region000"
DUMMY_COLLECTOR = "http://127.0.0.1:9/eventListener/v7"


def top_entries(profile: cProfile.Profile, top: int, sort: str = "tottime") -> str:
    """cProfile's ``top`` entries as text, paths shortened to the package."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(sort).print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(_short(line) for line in lines[start:])


def _short(line: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in line:
            head, _, tail = line.partition(marker)
            line = head.rsplit(" ", 1)[0] + " " + tail
    return line


def profile_full_poll(vms: int = 3000, polls: int = 3, top: int = 12) -> str:
    """CPU-time profile of ``polls`` full polls of a region of ``vms`` VMs."""
    clock = SimClock()
    with OpenStackSim(regions=(REGION,), clock=clock) as sim, tempfile.TemporaryDirectory() as tmp:
        old_servers(sim, clock, REGION, vms)
        store = Store(Path(tmp))
        poller = RegionPoller(
            region_spec(sim.keystone_url, REGION, DUMMY_COLLECTOR),
            store,
            ComputeClient,
            full_every=0.0,
        )
        poller.poll()
        profile = cProfile.Profile(time.thread_time)
        gc.collect()
        profile.enable()
        for _ in range(polls):
            poller.poll()
        profile.disable()
        poller.close()
        store.close()
    return top_entries(profile, top)


def memory_breakdown(regions_in_catalog: int = 100, vms: int = 1000) -> dict[str, Any]:
    """Python heap per tracked VM and per region (its Keystone client) with ``vms`` VMs in a
    region whose token catalog lists ``regions_in_catalog`` regions, as in the scale run."""
    names = [f"Region{n:03d}" for n in range(regions_in_catalog)]
    clock = SimClock()
    with OpenStackSim(regions=names, clock=clock) as sim, tempfile.TemporaryDirectory() as tmp:
        old_servers(sim, clock, REGION, vms)
        spec = region_spec(sim.keystone_url, REGION, DUMMY_COLLECTOR)
        store = Store(Path(tmp))
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            client = ComputeClient(spec.creds)
            client.list_servers(changes_since=dt.datetime.now(dt.UTC))
            gc.collect()
            client_bytes = tracemalloc.get_traced_memory()[0] - base
            base = tracemalloc.get_traced_memory()[0]
            poller = RegionPoller(spec, store, ComputeClient)
            poller.poll()
            gc.collect()
            poller_bytes = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        tracked = len(poller.servers)
        poller.close()
        client.close()
        store.close()
    per_vm = (poller_bytes - client_bytes) / max(1, tracked)
    return {
        "keystone_client_bytes_per_region": client_bytes,
        "client_bytes_per_vm_at_this_density": round(client_bytes / max(1, tracked), 1),
        "server_cache_bytes_per_vm": round(per_vm, 1),
        "regions_in_catalog": regions_in_catalog,
        "vms_per_region": tracked,
    }
