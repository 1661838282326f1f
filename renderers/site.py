"""Every file of the public page (SPEC §6), rendered from one snapshot, as bytes to write."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields, replace
from datetime import UTC, datetime

from renderers.badge import render_badge
from renderers.calendar import render_calendar
from renderers.feeds import render_feeds
from renderers.html import render_html, stylesheet
from renderers.statuspage import render_api
from renderers.subscribe import SUBSCRIBE, render_subscribe
from storage.snapshot import AffectedView, IncidentView, Snapshot

CALENDAR = "maintenance.ics"
BADGE = "badge.svg"


def render_site(
    snapshot: Snapshot, *, incidents: Collection[int] | None = None
) -> dict[str, bytes]:
    """Path → bytes for the whole page; `incidents` limits which incident pages are rendered."""
    files: dict[str, bytes] = {}
    for path, text in render_html(snapshot, incidents=incidents).items():
        files[path] = text.encode("utf-8")
    for path, text in render_api(snapshot).items():
        files[path] = text.encode("utf-8")
    files.update(render_feeds(snapshot))
    files[CALENDAR] = render_calendar(snapshot)
    files[BADGE] = render_badge(snapshot).encode("utf-8")
    files[SUBSCRIBE] = render_subscribe(snapshot).encode("utf-8")
    sheet = stylesheet()  # what every page links
    files[sheet.path] = sheet.text.encode("utf-8")
    return files


def shared_by_incident_pages(snapshot: Snapshot) -> tuple[object, ...]:
    """What every incident page shows besides its own incident; when it changes, all change.

    The page's name, address and zone, the group names that "Affected" lists,
    and the stylesheet every page links. An incremental publish renders every
    incident page again when this differs from the last publish.
    """
    groups = tuple((g.code, g.name) for g in snapshot.groups)
    return (snapshot.page, groups, stylesheet().path)


_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# What an incident's page shows of it besides its components, and of each component.
_PAGE_FIELDS = tuple(f.name for f in fields(IncidentView) if f.name != "components")
_SHOWN_OF_COMPONENT = tuple(
    f.name for f in fields(AffectedView) if f.name not in ("status", "updated_at")
)


def incident_page_key(item: IncidentView) -> IncidentView:
    """What an incident's own page shows of it: equal keys, equal pages.

    The view, less what the page never shows of the components it names (their
    status now and when they last changed), which a component's change alters
    in every incident that ever named it: the JSON needs those, the page not.
    """
    components = tuple(replace(c, status="", updated_at=_NEVER) for c in item.components)
    return replace(item, components=components)


def same_incident_page(a: IncidentView, b: IncidentView) -> bool:
    """Whether two views make the same incident page: `incident_page_key(a) ==
    incident_page_key(b)`, without building the keys (a component's change asks it of
    every incident naming the component; their updates are then the same objects)."""
    if a is b:
        return True
    if any(getattr(a, name) != getattr(b, name) for name in _PAGE_FIELDS):
        return False
    if len(a.components) != len(b.components):
        return False
    return all(
        x is y or all(getattr(x, name) == getattr(y, name) for name in _SHOWN_OF_COMPONENT)
        for x, y in zip(a.components, b.components, strict=True)
    )


def incident_page(number: int) -> str:
    """The path of an incident's or maintenance's own page."""
    return f"incidents/{number}.html"
