"""The shared rate-limit counter: one UPSERT per hit, windows that reset, both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select

from storage import ratelimits
from storage.db import make_sessionmaker, transaction
from storage.models import RateLimit
from tests.conftest import T0

WINDOW = timedelta(minutes=10)


def hit(engine: Engine, key: str, minutes: float) -> ratelimits.Count:
    with transaction(make_sessionmaker(engine)) as session:
        return ratelimits.hit(session, key=key, window=WINDOW, now=T0 + timedelta(minutes=minutes))


def test_counts_within_a_window_and_resets_after_it(engine: Engine) -> None:
    assert [hit(engine, "a", m).count for m in (0, 1, 9.9)] == [1, 2, 3]
    assert hit(engine, "a", 5).resets_at == T0 + WINDOW
    assert hit(engine, "b", 2).count == 1  # keys are counted apart
    again = hit(engine, "a", 10)  # one whole window after its start: a new window
    assert (again.count, again.resets_at) == (1, T0 + timedelta(minutes=20))


def test_a_clock_stepping_back_opens_a_new_window(engine: Engine) -> None:
    hit(engine, "a", 30)
    assert hit(engine, "a", 0).count == 1


def test_forget_expired(engine: Engine) -> None:
    hit(engine, "old", 0)
    hit(engine, "new", 30)
    with transaction(make_sessionmaker(engine)) as session:
        assert ratelimits.forget_expired(session, before=T0 + timedelta(minutes=20)) == 1
        assert session.scalar(select(func.count()).select_from(RateLimit)) == 1
