"""The poller seam notifications use (``PollerSet.poll_soon`` / ``set_listing_interval``),
with a real ``RegionPoller`` against the Nova simulator: what each call costs in Nova requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_until
from vesagent.bench.world import region_spec
from vesagent.pollers.manager import PollerSet
from vesagent.pollers.openstack import ComputeClient
from vesagent.pollers.poller import RegionPoller
from vesagent.sim.openstack import OpenStackSim
from vesagent.spec import RegionSpec
from vesagent.store import Store

REGION = "RegionOne"
LISTINGS = f"/compute/{REGION}/v2.1/servers"
SERVICES = f"/compute/{REGION}/v2.1/os-services"


@pytest.fixture
def region(tmp_path: Path) -> Iterator[tuple[OpenStackSim, PollerSet, RegionSpec]]:
    sim = OpenStackSim(regions=(REGION,))
    sim.start()
    store = Store(tmp_path)
    spec = region_spec(sim.keystone_url, REGION, "http://127.0.0.1:9/eventListener/v5", poll=1)
    pollers = PollerSet(lambda s: RegionPoller(s, store, ComputeClient), jitter=0.0)
    try:
        sim.create_servers(REGION, 5)
        pollers.ensure(spec)
        wait_until(lambda: sim.requests.total(LISTINGS) > 0, 10, "the first listing")
        yield sim, pollers, spec
    finally:
        pollers.shutdown()
        store.close()
        sim.stop()


def polls_done(pollers: PollerSet, spec: RegionSpec) -> int:
    poller = pollers.get(spec.key)
    assert poller is not None
    return poller._polls


def test_safety_interval_skips_listings_but_not_host_checks(region) -> None:
    """While notifications are heard, scheduled polls check hosts and list no servers."""
    sim, pollers, spec = region
    pollers.set_listing_interval(spec.key, 3600)
    wait_until(lambda: polls_done(pollers, spec) >= 1, 5)
    start = polls_done(pollers, spec)
    listings, services = sim.requests.total(LISTINGS), sim.requests.total(SERVICES)
    wait_until(lambda: polls_done(pollers, spec) >= start + 3, 10, "three scheduled polls")
    assert sim.requests.total(SERVICES) >= services + 3  # host liveness keeps poll_interval
    assert sim.requests.total(LISTINGS) - listings <= 1  # a listing already due may finish
    pollers.set_listing_interval(spec.key, None)
    listings = sim.requests.total(LISTINGS)
    wait_until(lambda: sim.requests.total(LISTINGS) >= listings + 2, 10, "listings again")


def test_doorbell_lists_at_once_and_a_burst_is_coalesced(region) -> None:
    """poll_soon lists within a moment; 300 rings in a row give a few listings, not 300."""
    sim, pollers, spec = region
    pollers.set_listing_interval(spec.key, 3600)
    wait_until(lambda: polls_done(pollers, spec) >= 2, 5)
    sid = sim.server_ids(REGION)[0]
    sim.set_status(REGION, sid, "ERROR")
    before = sim.requests.total(LISTINGS)
    pollers.poll_soon(spec.key)
    wait_until(lambda: sim.requests.total(LISTINGS) > before, 2, "the doorbell listing")
    poller = pollers.get(spec.key)
    assert poller is not None
    wait_until(lambda: (sid, "VMFailure") in poller.alarms, 2, "the fault decided")
    before = sim.requests.total(LISTINGS)
    for _ in range(300):
        pollers.poll_soon(spec.key)
    wait_until(lambda: sim.requests.total(LISTINGS) > before, 3, "a listing")
    first = polls_done(pollers, spec)
    wait_until(lambda: polls_done(pollers, spec) >= first + 3, 10, "the burst settled")
    assert sim.requests.total(LISTINGS) - before <= 3 * 2  # <= 3 listings of <= 2 pages


def test_host_doorbell_reads_the_hosts_at_once(tmp_path: Path) -> None:
    """A server doorbell leaves os-services to its own pace; a host doorbell (service.update)
    reads it at once, so a forced-down host is reported without waiting for the next poll."""
    with OpenStackSim(regions=(REGION,)) as sim:
        store = Store(tmp_path)
        spec = region_spec(
            sim.keystone_url, REGION, "http://127.0.0.1:9/eventListener/v5", poll=3600
        )
        pollers = PollerSet(lambda s: RegionPoller(s, store, ComputeClient), jitter=0.0)
        try:
            sim.create_servers(REGION, 2, host="compute-1")
            pollers.ensure(spec)
            wait_until(lambda: polls_done(pollers, spec) >= 1, 10, "the first poll")
            pollers.set_listing_interval(spec.key, 3600)
            poller = pollers.get(spec.key)
            assert poller is not None
            services = sim.requests.total(SERVICES)
            pollers.poll_soon(spec.key)
            wait_until(lambda: polls_done(pollers, spec) >= 2, 5, "the server doorbell poll")
            assert sim.requests.total(SERVICES) == services  # hosts keep their own pace
            sim.set_service(REGION, "compute-1", forced_down=True)
            pollers.poll_soon(spec.key, hosts=True)
            # The VM backlog's host_faults: each VM on the host gets a HostUnreachable alarm.
            wait_until(
                lambda: sum(c == "HostUnreachable" for _, c in poller.alarms) == 2,
                5,
                "the VMs' host alarms",
            )
            assert sim.requests.total(SERVICES) == services + 1
        finally:
            pollers.shutdown()
            store.close()
