"""The enqueue step: decided transitions -> encoded VES events -> ONE outbox commit.

This is where a decision becomes a promise. ``enqueue`` encodes each event in the region's
VES version (``ves_client.encode``), commits the events together with the alarm changes that
they announce (``Outbox.commit``: one transaction, so a crash leaves the outbox and the alarm
table in agreement), counts them (``vesagent_events_total``) and logs what was queued. The
``Sender`` delivers from the outbox afterwards; nothing here talks to a collector.

Heartbeats are queued unbuffered (``buffered=False``): one that cannot be delivered at once
is dropped, since a stale heartbeat means nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vesagent.config import VesSubscription
from vesagent.metrics import Metrics
from vesagent.model import VesEvent
from vesagent.pollers.decide import Transition
from vesagent.store import Outbox, OutboxItem
from vesagent.ves_client.encode import dumps, encode


def severity_of_event(event: VesEvent) -> str:
    """The severity label of an event for metrics and logs ("" when the domain has none)."""
    return str(event.fields.get("severity") or event.fields.get("event_severity") or "")


def outbox_items(
    events: Iterable[VesEvent], subscription: VesSubscription, created: float
) -> list[OutboxItem]:
    """Each event encoded in the subscription's VES version, for its collector (pure)."""
    items = []
    for event in events:
        encoded = encode(event, subscription.version)
        items.append(
            OutboxItem(
                collector=subscription.endpoint,
                domain=encoded["commonEventHeader"]["domain"],
                event_id=event.event_id,
                sequence=event.sequence,
                body=dumps(encoded),
                created=created,
                buffered=event.domain != "heartbeat",
            )
        )
    return items


def enqueue(
    outbox: Outbox,
    transitions: Iterable[Transition],
    subscription: VesSubscription,
    *,
    metrics: Metrics,
    log: Any,
    now: float,
) -> list[Transition]:
    """Commit the transitions that change something; return them (empty: nothing to do).

    Raises what ``Outbox.commit`` raises; then nothing of this call was kept.
    """
    kept = [t for t in transitions if t.events or t.upsert or t.delete]
    if not kept:
        return kept
    events = [event for t in kept for event in t.events]
    outbox.commit(
        outbox_items(events, subscription, now),
        upsert=[t.upsert for t in kept if t.upsert],
        delete=[t.delete for t in kept if t.delete],
    )
    for event in events:
        metrics.events.labels(event.domain, severity_of_event(event)).inc()
    faults = [e for e in events if e.domain in ("fault", "tca")]
    if faults:
        log.info(
            "events.queued",
            count=len(faults),
            raised=sum(severity_of_event(e) != "NORMAL" for e in faults),
            cleared=sum(severity_of_event(e) == "NORMAL" for e in faults),
            conditions=sorted({str(e.fields.get("alarm_condition", e.domain)) for e in faults}),
        )
    return kept
