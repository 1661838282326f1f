"""Reading a Statuspage page's documents into plain values (SPEC §11): no database, no I/O.

`read_page` takes file name → decoded JSON (commands/statuspage_data.py's
`decode`) and returns a `PageData`. Nothing trusts a type: every field is read
with a fallback and each kind of mess is counted under its name in `Notes`.
Text is made to follow the text rules (commands/textrules.py) rather than
refused: one odd character in a years-old update must not stop a team moving
its history. Control and bidirectional characters are removed, over-long text
is cut, and each repair is noted by name. Names are made what statusbot takes
(unique, without separators, without a group prefix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from commands import textrules
from commands.errors import CommandError
from commands.statuspage_data import (
    MAX_COMPONENTS,
    MAX_ID,
    MAX_INCIDENTS,
    MAX_SUBSCRIBERS,
    MAX_UPDATES,
    V1_FILES,
    V2_FILES,
    ChangeData,
    ComponentData,
    GroupData,
    IncidentData,
    Notes,
    PageData,
    PageInfo,
    PostmortemData,
    SubscriberData,
    TemplateData,
    UpdateData,
)
from commands.statuspage_fields import FieldReader
from storage.rules import ComponentStatus, Impact, IncidentStatus, Kind, MaintenanceStatus

INCIDENT_STATUSES = {s.value for s in IncidentStatus}
MAINTENANCE_STATUSES = {s.value for s in MaintenanceStatus}
IMPACTS = {i.value for i in Impact}
# Component names can't hold the characters commands separate names by (commands/component.py).
_SEPARATORS = re.compile(r"\s*[/=,]\s*")
# How pages write a component under its group in one name: "Group - Name", "Group: Name".
_PREFIX_MARKS = (" - ", " – ", " — ", ": ", " / ")


class _Reader(FieldReader):
    """Reads one page's documents, noting every repair."""

    # Objects --------------------------------------------------------------

    def page(self, docs: Mapping[str, Any], fallback_url: str) -> PageInfo:
        found: dict[str, Any] = {}
        for name in ("page.json", *V2_FILES):
            doc = docs.get(name)
            candidate = doc.get("page") if isinstance(doc, dict) and name != "page.json" else doc
            if isinstance(candidate, dict) and candidate.get("id"):
                found = candidate
                break
        page_id = self.ident(found.get("id"), "page")
        if page_id is None:
            self.notes.add("sources without a page id (named by their address)", fallback_url)
            page_id = re.sub(r"[^A-Za-z0-9._-]+", "-", fallback_url)[:MAX_ID] or "statuspage"
        zone = found.get("time_zone")
        url = found.get("url")
        return PageInfo(
            id=page_id,
            name=self.text(found.get("name"), textrules.NAME, "the page"),
            url=url if isinstance(url, str) else fallback_url,
            time_zone=zone if isinstance(zone, str) else "Etc/UTC",
        )

    def component_lists(
        self, docs: Mapping[str, Any]
    ) -> tuple[list[GroupData], list[ComponentData]]:
        groups: dict[str, GroupData] = {}
        components: dict[str, ComponentData] = {}
        items: list[Any] = []
        for name in ("components.json", "summary.json"):
            found = _list(docs.get(name), "components")
            if found:
                items = found
                break
        v1_groups = _list(docs.get("component-groups.json"), "component_groups")
        if len(items) + len(v1_groups) > MAX_COMPONENTS:
            raise CommandError(
                f"The page lists {len(items) + len(v1_groups):,} components; an import takes "
                f"at most {MAX_COMPONENTS:,}."
            )
        for n, item in enumerate([*v1_groups, *items]):
            if not isinstance(item, dict):
                self.notes.add("component entries that are not objects (skipped)")
                continue
            is_group = item.get("group") is True or (
                n < len(v1_groups) and item.get("group") is not False
            )
            if is_group or isinstance(item.get("components"), list):
                group = self.group(item, n)
                if group is not None and group.id not in groups:
                    groups[group.id] = group
                continue
            component = self.component(item, n)
            if component is not None and component.id not in components:
                components[component.id] = component
        # A group's members may be named only by the group (group_id missing).
        for group in groups.values():
            for cid in group.component_ids:
                c = components.get(cid)
                if c is not None and c.group_id is None:
                    components[cid] = _replace(c, group_id=group.id)
        for cid, c in list(components.items()):
            if c.group_id is not None and c.group_id not in groups:
                self.notes.add("components in a group the page does not list (ungrouped)", c.name)
                components[cid] = _replace(c, group_id=None)
        return list(groups.values()), list(components.values())

    def group(self, item: Mapping[str, Any], n: int) -> GroupData | None:
        gid = self.ident(item.get("id"), "group")
        name = self.text(item.get("name"), textrules.GROUP, f"group {gid}")
        if gid is None or not name:
            self.notes.add("groups without an id or a name (skipped)", name or str(gid))
            return None
        return GroupData(
            id=gid,
            name=name,
            description=self.text(item.get("description"), textrules.DESCRIPTION, name) or None,
            position=self.position(item.get("position"), n),
            component_ids=self.ids(item.get("components"), "component"),
            created_at=self.when(item.get("created_at"), name, "group times"),
            updated_at=self.when(item.get("updated_at"), name, "group times"),
        )

    def component(
        self, item: Mapping[str, Any], n: int, *, listed: bool = True
    ) -> ComponentData | None:
        cid = self.ident(item.get("id") or item.get("code"), "component")
        name = self.text(item.get("name"), textrules.NAME, f"component {cid}")
        if cid is None or not name:
            self.notes.add("components without an id or a name (skipped)", name or str(cid))
            return None
        showcase = item.get("showcase")
        return ComponentData(
            id=cid,
            name=name,
            description=self.text(item.get("description"), textrules.DESCRIPTION, name) or None,
            position=self.position(item.get("position"), n),
            group_id=self.ident(item.get("group_id"), "group"),
            showcase=showcase if isinstance(showcase, bool) else True,
            only_show_if_degraded=item.get("only_show_if_degraded") is True,
            start_date=self.day(item.get("start_date"), name),
            status=self.state(item.get("status"), f"on {name}")
            if "status" in item
            else ComponentStatus.OPERATIONAL,
            created_at=self.when(item.get("created_at"), name, "component times"),
            updated_at=self.when(item.get("updated_at"), name, "component times"),
            listed=listed,
        )

    def incidents(
        self, docs: Mapping[str, Any], components: dict[str, ComponentData]
    ) -> list[IncidentData]:
        raw: list[tuple[Any, Kind | None]] = []
        for name, key, kind in (
            ("incidents.json", "incidents", None),
            ("scheduled-maintenances.json", "scheduled_maintenances", Kind.MAINTENANCE),
            ("summary.json", "incidents", None),
            ("summary.json", "scheduled_maintenances", Kind.MAINTENANCE),
        ):
            raw.extend((item, kind) for item in _list(docs.get(name), key))
        if len(raw) > MAX_INCIDENTS:
            raise CommandError(
                f"The page has {len(raw):,} incidents; an import takes at most {MAX_INCIDENTS:,}."
            )
        out: dict[str, IncidentData] = {}
        for item, kind in raw:
            if not isinstance(item, dict):
                self.notes.add("incident entries that are not objects (skipped)")
                continue
            incident = self.incident(item, kind, components)
            # The same incident in several files: the first (the fullest list) wins.
            if incident is not None and incident.id not in out:
                out[incident.id] = incident
        return sorted(out.values(), key=lambda i: (i.created_at, i.id))

    def incident(
        self,
        item: Mapping[str, Any],
        kind: Kind | None,
        components: dict[str, ComponentData],
    ) -> IncidentData | None:
        iid = self.ident(item.get("id"), "incident")
        if iid is None:
            self.notes.add("incidents without an id (skipped)", str(item.get("name"))[:40])
            return None
        name = self.text(item.get("name"), textrules.TITLE, f"incident {iid}")
        if not name:
            self.notes.add("incidents without a name (named by their id)", iid)
            name = f"Incident {iid}"
        where = f"'{name[:40]}'"
        impact_word = item.get("impact")
        if kind is None:
            maintenance = impact_word == "maintenance" or bool(item.get("scheduled_for"))
            kind = Kind.MAINTENANCE if maintenance else Kind.INCIDENT
        for entry in item.get("components") or []:
            if isinstance(entry, dict):
                self.inside_incident(entry, components)
        updates = self.updates(item.get("incident_updates"), iid, where, components)
        created = (
            self.when(item.get("created_at"), where, "incident times")
            or (updates[0].display_at if updates else None)
            or self.when(item.get("started_at"), where, "incident times")
        )
        if created is None:
            self.notes.add("incidents with no time at all (dated now)", where)
            created = self.now
        if not updates:
            self.notes.add("incidents without updates (given one from their own fields)", where)
            updates = [
                UpdateData(
                    id=f"{iid}-0",
                    status="",
                    body="",
                    display_at=created,
                    created_at=created,
                    updated_at=created,
                    deliver_notifications=False,
                    changes=None,
                )
            ]
        status = self.incident_status(item.get("status"), kind, updates, item, where)
        previous = (
            IncidentStatus.INVESTIGATING.value
            if kind is Kind.INCIDENT
            else MaintenanceStatus.SCHEDULED.value
        )
        read: list[UpdateData] = []
        for n, u in enumerate(updates):
            last = n == len(updates) - 1
            previous = self.update_status(u.status, kind, status if last else previous, where)
            read.append(_replace(u, status=previous))
        updates = read
        if impact_word in IMPACTS and (kind is Kind.MAINTENANCE) == (impact_word == "maintenance"):
            impact, given = Impact(impact_word), True
        else:
            if impact_word is not None and kind is Kind.INCIDENT:
                self.notes.add("unknown impacts (worked out from the components)", where)
            impact, given = (Impact.MAINTENANCE if kind is Kind.MAINTENANCE else Impact.NONE), False
        postmortem = None
        body = item.get("postmortem_body")
        if isinstance(body, str) and body.strip():
            postmortem = PostmortemData(
                incident_id=iid,
                body=body.strip(),
                published_at=self.when(item.get("postmortem_published_at"), where, "times"),
                body_updated_at=self.when(
                    item.get("postmortem_body_last_updated_at"), where, "times"
                ),
                notified=item.get("postmortem_notified_subscribers") is True,
            )
        component_ids = self.ids(item.get("components"), "component")
        return IncidentData(
            id=iid,
            kind=kind,
            name=name,
            status=status,
            impact=impact,
            impact_given=given,
            created_at=created,
            updated_at=self.when(item.get("updated_at"), where, "incident times") or created,
            started_at=self.when(item.get("started_at"), where, "incident times") or created,
            monitoring_at=self.when(item.get("monitoring_at"), where, "incident times"),
            resolved_at=self.when(item.get("resolved_at"), where, "incident times"),
            scheduled_for=self.when(item.get("scheduled_for"), where, "maintenance times"),
            scheduled_until=self.when(item.get("scheduled_until"), where, "maintenance times"),
            component_ids=component_ids,
            updates=tuple(updates),
            postmortem=postmortem,
        )

    def inside_incident(
        self, entry: Mapping[str, Any], components: dict[str, ComponentData]
    ) -> str | None:
        """The id of a component an incident names, adding it when the page doesn't list it."""
        cid = self.ident(entry.get("id") or entry.get("code"), "component")
        if cid is None or cid in components:
            return cid
        found = self.component(entry, len(components), listed=False)
        if found is None:
            return None
        components[cid] = found
        self.notes.add(
            "components only inside incidents (kept, off the page, with their history)",
            found.name,
        )
        return cid

    def updates(
        self,
        value: Any,
        iid: str,
        where: str,
        components: dict[str, ComponentData],
    ) -> list[UpdateData]:
        if not isinstance(value, list):
            if value is not None:
                self.notes.add("incident_updates that are not lists (ignored)", where)
            return []
        if len(value) > MAX_UPDATES:
            self.notes.add(f"incidents with over {MAX_UPDATES:,} updates (newest kept)", where)
        out: list[UpdateData] = []
        seen: set[str] = set()
        for n, item in enumerate(value[:MAX_UPDATES]):
            if not isinstance(item, dict):
                self.notes.add("updates that are not objects (skipped)", where)
                continue
            uid = self.ident(item.get("id"), "update")
            if uid is None or uid in seen:
                self.notes.add("updates without an id (given one)", where)
                uid = f"{iid}-{n + 1}"
            seen.add(uid)
            display = (
                self.when(item.get("display_at"), where, "update times")
                or self.when(item.get("created_at"), where, "update times")
                or self.when(item.get("updated_at"), where, "update times")
            )
            if display is None:
                self.notes.add("updates with no time (skipped)", where)
                continue
            created = self.when(item.get("created_at"), where, "update times") or display
            affected = item.get("affected_components")
            changes: tuple[ChangeData, ...] | None
            if affected is None:
                changes = None
                self.notes.add(
                    "updates with affected_components: null (no component changes known)", where
                )
            elif not isinstance(affected, list):
                changes = None
                self.notes.add("affected_components that are not lists (ignored)", where)
            else:
                changes = tuple(self.changes(affected, where, components))
            notify = item.get("deliver_notifications")
            status = item.get("status")
            out.append(
                UpdateData(
                    id=uid,
                    status=status if isinstance(status, str) else "",
                    body=self.text(item.get("body"), textrules.MESSAGE, f"an update of {where}"),
                    display_at=display,
                    created_at=created,
                    updated_at=self.when(item.get("updated_at"), where, "update times") or created,
                    deliver_notifications=notify if isinstance(notify, bool) else True,
                    changes=changes,
                )
            )
        # Statuspage lists updates newest first; we keep them in the order they happened.
        out.sort(key=lambda u: (u.display_at, u.created_at))
        return out

    def changes(
        self, affected: list[Any], where: str, components: dict[str, ComponentData]
    ) -> Iterable[ChangeData]:
        for entry in affected:
            if not isinstance(entry, dict):
                self.notes.add("affected_components entries that are not objects", where)
                continue
            cid = self.inside_incident(
                {
                    "code": entry.get("code") or entry.get("id"),
                    "name": entry.get("name"),
                    "status": entry.get("new_status"),
                },
                components,
            )
            if cid is None:
                continue
            yield ChangeData(
                component_id=cid,
                old_status=self.state(entry.get("old_status"), f"in {where}"),
                new_status=self.state(entry.get("new_status"), f"in {where}"),
            )

    def incident_status(
        self,
        value: Any,
        kind: Kind,
        updates: list[UpdateData],
        item: Mapping[str, Any],
        where: str,
    ) -> str:
        known = INCIDENT_STATUSES if kind is Kind.INCIDENT else MAINTENANCE_STATUSES
        if value in known:
            return str(value)
        if kind is Kind.INCIDENT and value == "postmortem":
            self.notes.add("incidents in status postmortem (imported as resolved)", where)
            return IncidentStatus.RESOLVED.value
        for update in reversed(updates):
            if update.status in known:
                self.notes.add(
                    "unknown statuses (read from the latest update)", f"{value!r} {where}"
                )
                return update.status
        closed = item.get("resolved_at") is not None
        guess: IncidentStatus | MaintenanceStatus
        if kind is Kind.INCIDENT:
            guess = IncidentStatus.RESOLVED if closed else IncidentStatus.INVESTIGATING
        else:
            guess = MaintenanceStatus.COMPLETED if closed else MaintenanceStatus.SCHEDULED
        self.notes.add(f"unknown statuses (imported as {guess.value})", f"{value!r} {where}")
        return guess.value

    def update_status(self, value: str, kind: Kind, fallback: str, where: str) -> str:
        """An update's status; an unknown one is the one before it (the incident's, last)."""
        known = INCIDENT_STATUSES if kind is Kind.INCIDENT else MAINTENANCE_STATUSES
        if value in known:
            return value
        if value == "postmortem" and kind is Kind.INCIDENT:
            return IncidentStatus.RESOLVED.value
        if value:
            self.notes.add(
                "unknown update statuses (read as the status before them)",
                f"{value[:30]!r} {where}",
            )
        return fallback

    def subscribers(self, docs: Mapping[str, Any]) -> tuple[SubscriberData, ...] | None:
        doc = docs.get("subscribers.json")
        if doc is None:
            return None
        items = _list(doc, "subscribers")
        if len(items) > MAX_SUBSCRIBERS:
            raise CommandError(
                f"The page has {len(items):,} subscribers; an import takes at most "
                f"{MAX_SUBSCRIBERS:,}."
            )
        out: dict[str, SubscriberData] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            sid = self.ident(item.get("id"), "subscriber")
            mode = item.get("mode") or ("webhook" if item.get("endpoint") else "email")
            if sid is None or sid in out:
                self.notes.add("subscribers without an id (skipped)")
                continue
            if mode not in ("email", "webhook"):
                self.notes.add(
                    "subscribers by sms, slack, teams or others (statusbot sends email and "
                    "webhooks; skipped)",
                    str(mode)[:20],
                )
                continue
            if item.get("state") in ("unconfirmed", "quarantined") or (
                "confirmed_at" in item and item.get("confirmed_at") is None
            ):
                self.notes.add("unconfirmed or quarantined subscribers (skipped)")
                continue
            if item.get("unsubscribed_at") or item.get("purge_at"):
                self.notes.add("unsubscribed subscribers (skipped)")
                continue
            email = item.get("email")
            endpoint = item.get("endpoint")
            created = self.when(item.get("created_at"), f"subscriber {sid}", "subscriber times")
            out[sid] = SubscriberData(
                id=sid,
                kind=str(mode),
                email=email.strip() if isinstance(email, str) else "",
                endpoint=endpoint.strip() if isinstance(endpoint, str) else None,
                component_ids=self.ids(item.get("components"), "component"),
                created_at=created,
                confirmed_at=self.when(
                    item.get("confirmed_at"), f"subscriber {sid}", "subscriber times"
                )
                or created
                or self.now,
            )
        return tuple(out.values())

    def templates(self, docs: Mapping[str, Any]) -> tuple[TemplateData, ...] | None:
        doc = docs.get("incident_templates.json")
        if doc is None:
            return None
        out: list[TemplateData] = []
        for item in _list(doc, "incident_templates"):
            if not isinstance(item, dict):
                continue
            tid = self.ident(item.get("id"), "template")
            name = self.text(item.get("name"), textrules.NAME, f"template {tid}")
            if tid is None or not name:
                self.notes.add("templates without an id or a name (skipped)")
                continue
            status = item.get("update_status")
            out.append(
                TemplateData(
                    id=tid,
                    name=name,
                    title=self.text(item.get("title"), textrules.TITLE, name),
                    body=self.text(item.get("body"), textrules.MESSAGE, name),
                    status=status if status in INCIDENT_STATUSES else None,
                    component_ids=self.ids(item.get("components"), "component"),
                    states=_states(item.get("components")),
                )
            )
        return tuple(out)


