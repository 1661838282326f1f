"""Benchmark: render a large status page, fully and incrementally, and the demo page's size.

    python bench/render.py [--database sqlite|postgresql|URL] [--runs 9] [--full-runs 5]
                           [--workdir DIR] [--keep DIR]

Builds a page with 50 components in 10 groups and 5 years of history: 2,000
incidents and maintenances, 10,000 updates, 50,000 component status changes,
and 3 metrics with a point a minute for 90 days, in a temporary SQLite database
(`--database sqlite`, the default) or in a schema of its own, dropped
afterwards, on a PostgreSQL server (`--database postgresql` uses
TEST_DATABASE_URL's; or give a postgresql:// URL). The data is written by a
child process with bulk inserts, so the peak memory measured here is the
render's. It prints, each with its spread (min, median, max over the runs):

- `statusbot render` into an empty directory, the whole process from start to
  exit (imports, schema check, snapshot, render, write), wall and CPU time;
- one incremental publish after one new update, and after an update that also
  changes a component's state (median of --runs each, with min and max);
- the peak memory, and the demo page's index.html size raw and gzipped;
- what creating one file costs in the working directory's file system, before
  the renders: on this development VM's disk it has ranged from 25 us to 0.8 ms
  of kernel time from one hour to the next, which is 0.05 to 1.6 s of a render
  of 2,016 files into an empty directory, so the figures compare only beside it.

The machine's load average is printed with the figures: they are only
comparable between runs at a similar load. The temporary files go under
--workdir (default: `.bench/` in the repository; `--workdir /dev/shm` measures
the renderer without the disk). Before timing `statusbot render`, the project's
modules are compiled to bytecode, as `pip install` does: an environment with
PYTHONDONTWRITEBYTECODE would otherwise compile every module from source in
every run.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from bench.machine import describe
from bot.publish import Publisher, Report
from bot.runtime import Runtime
from bot.settings import Settings
from storage import migrate
from storage.db import make_engine
from storage.models import (
    AffectedComponent,
    Component,
    ComponentChange,
    Counter,
    Group,
    Incident,
    IncidentUpdate,
    Metric,
    MetricPoint,
    StatusChange,
)
from storage.rules import impact_for

NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
YEARS = 5
GROUPS = 10
PER_GROUP = 5
INCIDENTS = 2_000
UPDATES_PER_INCIDENT = 5
STATUS_CHANGES = 50_000
METRICS = 3
METRIC_DAYS = 90
BATCH = 10_000

TARGETS = {
    "full": 1.0,  # `statusbot render`, the whole process, into an empty directory
    "incremental": 0.030,  # median, after one update
    "incremental_component": 0.050,  # median, after an update that changes a component
    "rss_mb": 300,
    "index_kb": 30,
    "index_gz_kb": 8,
}
ROOT = Path(__file__).resolve().parent.parent
PAGE_ENV = {
    "STATUSBOT_PAGE_NAME": "Benchmark",
    "STATUSBOT_PAGE_URL": "https://status.example.com",
    "STATUSBOT_TIMEZONE": "Australia/Sydney",
}

DOWN = ["degraded_performance", "partial_outage", "major_outage"]
BODY = (
    "We are investigating **elevated error rates** on {name}. Requests may fail or take longer "
    "than usual.\n\n- Affected: {name}\n- Started: about {minutes} minutes ago\n\nWe will post "
    "another update within the hour. See [our docs](https://example.com/docs) for retries."
)
CODES = "abcdefghijklmnopqrstuvwxyz0123456789"


# --- Generating the large page ----------------------------------------------------------------


def code(rng: random.Random) -> str:
    return "".join(rng.choices(CODES, k=12))


def generate(url: str) -> None:
    """Fill an empty database with the large page (run in a child process)."""
    rng = random.Random(2017)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        if session.scalar(select(func.count()).select_from(Component)):
            raise SystemExit(f"{url} already has components; the benchmark needs an empty one.")
        start = NOW - timedelta(days=365 * YEARS)
        groups, components = _components(rng, start)
        ids = [c["id"] for c in components]
        incidents, updates, changes, affected, history = _incidents(rng, ids, start)
        history += _manual_history(rng, ids, start, STATUS_CHANGES - len(history))
        _chain(history, components)
        for table, rows in (
            (Group, groups),
            (Component, components),
            (Incident, incidents),
            (IncidentUpdate, updates),
            (ComponentChange, changes),
            (AffectedComponent, affected),
            (StatusChange, history),
        ):
            for batch in _batches(rows):
                session.execute(insert(table), batch)
        session.execute(insert(Counter), [{"name": "incident", "value": len(incidents)}])
        _metrics(session, rng)
        _fix_sequences(session)
    engine.dispose()


def _components(
    rng: random.Random, start: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    groups = []
    components = []
    for g in range(GROUPS):
        groups.append(
            {
                "id": g + 1,
                "code": code(rng),
                "name": f"Region {g + 1}",
                "name_key": f"region {g + 1}",
                "description": None,
                "position": g + 1,
                "created_at": start,
                "updated_at": start,
            }
        )
        for k in range(PER_GROUP):
            cid = g * PER_GROUP + k + 1
            name = f"Service {g + 1}.{k + 1}"
            components.append(
                {
                    "id": cid,
                    "code": code(rng),
                    "name": name,
                    "name_key": name.lower(),
                    "description": f"What {name} does for customers, in one sentence.",
                    "position": k + 1,
                    "group_id": g + 1,
                    "showcase": True,
                    "only_show_if_degraded": False,
                    "start_date": start.date(),
                    "status": "operational",
                    "created_at": start,
                    "updated_at": start,
                }
            )
    return groups, components


def _incidents(
    rng: random.Random, ids: list[int], start: datetime
) -> tuple[list[dict[str, Any]], ...]:
    incidents: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    affected: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    span = (NOW - start - timedelta(days=2)).total_seconds()
    update_id = 0
    for n in range(1, INCIDENTS + 1):
        opened = start + timedelta(seconds=span * (n - 1) / INCIDENTS + rng.uniform(0, 3600))
        maintenance = n % 10 == 0
        still_open = n > INCIDENTS - 2
        upcoming = maintenance and n == INCIDENTS - 10
        hit = rng.sample(ids, rng.randint(1, 3))
        state = rng.choice(DOWN)
        length = timedelta(minutes=rng.randint(30, 360))
        closed = opened + length
        if maintenance:
            flow = ["scheduled", "in_progress", "in_progress", "verifying", "completed"]
            if upcoming:
                opened = NOW - timedelta(days=1)
                flow = ["scheduled"] * UPDATES_PER_INCIDENT
            status = flow[-1]
        else:
            flow = ["investigating", "identified", "identified", "monitoring", "resolved"]
            if still_open:
                opened = NOW - timedelta(hours=3 - n + INCIDENTS - 2)
                closed = NOW
                flow = ["investigating", "identified", "identified", "identified", "identified"]
            status = flow[-1]
        times = [opened + length * k / (UPDATES_PER_INCIDENT - 1) for k in range(len(flow))]
        if still_open:
            times = [opened + (NOW - opened) * k / 6 for k in range(len(flow))]
        done = status in ("resolved", "completed")
        incidents.append(
            {
                "id": n,
                "number": n,
                "kind": "maintenance" if maintenance else "incident",
                "title": f"{'Maintenance of' if maintenance else 'Errors on'} Service {hit[0]}",
                "status": status,
                "impact": "maintenance" if maintenance else impact_for([state]).value,
                "impact_override": False,
                "created_by": "U0BENCH",
                "created_at": opened,
                "updated_at": times[-1],
                "started_at": opened,
                "monitoring_at": times[3] if not maintenance and done else None,
                "resolved_at": times[-1] if done else None,
                "scheduled_for": (opened + timedelta(days=7) if upcoming else opened)
                if maintenance
                else None,
                "scheduled_until": (opened + timedelta(days=7, hours=2) if upcoming else closed)
                if maintenance
                else None,
                "auto": True,
            }
        )
        for cid in hit:
            affected.append({"incident_id": n, "component_id": cid})
        for k, (at, step) in enumerate(zip(times, flow, strict=True)):
            update_id += 1
            updates.append(
                {
                    "id": update_id,
                    "code": code(rng),
                    "incident_id": n,
                    "status": step,
                    "body": BODY.format(name=f"Service {hit[0]}", minutes=10 + 17 * k),
                    "author": "U0BENCH",
                    "display_at": at,
                    "created_at": at,
                    "updated_at": at,
                    "deliver_notifications": True,
                }
            )
            if maintenance or upcoming:
                continue
            first, last = k == 0, k == len(flow) - 1 and done
            for cid in hit if first or last else ():
                new = state if first else "operational"
                old = "operational" if first else state
                changes.append(
                    {
                        "update_id": update_id,
                        "component_id": cid,
                        "old_status": old,
                        "new_status": new,
                    }
                )
                history.append(
                    {
                        "component_id": cid,
                        "at": at,
                        "status": new,
                        "cause": "incident",
                        "incident_id": n,
                        "actor": "U0BENCH",
                    }
                )
    return incidents, updates, changes, affected, history


def _manual_history(
    rng: random.Random, ids: list[int], start: datetime, count: int
) -> list[dict[str, Any]]:
    rows = []
    span = (NOW - start - timedelta(days=1)).total_seconds()
    for _ in range(count // 2):
        cid = rng.choice(ids)
        at = start + timedelta(seconds=rng.uniform(0, span))
        back = at + timedelta(minutes=rng.randint(5, 90))
        for when, status in ((at, rng.choice(DOWN)), (back, "operational")):
            rows.append(
                {
                    "component_id": cid,
                    "at": when,
                    "status": status,
                    "cause": "manual",
                    "incident_id": None,
                    "actor": "U0BENCH",
                }
            )
    return rows


def _chain(history: list[dict[str, Any]], components: list[dict[str, Any]]) -> None:
    """Order each component's history and link old_status; the last status is its status now."""
    history.sort(key=lambda r: (r["component_id"], r["at"]))
    last: dict[int, str] = {}
    for row in history:
        row["old_status"] = last.get(row["component_id"], "operational")
        last[row["component_id"]] = row["status"]
    for c in components:
        c["status"] = last.get(c["id"], "operational")
    history.sort(key=lambda r: r["at"])


