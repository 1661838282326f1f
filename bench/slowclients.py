"""Benchmark: ack latency of `statusbot serve` while slow clients hold connections open.

    python bench/slowclients.py [--slow 48] [--interval 2] [--requests 40] [--timeout 10]
                                [--stock]

Starts `statusbot serve` (gunicorn, Slack on against a fake Slack Web API, a
temporary SQLite database), measures signed /status slash commands and GET
/healthz with no slow client, then opens --slow connections that each send one
byte of a request head every --interval seconds, and measures again while they
are open. Last it reports when the server closed the slow connections
(STATUSBOT_REQUEST_TIMEOUT is --timeout). --stock runs gunicorn's own gthread
worker instead of bot/http_worker.py, to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from tests.fake_slack import FakeSlack  # noqa: E402
from tests.helpers import (  # noqa: E402
    free_port,
    serve_env,
    slash_command,
    start_serve,
    wait_healthy,
)

SECRET = "bench-signing-secret"
CLIENT_TIMEOUT = 30.0


def timed(port: int, method: str, path: str, body: str = "", **headers: str) -> float | None:
    """Seconds until the answer (None if it failed or took over CLIENT_TIMEOUT)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    return time.monotonic() - started if ok else None


def ack(port: int, fake: FakeSlack) -> float | None:
    """One signed /status, as Slack sends it."""
    body = urlencode(slash_command("/status", "", user="U0B", response_url=f"{fake.url}/r"))
    ts = str(int(time.time()))
    signature = str(SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body))
    return timed(
        port,
        "POST",
        "/slack/events",
        body,
        **{
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
    )


def measure(label: str, port: int, fake: FakeSlack, requests: int) -> None:
    acks = [ack(port, fake) for _ in range(requests)]
    health = [timed(port, "GET", "/healthz") for _ in range(requests)]
    for what, samples in (("ack", acks), ("healthz", health)):
        done = sorted(s for s in samples if s is not None)
        failed = len(samples) - len(done)
        if not done:
            print(f"{label:>22} {what:>8}: all {failed} failed or took over {CLIENT_TIMEOUT:g} s")
            continue
        p50 = done[len(done) // 2] * 1000
        p99 = done[min(len(done) - 1, int(len(done) * 0.99))] * 1000
        print(
            f"{label:>22} {what:>8}: p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"max {done[-1] * 1000:7.1f} ms  failed {failed}"
        )


class SlowClients:
    """Connections that each send one byte of a never-ending request head per interval."""

    def __init__(self, port: int, count: int, interval: float) -> None:
        self.head = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: " + b"z" * 100_000
        self.socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self.opened = time.monotonic()
        self.closed_at: dict[int, float] = {}
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        for n in range(len(self.head)):
            for i, sock in enumerate(self.socks):
                if i in self.closed_at:
                    continue
                try:
                    sock.send(self.head[n : n + 1])
                    sock.setblocking(False)
                    if sock.recv(4096) == b"":
                        self.closed_at[i] = time.monotonic()
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_at[i] = time.monotonic()
                finally:
                    with contextlib.suppress(OSError):
                        sock.setblocking(True)
            if self.stop.wait(self.interval) or len(self.closed_at) == len(self.socks):
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.socks:
            sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slow", type=int, default=48, help="slow connections (default 48)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between bytes")
    parser.add_argument("--requests", type=int, default=40, help="acks and /healthz each")
    parser.add_argument("--timeout", type=float, default=10.0, help="STATUSBOT_REQUEST_TIMEOUT")
    parser.add_argument("--stock", action="store_true", help="gunicorn's own gthread worker")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="statusbot-slow-"))
    fake = FakeSlack().start()
    port = free_port()
    env = serve_env(
        f"sqlite:///{workdir / 'statusbot.db'}",
        port,
        workdir / "public",
        SLACK_BOT_TOKEN="xoxb-bench",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        STATUSBOT_REQUEST_TIMEOUT=str(args.timeout),
    )
    if args.stock:
        env["GUNICORN_CMD_ARGS"] = "--worker-class gthread"
    log = open(workdir / "serve.log", "wb")  # noqa: SIM115
    process = start_serve(env, stdout=log, stderr=log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        worker = "stock gthread" if args.stock else "bot.http_worker"
        print(f"{worker}, {args.slow} slow clients, a byte every {args.interval:g} s")
        measure("no slow client", port, fake, args.requests)
        slow = SlowClients(port, args.slow, args.interval)
        try:
            time.sleep(min(1.0, args.interval))  # they have all begun
            measure(f"{args.slow} slow clients open", port, fake, args.requests)
            slow.thread.join(args.timeout + 2 * args.interval + 5)
            after = sorted(t - slow.opened for t in slow.closed_at.values())
            if after:
                print(
                    f"server closed {len(after)}/{args.slow} slow connections, "
                    f"{after[0]:.1f}–{after[-1]:.1f} s after they opened "
                    f"(deadline {args.timeout:g} s; seen at the next byte sent)"
                )
            else:
                print(f"server closed none of the {args.slow} slow connections")
        finally:
            slow.close()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
