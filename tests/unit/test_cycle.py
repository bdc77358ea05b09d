"""The pure poll step (``cycle.decide_poll``) and the ``ServerCache`` rules, without I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vesagent.config import parse_cloud_extra_info
from vesagent.model import RegionKey, VimCredentials
from vesagent.pollers.cycle import Observation, PollState, apply, decide_poll
from vesagent.pollers.decide import ServerView
from vesagent.pollers.servers import OVERLAP_OWN_CLOCK, ServerCache
from vesagent.pollers.vim import VIM_CONDITION
from vesagent.spec import RegionSpec

NOW_US = 1_800_000_000_000_000


def spec(backlogs: list[dict[str, Any]]) -> RegionSpec:
    """A region spec with the given backlogs."""
    text = json.dumps(
        {"vesagent_config": {"ves_subscription": {"endpoint": "http://c/v7"}, "backlogs": backlogs}}
    )
    config = parse_cloud_extra_info(text)
    assert config is not None
    return RegionSpec(RegionKey("O", "R"), config, VimCredentials("http://k/v3", "u", "p", "p"))


SPEC = spec([{"domain": "fault", "type": "vm"}, {"domain": "fault", "type": "vim"}])


def server(sid: str, status: str, updated: str = "2027-01-15T08:00:00Z") -> ServerView:
    """A parsed server."""
    return ServerView(sid, sid, "t", status, "compute-1", updated)


def test_failures_raise_the_vim_fault_at_the_threshold() -> None:
    """Two failed polls raise nothing, the third raises VimUnreachable; health counts them."""
    state = PollState(alarms={})
    for n in range(3):
        decision = decide_poll(state, Observation(error="HTTP 503"), SPEC, NOW_US + n)
        state = decision.state
        assert decision.frozen
    assert state.health.consecutive_failures == 3
    (raised,) = [t for t in decision.transitions if t.upsert]
    assert raised.upsert is not None and raised.upsert.condition == VIM_CONDITION


def test_open_vim_alarm_freezes_vm_decisions_until_it_clears() -> None:
    """With a VIM alarm open and partial records, a VM in ERROR is not decided; once the
    records are complete the VIM clears and the VM raises in the same poll."""
    alarms: dict[tuple[str, str], Any] = {}
    seen = Observation(changed={"vm1": server("vm1", "ERROR")}, servers_partial=True)
    first = decide_poll(PollState(alarms=alarms), seen, SPEC, NOW_US)
    assert first.frozen and all(
        t.upsert is None or t.upsert.condition == VIM_CONDITION for t in first.transitions
    )
    apply(alarms, first.transitions)
    assert ("O_R", VIM_CONDITION) in alarms
    complete = Observation(changed={"vm1": server("vm1", "ERROR")})
    second = decide_poll(PollState(alarms=alarms), complete, SPEC, NOW_US + 1)
    assert not second.frozen
    apply(alarms, second.transitions)
    assert list(alarms) == [("vm1", "VMFailure")]


def test_unwatched_tenant_is_not_decided() -> None:
    """A VM backlog filtered by a tenant name matches only the resolved project id."""
    only_a = spec([{"domain": "fault", "type": "vm", "tenant": "a"}])
    changed = {"vm1": ServerView("vm1", "vm1", "id-b", "ERROR", "h", "")}
    seen = Observation(changed=changed, tenants={"a": "id-a"})
    assert [
        t for t in decide_poll(PollState(alarms={}), seen, only_a, NOW_US).transitions if t.events
    ] == []


@dataclass
class Listing:
    """A server listing as the poller sees it."""

    servers: list[dict[str, Any]] = field(default_factory=list)
    server_time: datetime = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    server_clock: bool = False


def body(sid: str, updated: str, status: str = "ACTIVE") -> dict[str, Any]:
    """A Nova server item."""
    return {"id": sid, "name": sid, "status": status, "updated": updated, "tenant_id": "t"}


def test_watermark_is_the_newest_updated_and_never_moves_back() -> None:
    """The watermark is the newest ``updated`` listed; an older listing keeps it."""
    cache = ServerCache()
    listing = Listing([body("a", "2027-01-15T08:00:05Z"), body("b", "2027-01-15T08:00:09Z")])
    cache.absorb(listing, True, 0.0)
    cache.advance(listing)
    assert cache.watermark == datetime(2027, 1, 15, 8, 0, 9, tzinfo=UTC)
    older = Listing([body("a", "2027-01-15T08:00:07Z")])
    cache.absorb(older, False, 1.0)
    cache.advance(older)
    assert cache.watermark == datetime(2027, 1, 15, 8, 0, 9, tzinfo=UTC)
    assert cache.changes_since(cache.wants_full(2.0)) == cache.watermark


def test_a_second_long_over_is_not_listed_again() -> None:
    """Newest ``updated`` more than the margin before the answer: the watermark moves one
    second past it (with a Date header the margin is 5 s, without it 60 s)."""
    old = "2027-01-15T07:58:00Z"
    without_date = ServerCache()
    listing = Listing([body("a", old)])
    without_date.absorb(listing, True, 0.0)
    without_date.advance(listing)
    assert without_date.watermark == datetime(2027, 1, 15, 7, 58, 1, tzinfo=UTC)
    with_date = ServerCache()
    recent = Listing([body("a", "2027-01-15T07:59:56Z")], server_clock=True)
    with_date.absorb(recent, True, 0.0)
    with_date.advance(recent)
    assert with_date.watermark == datetime(2027, 1, 15, 7, 59, 56, tzinfo=UTC)
    # Read again once (inclusive), then the second is over: the next listing skips it.
    later = Listing(recent.servers, recent.server_time + timedelta(seconds=30), True)
    with_date.absorb(later, False, 1.0)
    with_date.advance(later)
    assert with_date.watermark == datetime(2027, 1, 15, 7, 59, 57, tzinfo=UTC)


def test_empty_region_falls_back_to_the_clock_with_the_wide_overlap() -> None:
    """Nothing listed and no Date header: the first watermark is the agent's time - 60 s."""
    cache = ServerCache()
    empty = Listing()
    cache.absorb(empty, True, 0.0)
    cache.advance(empty)
    assert cache.watermark == empty.server_time - OVERLAP_OWN_CLOCK
    assert cache.watermark < empty.server_time - timedelta(seconds=59)


