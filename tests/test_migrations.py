"""The migrations build exactly the schema the models describe, and keep the data they find.

Every revision in Alembic's script directory is a starting point: a database is
migrated to it, filled with rows written in that revision's own columns (plain
SQL, not today's models), then upgraded to the newest revision, and every row
must come out as it went in and be usable by today's code.

`SEEDS` says what each revision adds to that data: its new tables' rows, and
values for its new columns on rows seeded before. A new migration without an
entry there fails `test_every_revision_has_seed_data`, so its data is covered
too. A migration that transforms data on purpose says how in `LATER_DEFAULTS`
(the value an upgraded row gets for a column it did not have).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Boolean, Date, Engine, column, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from bot.publish import Publisher
from bot.runtime import Runtime
from bot.settings import Settings
from storage import incidents, migrate, outbox
from storage.models import Base
from storage.types import UTCDateTime
from tests.conftest import T0, FakeClock
from tests.helpers import dump

Row = dict[str, Any]
Seed = dict[str, list[Row]]

H = timedelta(hours=1)
STARTED = T0 - 3 * H


def _revisions() -> list[str]:
    """Every revision Alembic knows, oldest first."""
    script = ScriptDirectory(str(migrate.MIGRATIONS))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


REVISIONS = _revisions()

# What each revision adds to the representative data, in its own columns. Rows are
# keyed by their primary key: a later revision's row with the key of an earlier
# one gives values for the columns that revision added.
SEEDS: dict[str, Seed] = {
    "0001": {
        "counters": [{"name": "incident", "value": 2}],
        "component_groups": [
            {
                "id": 1,
                "code": "grp000000001",
                "name": "Email Processing",
                "name_key": "email processing",
                "description": "Mail we send",
                "position": 1,
                "created_at": T0 - 30 * 24 * H,
                "updated_at": T0 - 30 * 24 * H,
            }
        ],
        "components": [
            {
                "id": 1,
                "code": "cmp000000api",
                "name": "API",
                "name_key": "api",
                "description": "Our REST API",
                "position": 0,
                "group_id": None,
                "showcase": True,
                "only_show_if_degraded": False,
                "start_date": date(2026, 1, 1),
                "status": "operational",
                "created_at": T0 - 30 * 24 * H,
                "updated_at": T0 - H,
                "removed_at": None,
            },
            {
                "id": 2,
                "code": "cmp00000mail",
                "name": "Newsletter emails",
                "name_key": "newsletter emails",
                "description": None,
                "position": 0,
                "group_id": 1,
                "showcase": False,
                "only_show_if_degraded": True,
                "start_date": None,
                "status": "degraded_performance",
                "created_at": T0 - 30 * 24 * H,
                "updated_at": T0 - 2 * H,
                "removed_at": None,
            },
            {
                "id": 3,
                "code": "cmp000legacy",
                "name": "Legacy",
                "name_key": "legacy",
                "description": None,
                "position": 2,
                "group_id": None,
                "showcase": True,
                "only_show_if_degraded": False,
                "start_date": None,
                "status": "operational",
                "created_at": T0 - 30 * 24 * H,
                "updated_at": T0 - 24 * H,
                "removed_at": T0 - 24 * H,
            },
        ],
        "incidents": [
            {
                "id": 1,
                "number": 1,
                "kind": "incident",
                "title": "API errors",
                "status": "resolved",
                "impact": "major",
                "impact_override": False,
                "created_by": "U1",
                "created_at": STARTED,
                "updated_at": T0 - H,
                "started_at": STARTED,
                "monitoring_at": T0 - 2 * H,
                "resolved_at": T0 - H,
                "scheduled_for": None,
                "scheduled_until": None,
                "auto": True,
                "restore_states": None,
            },
            {
                "id": 2,
                "number": 2,
                "kind": "maintenance",
                "title": "Database upgrade",
                "status": "scheduled",
                "impact": "maintenance",
                "impact_override": False,
                "created_by": "U2",
                "created_at": T0 - 24 * H,
                "updated_at": T0 - 24 * H,
                "started_at": T0 + 2 * H,
                "monitoring_at": None,
                "resolved_at": None,
                "scheduled_for": T0 + 2 * H,
                "scheduled_until": T0 + 4 * H,
                "auto": True,
                "restore_states": {"2": "degraded_performance"},
            },
        ],
        "affected_components": [
            {"id": 1, "incident_id": 1, "component_id": 1},
            {"id": 2, "incident_id": 2, "component_id": 2},
        ],
        "incident_updates": [
            {
                "id": 1,
                "code": "upd000000001",
                "incident_id": 1,
                "status": "investigating",
                "body": "Requests are **failing**.",
                "author": "U1",
                "display_at": STARTED,
                "created_at": STARTED,
                "updated_at": STARTED,
                "deliver_notifications": True,
            },
            {
                "id": 2,
                "code": "upd000000002",
                "incident_id": 1,
                "status": "resolved",
                "body": "All good.",
                "author": "U1",
                "display_at": T0 - H,
                "created_at": T0 - H,
                "updated_at": T0 - H,
                "deliver_notifications": False,
            },
            {
                "id": 3,
                "code": "upd000000003",
                "incident_id": 2,
                "status": "scheduled",
                "body": "We will upgrade the database.",
                "author": "U2",
                "display_at": T0 - 24 * H,
                "created_at": T0 - 24 * H,
                "updated_at": T0 - 24 * H,
                "deliver_notifications": True,
            },
        ],
        "update_component_changes": [
            {
                "id": 1,
                "update_id": 1,
                "component_id": 1,
                "old_status": "operational",
                "new_status": "major_outage",
            },
            {
                "id": 2,
                "update_id": 2,
                "component_id": 1,
                "old_status": "major_outage",
                "new_status": "operational",
            },
        ],
        "component_status_history": [
            {
                "id": 1,
                "component_id": 1,
                "at": STARTED,
                "old_status": "operational",
                "status": "major_outage",
                "cause": "incident",
                "incident_id": 1,
                "actor": "U1",
            },
            {
                "id": 2,
                "component_id": 1,
                "at": T0 - H,
                "old_status": "major_outage",
                "status": "operational",
                "cause": "incident",
                "incident_id": 1,
                "actor": "U1",
            },
            {
                "id": 3,
                "component_id": 2,
                "at": T0 - 2 * H,
                "old_status": None,
                "status": "degraded_performance",
                "cause": "manual",
                "incident_id": None,
                "actor": "U2",
            },
        ],
        "metrics": [
            {
                "id": 1,
                "code": "met000000001",
                "name": "API Response Times",
                "name_key": "api response times",
                "unit": "ms",
                "description": "Median over five minutes",
                "position": 0,
                "created_at": T0 - 24 * H,
            }
        ],
        "metric_points": [
            {"id": k, "metric_id": 1, "at": T0 - k * timedelta(minutes=5), "value": 80.5 + k}
            for k in (1, 2, 3)
        ],
        "audit_events": [
            {
                "id": 1,
                "at": STARTED,
                "actor": "U1",
                "action": "incident.open",
                "target": "#1",
                "before": None,
                "after": {"status": "investigating", "components": {"API": "major_outage"}},
            },
            {
                "id": 2,
                "at": T0 - 2 * H,
                "actor": "U2",
                "action": "component.set",
                "target": "Newsletter emails",
                "before": {"status": "operational"},
                "after": {"status": "degraded_performance"},
            },
        ],
        "outbox": [
            {
                "id": 1,
                "created_at": STARTED,
                "channel": "C0INCIDENTS",
                "event": "incident.opened",
                "incident_id": 1,
                "update_id": 1,
                "payload": {"number": 1},
                "attempts": 0,
                "next_attempt_at": STARTED,
                "delivered_at": STARTED,
                "last_error": None,
            },
            {
                "id": 2,
                "created_at": T0 - H,
                "channel": "C0INCIDENTS",
                "event": "incident.resolved",
                "incident_id": 1,
                "update_id": 2,
                "payload": {"number": 1},
                "attempts": 2,
                "next_attempt_at": T0 - H / 2,
                "delivered_at": None,
                "last_error": "chat.postMessage: fatal_error",
            },
        ],
        "announcements": [
            {
                "id": 1,
                "incident_id": 1,
                "channel": "C0INCIDENTS",
                "ts": "1700000000.000001",
                "created_at": STARTED,
            }
        ],
    },
    "0002": {
        "incidents": [
            {"id": 1, "notice_sent_at": None, "nudged_at": T0 - 2 * H, "nudge_count": 2},
            {"id": 2, "notice_sent_at": T0 - H, "nudged_at": None, "nudge_count": 0},
        ],
    },
    "0003": {
        "outbox": [
            {
                "id": 1,
                "failed_at": None,
                "claimed_until": None,
                "claimed_by": None,
                "message_ts": "1700000000.000001",
            },
            # A deliverer died holding it: its lease has run out by the time we look.
            {
                "id": 2,
                "failed_at": None,
                "claimed_until": T0 - H / 4,
                "claimed_by": "d" * 32,
                "message_ts": None,
            },
            {
                "id": 3,
                "created_at": T0 - 2 * H,
                "channel": "C0GONE",
                "event": "component.changed",
                "incident_id": None,
                "update_id": None,
                "payload": {"component": "Newsletter emails", "status": "degraded_performance"},
                "attempts": 1,
                "next_attempt_at": T0 - 2 * H,
                "delivered_at": None,
                "last_error": "chat.postMessage: channel_not_found",
                "failed_at": T0 - 2 * H,
                "claimed_until": None,
                "claimed_by": None,
                "message_ts": None,
            },
        ],
    },
    "0004": {
        # The partial index of entries still to send: a line of its own, waiting.
        "outbox": [
            {
                "id": 4,
                "created_at": T0 - 2 * H,
                "channel": "C0STATUS",
                "event": "component.changed",
                "incident_id": None,
                "update_id": None,
                "payload": {"component": "Newsletter emails", "status": "degraded_performance"},
                "attempts": 0,
                "next_attempt_at": T0 - 2 * H,
                "delivered_at": None,
                "last_error": None,
                "failed_at": None,
                "claimed_until": None,
                "claimed_by": None,
                "message_ts": None,
            },
        ],
    },
    "0005": {
        # A signed Slack request remembered until its signature expires.
        "seen_requests": [{"key": "a" * 64, "expires_at": T0 + H}],
    },
    "0006": {
        # A confirmed email subscriber following one component, and a webhook one.
        "subscribers": [
            {
                "id": 1,
                "code": "sub000000001",
                "kind": "email",
                "email": "ops@example.com",
                "endpoint": None,
                "address_key": "ops@example.com",
                "secret": None,
                "token": "t" * 32,
                "source": "page",
                "created_at": T0 - 3 * H,
                "confirmed_at": T0 - 2 * H,
                "confirmation_sent_at": T0 - 3 * H,
                "unsubscribed_at": None,
                "quarantined_at": None,
                "bounced_at": None,
                "last_error": None,
                "external_id": None,
            },
            {
                "id": 2,
                "code": "sub000000002",
                "kind": "webhook",
                "email": "hooks@example.com",
                "endpoint": "https://hooks.example.com/statuspage",
                "address_key": "https://hooks.example.com/statuspage",
                "secret": "whsec_" + "A" * 32,
                "token": "u" * 32,
                "source": "cli",
                "created_at": T0 - 3 * H,
                "confirmed_at": None,
                "confirmation_sent_at": None,
                "unsubscribed_at": None,
                "quarantined_at": None,
                "bounced_at": None,
                "last_error": None,
                "external_id": "sp-123",
            },
        ],
        "subscriber_components": [{"subscriber_id": 1, "component_id": 1}],
    },
    "0007": {
        # One client's sign-ups counted in the current window.
        "rate_limits": [{"key": "signup:" + "c" * 32, "window_start": T0 - H, "count": 3}],
    },
    "0008": {
        # The resolved incident was declared from a Slack message, has an internal note
        # and a published postmortem; a template to start the next one from.
        "incidents": [
            {
                "id": 1,
                "draft": False,
                "draft_components": None,
                "discarded_at": None,
                "source_link": "https://example.slack.com/archives/C0OPS/p1700000000000100",
            }
        ],
        "incident_notes": [
            {
                "id": 1,
                "incident_id": 1,
                "body": "Rolled back deploy 4512.",
                "author": "U1",
                "created_at": STARTED + H,
            }
        ],
        "postmortems": [
            {
                "id": 1,
                "incident_id": 1,
                "body": "## What happened\nA bad deploy.",
                "author": "U1",
                "created_at": T0 - H,
                "body_updated_at": T0 - H,
                "published_at": T0 - H / 2,
                "notified_at": None,
            }
        ],
        "templates": [
            {
                "id": 1,
                "code": "tpl000000001",
                "name": "api-down",
                "name_key": "api-down",
                "title": "API errors",
                "status": "investigating",
                "components": [[1, "major_outage"]],
                "body": "We are looking into errors from the API.",
                "created_by": "U1",
                "created_at": T0 - 2 * H,
                "updated_at": T0 - 2 * H,
            }
        ],
    },
    "0009": {
        # A live key used once, and a revoked one of the same name.
        "api_keys": [
            {
                "id": 1,
                "name": "monitoring",
                "digest": "a" * 64,
                "created_at": T0 - H,
                "last_used_at": T0,
                "revoked_at": T0,
            },
            {
                "id": 2,
                "name": "monitoring",
                "digest": "b" * 64,
                "created_at": T0,
                "last_used_at": None,
                "revoked_at": None,
            },
        ],
    },
    "0010": {
        # The incident and a component an import made, by their Statuspage ids.
        "statuspage_ids": [
            {
                "id": 1,
                "page_id": "kctbh9vrtdwd",
                "kind": "incident",
                "statuspage_id": "p31zjtct2jer",
                "local_id": 1,
                "imported_at": T0 - H,
            },
            {
                "id": 2,
                "page_id": "kctbh9vrtdwd",
                "kind": "component",
                "statuspage_id": "8kbf7d35c070",
                "local_id": 1,
                "imported_at": T0 - H,
            },
        ],
    },
}

# The value an upgraded row has for a column added after it was written, when not NULL.
LATER_DEFAULTS: dict[tuple[str, str], Any] = {
    ("incidents", "nudge_count"): 0,
    ("outbox", "kind"): "slack",
    ("incidents", "draft"): False,
}


def missing_seed(revision: str) -> str:
    return (
        f"no seed data for revision {revision}: add the rows (or column values) it "
        f"introduces to SEEDS in tests/test_migrations.py"
    )


def data_at(revision: str) -> Seed:
    """The representative rows of a database at `revision`: every seed up to it, merged."""
    merged: dict[str, dict[tuple[Any, ...], Row]] = {}
    for rev in REVISIONS[: REVISIONS.index(revision) + 1]:
        if rev not in SEEDS:
            pytest.fail(missing_seed(rev))
        for name, rows in SEEDS[rev].items():
            keys = [c.name for c in Base.metadata.tables[name].primary_key.columns]
            by_key = merged.setdefault(name, {})
            for row in rows:
                by_key.setdefault(tuple(row[k] for k in keys), {}).update(row)
    return {name: list(rows.values()) for name, rows in merged.items()}


def _sql_type(value: Any) -> TypeEngine[Any] | None:
    """How a seed value is bound, as the code of its day bound it."""
    if isinstance(value, datetime):
        return UTCDateTime()
    if isinstance(value, bool):
        return Boolean()
    if isinstance(value, date):
        return Date()
    if isinstance(value, dict | list):
        return JSON()
    return None


def insert(conn: Connection, data: Seed) -> None:
    """Write the rows with plain INSERTs, parents first."""
    for model_table in Base.metadata.sorted_tables:
        for row in data.get(model_table.name, []):
            columns = [column(k, _sql_type(v)) for k, v in row.items()]
            conn.execute(table(model_table.name, *columns).insert().values(**row))
    if conn.dialect.name == "postgresql":
        # Explicit ids leave a SERIAL's sequence behind; the app's inserts would not have.
        for name in data:
            if "id" in Base.metadata.tables[name].c:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) "
                        f"FROM {name}"
                    )
                )


def expected_row(name: str, row: Row) -> Row:
    """A seeded row as it must read at head: columns added later at their defaults."""
    return {
        c.name: row[c.name] if c.name in row else LATER_DEFAULTS.get((name, c.name))
        for c in Base.metadata.tables[name].columns
    }


def test_every_revision_has_seed_data() -> None:
    assert REVISIONS, "Alembic found no revisions"
    for revision in REVISIONS:
        if revision not in SEEDS:
            pytest.fail(missing_seed(revision))
    assert sorted(SEEDS) == sorted(REVISIONS), "seed data for a revision that does not exist"


def test_upgrade_from_empty_matches_the_models(empty_db: tuple[Engine, str]) -> None:
    engine = empty_db[0]
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.parametrize("revision", REVISIONS)
def test_upgrade_from_each_revision_keeps_its_data(
    revision: str, empty_db: tuple[Engine, str], settings: Settings, tmp_path: Path
) -> None:
    if revision not in SEEDS:
        pytest.fail(missing_seed(revision))
    engine = empty_db[0]
    migrate.upgrade(engine, revision)
    assert migrate.current_revision(engine) == revision
    data = data_at(revision)
    with engine.begin() as conn:
        insert(conn, data)

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        for model_table in Base.metadata.sorted_tables:
            keys = list(model_table.primary_key.columns)
            found = [dict(r._mapping) for r in conn.execute(select(model_table).order_by(*keys))]
            wanted = sorted(
                (expected_row(model_table.name, r) for r in data.get(model_table.name, [])),
                key=lambda r: tuple(r[k.name] for k in keys),
            )
            assert found == wanted, model_table.name

    # Today's code reads it and writes on top of it.
    clock = FakeClock()
    runtime = Runtime(
        dataclasses.replace(settings, page_dir=tmp_path / "public"), engine=engine, clock=clock
    )
    with runtime.factory() as session:
        incident = incidents.get(session, number=1)
        assert incident is not None
        assert [u.body for u in incident.updates] == ["Requests are **failing**.", "All good."]
        assert [(c.component.name, c.new_status) for c in incident.updates[0].changes] == [
            ("API", "major_outage")
        ]
        pending = [
            r for r in data["outbox"] if r["delivered_at"] is None and r.get("failed_at") is None
        ]
        due = outbox.due(session, now=clock.now, limit=10)
        assert [h.id for h in due] == [r["id"] for r in pending]
    assert Publisher(runtime).publish_all() is not None
    page = (tmp_path / "public" / "index.html").read_text()
    for shown in ("API", "Newsletter emails", "Database upgrade", "API Response Times"):
        assert shown in page
    assert "Legacy" not in page  # removed before the upgrade, and still removed
    opened = runtime.run_line("/incident open Fresh trouble --components API=major", user="U1")
    assert opened.ok and "#3" in opened.reply, opened.reply
    assert runtime.run_line("/component set API ok", user="U1").ok


def test_upgrade_twice_keeps_everything_and_reset_empties(
    empty_db: tuple[Engine, str], settings: Settings
) -> None:
    engine = empty_db[0]
    migrate.upgrade(engine)
    runtime = Runtime(settings, engine=engine, clock=FakeClock())
    assert runtime.run_line("/incident open API errors -- Looking.", user="U1").ok
    before = dump(engine)
    assert before["incidents"] and before["outbox"]
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    assert dump(engine) == before
    assert set(inspect(engine).get_table_names()) == {*Base.metadata.tables, "alembic_version"}
    migrate.reset(engine)
    assert set(inspect(engine).get_table_names()) == set()
