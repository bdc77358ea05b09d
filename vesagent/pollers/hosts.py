"""Compute host faults from ``GET /os-services?binary=nova-compute``: pure decisions.

Same conventions as ``decide.py``: no clock, no I/O, no random ids; the caller passes a
``FaultContext`` and gets a ``Transition`` (events + the alarm state to keep, atomically).

What a ``nova-compute`` service record means (Nova api-ref os-services, servicegroup code):

- ``state`` up|down is liveness: down when the last heartbeat (``updated_at``) is older than
  ``service_down_time`` (60 s by default);
- ``status`` enabled|disabled is the scheduler flag, with ``disabled_reason``;
- ``forced_down`` (2.11+) is set by an operator or an HA tool (Masakari, a fencing script)
  that has fenced the host; Nova then reports it down whatever its heartbeat says;
- a 2.69 down-cell record ``{"binary", "host", "status": "UNKNOWN"}`` means Nova cannot
  reach the cell database: it says nothing about the host itself.

One alarm per host (``condition`` ``"Host"``), whose specific problem is one of:

========================  ==========  =======================================================
problem                   severity    when
========================  ==========  =======================================================
``HostDown``              CRITICAL    down, not fenced, and not disabled by an operator: the
                                      host died or lost its control network, its VMs are
                                      probably unreachable and nobody has acted yet
``HostFencedDown``        MAJOR       ``forced_down``: still an outage (the host and its VMs
                                      are out of service), but a known one that an operator
                                      or HA tool is already handling (evacuation), so it
                                      does not call for the same urgency as an unexplained
                                      death; WARNING would understate lost capacity and VMs
``HostAutoDisabled``      MAJOR       up, disabled with a reason starting ``AUTO:``: Nova's
                                      libvirt driver disables its own service when it loses
                                      the hypervisor connection; not maintenance but a fault
``HostMaintenance``       WARNING     disabled by an operator (any other reason), up or down
========================  ==========  =======================================================

Why disabled raises a WARNING rather than nothing: the host accepts no new VMs, so capacity
is reduced and an orchestrator placing VNFs should know; its VMs keep running (a down host's
VMs get their own per-VM alarm), so it is no more than a warning, and a planned maintenance
then shows up as one low-severity raise and one clear when the host is enabled again. A host
under maintenance that is also down is still "maintenance": an operator took it out of
service, a reboot is expected. ``MAINTENANCE_SEVERITY`` can be set to None to silence it.

Why one alarm per host and not one per problem: the problems exclude each other, and the
usual sequence of an outage is HostDown, then HostFencedDown when the HA tool fences the
host. That is one episode: it is re-raised (same ``eventId``, next ``sequence``, new
severity and problem) rather than cleared and raised again, which would tell the collector
that the host recovered in between.

Episode start: ``updated_at`` (the last heartbeat) when the host is down, because it does not
move while the host is silent, so every replica and restart computes the same ``eventId``;
the poll's time otherwise (an up host's ``updated_at`` moves every 10 s).

A VM on a down host (``host_is_down``) gets its own child alarm ``HostUnreachable``
(``decide_vm_host``), MAJOR, cleared when the host is back, the VM is gone or it moved to a
healthy host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vesagent.config import Backlog
from vesagent.model import AlarmRecord
from vesagent.pollers.decide import (
    NO_CHANGE,
    FaultContext,
    FaultSpec,
    Transition,
    clear_alarm,
    clear_last_problem,
    parse_time_us,
    raise_alarm,
)

HOST_CONDITION = "Host"
"""The ``AlarmRecord.condition`` of a host's alarm (one per host, whatever the problem)."""
VM_HOST_CONDITION = "HostUnreachable"
"""The ``AlarmRecord.condition`` of a VM's "host unreachable" child alarm."""

HOST_DOWN = "HostDown"
HOST_FENCED = "HostFencedDown"
HOST_AUTO_DISABLED = "HostAutoDisabled"
HOST_MAINTENANCE = "HostMaintenance"
MAINTENANCE_SEVERITY: str | None = "WARNING"
"""Severity of an operator-disabled host; None would mean "no alarm for maintenance"."""

AUTO_DISABLE_PREFIX = "AUTO:"
"""Nova's libvirt driver prefixes the reasons it disables its own service with ``AUTO: ``."""

