"""The durable store in PostgreSQL: what ``store.Store`` keeps in SQLite, shared by replicas.

Same public methods and the same promises as :class:`vesagent.store.Store` (read its module
docstring): events are queued and alarm state changed in ONE transaction; a collector's rows are
pending in insertion (``id``) order; ids are never reused; ``ack``/``failed``/``dead_letter``/
``enforce_limits``/``depth``/``stats``/counters/meta behave alike. What PostgreSQL adds:

- **Shared state.** Every replica sees every open alarm and every queued event. A new owner of a
  region reads the alarm state its former owner committed, so nothing is raised twice and no
  clear is lost across a hand-over.
- **One deliverer per collector.** :meth:`PgStore.claim_collector` takes a session-level
  advisory lock on a connection of its own; the replica holding it delivers that queue, in
  order. When a replica dies its connection closes, the lock goes with it, and another replica
  claims the queue at its next round.
- **Fencing.** ``commit(..., fence=Fence(region, owner, token))`` first locks the region's lease
  row (``FOR SHARE``) and checks that ``owner`` still holds it with ``token`` and that it has not
  expired by the database's clock; otherwise it raises :class:`~vesagent.leases.LeaseLost`
  having written nothing. The row lock makes a take-over wait for a commit in flight, so a commit
  is either before the take-over (and the new owner reads its alarms) or refused.
- **Bounded holds.** Every pooled connection runs with ``lock_timeout``, ``statement_timeout``
  and ``idle_in_transaction_session_timeout``: a replica frozen inside a transaction (a GC pause,
  SIGSTOP) is cut off by the server and cannot block the others for longer than that.
- **Migrations** are versioned (``vesagent_schema``) and run under a transaction-scoped advisory
  lock, so replicas starting at the same moment migrate once, one after the other.

Order across replicas: ``id`` comes from an identity sequence when a row is inserted, and
concurrent transactions may commit out of id order, so a row may become visible behind rows the
sender already took. It is then delivered in the next round; nothing is skipped. Events of one
region come from one owner's commits one after the other, so their order is kept.

Expiry uses the database's clock (``now()``) for leases; the outbox age limit compares the
events' ``created`` stamps with ``clock`` when one is given, else with the database's clock.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from vesagent.leases import LOCK_SPACE, Fence, LeaseLost
from vesagent.store import (
    DEAD_LETTER_COLUMNS,
    ROW_COLUMNS,
    AlarmRecord,
    OutboxItem,
    OutboxRow,
    StoreError,
    _alarm_key,
    alarm_params,
    dead_letter_dicts,
    item_params,
    outbox_row,
    truncate_utf8,
)

SCHEMA_VERSION = 1

# Advisory lock keys (two int4s: our namespace, then the object); any fixed values do.
# LOCK_SPACE lives in leases.py, which this module imports (not the other way round).
MIGRATE_KEY = 1
LIMITS_KEY = 2  # 3: lease syncs (leases.LEASES_KEY)
COLLECTOR_SPACE = LOCK_SPACE + 1


_SCHEMA_V1 = (
    """CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        collector text NOT NULL,
        domain text NOT NULL,
        event_id text NOT NULL,
        sequence bigint NOT NULL,
        body bytea NOT NULL,
        size integer NOT NULL,
        created double precision NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        buffered boolean NOT NULL
    )""",
    "CREATE UNIQUE INDEX outbox_identity ON outbox (collector, event_id, sequence)",
    "CREATE INDEX outbox_queue ON outbox (collector, id)",
    "CREATE INDEX outbox_age ON outbox (created)",
    "CREATE INDEX outbox_unbuffered ON outbox (collector, event_id) WHERE NOT buffered",
    """CREATE TABLE outbox_totals (
        collector text PRIMARY KEY,
        rows bigint NOT NULL,
        bytes bigint NOT NULL
    )""",
    # Statement-level triggers with transition tables: one totals update per statement, not
    # per row. Rows are locked in collector order so concurrent statements cannot deadlock.
    """CREATE FUNCTION outbox_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO outbox_totals AS t (collector, rows, bytes)
        SELECT collector, count(*), sum(size) FROM inserted GROUP BY collector
        ORDER BY collector COLLATE "C"
        ON CONFLICT (collector) DO UPDATE
        SET rows = t.rows + excluded.rows, bytes = t.bytes + excluded.bytes;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER outbox_counted AFTER INSERT ON outbox
        REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION outbox_count_inserted()""",
    """CREATE FUNCTION outbox_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM outbox_totals
        WHERE collector IN (SELECT collector FROM deleted)
        ORDER BY collector COLLATE "C" FOR UPDATE;
        UPDATE outbox_totals AS t SET rows = t.rows - d.n, bytes = t.bytes - d.size
        FROM (SELECT collector, count(*) AS n, sum(size) AS size FROM deleted
              GROUP BY collector) AS d
        WHERE t.collector = d.collector;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER outbox_uncounted AFTER DELETE ON outbox
        REFERENCING OLD TABLE AS deleted
        FOR EACH STATEMENT EXECUTE FUNCTION outbox_count_deleted()""",
    """CREATE TABLE dead_letter (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        collector text NOT NULL,
        domain text NOT NULL,
        event_id text NOT NULL,
        sequence bigint NOT NULL,
        body bytea NOT NULL,
        created double precision NOT NULL,
        attempts integer NOT NULL,
        status integer NOT NULL,
        response text NOT NULL,
        failed_at double precision NOT NULL
    )""",
    "CREATE INDEX dead_letter_collector ON dead_letter (collector, id)",
    """CREATE TABLE alarm (
        vimid text NOT NULL,
        source_id text NOT NULL,
        condition text NOT NULL,
        event_id text NOT NULL,
        start_epoch_us bigint NOT NULL,
        sequence bigint NOT NULL,
        severity text NOT NULL,
        source_name text NOT NULL,
        data text NOT NULL,
        PRIMARY KEY (vimid, source_id, condition)
    )""",
    "CREATE TABLE counter (name text PRIMARY KEY, value bigint NOT NULL)",
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE replica (
        id text PRIMARY KEY,
        complexes text[] NOT NULL,
        seen timestamptz NOT NULL
    )""",
    """CREATE TABLE lease (
        region text PRIMARY KEY,
        owner text NOT NULL,
        token bigint NOT NULL,
        expires timestamptz NOT NULL
    )""",
    "CREATE INDEX lease_owner ON lease (owner)",
    "CREATE SEQUENCE lease_token",
)

