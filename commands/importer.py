"""Importing a Statuspage page (SPEC §11): plain values in, our rows out, in the caller's
one transaction.

`import_page` takes what commands/statuspage_data.py read and makes our groups,
components, incidents, maintenances, updates, component history and subscribers
say the same, through storage/. Each Statuspage object is found again by its id
(storage/imports.py), so a second run updates and never duplicates. Imported
history is not news: nothing goes to the outbox, so neither Slack nor subscribers
hear of it. The run is one audit event.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from commands.addresses import check_email, validate_endpoint
from commands.common import audit_change, authorise
from commands.context import Context
from commands.errors import CommandError
from commands.import_report import ImportReport, Tally
from commands.statuspage_data import (
    IncidentData,
    Notes,
    PageData,
    PostmortemData,
    SubscriberData,
    TemplateData,
    UpdateData,
)
from storage import components as component_store
from storage import postmortems as postmortem_store
from storage import subscribers as subscriber_store
from storage import templates as template_store
from storage.counters import next_values
from storage.imports import (
    IMPORT_ACTOR,
    HistoryEntry,
    IdMap,
    imported_history,
    replace_history,
    subscriber_by_external_id,
)
from storage.models import (
    AffectedComponent,
    Component,
    ComponentChange,
    Group,
    Incident,
    IncidentUpdate,
    Postmortem,
    Subscriber,
    Template,
    new_code,
)
from storage.rules import (
    Cause,
    ComponentStatus,
    Impact,
    IncidentStatus,
    Kind,
    impact_for,
    is_closed,
)

# stage, items done, items in the stage
Progress = Callable[[str, int, int], None]

# A maintenance the page gave no window: as long as this from its start.
DEFAULT_WINDOW = timedelta(hours=1)
# What a template name becomes: statusbot's are one word (/incident open --template NAME).
_NAME_GAP = re.compile(r"[^A-Za-z0-9_.-]+")
TEMPLATE_STATE = ComponentStatus.MAJOR  # a component a template lists without a state


def import_page(
    session: Session,
    ctx: Context,
    data: PageData,
    *,
    source: str,
    progress: Progress | None = None,
) -> ImportReport:
    """Make our page say what `data` says; the caller's transaction commits or rolls back."""
    authorise(ctx, action="statuspage.import", target=source[:200])
    report = ImportReport(source=source, page_id=data.page.id)
    notes = Notes()
    run = _Run(session, ctx, data, report, notes, progress or _quiet)
    run.groups()
    run.components()
    run.incidents()
    run.history()
    run.subscribers()
    run.templates()
    run.postmortems()
    report.notes = data.notes.lines() + notes.lines()
    audit_change(
        session,
        ctx,
        action="statuspage.import",
        target=source[:200],
        before=None,
        after=report.audit(),
    )
    return report


def _quiet(stage: str, done: int, total: int) -> None:
    return None


