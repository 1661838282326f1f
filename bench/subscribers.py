"""Benchmark: one incident update told to 10,000 email and 1,000 webhook subscribers.

    python bench/subscribers.py [--database-url URL] [--subscribers 10000] [--webhooks 1000]

Creates (in a temporary SQLite file unless --database-url names a PostgreSQL
server, where a schema of its own is created and dropped) one component, one
open incident, and --subscribers confirmed email subscribers and --webhooks
webhook subscribers (plain bulk inserts), the webhooks pointing at a local
threaded HTTP receiver on 127.0.0.1 (STATUSBOT_WEBHOOK_ALLOW_PRIVATE=1). It
starts a local SMTP sink (aiosmtpd) counting accepted mails and `statusbot
serve` (gunicorn) as a subprocess against a fake Slack Web API, then sends ONE
signed `/incident update` slash command, as Slack would: the real path (the
command writes one fan-out entry; serve's fan-out and sender threads do the rest).

It prints the seconds from the ack until the sink has every mail and until the
receiver has every webhook, and the peak RSS (VmHWM) of serve's processes, the
one that delivered first. Run it at --subscribers 1000 and 10000 to see that
memory stays flat. Targets on a 2-core machine: every mail <= 30 s after the
ack, every webhook <= 10 s, peak RSS flat in the number of subscribers.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import SMTP, Envelope, Session  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402
from sqlalchemy import insert  # noqa: E402

import bot.notify  # noqa: E402
from bench.ack import database, serve_command, wait_healthy  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage import migrate  # noqa: E402
from storage import subscribers as store  # noqa: E402
from storage.models import Subscriber, new_code  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.helpers import free_port  # noqa: E402

SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH"
MAIL_TARGET = 30.0
WEBHOOK_TARGET = 10.0
TIMEOUT = 600.0
PROBE_EVERY = 0.5  # seconds between the silent updates timed while delivery runs
ROWS = 1000  # subscribers inserted per statement


class Counter:
    """Arrivals, thread-safe, with the moment of the last one."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self.lock:
            self.count += n
            self.last = time.monotonic()


class MailCounter:
    """aiosmtpd handler: accepts every mail, counts its recipients, keeps nothing."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.counter.add(len(envelope.rcpt_tos))
        return "250 Message accepted"


def receiver(counter: Counter) -> ThreadingHTTPServer:
    """A threaded HTTP server answering 204 to every POST, counting them."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            counter.add()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # A listen backlog like a production server's (socketserver's default is 5):
        # the deliverer opens dozens of connections at once, and a backlog of 5 would
        # reset them, measuring the receiver instead of the deliverer.
        request_queue_size = 256
        daemon_threads = True

    server = Server(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def seed(url: str, emails: int, webhooks: int, hook_url: str) -> int:
    """A component, an open incident (its own fan-out done before anyone subscribed), and
    the subscribers; the incident's number."""
    runtime = Runtime(Settings(database_url=url))
    migrate.upgrade(runtime.engine)
    result = runtime.run_line('/component add "API" --group Bench', user="U0BENCH")
    assert result.ok, result.reply
    result = runtime.run_line("/incident open API -- Looking into it", user="U0BENCH")
    opened = re.search(r"#(\d+)", result.reply)
    assert result.ok and opened, result.reply
    bot.notify.run_pending(runtime, [])  # the opening reaches nobody: nobody subscribed yet
    now = datetime.now(UTC)
    rows = [_row(store.EMAIL, f"reader{n}@example.com", None, now) for n in range(emails)]
    rows += [
        _row(store.WEBHOOK, f"hook{n}@example.com", f"{hook_url}/hook/{n}", now)
        for n in range(webhooks)
    ]
    with runtime.factory.begin() as session:
        for start in range(0, len(rows), ROWS):
            session.execute(insert(Subscriber), rows[start : start + ROWS])
    runtime.engine.dispose()
    return int(opened.group(1))


def _row(kind: str, email: str, endpoint: str | None, now: datetime) -> dict[str, Any]:
    return {
        "code": new_code(),
        "kind": kind,
        "email": email,
        "endpoint": endpoint,
        "address_key": store.address_key(kind, endpoint or email),
        "secret": store.new_secret() if kind == store.WEBHOOK else None,
        "token": store.new_token(),
        "source": "import",
        "created_at": now,
        "confirmed_at": now,
    }


def slash(port: int, fake: FakeSlack, text: str) -> tuple[int, str]:
    """One signed /incident command to serve; its status and reply."""
    body = urlencode(
        {
            "team_id": "T0TEAM",
            "channel_id": CHANNEL,
            "user_id": "U0BENCH",
            "command": "/incident",
            "text": text,
            "response_url": f"{fake.url}/response/bench",
            "trigger_id": "1.2.3",
        }
    )
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/slack/events",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(signature),
        },
    )
    response = conn.getresponse()
    return response.status, response.read().decode(errors="replace")


