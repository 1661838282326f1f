"""Results remembered by the identity of the values they were made from.

The snapshot cache (storage/snapshot_cache.py) hands out the very same objects
for what did not change since the last publish: an incident's view, a
component's 90 days of uptime, a chart's points. One `is` per input then tells
a repeat, where hashing those tuples would cost about as much as formatting
them again. This is what lets an incremental publish format only what changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class ByIdentity(Generic[V]):
    """A bounded memo keyed by the identity of `refs` and the value of `values` (hashable).

    It holds the `refs` it remembers, so an id cannot be reused by another
    object while its entry lives; past `size` entries it starts afresh.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._store: dict[tuple[object, ...], tuple[tuple[object, ...], V]] = {}
        self._lock = threading.Lock()

    def known(self, refs: tuple[object, ...], values: tuple[object, ...]) -> V | None:
        """The remembered result for these inputs, or None."""
        key = (*map(id, refs), *values)
        hit = self._store.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], refs, strict=True)):
            return hit[1]
        return None

    def get(self, refs: tuple[object, ...], values: tuple[object, ...], make: Callable[[], V]) -> V:
        """The remembered result for these inputs, or `make()`'s, remembered."""
        if len(refs) == 1:  # the common case, kept short: it runs thousands of times a publish
            key: tuple[object, ...] = (id(refs[0]), *values)
            hit = self._store.get(key)
            if hit is not None and hit[0][0] is refs[0]:
                return hit[1]
        else:
            key = (*map(id, refs), *values)
            hit = self._store.get(key)
            if hit is not None and all(a is b for a, b in zip(hit[0], refs, strict=True)):
                return hit[1]
        value = make()
        with self._lock:
            if len(self._store) >= self._size:
                self._store.clear()
            self._store[key] = (refs, value)
        return value