def _metrics(session: Session, rng: random.Random) -> None:
    names = ["API Response Times", "Queue Latency", "Error Rate"]
    units = ["ms", "ms", "%"]
    session.execute(
        insert(Metric),
        [
            {
                "id": m + 1,
                "code": code(rng),
                "name": names[m],
                "name_key": names[m].lower(),
                "unit": units[m],
                "description": None,
                "position": m + 1,
                "created_at": NOW,
            }
            for m in range(METRICS)
        ],
    )
    minutes = METRIC_DAYS * 24 * 60
    first = NOW - timedelta(minutes=minutes - 1)

    def points(metric_id: int) -> Iterator[dict[str, Any]]:
        level = 80.0 * metric_id
        for k in range(minutes):
            level += rng.gauss(0, 1) - (level - 80.0 * metric_id) * 0.05
            yield {"metric_id": metric_id, "at": first + timedelta(minutes=k), "value": level}

    for m in range(METRICS):
        for batch in _batches(points(m + 1)):
            session.execute(insert(MetricPoint), batch)


def _batches(rows: Any) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _fix_sequences(session: Session) -> None:
    """PostgreSQL: move each id sequence past the ids written explicitly."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in (
        "component_groups",
        "components",
        "incidents",
        "incident_updates",
        "update_component_changes",
        "affected_components",
        "component_status_history",
        "metrics",
        "metric_points",
    ):
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        )


# --- Measuring ----------------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def split(report: Report) -> str:
    return (
        f"{report.seconds:.3f} s  (snapshot {report.snapshot_seconds:.3f}, render "
        f"{report.render_seconds:.3f}, write {report.write_seconds:.3f}; "
        f"{report.rendered:,} files, {len(report.written):,} written)"
    )


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER TARGET"


def spread(values: list[float], scale: float = 1.0, unit: str = "s", digits: int = 2) -> str:
    """'0.81 s (min 0.78, max 0.95)'."""
    low, mid, high = (
        f"{v * scale:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )
    return f"{mid} {unit} (min {low}, max {high})"


def measure_process(url: str, workdir: Path, runs: int) -> None:
    """`statusbot render` into an empty directory, start to exit, `runs` times; and of
    that, what is not the publish it reports (interpreter, imports, settings, schema
    check, exit): the start-up a full render pays that an in-process one does not."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STATUSBOT_", "SLACK_"))},
        **PAGE_ENV,
        "DATABASE_URL": url,
        "STATUSBOT_NOW": NOW.isoformat(),
        "PYTHONPATH": str(ROOT),
    }
    # As installed: bytecode compiled once, not in each process.
    packages = [str(ROOT / name) for name in ("bot", "commands", "renderers", "storage")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
    walls: list[float] = []
    cpus: list[float] = []
    overheads: list[float] = []
    for k in range(runs):
        page = workdir / f"process-{k}"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "render"],
            env={**env, "STATUSBOT_PAGE_DIR": str(page)},
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert done.returncode == 0, done.stderr
        files = sum(1 for p in page.rglob("*") if p.is_file())
        # Its last line: "Rendered 2,016 files in 1.09 s (snapshot …": the publish's own time.
        published = re.search(r"files in ([\d.]+) s", done.stdout.splitlines()[-1])
        if published:
            overheads.append(walls[-1] - float(published.group(1)))
    median = statistics.median(walls)
    print(
        f"`statusbot render`, whole process, empty directory ({files:,} files), {runs} runs: "
        f"{spread(walls)} wall, {spread(cpus)} CPU"
        f"  -> {verdict(median, TARGETS['full'])} (target ≤ {TARGETS['full']} s wall)"
    )
    if overheads:
        print(
            f"  of which start-up and exit (wall less the publish it reports): {spread(overheads)}"
        )


