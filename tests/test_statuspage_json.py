"""api/v2/*.json against Statuspage's public API: fields, key order, enums, lists, times."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from renderers.statuspage import iso_timestamp, render_api
from storage.rules import (
    ComponentStatus,
    Impact,
    IncidentStatus,
    MaintenanceStatus,
    page_status,
    worst,
)
from storage.snapshot import (
    ChangeView,
    ComponentView,
    GroupView,
    IncidentView,
    PageInfo,
    Snapshot,
    UpdateView,
)
from tests import views
from tests.views import update

FIELDS = json.loads((Path(__file__).parent / "data" / "statuspage_v2_fields.json").read_text())
FILES = sorted(FIELDS["files"])
URL = "https://status.example.com"
# Sep 14, 2017, 21:24 UTC is Sep 15, 07:24 AEST: the example page's days.
T0 = datetime(2017, 9, 14, 21, 24, tzinfo=UTC)


# -- hand-built snapshots -------------------------------------------------------------


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def component(
    code: str,
    name: str,
    *,
    status: str = "operational",
    group: str | None = None,
    position: int = 1,
    description: str | None = None,
    start_date: date | None = None,
    only_show_if_degraded: bool = False,
) -> ComponentView:
    return ComponentView(
        code=code,
        name=name,
        description=description,
        position=position,
        status=status,
        group_code=group,
        showcase=True,
        only_show_if_degraded=only_show_if_degraded,
        start_date=start_date,
        created_at=T0 - timedelta(days=400),
        updated_at=T0 - timedelta(days=1),
    )


def group(code: str, name: str, members: Sequence[ComponentView], position: int) -> GroupView:
    return GroupView(
        code=code,
        name=name,
        description=None,
        position=position,
        status=worst(m.status for m in members).value,
        created_at=T0 - timedelta(days=400),
        updated_at=max(m.updated_at for m in members),
        components=tuple(members),
    )


def incident(
    number: int,
    *,
    at: datetime = T0,
    status: str = "investigating",
    impact: str = "minor",
    updates: Sequence[UpdateView] | None = None,
    components: Sequence[ComponentView] = (),
    title: str | None = None,
) -> IncidentView:
    ups = tuple(updates) if updates is not None else (update(f"u{number}", status, "Body", at),)
    last = max((u.display_at for u in ups), default=at)
    return IncidentView(
        number=number,
        kind="incident",
        title=title or f"Incident {number}",
        status=status,
        impact=impact,
        created_at=at,
        updated_at=last,
        started_at=at,
        monitoring_at=last if status in ("monitoring", "resolved") else None,
        resolved_at=last if status == "resolved" else None,
        scheduled_for=None,
        scheduled_until=None,
        auto=True,
        components=tuple(views.affected(c) for c in components),
        updates=tuple(sorted(ups, key=lambda u: u.display_at, reverse=True)),
    )


def maintenance(
    number: int,
    *,
    start: datetime,
    hours: float = 2,
    status: str = "scheduled",
    components: Sequence[ComponentView] = (),
    created: datetime | None = None,
) -> IncidentView:
    created = created or start - timedelta(days=2)
    ups = (update(f"m{number}", status, "Maintenance body", created),)
    return IncidentView(
        number=number,
        kind="maintenance",
        title=f"Maintenance {number}",
        status=status,
        impact="maintenance",
        created_at=created,
        updated_at=created,
        started_at=start,
        monitoring_at=None,
        resolved_at=start + timedelta(hours=hours) if status == "completed" else None,
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=hours),
        auto=True,
        components=tuple(views.affected(c) for c in components),
        updates=ups,
    )


def snapshot(
    layout: Sequence[ComponentView | GroupView] = (),
    incidents: Sequence[IncidentView] = (),
    maintenances: Sequence[IncidentView] = (),
    *,
    tz: str = "Australia/Sydney",
    now: datetime = T0,
    name: str = "Vero",
) -> Snapshot:
    components = tuple(
        c for item in layout for c in (item.components if isinstance(item, GroupView) else (item,))
    )
    open_impacts = [i.impact for i in incidents if i.status != "resolved"]
    return Snapshot(
        page=PageInfo(id="vero1234", name=name, url=URL, time_zone=tz),
        generated_at=now,
        status=page_status((c.status for c in components), open_impacts),
        components=components,
        groups=tuple(g for g in layout if isinstance(g, GroupView)),
        layout=tuple(layout),
        incidents=tuple(sorted(incidents, key=lambda i: (i.created_at, i.number), reverse=True)),
        maintenances=tuple(
            sorted(maintenances, key=lambda m: m.scheduled_for or m.created_at, reverse=True)
        ),
    )


API = component("api", "API", description="Our REST API", start_date=date(2016, 5, 1))
TRANSACTIONAL = component("tx", "Transactional emails", group="email", position=1)
NEWSLETTER = component(
    "nl", "Newsletter emails", status="partial_outage", group="email", position=2
)
EMAIL = group("email", "Email Processing", [TRANSACTIONAL, NEWSLETTER], position=2)


def example() -> Snapshot:
    """The example page's shape: a group, an open and a resolved incident, maintenances."""
    segment = update(
        "u3",
        "identified",
        "Segments with **user has property** are slow.",
        T0 + timedelta(hours=7),
        [ChangeView("nl", "Newsletter emails", "degraded_performance", "partial_outage")],
    )
    opened = update(
        "u2",
        "investigating",
        "We are investigating delays.",
        T0,
        [ChangeView("nl", "Newsletter emails", "operational", "degraded_performance")],
    )
    return snapshot(
        [API, EMAIL],
        incidents=[
            incident(
                2,
                status="identified",
                impact="major",
                updates=[opened, segment],
                components=[NEWSLETTER],
            ),
            incident(1, at=T0 - timedelta(days=3), status="resolved"),
        ],
        maintenances=[
            maintenance(3, start=T0 + timedelta(days=1), components=[API]),
            maintenance(4, start=T0 - timedelta(hours=1), status="in_progress"),
            maintenance(5, start=T0 - timedelta(days=5), status="completed"),
            maintenance(6, start=T0 + timedelta(days=3), status="cancelled"),
            maintenance(7, start=T0 + timedelta(hours=5)),
        ],
    )


