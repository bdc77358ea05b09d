"""The durable store: the VES outbox, dead letters, open alarms, counters, in one SQLite file.

Why it exists: an event is written to the outbox *before* anything is sent and leaves it only
when the collector answers 2xx (``ack``) or refuses it for good (``dead_letter``), so a
collector outage or a ``kill -9`` of the agent loses nothing that was committed. The state of
open alarms (eventId, start time, sequence of each fault instance) lives in the same file and
is changed in the *same transaction* as the events that announce the change, so after a crash
the alarm table and the outbox always agree: either the raise event is queued and the alarm is
open, or neither.

Durability promise: ``journal_mode=WAL`` with ``synchronous=NORMAL``. A committed transaction
is in the WAL file (written to the OS) before ``commit`` returns, so it survives the death of
the process at any instant. It is *not* fsynced on every commit: a power cut or kernel crash
may lose the last transactions (the database stays consistent, never corrupt). We promise the
former (CONTRACT.md section 5: "survive ... a kill -9 of the agent"), and full sync would cost
one fsync per poll cycle for no gain in that promise.

Concurrency: several poller threads and one sender thread share ONE connection guarded by a
lock. SQLite admits one writer at a time anyway; with a connection per thread, writers would
queue on SQLite's file lock, whose busy handler sleeps and polls, while a Python lock hands
over at once. Calls are short: a 10,000-event commit takes about 0.15 s, a 500-row
``pending`` + ``ack`` a few ms; only an ``enforce_limits`` that drops a large backlog at once
holds the lock longer (about 1.5 s per 100,000 rows).
``busy_timeout`` still matters when another process holds the file (a second agent started
on the same state directory, or an operator's ``sqlite3`` shell).

Layout (``PRAGMA user_version`` = ``SCHEMA_VERSION``; ``MIGRATIONS`` upgrades older files):

- ``outbox``: pending events. ``id`` is AUTOINCREMENT so ids are never reused: the sender may
  ack an id after ``enforce_limits`` dropped it, and that id must not name a newer event.
  Insertion order (``id``) is delivery order.
- ``outbox_totals``: rows and body bytes per collector, kept by triggers, so ``depth``,
  ``collectors`` and ``stats`` never count a million rows.
- ``dead_letter``: events the collector refused with a non-retryable status (newest
  ``max_dead_letters`` kept).
- ``alarm``, ``counter``, ``meta``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vesagent.errors import PermanentError
from vesagent.model import AlarmRecord as AlarmRecord  # moved to the domain model

DB_FILENAME = "vesagent.sqlite3"
SCHEMA_VERSION = 1
MAX_RESPONSE_BYTES = 4096


class StoreError(PermanentError):
    """The state database cannot be used: not creatable, not a database, corrupt, locked."""


@dataclass(frozen=True)
class OutboxItem:
    """One event a producer enqueues for one collector.

    ``collector`` is the VES endpoint URL (the key of a delivery queue; credentials are never
    stored here). ``body`` is the encoded JSON of one event object, not wrapped in
    ``{"event": ...}``. ``buffered=False`` (heartbeats) means: drop it when a delivery fails
    instead of keeping it for a retry.
    """

    collector: str
    domain: str
    event_id: str
    sequence: int
    body: bytes
    created: float
    buffered: bool = True


@dataclass(frozen=True)
class OutboxRow:
    """One pending outbox row as the sender sees it; ``id`` is what ``ack``/``failed`` take."""

    id: int
    collector: str
    domain: str
    event_id: str
    sequence: int
    body: bytes
    created: float
    attempts: int
    buffered: bool


# ---------------------------------------------------------------------------------------------
# Schema


_SCHEMA_V1 = (
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collector TEXT NOT NULL,
        domain TEXT NOT NULL,
        event_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        body BLOB NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        buffered INTEGER NOT NULL
    )""",
    "CREATE UNIQUE INDEX outbox_identity ON outbox (collector, event_id, sequence)",
    "CREATE INDEX outbox_queue ON outbox (collector, id)",
    "CREATE INDEX outbox_age ON outbox (collector, created)",
    # Unbuffered rows (heartbeats) are few; superseding them must not scan a long backlog.
    "CREATE INDEX outbox_unbuffered ON outbox (collector, event_id) WHERE buffered = 0",
    """CREATE TABLE outbox_totals (
        collector TEXT PRIMARY KEY,
        rows INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TRIGGER outbox_counted AFTER INSERT ON outbox BEGIN
        INSERT INTO outbox_totals (collector, rows, bytes) VALUES (NEW.collector, 1, NEW.size)
        ON CONFLICT (collector) DO UPDATE SET rows = rows + 1, bytes = bytes + excluded.bytes;
    END""",
    """CREATE TRIGGER outbox_uncounted AFTER DELETE ON outbox BEGIN
        UPDATE outbox_totals SET rows = rows - 1, bytes = bytes - OLD.size
        WHERE collector = OLD.collector;
    END""",
    """CREATE TABLE dead_letter (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collector TEXT NOT NULL,
        domain TEXT NOT NULL,
        event_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        body BLOB NOT NULL,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL,
        status INTEGER NOT NULL,
        response TEXT NOT NULL,
        failed_at REAL NOT NULL
    )""",
    "CREATE INDEX dead_letter_collector ON dead_letter (collector, id)",
    """CREATE TABLE alarm (
        vimid TEXT NOT NULL,
        source_id TEXT NOT NULL,
        condition TEXT NOT NULL,
        event_id TEXT NOT NULL,
        start_epoch_us INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        severity TEXT NOT NULL,
        source_name TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (vimid, source_id, condition)
    ) WITHOUT ROWID""",
    "CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    # Statement by statement: executescript() would COMMIT the migration transaction first.
    for statement in _SCHEMA_V1:
        conn.execute(statement)


