"""`/v1/pages/{page_id}/components` and `/component-groups`: Statuspage's component routes.

Writes end in commands/component.py: add (then set, when a status is given), rename,
edit, set and remove; groups are added, edited and dissolved there too.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.http.v1.body import BadRequest, Fields, Kind, unwrap
from bot.http.v1.route import ApiError, Call, Operation, Reply, Route, combined, not_found
from commands import component as uc
from commands.context import Context
from commands.result import Result
from storage import components as store
from storage.models import Component, Group
from storage.rules import ComponentStatus
from storage.snapshot import component_view, group_view

COMPONENT = Fields(
    "component",
    {
        "name": Kind.TEXT,
        "description": Kind.TEXT,
        "status": Kind.TEXT,
        "group_id": Kind.TEXT,
        "showcase": Kind.BOOL,
        "only_show_if_degraded": Kind.BOOL,
        "start_date": Kind.TEXT,
    },
    ignored=frozenset({"automation_email", "position"}),
)
GROUP = Fields(
    "component_group",
    {"name": Kind.TEXT, "components": Kind.IDS, "description": Kind.TEXT},
    ignored=frozenset({"position"}),
)
COMPONENT_EXAMPLE = '{"component": {"name": "API", "status": "operational"}}'
GROUP_EXAMPLE = '{"component_group": {"name": "Backend", "components": ["ID", …]}}'
STATUSES = ", ".join(s.value for s in ComponentStatus)


def status_of(value: object, where: str) -> ComponentStatus:
    """A component status by Statuspage's exact name; 422 otherwise."""
    try:
        return ComponentStatus(str(value))
    except ValueError:
        raise BadRequest(
            422, f"{where} must be one of {STATUSES}; got {str(value)[:60]!r}."
        ) from None


def live_component(session: Session, code: str) -> Component | None:
    """The live component with this id."""
    stmt = select(Component).where(Component.code == code, Component.removed_at.is_(None))
    return session.scalars(stmt).first()


def group_by_code(session: Session, code: str) -> Group | None:
    """The group with this id."""
    return session.scalars(select(Group).where(Group.code == code)).first()


def components_named(session: Session, codes: list[str], where: str) -> list[Component]:
    """Live components by id, in the order given; 422 naming an unknown one."""
    found: list[Component] = []
    for code in dict.fromkeys(codes):
        component = live_component(session, code)
        if component is None:
            raise ApiError(422, f"{where}: there is no component with id {code[:60]!r}.")
        found.append(component)
    return found


# --- components ------------------------------------------------------------------------


def list_components(call: Call) -> Reply:
    """Every live component and group, in page order (groups as Statuspage lists them)."""
    objects = call.objects

    def look(session: Session) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        shown: set[int] = set()
        for c in store.live(session):
            if c.group is not None and c.group.id not in shown:
                shown.add(c.group.id)
                out.append({**objects.group(group_view(c.group)), "automation_email": None})
            out.append(objects.v1_component(component_view(c)))
        return out

    items = call.read(look)
    return Reply(200, paged(call, items, size_name="per_page"))


def get_component(call: Call) -> Reply:
    code = call.params["component_id"]
    objects = call.objects

    def look(session: Session) -> dict[str, Any]:
        component = live_component(session, code)
        if component is None:
            raise not_found("component", code)
        return objects.v1_component(component_view(component))

    return Reply(200, call.read(look))


def create_component(call: Call) -> Reply:
    fields = COMPONENT.check(unwrap(call.body(), "component", example=COMPONENT_EXAMPLE))
    name = fields.get("name")
    if not name:
        raise ApiError(422, f"component[name] is required, e.g. {COMPONENT_EXAMPLE}.")
    status = status_of(fields["status"], "component[status]") if fields.get("status") else None
    start = _date(fields.get("start_date"))
    objects = call.objects
    made: list[Component] = []

    def change(session: Session, ctx: Context) -> Result:
        group = _group_field(session, fields)
        added = uc.add_component(
            session,
            ctx,
            name=name,
            group=group.name if group else None,
            description=fields.get("description"),
            showcase=fields.get("showcase") is not False,
            start_date=start,
            only_show_if_degraded=bool(fields.get("only_show_if_degraded")),
        )
        component = next(
            c for c in store.live(session) if store.name_key(c.name) == store.name_key(name.strip())
        )
        made.append(component)
        if status is None or status is ComponentStatus.OPERATIONAL:
            return added
        return combined(added, uc.set_component(session, ctx, component, status))

    body = call.write(
        change,
        lambda session: objects.v1_component(component_view(made[0])),
        what="create component",
    )
    return Reply(201, body)


