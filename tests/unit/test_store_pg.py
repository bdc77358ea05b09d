"""What only the PostgreSQL store does: racing migrations, collector claims, lost connections,
bounded holds of a frozen replica, secrets kept out of errors; and how a backend is chosen."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from tests.helpers import free_port, wait_until
from tests.pg import PostgresServer, find_bin_dir
from vesagent.leases import Fence, LeaseLost, LeaseTable
from vesagent.settings import Settings
from vesagent.store import AlarmRecord, OutboxItem, StoreError
from vesagent.store_pg import SCHEMA_VERSION, PgStore, redacted
from vesagent.stores import SqliteStore, open_store

A = "http://collector-a.example:8443/eventListener/v7"
B = "http://collector-b.example:8080/eventListener/v5"


def events(first: int, n: int, collector: str = A) -> list[OutboxItem]:
    return [
        OutboxItem(collector, "fault", f"ev{i}", 1, b"{}", 1.0) for i in range(first, first + n)
    ]


def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    """Six stores opened at the same instant on an empty database: one migration, all usable."""
    stores: list[PgStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(PgStore(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        assert len(stores) == 6
        for n, store in enumerate(stores):
            store.commit(events(n, 1))
        assert stores[0].depth() == 6
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT version FROM vesagent_schema").fetchall()
        assert rows == [(SCHEMA_VERSION,)]
    finally:
        for store in stores:
            store.close()


def test_newer_schema_is_refused_naming_the_database(pg_url: str) -> None:
    """A database migrated by a newer vesagent is not touched by this one."""
    PgStore(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE vesagent_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer") as caught:
        PgStore(pg_url)
    assert "127.0.0.1" in str(caught.value)


def test_unreachable_database_error_names_it_without_the_password() -> None:
    """The error says where, never the password in the URL (also not in its cause chain)."""
    url = f"postgresql://vesagent:s3cret-pw@127.0.0.1:{free_port()}/state"
    with pytest.raises(StoreError) as caught:
        PgStore(url, connect_timeout=1)
    text = str(caught.value)
    assert "127.0.0.1" in text and "s3cret-pw" not in text
    assert "s3cret-pw" not in repr(caught.value.__cause__)
    assert (
        redacted(url) == f"postgresql://vesagent@127.0.0.1:{url.split(':')[3].split('/')[0]}/state"
    )


def test_one_replica_delivers_a_collector_and_another_takes_over_when_it_dies(
    open_pg: Callable[..., PgStore],
) -> None:
    """Claims are exclusive per collector; a dead replica's queue is delivered by another."""
    a, b = open_pg(), open_pg()
    a.commit(events(0, 10) + events(100, 3, B))
    assert a.claim_collector(A) and a.claim_collector(A)
    assert not b.claim_collector(A)
    assert b.claim_collector(B)  # another collector: another lock
    delivered: list[str] = []

    def deliver(store: PgStore, limit: int) -> None:
        rows = store.pending(A, limit=limit)
        delivered.extend(r.event_id for r in rows)
        store.ack(r.id for r in rows)

    deliver(a, 4)
    a.close()  # the replica dies: its claims go with its connection
    wait_until(lambda: b.claim_collector(A), timeout=10, what="B to claim A's queue")
    deliver(b, 100)
    assert delivered == [f"ev{i}" for i in range(10)]
    b.release_collector(A)
    c = open_pg()
    assert c.claim_collector(A) and not b.claim_collector(A)


def test_claims_are_lost_with_the_claims_connection(
    open_pg: Callable[..., PgStore], pg_url: str
) -> None:
    """The server ending the claims session frees the queue; the owner notices at its next call."""
    a, b = open_pg(), open_pg()
    assert a.claim_collector(A)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
        )
    wait_until(lambda: b.claim_collector(A), timeout=10, what="the claim to be freed")
    assert not a.claim_collector(A)


def _backend_waiting(pg_url: str) -> int | None:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'vesagent'"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    return None if row is None else int(row[0])


def test_connection_lost_in_the_middle_of_a_commit_leaves_nothing_half(
    open_pg: Callable[..., PgStore], pg_url: str
) -> None:
    """The backend terminated after the events went in, before the alarms: none of it stays."""
    store = open_pg(pool_size=2)
    store.commit(events(0, 1))
    record = AlarmRecord("v", "vm1", "vm_status", "ev1", 1, 1, "MAJOR", "vm1")
    failures: list[BaseException] = []
    with psycopg.connect(pg_url) as blocker:
        # Hold the alarm table: the commit inserts its events, then waits on the alarm upsert.
        blocker.execute("LOCK TABLE alarm IN ACCESS EXCLUSIVE MODE")

        def commit() -> None:
            try:
                store.commit(events(1, 50), upsert=[record])
            except BaseException as exc:
                failures.append(exc)

        worker = threading.Thread(target=commit)
        worker.start()
        pid = wait_until(lambda: _backend_waiting(pg_url), timeout=10, what="commit to block")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        worker.join(timeout=10)
        blocker.rollback()
    assert len(failures) == 1 and isinstance(failures[0], StoreError), failures
    assert [r.event_id for r in store.pending(A)] == ["ev0"]
    assert store.alarm_count() == 0 and store.depth() == 1
    # The pool replaced the dead connection: the same commit now goes through whole.
    assert store.commit(events(1, 50), upsert=[record]) == 50
    assert store.depth() == 51 and store.alarm_count() == 1


