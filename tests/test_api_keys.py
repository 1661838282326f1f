"""`statusbot api-key create | list | revoke`, through the real program, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage import api_keys
from storage.models import ApiKey, AuditEvent
from tests.helpers import Program


@pytest.fixture
def program(empty_db: tuple[Engine, str], tmp_path: Path) -> Program:
    prog = Program(empty_db[1], tmp_path)
    assert prog("db", "upgrade").returncode == 0
    return prog


def test_create_prints_the_key_once_on_the_last_line_and_keeps_only_its_hash(
    program: Program, empty_db: tuple[Engine, str]
) -> None:
    done = program("api-key", "create", "Monitoring")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("sbk_") and len(token) >= 40 and " " not in token
    with Session(empty_db[0]) as session:
        (key,) = session.scalars(select(ApiKey)).all()
        assert key.name == "monitoring"
        assert key.digest == api_keys.digest(token) and token not in key.digest
        assert api_keys.find(session, token) is key
        assert api_keys.find(session, token + "x") is None
        events = session.scalars(select(AuditEvent)).all()
        assert [(e.actor, e.action, e.target) for e in events] == [
            ("cli", "api_key.create", "monitoring")
        ]
    listed = program("api-key", "list")
    assert "monitoring" in listed.stdout and token not in listed.stdout


def test_names_are_unique_among_live_keys_and_revoked_keys_stop_working(
    program: Program, empty_db: tuple[Engine, str]
) -> None:
    first = program("api-key", "create", "deploy").stdout.strip().splitlines()[-1]
    again = program("api-key", "create", "deploy")
    assert again.returncode == 1 and "already a key called 'deploy'" in again.stderr
    revoked = program("api-key", "revoke", "deploy")
    assert revoked.returncode == 0 and "Revoked" in revoked.stdout
    assert "No API keys" in program("api-key", "list").stdout
    second = program("api-key", "create", "deploy").stdout.strip().splitlines()[-1]
    with Session(empty_db[0]) as session:
        assert api_keys.find(session, first) is None
        found = api_keys.find(session, second)
        assert found is not None and found.name == "deploy"
    missing = program("api-key", "revoke", "nobody")
    assert missing.returncode == 1 and "no live API key called 'nobody'" in missing.stderr


@pytest.mark.parametrize("name", ["", "a/b", "x" * 41, "U0IC 1", "<script>"])
def test_bad_names_are_refused_and_nothing_is_written(
    program: Program, empty_db: tuple[Engine, str], name: str
) -> None:
    done = program("api-key", "create", name)
    assert done.returncode == 1 and "Name the key" in done.stderr
    with Session(empty_db[0]) as session:
        assert session.scalars(select(ApiKey)).all() == []
