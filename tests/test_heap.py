"""bot/heap.py: what a long-running process holds from its start is never walked again
by a full collection, and garbage made afterwards is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from bot import heap


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (the rest of the suite expects it)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def walked(thing: object) -> bool:
    """Whether a collection would walk `thing` (frozen objects are in no generation)."""
    return any(o is thing for o in gc.get_objects())


def cycle() -> weakref.ref[Node]:
    """A reference cycle only a collection can free; a weak reference to watch it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settle_sets_the_heap_aside_and_later_garbage_is_still_collected() -> None:
    kept = Node()
    assert walked(kept)
    frozen = heap.settle("test")
    assert frozen == gc.get_freeze_count() > 0
    assert not walked(kept)
    made_after = cycle()
    gc.collect()
    assert made_after() is None


def test_settle_collects_first_so_no_garbage_is_kept() -> None:
    before = cycle()
    heap.settle("test")
    assert before() is None


def test_warm_up_freezes_once_at_its_count() -> None:
    warm = heap.WarmUp(after=3)
    warm.tick()
    warm.tick()
    assert gc.get_freeze_count() == 0
    kept = Node()
    assert walked(kept)
    warm.tick()
    assert gc.get_freeze_count() > 0 and not walked(kept)
    gc.unfreeze()
    for _ in range(5):
        warm.tick()
    assert gc.get_freeze_count() == 0  # once only


def test_warming_passes_requests_through_and_counts_them() -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = heap.warming(app, heap.WarmUp(after=2))
    assert list(wrapped({"PATH_INFO": "/a"}, lambda *_: None)) == [b"ok"]
    assert gc.get_freeze_count() == 0
    assert list(wrapped({"PATH_INFO": "/b"}, lambda *_: None)) == [b"ok"]
    assert calls == ["/a", "/b"] and gc.get_freeze_count() > 0
