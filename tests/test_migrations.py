"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from storage import migrate
from storage.models import Base


def test_upgrade_from_empty_matches_the_models(empty_db: tuple[Engine, str]) -> None:
    engine = empty_db[0]
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_twice_is_harmless_and_reset_empties(empty_db: tuple[Engine, str]) -> None:
    engine = empty_db[0]
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    migrate.reset(engine)
    assert set(inspect(engine).get_table_names()) == set()