class _Run:
    def __init__(
        self,
        session: Session,
        ctx: Context,
        data: PageData,
        report: ImportReport,
        notes: Notes,
        progress: Progress,
    ) -> None:
        self.session = session
        self.ctx = ctx
        self.data = data
        self.report = report
        self.notes = notes
        self.progress = progress
        self.ids = IdMap(session, data.page.id)
        self.groups_by_id: dict[str, Group] = {}
        self.codes = _Codes(session)
        self.components_by_id: dict[str, Component] = {}

    # Groups and components ------------------------------------------------

    def groups(self) -> None:
        tally = self.report.tallies["groups"]
        total = len(self.data.groups)
        for n, g in enumerate(self.data.groups, start=1):
            found = self._mapped(Group, "group", g.id)
            if found is None:
                found = component_store.group_named(self.session, g.name)
            new = found is None
            if found is None:
                found = Group(
                    code=self.codes.take(Group, g.id),
                    name=g.name,
                    name_key=component_store.name_key(g.name),
                    created_at=min(g.created_at or self.ctx.now, self.ctx.now),
                    updated_at=min(g.updated_at or self.ctx.now, self.ctx.now),
                )
                self.session.add(found)
            name = g.name
            holder = component_store.group_named(self.session, name)
            if holder is not None and holder is not found:
                self.notes.add("groups whose name another group has (name kept)", name)
                name = found.name
            changed = _assign(
                found,
                name=name,
                name_key=component_store.name_key(name),
                description=g.description,
                position=g.position,
            )
            if changed and not new:
                found.updated_at = min(g.updated_at or self.ctx.now, self.ctx.now)
            self.session.flush()
            self.ids.put("group", g.id, found.id, now=self.ctx.now)
            self.groups_by_id[g.id] = found
            tally.count(new=new, changed=changed)
            self.progress("groups", n, total)

    def components(self) -> None:
        tally = self.report.tallies["components"]
        live = {component_store.name_key(c.name): c for c in component_store.live(self.session)}
        mapped = set(self.ids.local_ids("component"))
        total = len(self.data.components)
        for n, c in enumerate(self.data.components, start=1):
            key = component_store.name_key(c.name)
            found = self._mapped(Component, "component", c.id)
            if found is None and c.listed:
                candidate = live.get(key)
                if candidate is not None and candidate.id not in mapped:
                    found = candidate  # a component of the same name is this one
            new = found is None
            if found is None:
                found = Component(
                    code=self.codes.take(Component, c.id),
                    name=c.name,
                    name_key=key,
                    status=c.status.value,
                    created_at=min(c.created_at or self.ctx.now, self.ctx.now),
                    updated_at=min(c.updated_at or self.ctx.now, self.ctx.now),
                )
                self.session.add(found)
            name = c.name
            holder = live.get(key)
            if c.listed and holder is not None and holder is not found:
                self.notes.add("components whose name another component has (named by id)", name)
                name = f"{c.name[:180]} ({c.id})"
                key = component_store.name_key(name)
            group = self.groups_by_id.get(c.group_id) if c.group_id else None
            removed = None if c.listed else (found.removed_at or self.ctx.now)
            changed = _assign(
                found,
                name=name,
                name_key=key,
                description=c.description,
                position=c.position,
                group_id=group.id if group else None,
                showcase=c.showcase,
                only_show_if_degraded=c.only_show_if_degraded,
                start_date=c.start_date,
                status=c.status.value,
                removed_at=removed,
            )
            if group is not None:
                found.group = group
            if changed and not new:
                found.updated_at = min(c.updated_at or self.ctx.now, self.ctx.now)
            self.session.flush()
            if c.listed:
                live[key] = found
            mapped.add(found.id)
            self.ids.put("component", c.id, found.id, now=self.ctx.now)
            self.components_by_id[c.id] = found
            tally.count(new=new, changed=changed)
            self.progress("components", n, total)

    # Incidents and maintenances --------------------------------------------

    def incidents(self) -> None:
        loaded = {
            i.id: i
            for i in self.session.scalars(
                select(Incident)
                # By the map, not a list of ids: a long history would pass SQLite's
                # limit on bound parameters.
                .where(Incident.id.in_(self.ids.local_ids_query("incident")))
                .options(
                    selectinload(Incident.updates).selectinload(IncidentUpdate.changes),
                    selectinload(Incident.affected),
                )
            )
        }
        new = [x for x in self.data.incidents if self.ids.get("incident", x.id) not in loaded]
        # Numbers for the new ones in one bump, in the order they happened.
        numbers = iter(next_values(self.session, len(new)))
        total = len(self.data.incidents)
        done: list[tuple[IncidentData, Incident, list[IncidentUpdate]]] = []
        with self.session.no_autoflush:
            for n, data in enumerate(self.data.incidents, start=1):
                row_id = self.ids.get("incident", data.id)
                incident = loaded.get(row_id) if row_id is not None else None
                done.append(self._incident(data, incident, numbers))
                self.progress("incidents", n, total)
        self.session.flush()  # once: the rows get their ids together
        for data, incident, rows in done:
            self.ids.put("incident", data.id, incident.id, now=self.ctx.now)
            for update, u in zip(rows, data.updates, strict=True):
                self.ids.put("update", u.id, update.id, now=self.ctx.now)

    def _incident(
        self, data: IncidentData, incident: Incident | None, numbers: Iterator[int]
    ) -> tuple[IncidentData, Incident, list[IncidentUpdate]]:
        """Add or bring up to date one incident and its updates (not flushed yet)."""
        kind_tally = self.report.tallies[
            "incidents" if data.kind is Kind.INCIDENT else "maintenances"
        ]
        new = incident is None
        impact, override = self._impact(data)
        if incident is None:
            incident = Incident(
                number=next(numbers),
                kind=data.kind.value,
                title=data.name,
                status=data.status,
                impact=impact.value,
                started_at=data.started_at,
                created_by=IMPORT_ACTOR,
                nudge_count=0,
                updates=[],
                affected=[],
            )
            self.session.add(incident)
        last = data.updates[-1]
        closed = is_closed(data.kind, data.status)
        scheduled_for, scheduled_until = data.scheduled_for, data.scheduled_until
        if data.kind is Kind.MAINTENANCE and (scheduled_for is None or scheduled_until is None):
            self.notes.add("maintenances without their window (the window guessed)", data.name)
            scheduled_for = scheduled_for or data.started_at
            scheduled_until = scheduled_until or data.resolved_at or scheduled_for + DEFAULT_WINDOW
        if scheduled_for and scheduled_until and scheduled_until < scheduled_for:
            self.notes.add("maintenances ending before they start (swapped)", data.name)
            scheduled_for, scheduled_until = scheduled_until, scheduled_for
        changed = _assign(
            incident,
            title=data.name,
            status=data.status,
            created_at=data.created_at,
            updated_at=max(data.updated_at, last.display_at),
            started_at=data.started_at,
            monitoring_at=data.monitoring_at,
            resolved_at=(data.resolved_at or last.display_at) if closed else None,
            scheduled_for=scheduled_for,
            scheduled_until=scheduled_until,
            # The scheduler moves only maintenances still to come, as statusbot's own.
            auto=data.kind is Kind.MAINTENANCE and data.status == "scheduled",
        )
        updates_changed, rows = self._updates(incident, data)
        affected = [*data.component_ids]
        for u in data.updates:
            affected.extend(ch.component_id for ch in u.changes or ())
        have = {a.component_id for a in incident.affected}
        for cid in dict.fromkeys(affected):
            component = self.components_by_id.get(cid)
            if component is not None and component.id not in have:
                incident.affected.append(
                    AffectedComponent(component=component, component_id=component.id)
                )
                have.add(component.id)
                changed = True
        changed |= _assign(incident, impact=impact.value, impact_override=override)
        kind_tally.count(new=new, changed=changed or updates_changed)
        return data, incident, rows

    def _impact(self, data: IncidentData) -> tuple[Impact, bool]:
        if data.kind is Kind.MAINTENANCE:
            return Impact.MAINTENANCE, True
        if data.impact_given:
            return data.impact, True
        states: dict[str, ComponentStatus] = {}
        for u in data.updates:
            if u.status != IncidentStatus.RESOLVED:
                for ch in u.changes or ():
                    states[ch.component_id] = ch.new_status
        return impact_for(states.values()), False

    def _updates(self, incident: Incident, data: IncidentData) -> tuple[bool, list[IncidentUpdate]]:
        """Add or bring up to date the incident's updates; whether any changed, and the
        rows in the order of the data's updates."""
        tally = self.report.tallies["updates"]
        by_row = {u.id: u for u in incident.updates}
        rows: list[IncidentUpdate] = []
        any_changed = False
        for u in data.updates:
            row_id = self.ids.get("update", u.id)
            update = by_row.get(row_id) if row_id is not None else None
            new = update is None
            if update is None:
                update = IncidentUpdate(
                    code=self.codes.take(IncidentUpdate, u.id), author=IMPORT_ACTOR, changes=[]
                )
                incident.updates.append(update)
            changed = _assign(
                update,
                status=u.status,
                body=u.body,
                display_at=u.display_at,
                created_at=u.created_at,
                updated_at=u.updated_at,
                deliver_notifications=u.deliver_notifications,
            )
            changed |= self._changes(update, u)
            any_changed |= new or changed
            tally.count(new=new, changed=changed)
            rows.append(update)
        return any_changed, rows

    def _changes(self, update: IncidentUpdate, u: UpdateData) -> bool:
        wanted = []
        for ch in u.changes or ():
            component = self.components_by_id.get(ch.component_id)
            if component is not None:
                wanted.append((component, ch.old_status.value, ch.new_status.value))
        have = [(c.component_id, c.old_status, c.new_status) for c in update.changes]
        if have == [(c.id, old, new) for c, old, new in wanted]:
            return False
        update.changes.clear()
        for component, old, new in wanted:
            update.changes.append(
                ComponentChange(
                    component=component, component_id=component.id, old_status=old, new_status=new
                )
            )
        return True

    # Component history (uptime) ------------------------------------------

    def history(self) -> None:
        """Each imported component's history: the updates' component changes, in time
        order, then a last entry that brings it to the state the page shows now."""
        tally = self.report.tallies["history"]
        incident_rows = {i.id: self.ids.get("incident", i.id) for i in self.data.incidents}
        per_component: dict[int, list[HistoryEntry]] = defaultdict(list)
        for data in self.data.incidents:
            cause = Cause.INCIDENT if data.kind is Kind.INCIDENT else Cause.MAINTENANCE
            for u in data.updates:
                for ch in u.changes or ():
                    component = self.components_by_id.get(ch.component_id)
                    if component is None:
                        continue
                    per_component[component.id].append(
                        HistoryEntry(
                            component.id,
                            min(u.display_at, self.ctx.now),
                            ch.old_status.value,
                            ch.new_status.value,
                            cause.value,
                            incident_rows[data.id],
                        )
                    )
        wanted: list[HistoryEntry] = []
        for c in self.data.components:
            component = self.components_by_id[c.id]
            entries = sorted(per_component.get(component.id, []), key=lambda e: e.at)
            last = entries[-1] if entries else None
            state = last.status if last else ComponentStatus.OPERATIONAL.value
            if state != c.status.value:
                at = _clamp(c.updated_at or self.ctx.now, last.at if last else None, self.ctx.now)
                entries.append(
                    HistoryEntry(component.id, at, state, c.status.value, Cause.MANUAL.value, None)
                )
            wanted.extend(entries)
        ids = sorted({self.components_by_id[c.id].id for c in self.data.components})
        have = imported_history(self.session, ids)
        key = _history_key
        if sorted(map(key, have)) == sorted(map(key, wanted)):
            tally.unchanged += len(wanted)
            return
        old = {key(e) for e in have}
        new = {key(e) for e in wanted}
        tally.added += len(new - old)
        tally.updated += len(old - new)
        tally.unchanged += len(new & old)
        replace_history(self.session, ids, wanted)

    # Subscribers, templates, postmortems ------------------------------------

    def subscribers(self) -> None:
        if self.data.subscribers is None:
            return
        tally = self.report.tallies["subscribers"]
        total = len(self.data.subscribers)
        for n, s in enumerate(self.data.subscribers, start=1):
            self._subscriber(s, tally)
            self.progress("subscribers", n, total)

    def _subscriber(self, s: SubscriberData, tally: Tally) -> None:
        try:
            email = check_email(s.email)
            endpoint = validate_endpoint(s.endpoint) if s.kind == "webhook" and s.endpoint else None
        except CommandError as error:
            self.notes.add("subscribers statusbot can't send to (skipped)", error.message[:80])
            return
        if s.kind == "webhook":
            check = self.ctx.endpoint_refusal
            refusal = "no URL" if not endpoint else check(endpoint) if check else None
            if refusal is not None:
                self.notes.add("webhook subscribers statusbot won't call (skipped)", refusal[:80])
                return
        address = endpoint if endpoint else email
        components = [
            self.components_by_id[c] for c in s.component_ids if c in self.components_by_id
        ]
        found: Subscriber | None = subscriber_by_external_id(self.session, s.id)
        if found is None:
            found = subscriber_store.find_live(self.session, kind=s.kind, address=address)
        confirmed = min(s.confirmed_at or self.ctx.now, self.ctx.now)
        if found is None:
            found = subscriber_store.add(
                self.session,
                kind=s.kind,
                email=email,
                endpoint=endpoint,
                components=components,
                source="import",
                now=self.ctx.now,
                confirmed=True,
                external_id=s.id,
            )
            found.created_at = min(s.created_at or confirmed, self.ctx.now)
            found.confirmed_at = confirmed
            self.ids.put("subscriber", s.id, found.id, now=self.ctx.now)
            tally.count(new=True, changed=False)
            return
        changed = False
        if [c.id for c in found.components] != [c.id for c in components]:
            subscriber_store.set_components(self.session, found, components)
            changed = True
        if found.confirmed_at is None:
            found.confirmed_at = confirmed  # confirmed there: nobody signs up again
            changed = True
        if found.external_id != s.id:
            found.external_id = s.id
            changed = True
        self.ids.put("subscriber", s.id, found.id, now=self.ctx.now)
        tally.count(new=False, changed=changed)

    def templates(self) -> None:
        if self.data.templates is None:
            return
        tally = self.report.tallies["templates"]
        total = len(self.data.templates)
        for n, t in enumerate(self.data.templates, start=1):
            self._template(t, tally)
            self.progress("templates", n, total)

    def _template(self, t: TemplateData, tally: Tally) -> None:
        row_id = self.ids.get("template", t.id)
        found = self.session.get(Template, row_id) if row_id is not None else None
        name = _template_name(t.name, t.id)
        if name != t.name:
            self.notes.add("template names made one word (spaces as -)", t.name[:80])
        holder = template_store.get(self.session, name)
        if holder is not None and holder is not found:
            if found is None and holder.created_by != IMPORT_ACTOR:
                # One of the team's own: left alone, the page's is kept beside it.
                self.notes.add("templates whose name a template has (named with its id)", name)
            name = found.name if found is not None else f"{name[:86]}-{t.id[:12]}"
        status = t.status or IncidentStatus.INVESTIGATING.value
        if status == IncidentStatus.RESOLVED.value:
            self.notes.add("templates that resolve (statusbot's open: investigating)", name)
            status = IncidentStatus.INVESTIGATING.value
        given = dict(t.states)
        components = [
            [self.components_by_id[cid].id, given.get(cid, TEMPLATE_STATE.value)]
            for cid in t.component_ids
            if cid in self.components_by_id
        ]
        title = t.title or name
        new = found is None
        if found is None:
            found = template_store.add(
                self.session,
                name=name,
                title=title,
                status=status,
                components=[],
                body=t.body,
                actor=IMPORT_ACTOR,
                now=self.ctx.now,
            )
            if _CODE.fullmatch(t.id) and template_store.by_code(self.session, t.id) is None:
                found.code = t.id  # old API clients and links name it by its id
        changed = _assign(
            found,
            name=name,
            name_key=template_store.name_key(name),
            title=title,
            status=status,
            components=components,
            body=t.body,
        )
        if changed and not new:
            found.updated_at = self.ctx.now
        self.session.flush()
        self.ids.put("template", t.id, found.id, now=self.ctx.now)
        tally.count(new=new, changed=changed and not new)

    def postmortems(self) -> None:
        found = [i.postmortem for i in self.data.incidents if i.postmortem is not None]
        if not found:
            return
        tally = self.report.tallies["postmortems"]
        for n, p in enumerate(found, start=1):
            self._postmortem(p, tally)
            self.progress("postmortems", n, len(found))

    def _postmortem(self, p: PostmortemData, tally: Tally) -> None:
        """The incident's postmortem as the page has it: published when it was, and
        subscribers counted as told when they were (so a later --notify says so); no
        announcement and no notification now."""
        incident_id = self.ids.get("incident", p.incident_id)
        incident = self.session.get(Incident, incident_id) if incident_id is not None else None
        if incident is None:  # pragma: no cover - every read incident is imported
            return
        published = min(p.published_at, self.ctx.now) if p.published_at else None
        written = min(p.body_updated_at or published or self.ctx.now, self.ctx.now)
        found = postmortem_store.of(self.session, incident)
        new = found is None
        if found is None:
            found = Postmortem(
                incident_id=incident.id,
                body=p.body,
                author=IMPORT_ACTOR,
                created_at=written,
                body_updated_at=written,
            )
            self.session.add(found)
        changed = _assign(
            found,
            body=p.body,
            body_updated_at=written,
            published_at=published,
            notified_at=(found.notified_at or published) if p.notified else found.notified_at,
        )
        self.session.flush()
        self.ids.put("postmortem", p.incident_id, found.id, now=self.ctx.now)
        tally.count(new=new, changed=changed and not new)

    # Helpers ---------------------------------------------------------------

    def _mapped(self, model: type[Group] | type[Component], kind: str, sp_id: str) -> Any:
        row_id = self.ids.get(kind, sp_id)
        return self.session.get(model, row_id) if row_id is not None else None


