"""Heartbeats and paced measurements: what the region's timed jobs send, decided purely.

**Heartbeats** (per heartbeat backlog, default every 60 s): one per backlog and interval
boundary (``due_heartbeats``); the boundary numbers it, so it never repeats across restarts.
They are queued unbuffered: one that cannot be delivered at once is dropped.

**Measurements** (per VM of the measurement and tca backlogs, default every 300 s): the poller
reads ``GET /servers/{id}/diagnostics`` one VM at a time, ``MeasurePlan.gap`` apart, so that
the readings are spread over the first ``MEASURE_SPREAD`` of the interval and a region of
3,000 VMs never bursts 3,000 requests. Rates come from two successive readings
(``measure.measurement_event``); threshold crossings (``tca.decide_tca``) are decided from the
same figures (``measured_transitions``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vesagent import AGENT_NAME
from vesagent.config import Backlog
from vesagent.model import AlarmRecord, VesEvent
from vesagent.pollers.cycle import (
    AlarmKey,
    VmSelector,
    backlogs_of,
    fault_context,
    measure_interval,
    selector_for,
    wild,
)
from vesagent.pollers.decide import ServerView, Transition
from vesagent.pollers.heartbeat import boundary_us, heartbeat_event
from vesagent.pollers.measure import Reading, measurement_event, metric_values
from vesagent.pollers.tca import decide_tca, tca_condition
from vesagent.spec import RegionSpec

MEASURE_SPREAD = 0.5  # diagnostics requests are spread over this share of the interval
MEASURE_PERIOD = "measure"  # the key of the measurement job in the periods map


def due_heartbeats(
    spec: RegionSpec, periods: Mapping[str, int], now_us: int
) -> tuple[list[VesEvent], dict[str, int]]:
    """The heartbeats not yet sent for the current interval of each heartbeat backlog.

    ``periods`` maps a backlog's key to the boundary its last heartbeat belonged to; the
    updated map is returned with the events.
    """
    after = dict(periods)
    events = []
    for backlog in backlogs_of(spec, "heartbeat"):
        interval = spec.config.interval_of(backlog)
        period = boundary_us(now_us, interval)
        if after.get(backlog.key) == period:
            continue  # this interval's heartbeat is already out
        after[backlog.key] = period
        source = backlog.source if backlog.source and not wild(backlog.source) else spec.vimid
        events.append(
            heartbeat_event(
                vimid=spec.vimid,
                source_name=source,
                interval=interval,
                now_us=now_us,
                # One heartbeat per interval: its boundary numbers it, never repeating.
                counter=period // 1_000_000,
                reporter=AGENT_NAME,
            )
        )
    return events, after


def superseded_prefix(event: VesEvent) -> str:
    """The eventId prefix shared by every heartbeat of the same source (older ones are moot)."""
    return event.event_id.rsplit("-", 1)[0] + "-"


@dataclass(frozen=True)
class MeasurePlan:
    """One measurement interval of a region: which VMs, for which backlogs, how far apart."""

    interval: float
    period_us: int
    measured: tuple[VmSelector, ...]
    checked: tuple[tuple[Backlog, VmSelector], ...]
    targets: tuple[ServerView, ...]
    gap: float


def measure_period(spec: RegionSpec, now_us: int) -> int | None:
    """The interval boundary measurements belong to now (None: nothing is measured)."""
    interval = measure_interval(spec)
    return None if interval is None else boundary_us(now_us, interval)


def plan_measurements(
    spec: RegionSpec,
    servers: Iterable[ServerView],
    tenants: Mapping[str, str | None],
    now_us: int,
) -> MeasurePlan | None:
    """The VMs to read this interval (None: the region measures nothing)."""
    interval = measure_interval(spec)
    if interval is None:
        return None
    measured = tuple(selector_for(b, tenants) for b in backlogs_of(spec, "measurement", "vm"))
    checked = tuple((b, selector_for(b, tenants)) for b in backlogs_of(spec, "tca", "vm"))
    every = measured + tuple(sel for _b, sel in checked)
    targets = tuple(s for s in servers if any(sel.matches(s) for sel in every))
    return MeasurePlan(
        interval=interval,
        period_us=boundary_us(now_us, interval),
        measured=measured,
        checked=checked,
        targets=targets,
        gap=interval * MEASURE_SPREAD / max(1, len(targets)),
    )


def measured_transitions(
    plan: MeasurePlan,
    spec: RegionSpec,
    server: ServerView,
    previous: Reading | None,
    reading: Reading,
    alarms: Mapping[AlarmKey, AlarmRecord],
) -> list[Transition]:
    """The measurement event of one VM's reading and the threshold crossings it decides."""
    now_us = reading.at_us
    event = measurement_event(
        previous,
        reading,
        vimid=spec.vimid,
        server_id=server.id,
        server_name=server.name,
        interval=plan.interval,
        counter=plan.period_us // 1_000_000,
        reporter=AGENT_NAME,
        now_us=now_us,
        period_us=plan.period_us,
    )
    if event is None:
        return []
    transitions: list[Transition] = []
    if any(sel.matches(server) for sel in plan.measured):
        transitions.append(Transition((event,)))
    values = metric_values(event.fields)
    ctx = fault_context(spec, now_us)
    for backlog, sel in plan.checked:
        if not sel.matches(server):
            continue
        for threshold in backlog.thresholds:
            transitions.append(
                decide_tca(
                    alarms.get((server.id, tca_condition(threshold))),
                    threshold,
                    values.get(threshold.metric),
                    vimid=spec.vimid,
                    server_id=server.id,
                    server_name=server.name,
                    ctx=ctx,
                )
            )
    return transitions
