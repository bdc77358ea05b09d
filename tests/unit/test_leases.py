"""Region leases on a real PostgreSQL: rendezvous assignment, take-over after the TTL, fencing."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import wait_until
from vesagent.leases import (
    Fence,
    FencedStore,
    LeaseKeeper,
    LeaseLost,
    LeaseTable,
    Ownership,
    assign,
    candidates,
    region_complexes,
)
from vesagent.metrics import Metrics
from vesagent.store import AlarmRecord, OutboxItem
from vesagent.store_pg import PgStore

C = "http://collector.example:8080/eventListener/v7"
NO_SITE: frozenset[str] = frozenset()


def regions(n: int) -> dict[str, frozenset[str]]:
    return {f"CloudOwner/region-{i}": NO_SITE for i in range(n)}


# -- the pure assignment ----------------------------------------------------------------------


def test_assignment_is_stable_and_balanced() -> None:
    """Same inputs, same owners; 300 regions over 3 replicas land near 100 each."""
    replicas = {r: NO_SITE for r in ("agent-a", "agent-b", "agent-c")}
    owners = assign(regions(300), replicas)
    assert owners == assign(regions(300), dict(reversed(list(replicas.items()))))
    counts = Counter(owners.values())
    assert set(counts) == set(replicas)
    assert all(70 <= n <= 130 for n in counts.values()), counts


def test_joining_or_leaving_moves_only_a_fair_share() -> None:
    """A 4th replica takes about a quarter, only for itself; a leaver's regions alone move."""
    three = {r: NO_SITE for r in ("agent-a", "agent-b", "agent-c")}
    four = {**three, "agent-d": NO_SITE}
    before, after = assign(regions(400), three), assign(regions(400), four)
    moved = [k for k in before if before[k] != after[k]]
    assert all(after[k] == "agent-d" for k in moved)
    assert 60 <= len(moved) <= 140, len(moved)
    two = {r: NO_SITE for r in ("agent-a", "agent-c")}
    left = assign(regions(400), two)
    assert all(left[k] == before[k] for k in before if before[k] != "agent-b")
    assert all(left[k] in two for k in left)


def test_complex_filter_keeps_regions_at_their_site() -> None:
    """Replicas near a complex take its regions; the others go to replicas without one."""
    replicas = {
        "paris-1": frozenset({"PARIS"}),
        "paris-2": frozenset({"PARIS"}),
        "any": NO_SITE,
    }
    wanted = {
        **{f"o/p{i}": frozenset({"PARIS"}) for i in range(20)},
        "o/lyon": frozenset({"LYON"}),
        "o/nowhere": NO_SITE,
    }
    owners = assign(wanted, replicas)
    assert {owners[f"o/p{i}"] for i in range(20)} == {"paris-1", "paris-2"}
    assert owners["o/lyon"] == "any" and owners["o/nowhere"] == "any"
    # Without a replica free of sites, a region of another site has no owner here.
    assert assign({"o/lyon": frozenset({"LYON"})}, {"paris-1": frozenset({"PARIS"})}) == {
        "o/lyon": None
    }
    assert candidates(frozenset({"PARIS", "LYON"}), replicas) == ["paris-1", "paris-2"]


# -- the lease table --------------------------------------------------------------------------


def test_sync_takes_renews_and_keeps_tokens(open_pg: Callable[..., PgStore]) -> None:
    """A lone replica takes every region; renewing keeps each token."""
    table = LeaseTable(open_pg(), "agent-a", ttl=15)
    first = table.sync(regions(10))
    assert set(first.held) == set(regions(10)) and first.taken == set(regions(10))
    again = table.sync(regions(10))
    assert again.held == first.held and not again.taken and not again.released
    # A region gone from A&AI is released.
    fewer = table.sync(regions(9))
    assert fewer.released == {"CloudOwner/region-9"} and len(fewer.held) == 9
    assert set(table.holders()) == set(regions(9))


def test_joining_replica_gets_its_share_by_hand_over_never_two_owners(
    open_pg: Callable[..., PgStore],
) -> None:
    """B joins: A releases B's share at its next sync, B takes it; no region has two owners."""
    a = LeaseTable(open_pg(), "agent-a", ttl=15)
    b = LeaseTable(open_pg(), "agent-b", ttl=15)
    everything = regions(40)
    a.sync(everything)
    first_b = b.sync(everything)  # A's leases are live: B takes nothing yet
    assert first_b.held == {}
    after_a = a.sync(everything, {k: 0.0 for k in everything})  # released without a rest
    expected = assign(everything, {"agent-a": NO_SITE, "agent-b": NO_SITE})
    assert after_a.released == {k for k, o in expected.items() if o == "agent-b"}
    after_b = b.sync(everything)
    assert set(after_b.held) == {k for k, o in expected.items() if o == "agent-b"}
    holders = a.holders()
    assert {k: o for k, (o, _) in holders.items()} == expected
    assert not set(after_a.held) & set(after_b.held)


