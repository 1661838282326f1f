"""`statusbot render` run as the program ends without the interpreter's teardown
(bot/cli.py's _exit_at_once): nothing it prints or writes may be lost on the way."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.helpers import Program


def test_render_as_the_program_leaves_nothing_unflushed(
    empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    _, url = empty_db
    # Block-buffered stdout: a pipe, and PYTHONUNBUFFERED unset.
    statusbot = Program(url, tmp_path, PYTHONUNBUFFERED="", STATUSBOT_NOW="2026-06-10T10:00:00Z")
    statusbot.env.pop("PYTHONUNBUFFERED")
    assert statusbot("db", "upgrade").returncode == 0
    statusbot.run("/incident open Errors -- Looking.")
    page = tmp_path / "fresh"  # `run` published into public/ already

    done = statusbot("render", env={"STATUSBOT_PAGE_DIR": str(page)})

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "wrote incidents/1.html" in lines
    assert lines[-1].startswith("Rendered 17 files in") and lines[-1].endswith("fresh/.")
    published = json.loads((page / ".statusbot-published.json").read_text())["files"]
    assert len(published) == 17 and "index.html" in published
    assert sorted(p.name for p in page.iterdir() if p.name.endswith(".tmp")) == []


def test_a_failed_render_still_says_why(empty_db: tuple[Engine, str], tmp_path: Path) -> None:
    _, url = empty_db
    statusbot = Program(url, tmp_path)
    statusbot.env.pop("PYTHONUNBUFFERED", None)
    assert statusbot("db", "upgrade").returncode == 0
    unwritable = tmp_path / "file"
    unwritable.write_text("not a directory")

    failed = statusbot("render", env={"STATUSBOT_PAGE_DIR": str(unwritable)})

    assert failed.returncode == 1
    assert "could not be rendered" in failed.stderr
    assert "writing the page to" in failed.stderr  # the logged reason, flushed too
