"""Heartbeat events: a pure function of (source, interval, now, counter) -> one VES event.

What DCAE's heartbeat microservice needs (VES FACTS section 7): it keeps only events whose
``eventName`` equals a configured value, then tracks ``sourceName`` and
``lastEpochMicrosec`` and raises a control-loop event after N missed intervals. Hence:

- ``eventName`` is the constant ``HEARTBEAT_EVENT_NAME`` (``Heartbeat_vesagent``) for every
  heartbeat vesagent sends, whatever the source: that is the value to configure in DCAE;
- ``sourceName`` is the caller's stable name of the source (the vimid for a VIM backlog,
  the host name for a host backlog);
- ``lastEpochMicrosec`` is now and ``startEpochMicrosec`` now rounded down to the interval
  boundary (VES 7.2 rule for heartbeats); ``sequence`` is 0 (non-fault domain);
- ``eventId`` is unique per event: ``heartbeat-{vimid}-{counter}``, with a short hash of the
  source name inserted when the source is not the VIM itself, so that two sources of one
  region never collide. The outbox refuses a second event with the same ``(collector,
  eventId, sequence)``, so the counter must never repeat, across restarts too: the caller
  (``periodic.due_heartbeats``) passes the interval boundary in epoch seconds, one per
  interval, which a restart cannot repeat.
- ``heartbeatFields.heartbeatInterval`` carries the interval in whole seconds.
"""

from __future__ import annotations

import hashlib
import math

from vesagent.model import VesEvent

HEARTBEAT_EVENT_NAME = "Heartbeat_vesagent"
"""The one ``eventName`` of vesagent's heartbeats: configure DCAE's heartbeat service with it."""


def event_token(text: str, limit: int = 128) -> str:
    """``text`` usable inside an eventId: whitespace becomes ``_`` (VES 7: no whitespace)."""
    return "".join("_" if ch.isspace() else ch for ch in text[:limit]) or "_"


def interval_us(interval: float) -> int:
    """An interval in seconds as whole microseconds, at least one second."""
    if not isinstance(interval, int | float) or not math.isfinite(interval) or interval < 1:
        return 1_000_000
    return int(interval * 1_000_000)


def boundary_us(now_us: int, interval: float) -> int:
    """``now_us`` rounded down to the interval boundary (epoch-aligned)."""
    step = interval_us(interval)
    return now_us - now_us % step


def heartbeat_event(
    *,
    vimid: str,
    source_name: str,
    interval: float,
    now_us: int,
    counter: int,
    reporter: str,
    source_id: str | None = None,
) -> VesEvent:
    """One heartbeat of ``source_name`` (see the module docstring for every field's rule)."""
    source = source_name or vimid
    token = event_token(vimid)
    if source != vimid:
        token += "-" + hashlib.sha256(source.encode("utf-8", "replace")).hexdigest()[:8]
    seconds = max(1, round(interval_us(interval) / 1_000_000))
    return VesEvent(
        domain="heartbeat",
        event_id=f"heartbeat-{token}-{counter}",
        event_name=HEARTBEAT_EVENT_NAME,
        source_name=source,
        source_id=source_id,
        reporting_entity_name=reporter,
        start_epoch_us=boundary_us(now_us, interval),
        last_epoch_us=now_us,
        sequence=0,
        priority="Normal",
        fields={"interval": seconds},
    )
