"""Small tools the tests share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from storage.models import Base


def dump(engine: Engine, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every statusbot table, for "nothing was written" comparisons."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def slash_command(command: str, text: str, *, user: str, response_url: str) -> dict[str, str]:
    """The fields Slack sends for a slash command typed in #incidents (HTTP or Socket Mode)."""
    return {
        "token": "legacy",
        "team_id": "T0TEAM",
        "team_domain": "example",
        "channel_id": "C0INCIDENTS",
        "channel_name": "incidents",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A0APP",
        "response_url": response_url,
        "trigger_id": "1337.42.abcdef",
    }