def measure_large(url: str, root: Path, runs: int) -> None:
    settings = Settings(
        database_url=url,
        page_dir=root,
        page_name=PAGE_ENV["STATUSBOT_PAGE_NAME"],
        page_url=PAGE_ENV["STATUSBOT_PAGE_URL"],
        timezone=PAGE_ENV["STATUSBOT_TIMEZONE"],
    )
    clock = Clock()
    engine = make_engine(url)
    runtime = Runtime(settings, engine=engine, clock=clock)
    rss_before = peak_rss_mb()

    publisher = Publisher(runtime)
    first = publisher.publish_all()
    assert first is not None, "the full render failed"
    again = Publisher(runtime).publish_all()
    assert again is not None
    other = Publisher(runtime, root=root.with_name(root.name + "-2")).publish_all()
    assert other is not None
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"in-process full render, empty directory:     {split(first)}")
    print(f"in-process full render, unchanged directory: {split(again)}")
    print(f"in-process full render, a 2nd empty directory: {split(other)}; {total / 1e6:.1f} MB")

    open_number = _open_incident(engine)
    plain = _incremental(
        runtime,
        publisher,
        clock,
        runs,
        f"/incident update {open_number} -- Still working on it: {{k}}.",
    )
    print(
        f"incremental publish after one update, {runs} runs: {spread(plain, 1000, 'ms', 1)}"
        f"  -> {verdict(statistics.median(plain), TARGETS['incremental'])} "
        f"(target ≤ {TARGETS['incremental'] * 1000:.0f} ms median)"
    )
    states = ["partial", "major"]
    moved = _incremental(
        runtime,
        publisher,
        clock,
        runs,
        f"/incident update {open_number} --components Service 1.1={{state}} -- Now {{state}}.",
        states=states,
    )
    target = TARGETS["incremental_component"]
    print(
        f"incremental publish after an update that changes a component, {runs} runs: "
        f"{spread(moved, 1000, 'ms', 1)}  -> {verdict(statistics.median(moved), target)} "
        f"(target ≤ {target * 1000:.0f} ms median)"
    )

    renderer_split(publisher)
    rss = peak_rss_mb()
    print(
        f"peak RSS: {rss:.0f} MB (before rendering: {rss_before:.0f} MB)"
        f"  -> {verdict(rss, TARGETS['rss_mb'])} (target ≤ {TARGETS['rss_mb']} MB)"
    )
    tracemalloc.start()
    traced = Publisher(runtime, root=root).publish_all()
    assert traced is not None
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"tracemalloc peak of one full render: {peak / 1e6:.0f} MB of Python objects")
    engine.dispose()