def test_own_clock_overlap_baseline_ignores_novas_clock() -> None:
    """The bench's baseline: the watermark is the listing's time minus the overlap, so a
    server changed just now stays in the window for that long, whatever its ``updated``."""
    cache = ServerCache(own_clock_overlap=timedelta(seconds=60))
    listing = Listing([body("a", "2027-01-15T07:59:59Z")])
    cache.absorb(listing, True, 0.0)
    cache.advance(listing)
    assert cache.watermark == listing.server_time - timedelta(seconds=60)
    later = Listing([], listing.server_time + timedelta(seconds=10))
    cache.absorb(later, False, 1.0)
    cache.advance(later)
    assert cache.watermark == later.server_time - timedelta(seconds=60)


def test_full_listing_rules() -> None:
    """Full at first, every full_every seconds, after a failed commit; a full listing
    reports unlisted alarmed servers as gone and keeps down-cell ids."""
    cache = ServerCache(full_every=600)
    assert cache.wants_full(0.0)
    first = Listing([body("a", "2027-01-15T08:00:00Z"), {"id": "p", "status": "UNKNOWN"}])
    changed = cache.absorb(first, True, 0.0, alarmed=["gone", "p"])
    cache.advance(first)
    assert changed["gone"] is None and "p" not in changed and cache.partial
    assert not cache.wants_full(599.0) and cache.wants_full(600.0)
    cache.list_everything_next()
    assert cache.wants_full(1.0)
