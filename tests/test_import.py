"""`statusbot import statuspage` (SPEC §11) through the real program, against a Statuspage
stand-in on localhost (tests/statuspage_server.py), on every configured database.

The fixtures (tests/data/statuspage/) are shaped as real Statuspage payloads, with the
mess real pages have: null affected_components, components only inside incidents,
group-prefixed names, unknown statuses, nulls, HTML and control characters.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import html5lib
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bot.cli import main
from storage import incidents as incident_store
from storage.imports import IMPORT_ACTOR
from storage.models import (
    AuditEvent,
    Component,
    Group,
    Incident,
    IncidentUpdate,
    OutboxEntry,
    Postmortem,
    StatusChange,
    StatuspageId,
    Subscriber,
    Template,
)
from storage.rules import ComponentStatus
from storage.uptime import daily_uptime
from tests.conftest import T0, FakeClock, drop_schema, make_test_engine
from tests.helpers import ROOT, Program, dump
from tests.statuspage_server import (
    API_KEY,
    PAGE_ID,
    Server,
    Statuspage,
    v1_state,
    v2_files,
)
from tests.test_v1_api import Api, api  # noqa: F401 (the fixture)

NOW = "2026-06-10T10:00:00+00:00"
WEBSITE = "Website <script>alert(1)"
V2_FILES = ("summary.json", "components.json", "incidents.json", "scheduled-maintenances.json")


class Cli(Program):
    """The program's own entry (bot.cli.main) with real argv, in this process: as the
    subprocess sees it, without the start-up time of one per call."""

    def __init__(self, url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(
            url,
            workdir,
            STATUSBOT_NOW=NOW,
            STATUSBOT_NOTIFY_CHANNELS="C0INCIDENTS",
            STATUSBOT_WEBHOOK_ALLOW_PRIVATE="1",
            STATUSBOT_PAGE_URL="https://status.example.com",
        )
        self.monkeypatch = monkeypatch

    def __call__(  # type: ignore[override]
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        out, err = io.StringIO(), io.StringIO()
        with self.monkeypatch.context() as patch:
            for name, value in {**self.env, **(env or {})}.items():
                patch.setenv(name, value)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exit:  # argparse's own errors
                    code = int(exit.code or 0)
        return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture
def program(empty_db: tuple[Engine, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    prog = Cli(empty_db[1], tmp_path, monkeypatch)
    done = prog("db", "upgrade")
    assert done.returncode == 0, done.stderr
    return prog


def imported(program: Program, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an import, insisting it finished with a summary and without a traceback."""
    done = program("import", "statuspage", *args)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def v1_args(server: Server, key: str = API_KEY) -> tuple[str, ...]:
    """The arguments that import the stand-in's v1 API, fast (its limit is the test's)."""
    return (
        "--api-key",
        key,
        "--page-id",
        PAGE_ID,
        "--api-url",
        server.url + "/v1",
        "--requests-per-second",
        "50",
    )


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {
            model.__tablename__: s.scalar(select(func.count()).select_from(model)) or 0
            for model in (
                Group,
                Component,
                Incident,
                IncidentUpdate,
                StatusChange,
                Subscriber,
                StatuspageId,
            )
        }


