"""The raise/clear decision for VM faults: a pure function of (open alarm, server) -> events.

No clock, no I/O, no random ids: the caller passes ``now_us`` and everything an event needs is
derived from stable inputs, so a retry, a restart or another replica taking over a region
announces the *same* alarm (same ``eventId``) rather than a new one.

Rules (CONTRACT.md section 5, VES 7.2 eventId/sequence rules):

- A server whose status is a fault status raises one alarm per episode. The episode starts at
  the server's ``updated`` time as Nova reports it when the fault is first seen; ``eventId`` and
  ``startEpochMicrosec`` stay the same for the raise, any re-raise and the clear.
- ``sequence`` is 1 on the raise and grows by one on each re-raise (severity change) and on the
  clear.
- A server that is healthy again, deleted or gone gets one clear (``eventSeverity`` NORMAL).
- Nothing is sent while the state holds.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vesagent.model import AlarmRecord, VesEvent

VM_FAILURE = "VMFailure"
RAISE_NAME = "Fault_MultiCloud_VMFailure"
CLEAR_NAME = "Fault_MultiCloud_VMFailureCleared"
ALARM_CONDITION = "Guest_Os_Failure"

# Statuses that are a fault, with the severity they raise. ERROR is a failure; the others are
# a VM that is not serving (the ONAP MultiCloud agent raised on every non-healthy status).
FAULT_SEVERITY: Mapping[str, str] = {
    "ERROR": "CRITICAL",
    "SHUTOFF": "MAJOR",
    "PAUSED": "MAJOR",
    "SUSPENDED": "MAJOR",
    "SHELVED": "MAJOR",
    "SHELVED_OFFLOADED": "MAJOR",
    "UNKNOWN": "MAJOR",
    "RESCUE": "MAJOR",
}
HEALTHY_STATUSES = frozenset(
    {
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
    }
)
# A server in one of these is on its way out: its alarm is cleared like a deletion.
GONE_STATUSES = frozenset({"DELETED", "SOFT_DELETED"})


def _text(value: Any, limit: int = 255) -> str:
    """Nova bodies are untrusted: coerce to a bounded string."""
    if type(value) is str:  # the usual case first: this runs for every field of every server
        return value[:limit]
    if value is None:
        return ""
    return str(value)[:limit]


_NO_FAULT: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class ServerView:
    """What vesagent keeps of one Nova server: small, because large clouds have 100,000.

    Strings that repeat across servers (tenant, status, host) are interned.
    """

    id: str
    name: str
    tenant_id: str
    status: str
    host: str
    updated: str
    fault_code: str = ""
    fault_message: str = ""

    @classmethod
    def from_nova(cls, body: Any) -> ServerView | None:
        """Parse one item of ``/servers/detail``; None when it has no usable id."""
        if type(body) is not dict and not isinstance(body, Mapping):
            return None
        server_id = body.get("id")
        if type(server_id) is not str or not server_id:
            return None
        fault = body.get("fault")
        if fault is None or (type(fault) is not dict and not isinstance(fault, Mapping)):
            fault = _NO_FAULT
        return cls(
            id=server_id[:64],
            name=_text(body.get("name")),
            tenant_id=sys.intern(_text(body.get("tenant_id"), 64)),
            status=sys.intern(_text(body.get("status"), 32).upper() or "UNKNOWN"),
            host=sys.intern(_text(body.get("OS-EXT-SRV-ATTR:host"), 255)),
            updated=_text(body.get("updated"), 40),
            fault_code=_text(fault.get("code"), 16),
            fault_message=_text(fault.get("message"), 1024),
        )


def parse_time_us(text: str, default_us: int) -> int:
    """Nova's ``updated`` (``2026-11-25T12:30:50Z``) in epoch microseconds."""
    if not text:
        return default_us
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return default_us
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1_000_000 + parsed.microsecond


def fault_event_id(vimid: str, source_id: str, condition: str, start_us: int) -> str:
    """Deterministic per fault episode: every replica and every restart computes the same id."""
    digest = hashlib.sha256(f"{vimid}|{source_id}|{condition}|{start_us}".encode()).hexdigest()
    return f"fault-{digest[:24]}"


def severity_of(server: ServerView | None) -> str | None:
    """The severity a server's status raises, or None when it is healthy or gone."""
    if server is None or server.status in GONE_STATUSES or server.status in HEALTHY_STATUSES:
        return None
    return FAULT_SEVERITY.get(server.status, "MAJOR")


@dataclass(frozen=True)
class Transition:
    """What one decision asks for: events to send and the alarm state to keep, atomically."""

    events: tuple[VesEvent, ...] = ()
    upsert: AlarmRecord | None = None
    delete: tuple[str, str, str] | None = None


NO_CHANGE = Transition()


@dataclass(frozen=True)
class FaultContext:
    """Constants of one region's poll that the events carry."""

    vimid: str
    reporter: str
    now_us: int


def alarm_event(
    ctx: FaultContext,
    *,
    domain: str,
    event_id: str,
    event_name: str,
    source_id: str,
    source_name: str,
    start_us: int,
    sequence: int,
    priority: str,
    fields: dict[str, Any],
) -> VesEvent:
    """The one way an alarm's event (fault or tca) is built: reporter, times and identity.

    ``lastEpochMicrosec`` is the decision's time, never before the episode's start (a clock
    that stepped back must not produce an event that ends before it began).
    """
    return VesEvent(
        domain=domain,
        event_id=event_id,
        event_name=event_name,
        source_name=source_name or source_id,
        source_id=source_id,
        reporting_entity_name=ctx.reporter,
        start_epoch_us=start_us,
        last_epoch_us=max(ctx.now_us, start_us),
        sequence=sequence,
        priority=priority,
        fields=fields,
    )


