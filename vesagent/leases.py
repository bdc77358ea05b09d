"""Who polls which region when replicas share one PostgreSQL: leases, rendezvous hashing, fencing.

Three parts, in the order a replica uses them every sync:

1. :func:`assign` (pure): which live replica *should* own each region. Rendezvous (highest
   random weight) hashing of ``region key`` x ``replica id``: no configured replica count, and a
   replica that joins or leaves moves only the regions that hash to it (its fair share). With
   ``VESAGENT_COMPLEX`` a replica declares the complexes (``physical-location-id``) it sits
   near; a region related to one of them goes to those replicas only, and the other regions
   to the replicas that declared none.
2. :class:`LeaseTable` (I/O): the ``replica`` and ``lease`` tables of the PostgreSQL store.
   :meth:`LeaseTable.sync` heartbeats this replica, renews the leases it should keep, takes
   regions that hash to it when they are free or their owner stopped renewing for the TTL
   (the database's clock, never a replica's), and releases those that now hash to another live
   replica (a hand-over, not a theft: the other takes them at its next sync). A released lease
   first *rests* (no owner, not takeable) for the region's poll interval plus a margin
   (:func:`handover_rest`): the releasing replica stops polling the moment it releases, so the
   next owner's first poll comes at least one interval after its last one. Two replicas never
   poll one region within one interval, even across a hand-over.
3. :class:`Fence`: the lease a commit was decided under. The store checks it in the commit's
   own transaction and raises :class:`LeaseLost`, writing nothing, when this replica no longer
   holds that lease with that token. Every change of owner draws a new token from one database
   sequence, so a token is never seen twice.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vesagent.errors import PermanentError
from vesagent.logs import get_logger
from vesagent.metrics import Metrics
from vesagent.outage import OutageLog

# The PostgreSQL store's advisory-lock namespace (store_pg uses it too), and the lease key.
LOCK_SPACE = 0x7E5A6E7
LEASES_KEY = 3

HANDOVER_MARGIN = 0.25
"""Seconds a released lease rests beyond the region's longest poll interval: covers the
moment between the release's commit and the releasing replica's pollers seeing it."""

if TYPE_CHECKING:
    from vesagent.store_pg import PgStore

log = get_logger("vesagent.leases")


def replica_id() -> str:
    """This process's replica id: host name and pid, unique among live replicas."""
    return f"{socket.gethostname()}-{os.getpid()}"


class LeaseLost(PermanentError):
    """This replica no longer holds the region's lease (taken over, released or expired)."""

    def __init__(self, fence: Fence) -> None:
        held = f"no longer holds token {fence.token}" if fence.token else "does not hold it"
        super().__init__(
            f"lease of region {fence.region} lost: {fence.owner} {held}; nothing was committed"
        )
        self.fence = fence


@dataclass(frozen=True)
class Fence:
    """The lease a commit relies on: ``region`` held by replica ``owner`` with ``token``.

    ``region`` is the lease key, ``cloud-owner/cloud-region-id``.
    """

    region: str
    owner: str
    token: int


# ---------------------------------------------------------------------------------------------
# Pure assignment


def region_complexes(body: Mapping[str, Any]) -> frozenset[str]:
    """The ``physical-location-id``s of the complexes a cloud-region (an A&AI body) is in.

    Read from the region's ``relationship-list`` (present at depth 0): ``related-to: complex``
    with ``complex.physical-location-id`` in its ``relationship-data``, else the last segment
    of its ``related-link``.
    """
    found: set[str] = set()
    relationships = (body.get("relationship-list") or {}).get("relationship") or []
    for rel in relationships if isinstance(relationships, list) else []:
        if not isinstance(rel, dict) or rel.get("related-to") != "complex":
            continue
        ids = [
            d.get("relationship-value")
            for d in rel.get("relationship-data") or []
            if isinstance(d, dict) and d.get("relationship-key") == "complex.physical-location-id"
        ]
        link = rel.get("related-link")
        if not ids and isinstance(link, str) and link.rstrip("/"):
            ids = [link.rstrip("/").rsplit("/", 1)[-1]]
        found.update(i for i in ids if isinstance(i, str) and i)
    return frozenset(found)


def weight(region: str, replica: str) -> int:
    """The rendezvous weight of ``replica`` for ``region``: stable across processes and hosts."""
    digest = hashlib.blake2b(f"{region}\x00{replica}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def candidates(
    region_complexes: frozenset[str], replicas: Mapping[str, frozenset[str]]
) -> list[str]:
    """The replicas that may own a region related to ``region_complexes``.

    Replicas near one of the region's complexes if any is live; else the replicas that declared
    no complex (they take whatever has no site of its own). A replica near other complexes never
    takes the region: it runs at another site.
    """
    near = [r for r, sites in replicas.items() if sites & region_complexes]
    if near:
        return near
    return [r for r, sites in replicas.items() if not sites]


