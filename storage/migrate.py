"""Alembic, driven from code: `statusbot db upgrade` and the tests use this.

Alembic itself is imported only when a migration runs: every statusbot process
checks the schema when it starts, and `is_current` answers that from the
revision files' two header lines and the database's `alembic_version`, in a
millisecond instead of the ~150 ms that loading Alembic and its scripts costs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision\b[^=]*=\s*(.*)$", re.M)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on the given engine, without an ini file."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (default: the newest)."""
    from alembic import command

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


@lru_cache(maxsize=1)
def _heads() -> frozenset[str] | None:
    """The newest revisions, read from the files' headers; None when one can't be read."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            return None  # not the plain form Alembic writes: let Alembic read it
        revisions.add(revision.group(1))
        parents.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - parents) or None


def is_current(engine: Engine, *, exact: bool = False) -> bool:
    """Whether the database is at the newest revision, without loading Alembic when it is.

    When the quick answer is "no" (or there is none) Alembic is asked, unless
    `exact` is false, in which case "no" is returned and the caller migrates.
    """
    heads = _heads()
    if heads is not None:
        try:
            with engine.connect() as conn:
                at = frozenset(conn.scalars(text("SELECT version_num FROM alembic_version")))
        except SQLAlchemyError:
            at = frozenset()  # never migrated
        if at == heads:
            return True
        if not exact:
            return False
    return current_revision(engine) == head_revision(engine)


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

    from alembic import command
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
