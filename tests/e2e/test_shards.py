"""Shards across replicas: ``VESAGENT_SHARD=i/n`` splits regions by a stable hash.

Three agent processes on one A&AI handle every region exactly once; growing to four replicas
moves some regions without duplicating or losing an alarm (the new owner re-announces an open
fault with the same eventId, and the old owners' pending events are still delivered); and a
running agent that loses a region to another shard leaves its alarms open.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import OWNER, AgentProcess, free_port, wait_until
from vesagent.agent import build_agent, shutdown
from vesagent.model import RegionKey
from vesagent.settings import Settings, Shard

ADMIN_ALL = [{"domain": "fault", "type": "vm", "tenant": "admin"}]
REGIONS = [f"Shard{n:02d}" for n in range(12)]


def owner(region: str, count: int) -> int:
    """The replica index that owns ``region`` among ``count`` replicas."""
    path = RegionKey(OWNER, region).path
    return next(i for i in range(count) if Shard(i, count).owns(path))


def vimid(region: str) -> str:
    return RegionKey(OWNER, region).vimid


def listed(agent: AgentProcess) -> set[str]:
    """The regions an agent reports it handles (``GET /api/multicloud/v0/vesagent``)."""
    body = requests.get(agent.url + "/api/multicloud/v0/vesagent", timeout=5).json()
    return {r["vimid"] for r in body["regions"]}


def outbox_depth(agent: AgentProcess, collector: str | None = None) -> float:
    """Events waiting in an agent's outbox, from its ``/metrics``."""
    total = 0.0
    for line in requests.get(agent.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("vesagent_outbox_depth{") and (
            collector is None or f'collector="{collector}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def event_ids(world, vm: str) -> set[str]:
    return {e["commonEventHeader"]["eventId"] for e in world.faults(vm)}


def severities(world, vm: str) -> list[str]:
    return [e["faultFields"]["eventSeverity"] for e in world.faults(vm)]


def server_lists(world, regions: list[str]) -> int:
    return sum(world.openstack.requests.total(f"/compute/{r}/v2.1/servers/detail") for r in regions)


@pytest.fixture
def replicas(world, tmp_path: Path) -> Iterator[Callable[..., list[AgentProcess]]]:
    """Start agents in parallel (``(state_dir, shard)`` each); kill leftovers at the end."""
    started: list[AgentProcess] = []

    def start(*specs: tuple[Path, str]) -> list[AgentProcess]:
        agents = []
        for state_dir, shard in specs:
            listen = f"127.0.0.1:{free_port()}"
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("VESAGENT_")},
                "VESAGENT_AAI_URL": world.aai.url,
                "VESAGENT_AAI_SYNC_INTERVAL": "0.5",
                "VESAGENT_STATE_DIR": str(state_dir),
                "VESAGENT_LISTEN": listen,
                "VESAGENT_SHARD": shard,
            }
            log = tmp_path / f"agent-{len(started)}-{shard.replace('/', 'of')}.log"
            agent = AgentProcess(env, log, listen)
            started.append(agent)
            agents.append(agent)
        with ThreadPoolExecutor(len(agents)) as pool:
            list(pool.map(AgentProcess.start, agents))
        return agents

    yield start
    for agent in started:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(5)


def test_replicas_split_regions_and_a_fourth_moves_some_without_loss(
    world, replicas, tmp_path
) -> None:
    """3 replicas: each region's raise arrives once and the API listings partition the regions.
    3 -> 4 replicas with faults open and events pending: one eventId per fault, every pending
    event delivered, and each clear after the move arrives exactly once."""
    first_vm, second_vm = {}, {}
    for region in REGIONS:
        world.openstack.add_region(region)
        first_vm[region], second_vm[region] = world.openstack.create_servers(region, 2, "admin")
        world.openstack.set_status(region, first_vm[region], "ERROR")
        world.add_region(region, ADMIN_ALL)
    moved = [r for r in REGIONS if owner(r, 3) != owner(r, 4)]
    assert moved and len(moved) < len(REGIONS)  # stable hash: this layout moves some, not all
    states = [tmp_path / f"state-{i}" for i in range(4)]

    three = replicas(*[(states[i], f"{i}/3") for i in range(3)])
    wait_until(lambda: all(world.faults(first_vm[r]) for r in REGIONS), 20, "12 raises")
    polls = server_lists(world, REGIONS)
    wait_until(lambda: server_lists(world, REGIONS) >= polls + 2 * len(REGIONS), 20, "polls")
    for region in REGIONS:
        assert severities(world, first_vm[region]) == ["CRITICAL"], region
    views = [listed(agent) for agent in three]
    for index, view in enumerate(views):
        assert view == {vimid(r) for r in REGIONS if owner(r, 3) == index}
    assert set().union(*views) == {vimid(r) for r in REGIONS}
    assert sum(len(v) for v in views) == len(REGIONS)  # disjoint

    # Faults raised while the collector is down stay in the old owners' outboxes.
    world.ves.outage("503")
    for region in REGIONS:
        world.openstack.set_status(region, second_vm[region], "ERROR")
    wait_until(lambda: sum(outbox_depth(a) for a in three) >= len(REGIONS), 20, "raises queued")
    for agent in three:
        assert agent.stop() == 0
    world.ves.restore()

    four = replicas(*[(states[i], f"{i}/4") for i in range(4)])
    wait_until(lambda: all(world.faults(second_vm[r]) for r in REGIONS), 20, "queued raises")
    wait_until(lambda: all(outbox_depth(a) == 0 for a in four), 20, "outboxes drained")
    views = [listed(agent) for agent in four]
    for index, view in enumerate(views):
        assert view == {vimid(r) for r in REGIONS if owner(r, 4) == index}
    assert sum(len(v) for v in views) == len(REGIONS)
    polls = server_lists(world, REGIONS)
    wait_until(lambda: server_lists(world, REGIONS) >= polls + 2 * len(REGIONS), 20, "polls")
    for region in REGIONS:
        for vm in (first_vm[region], second_vm[region]):
            # A moved region's new owner may announce the open fault again: same alarm.
            assert len(event_ids(world, vm)) == 1, (region, world.faults(vm))
            assert set(severities(world, vm)) == {"CRITICAL"}
    for region in set(REGIONS) - set(moved):
        assert len(world.faults(first_vm[region])) == 1  # a staying region announces nothing

    for region in REGIONS:
        world.openstack.set_status(region, first_vm[region], "ACTIVE")
        world.openstack.set_status(region, second_vm[region], "ACTIVE")
    every_vm = [*first_vm.values(), *second_vm.values()]
    wait_until(lambda: all("NORMAL" in severities(world, vm) for vm in every_vm), 20, "clears")
    polls = server_lists(world, REGIONS)
    wait_until(lambda: server_lists(world, REGIONS) >= polls + 2 * len(REGIONS), 20, "polls")
    for vm in every_vm:
        assert severities(world, vm).count("NORMAL") == 1, world.faults(vm)
        assert severities(world, vm)[-1] == "NORMAL"
        assert len(event_ids(world, vm)) == 1


