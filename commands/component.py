"""Component use cases: set a state by hand, add, rename, remove, list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from commands import textrules, words
from commands.common import audit_change, authorise, check_message, component_state, fan_out
from commands.context import Context
from commands.errors import CommandError
from commands.result import Notice, Result
from storage import components as store
from storage import outbox
from storage.escaping import escape
from storage.models import Component, Group
from storage.rules import Cause, ComponentStatus


def set_component(
    session: Session,
    ctx: Context,
    component: Component,
    state: ComponentStatus,
    *,
    message: str | None = None,
) -> Result:
    """Change a component's state by hand (cause: manual); announced."""
    usage = words.USAGE["component set"]
    authorise(ctx, action="component.set", target=component.name)
    body = check_message(message, usage)
    before = component_state(component)
    changed = store.change_status(
        session, component, state, at=ctx.now, cause=Cause.MANUAL, actor=ctx.actor
    )
    if changed is None:
        raise CommandError(
            f"{escape(component.name)} is already {words.component_label(state)}.", usage
        )
    old = changed.old
    audit_change(
        session,
        ctx,
        action="component.set",
        target=component.name,
        before=before,
        after=component_state(component),
    )
    text = (
        f"{escape(component.name)}: {words.component_label(old)} → {words.component_label(state)}"
        + (f"\n  {escape(body)}" if body else "")
    )
    rows: list[dict[str, Any]] = []  # the channels' and the subscribers': one INSERT
    outbox.enqueue(
        session,
        channels=ctx.notify_channels,
        event="component.changed",
        at=ctx.now,
        payload={
            "component": component.code,
            "name": component.name,
            "old_status": old.value,
            "new_status": state.value,
            "message": body,
            "actor": ctx.actor,
        },
        into=rows,
    )
    fan_out(
        session,
        ctx,
        "component.changed",
        payload={
            "component_id": component.id,
            "old_status": old.value,
            "new_status": state.value,
            "change_id": changed.change_id,
        },
        into=rows,
    )
    outbox.add(session, rows)
    return Result(
        reply=f"{escape(component.name)} is now {words.component_label(state)} "
        f"(was {words.component_label(old)}).",
        changed=True,
        notices=(Notice(event="component.changed", number=None, text=text),),
    )


