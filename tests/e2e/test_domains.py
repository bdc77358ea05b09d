"""Host and VIM faults, heartbeats, measurements and threshold crossings, end to end."""

from __future__ import annotations

import time

import pytest

from tests.helpers import wait_until
from vesagent import ves_schema

VM_FAULTS = {"domain": "fault", "type": "vm", "tenant": "admin"}
REGION = "RegionOne"


def events_of(world, domain: str, source: str | None = None) -> list[dict]:
    return [
        e
        for e in world.ves.events()
        if e["commonEventHeader"]["domain"] == domain
        and (source is None or e["commonEventHeader"]["sourceName"] == source)
    ]


def faults_named(world, condition: str) -> list[dict]:
    return [e for e in events_of(world, "fault") if e["faultFields"]["alarmCondition"] == condition]


def assert_valid(world, version: str) -> None:
    for record in world.ves.records():
        assert ves_schema.errors({"event": record.event}, version) == [], record.event


@pytest.mark.parametrize("version", ["v5", "v7"])
def test_host_down_raises_host_and_vm_children_then_clears(world, agent_factory, version) -> None:
    """A dead compute host: one host fault plus one child per VM on it; all clear when back."""
    on_one = world.openstack.create_servers(REGION, 2, project="admin", host="compute-1")
    (on_two,) = world.openstack.create_servers(REGION, 1, project="admin", host="compute-2")
    world.add_region(REGION, [{"domain": "fault", "type": "host"}, VM_FAULTS], version=version)
    agent_factory()
    wait_until(
        lambda: world.openstack.requests.total("/compute/RegionOne/v2.1/os-services"),
        what="a services poll",
    )
    world.openstack.set_service(REGION, "compute-1", up=False)
    host = wait_until(lambda: events_of(world, "fault", "compute-1"), what="the host raise")
    assert host[0]["faultFields"]["eventSourceType"] == "host"
    assert host[0]["faultFields"]["eventSeverity"] == "CRITICAL"
    children = wait_until(
        lambda: (
            len(faults_named(world, "HostUnreachable")) == 2
            and faults_named(world, "HostUnreachable")
        ),
        what="the two VM children",
    )
    assert {c["commonEventHeader"]["sourceId"] for c in children} == set(on_one)
    assert on_two not in {c["commonEventHeader"]["sourceId"] for c in children}
    world.openstack.set_service(REGION, "compute-1", up=True)
    wait_until(
        lambda: (
            [e["faultFields"]["eventSeverity"] for e in events_of(world, "fault", "compute-1")]
            == ["CRITICAL", "NORMAL"]
        ),
        what="the host clear",
    )
    wait_until(
        lambda: (
            sum(
                e["faultFields"]["eventSeverity"] == "NORMAL"
                for e in faults_named(world, "HostUnreachable")
            )
            == 2
        ),
        what="the children's clears",
    )
    assert len(events_of(world, "fault")) == 6
    assert_valid(world, version)


def test_forced_down_host_is_a_fenced_fault(world, agent_factory) -> None:
    """forced_down is reported as what it is: a fenced host, MAJOR, not an unexplained death."""
    world.openstack.create_servers(REGION, 1, project="admin", host="compute-1")
    world.add_region(REGION, [{"domain": "fault", "type": "host", "source": "compute-1"}])
    agent_factory()
    world.openstack.set_service(REGION, "compute-1", forced_down=True)
    (event,) = wait_until(lambda: events_of(world, "fault", "compute-1"), what="fenced raise")
    assert event["faultFields"]["eventSeverity"] == "MAJOR"
    assert "Fenced" in event["faultFields"]["specificProblem"] + str(event["faultFields"])