def test_public_page_with_its_mess(program: Program, empty_db: tuple[Engine, str]) -> None:
    engine = empty_db[0]
    with Server(Statuspage(files=v2_files())) as server:
        done = imported(program, server.url)
    out = done.stdout
    assert "groups: 1 added" in out
    assert "components: 5 added" in out  # four listed, one met only inside an incident
    assert "incidents: 3 added" in out and "maintenances: 1 added" in out
    assert "updates: 9 added" in out
    # Each kind of mess is reported by name.
    for case in (
        "updates with affected_components: null",
        "components only inside incidents",
        "group-prefixed component names",
        "unknown component statuses",
        "incidents in status postmortem",
        "unknown statuses",
        "unknown update statuses",
        "unknown impacts",
        "with control characters",
        "start dates that are not dates",
    ):
        assert case in out, case
    assert f"Rendered the page into {program.workdir / 'public'}/" in out

    with Session(engine) as s:
        live = {c.name: c for c in s.scalars(select(Component)) if c.removed_at is None}
        assert sorted(live) == ["API", "Deposit", WEBSITE, "Withdraw"]
        assert live["Deposit"].group is not None
        assert live["Deposit"].group.name == "Deposit And Withdraw"
        assert live["Deposit"].status == "degraded_performance"
        assert live["Withdraw"].status == "operational"  # "flapping" is not a status
        assert live[WEBSITE].description == "exchange.example and the apps"
        # Statuspage's ids are kept as our public ids where they fit.
        assert live["API"].code == "b13yz5g2cw10"
        legacy = s.scalars(
            select(Component).where(Component.name == "Legacy Matching Engine")
        ).one()
        assert legacy.removed_at is not None  # kept with its history, off the page

        by_title = {i.title: i for i in s.scalars(select(Incident))}
        halted = incident_store.get(s, number=by_title["Order matching halted"].number)
        assert halted is not None
        assert halted.status == "resolved" and halted.impact == "critical"
        assert [u.status for u in halted.updates] == ["investigating", "resolved", "resolved"]
        assert {a.component.name for a in halted.affected} == {"API", "Legacy Matching Engine"}
        login = by_title["Intermittent login errors"]  # the NUL is gone
        assert login.status == "resolved" and login.impact == "none"
        delayed = by_title["Delayed deposits"]
        assert delayed.status == "monitoring" and delayed.resolved_at is None
        maintenance = by_title["Wallet database upgrade"]
        assert maintenance.kind == "maintenance" and maintenance.status == "completed"
        assert maintenance.scheduled_for is not None

        # Uptime's history, from the updates' component changes.
        api_history = [
            (h.old_status, h.status, h.cause)
            for h in s.scalars(
                select(StatusChange)
                .where(StatusChange.component_id == live["API"].id)
                .order_by(StatusChange.at)
            )
        ]
        assert api_history == [
            ("operational", "partial_outage", "incident"),
            ("partial_outage", "operational", "incident"),
        ]
        # ... and the uptime that history gives: the API's partial outage of May 28.
        changes = [
            (h.at, ComponentStatus(h.status))
            for h in s.scalars(
                select(StatusChange).where(StatusChange.component_id == live["API"].id)
            )
        ]
        days = {
            d.day: d
            for d in daily_uptime(
                changes,
                initial=ComponentStatus.OPERATIONAL,
                start_date=live["API"].start_date,
                tz=UTC,
                now=datetime.fromisoformat(NOW),
                days=30,
            )
        }
        assert days[date(2026, 5, 28)].partial_seconds == pytest.approx(6610.891, abs=0.01)
        assert days[date(2026, 5, 27)].uptime == 1.0
        # Not announced anywhere; one audit event for the run.
        assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 0
        events = list(s.scalars(select(AuditEvent)))
        assert [(e.action, e.actor) for e in events] == [("statuspage.import", "cli")]
        assert all(h.actor == IMPORT_ACTOR for h in s.scalars(select(StatusChange)))

    # The HTML in a name is text on the page, never markup.
    page = (program.workdir / "public" / "index.html").read_text()
    tree = html5lib.parse(page, namespaceHTMLElements=False)
    assert not any("alert(1)" in (el.text or "") for el in tree.iter("script"))
    assert WEBSITE in "".join(tree.itertext())


def test_second_run_updates_nothing_and_duplicates_nothing(
    program: Program, empty_db: tuple[Engine, str]
) -> None:
    engine = empty_db[0]
    with Server(Statuspage(files=v2_files())) as server:
        imported(program, server.url)
        before = dump(engine, skip=("audit_events",))
        again = imported(program, server.url)
    assert dump(engine, skip=("audit_events",)) == before
    assert "incidents: 0 added, 0 updated, 3 unchanged" in again.stdout
    assert "updates: 0 added, 0 updated, 9 unchanged" in again.stdout