class _Codes:
    """Public ids for new rows: the Statuspage id itself when it has our form and is free,
    so links and API clients that know the old ids still find the same thing."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.taken: dict[type[Any], set[str]] = {}

    def take(self, model: type[Group] | type[Component] | type[IncidentUpdate], sp_id: str) -> str:
        taken = self.taken.get(model)
        if taken is None:
            taken = self.taken[model] = set(self.session.scalars(select(model.code)))
        code = sp_id if _CODE.fullmatch(sp_id) and sp_id not in taken else new_code()
        while code in taken:
            code = new_code()
        taken.add(code)
        return code


_CODE = re.compile(r"[a-z0-9]{12}")


def _template_name(name: str, statuspage_id: str) -> str:
    """A Statuspage template's name as one word statusbot's commands can type."""
    word = _NAME_GAP.sub("-", name).strip("-_.")[:100]
    return word if word else f"template-{statuspage_id[:12]}"


def _assign(row: object, **values: object) -> bool:
    """Set the attributes that differ; whether any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _clamp(at: datetime, low: datetime | None, high: datetime) -> datetime:
    at = at.astimezone(UTC)
    if low is not None and at < low:
        at = low
    return min(at, high)


def _history_key(e: HistoryEntry) -> tuple[int, datetime, str, str, int | None]:
    return (e.component_id, e.at, e.status, e.cause, e.incident_id)
