"""``RegionPoller`` and ``PollerSet`` in-process against the OpenStack simulator.

An explicit clock drives both the simulator (servers' ``updated``) and the poller; events are
read back from a temporary store's outbox. No VES collector: the enqueue step ends at the
outbox commit.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import wait_until
from vesagent.config import parse_cloud_extra_info
from vesagent.metrics import Metrics
from vesagent.model import RegionKey, VimCredentials
from vesagent.pollers.cycle import Job
from vesagent.pollers.manager import Ensured, PollerSet
from vesagent.pollers.openstack import ComputeClient
from vesagent.pollers.poller import PollOutcome, RegionPoller
from vesagent.sim.openstack import OpenStackSim
from vesagent.spec import RegionSpec
from vesagent.store import Store

REGION = "RegionOne"
COLLECTOR = "http://127.0.0.1:9/eventListener/v7"
SERVERS = f"/compute/{REGION}/v2.1/servers"
SERVICES = f"/compute/{REGION}/v2.1/os-services"


class Clock:
    """A clock that moves only when told (starting at real time, so tokens stay valid)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def spec_for(sim: OpenStackSim, backlogs: list[dict[str, Any]], poll: float = 10) -> RegionSpec:
    """The spec a reconciler would build for the simulator's region."""
    text = json.dumps(
        {
            "vesagent_config": {
                "ves_subscription": {"endpoint": COLLECTOR},
                "poll_interval_default": poll,
                "backlogs": backlogs,
            }
        }
    )
    config = parse_cloud_extra_info(text)
    assert config is not None
    creds = VimCredentials(sim.keystone_url, "admin", "admin", "admin", region_name=REGION)
    return RegionSpec(RegionKey("CloudOwner", REGION), config, creds)


VM_FAULTS = [{"domain": "fault", "type": "vm"}]
WITH_VIM = [{"domain": "fault", "type": "vm"}, {"domain": "fault", "type": "vim"}]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[OpenStackSim]:
    with OpenStackSim(regions=(REGION,), clock=clock) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path) as opened:
        yield opened


def make_poller(
    sim: OpenStackSim, store: Store, clock: Clock, backlogs: list[dict[str, Any]]
) -> RegionPoller:
    return RegionPoller(
        spec_for(sim, backlogs),
        store,
        ComputeClient,
        metrics=Metrics(CollectorRegistry()),
        clock=clock,
    )


