"""Reading a published page directory back, byte by byte, for what must (not) be public."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import OutboxEntry
from storage.outbox import Kind


def page_files(root: Path) -> dict[str, bytes]:
    """Every file under the page directory (HTML, JSON, feeds, calendar, badge, manifest)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def files_with(root: Path, text: str) -> list[str]:
    """The files whose bytes contain `text` (UTF-8, and as the HTML and JSON escape it)."""
    needles = {text.encode(), text.encode("unicode_escape")}
    return sorted(
        name for name, data in page_files(root).items() if any(n in data for n in needles)
    )


def count_in(root: Path, name: str, text: str) -> int:
    """How many times `text` appears in one published file."""
    return (root / name).read_bytes().count(text.encode())


def subscriber_entries(rt: Runtime) -> list[tuple[str, str]]:
    """(kind, event) of every outbox entry about an incident meant for subscribers (the
    fan-out and what it expanded to), not for Slack."""
    with rt.factory() as session:
        rows = session.execute(
            select(OutboxEntry.kind, OutboxEntry.event)
            .where(OutboxEntry.kind != Kind.SLACK, OutboxEntry.incident_id.is_not(None))
            .order_by(OutboxEntry.id)
        )
        return [(k, e) for k, e in rows]