def test_a_changed_page_updates_in_place(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    engine = empty_db[0]
    files = v2_files()
    with Server(Statuspage(files=files)) as server:
        imported(program, server.url)
        first = counts(engine)
        page = json.loads(files["/api/v2/incidents.json"])
        delayed = page["incidents"][0]
        delayed["status"] = "resolved"
        delayed["resolved_at"] = "2026-06-09T19:00:00.000Z"
        delayed["incident_updates"].insert(
            0,
            {
                **delayed["incident_updates"][0],
                "id": "n3wr3s0lv3d1",
                "status": "resolved",
                "body": "Deposits are credited on time again.",
                "display_at": "2026-06-09T19:00:00.000Z",
                "created_at": "2026-06-09T19:00:00.000Z",
                "affected_components": [
                    {
                        "code": "d3p0s1tx9k2a",
                        "name": "Deposit And Withdraw - Deposit",
                        "old_status": "degraded_performance",
                        "new_status": "operational",
                    }
                ],
            },
        )
        files["/api/v2/incidents.json"] = json.dumps(page).encode()
        again = imported(program, server.url)
    assert "incidents: 0 added, 1 updated, 2 unchanged" in again.stdout
    after = counts(engine)
    assert after["incidents"] == first["incidents"]
    assert after["incident_updates"] == first["incident_updates"] + 1
    with Session(engine) as s:
        incident = s.scalars(select(Incident).where(Incident.title == "Delayed deposits")).one()
        assert incident.status == "resolved"


def test_v1_api_pages_through_everything_within_its_rate_limit(
    program: Program, empty_db: tuple[Engine, str]
) -> None:
    engine = empty_db[0]
    state = v1_state(incidents=60)
    # The second page of incidents is refused once, as Statuspage does past its limit.
    throttled = f"/v1/pages/{PAGE_ID}/incidents?page=2&per_page=100&limit=100"
    state.throttle[throttled] = "1"
    with Server(state) as server:
        done = imported(program, *v1_args(server))
    out = done.stdout
    assert "incidents: 60 added" in out
    assert "updates: 120 added" in out
    assert "subscribers: 2 added" in out
    assert "templates: 2 added, 0 updated, 0 unchanged" in out
    assert "postmortems: 60 added, 0 updated, 0 unchanged" in out
    assert "template names made one word (spaces as -)" in out
    assert "templates that resolve (statusbot's open: investigating)" in out
    assert "not imported" not in out
    assert "subscribers by sms" in out and "subscribers statusbot can't send to" in out

    incidents_seen = [r for r in state.seen if r.path.endswith("/incidents")]
    # 60 items at 25 a page: pages 1, 2 (refused, then again), 3, and an empty 4th.
    assert [(r.query["page"][0], r.status) for r in incidents_seen] == [
        ("1", 200),
        ("2", 429),
        ("2", 200),
        ("3", 200),
        ("4", 200),
    ]
    assert incidents_seen[2].at - incidents_seen[1].at >= 1.0  # waited as Retry-After said
    assert all(r.headers.get("Authorization") == f"OAuth {API_KEY}" for r in state.seen)

    with Session(engine) as s:
        subs = {x.email: x for x in s.scalars(select(Subscriber))}
        assert set(subs) == {"ops@customer.example", "hooks@customer.example"}
        assert all(x.confirmed_at is not None and x.source == "import" for x in subs.values())
        assert [c.name for c in subs["ops@customer.example"].components] == ["API"]
        assert (
            subs["hooks@customer.example"].endpoint == "https://hooks.customer.example/statuspage"
        )
        assert subs["ops@customer.example"].external_id == "5ub5cr1b3r01"
        assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 0  # no confirmations
        assert s.scalar(select(func.count()).select_from(Incident)) == 60
        # Templates, one word each, with the component the page's lists (its state given
        # by the page's component object, else major_outage) and the page's own id.
        templates = {t.name: t for t in s.scalars(select(Template))}
        assert set(templates) == {"API-errors", "Resolved"}
        api_errors = templates["API-errors"]
        assert api_errors.code == "t3mpl4t3a001" and api_errors.title == "Elevated API errors"
        assert (
            api_errors.status == "investigating" and templates["Resolved"].status == "investigating"
        )
        api = s.scalars(select(Component).where(Component.name == "API")).one()
        assert api_errors.components == [[api.id, "partial_outage"]]
        assert templates["Resolved"].components == []
        # Postmortems, published when the page published them, told to nobody now.
        postmortems = list(s.scalars(select(Postmortem)))
        assert len(postmortems) == 60
        first = s.scalars(
            select(Postmortem).join(Incident).where(Incident.title == "Elevated API errors 1")
        ).one()
        assert first.body == "## What happened\n\nA bad deploy."
        assert first.published_at == datetime(2025, 1, 3, 9, 0, tzinfo=UTC)
        assert first.body_updated_at == first.published_at and first.notified_at is None
        assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 0

    with Server(v1_state(incidents=60)) as server:
        again = imported(program, *v1_args(server))
    assert "incidents: 0 added, 0 updated, 60 unchanged" in again.stdout
    assert "subscribers: 0 added, 0 updated, 2 unchanged" in again.stdout
    assert "templates: 0 added, 0 updated, 2 unchanged" in again.stdout
    assert "postmortems: 0 added, 0 updated, 60 unchanged" in again.stdout
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Template)) == 2
        assert s.scalar(select(func.count()).select_from(Postmortem)) == 60


