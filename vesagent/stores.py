"""Which store backend a replica uses: :func:`open_store` picks it from the state URL.

``VESAGENT_STATE_URL`` unset (or ``sqlite:///path/to/dir``): the embedded SQLite file in the
state directory, for one replica (:class:`SqliteStore`). ``postgresql://...``: the shared
PostgreSQL store (:class:`vesagent.store_pg.PgStore`), for any number of replicas with leases.
Both have the same public methods (the SQLite one has the shared-store ones as no-ops), so
callers need not ask which backend they hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from vesagent.leases import Fence
from vesagent.store import AlarmRecord, OutboxItem, Store

if TYPE_CHECKING:
    from vesagent.settings import Settings
    from vesagent.store_pg import PgStore

POSTGRES_SCHEMES = ("postgresql", "postgres")


class SqliteStore(Store):
    """The SQLite store taking ``commit(..., fence=)`` too: one replica owns every region."""

    def commit(
        self,
        items: Iterable[OutboxItem] = (),
        upsert: Iterable[AlarmRecord] = (),
        delete: Iterable[tuple[str, str, str]] = (),
        *,
        fence: Fence | None = None,
    ) -> int:
        """As :meth:`Store.commit`; ``fence`` is ignored (no leases without a shared store)."""
        return super().commit(items, upsert, delete)


def is_postgres_url(url: str | None) -> bool:
    """True for ``postgresql://`` and ``postgres://`` URLs."""
    return bool(url) and urlsplit(str(url)).scheme in POSTGRES_SCHEMES


def open_store(target: Settings | str | Path, **options: Any) -> SqliteStore | PgStore:
    """Open the store ``target`` names: a ``Settings``, a state URL, or a state directory.

    ``options`` go to the backend (limits, ``clock``...); from ``Settings`` the outbox limits
    are taken from the settings unless given. Raises ValueError for an unknown URL scheme and
    StoreError when the store cannot be used.
    """
    if isinstance(target, Path):
        return SqliteStore(target, **options)
    if isinstance(target, str):
        scheme = urlsplit(target).scheme
        if scheme in POSTGRES_SCHEMES:
            from vesagent.store_pg import PgStore  # psycopg only where PostgreSQL is used

            return PgStore(target, **options)
        if scheme == "sqlite":
            return SqliteStore(Path(unquote(urlsplit(target).path)), **options)
        if scheme:
            raise ValueError(
                f"state URL: unknown scheme {scheme!r}; use postgresql://... or sqlite:///dir"
            )
        return SqliteStore(Path(target), **options)
    limits = {
        "max_age": target.outbox_max_age,
        "max_rows": target.outbox_max_events,
        "max_bytes": target.outbox_max_bytes,
        **options,
    }
    url = target.state_url.get_secret_value() if target.state_url is not None else None
    return open_store(url if url else Path(target.state_dir), **limits)
