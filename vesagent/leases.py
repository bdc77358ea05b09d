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
   replica (a hand-over, not a theft: the other takes them at its next sync).
3. :class:`Fence`: the lease a commit was decided under. The store checks it in the commit's
   own transaction and raises :class:`LeaseLost`, writing nothing, when this replica no longer
   holds that lease with that token. Every change of owner draws a new token from one database
   sequence, so a token is never seen twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vesagent.errors import PermanentError

if TYPE_CHECKING:
    from vesagent.store_pg import PgStore


class LeaseLost(PermanentError):
    """This replica no longer holds the region's lease (taken over, released or expired)."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(
            f"lease of region {fence.region} lost: {fence.owner} no longer holds token "
            f"{fence.token}; nothing was committed"
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

    def sync(self, regions: Mapping[str, Iterable[str]]) -> SyncResult:
        """Heartbeat, then take, renew and release leases so they follow :func:`assign`.

        ``regions`` is every region this replica knows of (key -> related complexes). One
        transaction: a concurrent sync of another replica sees all of it or none.
        """
        wanted = {key: frozenset(sites) for key, sites in regions.items()}
        me = self.replica_id
        with self.store.transaction() as conn:
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
            if release:
                conn.execute(
                    "DELETE FROM lease WHERE owner = %s AND region = ANY(%s)", (me, release)
                )
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
        taken = frozenset(k for k, t in held.items() if before.get(k) != t)
        return SyncResult(held, taken, frozenset(release), frozenset(live))

    def release_all(self) -> None:
        """On a clean shutdown: give every lease back and leave the live set at once."""
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM lease WHERE owner = %s", (self.replica_id,))
            conn.execute("DELETE FROM replica WHERE id = %s", (self.replica_id,))

    def holders(self) -> dict[str, tuple[str, int]]:
        """Every unexpired lease: region key -> (owner, token). For status views and tests."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT region, owner, token FROM lease WHERE expires > now() ORDER BY region"
            ).fetchall()
        return {region: (owner, token) for region, owner, token in rows}


class Ownership:
    """What the reconciler asks: does this replica own region ``key``, and under which fence.

    Fed by :meth:`LeaseTable.sync` results; :meth:`owns` replaces the static shard test.
    """

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id
        self._held: dict[str, int] = {}

    def update(self, result: SyncResult) -> None:
        """Adopt the leases of the latest sync."""
        self._held = dict(result.held)

    def owns(self, key: str) -> bool:
        """True when this replica held region ``key``'s lease at the last sync."""
        return key in self._held

    def fence(self, key: str) -> Fence | None:
        """The fence to commit region ``key``'s events under; None when not held."""
        token = self._held.get(key)
        return None if token is None else Fence(key, self.replica_id, token)