def update_component(call: Call) -> Reply:
    code = call.params["component_id"]
    fields = COMPONENT.check(unwrap(call.body(), "component", example=COMPONENT_EXAMPLE))
    if "start_date" in fields:
        raise ApiError(
            422, "component[start_date] is set when a component is made; it can't change."
        )
    status = status_of(fields["status"], "component[status]") if fields.get("status") else None
    objects = call.objects
    found: list[Component] = []

    def change(session: Session, ctx: Context) -> Result:
        component = live_component(session, code)
        if component is None:
            raise not_found("component", code)
        found.append(component)
        results: list[Result] = []
        name = fields.get("name")
        if name is not None and name.strip() != component.name:
            results.append(uc.rename_component(session, ctx, component, name))
        edits: dict[str, Any] = {}
        if "description" in fields:
            edits["description"] = fields["description"]
        for flag in ("showcase", "only_show_if_degraded"):
            if fields.get(flag) is not None:
                edits[flag] = fields[flag]
        if "group_id" in fields:
            edits["group"] = _group_field(session, fields)
        if edits:
            results.append(uc.edit_component(session, ctx, component, **edits))
        if status is not None and status.value != component.status:
            results.append(uc.set_component(session, ctx, component, status))
        return combined(*results)

    body = call.write(
        change,
        lambda session: objects.v1_component(component_view(found[0])),
        what="update component",
    )
    return Reply(200, body)


def delete_component(call: Call) -> Reply:
    code = call.params["component_id"]

    def change(session: Session, ctx: Context) -> Result:
        component = live_component(session, code)
        if component is None:
            raise not_found("component", code)
        return uc.remove_component(session, ctx, component)

    call.write(change, lambda session: None, what="delete component")
    return Reply(204, None)


def _group_field(session: Session, fields: dict[str, Any]) -> Group | None:
    code = fields.get("group_id")
    if not code:
        return None
    group = group_by_code(session, code)
    if group is None:
        raise ApiError(
            422, f"component[group_id]: there is no component group with id {code[:60]!r}."
        )
    return group


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ApiError(
            422, f"component[start_date] must be a day, e.g. 2026-06-10; got {text[:40]!r}."
        ) from None


# --- component groups ------------------------------------------------------------------


def _group_body(call: Call) -> dict[str, Any]:
    body = dict(call.body())
    # Statuspage takes the group's description beside the wrapper, not in it.
    description = body.pop("description", None)
    fields = GROUP.check(unwrap(body, "component_group", example=GROUP_EXAMPLE)) if body else {}
    if description is not None:
        if not isinstance(description, str):
            raise ApiError(422, "description must be a string.")
        fields["description"] = description
    return fields


def list_groups(call: Call) -> Reply:
    objects = call.objects

    def look(session: Session) -> list[dict[str, Any]]:
        return [objects.v1_group(group_view(g)) for g in store.groups(session)]

    return Reply(200, paged(call, call.read(look), size_name="per_page"))


def get_group(call: Call) -> Reply:
    code = call.params["id"]
    objects = call.objects

    def look(session: Session) -> dict[str, Any]:
        group = group_by_code(session, code)
        if group is None:
            raise not_found("component group", code)
        return objects.v1_group(group_view(group))

    return Reply(200, call.read(look))


def create_group(call: Call) -> Reply:
    fields = _group_body(call)
    if not fields.get("name"):
        raise ApiError(422, f"component_group[name] is required, e.g. {GROUP_EXAMPLE}.")
    objects = call.objects

    def change(session: Session, ctx: Context) -> Result:
        members = components_named(
            session, fields.get("components") or [], "component_group[components]"
        )
        return uc.add_group(
            session,
            ctx,
            name=fields["name"],
            components=members,
            description=fields.get("description"),
        )

    def view(session: Session) -> dict[str, Any]:
        group = store.group_named(session, fields["name"].strip())
        assert group is not None  # add_group just made it
        return objects.v1_group(group_view(group))

    return Reply(201, call.write(change, view, what="create component group"))


