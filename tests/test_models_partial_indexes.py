"""storage/models.py's partial indexes: created partial on either backend, and
declared without loading a dialect's modules when the models load."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Component
from tests.test_render_exit import loaded_by


def test_the_models_load_no_dialect() -> None:
    dialects = ("sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.sqlite")
    assert loaded_by("storage.models", dialects) == []


def test_a_removed_components_name_is_free_and_a_live_ones_is_not(engine: Engine) -> None:
    # create_all (the engine fixture) made uq_components_live_name with its condition.
    gone = datetime(2026, 6, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        session.add(Component(name="API", name_key="api", removed_at=gone))
        session.add(Component(name="API", name_key="api"))
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        session.add(Component(name="Api", name_key="api"))
