"""Liveness: ``/healthz`` tells a stuck reconciler or poll timer from a live one.

The verdict is a pure function of the progress clocks; the in-process test wires a real agent
(against the A&AI simulator) exactly as ``vesagent run`` does, then stops one loop at a time
and moves a clock forward instead of waiting minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until
from vesagent.agent import Agent, build_agent, shutdown
from vesagent.api import create_app
from vesagent.liveness import Clock, Liveness, allowed_silence, stalled_loops
from vesagent.settings import Settings
from vesagent.sim.aai import AaiSim


def test_a_loop_is_stalled_only_after_misses_periods_plus_grace() -> None:
    """Silent for 3 periods + grace is still alive; a moment longer is stalled."""
    assert allowed_silence(30, misses=3, grace=30) == 120
    clocks = {"reconciler": Clock(period=30, last_tick=1000), "poll-timer": Clock(1, 1100)}
    assert stalled_loops(clocks, now=1120, misses=3, grace=30) == []
    (stalled,) = stalled_loops(clocks, now=1120.5, misses=3, grace=30)
    assert stalled.loop == "reconciler" and stalled.silent_for == 120.5
    assert [s.loop for s in stalled_loops(clocks, now=1200, misses=3, grace=30)] == [
        "poll-timer",
        "reconciler",
    ]


def test_a_loop_with_its_own_grace_may_stay_silent_longer() -> None:
    """The reconciler's long grace (slow A&AI passes) does not lengthen the timer's."""
    clocks = {"reconciler": Clock(30, 0, grace=600), "poll-timer": Clock(1, 0)}
    assert [s.loop for s in stalled_loops(clocks, now=690, misses=3, grace=30)] == ["poll-timer"]
    assert len(stalled_loops(clocks, now=690.5, misses=3, grace=30)) == 2


def test_a_loop_that_never_ticks_is_stalled_from_its_declaration() -> None:
    """A loop stuck in its very first pass is caught too: its clock starts at ``expect``."""
    now = [0.0]
    liveness = Liveness(clock=lambda: now[0], misses=3, grace=10)
    liveness.expect("reconciler", 5)
    now[0] = 25
    assert liveness.report() == ({"status": "ok", "loops": ["reconciler"]}, 200)
    now[0] = 25.1
    body, status = liveness.report()
    assert status == 503
    assert body["stuck"] == [
        {"loop": "reconciler", "silent_seconds": 25.1, "allowed_seconds": 25.0}
    ]
    liveness.tick("reconciler")
    assert liveness.report()[1] == 200


@pytest.fixture
def aai() -> Iterator[AaiSim]:
    sim = AaiSim().start()
    try:
        yield sim
    finally:
        sim.stop()


class Skew:
    """``time.monotonic`` plus a jump the test controls."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead


def _healthz(agent: Agent) -> tuple[int, dict[str, Any]]:
    response = create_app(agent).test_client().get("/healthz")
    return response.status_code, response.get_json()


def _stuck(agent: Agent) -> list[str]:
    status, body = _healthz(agent)
    return [s["loop"] for s in body["stuck"]] if status == 503 else []


def test_healthz_fails_naming_the_loop_that_stopped(aai: AaiSim, tmp_path: Path) -> None:
    """A real agent: /healthz is 200 while both loops turn, 503 naming the reconciler once it
    stops, and naming the poll timer too once that stops."""
    settings = Settings(
        aai_url=aai.url, state_dir=tmp_path / "state", listen="127.0.0.1:0", aai_sync_interval=0.2
    )
    agent = build_agent(settings)
    skew = Skew()
    agent.liveness.clock = skew
    loop_stop = threading.Event()
    # As run_agent starts it: the reconcile loop ticks the "reconciler" clock after each pass.
    loop = threading.Thread(
        target=agent.reconciler.run,
        args=(loop_stop, settings.aai_sync_interval, agent.liveness.ticker("reconciler")),
        daemon=True,
    )
    loop.start()
    try:
        wait_until(lambda: agent.reconciler.ready, 10, "a first A&AI read")
        status, body = _healthz(agent)
        assert status == 200 and body["loops"] == ["poll-timer", "reconciler"]

        loop_stop.set()
        agent.reconciler.trigger()
        loop.join(5)
        assert not loop.is_alive()
        skew.ahead += 3 * settings.aai_sync_interval + 601
        # The timer still turns: its next tick (every 50 ms) catches up with the jump.
        wait_until(lambda: _stuck(agent) == ["reconciler"], 5, "only the reconciler stuck")
        assert _healthz(agent)[0] == 503

        agent.pollers.shutdown(timeout=2)  # the poll timer thread ends
        skew.ahead += 40
        status, body = _healthz(agent)
        assert status == 503
        assert [s["loop"] for s in body["stuck"]] == ["poll-timer", "reconciler"]
    finally:
        loop_stop.set()
        agent.reconciler.trigger()
        shutdown(agent)