def test_a_server_asking_to_wait_too_long_stops_the_run_clearly(
    program: Program, empty_db: tuple[Engine, str]
) -> None:
    state = Statuspage(files=v2_files())
    state.throttle["/api/v2/summary.json"] = "600"
    before = dump(empty_db[0])
    with Server(state) as server:
        done = program("import", "statuspage", server.url)
    assert done.returncode == 2
    assert "asked to wait 600 s before reading summary.json" in done.stderr
    assert dump(empty_db[0]) == before


def test_a_wrong_api_key_is_refused_clearly(program: Program, empty_db: tuple[Engine, str]) -> None:
    before = dump(empty_db[0])
    with Server(v1_state(incidents=1)) as server:
        done = program("import", "statuspage", *v1_args(server, key="wrong"))
    assert done.returncode == 2
    assert "refused the API key (401)" in done.stderr
    assert "Traceback" not in done.stderr
    assert dump(empty_db[0]) == before


def test_a_failed_run_leaves_the_database_as_it_was(
    program: Program, empty_db: tuple[Engine, str], backend: str
) -> None:
    engine = empty_db[0]
    # A real database error half-way through the run: a trigger refuses one update's row.
    with engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON incident_updates "
                    "WHEN NEW.body LIKE '%monitoring the results%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.body LIKE '%monitoring the results%' THEN "
                    "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON incident_updates "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    before = dump(engine)
    with Server(Statuspage(files=v2_files())) as server:
        done = program("import", "statuspage", server.url)
    assert done.returncode == 2, done.stdout
    assert "nothing was written" in done.stderr
    assert "Traceback" not in done.stderr
    assert dump(engine) == before


def test_dry_run_shows_what_would_change_and_writes_nothing(
    program: Program, empty_db: tuple[Engine, str]
) -> None:
    before = dump(empty_db[0])
    with Server(Statuspage(files=v2_files())) as server:
        done = imported(program, server.url, "--dry-run")
    assert "Would import" in done.stdout
    assert "incidents: 3 added" in done.stdout
    assert "Dry run: nothing was written." in done.stdout
    assert dump(empty_db[0]) == before
    assert not (program.workdir / "public" / "index.html").exists()


def test_from_a_directory_of_saved_files(program: Program, empty_db: tuple[Engine, str]) -> None:
    source = Path(__file__).parent / "data" / "statuspage" / "v2"
    done = imported(program, "--from", str(source))
    assert "incidents: 3 added" in done.stdout
    assert counts(empty_db[0])["components"] == 5


def _bad(tmp: Path, name: str, body: bytes) -> Path:
    folder = tmp / "bad"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(body)
    return folder


@pytest.mark.parametrize(
    ("name", "body", "said"),
    [
        ("summary.json", b"<!doctype html><html><body>Status</body></html>", "looks like HTML"),
        ("summary.json", b"{" * 10 + b"}" * 10, "is not JSON"),
        ("incidents.json", b"[" * 100_000 + b"]" * 100_000, "nests 33 levels deep"),
        ("components.json", b'"just a string"', "holds str, not a Statuspage object"),
        ("summary.json", b"\xff\xfe\x00{", "is not UTF-8 text"),
    ],
    ids=["html", "not-json", "deep", "wrong-type", "not-utf8"],
)
def test_bad_files_get_a_clear_message(
    program: Program,
    empty_db: tuple[Engine, str],
    tmp_path: Path,
    name: str,
    body: bytes,
    said: str,
) -> None:
    before = dump(empty_db[0])
    done = program("import", "statuspage", "--from", str(_bad(tmp_path, name, body)))
    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert dump(empty_db[0]) == before


