"""Host faults from os-services: parsing, the condition table, raise/re-raise/clear, VM children."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vesagent import ves_schema
from vesagent.config import Backlog
from vesagent.pollers.decide import FaultContext, Transition, parse_time_us
from vesagent.pollers.hosts import (
    HOST_CONDITION,
    VM_HOST_CONDITION,
    HostView,
    decide_host,
    decide_vm_host,
    host_condition,
    host_is_down,
    host_selected,
)
from vesagent.store import alarm_params
from vesagent.ves_client.encode import dumps, encode

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openstack" / "nova" / "os-services"
NOW = 1_800_000_000_000_000
CTX = FaultContext(vimid="Owner_R1", reporter="vesagent", now_us=NOW)
LATER = FaultContext(vimid="Owner_R1", reporter="vesagent", now_us=NOW + 60_000_000)
DOWN_SINCE = "2026-11-25T12:30:50.000000"


def valid(t: Transition) -> Transition:
    """Every event of ``t`` encodes and validates in v5 and v7; its record is storable."""
    for event in t.events:
        for version in ("v5", "v7"):
            encoded = encode(event, version)
            assert ves_schema.errors({"event": encoded}, version) == []
            assert len(dumps(encoded)) < 16 * 1024
    if t.upsert is not None:
        alarm_params(t.upsert)  # raises on a record the store cannot keep
    return t


def item(**kw: Any) -> dict[str, Any]:
    body = {
        "id": "e81d66a4-ddd3-4aba-8a84-171d1cb4d339",
        "binary": "nova-compute",
        "host": "compute-1",
        "state": "up",
        "status": "enabled",
        "forced_down": False,
        "disabled_reason": None,
        "updated_at": DOWN_SINCE,
        "zone": "nova",
    }
    body.update(kw)
    return body


def view(**kw: Any) -> HostView:
    parsed = HostView.from_nova(item(**kw))
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"state": "down"}, ("HostDown", "CRITICAL")),
        ({"state": "DOWN"}, ("HostDown", "CRITICAL")),
        ({"state": "down", "forced_down": True}, ("HostFencedDown", "MAJOR")),
        ({"state": "up", "forced_down": True}, ("HostFencedDown", "MAJOR")),
        ({"status": "disabled", "forced_down": True}, ("HostFencedDown", "MAJOR")),
        (
            {"status": "disabled", "disabled_reason": "kernel update"},
            ("HostMaintenance", "WARNING"),
        ),
        ({"status": "disabled", "state": "down"}, ("HostMaintenance", "WARNING")),
        (
            {"status": "disabled", "disabled_reason": "AUTO: Connection to libvirt lost: 1"},
            ("HostAutoDisabled", "MAJOR"),
        ),
        (
            {"status": "disabled", "state": "down", "disabled_reason": "AUTO: lost"},
            ("HostDown", "CRITICAL"),
        ),
        ({"state": "sideways"}, None),
        ({"status": "UNKNOWN", "state": None}, None),
    ],
)
def test_condition_table(changes: dict[str, Any], expected: tuple[str, str] | None) -> None:
    """Each service record maps to one problem and severity (None: healthy or unknown)."""
    assert host_condition(view(**changes)) == expected


def test_condition_of_nothing_is_none() -> None:
    """No record at all is not a condition (the host's removal is decided by decide_host)."""
    assert host_condition(None) is None


@pytest.mark.parametrize(
    "body",
    [None, [], "compute-1", 5, {}, {"host": 5}, {"host": ""}, {"host": "   "}, {"state": "down"}],
)
def test_unusable_records_are_skipped(body: object) -> None:
    """A record without a usable host name is not a host."""
    assert HostView.from_nova(body) is None


@pytest.mark.parametrize(
    ("forced", "expected"),
    [(True, True), ("true", True), ("TRUE", True), (False, False), (1, False), (None, False)],
)
def test_forced_down_is_only_a_true_flag(forced: object, expected: bool) -> None:
    """Only JSON true (or "true") fences a host; 1 or garbage do not."""
    assert view(forced_down=forced).forced_down is expected


def test_fixture_records_parse_as_nova_means_them() -> None:
    """Nova's own samples: 2.11/2.53 computes are disabled (maintenance); 2.69 are unknown."""
    for micro in ("v2.11", "v2.53"):
        body = json.loads((FIXTURES / micro / "services-list-get-resp.json").read_text())
        computes = [
            HostView.from_nova(s) for s in body["services"] if s["binary"] == "nova-compute"
        ]
        assert [(v.host, v.state, v.status) for v in computes if v] == [
            ("host1", "up", "disabled"),
            ("host2", "down", "disabled"),
        ]
        assert all(host_condition(v) == ("HostMaintenance", "WARNING") for v in computes)
        assert computes[0] is not None and computes[0].disabled_reason == "test2"
    body = json.loads((FIXTURES / "v2.69" / "services-list-get-resp.json").read_text())
    cells = [HostView.from_nova(s) for s in body["services"]]
    assert all(v is not None and not v.known for v in cells)
    assert all(host_condition(v) is None and not host_is_down(v) for v in cells)


def test_down_host_raises_critical_with_heartbeat_as_start() -> None:
    """A dead host raises once; the episode starts at its last heartbeat (stable eventId)."""
    t = valid(decide_host(None, view(state="down"), CTX))
    (event,) = t.events
    assert event.domain == "fault" and event.sequence == 1
    assert event.event_name == "Fault_MultiCloud_HostDown"
    assert event.fields["severity"] == "CRITICAL"
    assert event.fields["source_type"] == "host"
    assert event.source_name == event.source_id == "compute-1"
    assert event.start_epoch_us == parse_time_us(DOWN_SINCE, 0)
    assert event.fields["additional"]["zone"] == "nova"
    assert t.upsert is not None and t.upsert.condition == HOST_CONDITION
    # another replica, a minute later, computes the very same alarm
    again = decide_host(None, view(state="down"), LATER).events[0]
    assert again.event_id == event.event_id and " " not in event.event_id


def test_outage_sequence_is_one_alarm() -> None:
    """down -> fenced -> up: raise, re-raise (same id, next sequence), one clear."""
    raised = valid(decide_host(None, view(state="down"), CTX))
    held = valid(decide_host(raised.upsert, view(state="down"), LATER))
    assert held.events == () and held.upsert is None and held.delete is None
    fenced = valid(decide_host(raised.upsert, view(state="down", forced_down=True), LATER))
    (re_raise,) = fenced.events
    assert re_raise.event_id == raised.events[0].event_id
    assert re_raise.sequence == 2 and re_raise.fields["severity"] == "MAJOR"
    assert re_raise.fields["alarm_condition"] == "HostFencedDown"
    cleared = valid(decide_host(fenced.upsert, view(), LATER))
    (clear,) = cleared.events
    assert clear.event_id == raised.events[0].event_id
    assert clear.start_epoch_us == raised.events[0].start_epoch_us
    assert clear.sequence == 3 and clear.fields["severity"] == "NORMAL"
    assert clear.event_name == "Fault_MultiCloud_HostFencedDownCleared"
    assert cleared.delete == ("Owner_R1", "compute-1", HOST_CONDITION)


def test_problem_change_with_equal_severity_reraises() -> None:
    """Fenced (MAJOR) -> auto-disabled (MAJOR): same severity, other problem: re-raise."""
    fenced = decide_host(None, view(forced_down=True), CTX)
    auto = valid(
        decide_host(fenced.upsert, view(status="disabled", disabled_reason="AUTO: x"), LATER)
    )
    assert [e.fields["alarm_condition"] for e in auto.events] == ["HostAutoDisabled"]
    assert auto.events[0].sequence == 2


@pytest.mark.parametrize(
    "after",
    [None, {"status": "enabled"}],
    ids=["removed", "enabled-again"],
)
def test_maintenance_clears_when_enabled_or_removed(after: dict[str, Any] | None) -> None:
    """A maintenance warning is cleared when the host is enabled again or deleted."""
    raised = valid(decide_host(None, view(status="disabled", disabled_reason="upgrade"), CTX))
    assert raised.events[0].fields["severity"] == "WARNING"
    assert raised.events[0].fields["additional"]["disabled_reason"] == "upgrade"
    assert raised.events[0].start_epoch_us == NOW  # an up host's updated_at moves: use now
    cleared = valid(decide_host(raised.upsert, view(**after) if after else None, LATER))
    assert [e.fields["severity"] for e in cleared.events] == ["NORMAL"]
    assert cleared.delete is not None


def test_down_cell_record_neither_raises_nor_clears() -> None:
    """A 2.69 partial record says nothing about the host: the open alarm stays as it is."""
    cell = HostView.from_nova({"binary": "nova-compute", "host": "compute-1", "status": "UNKNOWN"})
    assert cell is not None and not cell.known
    raised = decide_host(None, view(state="down"), CTX)
    assert decide_host(raised.upsert, cell, LATER) == Transition()
    assert decide_host(None, cell, LATER) == Transition()


def test_healthy_host_without_alarm_does_nothing() -> None:
    """Up and enabled, nothing open: nothing to say; a vanished healthy host neither."""
    assert decide_host(None, view(), CTX) == Transition()
    assert decide_host(None, None, CTX) == Transition()


def test_heartbeat_in_the_future_does_not_start_the_episode_after_now() -> None:
    """A skewed Nova clock cannot make startEpochMicrosec later than lastEpochMicrosec."""
    t = valid(decide_host(None, view(state="down", updated_at="2099-01-01T00:00:00"), CTX))
    event = t.events[0]
    assert event.start_epoch_us == NOW == event.last_epoch_us


@pytest.mark.parametrize(
    ("changes", "down"),
    [
        ({}, False),
        ({"state": "down"}, True),
        ({"forced_down": True}, True),
        ({"state": "down", "status": "disabled"}, True),
        ({"status": "disabled"}, False),
        ({"state": None, "status": "UNKNOWN"}, False),
    ],
)
def test_host_is_down_table(changes: dict[str, Any], down: bool) -> None:
    """VMs are unreachable on a down or fenced host, maintenance or not; unknown is not down."""
    assert host_is_down(view(**changes)) is down


@pytest.mark.parametrize(
    ("filters", "host", "service_id", "selected"),
    [
        ({}, "compute-1", "", True),
        ({"source": "*"}, "compute-1", "", True),
        ({"source": "compute-1"}, "compute-1", "", True),
        ({"source": "compute-1"}, "compute-2", "", False),
        ({"sourceid": "svc-1"}, "compute-2", "svc-1", True),
        ({"sourceid": "compute-2"}, "compute-2", "svc-1", True),
        ({"sourceid": "svc-1", "source": "compute-9"}, "compute-2", "svc-1", True),
        ({"sourceid": "svc-1", "source": "compute-2"}, "compute-2", "svc-2", False),
    ],
)
def test_host_selected(filters: dict[str, str], host: str, service_id: str, selected: bool) -> None:
    """A host backlog's source names one host; omitted or "*" means all; an id wins."""
    backlog = Backlog.model_validate({"domain": "fault", "type": "host", **filters})
    assert host_selected(backlog, host, service_id) is selected


def test_vm_child_alarm_lifecycle() -> None:
    """Host down: MAJOR child raise naming the host; held; moved to another down host:
    re-raise; host back: one clear with the same id."""
    since = parse_time_us(DOWN_SINCE, 0)
    raised = valid(decide_vm_host(None, "s-1", "vm-1", True, CTX, host="compute-1", since_us=since))
    (event,) = raised.events
    assert event.fields["severity"] == "MAJOR"
    assert event.fields["source_type"] == "virtualMachine"
    assert event.fields["alarm_condition"] == VM_HOST_CONDITION
    assert event.fields["additional"]["host"] == "compute-1"
    assert event.source_id == "s-1" and event.source_name == "vm-1"
    assert event.start_epoch_us == since
    assert raised.upsert is not None and raised.upsert.condition == VM_HOST_CONDITION
    held = decide_vm_host(raised.upsert, "s-1", "vm-1", True, LATER, host="compute-1")
    assert held == Transition()
    moved = valid(decide_vm_host(raised.upsert, "s-1", "vm-1", True, LATER, host="compute-2"))
    assert moved.events[0].event_id == event.event_id and moved.events[0].sequence == 2
    cleared = valid(decide_vm_host(moved.upsert, "s-1", None, False, LATER))
    (clear,) = cleared.events
    assert clear.event_id == event.event_id and clear.sequence == 3
    assert clear.fields["severity"] == "NORMAL" and clear.source_name == "vm-1"
    assert cleared.delete == ("Owner_R1", "s-1", VM_HOST_CONDITION)


def test_vm_on_healthy_host_without_alarm_does_nothing() -> None:
    """No child alarm, host fine: nothing."""
    assert decide_vm_host(None, "s-1", "vm-1", False, CTX, host="compute-1") == Transition()


# -- arbitrary input -----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=50),
    st.text(max_size=3000),
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=6,
)
fields = {
    "host": st.one_of(st.text(min_size=1, max_size=400), values),
    "state": st.one_of(st.sampled_from(["up", "down", "UNKNOWN", ""]), values),
    "status": st.one_of(st.sampled_from(["enabled", "disabled", "UNKNOWN"]), values),
    "forced_down": st.one_of(st.booleans(), values),
    "disabled_reason": st.one_of(st.sampled_from(["AUTO: lost", "ünïcode ☃"]), values),
    "updated_at": st.one_of(
        st.sampled_from(["2026-11-25T12:30:50.000000", "0001-01-01T00:00:00", "x"]), values
    ),
    "zone": values,
    "id": values,
}
likely = {
    "host": st.text(min_size=1, max_size=400).filter(str.strip),
    "state": st.sampled_from(["up", "down"]),
    "status": st.sampled_from(["enabled", "disabled"]),
}
service_items = st.one_of(
    values,
    st.fixed_dictionaries({}, optional=fields),
    # mostly well-formed records, so that raises, re-raises and clears do happen
    st.fixed_dictionaries(likely, optional={k: v for k, v in fields.items() if k not in likely}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(service_items, min_size=1, max_size=4), host_down=st.booleans())
def test_any_service_records_give_valid_events(records: list[Any], host_down: bool) -> None:
    """Successive arbitrary records for a host: nothing raises, every event validates."""
    prev = child = None
    for record in [*records, None]:
        parsed = HostView.from_nova(record) if record is not None else None
        t = valid(decide_host(prev, parsed, CTX))
        prev = t.upsert or (None if t.delete else prev)
        host = parsed.host if parsed else ""
        down = host_down and host_is_down(parsed)
        c = valid(decide_vm_host(child, "s-1", host, down, CTX, host=host))
        child = c.upsert or (None if c.delete else child)
