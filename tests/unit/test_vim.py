"""The VIM as a fault source: poll history, threshold, partial records, clear, freezing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vesagent import ves_schema
from vesagent.pollers.decide import FaultContext, Transition
from vesagent.pollers.vim import (
    HEALTHY,
    VIM_CONDITION,
    VimHealth,
    decide_vim,
    failure_kind,
    observe,
)
from vesagent.store import alarm_params
from vesagent.ves_client.encode import encode

NOW = 1_800_000_000_000_000
CTX = FaultContext(vimid="Owner_R1", reporter="vesagent", now_us=NOW)


def valid(t: Transition) -> Transition:
    """Every event of ``t`` validates in v5 and v7; its record is storable."""
    for event in t.events:
        for version in ("v5", "v7"):
            assert ves_schema.errors({"event": encode(event, version)}, version) == []
    if t.upsert is not None:
        alarm_params(t.upsert)
    return t


def failures(n: int, reason: str = "cannot reach the compute API", start: int = NOW) -> VimHealth:
    health = HEALTHY
    for i in range(n):
        health = observe(health, False, reason, at_us=start + i)
    return health


def test_observe_counts_failures_and_resets_on_success() -> None:
    """Failures add up and keep the latest reason and the first failure's time."""
    health = observe(HEALTHY, False, "timeout", at_us=10)
    health = observe(health, False, "HTTP 503", at_us=20)
    assert health == VimHealth(consecutive_failures=2, last_reason="HTTP 503", failed_since_us=10)
    assert observe(health, True, None) == HEALTHY


@pytest.mark.parametrize("reason", [None, "", 5])
def test_observe_without_reason_still_says_something(reason: object) -> None:
    """A failure without a usable reason is recorded as an unknown failure."""
    assert observe(HEALTHY, False, reason).last_reason == "unknown failure"  # type: ignore[arg-type]


def test_observe_bounds_the_reason() -> None:
    """A huge error text cannot grow the alarm's additional information without bound."""
    assert len(observe(HEALTHY, False, "x" * 100_000).last_reason) == 1024


@pytest.mark.parametrize(
    ("threshold", "failed", "raises"),
    [(3, 0, False), (3, 1, False), (3, 2, False), (3, 3, True), (3, 7, True), (1, 1, True)],
)
def test_raise_after_threshold_consecutive_failures(
    threshold: int, failed: int, raises: bool
) -> None:
    """The VIM alarm needs ``threshold`` failures in a row."""
    t = valid(decide_vim(None, failures(failed), threshold, False, CTX))
    assert bool(t.events) is raises


def test_unreachable_alarm_carries_reason_and_kind() -> None:
    """CRITICAL, source = vimid, type "other", reason and kind in the additional info,
    the episode starting at the first failure."""
    t = valid(decide_vim(None, failures(3, start=NOW - 20_000_000), 3, False, CTX))
    (event,) = t.events
    assert event.fields["severity"] == "CRITICAL"
    assert event.fields["alarm_condition"] == "VimUnreachable"
    assert event.fields["source_type"] == "other"
    assert event.source_id == event.source_name == "Owner_R1"
    assert event.start_epoch_us == NOW - 20_000_000 and event.sequence == 1
    info = event.fields["additional"]
    assert info["reason"] == "cannot reach the compute API"
    assert info["failure_kind"] == "unreachable"
    assert info["failed_polls"] == 3
    assert t.upsert is not None and t.upsert.condition == VIM_CONDITION


def test_partial_records_raise_at_once_and_escalate() -> None:
    """Down-cell records: MAJOR at once; then total failure re-raises the same alarm."""
    degraded = valid(decide_vim(None, HEALTHY, 3, True, CTX))
    (event,) = degraded.events
    assert event.fields["severity"] == "MAJOR"
    assert event.fields["alarm_condition"] == "VimDegraded"
    assert valid(decide_vim(degraded.upsert, HEALTHY, 3, True, CTX)) == Transition()
    worse = valid(decide_vim(degraded.upsert, failures(3), 3, False, CTX))
    assert worse.events[0].event_id == event.event_id
    assert worse.events[0].sequence == 2
    assert worse.events[0].fields["severity"] == "CRITICAL"


def test_reason_change_alone_does_not_reraise() -> None:
    """Alternating timeouts and 503s while unreachable send nothing more."""
    raised = decide_vim(None, failures(3, "timed out"), 3, False, CTX)
    assert decide_vim(raised.upsert, failures(4, "HTTP 503"), 3, False, CTX) == Transition()


def test_recovery_clears_once() -> None:
    """A successful complete poll clears with the same eventId and the next sequence."""
    raised = decide_vim(None, failures(3), 3, False, CTX)
    cleared = valid(decide_vim(raised.upsert, HEALTHY, 3, False, CTX))
    (clear,) = cleared.events
    assert clear.event_id == raised.events[0].event_id
    assert clear.sequence == 2 and clear.fields["severity"] == "NORMAL"
    assert clear.event_name == "Fault_MultiCloud_VimUnreachableCleared"
    assert cleared.delete == ("Owner_R1", "Owner_R1", VIM_CONDITION)
    assert decide_vim(None, HEALTHY, 3, False, CTX) == Transition()


def test_open_alarm_is_kept_while_polls_still_fail() -> None:
    """Degraded alarm open, then one failed poll (below the threshold): keep, do not clear."""
    degraded = decide_vim(None, HEALTHY, 3, True, CTX)
    assert decide_vim(degraded.upsert, failures(1), 3, False, CTX) == Transition()


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("Keystone http://ks/v3 rejected the credentials of user 'u' (region R1): 401", "auth"),
        ("Nova rejected the token even after re-authenticating: GET x: HTTP 401", "auth"),
        ("the user lacks the admin role needed for os-services: GET x: HTTP 403", "permission"),
        ("cannot reach the compute API (region R1): Connection refused", "unreachable"),
        ("os-services failed: GET x: HTTP 503: Service Unavailable", "server-error"),
        ("os-services failed: GET x: HTTP 504", "timeout"),
        ("Read timed out. (read timeout=10)", "timeout"),
        ("os-services failed: GET x: HTTP 429", "rate-limited"),
        ("TLS verification failed for the compute API (region R1)", "tls"),
        ("something else entirely", "other"),
    ],
)
def test_failure_kind(reason: str, kind: str) -> None:
    """The client's error texts fall into a few kinds for dashboards and operators."""
    assert failure_kind(reason) == kind


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    polls=st.lists(
        st.tuples(st.booleans(), st.one_of(st.none(), st.text(max_size=2000)), st.booleans()),
        max_size=12,
    ),
    threshold=st.integers(min_value=1, max_value=5),
)
def test_any_poll_history_gives_valid_alternating_events(
    polls: list[tuple[bool, str | None, bool]], threshold: int
) -> None:
    """Any sequence of outcomes: events validate, and raises and clears alternate."""
    health, prev = HEALTHY, None
    open_ = False
    for i, (ok, reason, partial) in enumerate(polls):
        health = observe(health, ok, reason, at_us=NOW + i)
        ctx = FaultContext("Owner_R1", "vesagent", NOW + i)
        t = valid(decide_vim(prev, health, threshold, partial and ok, ctx))
        for event in t.events:
            if event.fields["severity"] == "NORMAL":
                assert open_  # a clear only for an open alarm
                open_ = False
            else:
                open_ = True
        prev = t.upsert or (None if t.delete else prev)
        assert (prev is not None) is open_