def test_dead_owner_regions_are_taken_after_the_ttl_with_new_tokens(
    open_pg: Callable[..., PgStore],
) -> None:
    """A stops renewing: after the TTL (database clock) B takes every region, tokens grow."""
    a = LeaseTable(open_pg(), "agent-a", ttl=1)
    b = LeaseTable(open_pg(), "agent-b", ttl=1)
    everything = regions(6)
    held_by_a = a.sync(everything).held
    assert set(held_by_a) == set(everything)
    assert b.sync(everything).held == {}  # still live: not taken early
    took = wait_until(
        lambda: (r := b.sync(everything)).held.keys() == everything.keys() and r,
        timeout=10,
        what="B to take A's regions after the TTL",
    )
    assert all(took.held[k] > held_by_a[k] for k in everything)


def _raise(vimid: str, source: str, sequence: int = 1) -> tuple[OutboxItem, AlarmRecord]:
    event = OutboxItem(C, "fault", f"fault-{source}", sequence, b"{}", 1.0)
    record = AlarmRecord(vimid, source, "vm_status", f"fault-{source}", 1, sequence, "MAJOR", "vm")
    return event, record


def test_fenced_commit_of_a_lost_lease_writes_nothing(open_pg: Callable[..., PgStore]) -> None:
    """After a take-over the old owner's commit raises LeaseLost and leaves no trace."""
    store_a, store_b = open_pg(), open_pg()
    a = LeaseTable(store_a, "agent-a", ttl=1)
    b = LeaseTable(store_b, "agent-b", ttl=1)
    key = "CloudOwner/r1"
    token_a = a.sync({key: NO_SITE}).held[key]
    fence_a = Fence(key, "agent-a", token_a)
    event, record = _raise("CloudOwner_r1", "vm1")
    assert store_a.commit([event], upsert=[record], fence=fence_a) == 1
    wait_until(lambda: key in b.sync({key: NO_SITE}).held, timeout=10, what="take-over")
    late, _ = _raise("CloudOwner_r1", "vm2")
    with pytest.raises(LeaseLost, match="agent-a") as caught:
        store_a.commit([late], delete=[("CloudOwner_r1", "vm1", "vm_status")], fence=fence_a)
    assert caught.value.fence == fence_a
    assert [r.event_id for r in store_b.pending(C)] == ["fault-vm1"]
    assert set(store_b.alarms("CloudOwner_r1")) == {("vm1", "vm_status")}
    # A fence with a made-up token, or of a replica that never held the lease, fails too.
    token_b = b.holders()[key][1]
    for bogus in (Fence(key, "agent-b", token_b + 1), Fence(key, "agent-c", token_b)):
        with pytest.raises(LeaseLost):
            store_b.commit([late], fence=bogus)
    assert store_b.commit([late], fence=Fence(key, "agent-b", token_b)) == 1


def test_expired_lease_not_yet_taken_is_fenced_off(open_pg: Callable[..., PgStore]) -> None:
    """A replica that paused past its TTL cannot commit even if nobody took the region yet."""
    store = open_pg()
    table = LeaseTable(store, "agent-a", ttl=1)
    token = table.sync({"o/r": NO_SITE}).held["o/r"]
    event, _ = _raise("o_r", "vm1")
    wait_until(lambda: "o/r" not in table.holders(), timeout=10, what="the lease to expire")
    with pytest.raises(LeaseLost):
        store.commit([event], fence=Fence("o/r", "agent-a", token))
    assert store.depth() == 0


