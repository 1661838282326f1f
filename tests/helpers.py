"""Small tools the tests share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from bot.runtime import Runtime
from storage import incidents
from storage.models import Base, Component, Incident


def dump(engine: Engine, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every statusbot table, for "nothing was written" comparisons."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def incident_of(rt: Runtime, number: int) -> Incident:
    """Incident or maintenance #number as stored, with its updates."""
    with rt.factory() as session:
        found = incidents.get(session, number=number)
        assert found is not None, f"no #{number}"
        return found


def component_states(rt: Runtime) -> dict[str, str]:
    """Each component's status, by name."""
    with rt.factory() as session:
        return dict(session.execute(select(Component.name, Component.status)).tuples().all())


def slash_command(command: str, text: str, *, user: str, response_url: str) -> dict[str, str]:
    """The fields Slack sends for a slash command typed in #incidents (HTTP or Socket Mode)."""
    return {
        "token": "legacy",
        "team_id": "T0TEAM",
        "team_domain": "example",
        "channel_id": "C0INCIDENTS",
        "channel_name": "incidents",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A0APP",
        "response_url": response_url,
        "trigger_id": "1337.42.abcdef",
    }


class Program:
    """The `statusbot` program with this test's database and page directory (in
    `workdir`), the page in Sydney's time, and any other settings given."""

    def __init__(self, url: str, workdir: Path, **settings: str) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "STATUSBOT_TIMEZONE": "Australia/Sydney",
            "STATUSBOT_PAGE_DIR": str(workdir / "public"),
            **settings,
        }
        self.workdir = workdir

    def __call__(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.workdir,
            timeout=120,
        )

    def run(self, line: str, user: str = "U0IC") -> str:
        done = self("run", line, "--user", user)
        assert done.returncode == 0, done.stderr
        return done.stdout


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until `statusbot serve` at `base` answers /healthz with 200; AssertionError
    (with its output) if it exits first or takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode() if process.stdout else "")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"statusbot serve did not become healthy within {timeout:g} s")


ROOT = Path(__file__).resolve().parent.parent


def serve_env(url: str, port: int, page_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a test's or benchmark's `statusbot serve`: no scheduler, no
    Socket Mode, and any other settings given (Slack's, for one)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "STATUSBOT_PAGE_DIR": str(page_dir),
        "STATUSBOT_SCHEDULER": "off",
        **settings,
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def start_serve(env: dict[str, str], **popen: Any) -> subprocess.Popen[bytes]:
    """`statusbot serve` in a process of its own, its log on stdout unless told otherwise."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.STDOUT)
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=ROOT, env=env, **popen)
