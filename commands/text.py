"""The text grammar of the four slash commands (SPEC §3), turned into use-case calls.

Each `/command` has one handler taking the command's text exactly as Slack sends
it. Handlers only read words; the use cases check, change, audit and announce.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Literal

from sqlalchemy.orm import Session

from commands import component as components
from commands import drafts, notes, overview, postmortems, templates, words
from commands import incident as incidents
from commands import maintenance as maintenances
from commands import subscribers as subs
from commands.common import authorise
from commands.context import Context
from commands.errors import CommandError
from commands.names import (
    find_component,
    parse_choice,
    parse_component_list,
    parse_component_states,
    parse_state,
)
from commands.result import Result
from commands.tokens import Opt, Words, parse_id, split_words, unslack
from commands.when import parse_date, parse_when
from storage import notes as note_store
from storage import postmortems as postmortem_store
from storage.escaping import escape
from storage.models import Component
from storage.rules import ComponentStatus, Impact, IncidentStatus, Kind, MaintenanceStatus

Handler = Callable[[Session, Context, str], Result]

OPEN_STATUSES = [IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING]
INCIDENT_IMPACTS = [Impact.NONE, Impact.MINOR, Impact.MAJOR, Impact.CRITICAL]

VERBS: dict[str, tuple[str, ...]] = {
    "incident": (
        "open",
        "update",
        "resolve",
        "reopen",
        "note",
        "publish",
        "discard",
        "postmortem",
        "edit",
        "list",
        "show",
        "help",
    ),
    "maintenance": ("schedule", "update", "start", "complete", "cancel", "list", "show", "help"),
    "component": ("set", "add", "rename", "remove", "list", "help"),
    "status": (),
    "template": ("add", "list", "show", "remove", "help"),
    "subscribers": ("count", "list", "show", "add", "add-webhook", "remove", "help"),
}
READ_VERBS = frozenset({"list", "show", "help"})
# Reads that name customers' addresses are for editors, so who asks matters for them
# (a user-group editor is looked up); only help is open to everyone.
OPEN_VERBS: dict[str, frozenset[str]] = {"subscribers": frozenset({"help"})}
HELP_WORDS = ("help", "-h", "--help")


def may_change(command: str, text: str) -> bool:
    """Whether `/command text` asks for a change, so that who asks matters; reads don't.

    A line that is no command at all counts as a read: it ends in an error
    before anyone's rights are checked.
    """
    verb = text.strip().partition(" ")[0].lower()
    return verb in VERBS.get(command, ()) and verb not in OPEN_VERBS.get(command, READ_VERBS)


def _verb(text: str, command: str, verbs: Mapping[str, object]) -> tuple[str, str]:
    head, _, rest = text.strip().partition(" ")
    verb = head.strip().lower()
    if not verb or verb in HELP_WORDS:
        return "help", rest
    if verb not in verbs:
        raise CommandError(
            f"/{command} has no '{escape(unslack(head))}'. It takes: {', '.join(verbs)}.",
            words.help_text(command),
        )
    return verb, rest


def _words(rest: str, usage_key: str, options: Mapping[str, Opt] | None = None) -> Words:
    return split_words(rest, options=options or {}, usage=words.USAGE[usage_key])


def _no_args(w: Words, usage_key: str) -> None:
    if w.args:
        raise CommandError(f"Unexpected '{escape(' '.join(w.args))}'.", words.USAGE[usage_key])


def _one_id(w: Words, usage_key: str) -> int:
    usage = words.USAGE[usage_key]
    if not w.args:
        raise CommandError("Which one? Give its number, e.g. 12 or #12.", usage)
    if len(w.args) > 1:
        raise CommandError(
            f"Unexpected '{escape(' '.join(w.args[1:]))}' after the number. Put a message "
            "after a lone --.",
            usage,
        )
    return parse_id(w.args[0], usage=usage)


def incident(session: Session, ctx: Context, text: str) -> Result:
    """/incident: open, update, resolve, reopen, note, publish, discard, edit, list, show,
    help."""
    verb, rest = _verb(text, "incident", dict.fromkeys(VERBS["incident"]))
    if verb == "help":
        return Result(reply=words.help_text("incident"))
    # Drafts and unpublished postmortems are shown to editors only. A read asks Slack
    # nothing: a user group's members are what its last lookup said (bot/slack).
    editor = ctx.editors.allows(ctx.actor)
    if verb == "list":
        _no_args(_words(rest, "incident list"), "incident list")
        return overview.list_items(session, ctx, Kind.INCIDENT, drafts=editor)
    if verb == "show":
        number = _one_id(_words(rest, "incident show"), "incident show")
        found = incidents.get_incident(session, number, words.USAGE["incident show"], drafts=editor)
        written = postmortem_store.of(session, found)
        return overview.show(
            found,
            ctx,
            notes=note_store.of(session, found),
            postmortem=written if editor or (written and written.published_at) else None,
        )
    authorise(ctx, action=f"incident.{verb}", target="incident")
    key = f"incident {verb}"
    usage = words.USAGE[key]
    if verb == "open":
        w = _words(
            rest,
            key,
            {
                "impact": Opt.VALUE,
                "status": Opt.VALUE,
                "components": Opt.VALUE,
                "at": Opt.VALUE,
                "draft": Opt.FLAG,
                "template": Opt.VALUE,
            }
            | SILENT,
        )
        o = w.options
        heading, message = " ".join(w.args), w.message
        opening = _status(o.get("status"), usage)
        changes = _states(session, o.get("components"), usage)
        name = o.get("template")
        if isinstance(name, str):
            start = templates.start_from(session, name, usage)
            heading, changes, message = templates.combine(
                start, title=heading, components=changes, message=message
            )
            opening = opening or start.status
        return incidents.open_incident(
            session,
            ctx,
            title=heading,
            message=message,
            status=opening or IncidentStatus.INVESTIGATING,
            impact=_impact(o.get("impact"), usage),
            components=changes,
            at=_at(ctx, o.get("at"), usage),
            notify=_notify(w),
            draft=o.get("draft") is True,
        )
    if verb == "update":
        w = _words(
            rest,
            key,
            {"impact": Opt.VALUE, "status": Opt.VALUE, "components": Opt.VALUE, "at": Opt.VALUE}
            | SILENT,
        )
        o = w.options
        status = o.get("status")
        return incidents.update_incident(
            session,
            ctx,
            number=_one_id(w, key),
            message=w.message,
            status=(
                parse_choice(status, list(IncidentStatus), what="incident status", usage=usage)
                if isinstance(status, str)
                else None
            ),
            impact=_impact(o.get("impact"), usage),
            components=_states(session, o.get("components"), usage),
            at=_at(ctx, o.get("at"), usage),
            notify=_notify(w),
        )
    if verb == "resolve":
        w = _words(rest, key, {"at": Opt.VALUE} | SILENT)
        return incidents.resolve_incident(
            session,
            ctx,
            number=_one_id(w, key),
            message=w.message,
            at=_at(ctx, w.options.get("at"), usage),
            notify=_notify(w),
        )
    if verb == "reopen":
        w = _words(rest, key, SILENT)
        return incidents.reopen_incident(
            session, ctx, number=_one_id(w, key), message=w.message, notify=_notify(w)
        )
    if verb == "publish":
        w = _words(rest, key, SILENT)
        return drafts.publish_draft(
            session, ctx, number=_one_id(w, key), message=w.message, notify=_notify(w)
        )
    if verb == "discard":
        w = _words(rest, key)
        if w.message is not None:
            raise CommandError("discard takes no message.", usage)
        return drafts.discard_draft(session, ctx, number=_one_id(w, key))
    if verb == "postmortem":
        w = _words(rest, key, {"publish": Opt.FLAG, "notify": Opt.FLAG, "revert": Opt.FLAG})
        number = _one_id(w, key)
        o = w.options
        publish, revert = o.get("publish") is True, o.get("revert") is True
        if publish and revert:
            raise CommandError("Give --publish or --revert, not both.", usage)
        if (publish or revert) and w.message is not None:
            raise CommandError("--publish and --revert take no text; save it first.", usage)
        if "notify" in o and not publish:
            raise CommandError("--notify goes with --publish.", usage)
        if publish:
            return postmortems.publish_postmortem(
                session, ctx, number=number, notify=o.get("notify") is True
            )
        if revert:
            return postmortems.revert_postmortem(session, ctx, number=number)
        return postmortems.save_postmortem(session, ctx, number=number, body=w.message)
    if verb == "note":
        w = _words(rest, key)
        return notes.add_note(session, ctx, number=_one_id(w, key), text=w.message)
    # edit
    w = _words(rest, key, {"title": Opt.VALUE, "update": Opt.VALUE})
    number = _one_id(w, key)
    title, update = w.options.get("title"), w.options.get("update")
    if isinstance(title, str) and update is None:
        if w.message is not None:
            raise CommandError("--title takes the new title; there is no message.", usage)
        return incidents.edit_title(session, ctx, number=number, title=title)
    if isinstance(update, str) and title is None:
        n = parse_id(update, usage=usage)
        return incidents.edit_update(
            session, ctx, number=number, update=n, body=w.message, kind=Kind.INCIDENT
        )
    raise CommandError("Say what to edit: --title NEW TITLE, or --update N -- NEW TEXT.", usage)


def maintenance(session: Session, ctx: Context, text: str) -> Result:
    """/maintenance: schedule, update, start, complete, cancel, list, show, help."""
    verb, rest = _verb(text, "maintenance", dict.fromkeys(VERBS["maintenance"]))
    if verb == "help":
        return Result(reply=words.help_text("maintenance"))
    if verb == "list":
        _no_args(_words(rest, "maintenance list"), "maintenance list")
        return overview.list_items(session, ctx, Kind.MAINTENANCE)
    if verb == "show":
        number = _one_id(_words(rest, "maintenance show"), "maintenance show")
        return overview.show(
            maintenances.get_maintenance(session, number, words.USAGE["maintenance show"]), ctx
        )
    authorise(ctx, action=f"maintenance.{verb}", target="maintenance")
    key = f"maintenance {verb}"
    usage = words.USAGE[key]
    if verb == "schedule":
        w = _words(
            rest,
            key,
            {"start": Opt.VALUE, "end": Opt.VALUE, "components": Opt.VALUE, "auto": Opt.FLAG}
            | SILENT,
        )
        o = w.options
        if not isinstance(o.get("start"), str) or not isinstance(o.get("end"), str):
            raise CommandError("Give both --start WHEN and --end WHEN.", usage)
        start = _time(ctx, str(o["start"]), usage, "future", what="--start")
        end = _time(ctx, str(o["end"]), usage, "future", what="--end")
        names = o.get("components")
        return maintenances.schedule_maintenance(
            session,
            ctx,
            title=" ".join(w.args),
            start=start,
            end=end,
            components=parse_component_list(session, names, usage=usage)
            if isinstance(names, str)
            else (),
            auto=o.get("auto", True) is not False,
            message=w.message,
            notify=_notify(w),
        )
    if verb == "update":
        w = _words(rest, key, {"status": Opt.VALUE} | SILENT)
        number = _one_id(w, key)
        status = w.options.get("status")
        if isinstance(status, str):
            target = parse_choice(
                status, list(MaintenanceStatus), what="maintenance status", usage=usage
            )
        else:
            found = maintenances.get_maintenance(session, number, usage)
            target = MaintenanceStatus(found.status)
        return maintenances.move_maintenance(
            session,
            ctx,
            number=number,
            status=target,
            message=w.message,
            verb="update",
            notify=_notify(w),
        )
    w = _words(rest, key, SILENT)
    target = {
        "start": MaintenanceStatus.IN_PROGRESS,
        "complete": MaintenanceStatus.COMPLETED,
        "cancel": MaintenanceStatus.CANCELLED,
    }[verb]
    return maintenances.move_maintenance(
        session,
        ctx,
        number=_one_id(w, key),
        status=target,
        message=w.message,
        verb=verb,
        notify=_notify(w),
    )


def component(session: Session, ctx: Context, text: str) -> Result:
    """/component: set, add, rename, remove, list, help."""
    verb, rest = _verb(text, "component", dict.fromkeys(VERBS["component"]))
    if verb == "help":
        return Result(reply=words.help_text("component"))
    if verb == "list":
        _no_args(_words(rest, "component list"), "component list")
        return components.list_components(session, ctx)
    key = f"component {verb}"
    usage = words.USAGE[key]
    authorise(ctx, action=f"component.{verb}", target="component")
    if verb == "set":
        w = _words(rest, key)
        if len(w.args) < 2:
            raise CommandError("Name the component and its new state, e.g. API major.", usage)
        state = parse_state(w.args[-1], usage=usage)
        found = find_component(session, " ".join(w.args[:-1]), usage=usage)
        return components.set_component(session, ctx, found, state, message=w.message)
    if verb == "add":
        w = _words(
            rest,
            key,
            {
                "group": Opt.VALUE,
                "description": Opt.VALUE,
                "position": Opt.VALUE,
                "showcase": Opt.FLAG,
                "start-date": Opt.VALUE,
            },
        )
        o = w.options
        if w.message is not None:
            raise CommandError("/component add takes no message; use --description.", usage)
        position = o.get("position")
        start = o.get("start-date")
        return components.add_component(
            session,
            ctx,
            name=" ".join(w.args),
            group=_str(o.get("group")),
            description=_str(o.get("description")),
            position=_position(position, usage) if isinstance(position, str) else None,
            showcase=o.get("showcase", True) is not False,
            start_date=_date(ctx, start, usage) if isinstance(start, str) else None,
        )
    if verb == "rename":
        w = _words(rest, key, {"to": Opt.VALUE})
        new = w.options.get("to")
        if not isinstance(new, str):
            raise CommandError("Give the new name with --to.", usage)
        found = find_component(session, " ".join(w.args), usage=usage)
        return components.rename_component(session, ctx, found, new)
    # remove
    w = _words(rest, key)
    found = find_component(session, " ".join(w.args), usage=usage)
    return components.remove_component(session, ctx, found)


def status(session: Session, ctx: Context, text: str) -> Result:
    """/status: the overall picture; `help` explains it."""
    word = text.strip().lower()
    if word in HELP_WORDS:
        return Result(reply=words.help_text("status"))
    if word:
        raise CommandError(
            f"/status takes no arguments (got '{escape(unslack(text.strip()))}').",
            words.USAGE["status"],
        )
    return overview.status(session, ctx)


def subscribers(session: Session, ctx: Context, text: str) -> Result:
    """/subscribers: count, list, show, add, add-webhook, remove, help (editors)."""
    verb, rest = _verb(text, "subscribers", dict.fromkeys(VERBS["subscribers"]))
    if verb == "help":
        return Result(reply=words.help_text("subscribers"))
    key = f"subscribers {verb}"
    usage = words.USAGE[key]
    # Every verb names customers' addresses or changes who is told: editors only.
    authorise(ctx, action=f"subscribers.{verb.replace('-', '_')}", target="subscribers")
    if verb == "count":
        _no_args(_words(rest, key), key)
        return subs.count(session, ctx)
    if verb in ("show", "remove"):
        w = _words(rest, key)
        if len(w.args) != 1 or w.message is not None:
            raise CommandError("Give one email address or subscriber id.", usage)
        if verb == "show":
            return subs.show(session, ctx, which=w.args[0])
        return subs.remove(session, ctx, which=w.args[0])
    w = _words(rest, key, {"components": Opt.VALUE, "email": Opt.VALUE})
    names = w.options.get("components")
    chosen = parse_component_list(session, names, usage=usage) if isinstance(names, str) else ()
    if w.message is not None:
        raise CommandError(f"/{key} takes no message after --.", usage)
    if verb == "list":
        if w.args or "email" in w.options:
            raise CommandError("list takes only --components.", usage)
        return subs.list_subscribers(session, ctx, components=chosen or None)
    if len(w.args) != 1:
        what = "email address" if verb == "add" else "webhook URL"
        raise CommandError(f"Give one {what}.", usage)
    email = w.options.get("email")
    if verb == "add":
        if email is not None:
            raise CommandError("add takes the address itself; --email is for add-webhook.", usage)
        return subs.add_email(session, ctx, email=w.args[0], components=chosen)
    if not isinstance(email, str):
        raise CommandError("Give the address its failure notices go to with --email.", usage)
    return subs.add_webhook(session, ctx, url=w.args[0], email=email, components=chosen)


def template(session: Session, ctx: Context, text: str) -> Result:
    """/template: add, list, show, remove, help."""
    verb, rest = _verb(text, "template", dict.fromkeys(VERBS["template"]))
    if verb == "help":
        return Result(reply=words.help_text("template"))
    key = f"template {verb}"
    usage = words.USAGE[key]
    if verb == "list":
        _no_args(_words(rest, key), key)
        return templates.list_templates(session, ctx)
    if verb != "show":
        authorise(ctx, action=f"template.{verb}", target="template")
    if verb in ("show", "remove"):
        w = _words(rest, key)
        if len(w.args) != 1 or w.message is not None:
            raise CommandError("Give the template's name, e.g. db-failover.", usage)
        if verb == "show":
            return templates.show_template(session, ctx, name=w.args[0])
        return templates.remove_template(session, ctx, name=w.args[0])
    w = _words(rest, key, {"title": Opt.VALUE, "status": Opt.VALUE, "components": Opt.VALUE})
    if len(w.args) != 1:
        raise CommandError("Give the template one name (one word), e.g. db-failover.", usage)
    title = w.options.get("title")
    if not isinstance(title, str):
        raise CommandError("Give the incident title it starts with: --title TITLE.", usage)
    return templates.add_template(
        session,
        ctx,
        name=w.args[0],
        title=title,
        status=_status(w.options.get("status"), usage) or IncidentStatus.INVESTIGATING,
        components=_states(session, w.options.get("components"), usage),
        body=w.message,
    )


HANDLERS: dict[str, Handler] = {
    "incident": incident,
    "maintenance": maintenance,
    "component": component,
    "status": status,
    "subscribers": subscribers,
    "template": template,
}

SILENT: dict[str, Opt] = {"silent": Opt.FLAG}


def _notify(w: Words) -> bool:
    """Off with --silent (SPEC §12), as the modal's notify toggle."""
    return w.options.get("silent") is not True


