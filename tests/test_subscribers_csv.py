"""`statusbot subscribers import FILE.csv | export` (SPEC §9), through the program."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from storage.models import AuditEvent, OutboxEntry, Subscriber
from tests.helpers import Program, dump


@pytest.fixture
def program(empty_db: tuple[Engine, str], tmp_path: Path) -> Program:
    prog = Program(empty_db[1], tmp_path)
    assert prog("db", "upgrade").returncode == 0
    prog.run('/component add API --group "Core"')
    prog.run("/component add Web")
    return prog


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "subs.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


GOOD = (
    "email,components,confirmed_at\n"
    "old@example.com,API;Web,2024-05-01T10:00:00+00:00\n"
    "new@example.com,,\n"
    "web@example.com,web,\n"
)


def test_import_then_export_round_trips(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    engine = empty_db[0]
    done = program("subscribers", "import", write(tmp_path, GOOD))
    assert done.returncode == 0, done.stderr
    assert "3 added" in done.stdout and "2 confirmation" in done.stdout
    with engine.connect() as conn:
        subs = {s.email: s for s in conn.execute(select(Subscriber))}
        confirms = set(
            conn.scalars(
                select(OutboxEntry.channel).where(OutboxEntry.event == "subscriber.confirm")
            )
        )
        actions = list(conn.scalars(select(AuditEvent.action)))
    # Confirmed stays confirmed (no mail); the others are asked.
    assert subs["old@example.com"].confirmed_at is not None
    assert confirms == {subs["new@example.com"].code, subs["web@example.com"].code}
    assert "subscriber.import" in actions
    exported = program("subscribers", "export")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows == [
        ["email", "components", "confirmed_at"],
        ["old@example.com", "API;Web", "2024-05-01T10:00:00+00:00"],
        ["new@example.com", "", ""],
        ["web@example.com", "Web", ""],
    ]
    # Importing its own export again changes nothing and sends no more mail.
    before = dump(engine, skip=("audit_events",))
    again = program("subscribers", "import", write(tmp_path, exported.stdout))
    assert again.returncode == 0 and "0 added, 0 updated, 3 unchanged" in again.stdout
    assert dump(engine, skip=("audit_events",)) == before


def test_an_existing_address_is_updated_not_duplicated(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    program("subscribers", "add", "Old@Example.com")
    done = program(
        "subscribers",
        "import",
        write(
            tmp_path, "email,components,confirmed_at\nold@example.com,API,2024-01-01T00:00:00Z\n"
        ),
    )
    assert done.returncode == 0 and "1 updated" in done.stdout, done.stderr
    with empty_db[0].connect() as conn:
        (sub,) = conn.execute(select(Subscriber))
    assert sub.confirmed_at is not None


def test_bad_rows_are_named_by_line_and_nothing_is_imported(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path
) -> None:
    before = dump(empty_db[0])
    text = (
        "email,components,confirmed_at\n"
        "fine@example.com,,\n"
        "not-an-address,,\n"
        "x@example.com,Nope,\n"
        "y@example.com,,yesterday\n"
        "FINE@example.com,,\n"
    )
    done = program("subscribers", "import", write(tmp_path, text))
    assert done.returncode == 1
    for wanted in ("line 3:", "line 4:", "Nope", "line 5:", "ISO 8601", "line 6: the same address"):
        assert wanted in done.stderr
    assert "nothing was written" in done.stderr and "Traceback" not in done.stderr
    assert dump(empty_db[0]) == before


@pytest.mark.parametrize(
    ("text", "wanted"), [("mail,x\na@b.co,\n", "unknown: mail, x"), ("", "first line")]
)
def test_a_bad_header_is_refused(
    program: Program, empty_db: tuple[Engine, str], tmp_path: Path, text: str, wanted: str
) -> None:
    before = dump(empty_db[0])
    done = program("subscribers", "import", write(tmp_path, text))
    assert done.returncode == 1 and wanted in done.stderr
    assert dump(empty_db[0]) == before


def test_a_missing_file_is_a_clear_error(program: Program) -> None:
    done = program("subscribers", "import", "nope.csv")
    assert done.returncode == 2 and "There is no file 'nope.csv'" in done.stderr