def render(snap: Snapshot) -> dict[str, Any]:
    return {path: json.loads(text) for path, text in render_api(snap).items()}


# -- shape against Statuspage's field list ---------------------------------------------


def assert_shape(path: str, body: Any) -> None:
    """Valid against the field list, and every object's keys in Statuspage's order."""
    schema = {"$defs": FIELDS["$defs"], **FIELDS["files"][path]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{path}: {errors[0]}"
    defs = FIELDS["$defs"]

    def order(obj: dict[str, Any], kind: str) -> None:
        assert list(obj) == defs[kind]["required"], f"{path}: {kind} keys out of order"

    assert list(body) == FIELDS["files"][path]["required"]
    order(body["page"], "page")
    if "status" in body:
        order(body["status"], "status")
    for c in body.get("components", []):
        order(c, "group" if c["group"] else "component")
    lists = {"incidents": "incident", "scheduled_maintenances": "scheduled_maintenance"}
    for key, kind in lists.items():
        for i in body.get(key, []):
            order(i, kind)
            for c in i["components"]:
                order(c, "component")
            for u in i["incident_updates"]:
                order(u, "incident_update")
                for a in u["affected_components"] or []:
                    order(a, "affected_component")


def test_every_file_is_present_and_matches_statuspage() -> None:
    files = render_api(example())
    assert sorted(files) == FILES
    for path, text in files.items():
        assert isinstance(text, str)
        assert_shape(path, json.loads(text))


def test_empty_page_still_writes_every_file() -> None:
    files = render(snapshot())
    assert sorted(files) == FILES
    for path, body in files.items():
        assert_shape(path, body)
    assert files["api/v2/status.json"]["status"] == {
        "indicator": "none",
        "description": "All Systems Operational",
    }


@pytest.mark.parametrize("state", list(ComponentStatus))
def test_every_component_status(state: ComponentStatus) -> None:
    c = component("c", "C", status=state.value)
    body = render(snapshot([c]))["api/v2/components.json"]
    assert_shape("api/v2/components.json", body)
    assert body["components"][0]["status"] == state.value


@pytest.mark.parametrize("state", list(IncidentStatus))
@pytest.mark.parametrize("impact", [i for i in Impact if i is not Impact.MAINTENANCE])
def test_every_incident_status_and_impact(state: IncidentStatus, impact: Impact) -> None:
    files = render(
        snapshot([API], incidents=[incident(1, status=state.value, impact=impact.value)])
    )
    body = files["api/v2/incidents.json"]
    assert_shape("api/v2/incidents.json", body)
    assert (body["incidents"][0]["status"], body["incidents"][0]["impact"]) == (state, impact)
    unresolved = files["api/v2/incidents/unresolved.json"]["incidents"]
    assert len(unresolved) == (0 if state is IncidentStatus.RESOLVED else 1)


@pytest.mark.parametrize("state", list(MaintenanceStatus))
def test_every_maintenance_status(state: MaintenanceStatus) -> None:
    m = maintenance(1, start=T0, status=state.value)
    files = render(snapshot([API], maintenances=[m]))
    for path, body in files.items():
        assert_shape(path, body)
    listed = files["api/v2/scheduled-maintenances.json"]["scheduled_maintenances"]
    if state is MaintenanceStatus.CANCELLED:
        assert listed == []  # Statuspage deletes cancelled maintenances: clients never see one
        return
    assert [(m["status"], m["impact"]) for m in listed] == [(state, "maintenance")]
    upcoming = files["api/v2/scheduled-maintenances/upcoming.json"]["scheduled_maintenances"]
    active = files["api/v2/scheduled-maintenances/active.json"]["scheduled_maintenances"]
    assert len(upcoming) == (state is MaintenanceStatus.SCHEDULED)
    assert len(active) == (state in (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING))


@pytest.mark.parametrize(
    ("states", "impacts", "indicator"),
    [
        (["operational", "operational"], [], "none"),
        (["under_maintenance", "operational"], [], "maintenance"),
        (["degraded_performance", "operational"], [], "minor"),
        (["partial_outage", "partial_outage"], [], "major"),
        (["major_outage", "major_outage"], [], "critical"),
        (["operational"], ["none"], "minor"),
        (["operational"], ["critical"], "critical"),
    ],
)
def test_every_indicator(states: list[str], impacts: list[str], indicator: str) -> None:
    layout = [component(f"c{k}", f"C{k}", status=s) for k, s in enumerate(states)]
    incidents = [incident(k + 1, impact=i) for k, i in enumerate(impacts)]
    snap = snapshot(layout, incidents=incidents)
    files = render(snap)
    for path in ("api/v2/status.json", "api/v2/summary.json"):
        assert_shape(path, files[path])
        assert files[path]["status"] == {
            "indicator": indicator,
            "description": snap.status.description,
        }


# -- contents ----------------------------------------------------------------------------


def test_page_object() -> None:
    page = render(example())["api/v2/status.json"]["page"]
    assert page == {
        "id": "vero1234",
        "name": "Vero",
        "url": URL,
        "time_zone": "Australia/Sydney",
        "updated_at": iso_timestamp(example().updated_at, example().tz),
    }


def test_groups_sit_in_the_flat_list_before_their_components() -> None:
    listed = render(example())["api/v2/components.json"]["components"]
    assert [(c["id"], c["group"], c["group_id"]) for c in listed] == [
        ("api", False, None),
        ("email", True, None),
        ("tx", False, "email"),
        ("nl", False, "email"),
    ]
    email = listed[1]
    assert email["components"] == ["tx", "nl"]
    assert email["status"] == "partial_outage"  # its worst component
    assert listed[0]["description"] == "Our REST API"
    assert listed[0]["start_date"] == "2016-05-01"
    assert listed[2]["start_date"] is None
    assert all(c["page_id"] == "vero1234" for c in listed)
    summary = render(example())["api/v2/summary.json"]["components"]
    assert summary == listed


def test_incident_fields() -> None:
    (opened,) = render(example())["api/v2/incidents/unresolved.json"]["incidents"]
    assert opened["id"] == "2"
    assert opened["shortlink"] == f"{URL}/incidents/2"
    assert opened["page_id"] == "vero1234"
    assert opened["impact"] == "major"
    assert opened["monitoring_at"] is None and opened["resolved_at"] is None
    assert opened["created_at"] == "2017-09-15T07:24:00.000+10:00"
    assert opened["started_at"] == "2017-09-15T07:24:00.000+10:00"
    assert [c["id"] for c in opened["components"]] == ["nl"]
    assert opened["components"][0]["group_id"] == "email"
    assert opened["components"][0]["status"] == "partial_outage"


def test_updates_newest_first_with_old_and_new_status() -> None:
    (opened,) = render(example())["api/v2/incidents/unresolved.json"]["incidents"]
    updates = opened["incident_updates"]
    assert [u["id"] for u in updates] == ["u3", "u2"]
    assert [u["status"] for u in updates] == ["identified", "investigating"]
    assert all(u["incident_id"] == "2" for u in updates)
    assert updates[0]["body"] == "Segments with **user has property** are slow."  # markdown kept
    assert updates[0]["affected_components"] == [
        {
            "code": "nl",
            "name": "Newsletter emails",
            "old_status": "degraded_performance",
            "new_status": "partial_outage",
        }
    ]
    assert updates[1]["affected_components"][0]["old_status"] == "operational"
    assert updates[0]["display_at"] == "2017-09-15T14:24:00.000+10:00"
    assert (updates[0]["custom_tweet"], updates[0]["tweet_id"]) == (None, None)
    assert updates[0]["deliver_notifications"] is True


def test_updates_are_sorted_even_when_the_snapshot_is_not() -> None:
    ups = [update(f"u{k}", "investigating", "x", T0 + timedelta(minutes=k)) for k in range(4)]
    inc = incident(1, updates=ups)
    shuffled = replace(inc, updates=tuple(ups))  # oldest first
    body = render(snapshot([API], incidents=[shuffled]))["api/v2/incidents.json"]
    assert [u["id"] for u in body["incidents"][0]["incident_updates"]] == ["u3", "u2", "u1", "u0"]


def test_an_update_without_changes_has_null_affected_components() -> None:
    body = render(example())["api/v2/incidents.json"]
    resolved = next(i for i in body["incidents"] if i["id"] == "1")
    assert resolved["incident_updates"][0]["affected_components"] is None
    assert resolved["resolved_at"] is not None


def test_fifty_most_recent_incidents_by_creation() -> None:
    # Numbers and creation order disagree on purpose: backfilled incidents exist.
    created = {n: T0 - timedelta(hours=(n * 37) % 60) for n in range(1, 61)}
    incidents = [
        incident(n, at=created[n], status="resolved" if n % 2 else "investigating")
        for n in range(1, 61)
    ]
    files = render(snapshot([API], incidents=incidents))
    listed = files["api/v2/incidents.json"]["incidents"]
    assert len(listed) == 50
    expected = sorted(created, key=lambda n: (created[n], n), reverse=True)[:50]
    assert [int(i["id"]) for i in listed] == expected
    unresolved = files["api/v2/incidents/unresolved.json"]["incidents"]
    assert sorted(int(i["id"]) for i in unresolved) == list(range(2, 61, 2))  # every one
    assert [int(i["id"]) for i in unresolved] == [
        n for n in sorted(created, key=lambda n: (created[n], n), reverse=True) if n % 2 == 0
    ]
    assert files["api/v2/summary.json"]["incidents"] == unresolved


def test_fifty_most_recent_maintenances_by_schedule() -> None:
    maintenances = [
        maintenance(n, start=T0 + timedelta(days=(n * 37) % 60 - 30), status="completed")
        for n in range(1, 61)
    ]
    body = render(snapshot([API], maintenances=maintenances))["api/v2/scheduled-maintenances.json"]
    listed = body["scheduled_maintenances"]
    assert len(listed) == 50
    starts = [i["scheduled_for"] for i in listed]
    assert starts == sorted(starts, reverse=True)
    assert {int(m["id"]) for m in listed} == {
        m.number
        for m in sorted(maintenances, key=lambda m: m.scheduled_for or T0, reverse=True)[:50]
    }


def test_maintenance_lists() -> None:
    files = render(example())
    upcoming = files["api/v2/scheduled-maintenances/upcoming.json"]["scheduled_maintenances"]
    assert [m["id"] for m in upcoming] == ["7", "3"]  # soonest first, cancelled left out
    active = files["api/v2/scheduled-maintenances/active.json"]["scheduled_maintenances"]
    assert [m["id"] for m in active] == ["4"]
    summary = files["api/v2/summary.json"]["scheduled_maintenances"]
    assert [m["id"] for m in summary] == ["4", "7", "3"]
    listed = files["api/v2/scheduled-maintenances.json"]["scheduled_maintenances"]
    assert [m["id"] for m in listed] == ["3", "7", "4", "5"]  # cancelled #6 left out
    three = upcoming[1]
    assert three["impact"] == "maintenance"
    assert three["scheduled_for"] == "2017-09-16T07:24:00.000+10:00"
    assert three["scheduled_until"] == "2017-09-16T09:24:00.000+10:00"
    assert [c["id"] for c in three["components"]] == ["api"]
    assert three["shortlink"] == f"{URL}/incidents/3"


# -- times -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "at", "expected"),
    [
        ("Australia/Sydney", utc(2017, 9, 14, 20, 56), "2017-09-15T06:56:00.000+10:00"),
        ("Australia/Sydney", utc(2018, 1, 10, 23, 30), "2018-01-11T10:30:00.000+11:00"),
        # Sydney leaves DST on Apr 1, 2018: 03:00 AEDT becomes 02:00 AEST.
        ("Australia/Sydney", utc(2018, 3, 31, 15, 59), "2018-04-01T02:59:00.000+11:00"),
        ("Australia/Sydney", utc(2018, 3, 31, 16, 0), "2018-04-01T02:00:00.000+10:00"),
        ("America/New_York", utc(2017, 7, 1, 23, 30), "2017-07-01T19:30:00.000-04:00"),
        ("America/New_York", utc(2017, 12, 1, 23, 30), "2017-12-01T18:30:00.000-05:00"),
        # New York's 01:30 happens twice on Nov 5, 2017: once in EDT, once in EST.
        ("America/New_York", utc(2017, 11, 5, 5, 30), "2017-11-05T01:30:00.000-04:00"),
        ("America/New_York", utc(2017, 11, 5, 6, 30), "2017-11-05T01:30:00.000-05:00"),
        ("UTC", utc(2017, 9, 14, 20, 56, 7, 123456), "2017-09-14T20:56:07.123Z"),
        ("Etc/UTC", utc(2017, 9, 14, 20, 56), "2017-09-14T20:56:00.000Z"),
        ("Europe/London", utc(2017, 12, 1, 9, 0), "2017-12-01T09:00:00.000+00:00"),
    ],
)
def test_timestamps_carry_the_offset_at_that_instant(tz: str, at: datetime, expected: str) -> None:
    inc = incident(1, at=at)
    listed = render(snapshot([API], incidents=[inc], tz=tz))["api/v2/incidents.json"]["incidents"]
    assert listed[0]["created_at"] == expected
    assert listed[0]["incident_updates"][0]["display_at"] == expected