SPECIFIC_PROBLEMS: Mapping[str, str] = {
    HOST_DOWN: "nova-compute service down",
    HOST_FENCED: "compute host fenced (forced_down)",
    HOST_AUTO_DISABLED: "compute service disabled by Nova",
    HOST_MAINTENANCE: "compute host disabled for maintenance",
    VM_HOST_CONDITION: "compute host of the VM is down",
}
"""``specificProblem`` text per problem: stable, the variable detail goes to additional info."""

VM_HOST_SEVERITY = "MAJOR"

MAX_HOST_LEN = 255
MAX_REASON_LEN = 255


def _text(value: Any, limit: int = MAX_HOST_LEN) -> str:
    """Nova bodies are untrusted: any value as a bounded string ("" for None)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def _word(value: Any, known: tuple[str, ...]) -> str:
    """A lower-cased value when it is one of ``known``, else ``"unknown"``."""
    if isinstance(value, str) and value.strip().lower() in known:
        return value.strip().lower()
    return "unknown"


def _flag(value: Any) -> bool:
    """JSON true (or the string "true" some proxies produce); anything else is false."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def _start_us(text: str, ctx: FaultContext) -> int:
    """An episode start from a Nova timestamp, never after the poll nor before the epoch."""
    try:
        start = parse_time_us(text, ctx.now_us)
    except (OverflowError, ValueError):
        start = ctx.now_us
    return start if 0 < start <= ctx.now_us else ctx.now_us


@dataclass(frozen=True, slots=True)
class HostView:
    """What vesagent keeps of one ``nova-compute`` service record.

    ``state`` is ``up``, ``down`` or ``unknown``; ``status`` ``enabled``, ``disabled`` or
    ``unknown``. Both are ``unknown`` for a 2.69 down-cell record (``known`` is then False).
    """

    host: str
    state: str
    status: str
    forced_down: bool = False
    disabled_reason: str = ""
    zone: str = ""
    updated_at: str = ""
    service_id: str = ""

    @property
    def known(self) -> bool:
        """False for a down-cell (partial) record: Nova does not know this host's state."""
        return self.state != "unknown" and self.status != "unknown"

    @classmethod
    def from_nova(cls, item: Any) -> HostView | None:
        """Parse one item of ``/os-services``; None when it has no usable host name."""
        if not isinstance(item, Mapping):
            return None
        host = item.get("host")
        if not isinstance(host, str) or not host.strip():
            return None
        return cls(
            host=host[:MAX_HOST_LEN],
            state=_word(item.get("state"), ("up", "down")),
            status=_word(item.get("status"), ("enabled", "disabled")),
            forced_down=_flag(item.get("forced_down")),
            disabled_reason=_text(item.get("disabled_reason"), MAX_REASON_LEN),
            zone=_text(item.get("zone")),
            updated_at=_text(item.get("updated_at"), 40),
            service_id=_text(item.get("id"), 64),
        )


def _auto_disabled(view: HostView) -> bool:
    return view.status == "disabled" and view.disabled_reason.startswith(AUTO_DISABLE_PREFIX)


def host_condition(view: HostView | None) -> tuple[str, str] | None:
    """``(problem, severity)`` of a host, or None when healthy, unknown or absent.

    Precedence follows Nova's own ``host_status``: fenced first, then an operator's disable,
    then liveness. See the module docstring for the table and the reasons.
    """
    if view is None or not view.known:
        return None
    if view.forced_down:
        return HOST_FENCED, "MAJOR"
    if view.status == "disabled" and not _auto_disabled(view):
        return (HOST_MAINTENANCE, MAINTENANCE_SEVERITY) if MAINTENANCE_SEVERITY else None
    if view.state == "down":
        return HOST_DOWN, "CRITICAL"
    if _auto_disabled(view):
        return HOST_AUTO_DISABLED, "MAJOR"
    return None


def host_is_down(view: HostView | None) -> bool:
    """True when the host's VMs are unreachable: known to be down or fenced (any status)."""
    return view is not None and view.known and (view.state == "down" or view.forced_down)


def host_selected(backlog: Backlog, host_name: str, service_id: str = "") -> bool:
    """Whether a host backlog watches ``host_name``.

    ``source`` names one host; ``sourceid`` one service id (or host name); omitted, blank or
    ``"*"`` (normalised to None by the config model) means every host. As for VMs, an id
    wins over a name when both are given.
    """
    source_id, source = backlog.sourceid, backlog.source
    if source_id not in (None, "", "*"):
        return source_id in (service_id, host_name)
    if source not in (None, "", "*"):
        return source == host_name
    return True