def test_hand_over_neither_raises_twice_nor_loses_a_clear(
    open_pg: Callable[..., PgStore],
) -> None:
    """The new owner reads the shared alarm state: it clears A's alarm once, raises nothing."""
    store_a, store_b = open_pg(), open_pg()
    a, b = LeaseTable(store_a, "agent-a", ttl=1), LeaseTable(store_b, "agent-b", ttl=1)
    own_a, own_b = Ownership("agent-a"), Ownership("agent-b")
    key, vimid = "CloudOwner/r1", "CloudOwner_r1"
    own_a.update(a.sync({key: NO_SITE}))
    event, record = _raise(vimid, "vm1")
    store_a.commit([event], upsert=[record], fence=own_a.fence(key))
    # A freezes; B takes over after the TTL.
    wait_until(lambda: key in b.sync({key: NO_SITE}).held, timeout=10, what="take-over")
    own_b.update(b.sync({key: NO_SITE}))
    assert own_b.owns(key) and own_a.owns(key)  # A does not know yet: the fence decides
    # B sees the VM still faulty: the alarm is open already, nothing to raise.
    assert set(store_b.alarms(vimid)) == {("vm1", "vm_status")}
    # The VM recovers; A wakes up and tries to clear it too: fenced off.
    clear = OutboxItem(C, "fault", "fault-vm1", 2, b'{"clear":1}', 2.0)
    with pytest.raises(LeaseLost):
        store_a.commit([clear], delete=[(vimid, "vm1", "vm_status")], fence=own_a.fence(key))
    store_b.commit([clear], delete=[(vimid, "vm1", "vm_status")], fence=own_b.fence(key))
    sent = [(r.event_id, r.sequence) for r in store_b.pending(C)]
    assert sent == [("fault-vm1", 1), ("fault-vm1", 2)]
    assert store_a.alarms(vimid) == {}


def test_release_all_lets_another_take_over_at_once(open_pg: Callable[..., PgStore]) -> None:
    """A clean shutdown gives leases back: the other replica takes them without the TTL."""
    a = LeaseTable(open_pg(), "agent-a", ttl=60)
    b = LeaseTable(open_pg(), "agent-b", ttl=60)
    a.sync(regions(5))
    a.release_all({k: 0.0 for k in regions(5)})  # no rest: its pollers stopped long ago
    assert set(b.sync(regions(5)).held) == set(regions(5))


def test_a_released_lease_rests_before_the_next_owner_takes_it(
    open_pg: Callable[..., PgStore],
) -> None:
    """A hand-over leaves the region ownerless for its rest (its poll interval), so the two
    replicas never poll it within one interval; the next owner learns when it is free."""
    a = LeaseTable(open_pg(), "agent-a", ttl=15)
    b = LeaseTable(open_pg(), "agent-b", ttl=15)
    everything = regions(20)
    a.sync(everything)
    b.sync(everything)  # B is live now; A still holds everything
    released = a.sync(everything, {k: 1.5 for k in everything}).released
    assert released
    during = b.sync(everything)
    assert during.held == {} and set(a.holders()) == set(everything) - released
    assert during.free_in is not None and 0 < during.free_in <= 1.5
    assert during.unowned == len(released)  # resting: owned by nobody
    after = wait_until(lambda: b.sync(everything).held, 5, "B to take its share after the rest")
    assert set(after) == released and b.sync(everything).free_in is None


def test_lease_table_rejects_bad_arguments(open_pg: Callable[..., PgStore]) -> None:
    """An empty replica id or a non-positive TTL is refused, naming what is wrong."""
    store = open_pg()
    with pytest.raises(ValueError, match="replica_id"):
        LeaseTable(store, "")
    with pytest.raises(ValueError, match="ttl"):
        LeaseTable(store, "a", ttl=0)


# -- what the agent wires: complexes from A&AI, the keeper, the fenced store -----------------


