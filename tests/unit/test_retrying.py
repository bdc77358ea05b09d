"""The retry policies honour the server's Retry-After (TemporaryError.delay), within bounds."""

from __future__ import annotations

import pytest

from vesagent.errors import PermanentError, TemporaryError
from vesagent.retrying import aai_read


def run(policy, failures: list[Exception]) -> str:
    """Call through ``policy`` a function that raises ``failures`` in turn, then answers."""
    pending = list(failures)

    def call() -> str:
        if pending:
            raise pending.pop(0)
        return "ok"

    for attempt in policy:
        with attempt:
            return call()
    raise AssertionError("unreachable")


def test_aai_read_waits_at_least_retry_after() -> None:
    """A 503 with Retry-After: 1.5 is retried after 1.5 s, not the 0.2 s jittered backoff."""
    slept: list[float] = []
    policy = aai_read(attempts=3, max_delay=60, sleep=slept.append)
    assert run(policy, [TemporaryError("503", delay=1.5)]) == "ok"
    assert len(slept) == 1 and slept[0] >= 1.5


def test_aai_read_without_retry_after_uses_its_short_backoff() -> None:
    """Without Retry-After the waits stay short (jittered, at most 2 s each)."""
    slept: list[float] = []
    policy = aai_read(attempts=3, max_delay=60, sleep=slept.append)
    assert run(policy, [TemporaryError("503"), TemporaryError("503")]) == "ok"
    assert len(slept) == 2 and all(0 < s <= 2.2 for s in slept)


def test_retry_after_is_capped() -> None:
    """A server asking for an hour is waited for only retry_after_max seconds."""
    slept: list[float] = []
    policy = aai_read(attempts=2, max_delay=60, sleep=slept.append, retry_after_max=30.0)
    assert run(policy, [TemporaryError("429", delay=3600.0)]) == "ok"
    assert slept == [30.0]


def test_permanent_errors_are_not_retried() -> None:
    """A 4xx is raised at once: the same request would fail the same way."""
    slept: list[float] = []
    with pytest.raises(PermanentError):
        run(aai_read(sleep=slept.append), [PermanentError("400")])
    assert slept == []
