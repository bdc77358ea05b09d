"""``ServerCache``: what vesagent knows of a region's servers, and when to list them again.

One Nova request per poll when nothing changed: after a full listing, each poll asks only for
the servers changed since the watermark (``changes-since``, which lists deleted servers too).

**The watermark is Nova's own clock**: the newest ``updated`` among the servers listed. Nova
keeps ``updated`` in whole seconds and ``changes-since`` is inclusive (``updated_at >=``), so
a change committed later within that same second is still found, and a changed server is read
again only until a newer change moves the watermark past it. Once that second is clearly over
(``OVERLAP`` before the answer's ``Date``, or ``OVERLAP_OWN_CLOCK`` before the agent's time
when Nova sends no ``Date``, as uwsgi without a proxy does) the watermark moves one second
past it, so the servers of a quiet region, or a mass of servers created in one second long
ago, are not listed again on every poll. The clocks are only compared with that margin; when
nothing was ever listed (an empty region) the first watermark is that reference minus the
margin. The watermark never moves back.

**Full listings** at the first poll, every ``full_every`` seconds (they also catch deletions
that Nova archived away before a ``changes-since`` could see them) and after a failed commit
(nothing was promised: look at everything again).

The caller advances the watermark (``advance``) only once the poll's decisions are committed,
and not while VM decisions are frozen (an open VIM alarm): what changed meanwhile is then
listed again when they thaw.

Partial (2.69 down-cell) records carry no information about a server: they are neither parsed
nor taken as deletions, and ``partial`` says whether the last listing had any.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from vesagent.pollers.decide import ServerView
from vesagent.pollers.ports import ServerListing

OVERLAP = timedelta(seconds=5)
# Without a Date header the first watermark is the agent's clock, which may differ from Nova's.
OVERLAP_OWN_CLOCK = timedelta(seconds=60)
FULL_EVERY = 600.0
SECOND = timedelta(seconds=1)


def is_partial(body: Any) -> bool:
    """A 2.69 down-cell record: status UNKNOWN and most keys missing (no name, no flavor)."""
    return (
        isinstance(body, dict)
        and body.get("status") == "UNKNOWN"
        and "name" not in body
        and "flavor" not in body
    )


def parse_updated(text: str) -> datetime | None:
    """Nova's ``updated`` (``2026-11-25T12:30:50Z``) as an aware datetime, None if unusable."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class ServerCache:
    """The servers of one region as last listed, the watermark and the full-listing rules.

    Not thread-safe: the poller calls it under its poll lock.
    """

    def __init__(
        self, full_every: float = FULL_EVERY, *, own_clock_overlap: timedelta | None = None
    ) -> None:
        """``own_clock_overlap`` is the bench's baseline only: the watermark is then the
        listing's time minus that overlap, whatever Nova's ``updated`` says (the way a peer
        does it, and vesagent did without a ``Date`` header), so a changed server is listed
        again for that long."""
        self.servers: dict[str, ServerView] = {}
        self._own_clock_overlap = own_clock_overlap
        self.watermark: datetime | None = None
        self.partial = False  # the last listing had down-cell records
        self.listed = False  # a listing succeeded at least once
        self._full_every = full_every
        self._last_full: float | None = None
        self._newest = ""  # newest ``updated`` text of the last absorbed listing

    def wants_full(self, now: float) -> bool:
        """Whether the next listing must be a full one (see the module docstring)."""
        return (
            self.watermark is None
            or self._last_full is None
            or now - self._last_full >= self._full_every
        )

    def changes_since(self, full: bool) -> datetime | None:
        """The ``changes-since`` of the next listing (None: a full listing)."""
        return None if full else self.watermark

    def absorb(
        self, listing: ServerListing, full: bool, now: float, alarmed: Collection[str] = ()
    ) -> dict[str, ServerView | None]:
        """Take a listing in; return the servers whose state may have changed (None: gone).

        ``alarmed``: servers with an open VM alarm; after a full listing, those not listed
        were deleted while we were not looking, and are returned as gone.
        """
        changed: dict[str, ServerView | None] = {}
        listed: set[str] = set()
        partial = False
        newest = ""
        servers = self.servers
        for body in listing.servers:
            if is_partial(body):
                partial = True
                if isinstance(body.get("id"), str):
                    listed.add(body["id"])  # unknown, not gone: keep what we knew
                continue
            view = ServerView.from_nova(body)
            if view is None:
                continue
            listed.add(view.id)
            # Nova's ``updated`` is one ISO format: the text compares as the time does.
            if view.updated > newest:
                newest = view.updated
            if view.status == "DELETED":
                servers.pop(view.id, None)
                changed[view.id] = None
            else:
                servers[view.id] = view
                changed[view.id] = view
        if full:
            for gone in [sid for sid in servers if sid not in listed]:
                del servers[gone]
                changed[gone] = None
            for source_id in alarmed:
                if source_id not in listed:
                    changed[source_id] = None
            for sid, view in servers.items():
                changed.setdefault(sid, view)
            self._last_full = now
        self.partial = partial
        self.listed = True
        self._newest = newest
        return changed

    def advance(self, listing: ServerListing) -> None:
        """Move the watermark past ``listing`` (call once its decisions are committed)."""
        margin = OVERLAP if listing.server_clock else OVERLAP_OWN_CLOCK
        newest = parse_updated(self._newest) if self._newest else None
        mark: datetime | None
        if self._own_clock_overlap is not None:  # the bench's baseline, see __init__
            mark = listing.server_time - self._own_clock_overlap
        elif newest is None:
            mark = listing.server_time - margin if self.watermark is None else None
        elif listing.server_time - newest >= margin:
            mark = newest + SECOND  # that second is long over: nothing more can land in it
        else:
            mark = newest  # inclusive: a change may still land in the newest second
        if mark is not None and (self.watermark is None or mark > self.watermark):
            self.watermark = mark

    def list_everything_next(self) -> None:
        """Make the next listing a full one (e.g. the last commit failed)."""
        self._last_full = None

    def view(self) -> Mapping[str, ServerView]:
        """The servers as last listed (read-only by convention; no copy, regions are large)."""
        return self.servers