def test_frozen_replica_cannot_block_the_others(
    open_pg: Callable[..., PgStore], pg_url: str
) -> None:
    """A session frozen inside a transaction is cut off by idle_in_transaction; a lock wait is
    bounded by lock_timeout; the frozen replica's commit then fails instead of half-writing."""
    frozen_store = open_pg(idle_in_transaction_timeout=1.0)
    other = open_pg(lock_timeout=0.3)
    table = LeaseTable(other, "agent-b", ttl=30)
    token = table.sync({"o/r": frozenset()}).held["o/r"]
    fence = Fence("o/r", "agent-b", token)
    with frozen_store.transaction() as conn:
        assert conn.execute("SHOW lock_timeout").fetchone() == ("5s",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
    release = threading.Event()
    outcome: list[BaseException | None] = []

    def freeze() -> None:
        try:
            with frozen_store.transaction() as conn:
                conn.execute("SELECT 1 FROM lease WHERE region = 'o/r' FOR UPDATE")
                release.wait(20)  # frozen (a GC pause, SIGSTOP) while holding the row lock
                conn.execute("INSERT INTO meta VALUES ('frozen', 'woke up')")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=freeze)
    worker.start()
    try:
        wait_until(
            lambda: _locked_lease(pg_url), timeout=10, what="the frozen session to hold the lease"
        )
        started = time.monotonic()
        with pytest.raises(StoreError, match="lock timeout"):
            other.commit(events(0, 1), fence=fence)
        assert time.monotonic() - started < 3
        # The server ends the frozen session after idle_in_transaction_session_timeout.
        wait_until(lambda: _committed(other, fence), timeout=10, what="the others to commit again")
    finally:
        release.set()
        worker.join(timeout=30)
    assert isinstance(outcome[0], StoreError)
    assert other.get_meta("frozen") is None


def _locked_lease(pg_url: str) -> bool:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'lease' AND l.mode = 'RowShareLock'"
        ).fetchone()
    return bool(row and row[0])


def _committed(store: PgStore, fence: Fence) -> bool:
    try:
        store.commit(events(0, 1), fence=fence)
    except StoreError:
        return False
    return True


def test_sqlite_store_has_the_shared_store_methods_as_no_ops(tmp_path: Path) -> None:
    """One replica: it always holds every collector, and a fence changes nothing."""
    with SqliteStore(tmp_path) as store:
        assert store.claim_collector(A)
        store.release_collector(A)
        assert store.commit(events(0, 2), fence=Fence("o/r", "x", 1)) == 2


def test_open_store_picks_the_backend_from_settings_and_urls(tmp_path: Path, pg_url: str) -> None:
    """No URL: SQLite in the state dir; postgresql://: PostgreSQL; an unknown scheme: an error."""
    plain = Settings(aai_url="http://aai", state_dir=tmp_path, outbox_max_events=5000)
    with open_store(plain) as store:
        assert isinstance(store, SqliteStore) and store.max_rows == 5000
    shared = Settings(aai_url="http://aai", state_url=pg_url, lease_ttl=7, complex="P1, P2,")
    assert shared.lease_ttl == 7 and shared.complex == ("P1", "P2")
    with open_store(shared) as store:
        assert isinstance(store, PgStore) and store.max_age == shared.outbox_max_age
    with open_store(f"sqlite://{tmp_path / 'other'}") as store:
        assert isinstance(store, SqliteStore) and store.path.parent == tmp_path / "other"
    with pytest.raises(ValueError, match="mysql"):
        open_store("mysql://db/state")
    with pytest.raises(ValidationError) as caught:
        Settings(aai_url="http://aai", state_url="mysql://u:s3cret@db/x")
    # What `vesagent run` prints of a validation error is the message, never the input.
    assert all("s3cret" not in err["msg"] for err in caught.value.errors())
    assert "s3cret" not in repr(
        Settings(aai_url="http://aai", state_url="postgresql://u:s3cret@h/d")
    )


def test_fence_is_checked_before_anything_is_written(open_pg: Callable[..., PgStore]) -> None:
    """LeaseLost leaves the outbox, the alarms and the counters of the commit untouched."""
    store = open_pg()
    record = AlarmRecord("v", "vm1", "vm_status", "ev1", 1, 1, "MAJOR", "vm1")
    with pytest.raises(LeaseLost):
        store.commit(events(0, 3), upsert=[record], fence=Fence("o/none", "a", 1))
    assert store.depth() == 0 and store.alarm_count() == 0 and store.collectors() == []


@pytest.mark.timeout(90)
def test_database_outage_fails_fast_keeps_nothing_half_and_recovers() -> None:
    """Server down: commits fail within the connect timeout and write nothing, readiness says
    so, claims are lost; server back: the same store works again without a restart."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    server = PostgresServer(bin_dir)  # its own server: this test stops it
    server.start()
    try:
        store = PgStore(server.url(), connect_timeout=1)
        store.commit(events(0, 1))
        assert store.claim_collector(A)
        server.stop(remove=False)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"127\.0\.0\.1"):
            store.commit(events(1, 5))
        assert time.monotonic() - started < 10
        assert not store.writable()
        assert not store.claim_collector(A)
        server.start()
        wait_until(store.writable, 20, "the store to reconnect")
        assert [r.event_id for r in store.pending(A)] == ["ev0"]
        assert store.commit(events(1, 5)) == 5
        assert store.claim_collector(A)
        store.close()
    finally:
        server.stop()