def _host_additional(ctx: FaultContext, view: HostView) -> dict[str, Any]:
    info: dict[str, Any] = {
        "vimid": ctx.vimid,
        "host": view.host,
        "state": view.state,
        "status": view.status,
        "forced_down": view.forced_down,
    }
    optional = {
        "disabled_reason": view.disabled_reason,
        "zone": view.zone,
        "updated_at": view.updated_at,
        "service_id": view.service_id,
    }
    info.update({k: v for k, v in optional.items() if v})
    return info


def decide_host(prev: AlarmRecord | None, view: HostView | None, ctx: FaultContext) -> Transition:
    """Raise, re-raise, clear or nothing for one compute host.

    ``view`` None: the host is no longer listed (service deleted), which clears. A down-cell
    record (``view.known`` False) changes nothing: the VIM alarm covers it.
    """
    if view is not None and not view.known:
        return NO_CHANGE
    found = host_condition(view)
    if found is None:
        if prev is None:
            return NO_CHANGE
        return clear_last_problem(
            prev,
            ctx,
            default=HOST_DOWN,
            problems=SPECIFIC_PROBLEMS,
            source_type="host",
            additional=(
                _host_additional(ctx, view)
                if view is not None
                else {"vimid": ctx.vimid, "host": prev.source_id, "state": "removed"}
            ),
        )

    assert view is not None
    problem, severity = found
    if prev is not None and prev.severity == severity and prev.data.get("problem") == problem:
        return NO_CHANGE
    # Same outage, another problem or severity: raise_alarm re-raises the same alarm.
    return raise_alarm(
        prev,
        ctx,
        key=HOST_CONDITION,
        source_id=view.host,
        source_name=view.host,
        first_start_us=_start_us(view.updated_at, ctx) if view.state == "down" else ctx.now_us,
        fault=FaultSpec(
            f"Fault_MultiCloud_{problem}",
            severity,
            problem,
            SPECIFIC_PROBLEMS[problem],
            "host",
            _host_additional(ctx, view),
        ),
        data={"problem": problem},
    )


def decide_vm_host(
    prev: AlarmRecord | None,
    server_id: str,
    server_name: str | None,
    host_down: bool,
    ctx: FaultContext,
    *,
    host: str = "",
    since_us: int | None = None,
) -> Transition:
    """The per-VM "host unreachable" child alarm of a VM whose compute host is down.

    ``host_down``: the VM is (still) on a host for which ``host_is_down`` holds; False when
    the host is back, the VM is gone (``server_name`` may then be None) or it moved to a
    healthy host, which clears. ``host`` names the host in the additional information;
    ``since_us`` is the episode start (pass the host alarm's ``start_epoch_us`` so that every
    replica derives the same ``eventId``; default: now). A move from one down host to another
    re-raises the same alarm with the new host.
    """
    server_id = _text(server_id, 64)
    if not host_down:
        if prev is None:
            return NO_CHANGE
        last_host = str(prev.data.get("host") or "")
        return clear_alarm(
            prev,
            ctx,
            name="Fault_MultiCloud_VMHostUnreachableCleared",
            condition=VM_HOST_CONDITION,
            problem=SPECIFIC_PROBLEMS[VM_HOST_CONDITION],
            source_type="virtualMachine",
            source_name=_text(server_name) or None,
            additional={"vimid": ctx.vimid, "host": _text(host) or last_host or None},
        )

    host = _text(host)
    if prev is not None and str(prev.data.get("host") or "") == host:
        return NO_CHANGE
    name = _text(server_name) or (prev.source_name if prev else "") or server_id
    return raise_alarm(
        prev,
        ctx,
        key=VM_HOST_CONDITION,
        source_id=server_id,
        source_name=name,
        first_start_us=(
            since_us if since_us is not None and 0 < since_us <= ctx.now_us else ctx.now_us
        ),
        fault=FaultSpec(
            "Fault_MultiCloud_VMHostUnreachable",
            VM_HOST_SEVERITY,
            VM_HOST_CONDITION,
            SPECIFIC_PROBLEMS[VM_HOST_CONDITION],
            "virtualMachine",
            {"vimid": ctx.vimid, "host": host or None},
        ),
        data={"host": host},
    )
