"""Tests of the durable store: outbox semantics, alarm state, limits, crash safety, errors.

Every behaviour both backends promise runs against both: the embedded SQLite file and a real
PostgreSQL server (``tests/pg.py``), through the ``backend``-parametrized ``make_store``.
SQLite-only behaviours (WAL mode, the file lock, corrupt files) stay SQLite-only.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vesagent.errors import PermanentError
from vesagent.store import (
    DB_FILENAME,
    SCHEMA_VERSION,
    AlarmRecord,
    OutboxItem,
    Store,
    StoreError,
    bytes_cutoff,
    truncate_utf8,
)
from vesagent.stores import open_store

REPO_ROOT = Path(__file__).resolve().parents[2]
A = "http://collector-a.example:8443/eventListener/v7"
B = "http://collector-b.example:8080/eventListener/v5"


class FakeClock:
    """A settable clock for age limits and dead-letter times."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def item(
    n: int,
    collector: str = A,
    *,
    domain: str = "fault",
    sequence: int = 1,
    created: float = 1_700_000_000.0,
    size: int = 0,
    buffered: bool = True,
) -> OutboxItem:
    body = f'{{"eventId":"ev{n}"}}'.encode() + b" " * size
    return OutboxItem(collector, domain, f"ev{n}", sequence, body, created, buffered)


def alarm(source_id: str, vimid: str = "owner_region", **extra: object) -> AlarmRecord:
    return AlarmRecord(
        vimid=vimid,
        source_id=source_id,
        condition="vm_status",
        event_id=f"fault-{source_id}",
        start_epoch_us=1_700_000_000_000_000,
        sequence=1,
        severity="MAJOR",
        source_name=f"vm-{source_id}",
        data=dict(extra),
    )


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which store backend the test runs against."""
    return str(request.param)


@pytest.fixture
def location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the test's store lives: a state directory, or a fresh PostgreSQL database URL."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "state")


@pytest.fixture
def make_store(location: str) -> Iterator[Callable[..., Any]]:
    """Open (or reopen) the test's store with the given options; all closed at teardown."""
    opened: list[Any] = []

    def make(**options: Any) -> Any:
        target: str | Path = location if "://" in location else Path(location)
        store = open_store(target, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Any]) -> Any:
    """The test's store with default options."""
    return make_store()


def event_ids(store: Store, collector: str = A) -> list[str]:
    return [row.event_id for row in store.pending(collector, limit=10_000)]


# -- outbox ---------------------------------------------------------------------------------


def test_round_trip_keeps_every_field(store: Store) -> None:
    """Every field of an item comes back from pending() as it went in."""
    sent = OutboxItem(A, "heartbeat", "hb-7", 0, b'{"x": "\xc3\xa9"}', 1_700_000_123.5, False)
    assert store.commit([sent]) == 1
    (row,) = store.pending(A)
    assert (row.collector, row.domain, row.event_id, row.sequence) == (A, "heartbeat", "hb-7", 0)
    assert row.body == sent.body and isinstance(row.body, bytes)
    assert row.created == 1_700_000_123.5
    assert row.attempts == 0 and row.buffered is False
    assert store.depth() == 1 and store.depth(A) == 1 and store.depth(B) == 0


def test_pending_is_insertion_order_not_created_order(store: Store) -> None:
    """Delivery order is commit order, whatever the created stamps say."""
    # created goes backwards on purpose: delivery order is the order of commit.
    store.commit([item(i, created=2_000_000_000.0 - i) for i in range(5)])
    store.commit([item(i, created=1.0 + i) for i in range(5, 8)])
    assert event_ids(store) == [f"ev{i}" for i in range(8)]
    assert [r.event_id for r in store.pending(A, limit=3)] == ["ev0", "ev1", "ev2"]
    assert store.pending(A, limit=0) == []
    assert store.oldest_created(A) == 6.0


def test_pending_max_bytes_returns_at_least_one_row(store: Store) -> None:
    """max_bytes caps a batch but never starves a queue behind one big event."""
    store.commit([item(0, size=1000), item(1, size=10), item(2, size=10)])
    sizes = [len(r.body) for r in store.pending(A)]
    assert [r.event_id for r in store.pending(A, max_bytes=5)] == ["ev0"]
    two = store.pending(A, max_bytes=sizes[0] + sizes[1])
    assert [r.event_id for r in two] == ["ev0", "ev1"]
    assert len(store.pending(A, max_bytes=sum(sizes))) == 3