@pytest.mark.parametrize("version", ["v5", "v7"])
def test_keystone_down_raises_one_vim_fault_and_no_vm_flood(world, agent_factory, version) -> None:
    """Keystone failing for N polls: one VIM raise, no VM events; back: one VIM clear."""
    vms = world.openstack.create_servers(REGION, 5, project="admin")
    world.add_region(
        REGION,
        [{"domain": "fault", "type": "vim", "failure_threshold": 3}, VM_FAULTS],
        version=version,
    )
    agent = agent_factory()
    wait_until(lambda: agent.polls(REGION), what="a good poll")
    world.openstack.expire_tokens()
    world.openstack.inject(status=503, path_prefix="/identity")
    vim = wait_until(lambda: faults_named(world, "VimUnreachable"), what="the VIM raise")
    assert vim[0]["faultFields"]["eventSeverity"] == "CRITICAL"
    for vm in vms:  # while the cloud is unreachable, VMs change: nothing is sent for them
        world.openstack.set_status(REGION, vm, "SHUTOFF")
    polls = world.openstack.requests.total("/identity")
    wait_until(lambda: world.openstack.requests.total("/identity") >= polls + 3, what="polls")
    assert [e["commonEventHeader"]["domain"] for e in world.ves.events()] == ["fault"]
    world.openstack.clear_faults()
    wait_until(
        lambda: (
            [e["faultFields"]["eventSeverity"] for e in faults_named(world, "VimUnreachable")]
            == ["CRITICAL", "NORMAL"]
        ),
        what="the VIM clear",
    )
    wait_until(lambda: len(events_of(world, "fault")) == 2 + len(vms), what="VM raises after")
    assert len(faults_named(world, "VimUnreachable")) == 2
    assert_valid(world, version)


def test_down_cell_raises_degraded_vim_not_vm_alarms(world, agent_factory) -> None:
    """Partial (down-cell) records raise one VIM 'degraded' fault, never per-VM UNKNOWN alarms."""
    world.openstack.create_servers(REGION, 3, project="admin")
    world.add_region(REGION, [{"domain": "fault", "type": "vim"}, VM_FAULTS])
    agent_factory()
    wait_until(
        lambda: world.openstack.requests.total("/compute/RegionOne/v2.1/servers") >= 2, what="polls"
    )
    world.openstack.set_cell_down(REGION, True)
    wait_until(lambda: faults_named(world, "VimDegraded"), what="the degraded raise")
    polls = world.openstack.requests.total("/compute/RegionOne/v2.1/servers")
    wait_until(
        lambda: world.openstack.requests.total("/compute/RegionOne/v2.1/servers") >= polls + 3,
        what="more polls",
    )
    assert faults_named(world, "Guest_Os_Failure") == []
    world.openstack.set_cell_down(REGION, False)
    wait_until(lambda: len(faults_named(world, "VimDegraded")) == 2, what="the degraded clear")


def test_heartbeats_at_interval_and_not_replayed_after_outage(world, agent_factory) -> None:
    """Heartbeats keep a stable name and source, come every interval, and an outage's are lost."""
    world.add_region(REGION, [{"domain": "heartbeat", "type": "vim", "poll_interval": 1}])
    agent = agent_factory()
    beats = wait_until(
        lambda: len(events_of(world, "heartbeat")) >= 3 and events_of(world, "heartbeat"),
        what="three heartbeats",
    )
    names = {
        (b["commonEventHeader"]["eventName"], b["commonEventHeader"]["sourceName"]) for b in beats
    }
    assert names == {("Heartbeat_vesagent", "CloudOwner_RegionOne")}
    starts = [b["commonEventHeader"]["startEpochMicrosec"] for b in beats]
    assert all(s % 1_000_000 == 0 for s in starts) and len(set(starts)) == len(starts)
    produced = agent.metric("vesagent_events_total", domain="heartbeat") or 0
    world.ves.outage("503")
    outage_start = time.time()
    # The outage is what is tested: it lasts until the agent has made four more heartbeats.
    wait_until(
        lambda: (agent.metric("vesagent_events_total", domain="heartbeat") or 0) >= produced + 4,
        what="four heartbeats made during the outage",
    )
    outage_end = time.time()
    world.ves.restore()
    before = len(events_of(world, "heartbeat"))
    wait_until(lambda: len(events_of(world, "heartbeat")) >= before + 2, what="heartbeats again")
    made_during = [
        b
        for b in events_of(world, "heartbeat")[before:]
        if outage_start + 0.5 < b["commonEventHeader"]["lastEpochMicrosec"] / 1e6 < outage_end - 1
    ]
    assert made_during == []