def faults(store: Store) -> list[dict[str, Any]]:
    """The fault events in the outbox, oldest first, as header + fault fields."""
    out = []
    for row in store.pending(COLLECTOR, limit=10_000):
        event = json.loads(row.body)
        if event["commonEventHeader"]["domain"] == "fault":
            out.append(event)
    return out


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(sourceId or sourceName, specificProblem or condition, severity) of fault events."""
    return [
        (
            e["commonEventHeader"].get("sourceId") or e["commonEventHeader"]["sourceName"],
            e["faultFields"]["alarmCondition"],
            e["faultFields"]["eventSeverity"],
        )
        for e in events
    ]


def test_vm_fault_from_nova_to_the_outbox_and_cleared(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """A VM in ERROR raises one fault committed to the outbox; back to ACTIVE, one clear."""
    (vm,) = sim.create_servers(REGION, 1)
    poller = make_poller(sim, store, clock, VM_FAULTS)
    first = poller.poll()
    assert first.ok and first.full and first.events == 0
    clock.advance(5)
    sim.set_status(REGION, vm, "ERROR")
    raised = poller.poll()
    assert raised.ok and not raised.full and raised.events == 1
    clock.advance(5)
    sim.set_status(REGION, vm, "ACTIVE")
    assert poller.poll().events == 1
    assert [(s, c) for s, _p, c in summary(faults(store))] == [
        (vm, "CRITICAL"),
        (vm, "NORMAL"),
    ]
    assert poller.alarms == {}
    poller.close()


def test_quiet_poll_costs_one_request(sim: OpenStackSim, store: Store, clock: Clock) -> None:
    """After the full listing, a poll with nothing changed is one Nova request, no event
    (only the servers of the newest second are listed again: changes-since is inclusive)."""
    sim.create_servers(REGION, 3)
    clock.advance(30)
    (newest,) = sim.create_servers(REGION, 1, prefix="late")
    backlogs = [{"domain": "fault", "type": "vm", "host_faults": False}]
    poller = make_poller(sim, store, clock, backlogs)
    poller.poll()
    clock.advance(10)
    quiet = poller.poll()
    assert quiet.ok and quiet.requests == 1 and quiet.events == 0 and quiet.servers_seen == 1
    assert newest in poller.servers
    poller.close()


def test_watermark_is_novas_newest_updated_without_date_header(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """Without a Date header the watermark is the newest ``updated``: a changed server is read
    again until a newer change passes it, not for the 60 s of an own-clock overlap."""
    a, b = sim.create_servers(REGION, 2)
    poller = make_poller(sim, store, clock, VM_FAULTS)
    poller.poll()
    clock.advance(20)
    sim.set_status(REGION, a, "ERROR")
    changed_at = clock.now
    assert poller.poll().servers_seen == 2  # a, and b at the old watermark's second
    assert poller.cache.watermark is not None
    assert poller.cache.watermark.timestamp() == changed_at
    clock.advance(3)
    assert poller.poll().servers_seen == 1  # inclusive: a's second is read again
    sim.set_status(REGION, b, "ERROR")
    assert poller.poll().servers_seen == 2  # a's second again, and b
    assert poller.cache.watermark.timestamp() == changed_at + 3
    clock.advance(3)
    assert poller.poll().servers_seen == 1  # only b: a is not read again after a newer change
    assert len(faults(store)) == 2
    poller.close()


def test_vim_outage_raises_vim_fault_and_freezes_vm_alarms(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """Three failed polls raise VimUnreachable; a VM fault seen meanwhile waits; on recovery
    the VIM clears and the VM fault is raised from the listing read again."""
    (vm,) = sim.create_servers(REGION, 1)
    poller = make_poller(sim, store, clock, WITH_VIM)
    assert poller.poll().ok
    sim.inject(status=503, path_prefix=SERVERS, count=3)
    for _ in range(3):
        clock.advance(10)
        assert not poller.poll().ok
    assert summary(faults(store)) == [("CloudOwner_RegionOne", "VimUnreachable", "CRITICAL")]
    clock.advance(10)
    sim.set_status(REGION, vm, "ERROR")
    sim.set_cell_down(REGION, True)  # partial records: still not a view of the VM
    degraded = poller.poll()
    assert degraded.ok
    assert [c for _s, c, _v in summary(faults(store))][-1] == "VimDegraded"
    clock.advance(10)
    sim.set_cell_down(REGION, False)
    assert poller.poll().ok
    tail = summary(faults(store))[-2:]
    assert tail == [
        ("CloudOwner_RegionOne", "VimDegraded", "NORMAL"),
        (vm, "Guest_Os_Failure", "CRITICAL"),
    ]
    poller.close()


def test_down_host_raises_host_and_vm_host_alarms(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """A compute host going down raises its host alarm and one child alarm per VM on it."""
    (vm,) = sim.create_servers(REGION, 1, host="compute-1")
    backlogs = [{"domain": "fault", "type": "vm"}, {"domain": "fault", "type": "host"}]
    poller = make_poller(sim, store, clock, backlogs)
    poller.poll()
    clock.advance(10)
    sim.set_service(REGION, "compute-1", up=False)
    assert poller.poll().events == 2
    assert set(summary(faults(store))) == {
        (vm, "HostUnreachable", "MAJOR"),
        ("compute-1", "HostDown", "CRITICAL"),
    }
    poller.close()


def test_failed_commit_lists_everything_again(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """When the outbox refuses a commit, nothing is promised: the next listing is full."""
    (vm,) = sim.create_servers(REGION, 1)
    poller = make_poller(sim, store, clock, VM_FAULTS)
    poller.poll()
    clock.advance(10)
    sim.set_status(REGION, vm, "ERROR")
    real_commit = store.commit

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    store.commit = refuse  # type: ignore[method-assign]
    failed = poller.poll()
    assert not failed.ok and "disk full" in failed.error
    store.commit = real_commit  # type: ignore[method-assign]
    again = poller.poll()
    assert again.ok and again.full and again.events == 1
    poller.close()


class CountingPoller(RegionPoller):
    """A poller that counts its polls and the most that ever ran at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.active = 0
        self.most = 0
        self._count_lock = threading.Lock()

    def poll(self, *, listing: bool = False, hosts: bool = False) -> PollOutcome:
        with self._count_lock:
            self.calls += 1
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            return super().poll(listing=listing, hosts=hosts)
        finally:
            with self._count_lock:
                self.active -= 1


