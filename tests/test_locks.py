"""The page lock makes publishers in different processes take turns (PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine

from storage.db import make_engine
from storage.locks import exclusive


def test_two_engines_take_turns(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite runs in one process")
    other = make_engine(engine.url.render_as_string(hide_password=False))
    spans: list[tuple[str, float, float]] = []
    first_in = threading.Event()

    def hold(name: str, eng: Engine, wait: bool) -> None:
        if wait:
            assert first_in.wait(5)
        with exclusive(eng):
            began = time.monotonic()
            first_in.set()
            time.sleep(0.3)
            spans.append((name, began, time.monotonic()))

    a = threading.Thread(target=hold, args=("a", engine, False))
    b = threading.Thread(target=hold, args=("b", other, True))
    a.start()
    b.start()
    a.join()
    b.join()
    other.dispose()
    (_, _, a_end), (_, b_start, _) = sorted(spans)
    assert b_start >= a_end  # b only got in after a let go
