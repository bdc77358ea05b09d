"""Geometry of the console's two small charts, as plain numbers for an inline SVG template.

No chart library and no JavaScript: the server computes rectangles, the template draws them,
and CSS classes (not inline styles, which the Content-Security-Policy forbids) colour them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from vesagent.history import PollRecord

WIDTH, HEIGHT = 360, 110
PLOT_TOP, PLOT_BOTTOM, PLOT_LEFT = 8, 92, 34
DOMAINS = ("fault", "tca", "measurement", "heartbeat")


@dataclass(frozen=True)
class Bar:
    """One rectangle, with its CSS class and a tooltip."""

    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Chart:
    """A bar chart ready to draw: bars, the y-axis maximum and its labels."""

    bars: list[Bar]
    y_max: str
    x_left: str
    x_right: str
    empty: bool
    legend: tuple[str, ...] = ()
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PLOT_LEFT
    plot_top: int = PLOT_TOP
    plot_bottom: int = PLOT_BOTTOM


def _slot(count: int) -> float:
    return (WIDTH - PLOT_LEFT - 4) / max(count, 1)


def events_per_minute(per_minute: Sequence[tuple[int, dict[str, int]]]) -> Chart:
    """Stacked bars: events queued per minute, one colour per domain."""
    peak = max((sum(counts.values()) for _m, counts in per_minute), default=0)
    scale = (PLOT_BOTTOM - PLOT_TOP) / max(peak, 1)
    slot = _slot(len(per_minute))
    bars = []
    for i, (minute, counts) in enumerate(per_minute):
        y = float(PLOT_BOTTOM)
        label = time.strftime("%H:%M", time.gmtime(minute * 60))
        for domain in sorted(counts, key=lambda d: DOMAINS.index(d) if d in DOMAINS else 9):
            height = counts[domain] * scale
            y -= height
            bars.append(
                Bar(
                    x=round(PLOT_LEFT + i * slot + 1, 1),
                    y=round(y, 1),
                    width=round(max(slot - 2, 1), 1),
                    height=round(height, 1),
                    css=f"d-{domain if domain in DOMAINS else 'other'}",
                    title=f"{label} UTC: {counts[domain]} {domain}",
                )
            )
    first = per_minute[0][0] if per_minute else 0
    return Chart(
        bars=bars,
        y_max=str(peak),
        x_left=time.strftime("%H:%M", time.gmtime(first * 60)) if per_minute else "",
        x_right="now",
        empty=peak == 0,
        legend=DOMAINS,
    )


def poll_durations(polls: Sequence[PollRecord]) -> Chart:
    """One bar per recent fault poll, its height the duration; failed polls in red."""
    peak = max((p.seconds for p in polls), default=0.0)
    scale = (PLOT_BOTTOM - PLOT_TOP) / (peak or 1.0)
    slot = _slot(max(len(polls), 30))
    bars = []
    for i, poll in enumerate(polls):
        height = max(poll.seconds * scale, 1.0)
        bars.append(
            Bar(
                x=round(PLOT_LEFT + i * slot + 1, 1),
                y=round(PLOT_BOTTOM - height, 1),
                width=round(max(slot - 2, 1), 1),
                height=round(height, 1),
                css="poll-ok" if poll.ok else "poll-failed",
                title=f"{time.strftime('%H:%M:%S', time.gmtime(poll.at))} UTC: "
                f"{poll.seconds * 1000:.0f} ms{'' if poll.ok else ' (failed)'}",
            )
        )
    return Chart(
        bars=bars,
        y_max=f"{peak * 1000:.0f} ms",
        x_left=f"last {len(polls)} polls" if polls else "",
        x_right="now",
        empty=not polls,
    )
