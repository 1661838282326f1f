"""Reading one field of a Statuspage document: whatever its type, a value statusbot
takes or a fallback, with each repair noted by name (commands/statuspage_reader.py
reads the documents' objects with these)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from typing import Any

from commands import textrules
from commands.statuspage_data import MAX_ID, Notes
from storage.rules import ComponentStatus

COMPONENT_WORDS: dict[str, ComponentStatus] = {s.value: s for s in ComponentStatus} | {
    "degraded": ComponentStatus.DEGRADED,
    "partial": ComponentStatus.PARTIAL,
    "major": ComponentStatus.MAJOR,
    "outage": ComponentStatus.MAJOR,
    "maintenance": ComponentStatus.MAINTENANCE,
}
# Bidirectional embedding and isolate controls: removed from imported text.
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


class FieldReader:
    """Reads fields, noting every repair in `notes`; `now` is the time of the read."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.notes = Notes()

    def ident(self, value: Any, what: str) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            return None
        found: str = value.strip()
        if len(found) > MAX_ID or not found.isprintable():
            self.notes.add(f"{what} ids that are not ids (skipped)", repr(found[:20]))
            return None
        return found

    def text(self, value: Any, kind: textrules.TextKind, where: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            else:
                self.notes.add(f"{kind.what}s that are not text (left empty)", where)
                return ""
        cleaned = "".join(
            c for c in value if c in "\t\n\r" or unicodedata.category(c) != "Cc"
        ).translate(_BIDI)
        if cleaned != value:
            self.notes.add(f"{kind.what}s with control characters (removed)", where)
        tidy = textrules.tidy(cleaned, kind)
        if len(tidy) > kind.limit:
            self.notes.add(f"{kind.what}s over {kind.limit:,} characters (cut)", where)
            tidy = tidy[: kind.limit - 1].rstrip() + "…"
        return tidy

    def when(self, value: Any, where: str, what: str) -> datetime | None:
        if value is None or value == "":
            return None
        if isinstance(value, str) and len(value) <= 40:
            try:
                at = datetime.fromisoformat(value.strip())
            except ValueError:
                pass
            else:
                if at.tzinfo is None:
                    at = at.replace(tzinfo=UTC)  # Statuspage always writes an offset
                return at.astimezone(UTC)
        self.notes.add(f"{what} that are not ISO 8601 times (ignored)", where)
        return None

    def day(self, value: Any, where: str) -> date | None:
        if not value:
            return None
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()[:10])
            except ValueError:
                pass
        self.notes.add("start dates that are not dates (ignored)", where)
        return None

    def state(self, value: Any, where: str) -> ComponentStatus:
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_").replace(" ", "_")
            if key in COMPONENT_WORDS:
                return COMPONENT_WORDS[key]
        self.notes.add("unknown component statuses (read as operational)", f"{value!r} {where}")
        return ComponentStatus.OPERATIONAL

    def position(self, value: Any, fallback: int) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**9:
            return value
        return fallback

    def ids(self, value: Any, what: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            return ()
        out: list[str] = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("id") or item.get("code")
            found = self.ident(item, what)
            if found and found not in out:
                out.append(found)
        return tuple(out)