def update_group(call: Call) -> Reply:
    code = call.params["id"]
    fields = _group_body(call)
    objects = call.objects
    found: list[Group] = []

    def change(session: Session, ctx: Context) -> Result:
        group = group_by_code(session, code)
        if group is None:
            raise not_found("component group", code)
        found.append(group)
        members = None
        if fields.get("components") is not None:
            members = components_named(session, fields["components"], "component_group[components]")
        edits: dict[str, Any] = {}
        if "description" in fields:
            edits["description"] = fields["description"]
        return uc.edit_group(
            session, ctx, group, name=fields.get("name"), components=members, **edits
        )

    return Reply(
        200,
        call.write(
            change, lambda s: objects.v1_group(group_view(found[0])), what="update component group"
        ),
    )


def delete_group(call: Call) -> Reply:
    code = call.params["id"]
    objects = call.objects
    shown: list[dict[str, Any]] = []

    def change(session: Session, ctx: Context) -> Result:
        group = group_by_code(session, code)
        if group is None:
            raise not_found("component group", code)
        shown.append(objects.v1_group(group_view(group)))
        return uc.remove_group(session, ctx, group)

    call.write(change, lambda session: None, what="delete component group")
    return Reply(200, shown[0])


def paged(call: Call, items: list[dict[str, Any]], *, size_name: str) -> list[dict[str, Any]]:
    """One page of a list (`page` from 1, `per_page` or `limit`); all of it without them."""
    page = _positive(call.query("page"), "page", default=1)
    size = _positive(call.query(size_name), size_name, default=0)
    if not size:
        return items if page == 1 else []
    return items[(page - 1) * size : page * size]


def _positive(text: str | None, name: str, *, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise ApiError(400, f"{name} must be a whole number from 1; got {text[:20]!r}.")
    return int(text)


ROUTES = (
    Route(
        "/pages/{page_id}/components",
        (
            Operation(
                "GET",
                list_components,
                "Get a list of components",
                "getPagesPageIdComponents",
                200,
                "Component[]",
                query=("page", "per_page"),
            ),
            Operation(
                "POST",
                create_component,
                "Create a component",
                "postPagesPageIdComponents",
                201,
                "Component",
                "PostComponent",
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/components/{component_id}",
        (
            Operation(
                "GET",
                get_component,
                "Get a component",
                "getPagesPageIdComponentsComponentId",
                200,
                "Component",
            ),
            Operation(
                "PATCH",
                update_component,
                "Update a component",
                "patchPagesPageIdComponentsComponentId",
                200,
                "Component",
                "PatchComponent",
            ),
            Operation(
                "PUT",
                update_component,
                "Update a component",
                "putPagesPageIdComponentsComponentId",
                200,
                "Component",
                "PatchComponent",
            ),
            Operation(
                "DELETE",
                delete_component,
                "Delete a component",
                "deletePagesPageIdComponentsComponentId",
                204,
                "",
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/component-groups",
        (
            Operation(
                "GET",
                list_groups,
                "Get a list of component groups",
                "getPagesPageIdComponentGroups",
                200,
                "GroupComponent[]",
                query=("page", "per_page"),
            ),
            Operation(
                "POST",
                create_group,
                "Create a component group",
                "postPagesPageIdComponentGroups",
                201,
                "GroupComponent",
                "PostComponentGroup",
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/component-groups/{id}",
        (
            Operation(
                "GET",
                get_group,
                "Get a component group",
                "getPagesPageIdComponentGroupsId",
                200,
                "GroupComponent",
            ),
            Operation(
                "PATCH",
                update_group,
                "Update a component group",
                "patchPagesPageIdComponentGroupsId",
                200,
                "GroupComponent",
                "PostComponentGroup",
            ),
            Operation(
                "PUT",
                update_group,
                "Update a component group",
                "putPagesPageIdComponentGroupsId",
                200,
                "GroupComponent",
                "PostComponentGroup",
            ),
            Operation(
                "DELETE",
                delete_group,
                "Delete a component group",
                "deletePagesPageIdComponentGroupsId",
                200,
                "GroupComponent",
            ),
        ),
    ),
)
