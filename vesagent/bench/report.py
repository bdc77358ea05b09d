"""A bench figure, the table it prints in and the JSON file it is written to."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COLUMNS = ("figure", "vesagent", "baseline", "ratio", "goal", "met?")


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its baseline (measured in the same run) and its goal.

    ``met`` is None for an informational row without a goal. ``baseline_label`` says what the
    baseline is; ``notes`` carries the other numbers a reader needs to trust the figure.
    """

    key: str
    title: str
    unit: str
    vesagent: float
    baseline: float | None
    baseline_label: str
    goal: str
    met: bool | None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """``vesagent / baseline`` (None without a usable baseline)."""
        if self.baseline is None or self.baseline == 0 or not math.isfinite(self.baseline):
            return None
        return self.vesagent / self.baseline

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, ratio included."""
        return {**asdict(self), "ratio": self.ratio}


def fmt_number(value: float | None, unit: str = "") -> str:
    """Three significant digits, thousands separated; ``-`` for None."""
    if value is None or not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100 or value == int(value):
        text = f"{value:.0f}" if value == int(value) or magnitude >= 100 else f"{value:.1f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.01:
        text = f"{value:.3g}"
    else:
        text = f"{value:.2e}"
    return f"{text} {unit}".rstrip()


def fmt_ratio(ratio: float | None) -> str:
    """``0.00033x``-style ratios, readable both ways."""
    if ratio is None:
        return "-"
    if ratio >= 0.01:
        return f"{ratio:.3g}x"
    return f"1/{1 / ratio:,.0f}" if ratio > 0 else "0x"


def table_rows(figures: Iterable[Figure]) -> list[tuple[str, ...]]:
    """The table's cells, one tuple per figure."""
    rows: list[tuple[str, ...]] = []
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        rows.append(
            (
                f.title,
                fmt_number(f.vesagent, f.unit),
                fmt_number(f.baseline, f.unit),
                fmt_ratio(f.ratio),
                f.goal,
                met,
            )
        )
    return rows


def render_table(rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS) -> str:
    """A plain-text table with a header rule; columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Where the figures were measured (they depend on it)."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(
    path: Path,
    figures: Sequence[Figure],
    simulators: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """``bench-results.json``: every figure, the simulators' own capacity, the environment."""
    document = {
        "environment": environment(),
        "figures": [f.to_json() for f in figures],
        "simulators": simulators,
        **(extra or {}),
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
