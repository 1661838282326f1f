"""The garbage collector in statusbot's long-running processes: the objects that live as
long as the process are put out of its sight, so a full collection is short.

CPython's full (generation 2) collection walks every object it tracks. A web worker
holds a few hundred thousand of them once SQLAlchemy's mappers, bolt, slack_sdk and
Falcon are loaded and its first commands have run, nearly all of them for the whole
life of the process. Under bench/ack.py's load (120 commands a second) a full
collection came about every 10 seconds and took 90 to 155 ms, and every request that
arrived meanwhile waited for it: that wait was a large part of the ack's p99.

`gc.freeze()` moves every object tracked so far to a permanent generation that no
collection walks, as the Python documentation suggests for forking servers (it also
keeps the collector from writing to pages a fork shares with its parent). It is done
three times: in the master before it forks (`settle`), in each process after its
set-up (`settle`), and once more when a process has warmed up (`WarmUp`): its lazily
imported modules and first compiled statements are in, and they too last. After that
a full collection walks only what was made since, and took 1 to 2 ms under the same
load. The price: a reference cycle that is garbage when a freeze happens, or that was
alive then and dies later, is never collected. At start `settle` collects first, and
what the set-up holds lives as long as the process. The warm-up freeze collects the
young generations first, but keeps what the old one gathered since the start and
the cycles of the requests in flight at that moment: a few thousand objects, once.
"""

from __future__ import annotations

import gc
import itertools
import logging
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

# Requests a web worker handles before its warm-up freeze: enough for every command,
# the page and the API to have been used on a busy server, and reached in seconds
# under load, which is when a long collection would hurt.
WARM_REQUESTS = 500


def settle(where: str) -> int:
    """Collect, then put everything tracked out of the collector's sight; how many
    objects are frozen now (logged)."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("%s: %d long-lived objects set aside from garbage collection", where, frozen)
    return frozen


class WarmUp:
    """Freezes once, at the `after`-th call of `tick` (thread-safe without a lock:
    `next` on a count is atomic in CPython, and only one call sees the number)."""

    def __init__(self, after: int = WARM_REQUESTS) -> None:
        self.after = after
        self._ticks = itertools.count(1)

    def tick(self) -> None:
        if next(self._ticks) == self.after:
            # The young generations' garbage first (a few ms); not a full collection:
            # that would be the long pause this avoids.
            gc.collect(1)
            gc.freeze()
            log.info(
                "warmed up after %d requests: %d objects set aside from garbage collection",
                self.after,
                gc.get_freeze_count(),
            )


def warming(app: WSGIApplication, warm_up: WarmUp | None = None) -> WSGIApplication:
    """`app`, ticking `warm_up` (a new one by default) at every request."""
    warm = warm_up or WarmUp()

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        warm.tick()
        answer: Iterable[bytes] = app(environ, start_response)
        return answer

    return wsgi