def test_collectors_are_isolated(store: Store) -> None:
    """Each collector is its own queue with its own totals."""
    store.commit([item(1, A), item(2, B), item(3, A), item(4, B, domain="heartbeat")])
    assert store.collectors() == sorted([A, B])
    assert event_ids(store, A) == ["ev1", "ev3"]
    assert event_ids(store, B) == ["ev2", "ev4"]
    store.ack([r.id for r in store.pending(A)])
    assert store.collectors() == [B]
    assert store.depth(A) == 0 and store.depth(B) == 2 and store.depth() == 2
    assert store.oldest_created(A) is None
    stats = store.stats()
    assert list(stats) == [B]
    assert stats[B]["depth"] == 2
    assert stats[B]["bytes"] == sum(len(r.body) for r in store.pending(B))
    assert stats[B]["oldest_created"] == 1_700_000_000.0


def test_duplicate_enqueue_is_ignored_while_pending(store: Store) -> None:
    """The same (collector, eventId, sequence) is queued once while pending."""
    assert store.commit([item(1), item(2)]) == 2
    assert store.commit([item(1), item(3), item(3)]) == 1
    assert event_ids(store) == ["ev1", "ev2", "ev3"]
    # Same eventId with the next sequence (a re-raise) is a different event.
    assert store.commit([item(1, sequence=2)]) == 1
    # Same eventId for another collector is another queue.
    assert store.commit([item(1, B)]) == 1
    # Once delivered, the same event may be queued again (it is no longer pending).
    store.ack([r.id for r in store.pending(A) if r.event_id == "ev2"])
    assert store.commit([item(2)]) == 1
    assert event_ids(store) == ["ev1", "ev3", "ev1", "ev2"]


def test_commit_is_atomic(store: Store) -> None:
    """A bad item or alarm anywhere in a commit leaves nothing of it."""
    store.commit([item(0)], upsert=[alarm("vm0")])
    bad = OutboxItem(A, "fault", "ev-bad", 1, "not bytes", 1.0)  # type: ignore[arg-type]

    def items():
        yield item(1)
        yield item(2)
        yield bad  # fails after two rows were written inside the transaction

    with pytest.raises(ValueError, match="body must be bytes"):
        store.commit(items(), upsert=[alarm("vm1")], delete=[("owner_region", "vm0", "vm_status")])
    assert event_ids(store) == ["ev0"]
    assert set(store.alarms("owner_region")) == {("vm0", "vm_status")}

    # Alarm data that is not JSON fails after the events were inserted: nothing is kept.
    with pytest.raises(TypeError):
        store.commit([item(5)], upsert=[alarm("vm5", when=object())])
    assert event_ids(store) == ["ev0"] and store.alarm_count() == 1

    with pytest.raises(ValueError, match="event_id"):
        store.commit([OutboxItem(A, "fault", "", 1, b"{}", 1.0)])
    with pytest.raises(TypeError):
        store.commit([{"collector": A}])  # type: ignore[list-item]
    assert store.depth() == 1
    # The store is still usable after the rollbacks.
    assert store.commit([item(6)]) == 1


def test_ack_ignores_unknown_ids_and_ids_are_never_reused(store: Store) -> None:
    """A late ack of an old id never deletes a newer event."""
    store.commit([item(1)])
    (first,) = store.pending(A)
    store.ack([first.id, 999_999])
    assert store.depth() == 0
    store.commit([item(2)])
    (second,) = store.pending(A)
    # A late ack of the old id must not delete the new event.
    assert second.id > first.id
    store.ack([first.id])
    assert event_ids(store) == ["ev2"]


def test_failed_keeps_buffered_rows_and_drops_unbuffered(store: Store) -> None:
    """A failed attempt counts for buffered rows and drops heartbeats."""
    store.commit([item(1), item(2, domain="heartbeat", buffered=False), item(3)])
    ids = [r.id for r in store.pending(A)]
    assert store.failed(ids) == 1
    rows = store.pending(A)
    assert [(r.event_id, r.attempts) for r in rows] == [("ev1", 1), ("ev3", 1)]
    assert store.failed([rows[0].id]) == 0
    assert [r.attempts for r in store.pending(A)] == [2, 1]
    assert store.depth(A) == 2
    assert store.stats()[A]["bytes"] == sum(len(r.body) for r in rows)


