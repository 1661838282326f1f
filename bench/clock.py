"""Benchmark: how late the clock starts and completes maintenance windows.

    python bench/clock.py [--database-url URL] [--windows 10] [--process]

Schedules --windows maintenances a few seconds apart, each a few seconds long,
then lets the real scheduler run them: in this process (what `statusbot serve`
does) or, with --process, as a separate `statusbot clock` process (the
Procfile's clock). It prints the lateness of every start and completion: the
time between `scheduled_for` / `scheduled_until` and the moment the update was
written. The target is 5 s; the clock ticks every second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import start_in_background
from bot.runtime import Runtime
from bot.settings import Settings
from storage import incidents, migrate
from storage.db import make_engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--process", action="store_true", help="run `statusbot clock` apart")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'clock.db'}"
        settings = Settings(database_url=url, page_dir=Path(tmp) / "public")
        engine = make_engine(url)
        migrate.upgrade(engine)
        runtime = Runtime(settings, engine=engine)
        assert runtime.run_line("/component add Database", user="U0BENCH").ok
        first = datetime.now(UTC) + timedelta(seconds=3)
        windows = []
        for i in range(args.windows):
            start = first + timedelta(seconds=1.7 * i)
            end = start + timedelta(seconds=4)
            line = (
                f"/maintenance schedule Window {i} --start {start.isoformat(timespec='seconds')} "
                f"--end {end.isoformat(timespec='seconds')} --components Database"
            )
            result = runtime.run_line(line, user="U0BENCH")
            assert result.ok, result.reply
            windows.append(result.number)

        child = None
        if args.process:
            env = {**os.environ, "DATABASE_URL": url, "STATUSBOT_PAGE_DIR": str(Path(tmp) / "p")}
            child = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "clock"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            scheduler = start_in_background(runtime)
        deadline = time.monotonic() + 10 + 2 * args.windows
        starts: list[float] = []
        ends: list[float] = []
        while time.monotonic() < deadline:
            starts, ends = lateness(runtime, windows)
            if len(ends) == len(windows):
                break
            time.sleep(0.25)
        if child is not None:
            child.terminate()
            child.wait(timeout=10)
        else:
            scheduler.shutdown(wait=False)

    where = "a separate `statusbot clock` process" if args.process else "in-process"
    backend = engine.dialect.name
    print(f"clock lateness, {len(windows)} windows, {where}, {backend}:")
    for name, values in (("start", starts), ("complete", ends)):
        if not values:
            print(f"  {name:8s}: none happened")
            continue
        print(
            f"  {name:8s}: n={len(values)}  median {statistics.median(values):.2f} s  "
            f"max {max(values):.2f} s  (target ≤ 5 s)"
        )
    return 0 if len(ends) == len(windows) else 1


def lateness(runtime: Runtime, numbers: list[int | None]) -> tuple[list[float], list[float]]:
    """Seconds between each window's planned start/end and the update that made it so."""
    starts: list[float] = []
    ends: list[float] = []
    with runtime.factory() as session:
        for number in numbers:
            assert number is not None
            m = incidents.get(session, number=number)
            assert m is not None and m.scheduled_for and m.scheduled_until
            for update in m.updates:
                if update.status == "in_progress":
                    starts.append((update.created_at - m.scheduled_for).total_seconds())
                if update.status == "completed":
                    ends.append((update.created_at - m.scheduled_until).total_seconds())
    return starts, ends


if __name__ == "__main__":
    sys.exit(main())
