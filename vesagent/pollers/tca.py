"""Threshold crossing alerts for one VM and one threshold: a pure decision.

Same conventions as ``decide.py`` (no clock, no I/O, no random ids; a ``Transition`` holds
the events and the alarm state to keep). The value comes from ``measure.metric_values`` of
the VM's latest measurement event.

- The value crosses the threshold (``Threshold.crossed``: strictly beyond the limit) and no
  alert is open: one ``thresholdCrossingAlert`` event with ``alertAction`` SET and the
  threshold's severity, and an ``AlarmRecord`` with ``condition``
  ``TCA:{metric}:{direction}{limit}`` (``TCA:cpu.percentUsage:above90``).
- While it holds: nothing, or one CONT per poll when ``threshold.cont``; also a CONT when the
  threshold's severity was edited meanwhile (the record takes the new severity).
- Back on the good side (a value equal to the limit is good): one CLEAR (severity NORMAL)
  and the record is deleted. ``clear_tca`` does the same when the VM or the threshold is
  gone.
- No value (None or not finite: the VM reported nothing for that metric) changes nothing.

Identifiers: TCA is a non-fault domain, so ``sequence`` is 0 on every event and each event
has its own ``eventId`` (VES 7 rules; the outbox also refuses a repeated
``(eventId, sequence)``). The SET's id is derived from the region, VM, condition and the
SET's time (``tca-<hash>``); a CONT or CLEAR is ``{SET id}-{n}`` (n = 2, 3...: the record's
``sequence`` counts the events of the episode) and names the SET in
``associatedAlertIdList``. ``startEpochMicrosec`` and ``eventStartTimestamp`` are the SET's
time on every event of the episode.

Counters go in ``additionalParameters`` (name = metric, ``thresholdCrossed`` = the rule,
value = the measured value); their ``criticality`` is CRIT for a CRITICAL threshold and MAJ
otherwise (the only two values the schema allows).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from vesagent.config import Threshold
from vesagent.model import AlarmRecord, VesEvent
from vesagent.pollers.decide import NO_CHANGE, FaultContext, Transition, alarm_event

TCA_PREFIX = "TCA:"
"""Every TCA ``AlarmRecord.condition`` starts with this."""
TCA_EVENT_NAME = "Tca_vesagent_VMThreshold"
"""The ``eventName`` of every threshold crossing alert."""
ALERT_TYPE = "ELEMENT-ANOMALY"


def _fmt(number: float) -> str:
    """``90.0`` -> ``90``, ``0.5`` -> ``0.5``: numbers as people write them."""
    if math.isfinite(number) and float(number).is_integer() and abs(number) < 1e18:
        return str(int(number))
    return repr(float(number))


def tca_condition(threshold: Threshold) -> str:
    """The alarm condition of a threshold: ``TCA:{metric}:{direction}{limit}``."""
    return f"{TCA_PREFIX}{threshold.metric}:{threshold.direction}{_fmt(threshold.limit)}"


def tca_alert_id(vimid: str, server_id: str, condition: str, start_us: int) -> str:
    """Deterministic id of a SET (and base of its CONT/CLEAR ids); no whitespace."""
    digest = hashlib.sha256(
        f"{vimid}|{server_id}|{condition}|{start_us}".encode("utf-8", "replace")
    ).hexdigest()
    return f"tca-{digest[:24]}"


def _criticality(severity: str) -> str:
    return "CRIT" if severity == "CRITICAL" else "MAJ"


def _tca_event(
    ctx: FaultContext,
    *,
    event_id: str,
    action: str,
    severity: str,
    server_id: str,
    server_name: str,
    start_us: int,
    metric: str,
    rule: str,
    value: float | None,
    description: str,
    associated: str | None,
    additional: dict[str, Any],
) -> VesEvent:
    shown = _fmt(value) if value is not None else "unknown"
    fields: dict[str, Any] = {
        "alert_action": action,
        "alert_description": description,
        "alert_type": ALERT_TYPE,
        "event_severity": severity,
        "counters": [
            {
                "name": metric,
                "criticality": _criticality(severity),
                "threshold_crossed": rule,
                "value": shown,
            }
        ],
        "alert_value": shown,
        "element_type": "virtualMachine",
        "data_collector": ctx.reporter,
        "additional": additional,
    }
    if associated is not None:
        fields["associated_alert_id"] = [associated]
    urgent = action != "CLEAR" and severity in ("CRITICAL", "MAJOR")
    return alarm_event(
        ctx,
        domain="tca",
        event_id=event_id,
        event_name=TCA_EVENT_NAME,
        source_id=server_id,
        source_name=server_name,
        start_us=start_us,
        sequence=0,
        priority="High" if urgent else "Normal",
        fields=fields,
    )


def _usable(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def decide_tca(
    prev: AlarmRecord | None,
    threshold: Threshold,
    value: float | None,
    *,
    vimid: str,
    server_id: str,
    server_name: str,
    ctx: FaultContext,
) -> Transition:
    """SET, CONT, CLEAR or nothing for one VM and one threshold (see the module docstring)."""
    measured = _usable(value)
    if measured is None:
        return NO_CHANGE
    condition = tca_condition(threshold)
    rule = f"{threshold.direction} {_fmt(threshold.limit)}"
    metric = threshold.metric
    additional = {
        "vimid": vimid,
        "metric": metric,
        "threshold": rule,
        "value": _fmt(measured),
    }
    if not threshold.crossed(measured):
        if prev is None:
            return NO_CHANGE
        return _clear(
            prev,
            ctx,
            server_name=server_name,
            value=measured,
            description=f"{metric} is back within {rule}: {_fmt(measured)}",
            additional=additional,
        )

    name = server_name or (prev.source_name if prev else "")
    if prev is None:
        start_us = ctx.now_us
        event_id = tca_alert_id(vimid, server_id, condition, start_us)
        sequence, associated, action = 1, None, "SET"
    elif threshold.cont or prev.severity != threshold.severity:
        start_us, sequence = prev.start_epoch_us, prev.sequence + 1
        event_id, associated, action = f"{prev.event_id}-{sequence}", prev.event_id, "CONT"
    else:
        return NO_CHANGE
    event = _tca_event(
        ctx,
        event_id=event_id,
        action=action,
        severity=threshold.severity,
        server_id=server_id,
        server_name=name,
        start_us=start_us,
        metric=metric,
        rule=rule,
        value=measured,
        description=f"{metric} {rule}: {_fmt(measured)}",
        associated=associated,
        additional=additional,
    )
    record = AlarmRecord(
        vimid=vimid,
        source_id=server_id,
        condition=condition,
        event_id=prev.event_id if prev is not None else event_id,
        start_epoch_us=start_us,
        sequence=sequence,
        severity=threshold.severity,
        source_name=name,
        data={"metric": metric, "rule": rule},
    )
    return Transition((event,), upsert=record)


def _clear(
    prev: AlarmRecord,
    ctx: FaultContext,
    *,
    server_name: str | None,
    value: float | None,
    description: str,
    additional: dict[str, Any],
) -> Transition:
    sequence = prev.sequence + 1
    parts = prev.condition.split(":")
    metric = str(prev.data.get("metric") or (parts[1] if len(parts) > 2 else prev.condition))
    rule = str(prev.data.get("rule") or "")
    event = _tca_event(
        ctx,
        event_id=f"{prev.event_id}-{sequence}",
        action="CLEAR",
        severity="NORMAL",
        server_id=prev.source_id,
        server_name=server_name or prev.source_name,
        start_us=prev.start_epoch_us,
        metric=metric,
        rule=rule or prev.condition,
        value=value,
        description=description,
        associated=prev.event_id,
        additional=additional,
    )
    return Transition((event,), delete=(prev.vimid, prev.source_id, prev.condition))


def clear_tca(prev: AlarmRecord, ctx: FaultContext, *, reason: str = "gone") -> Transition:
    """The CLEAR of an open alert whose VM or threshold is gone (deleted, unwatched)."""
    return _clear(
        prev,
        ctx,
        server_name=None,
        value=None,
        description=f"{prev.condition} no longer watched: {reason}",
        additional={"vimid": prev.vimid, "reason": reason},
    )
