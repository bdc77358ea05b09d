"""``Sender`` in-process against the VES collector simulator, with a temporary store.

Covers CONTRACT section 5's delivery rules: order, the same eventId on retry, Retry-After,
refused credentials held until the reconciler hands over new ones, content verdicts
dead-lettered (with the collector's answer) and re-queued after a fix.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Response
from prometheus_client import CollectorRegistry

from tests.helpers import wait_until
from vesagent.metrics import Metrics
from vesagent.sim.base import FaultRule
from vesagent.sim.ves import VesCollectorSim
from vesagent.store import OutboxItem, Store
from vesagent.ves_client.sender import CollectorAuth, CollectorDirectory, Sender

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "ves" / "integration-csit"
TEMPLATE = json.loads((FIXTURE / "ves7_valid.json").read_text(encoding="utf-8"))["event"]
USER, PASSWORD = "ves-user", "ves-right-pw"


def event(n: int, *, valid: bool = True) -> dict[str, Any]:
    """A schema-valid v7 fault with eventId ``ev-{n}`` (or one the collector refuses: 400)."""
    body = copy.deepcopy(TEMPLATE)
    body["commonEventHeader"]["eventId"] = f"ev-{n}"
    if not valid:
        body["commonEventHeader"]["priority"] = "Urgent-ish"  # not in the schema's enum
    return body


class RetryAfterSim(VesCollectorSim):
    """The simulator, whose injected 503s carry ``Retry-After`` and are timestamped."""

    retry_after = "1"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.faulted_at: list[float] = []

    def fault_response(self, rule: FaultRule) -> Response:
        self.faulted_at.append(time.monotonic())
        response = super().fault_response(rule)
        response.headers["Retry-After"] = self.retry_after
        return response


@pytest.fixture(name="ves")
def _ves() -> Iterator[RetryAfterSim]:
    with RetryAfterSim(username=USER, password=PASSWORD, hang_seconds=5) as sim:
        yield sim


class Harness:
    """A store, a directory, metrics and a running sender for one collector."""

    def __init__(self, ves: VesCollectorSim, tmp: Path, password: str = PASSWORD, **kw: Any):
        self.endpoint = ves.url + "/eventListener/v7"
        self.store = Store(tmp)
        self.registry = CollectorRegistry()
        self.directory = CollectorDirectory()
        self.directory.replace({self.endpoint: self.auth(password)})
        kw.setdefault("backoff_initial", 0.05)
        kw.setdefault("scan_interval", 0.1)
        self.sender = Sender(self.store, self.directory, metrics=Metrics(self.registry), **kw)
        self.sender.start()

    def auth(self, password: str) -> CollectorAuth:
        return CollectorAuth(self.endpoint, USER, password, timeout=5.0)

    def enqueue(self, *events: dict[str, Any]) -> None:
        self.store.commit(
            OutboxItem(
                self.endpoint,
                "fault",
                e["commonEventHeader"]["eventId"],
                1,
                json.dumps(e).encode(),
                time.time(),
            )
            for e in events
        )
        self.sender.wake(self.endpoint)

    def up(self) -> float | None:
        return self.registry.get_sample_value("vesagent_collector_up", {"collector": self.endpoint})

    def close(self) -> None:
        self.sender.stop(grace=0.5)
        self.store.close()


@pytest.fixture(name="make")
def _make(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(ves: VesCollectorSim, **kw: Any) -> Harness:
        made.append(Harness(ves, tmp_path / str(len(made)), **kw))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["commonEventHeader"]["eventId"] for e in events]


def test_events_arrive_in_order(ves: RetryAfterSim, make: Any) -> None:
    """Everything committed reaches the collector once, in commit order, batched."""
    h = make(ves, max_batch_events=4)
    h.enqueue(*(event(n) for n in range(10)))
    got = ves.wait_for(count=10)
    assert ids(got) == [f"ev-{n}" for n in range(10)]
    wait_until(lambda: h.store.depth() == 0, what="outbox drained")
    assert h.up() == 1.0


def test_retry_keeps_the_event_id_and_honours_retry_after(ves: RetryAfterSim, make: Any) -> None:
    """Two 503s with Retry-After: 1 are waited out (not 50 ms backoff), same eventId after."""
    ves.inject(status=503, path_prefix="/eventListener", count=2)
    h = make(ves)
    h.enqueue(event(1))
    (got,) = ves.wait_for(count=1, timeout=10)
    arrived = time.monotonic()
    assert ids([got]) == ["ev-1"]
    assert len(ves.faulted_at) == 2
    assert ves.faulted_at[1] - ves.faulted_at[0] >= 0.95
    assert arrived - ves.faulted_at[1] >= 0.95
    assert ves.requests.total("/eventListener", "POST") == 3


def test_refused_credentials_hold_events_until_the_password_is_fixed(
    ves: RetryAfterSim, make: Any
) -> None:
    """A 401 is an outage: nothing dead-lettered, collector_up 0, new credentials resume it."""
    # A long backoff: only the credential change can explain a prompt resume.
    h = make(ves, password="typo", backoff_initial=20.0, backoff_max=60.0)
    h.enqueue(event(1), event(2))
    wait_until(lambda: h.up() == 0.0, what="collector_up 0")
    assert h.sender.last_reason[h.endpoint] == "credentials refused"
    assert "credentials refused" in h.sender.last_error[h.endpoint]
    assert h.store.depth(h.endpoint) == 2
    assert h.store.dead_letter_count() == 0
    assert ves.accepted_count == 0
    started = time.monotonic()
    h.directory.merge({h.endpoint: h.auth(PASSWORD)})  # what the reconciler does
    got = ves.wait_for(count=2, timeout=10)
    assert time.monotonic() - started < 5.0
    assert ids(got) == ["ev-1", "ev-2"]
    wait_until(lambda: h.up() == 1.0, what="collector_up 1")
    assert h.store.dead_letter_count() == 0


def test_content_verdict_is_dead_lettered_and_the_rest_flows(ves: RetryAfterSim, make: Any) -> None:
    """A 400 on one event of a batch dead-letters only it, with status and excerpt."""
    h = make(ves)
    h.enqueue(event(1), event(2, valid=False), event(3))
    got = ves.wait_for(count=2)
    assert ids(got) == ["ev-1", "ev-3"]
    wait_until(lambda: h.store.dead_letter_count() == 1, what="one dead letter")
    (letter,) = h.store.dead_letters()
    assert letter["event_id"] == "ev-2" and letter["status"] == 400
    assert "SVC0002" in letter["response"] and len(letter["response"]) <= 200
    wait_until(lambda: h.store.depth() == 0, what="outbox drained")


def test_requeued_dead_letter_is_delivered(ves: RetryAfterSim, make: Any) -> None:
    """A dead letter re-queued after a fix goes out with its eventId."""
    ves.inject(status=422, path_prefix="/eventListener", count=1)
    h = make(ves)
    h.enqueue(event(7))
    wait_until(lambda: h.store.dead_letter_count() == 1, what="dead letter")
    (letter,) = h.store.dead_letters()
    assert letter["status"] == 422
    assert h.store.requeue_dead_letters(collector=h.endpoint) == [letter["id"]]
    h.sender.wake(h.endpoint)
    (got,) = ves.wait_for(count=1)
    assert ids([got]) == ["ev-7"]
    assert h.store.dead_letter_count() == 0


def test_stop_ends_a_long_backoff(ves: RetryAfterSim, make: Any) -> None:
    """stop() does not wait out a 60 s backoff of a refused collector."""
    h = make(ves, password="typo", backoff_initial=60.0, backoff_max=60.0)
    h.enqueue(event(1))
    wait_until(lambda: h.up() == 0.0, what="collector_up 0")
    done = threading.Event()
    threading.Thread(target=lambda: (h.sender.stop(grace=0.5), done.set()), daemon=True).start()
    assert done.wait(5.0)
    assert h.store.depth() == 1  # still queued for the next run