# Statuspage's template components are its Component objects, whose `status` is the
# component's own (operational, mostly); statusbot's /v1 answers the state the template
# sets. So only an outage state is taken as the template's; the rest get the default.
_STATES = {
    s.value for s in (ComponentStatus.DEGRADED, ComponentStatus.PARTIAL, ComponentStatus.MAJOR)
}


def _states(components: Any) -> tuple[tuple[str, str], ...]:
    """A template's components' outage states, from the objects that carry one."""
    if not isinstance(components, list):
        return ()
    return tuple(
        (str(c["id"]), c["status"])
        for c in components
        if isinstance(c, dict)
        and isinstance(c.get("id"), str)
        and isinstance(c.get("status"), str)
        and c["status"] in _STATES
    )


def read_page(docs: Mapping[str, Any], *, source: str, now: datetime) -> PageData:
    """The page in `docs` (file name → decoded JSON) as plain values, with its notes."""
    if not any(name in docs for name in (*V2_FILES, *V1_FILES)):
        raise CommandError(
            f"{source} has none of a Statuspage page's files ({', '.join(V2_FILES)})."
        )
    for name, doc in docs.items():
        if not isinstance(doc, dict | list):
            raise CommandError(
                f"{name} from {source} holds {type(doc).__name__}, not a Statuspage object or list."
            )
    reader = _Reader(now)
    page = reader.page(docs, source)
    groups, component_list = reader.component_lists(docs)
    components = {c.id: c for c in component_list}
    incidents = reader.incidents(docs, components)
    for incident in incidents:
        for cid in incident.component_ids:
            if cid not in components:  # named only by id: nothing more is known of it
                reader.notes.add("incidents naming components by id alone (ignored)", cid)
    groups, final = _names(list(components.values()), groups, reader.notes)
    return PageData(
        page=page,
        groups=tuple(groups),
        components=tuple(final),
        incidents=tuple(
            _replace(i, component_ids=tuple(c for c in i.component_ids if c in components))
            for i in incidents
        ),
        subscribers=reader.subscribers(docs),
        templates=reader.templates(docs),
        notes=reader.notes,
    )