def test_region_complexes_from_a_real_aai_listing() -> None:
    """The complex of a cloud-region comes from its relationship-list (real A&AI sample)."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "aai"
    path = fixtures / "onapsdk_test_cloud_regions_collection.json"
    body = json.loads(path.read_text())["cloud-region"][0]
    assert region_complexes(body) == {"cruguil"}
    link_only = {
        "relationship-list": {
            "relationship": [
                {
                    "related-to": "complex",
                    "related-link": "/aai/v13/cloud-infrastructure/complexes/complex/lannion/",
                },
                {"related-to": "tenant", "related-link": "/aai/v13/x/tenant/t1"},
            ]
        }
    }
    assert region_complexes(link_only) == {"lannion"}
    assert region_complexes({}) == frozenset()
    assert region_complexes({"relationship-list": {"relationship": "garbage"}}) == frozenset()


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keeper_owns_what_it_holds_and_lapses_without_the_database(
    open_pg: Callable[..., PgStore],
) -> None:
    """The keeper owns what it holds; without the database it owns nothing after the TTL."""
    clock = FakeClock()
    changes: list[str] = []
    store = open_pg()
    keeper = LeaseKeeper(LeaseTable(store, "agent-a", ttl=15), clock=clock)
    keeper.on_change = lambda: changes.append("changed")
    assert keeper.sync_now() is None and not keeper.owns("o/r1")  # no A&AI listing yet
    keeper.set_regions({"o/r1": [], "o/r2": []})
    assert keeper.owns("o/r1") and keeper.owns("o/r2")
    assert changes == []  # set_regions comes from the reconciler: it converges by itself
    fence = keeper.fence("o/r1")
    assert fence is not None and fence.owner == "agent-a" and fence.token > 0
    keeper.set_regions({"o/r1": []})
    assert not keeper.owns("o/r2") and keeper.fence("o/r2") is None
    # The database becomes unusable: the leases are trusted until the TTL, then dropped.
    store.close()
    clock.now += 5
    assert keeper.sync_now() is None and keeper.last_error and "closed" in keeper.last_error
    assert keeper.owns("o/r1") and changes == []
    clock.now += 11
    assert not keeper.owns("o/r1") and keeper.fence("o/r1") is None
    keeper.sync_now()
    assert changes == ["changed"]


def test_fenced_store_commits_under_the_region_lease_only(
    open_pg: Callable[..., PgStore],
) -> None:
    """A poller's store commits with its region's fence; without the lease nothing is written."""
    store = open_pg()
    keeper = LeaseKeeper(LeaseTable(store, "agent-a", ttl=15))
    keeper.set_regions({"o/r1": []})
    mine, other = FencedStore(store, keeper, "o/r1"), FencedStore(store, keeper, "o/r2")
    event, record = _raise("o_r1", "vm1")
    assert mine.commit([event], upsert=[record]) == 1
    assert mine.alarms("o_r1") == {("vm1", "vm_status"): record}  # the rest passes through
    with pytest.raises(LeaseLost, match="does not hold"):
        other.commit([_raise("o_r2", "vm2")[0]])
    assert store.depth() == 1
    keeper.close()
    with pytest.raises(LeaseLost):
        mine.commit([_raise("o_r1", "vm3")[0]])
    assert LeaseTable(store, "agent-b").holders() == {}


def test_concurrent_syncs_of_many_replicas_converge_without_errors(
    open_pg: Callable[..., PgStore],
) -> None:
    """Five replicas syncing at once, round after round: no error, one owner per region, and
    the leases end as the assignment over the five says."""
    import threading

    ids = [f"agent-{n}" for n in range(5)]
    tables = [LeaseTable(open_pg(pool_size=1), i, ttl=30) for i in ids]
    everything = regions(50)
    errors: list[BaseException] = []
    start = threading.Barrier(len(tables))

    def rounds(table: LeaseTable) -> None:
        start.wait()
        try:
            for _ in range(4):
                table.sync(everything, {k: 0.0 for k in everything})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rounds, args=(t,)) for t in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    for table in tables:  # one more round each: releases and takes settle
        table.sync(everything, {k: 0.0 for k in everything})
    holders = tables[0].holders()
    assert {k: o for k, (o, _) in holders.items()} == assign(everything, {i: NO_SITE for i in ids})


def test_keeper_reports_leases_held_and_regions_unowned(open_pg: Callable[..., PgStore]) -> None:
    """The lease gauges follow each sync: leases held here, regions no live lease covers; NaN
    (unknown) and the store's error reported while the database cannot be reached."""
    registry = CollectorRegistry()
    outcomes: list[str | None] = []
    a = LeaseKeeper(
        LeaseTable(open_pg(), "agent-a", ttl=15),
        metrics=Metrics(registry),
        on_store=outcomes.append,
    )
    b_registry = CollectorRegistry()
    b = LeaseKeeper(
        LeaseTable(open_pg(), "agent-b", ttl=15, complexes=["site-b"]),
        metrics=Metrics(b_registry),
    )

    def gauges(reg: CollectorRegistry) -> tuple[float | None, float | None]:
        return (
            reg.get_sample_value("vesagent_region_leases_held"),
            reg.get_sample_value("vesagent_regions_unowned"),
        )

    a.set_regions({"o/r1": []})
    assert gauges(registry) == (1, 0) and outcomes == [None]
    # B (another site) sees r2, which only A may own, before A has taken it: one unowned.
    b.set_regions({"o/r1": [], "o/r2": []})
    assert gauges(b_registry) == (0, 1)
    a.set_regions({"o/r1": [], "o/r2": []})
    assert gauges(registry) == (2, 0)
    b.sync_now()
    assert gauges(b_registry) == (0, 0)
    a.table.store.close()
    assert a.sync_now() is None
    held, unowned = gauges(registry)
    assert held == 2 and unowned is not None and math.isnan(unowned)  # held until the TTL
    assert outcomes[-1] is not None and "closed" in outcomes[-1]