def renderer_split(publisher: Publisher) -> None:
    """How long each renderer takes on the large page's latest snapshot (median of 5)."""
    from renderers.badge import render_badge
    from renderers.calendar import render_calendar
    from renderers.feeds import render_feeds
    from renderers.html import render_html
    from renderers.statuspage import render_api

    snapshot = publisher.last_snapshot
    assert snapshot is not None
    number = snapshot.incidents[0].number
    parts: dict[str, Any] = {
        "html: index + history": lambda: render_html(snapshot, incidents=()),
        "html: the same + one incident page": lambda: render_html(snapshot, incidents={number}),
        "Statuspage JSON": lambda: render_api(snapshot),
        "feeds": lambda: render_feeds(snapshot),
        "calendar": lambda: render_calendar(snapshot),
        "badge": lambda: render_badge(snapshot),
    }
    shown = []
    for name, render in parts.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            render()
            times.append(time.perf_counter() - started)
        shown.append(f"{name} {statistics.median(times) * 1000:.1f}")
    print("  render per renderer, ms (incremental scope): " + ", ".join(shown))


def _open_incident(engine: Engine) -> int:
    with engine.connect() as conn:
        number = conn.scalar(
            select(func.max(Incident.number)).where(
                Incident.kind == "incident", Incident.status != "resolved"
            )
        )
    assert number is not None
    return int(number)