def _pair() -> tuple[str, str]:
    """Two region names that two replicas split: (owned by 1/2, owned by 0/2)."""
    names = [f"Split{n}" for n in range(50)]
    lost = next(n for n in names if owner(n, 2) == 1)
    kept = next(n for n in names if owner(n, 2) == 0)
    return lost, kept


def test_pending_events_for_a_collector_of_lost_regions_are_delivered(
    world, replicas, tmp_path
) -> None:
    """A replica restarted with a new shard still delivers what it queued for regions it lost,
    also when none of the regions it keeps uses that collector."""
    lost, kept = _pair()
    for region in (lost, kept):
        world.openstack.add_region(region)
    (vm,) = world.openstack.create_servers(lost, 1, "admin")
    world.openstack.create_servers(kept, 1, "admin")
    world.add_region(lost, ADMIN_ALL, version="v7")
    world.add_region(kept, ADMIN_ALL, version="v5")
    state = tmp_path / "state"
    (alone,) = replicas((state, "0/1"))
    world.ves.outage("503")
    world.openstack.set_status(lost, vm, "ERROR")
    v7 = f"{world.ves.url}/eventListener/v7"
    wait_until(lambda: outbox_depth(alone, v7) >= 1, 15, "the raise queued")
    assert alone.stop() == 0
    (half,) = replicas((state, "0/2"))  # keeps ``kept`` only
    assert listed(half) == {vimid(kept)}
    # Still in the outage: the new replica knows the collector (its sender tries at once).
    assert outbox_depth(half, v7) == 1  # kept across the restart, not lost
    world.ves.restore()
    wait_until(lambda: world.faults(vm), 8, "the raise queued before the move")


def test_losing_a_region_to_another_shard_keeps_its_alarm_open(world, tmp_path) -> None:
    """In one running agent: a region that now belongs to another shard stops without a
    clear (the fault is still open, watched elsewhere); owned again it announces nothing
    new; removed from A&AI it clears."""
    region = "RegionOne"
    (vm,) = world.openstack.create_servers(region, 1, project="admin")
    world.openstack.set_status(region, vm, "ERROR")
    world.add_region(region, ADMIN_ALL)
    key = RegionKey(OWNER, region)
    settings = Settings(aai_url=world.aai.url, state_dir=tmp_path / "state", listen="127.0.0.1:0")
    agent = build_agent(settings)
    try:
        assert agent.reconciler.sync()
        wait_until(lambda: world.faults(vm), 10, "the raise")
        other = Shard(1, 2) if Shard(0, 2).owns(key.path) else Shard(0, 2)
        agent.reconciler.shard = other
        assert agent.reconciler.sync()
        assert key not in agent.pollers
        assert agent.store.alarm_count(key.vimid) == 1  # still open, owned elsewhere
        assert agent.store.depth() == 0  # and no clear queued

        agent.reconciler.shard = Shard()
        assert agent.reconciler.sync()
        poller = agent.pollers.get(key)
        assert poller is not None
        wait_until(lambda: poller.last is not None, 10, "a poll of the region owned again")
        assert severities(world, vm) == ["CRITICAL"]  # the open alarm was not raised again

        world.aai.delete_region(OWNER, region)
        assert agent.reconciler.sync()
        wait_until(lambda: len(world.faults(vm)) == 2, 10, "the clear")
        assert severities(world, vm) == ["CRITICAL", "NORMAL"]
        assert agent.store.alarm_count(key.vimid) == 0
    finally:
        shutdown(agent)
