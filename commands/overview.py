"""Read-only answers: /status, list and show. Anyone may ask these."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from commands import words
from commands.context import Context
from commands.result import Result
from storage import components as component_store
from storage import incidents as store
from storage.escaping import escape
from storage.models import Incident, IncidentNote, Postmortem
from storage.rules import ComponentStatus, Impact, Kind, MaintenanceStatus, page_status


def status(session: Session, ctx: Context) -> Result:
    """The overall status, open incidents, upcoming maintenance and the page link."""
    live = component_store.live_states(session)  # names and states are all it shows
    open_items = store.unresolved(session)
    incidents = [i for i in open_items if i.kind == Kind.INCIDENT]
    maintenances = [i for i in open_items if i.kind == Kind.MAINTENANCE]
    overall = page_status(
        (ComponentStatus(c.status) for c in live), (Impact(i.impact) for i in incidents)
    )
    lines = [f"*{overall.description}*"]
    troubled = [c for c in live if c.status != ComponentStatus.OPERATIONAL]
    for c in troubled:
        lines.append(f"• {escape(c.name)}: {words.component_label(c.status)}")
    lines.append("")
    lines.append("Open incidents:" if incidents else "No open incidents.")
    lines.extend(_line(i, ctx) for i in incidents)
    active = [m for m in maintenances if m.status != MaintenanceStatus.SCHEDULED]
    upcoming = [m for m in maintenances if m.status == MaintenanceStatus.SCHEDULED]
    if active:
        lines.append("Maintenance in progress:")
        lines.extend(_line(m, ctx) for m in active)
    lines.append("Upcoming maintenance:" if upcoming else "No maintenance scheduled.")
    lines.extend(_line(m, ctx) for m in upcoming)
    if ctx.page_url:
        lines.append("")
        lines.append(f"Status page: {ctx.page_url}")
    return Result(reply="\n".join(lines))


def list_items(session: Session, ctx: Context, kind: Kind, *, drafts: bool = False) -> Result:
    """Open incidents (or maintenances), then the few most recently closed; with `drafts`
    (for editors) the drafts first."""
    everything = store.unresolved(session, kind, drafts=drafts)
    open_items = [i for i in everything if not i.draft]
    closed = store.recent_closed(session, kind)
    noun = "incidents" if kind is Kind.INCIDENT else "maintenances"
    lines: list[str] = []
    drafted = [i for i in everything if i.draft]
    if drafted:
        lines.append(words.DRAFTS_HEADING)
        lines.extend(_line(i, ctx) for i in drafted)
    lines.append(f"Open {noun}:" if open_items else f"No open {noun}.")
    lines.extend(_line(i, ctx) for i in open_items)
    if closed:
        lines.append("Recently closed:" if kind is Kind.INCIDENT else "Recently finished:")
        lines.extend(_line(i, ctx) for i in closed)
    return Result(reply="\n".join(lines))


def show(
    incident: Incident,
    ctx: Context,
    *,
    notes: Sequence[IncidentNote] = (),
    postmortem: Postmortem | None = None,
) -> Result:
    """One incident or maintenance with every update, oldest first, numbered for `edit`,
    and (in Slack, never on the page) its internal notes."""
    lines = [f"#{incident.number} {words.quote(incident.title)}"]
    facts = [words.status_label(incident.status)]
    if incident.kind == Kind.INCIDENT:
        facts.append(f"impact {incident.impact}")
    if incident.scheduled_for and incident.scheduled_until:
        facts.append(
            f"{words.when(incident.scheduled_for, ctx.tz)} → "
            f"{words.when(incident.scheduled_until, ctx.tz)}"
            + ("" if incident.auto else " (manual)")
        )
    if incident.draft:
        facts.insert(0, "DRAFT (not on the status page)")
    lines.append(" · ".join(facts))
    if incident.source_link:
        lines.append(f"Declared from {incident.source_link}")
    pending = store.pending_states(incident) if incident.draft else []
    if pending:
        lines.append(
            "Components when published: "
            + ", ".join(
                f"{escape(c.name)} ({words.component_label(c.status)} → "
                f"{words.component_label(state)})"
                for c, state in pending
            )
        )
    elif incident.affected:
        lines.append(
            "Components: "
            + ", ".join(
                f"{escape(a.component.name)} ({words.component_label(a.component.status)})"
                for a in incident.affected
            )
        )
    for n, update in enumerate(incident.updates, start=1):
        lines.append("")
        lines.append(
            f"{n}. {words.status_label(update.status)} · {words.when(update.display_at, ctx.tz)}"
            f" · {words.mention(update.author)}"
        )
        for change in update.changes:
            lines.append(
                f"   {escape(change.component.name)}: {words.component_label(change.old_status)} → "
                f"{words.component_label(change.new_status)}"
            )
        if update.body:
            lines.append("   " + escape(update.body).replace("\n", "\n   "))
    if postmortem is not None:
        state = (
            f"published {words.when(postmortem.published_at, ctx.tz)}"
            if postmortem.published_at
            else "draft, not public"
        )
        lines.append("")
        lines.append(words.POSTMORTEM_HEADING.format(state=state))
        lines.append("   " + escape(postmortem.body).replace("\n", "\n   "))
    if notes:
        lines.append("")
        lines.append(words.NOTES_HEADING)
        for note in notes:
            lines.append(
                f"• {words.when(note.created_at, ctx.tz)} · {words.mention(note.author)}: "
                + escape(note.body).replace("\n", "\n   ")
            )
    if ctx.page_url and not incident.draft:
        lines.append("")
        lines.append(f"{ctx.page_url.rstrip('/')}/incidents/{incident.number}.html")
    return Result(reply="\n".join(lines), number=incident.number)


def _line(incident: Incident, ctx: Context) -> str:
    text = f"• #{incident.number} {escape(incident.title)} · {words.status_label(incident.status)}"
    if incident.kind == Kind.INCIDENT:
        text += f" · impact {incident.impact}"
    elif incident.scheduled_for and incident.scheduled_until:
        text += (
            f" · {words.when(incident.scheduled_for, ctx.tz)} → "
            f"{words.when(incident.scheduled_until, ctx.tz)}"
        )
    return text