@pytest.mark.parametrize("version", ["v5", "v7"])
def test_measurements_once_per_interval_with_plausible_figures(world, agent_factory, version):
    """Each VM gets one measurement per interval; rates are non-negative and consistent."""
    vms = world.openstack.create_servers(REGION, 2, project="admin")
    world.add_region(
        REGION,
        [{"domain": "measurement", "type": "vm", "tenant": "admin", "poll_interval": 2}],
        version=version,
    )
    agent_factory()
    block = "measurementFields" if version == "v7" else "measurementsForVfScalingFields"
    nic_key = "nicPerformanceArray" if version == "v7" else "vNicPerformanceArray"
    for vm in vms:
        got = wait_until(
            lambda vm=vm: (
                len(
                    m := [
                        e
                        for e in events_of(
                            world, "measurement" if version == "v7" else "measurementsForVfScaling"
                        )
                        if e["commonEventHeader"]["sourceId"] == vm
                    ]
                )
                >= 3
                and m
            ),
            timeout=20,
            what="three measurements",
        )
        starts = [e["commonEventHeader"]["startEpochMicrosec"] for e in got]
        assert len(set(starts)) == len(starts)  # one per interval
        last = got[-1][block]
        cpu = last["cpuUsageArray"][0]["percentUsage"]
        assert 0 <= cpu <= 100
        memory = last["memoryUsageArray"][0]
        assert memory["memoryUsed"] > 0 and memory["memoryFree"] >= 0
        assert memory["memoryUsed"] + memory["memoryFree"] <= 512 * 1024 + 1
        nic_prev, nic = got[-2][block][nic_key][0], last[nic_key][0]
        assert (
            nic["receivedOctetsDelta"]
            == nic["receivedOctetsAccumulated"] - nic_prev["receivedOctetsAccumulated"]
        )
        assert nic["receivedOctetsDelta"] > 0 and nic["valuesAreSuspect"] == "false"
    assert_valid(world, version)


@pytest.mark.parametrize("version", ["v5", "v7"])
def test_cpu_threshold_set_then_clear(world, agent_factory, version) -> None:
    """CPU above the threshold raises a TCA SET; back under, a CLEAR."""
    (vm,) = world.openstack.create_servers(REGION, 1, project="admin")
    world.openstack.set_cpu(REGION, vm, 10)
    world.add_region(
        REGION,
        [
            {
                "domain": "tca",
                "type": "vm",
                "tenant": "admin",
                "poll_interval": 1,
                "thresholds": [{"metric": "cpu.percentUsage", "above": 90, "severity": "CRITICAL"}],
            }
        ],
        version=version,
    )
    agent_factory()
    wait_until(
        lambda: world.openstack.requests.total("/compute/RegionOne/v2.1/servers/") >= 1,
        what="a diagnostics read",
    )
    world.openstack.set_cpu(REGION, vm, 97)
    tca = wait_until(lambda: events_of(world, "thresholdCrossingAlert"), what="the SET")
    fields = tca[0]["thresholdCrossingAlertFields"]
    assert fields["alertAction"] == "SET" and fields["eventSeverity"] == "CRITICAL"
    world.openstack.set_cpu(REGION, vm, 5)
    wait_until(
        lambda: (
            [
                e["thresholdCrossingAlertFields"]["alertAction"]
                for e in events_of(world, "thresholdCrossingAlert")
            ]
            == ["SET", "CLEAR"]
        ),
        what="the CLEAR",
    )
    assert_valid(world, version)