def test_dead_letters(make_store: Callable[..., Any]) -> None:
    """Refused events move to the dead letters with the answer, newest kept."""
    clock = FakeClock(1_800_000_000.0)
    with make_store(clock=clock, max_dead_letters=3) as store:
        store.commit([item(1), item(2), item(3, B)])
        first = store.pending(A)[0]
        store.failed([first.id])
        response = "é" * 3000  # 6000 UTF-8 bytes
        store.dead_letter([first.id], 400, response)
        assert event_ids(store) == ["ev2"]
        (letter,) = store.dead_letters()
        assert letter["event_id"] == "ev1" and letter["status"] == 400
        assert letter["collector"] == A and letter["domain"] == "fault"
        assert letter["attempts"] == 2  # one failed attempt plus the refused one
        assert letter["failed_at"] == 1_800_000_000.0
        assert letter["body"] == '{"eventId":"ev1"}'
        assert len(letter["response"].encode()) <= 4096
        assert letter["response"] == "é" * 2048
        clock.now += 1
        store.dead_letter([store.pending(B)[0].id], 403, "forbidden")
        assert [d["event_id"] for d in store.dead_letters()] == ["ev3", "ev1"]
        assert [d["event_id"] for d in store.dead_letters(B)] == ["ev3"]
        assert store.dead_letters(limit=1)[0]["status"] == 403
        assert store.depth(B) == 0 and store.collectors() == [A]
        # Only the newest max_dead_letters are kept.
        store.commit([item(n) for n in range(10, 14)])
        store.dead_letter([r.id for r in store.pending(A) if r.event_id != "ev2"], 422, "")
        assert [d["event_id"] for d in store.dead_letters()] == ["ev13", "ev12", "ev11"]


def test_limit_by_age_drops_old_rows_and_reports_groups(make_store: Callable[..., Any]) -> None:
    """Rows older than max_age go, reported per collector and domain."""
    clock = FakeClock(10_000.0)
    with make_store(clock=clock, max_age=3600) as store:
        store.commit(
            [
                item(1, created=5_000.0),
                item(2, created=6_000.0, domain="measurement"),
                item(3, B, created=6_399.0),
                item(4, created=6_400.0),
                item(5, B, created=9_999.0),
            ]
        )
        assert store.enforce_limits() == sorted(
            [(A, "fault", 1), (A, "measurement", 1), (B, "fault", 1)]
        )
        assert event_ids(store, A) == ["ev4"] and event_ids(store, B) == ["ev5"]
        assert store.enforce_limits() == []
        clock.now = 20_000.0
        assert store.enforce_limits() == sorted([(A, "fault", 1), (B, "fault", 1)])
        assert store.depth() == 0 and store.collectors() == [] and store.stats() == {}


def test_limit_by_rows_drops_the_oldest_across_collectors(make_store: Callable[..., Any]) -> None:
    """Beyond max_rows the oldest rows of all collectors go first."""
    with make_store(max_rows=4, clock=lambda: 1_700_000_000.0) as store:
        store.commit([item(1, A), item(2, B), item(3, A, domain="measurement")])
        store.commit([item(4, B), item(5, A), item(6, B)])
        assert store.enforce_limits() == [(A, "fault", 1), (B, "fault", 1)]
        assert store.depth() == 4
        assert event_ids(store, A) == ["ev3", "ev5"] and event_ids(store, B) == ["ev4", "ev6"]


def test_limit_by_bytes_drops_the_oldest(make_store: Callable[..., Any]) -> None:
    """Beyond max_bytes of bodies the oldest rows go."""
    with make_store(max_bytes=2500, clock=lambda: 1_700_000_000.0) as store:
        store.commit([item(n, size=1000 - len(f'{{"eventId":"ev{n}"}}')) for n in range(1, 5)])
        assert store.stats()[A]["bytes"] == 4000
        assert store.enforce_limits() == [(A, "fault", 2)]
        assert event_ids(store) == ["ev3", "ev4"]
        assert store.stats()[A]["bytes"] == 2000


def test_bytes_cutoff_and_truncate_helpers() -> None:
    """The pure helpers cut where they should."""
    assert bytes_cutoff([(1, 10), (2, 10), (3, 10)], 15) == 2
    assert bytes_cutoff([(1, 10), (2, 10)], 10) == 1
    assert bytes_cutoff([(1, 10)], 50) == 1
    assert bytes_cutoff([], 5) is None
    assert truncate_utf8("abc", 2) == "ab"
    assert truncate_utf8("ééé", 5) == "éé"
    assert truncate_utf8("short") == "short"


