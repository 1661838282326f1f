"""Email subscribers in and out as CSV (`statusbot subscribers import | export`, SPEC §9).

The file is `email,components,confirmed_at`: components by name joined by `;`
(none: everything), confirmed_at an ISO 8601 time or empty. An import is one
transaction: every row is checked first and any bad row (named by its line)
stops the whole file. A row whose address is already subscribed updates it, so
importing the same file twice changes nothing the second time. A row with
confirmed_at stays confirmed; one without is sent a confirmation.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from commands.addresses import check_email
from commands.common import audit_change, authorise
from commands.context import Context
from commands.errors import CommandError
from commands.names import find_component
from commands.result import Result
from commands.subscribers import request_confirmation
from storage import subscribers as store
from storage.escaping import escape
from storage.models import Component

HEADER = ("email", "components", "confirmed_at")
MAX_ROWS = 100_000
SHOWN_ERRORS = 20
USAGE = (
    "statusbot subscribers import FILE.csv (columns email,components,confirmed_at; "
    "components by name joined by ';')"
)


@dataclass(frozen=True, slots=True)
class Row:
    """One checked line of an import."""

    line: int
    email: str
    components: tuple[Component, ...]
    confirmed_at: datetime | None


def export_csv(session: Session, ctx: Context) -> str:
    """Every live email subscriber as CSV, the header first, oldest first."""
    authorise(ctx, action="subscribers.export", target="subscribers")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for subscriber in store.live(session, kind=store.EMAIL):
        confirmed = subscriber.confirmed_at
        writer.writerow(
            (
                subscriber.email,
                ";".join(c.name for c in subscriber.components if c.removed_at is None),
                confirmed.astimezone(UTC).isoformat() if confirmed else "",
            )
        )
        count += 1
    # Every address leaving at once is worth a line in the record.
    audit_change(
        session,
        ctx,
        action="subscriber.export",
        target="subscribers",
        before=None,
        after={"rows": count},
    )
    return out.getvalue()


def import_csv(session: Session, ctx: Context, text: str, *, source: str) -> Result:
    """Add or update email subscribers from CSV text; all rows or none."""
    authorise(ctx, action="subscribers.import", target=source[:200])
    rows = _check(session, text, source)
    added = updated = confirmations = 0
    for row in rows:
        existing = store.find_live(session, kind=store.EMAIL, address=row.email)
        if existing is None:
            subscriber = store.add(
                session,
                kind=store.EMAIL,
                email=row.email,
                components=row.components,
                source="import",
                now=ctx.now,
            )
            added += 1
        else:
            subscriber = existing
            changed = [c.id for c in existing.components] != [c.id for c in row.components]
            if changed:
                store.set_components(session, existing, row.components)
            if row.confirmed_at is not None and existing.confirmed_at is None:
                changed = True
            updated += changed
        if row.confirmed_at is not None:
            if subscriber.confirmed_at is None:
                subscriber.confirmed_at = row.confirmed_at
        elif subscriber.confirmed_at is None and subscriber.confirmation_sent_at is None:
            request_confirmation(session, subscriber, ctx)
            confirmations += 1
    audit_change(
        session,
        ctx,
        action="subscriber.import",
        target=source[:200],
        before=None,
        after={"rows": len(rows), "added": added, "updated": updated},
    )
    return Result(
        reply=f"Imported {len(rows):,} rows from {source}: {added:,} added, {updated:,} "
        f"updated, {len(rows) - added - updated:,} unchanged; {confirmations:,} confirmation "
        "emails queued.",
        changed=bool(added or updated),
    )


def _check(session: Session, text: str, source: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip().lower() for h in next(reader, [])]
    unknown = [h for h in header if h not in HEADER]
    if "email" not in header or unknown or len(set(header)) != len(header):
        raise CommandError(
            f"{source}: the first line must name the columns, some of "
            f"{','.join(HEADER)} (email is required)"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + ".",
            USAGE,
        )
    rows: list[Row] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    names: dict[str, Component] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(rows) + len(errors) >= MAX_ROWS:
            raise CommandError(f"{source} has more than {MAX_ROWS:,} rows; split it.", USAGE)
        try:
            row = _row(session, line, dict(zip(header, values, strict=False)), names)
        except CommandError as error:
            errors.append(f"line {line}: {error.message}")
            continue
        key = store.address_key(store.EMAIL, row.email)
        if key in seen:
            errors.append(f"line {line}: the same address as line {seen[key]}")
            continue
        seen[key] = line
        rows.append(row)
    if errors:
        shown = errors[:SHOWN_ERRORS]
        more = len(errors) - len(shown)
        raise CommandError(
            f"{source} was not imported ({len(errors):,} bad rows; nothing was written):\n"
            + "\n".join(shown)
            + (f"\n… and {more:,} more" if more else ""),
            USAGE,
        )
    return rows


def _row(session: Session, line: int, values: dict[str, str], names: dict[str, Component]) -> Row:
    email = check_email(values.get("email", ""))
    components: list[Component] = []
    for name in (values.get("components") or "").split(";"):
        name = name.strip()
        if not name:
            continue
        if name.lower() not in names:
            names[name.lower()] = find_component(session, name, usage="")
        if names[name.lower()] not in components:
            components.append(names[name.lower()])
    stamp = (values.get("confirmed_at") or "").strip()
    confirmed_at = None
    if stamp:
        try:
            confirmed_at = datetime.fromisoformat(stamp)
        except ValueError as error:
            raise CommandError(
                f"confirmed_at '{escape(stamp)}' is not an ISO 8601 time, "
                "e.g. 2026-01-31T09:00:00+00:00"
            ) from error
        if confirmed_at.tzinfo is None:
            confirmed_at = confirmed_at.replace(tzinfo=UTC)  # a time without a zone is UTC
    return Row(line, email, tuple(components), confirmed_at)