# MIGRATIONS[n] turns a version-n file into version n+1; all steps run in one transaction.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _migrate_0_to_1}


# ---------------------------------------------------------------------------------------------
# Pure helpers


def _check_text(item: object, name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{type(item).__name__}.{name} must be a non-empty string: {value!r}")
    return value


def _check_int(item: object, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{type(item).__name__}.{name} must be an integer: {value!r}")
    return value


def item_params(item: OutboxItem) -> tuple[Any, ...]:
    """The outbox INSERT parameters of ``item``; ValueError/TypeError if it is malformed."""
    if not isinstance(item, OutboxItem):
        raise TypeError(f"expected OutboxItem, got {type(item).__name__}")
    if not isinstance(item.body, bytes | bytearray | memoryview):
        raise ValueError(f"OutboxItem.body must be bytes, got {type(item.body).__name__}")
    if isinstance(item.created, bool) or not isinstance(item.created, int | float):
        raise ValueError(f"OutboxItem.created must be epoch seconds: {item.created!r}")
    body = bytes(item.body)
    return (
        _check_text(item, "collector", item.collector),
        _check_text(item, "domain", item.domain),
        _check_text(item, "event_id", item.event_id),
        _check_int(item, "sequence", item.sequence),
        body,
        len(body),
        float(item.created),
        1 if item.buffered else 0,
    )


def alarm_params(record: AlarmRecord) -> tuple[Any, ...]:
    """The alarm UPSERT parameters of ``record``; TypeError if ``data`` is not JSON."""
    if not isinstance(record, AlarmRecord):
        raise TypeError(f"expected AlarmRecord, got {type(record).__name__}")
    return (
        _check_text(record, "vimid", record.vimid),
        _check_text(record, "source_id", record.source_id),
        _check_text(record, "condition", record.condition),
        _check_text(record, "event_id", record.event_id),
        _check_int(record, "start_epoch_us", record.start_epoch_us),
        _check_int(record, "sequence", record.sequence),
        str(record.severity),
        str(record.source_name),
        json.dumps(record.data, sort_keys=True, allow_nan=False),
    )


def truncate_utf8(text: str, limit: int = MAX_RESPONSE_BYTES) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never in the middle of a character."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def bytes_cutoff(rows: Iterable[tuple[int, int]], excess: int) -> int | None:
    """The id up to which the oldest ``(id, size)`` rows must go to free ``excess`` bytes."""
    freed = 0
    last: int | None = None
    for row_id, size in rows:
        if freed >= excess:
            break
        freed += size
        last = row_id
    return last


def outbox_row(values: tuple[Any, ...]) -> OutboxRow:
    """An outbox row as both backends select it (``ROW_COLUMNS``)."""
    row_id, collector, domain, event_id, sequence, body, created, attempts, buffered = values
    return OutboxRow(
        row_id,
        collector,
        domain,
        event_id,
        sequence,
        bytes(body),
        created,
        attempts,
        bool(buffered),
    )


ROW_COLUMNS = "id, collector, domain, event_id, sequence, body, created, attempts, buffered"
DEAD_LETTER_COLUMNS = (
    "id",
    "collector",
    "domain",
    "event_id",
    "sequence",
    "body",
    "created",
    "attempts",
    "status",
    "response",
    "failed_at",
)


def dead_letter_dicts(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Dead letters selected as ``DEAD_LETTER_COLUMNS``, as JSON-ready dicts (body as text)."""
    letters = [dict(zip(DEAD_LETTER_COLUMNS, row, strict=True)) for row in rows]
    for letter in letters:
        letter["body"] = bytes(letter["body"]).decode("utf-8", errors="replace")
    return letters


class Outbox(Protocol):
    """What the producers (the pollers, through ``vesagent.enqueue``) need from the store.

    This is the seam another backend (PostgreSQL) implements; ``Store`` is the SQLite one.
    Three calls, all thread-safe:

    - ``commit`` queues encoded events and changes open alarms in ONE transaction: after a
      crash the outbox and the alarm table agree (the raise is queued and the alarm open, or
      neither). An item whose ``(collector, event_id, sequence)`` is already pending is
      ignored; alarm upserts apply before deletes; invalid input keeps nothing. Returns the
      rows inserted. Raises ``StoreError`` (a ``PermanentError``) when the store is unusable.
    - ``alarms`` returns the open alarms of one region, keyed ``(source_id, condition)``; a
      poller reads them once at start, then keeps its copy in line with its own commits.
    - ``drop_superseded`` deletes pending unbuffered rows (heartbeats) of ``collector`` whose
      eventId starts with the prefix: a newer heartbeat makes them worthless.
    """

    def commit(
        self,
        items: Iterable[OutboxItem] = (),
        upsert: Iterable[AlarmRecord] = (),
        delete: Iterable[tuple[str, str, str]] = (),
    ) -> int: ...

    def alarms(self, vimid: str) -> dict[tuple[str, str], AlarmRecord]: ...

    def drop_superseded(self, collector: str, event_id_prefix: str) -> int: ...


# ---------------------------------------------------------------------------------------------
# The store


class Store:
    """The agent's durable state in ``{state_dir}/vesagent.sqlite3``; safe to share by threads.

    Limits (``enforce_limits``): rows older than ``max_age`` seconds, and the oldest rows beyond
    ``max_rows`` rows or ``max_bytes`` bytes of event bodies (all collectors together) are
    dropped. ``max_bytes`` counts event bodies, not the file: indexes add about 40 %, and the
    file keeps its high-water size (freed pages are reused, not returned to the filesystem).
    ``busy_timeout`` is how long to wait for another process holding the file. ``clock`` gives
    the time for the age limit and for dead-letter timestamps.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        max_age: float = 3600.0,
        max_rows: int = 1_000_000,
        max_bytes: int = 512 * 2**20,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        max_dead_letters: int = 10_000,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_FILENAME
        self.max_age = max_age
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_dead_letters = max_dead_letters
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create state directory {self.state_dir}: {exc.strerror or exc}"
            ) from exc
        self._conn: sqlite3.Connection | None = self._open(busy_timeout)

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error("cannot open the state database", exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self.path}: cannot use write-ahead logging (journal_mode is {mode}); "
                    "put the state directory on a local filesystem"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -16384")  # 16 MiB: the queue indexes stay hot
            self._migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self._error("not a usable state database", exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # IMMEDIATE even when nothing is to do: it proves at start-up that we can write.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this vesagent "
                    f"understands ({SCHEMA_VERSION}); use a newer vesagent or another state dir"
                )
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            # Touch every table so a damaged schema fails here, at start-up, naming the file.
            for table in ("outbox", "outbox_totals", "dead_letter", "alarm", "counter", "meta"):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"{self.path}: {what}: {exc}")

    def close(self) -> None:
        """Close the database (checkpoints the WAL). Idempotent; later calls raise StoreError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the lock; any exception rolls all of it back."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error("cannot start a write transaction", exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    # The original error is the one worth reporting.
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error("write failed", exc) from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot under the lock (a deferred transaction takes no write lock)."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error("read failed", exc) from exc

    # -- producers --------------------------------------------------------------------------

    def commit(
        self,
        items: Iterable[OutboxItem] = (),
        upsert: Iterable[AlarmRecord] = (),
        delete: Iterable[tuple[str, str, str]] = (),
    ) -> int:
        """Queue ``items`` and apply alarm changes in ONE transaction; return rows inserted.

        An item whose ``(collector, event_id, sequence)`` is already pending is ignored
        (announcing the same event twice is harmless). Alarm upserts are applied before the
        deletes of ``(vimid, source_id, condition)`` keys. If anything is invalid (ValueError,
        TypeError) nothing of this call is kept.
        """
        with self._write() as conn:
            cursor = conn.executemany(
                "INSERT INTO outbox (collector, domain, event_id, sequence, body, size, created,"
                " buffered) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (collector, event_id, sequence) DO NOTHING",
                (item_params(item) for item in items),
            )
            inserted = max(cursor.rowcount, 0)
            conn.executemany(
                "INSERT OR REPLACE INTO alarm (vimid, source_id, condition, event_id,"
                " start_epoch_us, sequence, severity, source_name, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alarm_params(record) for record in upsert),
            )
            conn.executemany(
                "DELETE FROM alarm WHERE vimid = ? AND source_id = ? AND condition = ?",
                (_alarm_key(key) for key in delete),
            )
        return inserted

    def alarms(self, vimid: str) -> dict[tuple[str, str], AlarmRecord]:
        """Open alarms of region ``vimid`` keyed by ``(source_id, condition)``."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT vimid, source_id, condition, event_id, start_epoch_us, sequence,"
                " severity, source_name, data FROM alarm WHERE vimid = ?",
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
        with self._read() as conn:
            if vimid is None:
                return conn.execute("SELECT count(*) FROM alarm").fetchone()[0]
            return conn.execute("SELECT count(*) FROM alarm WHERE vimid = ?", (vimid,)).fetchone()[
                0
            ]

    # -- the sender -------------------------------------------------------------------------

    def collectors(self) -> list[str]:
        """Collectors that have pending rows, sorted."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT collector FROM outbox_totals WHERE rows > 0 ORDER BY collector"
            ).fetchall()
        return [r[0] for r in rows]

    def pending(
        self, collector: str, limit: int = 500, max_bytes: int | None = None
    ) -> list[OutboxRow]:
        """Up to ``limit`` rows of ``collector``, oldest (first inserted) first.

        With ``max_bytes`` the rows' bodies add up to at most that, except that the first row is
        always returned, however large, so one big event cannot stall its queue.
        """
        if limit <= 0:
            return []
        with self._read() as conn:
            fetched = conn.execute(
                f"SELECT {ROW_COLUMNS}, size FROM outbox WHERE collector = ? ORDER BY id LIMIT ?",
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
        with self._write() as conn:
            conn.executemany("DELETE FROM outbox WHERE id = ?", ((i,) for i in ids))

    def failed(self, ids: Iterable[int]) -> int:
        """A failed attempt: buffered rows get ``attempts + 1``, unbuffered rows are deleted.

        Returns how many unbuffered rows were dropped.
        """
        params = [(i,) for i in ids]
        with self._write() as conn:
            dropped = conn.executemany(
                "DELETE FROM outbox WHERE id = ? AND buffered = 0", params
            ).rowcount
            conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", params)
        return max(dropped, 0)

    def drop_superseded(self, collector: str, event_id_prefix: str) -> int:
        """Delete pending unbuffered rows whose eventId starts with the prefix.

        A new heartbeat makes the older, undelivered ones of the same source worthless:
        delivering them after an outage would only replay stale liveness.
        """
        end = event_id_prefix + "\U0010ffff"
        with self._write() as conn:
            dropped = conn.execute(
                "DELETE FROM outbox WHERE collector = ? AND buffered = 0"
                " AND event_id >= ? AND event_id < ?",
                (collector, event_id_prefix, end),
            ).rowcount
        return max(dropped, 0)

    def dead_letter(self, ids: Iterable[int], status: int, response: str) -> None:
        """Refused for good (non-retryable 4xx): move rows to the dead letters with the answer."""
        params = [(int(status), truncate_utf8(response or ""), self._clock(), i) for i in ids]
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO dead_letter (collector, domain, event_id, sequence, body, created,"
                " attempts, status, response, failed_at)"
                " SELECT collector, domain, event_id, sequence, body, created, attempts + 1,"
                " ?, ?, ? FROM outbox WHERE id = ?",
                params,
            )
            conn.executemany("DELETE FROM outbox WHERE id = ?", ((p[-1],) for p in params))
            if self.max_dead_letters >= 0:
                conn.execute(
                    "DELETE FROM dead_letter WHERE id <= (SELECT max(id) FROM dead_letter) - ?",
                    (self.max_dead_letters,),
                )

    def dead_letters(self, collector: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent dead letters first, as JSON-ready dicts (body decoded as UTF-8)."""
        where, args = ("WHERE collector = ?", (collector,)) if collector is not None else ("", ())
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letter {where}"
                " ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return dead_letter_dicts(rows)

    def dead_letter_count(self, collector: str | None = None) -> int:
        """How many dead letters are kept (of ``collector``, or of all)."""
        where, args = ("WHERE collector = ?", (collector,)) if collector is not None else ("", ())
        with self._read() as conn:
            (count,) = conn.execute(f"SELECT count(*) FROM dead_letter {where}", args).fetchone()
        return int(count)

    def requeue_dead_letters(
        self, ids: Iterable[int] | None = None, collector: str | None = None
    ) -> list[int]:
        """Put dead letters back at the end of the outbox (after a fix); returns their ids.

        Chosen by ``ids``, by ``collector``, or both (both None: none at all, never "every
        one" by accident). They are queued as new (``created`` now, no attempts yet), with the
        same eventId and sequence; one still pending with the same identity is not doubled.
        """
        if ids is None and collector is None:
            return []
        clauses: list[str] = []
        args: list[object] = []
        if ids is not None:
            chosen = sorted({int(i) for i in ids})
            if not chosen:
                return []
            clauses.append(f"id IN ({', '.join('?' * len(chosen))})")
            args.extend(chosen)
        if collector is not None:
            clauses.append("collector = ?")
            args.append(collector)
        where = " AND ".join(clauses)
        with self._write() as conn:
            found = [
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM dead_letter WHERE {where} ORDER BY id", args
                ).fetchall()
            ]
            for letter in found:  # in dead-letter order, so the outbox keeps their order
                conn.execute(
                    "INSERT INTO outbox (collector, domain, event_id, sequence, body, size,"
                    " created, buffered) SELECT collector, domain, event_id, sequence, body,"
                    " length(body), ?, 1 FROM dead_letter WHERE id = ?"
                    " ON CONFLICT (collector, event_id, sequence) DO NOTHING",
                    (self._clock(), letter),
                )
                conn.execute("DELETE FROM dead_letter WHERE id = ?", (letter,))
        return found

    # -- limits and metrics -----------------------------------------------------------------

    def enforce_limits(self) -> list[tuple[str, str, int]]:
        """Drop rows older than ``max_age``, then the oldest beyond ``max_rows``/``max_bytes``.

        Returns ``(collector, domain, dropped)`` groups, sorted, for metrics and logs.
        """
        dropped: dict[tuple[str, str], int] = {}

        def drop(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> None:
            for collector, domain, n in conn.execute(
                f"SELECT collector, domain, count(*) FROM outbox WHERE {sql}"
                " GROUP BY collector, domain",
                args,
            ):
                dropped[(collector, domain)] = dropped.get((collector, domain), 0) + n
            conn.execute(f"DELETE FROM outbox WHERE {sql}", args)

        with self._write() as conn:
            cutoff = self._clock() - self.max_age
            for (collector,) in conn.execute("SELECT collector FROM outbox_totals").fetchall():
                drop(conn, "collector = ? AND created < ?", (collector, cutoff))
            rows, size = conn.execute(
                "SELECT coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM outbox_totals"
            ).fetchone()
            if rows > self.max_rows:
                last = conn.execute(
                    "SELECT id FROM outbox ORDER BY id LIMIT 1 OFFSET ?",
                    (rows - self.max_rows - 1,),
                ).fetchone()[0]
                drop(conn, "id <= ?", (last,))
                size = conn.execute("SELECT coalesce(sum(bytes), 0) FROM outbox_totals").fetchone()[
                    0
                ]
            if size > self.max_bytes:
                oldest_first = conn.execute("SELECT id, size FROM outbox ORDER BY id")
                last = bytes_cutoff(oldest_first, size - self.max_bytes)
                oldest_first.close()  # finish the read before deleting from the same table
                if last is not None:
                    drop(conn, "id <= ?", (last,))
            conn.execute("DELETE FROM outbox_totals WHERE rows <= 0")
        return sorted((c, d, n) for (c, d), n in dropped.items() if n)

    def depth(self, collector: str | None = None) -> int:
        """Pending rows of ``collector``, or of all collectors."""
        with self._read() as conn:
            if collector is None:
                row = conn.execute("SELECT coalesce(sum(rows), 0) FROM outbox_totals").fetchone()
            else:
                row = conn.execute(
                    "SELECT coalesce(sum(rows), 0) FROM outbox_totals WHERE collector = ?",
                    (collector,),
                ).fetchone()
        return row[0]

    def oldest_created(self, collector: str) -> float | None:
        """The smallest ``created`` of ``collector``'s pending rows (None when empty)."""
        with self._read() as conn:
            return conn.execute(
                "SELECT min(created) FROM outbox WHERE collector = ?", (collector,)
            ).fetchone()[0]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per collector with pending rows: ``depth``, ``bytes``, ``oldest_created``.

        Cheap enough for every Prometheus scrape: one small table plus one index probe per
        collector.
        """
        with self._read() as conn:
            totals = conn.execute(
                "SELECT collector, rows, bytes FROM outbox_totals WHERE rows > 0 ORDER BY collector"
            ).fetchall()
            return {
                collector: {
                    "depth": rows,
                    "bytes": size,
                    "oldest_created": conn.execute(
                        "SELECT min(created) FROM outbox WHERE collector = ?", (collector,)
                    ).fetchone()[0],
                }
                for collector, rows, size in totals
            }

    # -- counters and metadata --------------------------------------------------------------

    def next_counter(self, name: str) -> int:
        """The next value (1, 2, 3, ...) of the durable counter ``name``; never repeats."""
        with self._write() as conn:
            return conn.execute(
                "INSERT INTO counter (name, value) VALUES (?, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                (name,),
            ).fetchone()[0]

    def get_meta(self, key: str) -> str | None:
        """The stored value of ``key``, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (replacing any previous value)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    def writable(self) -> bool:
        """For ``/readyz``: True when a tiny write transaction succeeds right now."""
        try:
            self.set_meta("last_write_check", repr(self._clock()))
        except StoreError:
            return False
        return True

    # -- shared-store methods (issue 16), no-ops here: one process owns this file's queues ---

    def claim_collector(self, collector: str) -> bool:
        """Always True: no other replica delivers from this file (see store_pg.PgStore)."""
        return True

    def release_collector(self, collector: str) -> None:
        """Nothing to release (see store_pg.PgStore)."""


def _alarm_key(key: tuple[str, str, str]) -> tuple[str, str, str]:
    vimid, source_id, condition = key
    return (str(vimid), str(source_id), str(condition))


class DeadLetters(Protocol):
    """What the status views and the REST API need of a store's dead letters.

    A second store backend (PostgreSQL) implements these names with the same meaning as
    ``Store``: newest first, ``response`` is the collector's answer (status + short excerpt).
    """

    def dead_letters(self, collector: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent dead letters first, as JSON-ready dicts."""
        ...

    def dead_letter_count(self, collector: str | None = None) -> int:
        """How many dead letters are kept."""
        ...

    def requeue_dead_letters(
        self, ids: Iterable[int] | None = None, collector: str | None = None
    ) -> list[int]:
        """Move the chosen dead letters back to the outbox; returns their ids."""
        ...