def test_poll_soon_coalesces_a_burst_and_never_overlaps(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """500 rings while a slow poll is in flight make one or two more polls, never two at once."""
    sim.create_servers(REGION, 2)
    spec = spec_for(sim, VM_FAULTS, poll=3600)
    made: list[CountingPoller] = []

    def make(s: RegionSpec) -> RegionPoller:
        made.append(CountingPoller(s, store, ComputeClient, clock=clock))
        return made[-1]

    pollers = PollerSet(make, workers=4)
    try:
        assert pollers.ensure(spec) is Ensured.STARTED
        assert pollers.ensure(spec) is Ensured.UNCHANGED
        poller = made[0]
        wait_until(lambda: poller.last is not None, what="the first timed poll")
        wait_until(lambda: poller.active == 0, what="the first poll to end")
        calls = poller.calls
        sim.inject(status=None, path_prefix=SERVERS, latency=0.3, count=3)
        for _ in range(500):
            pollers.poll_soon(spec.key)
        wait_until(lambda: poller.calls > calls, what="a doorbell poll")
        wait_until(
            lambda: poller.active == 0 and spec.key not in pollers._rung, what="polls to settle"
        )
        assert 1 <= poller.calls - calls <= 2
        assert poller.most == 1
        pollers.poll_soon(RegionKey("nobody", "nowhere"))  # unknown regions are ignored
    finally:
        pollers.shutdown()


def test_listing_interval_paces_servers_while_services_keep_the_fault_interval(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """With a long listing interval, timed polls read os-services but not the server list;
    poll_soon still lists; None brings listing back to every poll."""
    backlogs = [{"domain": "fault", "type": "vm"}, {"domain": "fault", "type": "host"}]
    poller = make_poller(sim, store, clock, backlogs)
    poller.poll()
    listed, services = sim.requests.total(SERVERS), sim.requests.total(SERVICES)
    poller.listing_interval = 3600.0
    for _ in range(3):
        clock.advance(10)
        assert poller.poll().ok
    assert sim.requests.total(SERVERS) == listed
    assert sim.requests.total(SERVICES) == services + 3
    assert poller.poll(listing=True).ok
    assert sim.requests.total(SERVERS) == listed + 1
    poller.listing_interval = None
    clock.advance(10)
    poller.poll()
    assert sim.requests.total(SERVERS) == listed + 2
    poller.close()


def test_set_listing_interval_reschedules_and_validates(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """set_listing_interval reaches the poller (also one started later) and its timer; bad
    values are refused naming the value."""
    spec = spec_for(sim, VM_FAULTS, poll=3600)
    pollers = PollerSet(lambda s: RegionPoller(s, store, ComputeClient, clock=clock), workers=2)
    try:
        pollers.set_listing_interval(spec.key, 5.0)
        pollers.ensure(spec)
        poller = pollers.get(spec.key)
        assert poller is not None and poller.listing_interval == 5.0
        assert pollers._jobs[(spec.key, Job.POLL)][0] == 5.0
        pollers.set_listing_interval(spec.key, None)
        assert poller.listing_interval is None
        assert pollers._jobs[(spec.key, Job.POLL)][0] == 3600
        with pytest.raises(ValueError, match="-1"):
            pollers.set_listing_interval(spec.key, -1)
    finally:
        pollers.shutdown()


def test_a_replica_that_lost_the_region_asks_nova_nothing(
    sim: OpenStackSim, store: Store, clock: Clock
) -> None:
    """``may_poll`` false (the lease released or lapsed): no Nova request, no event, no poll
    counted; true again: the poll runs as usual."""
    (vm,) = sim.create_servers(REGION, 1)
    sim.set_status(REGION, vm, "ERROR")
    owned = [False]
    registry = CollectorRegistry()
    poller = RegionPoller(
        spec_for(sim, VM_FAULTS),
        store,
        ComputeClient,
        metrics=Metrics(registry),
        clock=clock,
        may_poll=lambda: owned[0],
    )
    before = sim.requests.total("/compute")
    skipped = poller.poll()
    poller.run_job(Job.POLL)
    assert not skipped.ok and "no longer owns" in skipped.error
    assert sim.requests.total("/compute") == before and faults(store) == []
    assert (
        registry.get_sample_value(
            "vesagent_polls_total", {"vimid": poller.spec.vimid, "outcome": "error"}
        )
        is None
    )
    owned[0] = True
    assert poller.poll().events == 1 and sim.requests.total("/compute") > before
    poller.close()
