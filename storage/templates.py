"""Incident templates (SPEC §12): named starting points for `/incident open`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Component, Template
from storage.rules import ComponentStatus
from storage.snapshot import ComponentView, component_view


def name_key(name: str) -> str:
    """How template names are compared: case-insensitively."""
    return name.casefold()


def get(session: Session, name: str) -> Template | None:
    """The template called `name` (any case)."""
    return session.scalars(select(Template).where(Template.name_key == name_key(name))).first()


def by_code(session: Session, code: str) -> Template | None:
    """The template with this public id (the Slack form's picker names them so)."""
    return session.scalars(select(Template).where(Template.code == code)).first()


def every(session: Session) -> list[Template]:
    """Every template, by name."""
    return list(session.scalars(select(Template).order_by(Template.name_key)))


def add(
    session: Session,
    *,
    name: str,
    title: str,
    status: str,
    components: Sequence[tuple[Component, ComponentStatus]],
    body: str,
    actor: str,
    now: datetime,
) -> Template:
    """A new template, in the caller's transaction."""
    template = Template(
        name=name,
        name_key=name_key(name),
        title=title,
        status=status,
        components=[[c.id, state.value] for c, state in components],
        body=body,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    session.flush()
    return template


def remove(session: Session, template: Template) -> None:
    """Delete a template (incidents opened from it keep what it gave them)."""
    session.delete(template)
    session.flush()


def states(session: Session, template: Template) -> list[tuple[Component, ComponentStatus]]:
    """The template's component states, skipping components removed since it was made."""
    ids = [int(cid) for cid, _ in template.components]
    if not ids:
        return []
    live = {
        c.id: c
        for c in session.scalars(
            select(Component).where(Component.id.in_(ids), Component.removed_at.is_(None))
        )
    }
    return [
        (live[int(cid)], ComponentStatus(state))
        for cid, state in template.components
        if int(cid) in live
    ]


@dataclass(frozen=True, slots=True)
class TemplateView:
    """A template as frozen values: its components with the states it sets them to."""

    code: str
    name: str
    title: str
    status: str
    body: str
    components: tuple[ComponentView, ...]


def page(session: Session, *, limit: int, offset: int) -> list[Template]:
    """Templates by name, one page of them."""
    stmt = select(Template).order_by(Template.name_key).offset(offset).limit(limit)
    return list(session.scalars(stmt))


def view(session: Session, template: Template) -> TemplateView:
    """The template's frozen view (its removed components left out)."""
    return TemplateView(
        code=template.code,
        name=template.name,
        title=template.title,
        status=template.status,
        body=template.body,
        components=tuple(
            replace(component_view(c), status=state.value) for c, state in states(session, template)
        ),
    )