def _incremental(
    runtime: Runtime,
    publisher: Publisher,
    clock: Clock,
    runs: int,
    line: str,
    states: list[str] | None = None,
) -> list[float]:
    times = []
    reports: list[Report] = []
    for k in range(runs):
        clock.now += timedelta(minutes=1)
        state = states[k % len(states)] if states else ""
        result = runtime.run_line(line.format(k=k, state=state), user="U0BENCH")
        assert result.ok, result.reply
        started = time.perf_counter()
        report = publisher.publish(dirty={result.number} if result.number else ())
        times.append(time.perf_counter() - started)
        assert report is not None
        reports.append(report)
    snap, render, write = (
        statistics.median(getattr(r, f"{part}_seconds") for r in reports) * 1000
        for part in ("snapshot", "render", "write")
    )
    written = statistics.median(len(r.written) for r in reports)
    rendered = statistics.median(r.rendered for r in reports)
    everything = sum(r.full for r in reports)
    print(
        f"  median split: snapshot {snap:.1f} ms, render {render:.1f} ms, write {write:.1f} ms; "
        f"{rendered:.0f} files rendered, {written:.0f} written"
        + (f"; {everything} of {len(reports)} rendered every page" if everything else "")
    )
    return times


def measure_demo() -> None:
    from bot.demo import load_demo

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "public"
        settings = Settings(
            database_url=f"sqlite:///{tmp}/demo.db",
            page_dir=root,
            page_name="Vero",
            page_url="https://status.example.com",
            timezone="Australia/Sydney",
            support_email="support@example.com",
        )
        runtime = Runtime(settings, clock=Clock())
        runtime.ensure_schema()
        load_demo(runtime)
        report = Publisher(runtime).publish_all()
        assert report is not None
        index = (root / "index.html").read_bytes()
        packed = len(gzip.compress(index, compresslevel=9))
        print(
            f"demo page index.html: {len(index) / 1024:.1f} KB raw, {packed / 1024:.1f} KB "
            f"gzipped  -> {verdict(len(index) / 1024, TARGETS['index_kb'])} / "
            f"{verdict(packed / 1024, TARGETS['index_gz_kb'])} (targets ≤ "
            f"{TARGETS['index_kb']} KB, ≤ {TARGETS['index_gz_kb']} KB)"
        )
        runtime.engine.dispose()