def add_component(
    session: Session,
    ctx: Context,
    *,
    name: str,
    group: str | None = None,
    description: str | None = None,
    position: int | None = None,
    showcase: bool = True,
    start_date: date | None = None,
    only_show_if_degraded: bool = False,
) -> Result:
    """Add a component (and its group, when the group is new)."""
    usage = words.USAGE["component add"]
    authorise(ctx, action="component.add", target=name)
    name = _component_name(name, usage)
    if not name:
        raise CommandError("Name the component.", usage)
    if any(store.name_key(c.name) == store.name_key(name) for c in store.live(session)):
        raise CommandError(f"There is already a component called '{escape(name)}'.", usage)
    if description is not None:
        description = textrules.check(description, textrules.DESCRIPTION, usage)
    group = textrules.check(group or "", textrules.GROUP, usage)
    target_group: Group | None = None
    if group:
        if "/" in group:
            raise CommandError("Groups are one level deep: a group name can't contain '/'.", usage)
        if any(store.name_key(c.name) == store.name_key(group) for c in store.live(session)):
            raise CommandError(
                f"'{escape(group)}' is a component; a group needs a name of its own.", usage
            )
        target_group = store.group_named(session, group)
        if target_group is None:
            target_group = Group(
                name=group,
                name_key=store.name_key(group),
                position=store.next_position(session, None),
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            session.add(target_group)
            session.flush()
    elif store.group_named(session, name) is not None:
        raise CommandError(
            f"'{escape(name)}' is a group; give the component a name of its own.", usage
        )
    if position is not None and position < 1:
        raise CommandError("--position counts from 1.", usage)
    component = Component(
        name=name,
        name_key=store.name_key(name),
        description=description or None,
        position=position if position is not None else store.next_position(session, target_group),
        group=target_group,
        group_id=target_group.id if target_group else None,
        showcase=showcase,
        only_show_if_degraded=only_show_if_degraded,
        start_date=start_date or ctx.now.astimezone(ctx.page_tz).date(),
        status=ComponentStatus.OPERATIONAL.value,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(component)
    session.flush()
    audit_change(
        session,
        ctx,
        action="component.add",
        target=name,
        before=None,
        after=component_state(component),
    )
    where = f" in {escape(target_group.name)}" if target_group else ""
    return Result(reply=f"Added {escape(name)}{where}: Operational.", changed=True)


def rename_component(session: Session, ctx: Context, component: Component, new: str) -> Result:
    """Rename a component; its history and incidents follow it."""
    usage = words.USAGE["component rename"]
    authorise(ctx, action="component.rename", target=component.name)
    new = _component_name(new, usage)
    if not new:
        raise CommandError("Give the new name after --to.", usage)
    if any(
        c.id != component.id and store.name_key(c.name) == store.name_key(new)
        for c in store.live(session)
    ):
        raise CommandError(f"There is already a component called '{escape(new)}'.", usage)
    before = component_state(component)
    old = component.name
    component.name = new
    component.name_key = store.name_key(new)
    component.updated_at = ctx.now
    audit_change(
        session,
        ctx,
        action="component.rename",
        target=old,
        before=before,
        after=component_state(component),
    )
    return Result(reply=f"Renamed {escape(old)} to {escape(new)}.", changed=True)


class Keep:
    """The value of an edit's field that was not given: leave it as it is."""


KEEP = Keep()


def edit_component(
    session: Session,
    ctx: Context,
    component: Component,
    *,
    description: str | Keep | None = KEEP,
    showcase: bool | None = None,
    only_show_if_degraded: bool | None = None,
    group: Group | Keep | None = KEEP,
) -> Result:
    """Change a component's description, showcase, only-if-degraded or group; audited."""
    usage = words.USAGE["component add"]
    authorise(ctx, action="component.edit", target=component.name)
    before = _edit_state(component)
    if not isinstance(description, Keep):
        text = textrules.check(description or "", textrules.DESCRIPTION, usage)
        component.description = text or None
    if showcase is not None:
        component.showcase = showcase
    if only_show_if_degraded is not None:
        component.only_show_if_degraded = only_show_if_degraded
    if not isinstance(group, Keep) and group is not component.group:
        component.group = group
        component.group_id = group.id if group else None
        component.position = store.next_position(session, group)
    after = _edit_state(component)
    if after == before:
        return Result(reply=f"{escape(component.name)} is unchanged.")
    component.updated_at = ctx.now
    audit_change(
        session, ctx, action="component.edit", target=component.name, before=before, after=after
    )
    return Result(reply=f"Changed {escape(component.name)}.", changed=True)


def _edit_state(component: Component) -> dict[str, object]:
    return {**component_state(component), "only_show_if_degraded": component.only_show_if_degraded}


def _group_name(session: Session, name: str, usage: str, *, this: Group | None = None) -> str:
    name = textrules.check(name, textrules.GROUP, usage)
    if not name:
        raise CommandError("Name the group.", usage)
    if "/" in name:
        raise CommandError("Groups are one level deep: a group name can't contain '/'.", usage)
    if any(store.name_key(c.name) == store.name_key(name) for c in store.live(session)):
        raise CommandError(
            f"'{escape(name)}' is a component; a group needs a name of its own.", usage
        )
    other = store.group_named(session, name)
    if other is not None and other is not this:
        raise CommandError(f"There is already a group called '{escape(name)}'.", usage)
    return name


def _group_state(group: Group) -> dict[str, object]:
    return {
        "name": group.name,
        "description": group.description,
        "components": sorted(c.name for c in group.components if c.removed_at is None),
    }


def add_group(
    session: Session,
    ctx: Context,
    *,
    name: str,
    components: Sequence[Component],
    description: str | None = None,
) -> Result:
    """A new group holding these components (moved out of any group they were in)."""
    usage = words.USAGE["component add"]
    authorise(ctx, action="component.add_group", target=name[:200])
    name = _group_name(session, name, usage)
    if not components:
        raise CommandError("A group needs at least one component.", usage)
    text = textrules.check(description or "", textrules.DESCRIPTION, usage)
    group = Group(
        name=name,
        name_key=store.name_key(name),
        description=text or None,
        position=store.next_position(session, None),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(group)
    session.flush()
    _gather(session, ctx, group, components)
    audit_change(
        session,
        ctx,
        action="component.add_group",
        target=name,
        before=None,
        after=_group_state(group),
    )
    return Result(reply=f"Added group {escape(name)}.", changed=True)


def edit_group(
    session: Session,
    ctx: Context,
    group: Group,
    *,
    name: str | None = None,
    description: str | Keep | None = KEEP,
    components: Sequence[Component] | None = None,
) -> Result:
    """Rename a group, change its description, or change which components it holds."""
    usage = words.USAGE["component add"]
    authorise(ctx, action="component.edit_group", target=group.name)
    before = _group_state(group)
    if name is not None:
        group.name = _group_name(session, name, usage, this=group)
        group.name_key = store.name_key(group.name)
    if not isinstance(description, Keep):
        group.description = textrules.check(description or "", textrules.DESCRIPTION, usage) or None
    if components is not None:
        if not components:
            raise CommandError("A group needs at least one component.", usage)
        keep = {c.id for c in components}
        for member in list(group.components):
            if member.id not in keep:
                member.group = None
                member.group_id = None
                member.position = store.next_position(session, None)
                member.updated_at = ctx.now
        _gather(session, ctx, group, components)
    group.updated_at = ctx.now
    audit_change(
        session,
        ctx,
        action="component.edit_group",
        target=before["name"],  # type: ignore[arg-type]
        before=before,
        after=_group_state(group),
    )
    return Result(reply=f"Changed group {escape(group.name)}.", changed=True)


def remove_group(session: Session, ctx: Context, group: Group) -> Result:
    """Dissolve a group: its components stay on the page, ungrouped."""
    authorise(ctx, action="component.remove_group", target=group.name)
    before = _group_state(group)
    for member in list(group.components):
        member.group = None
        member.group_id = None
        member.position = store.next_position(session, None)
        member.updated_at = ctx.now
    session.flush()
    session.delete(group)
    audit_change(
        session, ctx, action="component.remove_group", target=group.name, before=before, after=None
    )
    return Result(reply=f"Removed group {escape(group.name)}; its components stay.", changed=True)


def _gather(session: Session, ctx: Context, group: Group, components: Sequence[Component]) -> None:
    for c in components:
        if c.group is not group:
            c.group = group
            c.group_id = group.id
            c.position = store.next_position(session, group)
            c.updated_at = ctx.now
    session.flush()


def _component_name(name: str, usage: str) -> str:
    """A component name by the text rules, without the characters commands separate names by."""
    name = textrules.check(name, textrules.NAME, usage)
    if "/" in name or "=" in name or "," in name:
        raise CommandError(
            "A component name can't contain '/', '=' or ','; they separate names in commands.",
            usage,
        )
    return name


def remove_component(session: Session, ctx: Context, component: Component) -> Result:
    """Take a component off the page; its history stays for past incidents."""
    authorise(ctx, action="component.remove", target=component.name)
    before = component_state(component)
    component.removed_at = ctx.now
    component.updated_at = ctx.now
    audit_change(
        session,
        ctx,
        action="component.remove",
        target=component.name,
        before=before,
        after=component_state(component),
    )
    return Result(reply=f"Removed {escape(component.name)} from the page.", changed=True)


def list_components(session: Session, ctx: Context) -> Result:
    """Every component by group, with its state."""
    live = store.live(session)
    if not live:
        return Result(reply="No components yet. Add one with " + words.USAGE["component add"])
    lines: list[str] = []
    current_group: int | None = None
    for c in live:
        if c.group is not None and c.group_id != current_group:
            lines.append(escape(c.group.name))
        current_group = c.group_id
        indent = "  " if c.group is not None else ""
        lines.append(f"{indent}• {escape(c.name)}: {words.component_label(c.status)}")
    return Result(reply="\n".join(lines))
