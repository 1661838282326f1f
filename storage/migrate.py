"""Alembic, driven from code: `statusbot db upgrade` and the tests use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on the given engine, without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (default: the newest)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def reset(engine: Engine) -> None:
    """Drop every statusbot table (and Alembic's) so the next upgrade starts afresh."""
    from sqlalchemy import text

    from storage.models import Base

    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def revision(message: str) -> str:
    """Write a new migration from the difference between the models and the newest schema."""
    import re
    import tempfile

    from alembic.script import ScriptDirectory

    from storage.db import make_engine

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        upgrade(engine)
        cfg = alembic_config(engine)
        head = ScriptDirectory.from_config(cfg).get_current_head() or "0000"
        digits = re.sub(r"\D", "", head) or "0"
        number = f"{int(digits) + 1:04d}"
        command.revision(cfg, message=message, autogenerate=True, rev_id=number)
        engine.dispose()
    return number