def timed_slash(port: int, fake: FakeSlack, text: str) -> float:
    """Seconds one signed slash command takes to be acked."""
    started = time.monotonic()
    status, reply = slash(port, fake, text)
    assert status == 200, reply
    return time.monotonic() - started


def _own_cpu() -> float:
    """CPU seconds of this process: the SMTP sink, the receiver and the bench itself."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def processes(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                queue += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def memory(pid: int) -> dict[str, int]:
    """VmHWM (peak) and VmRSS of a process, in kB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(
    counters: list[tuple[Counter, int]],
    process: subprocess.Popen[bytes],
    probe: Callable[[], None] | None = None,
) -> None:
    """Until every counter has what it wants (or serve died, or TIMEOUT); `probe` runs
    every PROBE_EVERY seconds meanwhile."""
    deadline = time.monotonic() + TIMEOUT
    next_probe = time.monotonic()
    while time.monotonic() < deadline and process.poll() is None:
        if all(c.count >= want for c, want in counters):
            return
        if probe is not None and time.monotonic() >= next_probe:
            probe()
            next_probe = time.monotonic() + PROBE_EVERY
        time.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL server (default: a temporary SQLite file)"
    )
    parser.add_argument("--subscribers", type=int, default=10_000, help="email subscribers")
    parser.add_argument("--webhooks", type=int, default=1_000, help="webhook subscribers")
    parser.add_argument("--keep-log", help="write the server's log to this file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="statusbot-bench-"))
    fake = FakeSlack().start()
    mails, hooks = Counter(), Counter()
    smtp_port = free_port()
    sink = Controller(MailCounter(mails), hostname="127.0.0.1", port=smtp_port)
    sink.start()
    hook_server = receiver(hooks)
    hook_url = f"http://127.0.0.1:{hook_server.server_address[1]}"
    try:
        with database(args.database_url, workdir) as url:
            label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
            print(
                f"Seeding {args.subscribers:,} email and {args.webhooks:,} webhook "
                f"subscribers into {label}…"
            )
            number = seed(url, args.subscribers, args.webhooks, hook_url)
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "PORT": str(port),
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": fake.api_url,
                "STATUSBOT_PAGE_DIR": str(workdir / "public"),
                "STATUSBOT_NOTIFY_CHANNELS": CHANNEL,
                "STATUSBOT_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                "STATUSBOT_WEBHOOK_ALLOW_PRIVATE": "1",
            }
            env.pop("SLACK_APP_TOKEN", None)
            log = open(args.keep_log or workdir / "serve.log", "wb")  # noqa: SIM115
            process = subprocess.Popen(serve_command(), cwd=ROOT, env=env, stdout=log, stderr=log)
            try:
                wait_healthy(port, process)
                time.sleep(2)  # the workers' start-up is not the delivery's memory
                before = {p: memory(p) for p in processes(process.pid)}
                cpu_before = {p: cpu(p) for p in before}
                # Acks before the fan-out: silent updates (no subscriber is told of them).
                idle = [
                    timed_slash(port, fake, f"update {number} --silent -- Idle") for _ in range(5)
                ]
                load = os.getloadavg()[0]
                own_cpu = _own_cpu()
                started = time.monotonic()
                status, reply = slash(port, fake, f"update {number} --status identified -- Fix")
                acked = time.monotonic()
                print(f"Update acked in {(acked - started) * 1000:.0f} ms ({status}): {reply[:80]}")
                busy: list[float] = []

                def probe() -> None:
                    text = f"update {number} --silent -- Busy {len(busy)}"
                    busy.append(timed_slash(port, fake, text))

                wait_for([(mails, args.subscribers), (hooks, args.webhooks)], process, probe)
                after = {p: memory(p) for p in processes(process.pid)}
                return report(
                    args,
                    label,
                    acked,
                    mails,
                    hooks,
                    before,
                    after,
                    {p: cpu(p) - cpu_before.get(p, 0.0) for p in after},
                    acks=(started, acked, idle, busy),
                    load=(load, os.getloadavg()[0]),
                    bench_cpu=_own_cpu() - own_cpu,
                )
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                log.close()
    finally:
        sink.stop()
        hook_server.shutdown()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(
    args: argparse.Namespace,
    label: str,
    acked: float,
    mails: Counter,
    hooks: Counter,
    before: dict[int, dict[str, int]],
    after: dict[int, dict[str, int]],
    cpu_used: dict[int, float],
    *,
    acks: tuple[float, float, list[float], list[float]],
    load: tuple[float, float],
    bench_cpu: float,
) -> int:
    mail_s = mails.last - acked if mails.count else float("nan")
    print(f"\n== {label}: {args.subscribers:,} email, {args.webhooks:,} webhook subscribers")
    print(
        f"   email:    {mails.count:,} of {args.subscribers:,} mails in {mail_s:.1f} s "
        f"after the ack ({mails.count / max(mail_s, 1e-9):.0f} mails/s; target <= "
        f"{MAIL_TARGET:.0f} s)"
    )
    mail_ok = mails.count >= args.subscribers and mail_s <= MAIL_TARGET
    hook_s = hooks.last - acked if hooks.count else float("nan")
    print(
        f"   webhooks: {hooks.count:,} of {args.webhooks:,} in {hook_s:.1f} s after the ack "
        f"(target <= {WEBHOOK_TARGET:.0f} s)"
    )
    hook_ok = hooks.count >= args.webhooks and hook_s <= WEBHOOK_TARGET
    ok = mail_ok and hook_ok
    busiest = max(cpu_used, key=lambda p: cpu_used[p])
    for p in sorted(after):
        mark = " <- delivered (most CPU)" if p == busiest else ""
        print(
            f"   pid {p}: peak RSS {after[p].get('VmHWM', 0) / 1024:6.1f} MB "
            f"(RSS {before.get(p, {}).get('VmRSS', 0) / 1024:6.1f} MB before the update), "
            f"CPU {cpu_used[p]:5.1f} s{mark}"
        )
    print(f"   peak RSS of the delivering process: {after[busiest].get('VmHWM', 0) / 1024:.1f} MB")
    started, acked, idle, busy = acks
    print(
        f"   the update's ack: {(acked - started) * 1000:.0f} ms; silent updates acked in "
        f"p50 {percentile(idle, 50) * 1000:.0f} / max {max(idle) * 1000:.0f} ms before it"
        + (
            f", p50 {percentile(busy, 50) * 1000:.0f} / p99 {percentile(busy, 99) * 1000:.0f} / "
            f"max {max(busy) * 1000:.0f} ms during delivery ({len(busy)} of them)"
            if busy
            else ""
        )
    )
    print(
        f"   the sink, receiver and bench used {bench_cpu:.1f} s of CPU; load average "
        f"{load[0]:.1f} at the ack, {load[1]:.1f} at the end (2 cores)"
    )
    print(
        f"   targets: mail <= {MAIL_TARGET:.0f} s {'met' if mail_ok else 'NOT met'}, "
        f"webhooks <= {WEBHOOK_TARGET:.0f} s {'met' if hook_ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