# MIGRATIONS[n] turns a version-n database into version n+1; all steps run in one transaction.
MIGRATIONS: dict[int, tuple[str, ...]] = {0: _SCHEMA_V1}


def redacted(url: str) -> str:
    """``url`` without its password (and any other secret): for logs and error messages."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unparsable URL)"
    user = parts.get("user")
    host = parts.get("host") or "localhost"
    port = parts.get("port")
    where = f"{user}@{host}" if user else str(host)
    return f"postgresql://{where}{':' + str(port) if port else ''}/{parts.get('dbname', '')}"


def collector_key(collector: str) -> int:
    """The signed int4 advisory-lock key of a collector URL (a collision only shares a lock)."""
    digest = hashlib.blake2b(collector.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def session_options(
    lock_timeout: float, statement_timeout: float, idle_in_transaction_timeout: float
) -> str:
    """The libpq ``options`` that bound what one frozen session can hold, in milliseconds."""
    return (
        f"-c lock_timeout={int(lock_timeout * 1000)}"
        f" -c statement_timeout={int(statement_timeout * 1000)}"
        f" -c idle_in_transaction_session_timeout={int(idle_in_transaction_timeout * 1000)}"
    )


class PgStore:
    """The agent's durable state in the PostgreSQL database at ``url``; safe to share by threads.

    Limits and ``clock`` as :class:`vesagent.store.Store` (``clock=None``: the database's clock).
    ``pool_size`` connections at most; ``connect_timeout`` bounds the wait for one. The three
    timeouts are set on every pooled connection (seconds). ``reconnect_timeout``: how long one
    series of reconnection attempts lasts before it starts over.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age: float = 3600.0,
        max_rows: int = 1_000_000,
        max_bytes: int = 512 * 2**20,
        clock: Callable[[], float] | None = None,
        max_dead_letters: int = 10_000,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        lock_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        idle_in_transaction_timeout: float = 30.0,
        reconnect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self.max_age = max_age
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_dead_letters = max_dead_letters
        self._clock = clock
        self._connect_kwargs: dict[str, Any] = {
            "options": session_options(
                lock_timeout, statement_timeout, idle_in_transaction_timeout
            ),
            "connect_timeout": max(1, int(connect_timeout)),
            "application_name": "vesagent",
        }
        self._closed = False
        self._claims_lock = threading.Lock()
        self._claims_conn: psycopg.Connection[Any] | None = None
        self._claimed: set[str] = set()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=self._connect_kwargs,
            timeout=connect_timeout,
            check=ConnectionPool.check_connection,
            # The pool retries a lost connection with a doubling delay; giving up after a few
            # seconds restarts the series at 1 s, so a database that comes back is used again
            # within seconds, not after a delay that grew during a long outage.
            reconnect_timeout=reconnect_timeout,
            open=False,
            name="vesagent-store",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except Exception as exc:
            self._pool.close()
            raise StoreError(f"{self.where}: cannot connect to the state database: {exc}") from exc
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def _migrate(self) -> None:
        with self.transaction() as conn:
            # Transaction-scoped: released by the COMMIT, or by the server if we die.
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, MIGRATE_KEY))
            conn.execute("CREATE TABLE IF NOT EXISTS vesagent_schema (version integer NOT NULL)")
            row = conn.execute("SELECT max(version) FROM vesagent_schema").fetchone()
            version = (row[0] if row else None) or 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.where}: schema version {version} is newer than this vesagent "
                    f"understands ({SCHEMA_VERSION}); use a newer vesagent or another database"
                )
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                conn.execute("DELETE FROM vesagent_schema")
                conn.execute("INSERT INTO vesagent_schema (version) VALUES (%s)", (version,))

    def _error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"{self.where}: {what}: {exc}")

    def close(self) -> None:
        """Release collector claims and close every connection. Idempotent."""
        self._closed = True
        with self._claims_lock:
            if self._claims_conn is not None:
                self._claims_conn.close()
                self._claims_conn = None
            self._claimed.clear()
        self._pool.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection; any exception rolls all of it back.

        Database errors become :class:`StoreError` naming the database (never its password);
        other exceptions (bad input, :class:`LeaseLost`) pass through unchanged.
        """
        if self._closed:
            raise StoreError(f"{self.where}: the store is closed")
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:  # PoolTimeout (no connection in time) included
            raise self._error("database error", exc) from exc

    def _now(self, conn: psycopg.Connection[Any]) -> float:
        if self._clock is not None:
            return self._clock()
        row = conn.execute("SELECT extract(epoch FROM now())::float8").fetchone()
        assert row is not None
        return float(row[0])

    # -- producers --------------------------------------------------------------------------

    def commit(
        self,
        items: Iterable[OutboxItem] = (),
        upsert: Iterable[AlarmRecord] = (),
        delete: Iterable[tuple[str, str, str]] = (),
        *,
        fence: Fence | None = None,
    ) -> int:
        """Queue ``items`` and apply alarm changes in ONE transaction; return rows inserted.

        As :meth:`vesagent.store.Store.commit`; with ``fence``, raise :class:`LeaseLost` and
        write nothing unless the fence's lease is still held (checked in the same transaction).
        """
        rows = [item_params(item) for item in items]
        alarms = {}
        for record in upsert:
            params = alarm_params(record)
            alarms[params[:3]] = params  # the last upsert of a key wins, as in SQLite
        gone = [_alarm_key(key) for key in delete]
        with self.transaction() as conn:
            if fence is not None:
                held = conn.execute(
                    "SELECT 1 FROM lease WHERE region = %s AND owner = %s AND token = %s"
                    " AND expires > now() FOR SHARE",
                    (fence.region, fence.owner, fence.token),
                ).fetchone()
                if held is None:
                    raise LeaseLost(fence)
            inserted = 0
            if rows:
                columns = list(zip(*rows, strict=True))
                cursor = conn.execute(
                    "INSERT INTO outbox (collector, domain, event_id, sequence, body, size,"
                    " created, buffered)"
                    " SELECT c, d, e, s, b, z, t, u <> 0 FROM unnest(%s::text[], %s::text[],"
                    " %s::text[], %s::bigint[], %s::bytea[], %s::int[], %s::float8[],"
                    " %s::int[]) WITH ORDINALITY AS x(c, d, e, s, b, z, t, u, n)"
                    " ORDER BY n"
                    " ON CONFLICT (collector, event_id, sequence) DO NOTHING",
                    [list(c) for c in columns],
                )
                inserted = max(cursor.rowcount, 0)
            if alarms:
                columns = list(zip(*alarms.values(), strict=True))
                conn.execute(
                    "INSERT INTO alarm AS a (vimid, source_id, condition, event_id,"
                    " start_epoch_us, sequence, severity, source_name, data)"
                    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
                    " %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[])"
                    " ON CONFLICT (vimid, source_id, condition) DO UPDATE SET"
                    " event_id = excluded.event_id, start_epoch_us = excluded.start_epoch_us,"
                    " sequence = excluded.sequence, severity = excluded.severity,"
                    " source_name = excluded.source_name, data = excluded.data",
                    [list(c) for c in columns],
                )
            if gone:
                columns = list(zip(*gone, strict=True))
                conn.execute(
                    "DELETE FROM alarm WHERE (vimid, source_id, condition) IN"
                    " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
                    [list(c) for c in columns],
                )
        return inserted

    def alarms(self, vimid: str) -> dict[tuple[str, str], AlarmRecord]:
        """Open alarms of region ``vimid`` keyed by ``(source_id, condition)``."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT vimid, source_id, condition, event_id, start_epoch_us, sequence,"
                " severity, source_name, data FROM alarm WHERE vimid = %s",
                (vimid,),
            ).fetchall()
        return {
            (r[1], r[2]): AlarmRecord(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8])
            )
            for r in rows
        }

    def alarm_count(self, vimid: str | None = None) -> int:
        """Open alarms of ``vimid``, or of every region."""
        with self.transaction() as conn:
            if vimid is None:
                row = conn.execute("SELECT count(*) FROM alarm").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM alarm WHERE vimid = %s", (vimid,)
                ).fetchone()
        assert row is not None
        return int(row[0])

    # -- the sender -------------------------------------------------------------------------

    def claim_collector(self, collector: str) -> bool:
        """True when this store (replica) may deliver ``collector``'s queue now.

        A session-level advisory lock on a connection kept for claims: held until
        :meth:`release_collector`, :meth:`close`, or the death of this process or its
        connection. A lost connection loses every claim; the next call re-claims if it can.
        """
        with self._claims_lock:
            if self._closed:
                return False
            try:
                conn = self._claims_conn
                if conn is None or conn.closed or conn.broken:
                    self._claimed.clear()
                    conn = self._claims_conn = psycopg.connect(
                        self.url, autocommit=True, **self._connect_kwargs
                    )
                if collector in self._claimed:
                    conn.execute("SELECT 1")  # still connected, so still holding it
                    return True
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)",
                    (COLLECTOR_SPACE, collector_key(collector)),
                ).fetchone()
            except psycopg.Error:
                self._claimed.clear()
                if self._claims_conn is not None:
                    with suppress(psycopg.Error):
                        self._claims_conn.close()
                self._claims_conn = None
                return False
            if row is not None and row[0]:
                self._claimed.add(collector)
                return True
            return False

    def release_collector(self, collector: str) -> None:
        """Give up the claim on ``collector`` (another replica may deliver it next)."""
        with self._claims_lock:
            if collector not in self._claimed:
                return
            self._claimed.discard(collector)
            conn = self._claims_conn
            if conn is not None and not conn.closed:
                with suppress(psycopg.Error):
                    conn.execute(
                        "SELECT pg_advisory_unlock(%s, %s)",
                        (COLLECTOR_SPACE, collector_key(collector)),
                    )

    def collectors(self) -> list[str]:
        """Collectors that have pending rows, sorted."""
        with self.transaction() as conn:
            rows = conn.execute(
                'SELECT collector FROM outbox_totals WHERE rows > 0 ORDER BY collector COLLATE "C"'
            ).fetchall()
        return [r[0] for r in rows]

    def pending(
        self, collector: str, limit: int = 500, max_bytes: int | None = None
    ) -> list[OutboxRow]:
        """Up to ``limit`` rows of ``collector``, oldest (first inserted) first.

        With ``max_bytes`` the rows' bodies add up to at most that, except that the first row is
        always returned, however large.
        """
        if limit <= 0:
            return []
        with self.transaction() as conn:
            fetched = conn.execute(
                f"SELECT {ROW_COLUMNS}, size FROM outbox WHERE collector = %s ORDER BY id LIMIT %s",
                (collector, limit),
            ).fetchall()
        result: list[OutboxRow] = []
        total = 0
        for values in fetched:
            total += values[-1]
            if max_bytes is not None and result and total > max_bytes:
                break
            result.append(outbox_row(values[:-1]))
        return result

    def ack(self, ids: Iterable[int]) -> None:
        """Delivered (2xx): delete these rows. Ids already gone are ignored."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return
        with self.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (wanted,))

    def failed(self, ids: Iterable[int]) -> int:
        """A failed attempt: buffered rows get ``attempts + 1``, unbuffered rows are deleted.

        Returns how many unbuffered rows were dropped.
        """
        wanted = [int(i) for i in ids]
        if not wanted:
            return 0
        with self.transaction() as conn:
            dropped = conn.execute(
                "DELETE FROM outbox WHERE id = ANY(%s) AND NOT buffered", (wanted,)
            ).rowcount
            conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY(%s)", (wanted,))
        return max(dropped, 0)

    def drop_superseded(self, collector: str, event_id_prefix: str) -> int:
        """Delete pending unbuffered rows of ``collector`` whose eventId starts with the prefix."""
        with self.transaction() as conn:
            dropped = conn.execute(
                "DELETE FROM outbox WHERE collector = %s AND NOT buffered"
                " AND starts_with(event_id, %s)",
                (collector, event_id_prefix),
            ).rowcount
        return max(dropped, 0)

    def dead_letter(self, ids: Iterable[int], status: int, response: str) -> None:
        """Refused for good (non-retryable 4xx): move rows to the dead letters with the answer."""
        wanted = [int(i) for i in ids]
        text = truncate_utf8(response or "")
        with self.transaction() as conn:
            if wanted:
                conn.execute(
                    "INSERT INTO dead_letter (collector, domain, event_id, sequence, body,"
                    " created, attempts, status, response, failed_at)"
                    " SELECT collector, domain, event_id, sequence, body, created, attempts + 1,"
                    " %s, %s, %s FROM outbox WHERE id = ANY(%s) ORDER BY id",
                    (int(status), text, self._now(conn), wanted),
                )
                conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (wanted,))
            if self.max_dead_letters >= 0:
                # By rank, not by id arithmetic: identity values have gaps after rollbacks.
                conn.execute(
                    "DELETE FROM dead_letter WHERE id <= (SELECT id FROM dead_letter"
                    " ORDER BY id DESC LIMIT 1 OFFSET %s)",
                    (self.max_dead_letters,),
                )

    def dead_letters(self, collector: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent dead letters first, as JSON-ready dicts (body decoded as UTF-8)."""
        where, args = ("WHERE collector = %s", (collector,)) if collector is not None else ("", ())
        with self.transaction() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letter {where}"
                " ORDER BY id DESC LIMIT %s",
                (*args, limit),
            ).fetchall()
        return dead_letter_dicts(rows)

    def dead_letter_count(self, collector: str | None = None) -> int:
        """How many dead letters are kept (of ``collector``, or of all)."""
        where, args = ("WHERE collector = %s", (collector,)) if collector is not None else ("", ())
        with self.transaction() as conn:
            row = conn.execute(f"SELECT count(*) FROM dead_letter {where}", args).fetchone()
        return int(row[0]) if row else 0

    def requeue_dead_letters(
        self, ids: Iterable[int] | None = None, collector: str | None = None
    ) -> list[int]:
        """Put dead letters back at the end of the outbox (after a fix); returns their ids.

        The same promises as the SQLite store: chosen by ``ids``, ``collector`` or both (both
        None: none), queued as new with the same eventId and sequence, never doubled, in
        dead-letter order, in one transaction.
        """
        if ids is None and collector is None:
            return []
        clauses: list[str] = []
        args: list[Any] = []
        if ids is not None:
            chosen = sorted({int(i) for i in ids})
            if not chosen:
                return []
            clauses.append("id = ANY(%s)")
            args.append(chosen)
        if collector is not None:
            clauses.append("collector = %s")
            args.append(collector)
        where = " AND ".join(clauses)
        with self.transaction() as conn:
            found = [
                int(row[0])
                for row in conn.execute(
                    f"SELECT id FROM dead_letter WHERE {where} ORDER BY id FOR UPDATE", args
                ).fetchall()
            ]
            if found:
                conn.execute(
                    "INSERT INTO outbox (collector, domain, event_id, sequence, body, size,"
                    " created, buffered) SELECT collector, domain, event_id, sequence, body,"
                    " length(body), %s, true FROM dead_letter WHERE id = ANY(%s) ORDER BY id"
                    " ON CONFLICT (collector, event_id, sequence) DO NOTHING",
                    (self._now(conn), found),
                )
                conn.execute("DELETE FROM dead_letter WHERE id = ANY(%s)", (found,))
        return found

    # -- limits and metrics -----------------------------------------------------------------

    def enforce_limits(self) -> list[tuple[str, str, int]]:
        """Drop rows older than ``max_age``, then the oldest beyond ``max_rows``/``max_bytes``.

        Returns ``(collector, domain, dropped)`` groups, sorted. One replica at a time (an
        advisory lock): the limits are for the whole shared outbox.
        """
        dropped: dict[tuple[str, str], int] = {}

        def drop(conn: psycopg.Connection[Any], sql: str, args: tuple[Any, ...]) -> None:
            for collector, domain, n in conn.execute(
                f"WITH gone AS (DELETE FROM outbox WHERE {sql} RETURNING collector, domain)"
                " SELECT collector, domain, count(*) FROM gone GROUP BY collector, domain",
                args,
            ).fetchall():
                dropped[(collector, domain)] = dropped.get((collector, domain), 0) + n

        def totals(conn: psycopg.Connection[Any]) -> tuple[int, int]:
            row = conn.execute(
                "SELECT coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM outbox_totals"
            ).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, LIMITS_KEY))
            drop(conn, "created < %s", (self._now(conn) - self.max_age,))
            rows, size = totals(conn)
            if rows > self.max_rows:
                drop(
                    conn,
                    "id <= (SELECT id FROM outbox ORDER BY id LIMIT 1 OFFSET %s)",
                    (rows - self.max_rows - 1,),
                )
                rows, size = totals(conn)
            if size > self.max_bytes:
                # The first id at which the running total of the oldest rows frees enough.
                drop(
                    conn,
                    "id <= (SELECT id FROM (SELECT id, sum(size) OVER (ORDER BY id) AS freed"
                    " FROM outbox) AS s WHERE freed >= %s ORDER BY id LIMIT 1)",
                    (size - self.max_bytes,),
                )
            conn.execute("DELETE FROM outbox_totals WHERE rows <= 0")
        return sorted((c, d, n) for (c, d), n in dropped.items() if n)

    def depth(self, collector: str | None = None) -> int:
        """Pending rows of ``collector``, or of all collectors."""
        with self.transaction() as conn:
            if collector is None:
                row = conn.execute("SELECT coalesce(sum(rows), 0) FROM outbox_totals").fetchone()
            else:
                row = conn.execute(
                    "SELECT coalesce(sum(rows), 0) FROM outbox_totals WHERE collector = %s",
                    (collector,),
                ).fetchone()
        assert row is not None
        return int(row[0])

    def oldest_created(self, collector: str) -> float | None:
        """The smallest ``created`` of ``collector``'s pending rows (None when empty)."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT created FROM outbox WHERE collector = %s ORDER BY created LIMIT 1",
                (collector,),
            ).fetchone()
        return None if row is None else float(row[0])

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per collector with pending rows: ``depth``, ``bytes``, ``oldest_created``."""
        with self.transaction() as conn:
            totals = conn.execute(
                "SELECT collector, rows, bytes FROM outbox_totals WHERE rows > 0"
                ' ORDER BY collector COLLATE "C"'
            ).fetchall()
            result = {}
            for collector, rows, size in totals:
                oldest = conn.execute(
                    "SELECT min(created) FROM outbox WHERE collector = %s", (collector,)
                ).fetchone()
                result[collector] = {
                    "depth": int(rows),
                    "bytes": int(size),
                    "oldest_created": None if oldest is None else oldest[0],
                }
        return result

    # -- counters and metadata --------------------------------------------------------------

    def next_counter(self, name: str) -> int:
        """The next value (1, 2, 3, ...) of the durable counter ``name``; never repeats."""
        with self.transaction() as conn:
            row = conn.execute(
                "INSERT INTO counter AS c (name, value) VALUES (%s, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = c.value + 1 RETURNING value",
                (name,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def get_meta(self, key: str) -> str | None:
        """The stored value of ``key``, or None."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (replacing any previous value)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    def writable(self) -> bool:
        """For ``/readyz``: True when a tiny write transaction succeeds right now."""
        try:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_write_check', now()::text)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                )
        except StoreError:
            return False
        return True
