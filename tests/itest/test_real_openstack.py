"""``vesagent run`` against a real OpenStack: VM faults raised and cleared end to end.

Opt-in (``make itest-openstack``): every test here is skipped unless ``VESAGENT_ITEST=1`` and
an ``openrc`` (``OS_AUTH_URL`` ...) for a user with the admin role are in the environment.
The same scenarios run against the simulator in ``tests/e2e/test_vm_faults.py``; here Nova is
the real thing, without a ``Date`` header, with its own timing and its own bodies.

Each scenario asserts exactly what the VES collector simulator accepted for the server under
test (counts of raises and clears, severities, one ``eventId`` per episode, schema-valid), and
reports the agent's Nova and Keystone request counts and the detection latency.

Every scenario runs twice (``mode``): polling alone, and with Nova's versioned notifications
ringing the doorbell (skipped unless ``VESAGENT_ITEST_TRANSPORT_URL`` is set). With
notifications the agent polls every 10 s, so an event within ``NOTIFIED_BUDGET`` can only have
come from the doorbell: a change seen by both must still give one event. The broker-outage
scenario stops the broker in the middle: the poll must still catch a fault meanwhile.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import wait_until
from tests.itest.cloud import RealCloud, skip_reason
from tests.itest.conftest import NOTIFIED, NOTIFIED_BUDGET
from vesagent import ves_schema

if TYPE_CHECKING:
    from tests.itest.conftest import Broker, Harness, ServerPool
    from vesagent.sim.ves import VesRecord

pytestmark = [
    pytest.mark.skipif(skip_reason(os.environ) is not None, reason=str(skip_reason(os.environ))),
    pytest.mark.timeout(300),
]

POLL = 2.0
# Detection must fit in one poll interval plus the poll itself and the delivery. Without a
# Date header the agent widens its changes-since overlap, which costs bytes, not latency.
LATENCY_BUDGET = POLL + 3.0
VM = "VMFailure"  # the VM scenarios count VM failure events only (see Harness.faults)


def check_episode(
    records: list[VesRecord], version: str, severity: str, name: str | None = None
) -> None:
    """One raise at ``severity`` then one clear, same eventId, sequence +1, schema-valid."""
    events = [r.event for r in records]
    severities = [e["faultFields"]["eventSeverity"] for e in events]
    assert severities == [severity, "NORMAL"], severities
    raised, cleared = (e["commonEventHeader"] for e in events)
    assert cleared["eventId"] == raised["eventId"]
    assert cleared["sequence"] == raised["sequence"] + 1
    assert events[0]["faultFields"]["eventSourceType"] == "virtualMachine"
    if name is not None:
        assert raised["sourceName"] == name
    for record in records:
        assert record.version == version
        assert ves_schema.errors({"event": record.event}, version) == []


def latency(record: VesRecord, changed_at: float) -> float:
    """Seconds from the change in Nova to the collector accepting the event."""
    return record.received_at - changed_at


def assert_quick(latencies: dict[str, float], budget: float = LATENCY_BUDGET) -> None:
    """Every detection latency is within ``budget`` (and not before the change)."""
    for what, seconds in latencies.items():
        assert -1.0 <= seconds <= budget, f"{what} took {seconds:.2f}s (budget {budget:g}s)"


def settle(harness: Harness) -> None:
    """Let a few more polls run, so that a duplicate raise or clear would show."""
    harness.wait_polls(2 if harness.notified else 3)


def test_reset_to_error_raises_once_and_clears_once(
    cloud: RealCloud, servers: ServerPool, harness: Harness, request: pytest.FixtureRequest
) -> None:
    """os-resetState error: one CRITICAL raise; reset to active: one clear, same eventId."""
    target, name = servers.boot("target")
    bystander, _ = servers.boot("bystander")
    backlogs = [
        {"domain": "fault", "type": "vm", "tenant": harness.project, "source": name},
        {"domain": "fault", "type": "vm", "tenant": harness.project, "sourceid": bystander},
    ]
    harness.start(backlogs, version="v5")
    errored = cloud.reset_state(target, "error")
    raised = harness.wait_faults(target, 1, VM)
    recovered = cloud.reset_state(target, "active")
    records = harness.wait_faults(target, 2, VM)
    settle(harness)  # several more polls: still one raise and one clear
    records = harness.faults(target, VM)
    check_episode(records, "v5", "CRITICAL", name)
    assert harness.faults(bystander, VM) == []
    assert harness.ves.rejected() == []
    latencies = {"raise": latency(raised[0], errored), "clear": latency(records[1], recovered)}
    harness.report(request, latencies)
    assert_quick(latencies, harness.latency_budget(LATENCY_BUDGET))


def test_stopped_server_raises_and_clears_on_start(
    cloud: RealCloud, servers: ServerPool, harness: Harness, request: pytest.FixtureRequest
) -> None:
    """os-stop: SHUTOFF raises MAJOR; os-start: ACTIVE clears it (v7 collector)."""
    target, name = servers.boot("stopped")
    harness.start(
        [{"domain": "fault", "type": "vm", "tenant": harness.project, "sourceid": target}], "v7"
    )
    _, stopped = cloud.stop(target)
    raised = harness.wait_faults(target, 1, VM)
    _, started = cloud.start(target)
    harness.wait_faults(target, 2, VM)
    settle(harness)
    records = harness.faults(target, VM)
    check_episode(records, "v7", "MAJOR", name)
    assert harness.ves.rejected() == []
    latencies = {"raise": latency(raised[0], stopped), "clear": latency(records[1], started)}
    harness.report(request, latencies)
    assert_quick(latencies, harness.latency_budget(LATENCY_BUDGET))


def test_deleted_faulty_server_gets_its_clear(
    cloud: RealCloud, servers: ServerPool, harness: Harness, request: pytest.FixtureRequest
) -> None:
    """A server in ERROR that is deleted: the changes-since poll sees DELETED and clears."""
    target, name = servers.boot("doomed")
    harness.start(
        [{"domain": "fault", "type": "vm", "tenant": harness.project, "source": name}], "v5"
    )
    errored = cloud.reset_state(target, "error")
    raised = harness.wait_faults(target, 1, VM)
    _, gone = cloud.delete(target)
    harness.wait_faults(target, 2, VM)
    settle(harness)
    records = harness.faults(target, VM)
    check_episode(records, "v5", "CRITICAL", name)
    assert cloud.show(target) is None
    latencies = {"raise": latency(raised[0], errored), "clear": latency(records[1], gone)}
    harness.report(request, latencies)
    assert_quick(latencies, harness.latency_budget(LATENCY_BUDGET))


def test_wildcard_backlog_picks_up_a_server_created_later(
    cloud: RealCloud, servers: ServerPool, harness: Harness, request: pytest.FixtureRequest
) -> None:
    """A backlog naming only the tenant watches a server booted while the agent runs."""
    healthy, _ = servers.boot("early")
    harness.start([{"domain": "fault", "type": "vm", "tenant": harness.project}], "v7")
    late, name = servers.boot("late")
    # The agent has seen the new, healthy server (a doorbell or a poll): nothing to say.
    harness.wait_polls(1)
    assert harness.faults(late, VM) == []
    errored = cloud.reset_state(late, "error")
    raised = harness.wait_faults(late, 1, VM)
    recovered = cloud.reset_state(late, "active")
    harness.wait_faults(late, 2, VM)
    settle(harness)
    records = harness.faults(late, VM)
    check_episode(records, "v7", "CRITICAL", name)
    assert harness.faults(healthy, VM) == []
    latencies = {"raise": latency(raised[0], errored), "clear": latency(records[1], recovered)}
    harness.report(request, latencies)
    assert_quick(latencies, harness.latency_budget(LATENCY_BUDGET))


def host_faults_wired() -> bool:
    """True when the agent's poll cycle uses the compute host decisions of ``hosts.py``.

    Everything ``vesagent run`` uses is imported by ``vesagent.agent``; the host decisions are
    wired when some module of the agent other than ``hosts`` (and ``vim``, which only borrows
    its event builder) holds ``decide_host`` or the ``hosts`` module itself.
    """
    import vesagent.agent  # noqa: F401  (loads every module the agent runs)

    hosts = sys.modules.get("vesagent.pollers.hosts")
    if hosts is None:
        return False
    for name, module in list(sys.modules.items()):
        if not name.startswith("vesagent.") or name in (hosts.__name__, "vesagent.pollers.vim"):
            continue
        if getattr(module, "decide_host", None) is hosts.decide_host:
            return True
        if any(value is hosts for value in vars(module).values()):
            return True
    return False


def test_forced_down_compute_host_raises_and_clears(
    cloud: RealCloud, servers: ServerPool, harness: Harness, request: pytest.FixtureRequest
) -> None:
    """PUT os-services forced_down: the host's fault is raised; forced up again: cleared."""
    if not host_faults_wired():
        pytest.skip("host faults not wired yet")
    target, _ = servers.boot("on-host")
    shown = cloud.show(target)
    assert shown is not None
    host = shown["OS-EXT-SRV-ATTR:host"]  # a host we know works, whichever the cloud has
    (service,) = [s for s in cloud.compute_services() if s["host"] == host]
    harness.start([{"domain": "fault", "type": "host", "source": host}], "v5")
    try:
        assert cloud.force_down(service["id"], True)["forced_down"] is True
        downed = time.time()  # the PUT writes the service record before answering
        raised = harness.wait_faults(host, 1, "Host")
    finally:
        cloud.force_down(service["id"], False)
        restored = time.time()
    harness.wait_faults(host, 2, "Host")
    settle(harness)
    records = harness.faults(host, "Host")
    events = [r.event for r in records]
    # forced_down is HostFencedDown (MAJOR) in hosts.py; one episode, one eventId.
    assert [e["faultFields"]["eventSeverity"] for e in events] == ["MAJOR", "NORMAL"]
    raised_header, cleared_header = (e["commonEventHeader"] for e in events)
    assert cleared_header["eventId"] == raised_header["eventId"]
    assert cleared_header["sequence"] == raised_header["sequence"] + 1
    assert events[0]["faultFields"]["eventSourceType"] == "host"
    for record in records:
        assert ves_schema.errors({"event": record.event}, "v5") == []
    latencies = {"raise": latency(raised[0], downed), "clear": latency(records[1], restored)}
    harness.report(request, latencies)
    assert_quick(latencies, harness.latency_budget(LATENCY_BUDGET))