def _position(text: str, usage: str) -> int:
    word = text.strip()
    if not word.isascii() or not word.isdigit() or not 1 <= int(word) <= 10_000:
        raise CommandError(f"--position takes a whole number from 1, not '{escape(text)}'.", usage)
    return int(word)


def _str(value: str | bool | None) -> str | None:
    return value if isinstance(value, str) else None


def _status(value: str | bool | None, usage: str) -> IncidentStatus | None:
    if not isinstance(value, str):
        return None
    return parse_choice(value, OPEN_STATUSES, what="status for a new incident", usage=usage)


def _impact(value: str | bool | None, usage: str) -> Impact | None:
    if not isinstance(value, str):
        return None
    return parse_choice(value, INCIDENT_IMPACTS, what="impact", usage=usage)


def _states(
    session: Session, value: str | bool | None, usage: str
) -> list[tuple[Component, ComponentStatus]]:
    if not isinstance(value, str):
        return []
    return parse_component_states(session, value, usage=usage)


def _at(ctx: Context, value: str | bool | None, usage: str) -> datetime | None:
    if not isinstance(value, str):
        return None
    return _time(ctx, value, usage, "past", what="--at")


def _time(
    ctx: Context, text: str, usage: str, prefer: Literal["future", "past"], *, what: str
) -> datetime:
    try:
        return parse_when(text, now=ctx.now, tz=ctx.tz, prefer=prefer)
    except CommandError as error:
        raise CommandError(f"{what}: {error.message}", usage) from error


def _date(ctx: Context, text: str, usage: str) -> date:
    try:
        return parse_date(text, today=ctx.now.astimezone(ctx.page_tz).date())
    except CommandError as error:
        raise CommandError(f"--start-date: {error.message}", usage) from error
