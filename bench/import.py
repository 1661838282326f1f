"""Benchmark: `statusbot import statuspage` of 1,000 incidents from a local server.

    python bench/import.py [--database-url URL] [--incidents 1000]

Serves a Statuspage stand-in on 127.0.0.1 (tests/statuspage_server.py): once as a
page's public v2 files holding every incident in incidents.json, once as the v1
manage API paging through them 100 at a time (Statuspage's largest page). Each is
imported by the real program (a subprocess) into a fresh database (a temporary
SQLite file unless --database-url names a PostgreSQL server, where a schema of its
own is made and dropped), then imported again (the idempotent second run).

It prints, per source, the seconds the program took end to end (start-up, reading,
the one transaction, the page's render), the seconds of reading and writing it
reports itself, and the requests made. The v1 runs are not held to Statuspage's
one request a second (--requests-per-second 1000): at that limit, reading adds
about one second per request, which the line says.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ack import database  # noqa: E402
from tests.statuspage_server import (  # noqa: E402
    API_KEY,
    PAGE_ID,
    Server,
    Statuspage,
    load,
    v1_incidents,
    v1_state,
    v2_files,
)

NOW = "2030-01-01T00:00:00+00:00"  # after every generated incident


def run(url: str, workdir: Path, *args: str) -> tuple[float, float, str]:
    """(wall seconds, the seconds the program reports, its output) of one import."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "STATUSBOT_PAGE_DIR": str(workdir / "public"),
        "STATUSBOT_NOW": NOW,
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "import", "statuspage", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed:\n{done.stderr}\n{done.stdout}")
    said = re.search(r" in ([\d.]+) s:", done.stdout)
    return wall, float(said.group(1)) if said else float("nan"), done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL to import into (default SQLite)")
    parser.add_argument("--incidents", type=int, default=1000)
    args = parser.parse_args()
    incidents = v1_incidents(args.incidents)
    page = load("v1/page.json")
    files = v2_files()
    files["/api/v2/incidents.json"] = json.dumps(
        {"page": {"id": PAGE_ID, "name": page["name"]}, "incidents": incidents}
    ).encode()
    files.pop("/api/v2/scheduled-maintenances.json")
    v1 = v1_state(incidents=args.incidents)
    v1.max_per_page = 100  # as Statuspage
    print(f"Importing {args.incidents:,} incidents ({2 * args.incidents:,} updates) per run.")
    for label, state, make_args in (
        ("v2 public files", Statuspage(files=files), lambda s: (s.url,)),
        (
            "v1 manage API",
            v1,
            lambda s: (
                "--api-key",
                API_KEY,
                "--page-id",
                PAGE_ID,
                "--api-url",
                s.url + "/v1",
                "--requests-per-second",
                "1000",
            ),
        ),
    ):
        with (
            tempfile.TemporaryDirectory() as tmp,
            database(args.database_url, Path(tmp)) as url,
            Server(state) as server,
        ):
            for attempt in ("first run", "second run"):
                before = len(state.seen)
                wall, said, out = run(url, Path(tmp), *make_args(server))
                requests = len(state.seen) - before
                added = re.search(r"incidents: ([\d,]+) added", out)
                print(
                    f"{label}, {attempt}: {wall:.1f} s end to end, {said:.1f} s reading "
                    f"and writing, {requests:,} requests, incidents added "
                    f"{added.group(1) if added else '?'}"
                    + (
                        f" (at Statuspage's 1 request/s reading would take ~{requests} s more)"
                        if label.startswith("v1")
                        else ""
                    )
                )


if __name__ == "__main__":
    main()