def _in_error(server: dict[str, Any] | None) -> bool:
    return server is not None and server.get("status") == "ERROR"


@pytest.mark.parametrize("mode", [NOTIFIED], indirect=True)
def test_broker_outage_the_poll_still_catches_a_fault(
    cloud: RealCloud,
    servers: ServerPool,
    harness: Harness,
    broker: Broker,
    request: pytest.FixtureRequest,
) -> None:
    """Broker stopped: the region lists at poll_interval and still raises a fault that happens
    meanwhile (no notification can tell it); broker back: the clear comes by the doorbell."""
    target, name = servers.boot("outage")
    harness.start(
        [{"domain": "fault", "type": "vm", "tenant": harness.project, "source": name}], "v5"
    )
    outcome: list[str] = []

    def reset_to_error() -> None:
        called = time.time()
        try:
            cloud.reset_state(target, "error")
            outcome.append(f"os-resetState answered after {time.time() - called:.1f} s")
        except Exception as exc:  # reported below, not lost in the thread
            outcome.append(f"os-resetState failed after {time.time() - called:.1f} s: {exc}")

    broker.stop()
    try:
        wait_until(
            lambda: harness.notifications().get("state") != "connected",
            30,
            "the listener noticing the broker is gone",
        )
        assert harness.notifications()["server_listing_every"] == "poll_interval"
        # The listener's failure rings the doorbell once (what may have been missed): let that
        # poll pass, so that only the polls at poll_interval can see the fault below.
        harness.wait_polls(1)
        # Nova writes the change, then publishes its notification, retrying while the broker
        # is away: the API call may not answer until it is back, so it runs aside and the
        # change's time is when the API first shows it.
        caller = threading.Thread(target=reset_to_error, name="reset-error", daemon=True)
        caller.start()
        _, errored = cloud.wait_for(target, _in_error, "ERROR", error_is_final=False)
        raised = harness.wait_faults(target, 1, VM)
    finally:
        broker.start()
    caller.join(120)
    assert not caller.is_alive(), "os-resetState still unanswered 120 s after the broker came back"
    wait_until(
        lambda: harness.notifications().get("state") == "connected",
        90,
        "the listener reconnected after the broker came back",
    )
    recovered = cloud.reset_state(target, "active")
    records = harness.wait_faults(target, 2, VM)
    settle(harness)
    records = harness.faults(target, VM)
    check_episode(records, "v5", "CRITICAL", name)
    assert harness.ves.rejected() == []
    raise_latency = latency(raised[0], errored)
    clear_latency = latency(records[1], recovered)
    harness.report(
        request, {"raise (broker down)": raise_latency, "clear": clear_latency}, outcome[0]
    )
    # Down: one poll interval plus the poll; back: the doorbell again.
    assert_quick({"raise (broker down)": raise_latency}, harness.poll_interval + 3.0)
    assert_quick({"clear": clear_latency}, NOTIFIED_BUDGET)