def test_totals_match_a_model_under_random_operations(make_store: Callable[..., Any]) -> None:
    """Per-collector totals never drift from the rows under random operations."""
    # Drive the store and a plain-Python model with the same random operations and compare;
    # the per-collector totals are kept by triggers and must never drift.
    rng = random.Random(20240601)
    clock = FakeClock(100_000.0)
    model: dict[int, OutboxItem] = {}
    with make_store(clock=clock, max_age=500, max_rows=60, max_bytes=6000) as store:
        for step in range(300):
            op = rng.choice(["commit", "commit", "ack", "failed", "dead", "limits"])
            if op == "commit":
                clock.now += 10
                batch = [
                    item(
                        rng.randrange(200),
                        rng.choice([A, B]),
                        size=rng.randrange(200),
                        created=clock.now,
                        buffered=rng.random() < 0.8,
                    )
                    for _ in range(rng.randrange(1, 8))
                ]
                store.commit(batch)
            else:
                rows = store.pending(rng.choice([A, B]), limit=rng.randrange(1, 6))
                ids = [r.id for r in rows]
                if op == "ack":
                    store.ack(ids)
                elif op == "failed":
                    store.failed(ids)
                elif op == "dead":
                    store.dead_letter(ids, 400, "bad")
                else:
                    store.enforce_limits()
            model = {r.id: r for c in (A, B) for r in store.pending(c, limit=10_000)}
            stats = store.stats()
            for collector in (A, B):
                mine = [r for r in model.values() if r.collector == collector]
                if not mine:
                    assert collector not in stats, step
                    continue
                assert stats[collector]["depth"] == len(mine) == store.depth(collector), step
                assert stats[collector]["bytes"] == sum(len(r.body) for r in mine), step
                assert stats[collector]["oldest_created"] == min(r.created for r in mine), step
            assert store.depth() == len(model)
            if op == "limits":
                assert len(model) <= 60
                assert sum(len(r.body) for r in model.values()) <= 6000
                assert all(r.created >= clock.now - 500 for r in model.values())


def test_threads_share_the_store(store: Store) -> None:
    """Producers and a sender in threads: every event delivered exactly once."""
    producers, batches, per_batch = 4, 25, 8
    delivered: list[str] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def produce(p: int) -> None:
        try:
            for b in range(batches):
                store.commit(
                    [item(p * 10_000 + b * 100 + k, A if k % 2 else B) for k in range(per_batch)],
                    upsert=[alarm(f"p{p}b{b}")],
                )
        except BaseException as exc:
            errors.append(exc)

    def send() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            finished = done.is_set()
            for collector in store.collectors():
                rows = store.pending(collector, limit=50)
                store.ack([r.id for r in rows])
                delivered.extend(r.event_id for r in rows)
            if finished and store.depth() == 0:
                return

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    sender = threading.Thread(target=send)
    sender.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    done.set()
    sender.join(timeout=30)
    assert not errors
    assert len(delivered) == len(set(delivered)) == producers * batches * per_batch
    assert store.alarm_count("owner_region") == producers * batches


def test_a_large_batch_is_one_commit_and_drains_in_order(store: Store) -> None:
    """10,000 events commit at once and drain from the oldest (speed: ``make bench``)."""
    body = b'{"event": "' + b"m" * 400 + b'"}'
    batch = [OutboxItem(A, "measurement", f"m{i}", 0, body, time.time()) for i in range(10_000)]
    assert store.commit(batch) == 10_000
    rows = store.pending(A, limit=500)
    assert [r.event_id for r in rows] == [f"m{i}" for i in range(500)]
    store.ack(r.id for r in rows)
    assert store.depth(A) == 9_500


def test_requeued_dead_letters_go_back_to_the_outbox(make_store: Callable[..., Any]) -> None:
    """Re-queued dead letters are pending again with the same identity, once, in order."""
    with make_store() as store:
        store.commit([item(1), item(2), item(3, B)])
        ids = [r.id for r in store.pending(A)]
        store.dead_letter(ids, 400, "bad field")
        store.dead_letter([store.pending(B)[0].id], 400, "bad field")
        assert store.dead_letter_count() == 3 and store.dead_letter_count(B) == 1
        assert store.requeue_dead_letters() == []  # neither ids nor collector: nothing
        letters = {d["event_id"]: d["id"] for d in store.dead_letters()}
        requeued = store.requeue_dead_letters(collector=A)
        assert sorted(requeued) == sorted([letters["ev1"], letters["ev2"]])
        assert [r.event_id for r in store.pending(A)] == ["ev1", "ev2"]
        assert store.dead_letter_count() == 1
        assert store.requeue_dead_letters(ids=[letters["ev3"]], collector=A) == []
        assert store.requeue_dead_letters(ids=[letters["ev3"]]) == [letters["ev3"]]
        assert [r.event_id for r in store.pending(B)] == ["ev3"]
        assert store.dead_letter_count() == 0


