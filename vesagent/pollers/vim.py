"""The VIM (the region's OpenStack APIs) as a fault source: pure decisions.

Same conventions as ``decide.py`` (no clock, no I/O, no random ids). The poller keeps a
``VimHealth`` per region, folds every poll's outcome into it with ``observe`` and asks
``decide_vim`` what to send.

One alarm per region (``condition`` ``"VIM"``, ``sourceId``/``sourceName`` = the vimid):

- ``VimUnreachable``, CRITICAL, after ``threshold`` consecutive failed polls (the backlog's
  ``failure_threshold``, default 3), whatever the failure: Keystone refusing the
  credentials, an unreachable endpoint, 5xx, timeouts. The region's control plane cannot be
  used (no VM can be created or healed) and every other alarm of the region is blind.
  The last failure's text and its kind (``failure_kind``) travel in the additional info.
- ``VimDegraded``, MAJOR, at once when Nova answers with partial (2.69 down-cell) records:
  part of the cloud (a cell) is unreachable, the rest works.

A change between the two re-raises the same alarm (next ``sequence``); a change of the
failure's text alone does not (alternating timeouts and 503s would otherwise re-raise on
every poll). One clear when a poll succeeds again with complete records. While some polls
fail but fewer than ``threshold`` in a row, an open alarm is kept, not cleared.

``eventSourceType`` is ``"other"``: the schema takes any string, ``other`` is in the list
both VES specs suggest, and no VES consumer knows a VIM type; the A&AI object class
(``cloud-region``) is in the additional info instead.

The episode starts at the first failure of the run (``VimHealth.failed_since_us``, when the
caller passes ``at_us`` to ``observe``), else at the raising poll; the alarm record keeps it
across restarts.

While a VIM alarm is open, VM and host alarms are frozen (``cycle.decide_poll``): a VM that
is not listed or listed as UNKNOWN is then a symptom of the VIM's trouble, not of the VM.
Raising would flood the collector with one false alarm per VM and clearing would announce
recoveries that did not happen; the first poll after the VIM alarm clears decides every VM
again from complete data.
"""

from __future__ import annotations

from dataclasses import dataclass

from vesagent.model import AlarmRecord
from vesagent.pollers.decide import (
    NO_CHANGE,
    FaultContext,
    FaultSpec,
    Transition,
    clear_last_problem,
    raise_alarm,
)

VIM_CONDITION = "VIM"
"""The ``AlarmRecord.condition`` of a region's VIM alarm."""
VIM_UNREACHABLE = "VimUnreachable"
VIM_DEGRADED = "VimDegraded"
SOURCE_TYPE = "other"

SPECIFIC_PROBLEMS = {
    VIM_UNREACHABLE: "OpenStack API of the region unusable",
    VIM_DEGRADED: "Nova answers partial records (a cell is unreachable)",
}
SEVERITIES = {VIM_UNREACHABLE: "CRITICAL", VIM_DEGRADED: "MAJOR"}

MAX_REASON_LEN = 1024
MAX_FAILURES = 1_000_000


@dataclass(frozen=True)
class VimHealth:
    """The recent poll history of one region, as much as the VIM decision needs."""

    consecutive_failures: int = 0
    last_reason: str = ""
    failed_since_us: int | None = None


HEALTHY = VimHealth()


def observe(
    health: VimHealth, ok: bool, reason: str | None, *, at_us: int | None = None
) -> VimHealth:
    """The health after one more poll: success resets, failure counts (``reason`` kept).

    ``at_us`` is the poll's time; the first failure of a run is remembered as the start of
    the episode.
    """
    if ok:
        return HEALTHY
    text = (reason if isinstance(reason, str) else "") or "unknown failure"
    first = health.consecutive_failures == 0
    return VimHealth(
        consecutive_failures=min(health.consecutive_failures + 1, MAX_FAILURES),
        last_reason=text[:MAX_REASON_LEN],
        failed_since_us=at_us if first else health.failed_since_us,
    )


_KINDS = (
    ("auth", ("credential", "authenticat", "http 401", "token")),
    ("permission", ("admin role", "http 403", "policy")),
    ("timeout", ("timed out", "timeout", "http 408", "http 504")),
    ("rate-limited", ("http 429", "http 413")),
    ("unreachable", ("cannot reach", "connection", "refused", "no public compute endpoint")),
    ("tls", ("tls", "ssl", "certificate")),
    ("server-error", ("http 5",)),
)


def failure_kind(reason: str) -> str:
    """A coarse kind for a failure text (as ``ComputeClient`` words it), for dashboards.

    One of auth, permission, timeout, rate-limited, unreachable, tls, server-error, other.
    """
    lowered = reason.lower()
    for kind, needles in _KINDS:
        if any(needle in lowered for needle in needles):
            return kind
    return "other"


def vim_problem(health: VimHealth, threshold: int, partial_records: bool) -> tuple[str, str] | None:
    """``(problem, severity)`` of the VIM, or None when it is healthy enough to raise nothing."""
    if health.consecutive_failures >= max(threshold, 1):
        return VIM_UNREACHABLE, SEVERITIES[VIM_UNREACHABLE]
    if partial_records:
        return VIM_DEGRADED, SEVERITIES[VIM_DEGRADED]
    return None


def decide_vim(
    prev: AlarmRecord | None,
    health: VimHealth,
    threshold: int,
    partial_records: bool,
    ctx: FaultContext,
) -> Transition:
    """Raise, re-raise, clear or nothing for the region's VIM alarm (see the module doc)."""
    found = vim_problem(health, threshold, partial_records)
    if found is None:
        # Fewer failures than the threshold with an alarm open: not healthy yet, keep it.
        if prev is None or health.consecutive_failures > 0:
            return NO_CHANGE
        return clear_last_problem(
            prev,
            ctx,
            default=VIM_UNREACHABLE,
            problems=SPECIFIC_PROBLEMS,
            source_type=SOURCE_TYPE,
            additional={"vimid": ctx.vimid, "source_class": "cloud-region"},
        )

    problem, severity = found
    if prev is not None and prev.severity == severity and prev.data.get("problem") == problem:
        return NO_CHANGE
    additional: dict[str, object] = {"vimid": ctx.vimid, "source_class": "cloud-region"}
    if problem == VIM_UNREACHABLE:
        additional.update(
            failed_polls=health.consecutive_failures,
            reason=health.last_reason,
            failure_kind=failure_kind(health.last_reason),
        )
    else:
        additional["partial_records"] = True
    since = health.failed_since_us if problem == VIM_UNREACHABLE else None
    return raise_alarm(
        prev,
        ctx,
        key=VIM_CONDITION,
        source_id=ctx.vimid,
        source_name=ctx.vimid,
        first_start_us=since if since is not None and 0 < since <= ctx.now_us else ctx.now_us,
        fault=FaultSpec(
            f"Fault_MultiCloud_{problem}",
            severity,
            problem,
            SPECIFIC_PROBLEMS[problem],
            SOURCE_TYPE,
            additional,
        ),
        data={"problem": problem},
    )