def test_one_document_spans_both_offsets() -> None:
    winter = T0  # September: AEST
    summer = datetime(2017, 12, 1, 1, 0, tzinfo=UTC)  # December: AEDT
    body = render(snapshot([API], incidents=[incident(1, at=winter), incident(2, at=summer)]))
    created = {i["id"]: i["created_at"] for i in body["api/v2/incidents.json"]["incidents"]}
    assert created == {
        "1": "2017-09-15T07:24:00.000+10:00",
        "2": "2017-12-01T12:00:00.000+11:00",
    }


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso_timestamp(datetime(2017, 9, 15, 6, 56), example().tz)  # noqa: DTZ001


# -- bytes -------------------------------------------------------------------------------


def test_compact_utf8_json_without_ascii_escapes() -> None:
    c = component("zrh", "Zürich — “edge” ✓")
    text = render_api(snapshot([c], name="Statut Genève"))["api/v2/components.json"]
    assert "Zürich — “edge” ✓" in text
    assert "Statut Genève" in text
    assert "\\u" not in text
    assert ": " not in text and ", " not in text.replace("Zürich — “edge” ✓", "")
    text.encode("utf-8")


def test_same_snapshot_same_bytes() -> None:
    assert render_api(example()) == render_api(example())


def test_render_does_not_depend_on_when_it_runs() -> None:
    early = snapshot([API, EMAIL], incidents=[incident(1)], now=T0)
    late = snapshot([API, EMAIL], incidents=[incident(1)], now=T0 + timedelta(hours=5))
    assert render_api(early) == render_api(late)