def scratch_database(choice: str) -> tuple[str, str | None]:
    """The URL to fill for `--database`, and a PostgreSQL schema to drop afterwards."""
    if choice in ("postgresql", "postgres"):
        server = os.environ.get("TEST_DATABASE_URL")
        if not server:
            raise SystemExit("--database postgresql needs TEST_DATABASE_URL (a server to use).")
    elif choice.startswith("postgresql"):
        server = choice
    else:
        return choice, None
    # A schema of its own, as the tests do: whatever else the server holds is left alone.
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = make_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in server else "?"
    return f"{server}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(choice: str, schema: str) -> None:
    server = os.environ["TEST_DATABASE_URL"] if not choice.startswith("postgresql:") else choice
    engine = make_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def file_creation(workdir: Path, count: int = 500) -> str:
    """What creating a file costs in `workdir`'s file system (a 6 KB file, written and
    renamed into place as the page's writer does): a render into an empty directory
    pays it 2,016 times, and it is the kernel's, not the renderer's."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(count):
        staged = folder / f"{n}.html.tmp"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * 6000)
        os.close(fd)
        os.replace(staged, folder / f"{n}.html")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    shutil.rmtree(folder)
    return (
        f"creating a file here: {wall / count * 1e6:.0f} us wall, {cpu / count * 1e6:.0f} us CPU "
        f"(x 2,016 files = {wall / count * 2016:.2f} s of a render into an empty directory)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        "--database-url",
        default="sqlite",
        help="sqlite (a temporary file, the default), postgresql (TEST_DATABASE_URL's server, "
        "in a scratch schema), or a URL: an empty SQLite file or a PostgreSQL server",
    )
    parser.add_argument("--runs", type=int, default=9, help="incremental publishes to time")
    parser.add_argument("--full-runs", type=int, default=5, help="`statusbot render` runs to time")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=ROOT / ".bench",
        help="where the temporary files go (default: .bench/ in the repository)",
    )
    parser.add_argument("--keep", type=Path, help="render into this directory and keep it")
    parser.add_argument("--generate", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.generate:
        generate(args.generate)
        return 0

    print(f"before: {describe().strip()}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if args.database == "sqlite":
            url, schema = f"sqlite:///{tmp}/bench.db", None
        else:
            url, schema = scratch_database(args.database)
        try:
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--generate", url], check=True)
            # Let the disk absorb the generator's writes, so they don't land on the render's bill.
            os.sync()
            print(
                f"large page on {url.split(':', 1)[0]}: {GROUPS * PER_GROUP} components in "
                f"{GROUPS} groups, {INCIDENTS:,} incidents, {INCIDENTS * UPDATES_PER_INCIDENT:,} "
                f"updates, {STATUS_CHANGES:,} status changes, {METRICS} metrics × "
                f"{METRIC_DAYS * 1440:,} points (written in {time.perf_counter() - started:.1f} s)"
            )
            print(file_creation(Path(tmp)))
            measure_process(url, Path(tmp), args.full_runs)
            root = args.keep or Path(tmp) / "public"
            measure_large(url, root, args.runs)
        finally:
            if schema is not None:
                drop_schema(args.database, schema)
    measure_demo()
    print(f"after: {describe().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