def test_a_huge_file_is_refused_before_it_is_read(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    folder = _bad(tmp_path, "incidents.json", b"")
    with open(folder / "incidents.json", "r+b") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: no time spent writing it
    done = program("import", "statuspage", "--from", str(folder))
    assert done.returncode == 2
    assert "an import reads at most 64 MiB per file" in done.stderr


def test_wrong_types_everywhere_are_skipped_by_name(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    page = {
        "page": {"id": 7, "name": ["x"], "url": None},
        "components": [
            "nope",
            {"id": "c1", "name": "API", "status": 3, "position": "first"},
            {"id": None, "name": None},
        ],
        "incidents": [
            12,
            {"id": "i1", "name": {"x": 1}, "status": None, "incident_updates": "nope"},
            {
                "id": "i2",
                "name": "Broken",
                "status": "resolved",
                "created_at": "yesterday",
                "incident_updates": [
                    None,
                    {"id": "u1", "status": 5, "body": ["x"], "display_at": 12345},
                    {
                        "id": "u2",
                        "status": "resolved",
                        "display_at": "2026-06-01T00:00:00Z",
                        "affected_components": "all of them",
                    },
                ],
            },
        ],
    }
    folder = _bad(tmp_path, "summary.json", json.dumps(page).encode())
    done = imported(program, "--from", str(folder))
    out = done.stdout
    assert "component entries that are not objects (skipped)" in out
    assert "components without an id or a name (skipped)" in out
    assert "incident entries that are not objects (skipped)" in out
    assert "affected_components that are not lists (ignored)" in out
    assert "incidents: 2 added" in out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((), "Give one source"),
        (("https://a.example", "--from", "x"), "Give one source"),
        (("--page-id", "abc"), "--page-id needs --api-key"),
        (("--api-key", "k"), "--api-key needs --page-id"),
        (("ftp://a.example",), "is not a page's address; give it as https://"),
        (("--from", "/nonexistent/dir"), "is not a directory"),
        (("--from", ".", "--requests-per-second", "0"), "must be above 0"),
    ],
)
def test_wrong_arguments_say_how_to_do_it_right(
    program: Program, args: tuple[str, ...], said: str
) -> None:
    done = program("import", "statuspage", *args, env={"STATUSPAGE_API_KEY": ""})
    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        "/" + str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_round_trip_a_statusbot_page_into_an_empty_statusbot(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    # The source: the example page, rendered by another statusbot on SQLite.
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    source = Program(f"sqlite:///{source_dir / 'source.db'}", source_dir, STATUSBOT_NOW=NOW)
    made = source("demo")
    assert made.returncode == 0, made.stderr
    with Server(Statuspage(files=_tree(source_dir / "public"))) as server:
        imported(program, server.url + "/")
    theirs = source_dir / "public" / "api" / "v2"
    ours = program.workdir / "public" / "api" / "v2"
    for name in V2_FILES:
        a, b = json.loads((theirs / name).read_text()), json.loads((ours / name).read_text())
        a["page"].pop("id"), b["page"].pop("id")  # each statusbot names its own page
        assert _without_page_ids(a) == _without_page_ids(b), name


def _without_page_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_page_ids(v)
            for k, v in value.items()
            if k not in ("page_id", "url", "shortlink")
        }
    if isinstance(value, list):
        return [_without_page_ids(v) for v in value]
    return value


def test_a_terminal_gets_a_progress_bar(program: Program, empty_db: tuple[Engine, str]) -> None:
    source = Path(__file__).parent / "data" / "statuspage" / "v2"
    controller, terminal = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "import", "statuspage", "--from", str(source)],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**program.env, "TERM": "xterm", "COLUMNS": "100", "PYTHONPATH": str(ROOT)},
        cwd=program.workdir,
    )
    os.close(terminal)
    shown = b""
    try:
        while True:  # read as it draws, or a full terminal would stop it
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            shown += chunk
        stdout = child.communicate(timeout=120)[0]
    finally:
        os.close(controller)
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0
    screen = shown.decode(errors="replace")
    assert "importing incidents" in screen
    assert "━" in screen  # rich's bar
    assert "\x1b[" in screen  # drawn in place, not line by line
    assert "incidents: 3 added" in stdout.decode()


