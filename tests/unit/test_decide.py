"""The raise/clear decision for VM faults, as a table of cases."""

from __future__ import annotations

import pytest

from vesagent.pollers.decide import (
    CLEAR_NAME,
    RAISE_NAME,
    FaultContext,
    ServerView,
    decide_vm,
    fault_event_id,
    parse_time_us,
)

CTX = FaultContext(vimid="Owner_R1", reporter="vesagent", now_us=1_800_000_000_000_000)


def server(status: str, **kw: object) -> ServerView:
    body = {
        "id": "s-1",
        "name": "vm-1",
        "tenant_id": "t1",
        "status": status,
        "updated": "2026-11-25T12:30:50Z",
        "OS-EXT-SRV-ATTR:host": "compute-1",
        **kw,
    }
    view = ServerView.from_nova(body)
    assert view is not None
    return view


def raised(status: str = "ERROR", **kw: object):
    t = decide_vm(None, server(status, **kw), CTX)
    assert t.upsert is not None
    return t


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        ("ERROR", "CRITICAL"),
        ("SHUTOFF", "MAJOR"),
        ("PAUSED", "MAJOR"),
        ("SUSPENDED", "MAJOR"),
        ("SHELVED_OFFLOADED", "MAJOR"),
        ("UNKNOWN", "MAJOR"),
        ("SOMETHING_NEW", "MAJOR"),
    ],
)
def test_fault_status_raises_once_with_its_severity(status: str, severity: str) -> None:
    """Entering a fault status raises one event with the status's severity and sequence 1."""
    t = decide_vm(None, server(status), CTX)
    (event,) = t.events
    assert event.event_name == RAISE_NAME
    assert event.fields["severity"] == severity
    assert event.sequence == 1
    assert event.source_id == "s-1" and event.source_name == "vm-1"
    assert t.upsert and t.upsert.severity == severity


@pytest.mark.parametrize(
    "status",
    [
        "ACTIVE",
        "BUILD",
        "REBOOT",
        "HARD_REBOOT",
        "MIGRATING",
        "PASSWORD",
        "RESIZE",
        "VERIFY_RESIZE",
        "REVERT_RESIZE",
        "REBUILD",
    ],
)
def test_healthy_status_without_alarm_does_nothing(status: str) -> None:
    """A healthy server with no open alarm produces nothing."""
    t = decide_vm(None, server(status), CTX)
    assert t.events == () and t.upsert is None and t.delete is None


def test_holding_fault_sends_nothing() -> None:
    """While the fault holds (same severity), repeated polls send nothing."""
    first = raised()
    again = decide_vm(first.upsert, server("ERROR", updated="2026-11-25T12:40:00Z"), CTX)
    assert again.events == () and again.upsert is None


def test_recovery_clears_with_same_event_id_and_next_sequence() -> None:
    """Healthy again: one NORMAL clear with the raise's eventId and start, sequence + 1."""
    first = raised()
    t = decide_vm(first.upsert, server("ACTIVE"), CTX)
    (clear,) = t.events
    (raise_event,) = first.events
    assert clear.event_name == CLEAR_NAME
    assert clear.fields["severity"] == "NORMAL"
    assert clear.event_id == raise_event.event_id
    assert clear.start_epoch_us == raise_event.start_epoch_us
    assert clear.sequence == 2
    assert t.delete == ("Owner_R1", "s-1", "VMFailure")


@pytest.mark.parametrize("gone", [None, "DELETED", "SOFT_DELETED"])
def test_deleted_server_clears(gone: str | None) -> None:
    """A deleted (or vanished) faulty server gets its clear."""
    first = raised()
    t = decide_vm(first.upsert, server(gone) if gone else None, CTX)
    assert [e.fields["severity"] for e in t.events] == ["NORMAL"]
    assert t.delete is not None


def test_severity_change_reraises_same_alarm() -> None:
    """SHUTOFF -> ERROR re-raises the same alarm (same eventId) with the next sequence."""
    first = raised("SHUTOFF")
    t = decide_vm(first.upsert, server("ERROR"), CTX)
    (event,) = t.events
    assert event.event_id == first.events[0].event_id
    assert event.sequence == 2 and event.fields["severity"] == "CRITICAL"


def test_event_id_is_deterministic_per_episode() -> None:
    """Same region, server and episode start -> same eventId; a new episode -> a new one."""
    a = raised().events[0]
    b = raised().events[0]
    c = raised(updated="2026-11-25T13:00:00Z").events[0]
    assert a.event_id == b.event_id != c.event_id
    assert " " not in a.event_id
    assert a.start_epoch_us == parse_time_us("2026-11-25T12:30:50Z", 0)
    assert fault_event_id("x", "s", "c", 1) != fault_event_id("y", "s", "c", 1)


def test_nova_fault_goes_into_additional_information() -> None:
    """Nova's fault code and message travel in the event's additional information."""
    event = raised(fault={"code": 500, "message": "No valid host was found."}).events[0]
    assert event.fields["additional"]["fault_code"] == "500"
    assert event.fields["additional"]["fault_message"] == "No valid host was found."


@pytest.mark.parametrize(
    "body",
    [None, [], "x", {}, {"id": 5}, {"id": ""}],
)
def test_unusable_server_bodies_are_skipped(body: object) -> None:
    """Bodies without a usable id are ignored rather than crashing the poll."""
    assert ServerView.from_nova(body) is None


def test_odd_server_fields_are_coerced() -> None:
    """Wrong types and huge names are coerced to bounded strings."""
    view = ServerView.from_nova({"id": "a", "name": "x" * 10_000, "status": 3, "fault": "no"})
    assert view is not None and len(view.name) == 255 and view.status == "3"
    assert decide_vm(None, view, CTX).events[0].fields["severity"] == "MAJOR"
