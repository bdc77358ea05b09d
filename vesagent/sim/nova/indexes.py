"""The indexes that keep the Nova simulator fast at 100,000 servers.

``SortedKeys`` orders servers by ``(created, id)`` so marker paging is a bisect, not a scan;
``UpdateIndex`` buckets servers by update second so ``changes-since`` reads only the servers
that changed.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator


class SortedKeys:
    """An ascending list of ``(created, id)`` keys, walked backwards for Nova's desc order."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: tuple[int, str]) -> None:
        """Insert one key."""
        insort(self.keys, key)

    def add_many(self, keys: list[tuple[int, str]]) -> None:
        """Insert a batch: appended when it sorts after everything, else one timsort."""
        keys = sorted(keys)
        if keys and self.keys and keys[0] < self.keys[-1]:
            self.keys.extend(keys)
            self.keys.sort()
        else:
            self.keys.extend(keys)

    def remove(self, key: tuple[int, str]) -> None:
        """Remove one key if present."""
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]

    def iter_desc(self, below: tuple[int, str] | None = None) -> Iterator[tuple[int, str]]:
        """Keys in descending order, starting just below ``below`` (the marker's key)."""
        keys = self.keys
        start = len(keys) if below is None else bisect_left(keys, below)
        for i in range(start - 1, -1, -1):
            yield keys[i]


class UpdateIndex:
    """Server ids bucketed by ``updated`` second, with the seconds kept sorted."""

    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, None]] = {}
        self._seconds: list[int] = []

    def add(self, second: int, ids: Iterable[str]) -> None:
        """Record that ``ids`` were updated at ``second``."""
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = {}
            insort(self._seconds, second)
        bucket.update(dict.fromkeys(ids))

    def remove(self, second: int, server_id: str) -> None:
        """Forget one id's old update time."""
        bucket = self._buckets.get(second)
        if bucket is None:
            return
        bucket.pop(server_id, None)
        if not bucket:
            del self._buckets[second]
            i = bisect_left(self._seconds, second)
            if i < len(self._seconds) and self._seconds[i] == second:
                del self._seconds[i]

    def _range(self, since: float | None, before: float | None) -> list[int]:
        lo = 0 if since is None else bisect_left(self._seconds, math.ceil(since))
        hi = (
            len(self._seconds)
            if before is None
            else bisect_right(self._seconds, math.floor(before))
        )
        return self._seconds[lo:hi]

    def count_between(self, since: float | None, before: float | None) -> int:
        """How many ids have ``since <= updated <= before`` (inclusive, like Nova)."""
        return sum(len(self._buckets[s]) for s in self._range(since, before))

    def between(self, since: float | None, before: float | None) -> list[str]:
        """The ids with ``since <= updated <= before``."""
        out: list[str] = []
        for second in self._range(since, before):
            out.extend(self._buckets[second])
        return out
