"""OutageLog: an outage is logged as state changes, not once per failed attempt."""

from __future__ import annotations

from typing import Any

from vesagent.outage import OutageLog


class Recorder:
    """Collects log calls as (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))


def make(now: list[float]) -> tuple[OutageLog, Recorder]:
    rec = Recorder()
    return OutageLog(rec, "poll", every=60.0, clock=lambda: now[0]), rec


def test_first_failure_logged_then_once_a_minute_then_recovered() -> None:
    """failing at once, still_failing after 60 s (not before), one recovered with down_for_s."""
    now = [1000.0]
    outage, rec = make(now)
    assert outage.failed("r1", "boom", vimid="r1") is True
    now[0] += 30
    assert outage.failed("r1", "boom again") is False
    now[0] += 31
    outage.failed("r1", "still boom")
    now[0] += 9
    assert outage.succeeded("r1") == 70.0
    assert [(lvl, ev) for lvl, ev, _ in rec.lines] == [
        ("warning", "poll.failing"),
        ("warning", "poll.still_failing"),
        ("info", "poll.recovered"),
    ]
    assert rec.lines[0][2] == {"error": "boom", "down_for_s": 0.0, "vimid": "r1"}
    assert rec.lines[1][2]["error"] == "still boom"
    assert rec.lines[2][2]["down_for_s"] == 70.0


def test_success_without_outage_logs_nothing() -> None:
    """A success that ends no outage writes no line and returns None."""
    outage, rec = make([0.0])
    assert outage.succeeded("r1") is None
    assert rec.lines == []


def test_keys_are_independent_and_details_are_lazy() -> None:
    """Two keys have their own outages; details() runs only when a line is written."""
    now = [0.0]
    outage, rec = make(now)
    calls: list[int] = []

    def details() -> dict[str, int]:
        calls.append(1)
        return {"waiting": 7}

    outage.failed("a", "x", details)
    outage.failed("a", "x", details)  # not logged: details not computed
    outage.failed("b", "y", details)
    assert len(calls) == 2
    assert outage.down_since("a") == 0.0 and outage.last_error("b") == "y"
    assert rec.lines[0][2]["waiting"] == 7
    outage.forget("a")
    assert outage.down_since("a") is None and outage.down_since("b") == 0.0
