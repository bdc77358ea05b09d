"""The notification metrics, registered on the agent's registry (see README "Notifications").

- ``vesagent_notifications_up{vimid}``: 1 while the region's listener is connected, else 0.
- ``vesagent_notifications_received_total{vimid,event_type}``: notifications heard for the
  region (``event_type`` is a known Nova type or ``other``, so bad input cannot grow labels).
- ``vesagent_notifications_ignored_total{vimid,kind}``: of those, the ones that could not
  change a fault, by ``events.IgnoreKind`` (plus ``not_json`` for undecodable bodies).
- ``vesagent_notifications_doorbells_total{vimid}``: polls asked for (before coalescing).
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge

from vesagent.notifications.events import IRRELEVANT_PREFIXES, STATE_CHANGING_ACTIONS

_TYPE = re.compile(r"[a-z][a-z0-9_]{0,40}(\.[a-z][a-z0-9_]{0,40}){1,3}")
_KNOWN_HEADS = ("instance.", "service.", "compute.", *IRRELEVANT_PREFIXES)


def event_type_label(event_type: object) -> str:
    """The label value for ``event_type``: itself when it looks like Nova's, else ``other``."""
    if not (isinstance(event_type, str) and _TYPE.fullmatch(event_type)):
        return "other"
    if not event_type.startswith(_KNOWN_HEADS):
        return "other"
    parts = event_type.split(".")
    if parts[0] != "instance" or len(parts) != 3 or parts[1] in STATE_CHANGING_ACTIONS:
        return event_type
    return event_type if parts[2] in ("error", "start", "end") else "other"


class NotificationMetrics:
    """The notification side's own metrics (metrics.py belongs to the core)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.up = Gauge(
            "vesagent_notifications_up",
            "1 while the region's Nova notification listener is connected",
            ["vimid"],
            registry=registry,
        )
        self.received = Counter(
            "vesagent_notifications_received",
            "Nova versioned notifications heard for the region, by event type",
            ["vimid", "event_type"],
            registry=registry,
        )
        self.ignored = Counter(
            "vesagent_notifications_ignored",
            "Notifications that could not change a fault, by why",
            ["vimid", "kind"],
            registry=registry,
        )
        self.doorbells = Counter(
            "vesagent_notifications_doorbells",
            "Immediate polls asked for by notifications (before coalescing)",
            ["vimid"],
            registry=registry,
        )

    def forget(self, vimid: str) -> None:
        """Drop a region's series (it no longer listens)."""
        for metric in (self.up, self.received, self.ignored, self.doorbells):
            for labels in [s for s in _label_sets(metric) if s and s[0] == vimid]:
                metric.remove(*labels)


def _label_sets(metric: Gauge | Counter) -> list[tuple[str, ...]]:
    # prometheus_client keeps children by label tuple; no public listing exists.
    return list(getattr(metric, "_metrics", {}).keys())
