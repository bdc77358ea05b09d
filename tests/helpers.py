"""One home for the helpers tests share: waiting with a deadline, free ports, a settable clock,
fixture files and the agent's metrics.

Tests never sleep a guessed time: they wait for the state they expect (an API answer, a
metric, a collector event) with :func:`wait_until`, which fails naming what did not happen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests
from prometheus_client.parser import text_string_to_metric_families

# One allocator for tests and bench: never the same port twice in a run (see its docstring).
from vesagent.bench.scale import free_port as free_port

FIXTURES = Path(__file__).resolve().parent / "fixtures"

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 15.0, what: str = "", step: float = 0.02
) -> T:
    """Call ``predicate`` until it returns something truthy and return it; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(step)


class FakeClock:
    """A settable clock (epoch seconds) for code and simulators that take a ``clock``."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def fixture_json(relative: str) -> Any:
    """A JSON file under ``tests/fixtures/`` (e.g. ``"aai/csit_v13_cloud_region_get.json"``)."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def metric_value(base_url: str, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The sum of the samples called ``name`` on ``{base_url}/metrics`` whose labels include
    ``labels``; None when there is no such sample (or the agent does not answer)."""
    try:
        text = requests.get(base_url + "/metrics", timeout=5).text
    except requests.RequestException:
        return None
    wanted = dict(labels or {})
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and wanted.items() <= sample.labels.items()
    ]
    return sum(found) if found else None