def fault_event(
    ctx: FaultContext,
    *,
    event_id: str,
    name: str,
    source_id: str,
    source_name: str,
    start_us: int,
    sequence: int,
    severity: str,
    condition: str,
    problem: str,
    source_type: str,
    additional: dict[str, Any],
) -> VesEvent:
    """A fault event in the neutral vocabulary (VM, host, VM-on-host and VIM faults)."""
    return alarm_event(
        ctx,
        domain="fault",
        event_id=event_id,
        event_name=name,
        source_id=source_id,
        source_name=source_name,
        start_us=start_us,
        sequence=sequence,
        priority="Normal" if severity == "NORMAL" else "High",
        fields={
            "alarm_condition": condition,
            "specific_problem": problem,
            "severity": severity,
            "source_type": source_type,
            "vf_status": "Active",
            "additional": additional,
        },
    )


@dataclass(frozen=True)
class FaultSpec:
    """What one raise (or re-raise) of an alarm says; the alarm's identity is separate."""

    name: str
    severity: str
    condition: str
    problem: str
    source_type: str
    additional: dict[str, Any]


def raise_alarm(
    prev: AlarmRecord | None,
    ctx: FaultContext,
    *,
    key: str,
    source_id: str,
    source_name: str,
    first_start_us: int,
    fault: FaultSpec,
    data: dict[str, Any] | None = None,
) -> Transition:
    """Raise a new alarm, or re-raise ``prev`` (same eventId and start, next sequence).

    ``key`` is the alarm's condition in the store (one alarm per source and key); a new
    episode's ``eventId`` is derived from it and from ``first_start_us``.
    """
    if prev is None:
        start_us = first_start_us
        event_id = fault_event_id(ctx.vimid, source_id, key, start_us)
        sequence = 1
    else:
        start_us, event_id, sequence = prev.start_epoch_us, prev.event_id, prev.sequence + 1
    event = fault_event(
        ctx,
        event_id=event_id,
        name=fault.name,
        source_id=source_id,
        source_name=source_name,
        start_us=start_us,
        sequence=sequence,
        severity=fault.severity,
        condition=fault.condition,
        problem=fault.problem,
        source_type=fault.source_type,
        additional=fault.additional,
    )
    record = AlarmRecord(
        vimid=ctx.vimid,
        source_id=source_id,
        condition=key,
        event_id=event_id,
        start_epoch_us=start_us,
        sequence=sequence,
        severity=fault.severity,
        source_name=source_name,
        data=data or {},
    )
    return Transition((event,), upsert=record)


def clear_alarm(
    prev: AlarmRecord,
    ctx: FaultContext,
    *,
    name: str,
    condition: str,
    problem: str,
    source_type: str,
    additional: dict[str, Any],
    source_name: str | None = None,
) -> Transition:
    """The one clear of ``prev``: same eventId and start, next sequence, severity NORMAL."""
    event = fault_event(
        ctx,
        event_id=prev.event_id,
        name=name,
        source_id=prev.source_id,
        source_name=source_name or prev.source_name,
        start_us=prev.start_epoch_us,
        sequence=prev.sequence + 1,
        severity="NORMAL",
        condition=condition,
        problem=problem,
        source_type=source_type,
        additional=additional,
    )
    return Transition((event,), delete=(prev.vimid, prev.source_id, prev.condition))


def clear_last_problem(
    prev: AlarmRecord,
    ctx: FaultContext,
    *,
    default: str,
    problems: Mapping[str, str],
    source_type: str,
    additional: dict[str, Any],
) -> Transition:
    """The clear of an alarm that names its last problem in ``data["problem"]`` (hosts, VIM).

    The clear repeats that problem (``Fault_MultiCloud_{problem}Cleared``), so the collector
    pairs it with the raise whatever the problem became during the episode.
    """
    last = str(prev.data.get("problem") or default)
    return clear_alarm(
        prev,
        ctx,
        name=f"Fault_MultiCloud_{last}Cleared",
        condition=last,
        problem=problems.get(last, last),
        source_type=source_type,
        additional=additional,
    )


def decide_vm(prev: AlarmRecord | None, server: ServerView | None, ctx: FaultContext) -> Transition:
    """Raise, re-raise, clear or nothing for one server (None: deleted or no longer listed)."""
    severity = severity_of(server)
    if severity is None:
        if prev is None:
            return NO_CHANGE
        return clear_alarm(
            prev,
            ctx,
            name=CLEAR_NAME,
            condition=ALARM_CONDITION,
            problem=RAISE_NAME,
            source_type="virtualMachine",
            source_name=server.name if server else None,
            additional={"vimid": ctx.vimid, "status": server.status if server else "DELETED"},
        )

    assert server is not None
    if prev is not None and prev.severity == severity:
        return NO_CHANGE
    additional = {"vimid": ctx.vimid, "status": server.status, "tenant_id": server.tenant_id}
    if server.host:
        additional["host"] = server.host
    if server.fault_code:
        additional["fault_code"] = server.fault_code
    if server.fault_message:
        additional["fault_message"] = server.fault_message
    return raise_alarm(
        prev,
        ctx,
        key=VM_FAILURE,
        source_id=server.id,
        source_name=server.name,
        first_start_us=parse_time_us(server.updated, ctx.now_us),
        fault=FaultSpec(
            RAISE_NAME, severity, ALARM_CONDITION, RAISE_NAME, "virtualMachine", additional
        ),
    )