def test_round_trip_through_statusbots_own_v1_api(
    api: Api,  # noqa: F811 (the fixture)
    clock: FakeClock,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A statusbot served through its own /v1 API (the v1 source, with a key), imported
    into an empty statusbot: the same components, incidents, updates, times, templates
    and postmortems. The strongest proof that the API and the import agree."""
    clock.now = T0 - timedelta(days=2)

    def step(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        clock.advance(minutes=10)
        answer = api(method, path, json=body)
        assert answer.ok, answer.text
        found: dict[str, Any] = answer.json()
        return found

    cid = step("POST", "/components", {"component": {"name": "API", "description": "REST"}})["id"]
    web = step("POST", "/components", {"component": {"name": "Web"}})["id"]
    step(
        "POST",
        "/incidents",
        {
            "incident": {
                "name": "API errors",
                "body": "Looking.",
                "components": {cid: "major_outage"},
            }
        },
    )
    step("PATCH", "/incidents/1", {"incident": {"status": "identified", "body": "A bad deploy."}})
    step("PATCH", "/incidents/1", {"incident": {"status": "resolved", "body": "Rolled back."}})
    step(
        "POST",
        "/incidents",
        {"incident": {"name": "Slow pages", "components": {web: "degraded_performance"}}},
    )
    step(
        "PUT",
        "/incidents/1/postmortem",
        {"postmortem": {"body_draft": "## Root cause\n\nA bad deploy."}},
    )
    step("PUT", "/incidents/1/postmortem/publish", {"postmortem": {"notify_subscribers": True}})
    step(
        "POST",
        "/incident_templates",
        {
            "template": {
                "name": "api-down",
                "title": "API down",
                "body": "We know.",
                "update_status": "identified",
                "components": {cid: "partial_outage"},
            }
        },
    )
    step(
        "POST",
        "/incident_templates",
        {"template": {"name": "web-slow", "title": "Web slow", "component_ids": [web]}},
    )
    step(
        "POST",
        "/subscribers",
        {"subscriber": {"email": "ops@example.com", "skip_confirmation_notification": True}},
    )
    assert api.server.pages is not None and api.server.pages.flush()

    (tmp_path / "target").mkdir()
    engine, url, schema = make_test_engine(backend, tmp_path / "target")
    try:
        target = Cli(url, tmp_path / "target", monkeypatch)
        assert target("db", "upgrade").returncode == 0
        args = ("--api-key", api.key, "--page-id", api.page_id, "--api-url", api.base + "/v1")
        done = imported(target, *args, "--requests-per-second", "50")
        assert "templates: 2 added" in done.stdout and "postmortems: 1 added" in done.stdout
        theirs, ours = api.page_dir / "api" / "v2", target.workdir / "public" / "api" / "v2"
        for name in V2_FILES:
            a, b = json.loads((theirs / name).read_text()), json.loads((ours / name).read_text())
            a.pop("page"), b.pop("page")
            assert _without_page_ids(a) == _without_page_ids(b), name
        incidents = json.loads((ours / "incidents.json").read_text())["incidents"]
        assert [len(i["incident_updates"]) for i in incidents] == [1, 3]
        assert incidents[1]["incident_updates"][0]["body"] == "Rolled back."
        # Postmortems: the incident's v1 object has them (the v2 files don't).
        with Session(engine) as s:
            (pm,) = s.scalars(select(Postmortem))
            assert pm.body == "## Root cause\n\nA bad deploy."
            assert pm.published_at == T0 - timedelta(days=2) + timedelta(minutes=80)
            assert pm.notified_at == pm.published_at
            assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 0
            # Subscribers too: statusbot's list pages from 0, as Statuspage's does.
            (subscriber,) = s.scalars(select(Subscriber))
            assert subscriber.email == "ops@example.com" and subscriber.confirmed_at
            made = {
                t.name: (t.code, t.title, t.status, t.body, t.components)
                for t in s.scalars(select(Template))
            }
            codes = {c.id: c.code for c in s.scalars(select(Component))}
        with api.runtime.factory() as s:
            source = {
                t.name: (t.code, t.title, t.status, t.body, t.components)
                for t in s.scalars(select(Template))
            }
            source_codes = {c.id: c.code for c in s.scalars(select(Component))}

        def named(templates: dict[str, Any], by_id: dict[int, str]) -> dict[str, Any]:
            return {
                k: (*v[:4], [[by_id[cid], state] for cid, state in v[4]])
                for k, v in templates.items()
            }

        assert named(made, codes) == named(source, source_codes)
        assert set(made) == {"api-down", "web-slow"}
    finally:
        engine.dispose()
        if schema:
            drop_schema(schema)
