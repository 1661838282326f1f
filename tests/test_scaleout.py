"""Scaled out: two `statusbot serve` and one `statusbot clock` on one PostgreSQL database.

Real processes, signed slash commands sent to both web servers, a fake Slack on
localhost. They must behave as one: unique numbers, exactly one announcement
per incident and one thread reply per update, a maintenance started and
completed by the clock, and one page that shows the final state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage import migrate
from storage.models import Incident, OutboxEntry
from tests.fake_slack import FakeSlack
from tests.helpers import free_port, slash_command, wait_healthy
from tests.test_web import call

SECRET = "scale-out-secret"
ROOT = Path(__file__).resolve().parent.parent


class Fleet:
    """The processes of one deployment, sharing a database and a page directory."""

    def __init__(self, url: str, fake: FakeSlack, page: Path) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "STATUSBOT_PAGE_DIR": str(page),
            "STATUSBOT_NOTIFY_CHANNELS": "C0INCIDENTS",
            "STATUSBOT_SCHEDULER": "off",
            "STATUSBOT_TIMEZONE": "Australia/Sydney",
            "WEB_CONCURRENCY": "1",
        }
        self.env.pop("SLACK_APP_TOKEN", None)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.bases: list[str] = []

    def start(self, *args: str, port: int | None = None) -> subprocess.Popen[bytes]:
        env = {**self.env, **({"PORT": str(port)} if port else {})}
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def serve(self) -> str:
        port = free_port()
        process = self.start("serve", port=port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, process)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n{self.stop()}") from None
        self.bases.append(base)
        return base

    def command(self, base: str, text: str, command: str = "/incident", user: str = "U1") -> str:
        body = urlencode(
            slash_command(command, text, user=user, response_url="http://127.0.0.1:9/unused")
        )
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(
                timestamp=ts, body=body
            ),
        }
        answer = call(base, "POST", "/slack/events", body, headers)
        assert answer.status == 200, answer.body
        return str(answer.json()["text"])

    def stop(self) -> str:
        logs = []
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                output, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            logs.append(output.decode(errors="replace"))
        return "\n".join(logs)


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {check}")


def test_two_web_processes_and_a_clock_behave_as_one(
    empty_db: tuple[Engine, str], fake: FakeSlack, tmp_path: Path
) -> None:
    engine, url = empty_db
    if engine.dialect.name != "postgresql":
        pytest.skip("scaled out means PostgreSQL; SQLite is the one-process form")
    migrate.upgrade(engine)
    page = tmp_path / "public"
    fleet = Fleet(url, fake, page)
    try:
        a, b = fleet.serve(), fleet.serve()
        fleet.start("clock")
        assert "Added API" in fleet.command(a, "add API", "/component")
        assert "Added Database" in fleet.command(b, "add Database", "/component")

        # Commands to both servers at once: numbers stay unique.
        def open_one(i: int) -> str:
            return fleet.command((a, b)[i % 2], f"open Outage {i} --components API=partial")

        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(open_one, range(8)))
        assert sorted(int(r.split("#")[1].split()[0]) for r in replies) == list(range(1, 9))
        assert "Posted an update to #1" in fleet.command(
            b, "update 1 --status identified -- On it."
        )
        assert "Resolved #1" in fleet.command(a, "resolve 1 -- Fixed.")
        start = datetime.now(UTC) + timedelta(seconds=4)
        end = start + timedelta(seconds=3)
        reply = fleet.command(
            b,
            f"schedule Upgrade --start {start.isoformat(timespec='seconds')} "
            f"--end {end.isoformat(timespec='seconds')} --components Database",
            "/maintenance",
        )
        assert "Scheduled maintenance #9" in reply

        # The clock starts and completes it on its own.
        def completed() -> bool:
            with Session(engine) as s:
                status = s.scalars(select(Incident.status).where(Incident.number == 9)).one()
            return status == "completed"

        wait_until(completed, timeout=40)

        # Every notification delivered exactly once.
        def all_delivered() -> bool:
            with Session(engine) as s:
                rows = s.scalars(select(OutboxEntry).where(OutboxEntry.kind == "slack")).all()
            return bool(rows) and all(r.delivered_at is not None for r in rows)

        wait_until(all_delivered, timeout=60)
        with Session(engine) as s:
            entries = s.scalars(select(OutboxEntry).where(OutboxEntry.kind == "slack")).all()
            numbers = s.scalars(select(Incident.number)).all()
        posts = fake.calls_to("chat.postMessage")
        announcements = [c for c in posts if not c.params.get("thread_ts")]
        replies_posted = [c for c in posts if c.params.get("thread_ts")]
        assert len(announcements) == len(numbers) == 9  # one per incident and maintenance
        threaded = [
            e
            for e in entries
            if e.update_id is not None
            and e.event not in ("incident.opened", "maintenance.scheduled")
        ]
        reminders = [e for e in entries if e.update_id is None and e.payload.get("text")]
        assert len(replies_posted) == len(threaded) + len(reminders)
        assert len({c.params["ts"] for c in fake.calls_to("chat.update") if "ts" in c.params}) <= 9

        # One page, showing the final state, whichever process wrote it last.
        def page_is_current() -> bool:
            path = page / "api" / "v2" / "incidents.json"
            if not path.exists():
                return False
            listed = {i["id"]: i["status"] for i in json.loads(path.read_text())["incidents"]}
            return listed.get("1") == "resolved" and len(listed) == 8

        wait_until(page_is_current, timeout=30)

        # The clock publishes the maintenance's end after it commits it, and may still
        # be doing so when everything else above is done.
        def maintenance_shown(status: str) -> bool:
            path = page / "api/v2/scheduled-maintenances.json"
            listed = json.loads(path.read_text())["scheduled_maintenances"]
            return [m["status"] for m in listed] == [status]

        wait_until(lambda: maintenance_shown("completed"), timeout=30)
        for base in (a, b):
            served = call(base, "GET", "/api/v2/incidents.json").json()
            assert {i["id"] for i in served["incidents"]} == {str(n) for n in range(1, 9)}
    finally:
        logs = fleet.stop()
    assert "Traceback" not in logs, logs
