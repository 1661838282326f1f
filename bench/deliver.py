"""Benchmark: one major incident announced in 20 channels, under Slack's rate limits.

    python bench/deliver.py [--database-url URL] [--channels 20] [--updates 10] [--runs 1]

Starts `statusbot serve` against a fake Slack Web API on localhost that
enforces Slack's documented limits (tests/fake_slack.py's `SlackLimits`:
chat.postMessage one a second per channel, chat.update 50 a minute per
workspace, HTTP 429 with `Retry-After` beyond), announcing in --channels
channels. Then it opens an incident and updates it --updates times, 0.5 s
apart, by signed slash commands, and waits until every channel is complete:
its announcement, one thread reply per update in order, and the announcement
showing the last update.

The floor is what the per-channel post limit allows: the announcement and
--updates replies, one a second in each channel, all channels in parallel, so
--updates seconds after the announcement. It prints, per run, when the last
channel was complete as a ratio to that floor (and the median channel), what is
missing, what was posted twice or out of order, and the calls and 429s Slack
saw. Target: every channel complete by 1.2 x the floor, nothing missing,
nothing doubled.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from bench.ack import SECRET, database, serve_env, serving  # noqa: E402
from bench.machine import describe  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage import migrate  # noqa: E402
from tests.fake_slack import Call, FakeSlack, SlackLimits  # noqa: E402
from tests.helpers import free_port  # noqa: E402

GAP = 0.5  # seconds between two updates, as the scenario has them
TARGET = 1.2
TOKEN = re.compile(r"dv\d+u\d+")


def send(port: int, signer: SignatureVerifier, text: str) -> tuple[int, str]:
    """One signed `/incident` command; its HTTP status and reply text."""
    body = urlencode(
        {
            "team_id": "T0TEAM",
            "channel_id": "C0BENCH",
            "user_id": "U0BENCH",
            "command": "/incident",
            "text": text,
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": "1.2.3",
        }
    )
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signer.generate_signature(timestamp=ts, body=body)),
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/slack/events", body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, str(json.loads(raw).get("text", ""))
    except ValueError:
        return response.status, raw.decode(errors="replace")


def tokens(call: Call) -> list[str]:
    return TOKEN.findall(json.dumps(call.params))


def complete_at(calls: list[Call], channel: str, expected: list[str]) -> float | None:
    """When `channel` had its announcement, every reply, and the last state shown."""
    posts = [c for c in calls if c.method == "chat.postMessage" and c.params["channel"] == channel]
    tops = [c for c in posts if "thread_ts" not in c.params]
    replies = [c for c in posts if "thread_ts" in c.params]
    if len(tops) != 1 or [t for c in replies for t in tokens(c)[:1]] != expected[1:]:
        return None
    edits = [c for c in calls if c.method == "chat.update" and c.params["channel"] == channel]
    shown = (edits or tops)[-1]
    if expected[-1] not in tokens(shown):
        return None
    return max(c.at for c in [*posts, shown])


def faults(calls: list[Call], channels: list[str], expected: list[str]) -> tuple[int, int, int]:
    """Messages missing, posted twice, and replies out of order, over every channel."""
    missing = doubled = disordered = 0
    for channel in channels:
        posts = [
            c for c in calls if c.method == "chat.postMessage" and c.params["channel"] == channel
        ]
        tops = [c for c in posts if "thread_ts" not in c.params]
        seen = [t for c in posts if "thread_ts" in c.params for t in tokens(c)[:1]]
        counted = Counter(seen)
        missing += (0 if tops else 1) + sum(1 for t in expected[1:] if t not in counted)
        doubled += max(0, len(tops) - 1) + sum(n - 1 for n in counted.values() if n > 1)
        disordered += 0 if seen == sorted(seen, key=expected.index) else 1
    return missing, doubled, disordered


def scenario(port: int, fake: FakeSlack, channels: list[str], updates: int, run: int) -> dict:
    """Open and update one incident; wait for every channel; the figures."""
    signer = SignatureVerifier(SECRET)
    expected = [f"dv{run}u{n}" for n in range(updates + 1)]
    fake.reset()
    started = time.monotonic()
    status, reply = send(port, signer, f"open Major outage -- Looking {expected[0]}")
    match = re.search(r"#(\d+)", reply)
    if status != 200 or not match:
        raise SystemExit(f"open failed: {status} {reply!r}")
    number = int(match.group(1))
    for n in range(1, updates + 1):
        time.sleep(max(0.0, started + n * GAP - time.monotonic()))
        status, reply = send(port, signer, f"update {number} -- Progress {expected[n]}")
        if status != 200:
            raise SystemExit(f"update failed: {status} {reply!r}")
    floor = float(updates)  # one post a second per channel: announcement + replies
    deadline = started + max(120.0, 10 * floor)
    done: dict[str, float] = {}
    while time.monotonic() < deadline and len(done) < len(channels):
        time.sleep(0.1)
        calls = [c for c in fake.calls if c.ok]
        for channel in channels:
            if channel not in done:
                at = complete_at(calls, channel, expected)
                if at is not None:
                    done[channel] = at - started
    time.sleep(2.0)  # anything doubled after completion still counts
    calls = [c for c in fake.calls if c.ok]
    missing, doubled, disordered = faults(calls, channels, expected)
    statuses = Counter((c.method, c.status) for c in fake.calls)
    first_post = min((c.at for c in calls if c.method == "chat.postMessage"), default=started)
    times = sorted(done.values())
    gaps = [
        b.at - a.at
        for channel in channels
        for a, b in itertools.pairwise(
            [c for c in calls if c.method == "chat.postMessage" and c.params["channel"] == channel]
        )
    ]
    return {
        "floor": floor,
        "last": times[-1] if len(times) == len(channels) else float("inf"),
        "median": statistics.median(times) if times else float("inf"),
        "complete": len(times),
        "missing": missing,
        "doubled": doubled,
        "disordered": disordered,
        "first_post": first_post - started,
        "gap": statistics.mean(gaps) if gaps else float("nan"),
        "gap_max": max(gaps, default=float("nan")),
        "posts": statuses[("chat.postMessage", 200)],
        "updates": statuses[("chat.update", 200)],
        "429s": sum(n for (_, code), n in statuses.items() if code == 429),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a PostgreSQL server (default: SQLite)")
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1, help="scenarios in a row, one server")
    parser.add_argument("--keep-log", help="write the server's log to this file")
    args = parser.parse_args()

    channels = [f"C0DELIV{n:02d}" for n in range(args.channels)]
    workdir = Path(tempfile.mkdtemp(prefix="statusbot-deliver-"))
    fake = FakeSlack(limits=SlackLimits()).start()
    ok = True
    try:
        with database(args.database_url, workdir) as url:
            label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
            runtime = Runtime(Settings(database_url=url))
            migrate.upgrade(runtime.engine)
            runtime.engine.dispose()
            port = free_port()
            env = serve_env(url, port, fake, workdir / "public", channels)
            with serving(env, port, Path(args.keep_log or workdir / "serve.log")):
                print(
                    f"== {label}: 1 incident, {args.updates} updates {GAP:g} s apart, "
                    f"{args.channels} channels; floor {args.updates} s (1 post/s per channel)"
                )
                started: float | None = None
                for run in range(args.runs):
                    if started is not None:
                        # Each run is its own incident and needs its own chat.update
                        # allowance (Slack's is per minute, workspace-wide): start it
                        # once the last run's edits have left the window.
                        rest = SlackLimits().window - (time.monotonic() - started)
                        if rest > 0:
                            print(f"   (waiting {rest:.0f} s for Slack's edit allowance)")
                            time.sleep(rest)
                    started = time.monotonic()
                    f = scenario(port, fake, channels, args.updates, run)
                    met = f["last"] <= TARGET * f["floor"] and not (
                        f["missing"] or f["doubled"] or f["disordered"]
                    )
                    ok = ok and met
                    print(
                        f"   run {run + 1}: last channel complete {f['last']:.2f} s = "
                        f"{f['last'] / f['floor']:.2f} x floor (median channel "
                        f"{f['median'] / f['floor']:.2f} x); {f['complete']}/{args.channels} "
                        f"complete; missing {f['missing']}, doubled {f['doubled']}, out of "
                        f"order {f['disordered']}; first post after {f['first_post']:.2f} s, "
                        f"then a post every {f['gap']:.2f} s (at most {f['gap_max']:.2f} s) in "
                        "each channel; "
                        f"Slack took {f['posts']} posts, {f['updates']} edits, answered "
                        f"{f['429s']} x 429 — {'met' if met else 'NOT met'}"
                    )
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(describe())
    print(f"   target: every channel complete by {TARGET} x the floor, nothing missing or doubled")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