def handover_rest(intervals: Iterable[float | None]) -> float:
    """How long a released lease rests: the longest of the region's job intervals (those
    that call Nova) plus :data:`HANDOVER_MARGIN`; just the margin for a region not polled."""
    return max((i for i in intervals if i), default=0.0) + HANDOVER_MARGIN


def assign(
    regions: Mapping[str, frozenset[str]], replicas: Mapping[str, frozenset[str]]
) -> dict[str, str | None]:
    """The owner each region should have: ``{region key: replica id or None}``.

    ``regions`` maps a region key (``cloud-owner/cloud-region-id``) to the complexes it is
    related to in A&AI; ``replicas`` maps each live replica id to its ``VESAGENT_COMPLEX`` set
    (empty: any site). None means no live replica may own the region.
    """
    result: dict[str, str | None] = {}
    for region, sites in regions.items():
        pool = candidates(frozenset(sites), replicas)
        result[region] = max(pool, key=lambda r: (weight(region, r), r)) if pool else None
    return result


# ---------------------------------------------------------------------------------------------
# The lease table


@dataclass(frozen=True)
class SyncResult:
    """What one :meth:`LeaseTable.sync` left: the leases held, and what changed."""

    held: dict[str, int]
    """Region key -> token of every lease this replica holds now."""
    taken: frozenset[str]
    released: frozenset[str]
    replicas: frozenset[str]
    """The live replicas the assignment was computed over (this one included)."""
    unowned: int = 0
    """Regions of the sync's listing that no live lease covered when it committed."""
    free_in: float | None = None
    """Seconds until the first resting lease this replica should take is free (None: none)."""


