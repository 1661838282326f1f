"""`statusbot render` run as the program ends without the interpreter's teardown
(bot/cli.py's _exit_at_once): nothing it prints or writes may be lost on the way."""

from __future__ import annotations

import ast
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.cli import main
from tests.helpers import Program

ROOT = Path(__file__).resolve().parent.parent


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


def loaded_by(modules: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` a fresh interpreter has loaded after importing `modules`."""
    probe = f"import sys, {modules}; print(sorted(m for m in {names!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return list(ast.literal_eval(done.stdout))


def test_the_program_loads_sqlalchemy_only_in_main() -> None:
    """bot.cli turns the collector off for `render` before loading the rest: so loading
    bot.cli itself (and `statusbot --help`) must not bring in SQLAlchemy or the runtime."""
    assert loaded_by("bot.cli", ("sqlalchemy", "bot.runtime", "bot.settings")) == []


def test_the_calendar_feed_and_badge_libraries_load_with_their_files_only() -> None:
    """What `statusbot render` loads before it forks leaves icalendar, feedgen (and
    lxml) and xml.sax to the process that renders maintenance.ics, the feeds and the
    badge, after the fork."""
    before_fork = "bot.publish, renderers.parallel"
    assert loaded_by(before_fork, ("icalendar", "feedgen", "lxml", "xml.sax")) == []


def test_render_called_in_a_process_leaves_its_collector_on(
    empty_db: tuple[Engine, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the program (argv None, ending in os._exit) turns the collector off for good."""
    _, url = empty_db
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("STATUSBOT_PAGE_DIR", str(tmp_path / "public"))
    assert gc.isenabled()
    assert main(["db", "upgrade"]) == 0
    assert main(["render"]) == 0
    assert gc.isenabled()
    assert (tmp_path / "public" / "index.html").is_file()