# -- alarms, counters, metadata ---------------------------------------------------------------


def test_alarms_survive_reopen(make_store: Callable[..., Any]) -> None:
    """Alarm state is durable across a reopen, re-raises and deletes included."""
    with make_store() as store:
        store.commit(upsert=[alarm("vm1", flavor="m1"), alarm("vm2"), alarm("vm9", vimid="other")])
        raised = alarm("vm1", flavor="m1")
        reraised = AlarmRecord(**{**raised.__dict__, "sequence": 2, "severity": "CRITICAL"})
        store.commit(upsert=[reraised], delete=[("owner_region", "vm2", "vm_status")])
    with make_store() as store:
        alarms = store.alarms("owner_region")
        assert list(alarms) == [("vm1", "vm_status")]
        assert alarms[("vm1", "vm_status")] == reraised
        assert alarms[("vm1", "vm_status")].data == {"flavor": "m1"}
        assert store.alarm_count() == 2 and store.alarm_count("other") == 1
        assert store.alarms("nowhere") == {}


def test_counters_and_meta_survive_reopen(make_store: Callable[..., Any]) -> None:
    """Counters never repeat and meta values persist across a reopen."""
    with make_store() as store:
        assert [store.next_counter("measurement") for _ in range(3)] == [1, 2, 3]
        assert store.next_counter("heartbeat") == 1
        assert store.get_meta("agent_id") is None
        store.set_meta("agent_id", "a1")
        store.set_meta("agent_id", "a2")
        store.commit([item(1)])
    with make_store() as store:
        assert store.next_counter("measurement") == 4
        assert store.next_counter("heartbeat") == 2
        assert store.get_meta("agent_id") == "a2"
        assert event_ids(store) == ["ev1"]
        assert store.writable()


def test_schema_version_and_wal_mode(tmp_path: Path) -> None:
    """SQLite: WAL mode and the schema version; a newer file is refused."""
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path)


# -- crash safety -----------------------------------------------------------------------------

CHILD = """
import sys, time
from pathlib import Path
from vesagent.store import AlarmRecord, OutboxItem
from vesagent.stores import open_store

target = sys.argv[1]
store = open_store(target if "://" in target else Path(target))
first = int(sys.argv[2])
for i in range(first, first + 1_000_000):
    items = [
        OutboxItem("http://c/v7", "fault", f"f{i}-{k}", 1, b"x" * 300, time.time())
        for k in range(100)
    ]
    alarm = AlarmRecord("vim", f"vm{i}", "status", f"f{i}-0", i, 1, "MAJOR", "vm", {"i": i})
    store.commit(items, upsert=[alarm])
    store.next_counter("commits")
    print(i, flush=True)
"""