def _names(
    components: list[ComponentData], groups: list[GroupData], notes: Notes
) -> tuple[list[GroupData], list[ComponentData]]:
    """Names as statusbot takes them: unique, without separators, without a group prefix."""
    by_id = {g.id: g for g in groups}
    by_name = {g.name.casefold(): g for g in groups}
    seen_groups: set[str] = set()
    tidy_groups = []
    for g in groups:
        name = g.name
        n = 2
        while name.casefold() in seen_groups:
            name = f"{g.name} ({n})"
            n += 1
        if name != g.name:
            notes.add("groups sharing a name (numbered)", g.name)
        seen_groups.add(name.casefold())
        tidy_groups.append(_replace(g, name=name))
    out: list[ComponentData] = []
    taken: set[str] = set()
    # Listed components claim their names before the ones only inside incidents.
    for c in sorted(components, key=lambda c: not c.listed):
        name = _SEPARATORS.sub(" - ", c.name)
        if name != c.name:
            notes.add("component names with '/', '=' or ',' (written with ' - ')", c.name)
        group_id = c.group_id
        for mark in _PREFIX_MARKS:
            head, sep, rest = c.name.partition(mark)
            group = by_id.get(group_id) if group_id else by_name.get(head.casefold())
            if (
                sep
                and rest.strip()
                and group is not None
                and head.casefold() == group.name.casefold()
            ):
                name = _SEPARATORS.sub(" - ", rest.strip())
                group_id = group.id
                notes.add("group-prefixed component names (the group's name taken off)", c.name)
                break
        base = name
        n = 2
        while " ".join(name.split()).casefold() in taken:
            group = by_id.get(group_id) if group_id else None
            name = f"{group.name} - {base}" if group and n == 2 else f"{base} ({n})"
            n += 1
        if name != base:
            notes.add("components sharing a name (told apart by group or number)", base)
        taken.add(" ".join(name.split()).casefold())
        out.append(_replace(c, name=name[: textrules.NAME.limit], group_id=group_id))
    return tidy_groups, out


def _list(doc: Any, key: str) -> list[Any]:
    """The list in a document: the document itself (v1) or under `key` (v2)."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        value = doc.get(key)
        if isinstance(value, list):
            return value
    return []


def _replace(value: Any, **changes: Any) -> Any:
    return replace(value, **changes)