class LeaseTable:
    """The lease operations of one replica on a :class:`~vesagent.store_pg.PgStore`.

    ``ttl`` seconds: a replica not seen for that long is not live, and a lease not renewed for
    that long may be taken by another. Every expiry is computed by the database (``now()``).
    """

    def __init__(
        self,
        store: PgStore,
        replica_id: str,
        *,
        ttl: float = 15.0,
        complexes: Iterable[str] = (),
    ) -> None:
        if not replica_id:
            raise ValueError("replica_id must be a non-empty string")
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl!r}")
        self.store = store
        self.replica_id = replica_id
        self.ttl = float(ttl)
        self.complexes = frozenset(c for c in complexes if c)

    def sync(
        self, regions: Mapping[str, Iterable[str]], rests: Mapping[str, float] | None = None
    ) -> SyncResult:
        """Heartbeat, then take, renew and release leases so they follow :func:`assign`.

        ``regions`` is every region this replica knows of (key -> related complexes);
        ``rests``: how long each region's lease rests when released (default: the margin).
        One transaction: a concurrent sync of another replica sees all of it or none.
        """
        wanted = {key: frozenset(sites) for key, sites in regions.items()}
        me = self.replica_id
        with self.store.transaction() as conn:
            # One sync at a time across replicas: each sees the others' last syncs whole, and
            # two syncs never wait on each other's lease rows (no deadlock). They take ms.
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, LEASES_KEY))
            # Forget replicas and leases dead for long (ids are per process: they pile up).
            conn.execute("DELETE FROM replica WHERE seen < now() - interval '1 day'")
            conn.execute("DELETE FROM lease WHERE expires < now() - interval '1 day'")
            conn.execute(
                "INSERT INTO replica (id, complexes, seen) VALUES (%s, %s, now())"
                " ON CONFLICT (id) DO UPDATE SET complexes = excluded.complexes, seen = now()",
                (me, sorted(self.complexes)),
            )
            live = {
                rid: frozenset(sites)
                for rid, sites in conn.execute(
                    "SELECT id, complexes FROM replica"
                    " WHERE seen > now() - make_interval(secs => %s)",
                    (self.ttl,),
                ).fetchall()
            }
            owners = assign(wanted, live)
            mine = sorted(k for k, owner in owners.items() if owner == me)
            before = dict(
                conn.execute(
                    "SELECT region, token FROM lease WHERE owner = %s AND expires > now()", (me,)
                ).fetchall()
            )
            # Release first what is no longer ours (it hashes elsewhere, or the region is gone).
            release = sorted(set(before) - set(mine))
            self._release(conn, release, rests or {})
            held: dict[str, int] = {}
            for key in mine:
                # Insert, renew (same owner: same token), or take over an expired lease (new
                # token); a live lease of another replica is left alone until it releases it.
                row = conn.execute(
                    "INSERT INTO lease AS l (region, owner, token, expires)"
                    " VALUES (%s, %s, nextval('lease_token'), now() + make_interval(secs => %s))"
                    " ON CONFLICT (region) DO UPDATE SET"
                    "  token = CASE WHEN l.owner = excluded.owner THEN l.token"
                    "          ELSE excluded.token END,"
                    "  owner = excluded.owner, expires = excluded.expires"
                    " WHERE l.owner = excluded.owner OR l.expires <= now()"
                    " RETURNING token",
                    (key, me, self.ttl),
                ).fetchone()
                if row is not None:
                    held[key] = row[0]
            # Seen from here, at this instant: a region no replica holds is polled by none
            # (its owner died and the TTL has not run out, or no live replica may take it).
            row = conn.execute(
                "SELECT count(*) FROM lease WHERE region = ANY(%s) AND expires > now()"
                " AND owner <> ''",
                (list(wanted),),
            ).fetchone()
            covered = int(row[0]) if row else 0
            # A region of ours still resting after another's release: sync again the moment
            # it is free rather than a whole sync period later (a shorter hand-over).
            row = conn.execute(
                "SELECT extract(epoch FROM min(expires) - now())::float8 FROM lease"
                " WHERE region = ANY(%s) AND owner = '' AND expires > now()",
                (mine,),
            ).fetchone()
            free_in = None if row is None or row[0] is None else max(0.0, float(row[0]))
        taken = frozenset(k for k, t in held.items() if before.get(k) != t)
        return SyncResult(
            held,
            taken,
            frozenset(release),
            frozenset(live),
            max(0, len(wanted) - covered),
            free_in,
        )

    def _release(self, conn: Any, regions: list[str], rests: Mapping[str, float]) -> None:
        """Give ``regions`` back: each rests, owned by nobody, for its rest, then is free."""
        if not regions:
            return
        conn.execute(
            "UPDATE lease SET owner = '', expires = now() + make_interval(secs => r.rest)"
            " FROM unnest(%s::text[], %s::float8[]) AS r(region, rest)"
            " WHERE lease.region = r.region AND lease.owner = %s",
            (regions, [rests.get(k, HANDOVER_MARGIN) for k in regions], self.replica_id),
        )

    def release_all(self, rests: Mapping[str, float] | None = None) -> None:
        """On a clean shutdown (pollers stopped): give every lease back, each resting for its
        rest, and leave the live set at once."""
        with self.store.transaction() as conn:
            held = [
                region
                for (region,) in conn.execute(
                    "SELECT region FROM lease WHERE owner = %s", (self.replica_id,)
                ).fetchall()
            ]
            self._release(conn, held, rests or {})
            conn.execute("DELETE FROM replica WHERE id = %s", (self.replica_id,))

    def holders(self) -> dict[str, tuple[str, int]]:
        """Every unexpired, owned lease: region key -> (owner, token). For status and tests."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT region, owner, token FROM lease WHERE expires > now() AND owner <> ''"
                " ORDER BY region"
            ).fetchall()
        return {region: (owner, token) for region, owner, token in rows}


class Ownership:
    """What the reconciler asks: does this replica own region ``key``, and under which fence.

    Fed by :meth:`LeaseTable.sync` results; :meth:`owns` replaces the static shard test. A sync
    result is trusted for ``ttl`` seconds from the moment its sync *started* (a conservative
    local bound: the database set the expiry later than that); past it, without a newer
    successful sync, this replica owns nothing, as its leases may have lapsed.
    """

    def __init__(
        self,
        replica_id: str,
        ttl: float = float("inf"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replica_id = replica_id
        self.ttl = ttl
        self._clock = clock
        self._held: dict[str, int] = {}
        self._valid_until = float("inf")

    def update(self, result: SyncResult, started: float | None = None) -> None:
        """Adopt the leases of the latest sync (``started``: its start on ``clock``)."""
        self._held = dict(result.held)
        self._valid_until = (self._clock() if started is None else started) + self.ttl

    def held(self) -> dict[str, int]:
        """Region key -> token of the leases held now (empty once they may have lapsed)."""
        return dict(self._held) if self._clock() < self._valid_until else {}

    def owns(self, key: str) -> bool:
        """True when this replica holds region ``key``'s lease."""
        return key in self.held()

    def fence(self, key: str) -> Fence | None:
        """The fence to commit region ``key``'s events under; None when not held."""
        token = self.held().get(key)
        return None if token is None else Fence(key, self.replica_id, token)


