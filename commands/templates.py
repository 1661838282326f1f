"""Incident templates (SPEC §12): add, list, show, remove, and opening from one.

Every transport ends here: the `/template` command, the declare form's picker,
and (later) the REST API. Reads are open to everyone; changes are for editors
and audited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from commands import textrules, words
from commands.common import audit_change, authorise, check_message, check_title
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from storage import templates as store
from storage.escaping import escape
from storage.models import Component, Template
from storage.rules import ComponentStatus, IncidentStatus

Changes = Sequence[tuple[Component, ComponentStatus]]

# A name is typed after /template and --template: one word, no quoting needed.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True, slots=True)
class Start:
    """What a template gives a new incident: the values of `open_incident` it fills."""

    name: str
    title: str
    status: IncidentStatus
    components: tuple[tuple[Component, ComponentStatus], ...]
    body: str


def check_name(name: str, usage: str) -> str:
    """A template's name: one word of letters, digits, '-', '_' or '.', up to 100."""
    if not _NAME.fullmatch(name):
        raise CommandError(
            f"'{escape(name[:120])}' can't name a template: use one word of letters, digits, "
            "- _ or . (up to 100), e.g. db-failover.",
            usage,
        )
    return name


def _state(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "title": template.title,
        "status": template.status,
        "components": template.components,
        "body": template.body,
    }


def add_template(
    session: Session,
    ctx: Context,
    *,
    name: str,
    title: str,
    status: IncidentStatus = IncidentStatus.INVESTIGATING,
    components: Changes = (),
    body: str | None = None,
) -> Result:
    """Keep a new template; a name in use is an error (remove the old one first)."""
    usage = words.USAGE["template add"]
    authorise(ctx, action="template.add", target=f"template {name[:100]}")
    name = check_name(name, usage)
    title = check_title(title, usage)
    text = check_message(body, usage)
    if status is IncidentStatus.RESOLVED:
        raise CommandError("A template's status is investigating, identified or monitoring.", usage)
    for component, state in components:
        if state is ComponentStatus.MAINTENANCE:
            raise CommandError(
                f"An incident can't put {escape(component.name)} under maintenance.", usage
            )
    if store.get(session, name) is not None:
        raise CommandError(
            f"There is a template {escape(name)} already: /template remove {escape(name)} "
            "first, or choose another name.",
            usage,
        )
    template = store.add(
        session,
        name=name,
        title=title,
        status=status.value,
        components=components,
        body=text,
        actor=ctx.actor,
        now=ctx.now,
    )
    audit_change(
        session,
        ctx,
        action="template.add",
        target=f"template {name}",
        before=None,
        after=_state(template),
    )
    return Result(reply=f"Added template {escape(name)}: /incident open --template {name}.")


def remove_template(session: Session, ctx: Context, *, name: str) -> Result:
    """Delete a template; audited with what it held."""
    usage = words.USAGE["template remove"]
    authorise(ctx, action="template.remove", target=f"template {name[:100]}")
    template = get_template(session, name, usage)
    before = _state(template)
    store.remove(session, template)
    audit_change(
        session,
        ctx,
        action="template.remove",
        target=f"template {template.name}",
        before=before,
        after=None,
    )
    return Result(reply=f"Removed template {escape(template.name)}.")


def get_template(session: Session, name: str, usage: str) -> Template:
    """The template called `name`, or an error naming the ones there are."""
    found = store.get(session, name)
    if found is None:
        names = ", ".join(escape(t.name) for t in store.every(session)) or "none yet"
        raise CommandError(f"There is no template {escape(name[:100])}. Templates: {names}.", usage)
    return found


def list_templates(session: Session, ctx: Context) -> Result:
    """Every template, one line each."""
    found = store.every(session)
    if not found:
        return Result(reply=words.NO_TEMPLATES)
    lines = ["Templates:"]
    lines += [f"• {escape(t.name)}: {words.quote(t.title)}" for t in found]
    return Result(reply="\n".join(lines))


def show_template(session: Session, ctx: Context, *, name: str) -> Result:
    """One template: everything it fills in."""
    template = get_template(session, name, words.USAGE["template show"])
    lines = [
        f"Template {escape(template.name)}",
        f"Title: {words.quote(template.title)}",
        f"Status: {words.status_label(template.status)}",
    ]
    states = store.states(session, template)
    if states:
        lines.append(
            "Components: "
            + ", ".join(f"{escape(c.name)}={words.component_label(s)}" for c, s in states)
        )
    if template.body:
        lines.append("Message:")
        lines.append("   " + escape(template.body).replace("\n", "\n   "))
    lines.append(f"Use it: /incident open --template {template.name} [TITLE…] [-- MORE]")
    return Result(reply="\n".join(lines))


def start_from(session: Session, name: str, usage: str) -> Start:
    """What template `name` fills in, for `/incident open --template` and the form."""
    template = get_template(session, name, usage)
    return start_of(session, template)


def start_of(session: Session, template: Template) -> Start:
    """A template's values, its removed components left out."""
    return Start(
        name=template.name,
        title=template.title,
        status=IncidentStatus(template.status),
        components=tuple(store.states(session, template)),
        body=template.body,
    )


def combine(
    start: Start, *, title: str, components: Changes, message: str | None
) -> tuple[str, list[tuple[Component, ComponentStatus]], str]:
    """A template's values with what was typed on top: a title replaces its title, named
    components override its states, and MORE follows its message."""
    chosen = {c.id: (c, s) for c, s in start.components}
    for component, state in components:
        chosen[component.id] = (component, state)
    more = textrules.tidy(message or "", textrules.MESSAGE)
    body = "\n\n".join(part for part in (start.body, more) if part)
    return title.strip() or start.title, list(chosen.values()), body
