"""The operators' /metrics: scraped over real HTTP from `statusbot serve`, parsed by
prometheus_client's own text parser; two gunicorn workers' counts are summed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine

from bot.settings import Settings, SettingsError
from storage import migrate
from tests.fake_slack import FakeSlack
from tests.helpers import ROOT, free_port, serve_env, slash_command, start_serve, wait_healthy

SECRET = "metrics-secret"
TRIGGERS = itertools.count(1)


def command(base: str, command: str, text: str) -> str:
    """A signed slash command; each one is new (its own trigger_id), so none is a replay."""
    fields = slash_command(command, text, user="U1", response_url="http://127.0.0.1:9/")
    body = urlencode({**fields, "trigger_id": f"{next(TRIGGERS)}.1.2"})
    ts = str(int(time.time()))
    request = urllib.request.Request(
        f"{base}/slack/events",
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(
                timestamp=ts, body=body
            ),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["text"])


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at `url`, by name and labels, read by prometheus_client's parser."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def status_code(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Serving:
    def __init__(self, engine: Engine, url: str, tmp_path: Path, fake: FakeSlack, **env: str):
        migrate.upgrade(engine)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = serve_env(
            url,
            self.port,
            tmp_path / "public",
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.api_url,
            WEB_CONCURRENCY="2",
            **env,
        )

    def __enter__(self) -> Serving:
        self.process = start_serve(self.env)
        wait_healthy(self.base, self.process)
        return self

    def __exit__(self, error: type[BaseException] | None, *_: Any) -> None:
        self.process.terminate()
        log, _ = self.process.communicate(timeout=30)
        if error is not None:  # pytest shows what a failed test printed: the server's side
            print(log.decode(errors="replace"))


def test_metrics_are_summed_over_two_workers_and_read_by_prometheus(
    empty_db: tuple[Engine, str], tmp_path: Path, fake: FakeSlack
) -> None:
    engine, url = empty_db
    folder = tmp_path / "prom"
    with Serving(
        engine, url, tmp_path, fake, STATUSBOT_METRICS="on", PROMETHEUS_MULTIPROC_DIR=str(folder)
    ) as server:
        assert "Added API" in command(server.base, "/component", "add API")
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda _: command(server.base, "/status", ""), range(40)))
        assert len(replies) == 40
        refused = command(server.base, "/incident", "update 999 -- Nothing here.")
        assert "999" in refused
        samples = scrape(f"{server.base}/metrics")

        # Each worker counted its own share in its own file; the scrape sums them.
        counts: dict[str, float] = {}
        for path in folder.glob("counter_*.db"):
            for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
                _, name, labels, _ = json.loads(key)
                if name == "statusbot_commands_total" and labels["command"] == "/status":
                    counts[path.name] = counts.get(path.name, 0) + value
        assert len([n for n in counts.values() if n]) >= 2, counts
        assert sum(counts.values()) == 40
        assert (
            samples[("statusbot_commands_total", (("command", "/status"), ("outcome", "ok")))] == 40
        )
        assert (
            samples[
                ("statusbot_commands_total", (("command", "/incident"), ("outcome", "refused")))
            ]
            == 1
        )
        assert samples[("statusbot_slack_ack_seconds_count", ())] >= 42
        for kind in ("slack", "fanout", "email", "webhook"):
            assert ("statusbot_outbox_pending", (("kind", kind),)) in samples
            assert ("statusbot_outbox_oldest_pending_seconds", (("kind", kind),)) in samples
        assert status_code(f"{server.base}/metrics") == 200


def test_a_workers_first_commands_on_many_threads_build_the_metrics_once() -> None:
    # A worker's first commands arrive on several threads at once; each counts itself.
    # Each of 20 forked processes (fresh, nothing built yet) races 16 threads, with
    # thread switches every microsecond: an unguarded build is all but sure to run
    # twice somewhere and hit prometheus_client's DuplicateTimeseries.
    program = textwrap.dedent(
        """
        import os, sys, threading
        from bot import instruments

        def race():
            sys.setswitchinterval(1e-6)
            start = threading.Barrier(16)
            errors = []
            def first_command():
                start.wait()
                try:
                    instruments.count_command("/status", "ok")
                except Exception as error:
                    errors.append(repr(error))
            threads = [threading.Thread(target=first_command) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            counted = instruments.instruments().commands.labels(command="/status", outcome="ok")
            return not errors and counted._value.get() == 16

        failed = 0
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                os._exit(0 if race() else 1)
            failed += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
        print(f"{failed} of 20 failed")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0 of 20 failed"


def test_metrics_are_off_unless_asked_for(
    empty_db: tuple[Engine, str], tmp_path: Path, fake: FakeSlack
) -> None:
    engine, url = empty_db
    with Serving(engine, url, tmp_path, fake) as server:
        assert status_code(f"{server.base}/metrics") == 404


def test_metrics_on_a_port_of_their_own_stay_off_the_web_port(
    empty_db: tuple[Engine, str], tmp_path: Path, fake: FakeSlack
) -> None:
    engine, url = empty_db
    port = free_port()
    with Serving(engine, url, tmp_path, fake, STATUSBOT_METRICS_PORT=str(port)) as server:
        assert "Added API" in command(server.base, "/component", "add API")
        assert status_code(f"{server.base}/metrics") == 404
        deadline = time.monotonic() + 20
        samples: dict[Any, float] = {}
        while time.monotonic() < deadline:
            try:
                samples = scrape(f"http://127.0.0.1:{port}/metrics")
                break
            except OSError:
                time.sleep(0.1)  # the background process is still starting
        key = ("statusbot_commands_total", (("command", "/component"), ("outcome", "ok")))
        assert samples[key] == 1
        assert samples[("statusbot_outbox_pending", (("kind", "slack"),))] >= 0


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("9100", "127.0.0.1", 9100), ("0.0.0.0:9100", "0.0.0.0", 9100), ("[::1]:9", "::1", 9)],
)
def test_the_metrics_port_setting(text: str, host: str, port: int) -> None:
    settings = Settings.from_env({"STATUSBOT_METRICS_PORT": text})
    assert (settings.metrics_host, settings.metrics_port) == (host, port)


@pytest.mark.parametrize("text", ["metrics", "0", "99999", "host:"])
def test_a_bad_metrics_port_is_refused_saying_how(text: str) -> None:
    with pytest.raises(SettingsError, match=r"STATUSBOT_METRICS_PORT.*HOST:PORT"):
        Settings.from_env({"STATUSBOT_METRICS_PORT": text})


def test_a_bad_metrics_switch_is_refused() -> None:
    with pytest.raises(SettingsError, match="STATUSBOT_METRICS"):
        Settings.from_env({"STATUSBOT_METRICS": "maybe"})
    assert Settings.from_env({"STATUSBOT_METRICS": "on"}).metrics