class LeaseKeeper(Ownership):
    """Keeps one replica's leases: a sync every ``ttl / 3`` seconds in its own thread.

    The reconciler hands it every region of each A&AI listing (:meth:`set_regions`, which
    syncs at once) and asks :meth:`owns`; ``on_change`` (the reconciler's trigger) is called
    when the set of held regions changes, so pollers start and stop without waiting for the
    next A&AI read. The database unreachable: logged as an outage (failing, still failing,
    recovered), and the leases lapse locally after the TTL, as they do in the database.

    ``metrics`` (optional) gets ``vesagent_region_leases_held`` and ``vesagent_regions_unowned``
    after every sync; ``on_store`` (optional) hears each sync's outcome: None, or the error of
    a database that failed (the store watch, so ``/readyz`` knows at once).
    """

    def __init__(
        self,
        table: LeaseTable,
        *,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
        on_store: Callable[[str | None], None] = lambda error: None,
    ) -> None:
        super().__init__(table.replica_id, table.ttl, clock)
        self.table = table
        self.on_change = on_change
        self.metrics = metrics
        self.on_store = on_store
        self._outages = OutageLog(log, "leases")
        self._regions: dict[str, frozenset[str]] | None = None
        self._rests: dict[str, float] = {}
        self._sync_lock = threading.Lock()
        self._last_seen: frozenset[str] = frozenset()
        self.last_error: str | None = None

    def set_regions(
        self, regions: Mapping[str, Iterable[str]], rests: Mapping[str, float] | None = None
    ) -> None:
        """The regions of the latest A&AI listing (key -> complexes) and how long each lease
        rests when released (:func:`handover_rest`); syncs the leases now."""
        self._regions = {k: frozenset(v) for k, v in regions.items()}
        self._rests = dict(rests or {})
        self.sync_now(notify=False)  # the caller is the reconciler: it converges right after

    def sync_now(self, notify: bool = True) -> SyncResult | None:
        """One lease sync; None (logged on the first failure) when the database fails."""
        from vesagent.store import StoreError

        if self._regions is None:
            return None  # no A&AI listing yet: nothing to claim
        with self._sync_lock:
            started = self._clock()
            try:
                result = self.table.sync(self._regions, self._rests)
            except StoreError as exc:
                self._outages.failed("sync", str(exc), held=len(self.held()))
                self.last_error = str(exc)
                self.on_store(str(exc))
                self._report(None)
                self._notice_change(notify)
                return None
            self._outages.succeeded("sync", held=len(result.held))
            self.last_error = None
            self.on_store(None)
            self.update(result, started)
            self._report(result)
            if result.taken or result.released:
                log.info(
                    "leases.changed",
                    taken=sorted(result.taken),
                    released=sorted(result.released),
                    held=len(result.held),
                    replicas=len(result.replicas),
                )
            self._notice_change(notify)
        return result

    def _report(self, result: SyncResult | None) -> None:
        """The lease gauges: what this sync left, or (it failed) what may still be held."""
        if self.metrics is None:
            return
        self.metrics.region_leases_held.set(len(self.held()))
        # Without the database this replica cannot tell who holds what: NaN, not a guess
        # (max() over the replicas then shows the others' view; vesagent_store_up alerts).
        self.metrics.regions_unowned.set(float("nan") if result is None else result.unowned)

    def _notice_change(self, notify: bool) -> None:
        now = frozenset(self.held())
        if now != self._last_seen and notify:
            self.on_change()
        self._last_seen = now

    def run(self, stop: threading.Event) -> None:
        """Sync every ``ttl / 3`` seconds, or sooner when a resting lease this replica should
        take becomes free, until ``stop`` is set (the keeper's thread)."""
        wait = self.ttl / 3
        while not stop.wait(wait):
            wait = self.ttl / 3
            try:
                result = self.sync_now()
            except Exception:  # never let the keeper die: the leases would lapse
                log.exception("leases.crashed")
                continue
            if result is not None and result.free_in is not None:
                wait = min(wait, result.free_in + 0.05)  # just past the rest's end

    def close(self) -> None:
        """A clean stop: hand every lease back so others take over at once (best effort)."""
        from vesagent.store import StoreError

        try:
            self.table.release_all(self._rests)
        except StoreError as exc:
            log.warning("leases.release_failed", error=str(exc))
        self._held = {}


class FencedStore:
    """The store as one region's poller sees it: each commit carries that region's fence.

    Without the lease, a commit raises :class:`LeaseLost` and writes nothing; everything else
    goes to the store unchanged.
    """

    def __init__(self, store: Any, ownership: Ownership, region: str) -> None:
        self._store = store
        self._ownership = ownership
        self._region = region

    def commit(
        self,
        items: Iterable[Any] = (),
        upsert: Iterable[Any] = (),
        delete: Iterable[tuple[str, str, str]] = (),
    ) -> int:
        """``store.commit`` under this region's lease."""
        fence = self._ownership.fence(self._region)
        if fence is None:
            raise LeaseLost(Fence(self._region, self._ownership.replica_id, 0))
        return int(self._store.commit(items, upsert, delete, fence=fence))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