def _run_and_kill(state: str, first: int, commits: int, jitter: float) -> int:
    """Start a committing child, SIGKILL it after ``commits`` reports; the last reported i."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    reported: list[int] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while len(reported) < commits and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(int(line))
        # Deliberate jitter, not a wait for a condition: it moves the kill to a different
        # instant of the child's commit cycle in each round.
        time.sleep(jitter)
        os.kill(proc.pid, signal.SIGKILL)
        # Lines already in the pipe were printed after their commit: they count too.
        reported.extend(int(line) for line in proc.stdout.read().split())
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, stderr
    assert len(reported) >= commits, stderr
    return reported[-1]


@pytest.mark.timeout(120)
def test_sigkill_loses_no_reported_commit_and_keeps_alarms_consistent(
    location: str, backend: str, make_store: Callable[..., Any]
) -> None:
    """A kill -9 at any instant keeps every reported commit whole and no commit half."""
    first = 0
    for jitter in (0.0, 0.0013, 0.0041, 0.0097):
        last = _run_and_kill(location, first, commits=30, jitter=jitter)
        if backend == "sqlite":
            conn = sqlite3.connect(Path(location) / DB_FILENAME)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            finally:
                conn.close()
        with make_store() as store:
            queued = {r.event_id for r in store.pending("http://c/v7", limit=1_000_000)}
            alarms = store.alarms("vim")
            alarm_iters = {int(source[2:]) for source, _ in alarms}
            queued_iters = {int(e[1:].split("-")[0]) for e in queued}
            # Every reported commit is there, complete.
            assert set(range(last + 1)) <= alarm_iters
            assert all(f"f{i}-{k}" in queued for i in range(last + 1) for k in range(100))
            # The commit in flight at the kill is all there or not at all, never half.
            assert alarm_iters == queued_iters
            assert len(queued) == 100 * len(queued_iters)
            assert max(alarm_iters) <= last + 1
            assert all(a.data == {"i": int(a.source_id[2:])} for a in alarms.values())
            assert store.next_counter("commits") >= last + 2
            assert store.depth() == len(queued)
            first = max(alarm_iters) + 1


# -- errors -----------------------------------------------------------------------------------


def test_garbage_file_raises_store_error_naming_the_path(tmp_path: Path) -> None:
    """SQLite: a file that is not a database is a StoreError naming it."""
    path = tmp_path / DB_FILENAME
    path.write_bytes(b"this is certainly not an SQLite database\n" * 200)
    with pytest.raises(StoreError) as caught:
        Store(tmp_path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, PermanentError)


def test_corrupt_schema_page_raises_store_error(tmp_path: Path) -> None:
    """SQLite: a corrupt schema page is a StoreError naming the file."""
    with Store(tmp_path) as store:
        store.commit([item(n) for n in range(50)])
    path = tmp_path / DB_FILENAME
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)  # page 1 after the header: the schema
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=str(path)):
        Store(tmp_path)


def test_directory_under_a_regular_file_raises_store_error(tmp_path: Path) -> None:
    """SQLite: an uncreatable state directory is a StoreError naming it."""
    regular = tmp_path / "a-file"
    regular.write_text("x")
    with pytest.raises(StoreError) as caught:
        Store(regular / "state")
    assert str(regular / "state") in str(caught.value)


def test_database_path_that_is_a_directory_raises_store_error(tmp_path: Path) -> None:
    """SQLite: a directory where the file should be is a StoreError."""
    (tmp_path / DB_FILENAME).mkdir()
    with pytest.raises(StoreError, match=str(tmp_path / DB_FILENAME)):
        Store(tmp_path)


def test_locked_database_raises_after_the_timeout(tmp_path: Path) -> None:
    """SQLite: a file locked by another process fails after busy_timeout."""
    store = Store(tmp_path, busy_timeout=0.2)
    other = sqlite3.connect(tmp_path / DB_FILENAME, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked") as caught:
            store.commit([item(1)])
        assert time.monotonic() - started >= 0.15
        assert str(tmp_path / DB_FILENAME) in str(caught.value)
        assert not store.writable()
        with pytest.raises(StoreError, match="locked"):
            Store(tmp_path, busy_timeout=0.2)
        assert store.depth() == 0  # readers are not blocked by a writer in WAL mode
        other.execute("ROLLBACK")
        assert store.commit([item(1)]) == 1
        assert store.writable()
    finally:
        other.close()
        store.close()


def test_closed_store_raises_and_is_not_writable(make_store: Callable[..., Any]) -> None:
    """A closed store raises StoreError and reports itself not writable."""
    store = make_store()
    store.close()
    store.close()
    assert not store.writable()
    with pytest.raises(StoreError, match="closed"):
        store.depth()


def test_drop_superseded_removes_only_older_unbuffered_rows_of_that_source(store) -> None:
    """A new heartbeat supersedes the pending ones of its source, nothing else."""
    items = [
        OutboxItem("c1", "heartbeat", "heartbeat-R1-1", 0, b"{}", 1.0, buffered=False),
        OutboxItem("c1", "heartbeat", "heartbeat-R1-2", 0, b"{}", 2.0, buffered=False),
        OutboxItem("c1", "heartbeat", "heartbeat-R10-1", 0, b"{}", 2.0, buffered=False),
        OutboxItem("c1", "fault", "heartbeat-R1-9", 1, b"{}", 2.0),  # buffered: kept
        OutboxItem("c2", "heartbeat", "heartbeat-R1-3", 0, b"{}", 2.0, buffered=False),
    ]
    store.commit(items)
    assert store.drop_superseded("c1", "heartbeat-R1-") == 2
    left = {(r.collector, r.event_id) for c in ("c1", "c2") for r in store.pending(c)}
    assert left == {("c1", "heartbeat-R10-1"), ("c1", "heartbeat-R1-9"), ("c2", "heartbeat-R1-3")}
    assert store.depth("c1") == 2