def test_large_history_keeps_the_lists_short() -> None:
    incidents = [
        incident(n, at=T0 - timedelta(hours=n), status="resolved",
                 updates=[update(f"u{n}-{k}", "resolved", "x", T0 - timedelta(hours=n, minutes=k))
                          for k in range(5)])
        for n in range(1, 2001)
    ]  # fmt: skip
    files = render(snapshot([API], incidents=incidents))
    assert len(files["api/v2/incidents.json"]["incidents"]) == 50
    assert files["api/v2/incidents.json"]["incidents"][0]["id"] == "1"
    assert files["api/v2/summary.json"]["incidents"] == []


def test_each_file_is_the_compact_json_of_its_objects() -> None:
    """The files are assembled from pieces encoded once per incident: the text is still
    what one json.dumps of the whole file gives, byte for byte."""
    for path, text in render_api(example()).items():
        compact = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
        assert text == compact, path


def test_a_changed_incident_is_encoded_afresh() -> None:
    before = example()
    first = render(before)["api/v2/incidents.json"]["incidents"]
    changed = replace(before.incidents[0], title="Renamed <once>")
    after = replace(before, incidents=(changed, *before.incidents[1:]))

    again = render(after)["api/v2/incidents.json"]["incidents"]

    assert again[0]["name"] == "Renamed <once>" != first[0]["name"]
    assert again[1:] == first[1:]
    assert render(before)["api/v2/incidents.json"]["incidents"] == first  # the old view: old text
