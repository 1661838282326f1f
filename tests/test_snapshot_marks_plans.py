"""The probe's reads above the high marks use the primary key's index on PostgreSQL,
statistics or none."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from bot.runtime import Runtime
from storage import snapshot_marks
from tests.test_publish import run


def plan(engine: Engine, sql: str) -> str:
    with engine.connect() as conn:
        return "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())


def test_the_rows_above_the_marks_are_read_by_index(engine: Engine, runtime: Runtime) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads an id range by its rowid whatever it knows")
    run(runtime, "/component add API", "/incident open Down -- Looking.")
    with engine.begin() as conn:  # long tables, never analyzed (as with autovacuum off)
        conn.execute(
            text(
                "INSERT INTO component_status_history"
                " (component_id, at, status, cause, actor)"
                " SELECT c.id, now(), 'operational', 'manual', 'U1'"
                " FROM components c, generate_series(1, 20000)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO incident_updates (code, incident_id, status, body, author,"
                " display_at, created_at, updated_at, deliver_notifications)"
                " SELECT substr(md5(g::text), 1, 12), i.id, 'investigating', 'x', 'U1',"
                " now(), now(), now(), true"
                " FROM incidents i, generate_series(1, 20000) g"
            )
        )
        top = {
            table: conn.scalar(text(f"SELECT max(id) FROM {table}"))
            for table in ("component_status_history", "incident_updates")
        }
    statements = (
        snapshot_marks._history_sql(engine.dialect, top["component_status_history"] - 1),
        snapshot_marks._tally_sql(engine.dialect, top["incident_updates"] - 1),
    )
    for analyzed in (False, True):
        if analyzed:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE component_status_history, incident_updates"))
        for sql in statements:
            shown = plan(engine, sql)
            assert "Seq Scan" not in shown and "Index" in shown, (analyzed, shown)
