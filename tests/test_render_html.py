"""The public page's HTML (index.html, incidents/N.html, history.html) from hand-built snapshots."""

from __future__ import annotations

import gzip
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import html5lib
import pytest

from bot.demo import INCIDENT_UPDATES, MAINTENANCE_UPDATES, MAINTENANCE_WINDOW
from renderers import html as html_module
from renderers.html import (
    render_history,
    render_html,
    render_incident,
    render_index,
    stylesheet,
)
from renderers.site import render_site
from storage.rules import page_status, worst
from storage.snapshot import (
    ChangeView,
    ComponentView,
    GroupView,
    IncidentRef,
    IncidentView,
    MetricView,
    PageInfo,
    Snapshot,
    UpdateView,
    UptimeDay,
)
from tests import views

SYDNEY = "Australia/Sydney"
# 12:00 AEST on Wednesday 10 June 2026: a fixed "now" far from any DST change.
NOW = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
CREATED = datetime(2026, 1, 1, tzinfo=UTC)

SCRIPT = "<script>window.__xss=1;alert(1)</script>"
IMG = "<img src=x onerror=window.__xss=1>"
JS_LINK = "[x](javascript:window.__xss=1)"
ATTR = "\"'><svg onload=window.__xss=1>"  # breaking out of an attribute
PAYLOAD = f"{SCRIPT} {IMG} {JS_LINK} {ATTR}"


# ---------------------------------------------------------------- building snapshots by hand


def days(
    now: datetime = NOW,
    tz: str = SYDNEY,
    *,
    no_data: int = 0,
    special: dict[int, UptimeDay] | None = None,
) -> tuple[UptimeDay, ...]:
    """90 local days ending today: `no_data` of them first without data, the rest all up."""
    today = now.astimezone(ZoneInfo(tz)).date()
    out = []
    for k in range(90):
        day = today - timedelta(days=89 - k)
        if k < no_data:
            out.append(UptimeDay(day, None, 0, 0, 0, None))
        elif special and k in special:
            out.append(replace(special[k], day=day))
        else:
            out.append(UptimeDay(day, 1.0, 0, 0, 0, "operational"))
    return tuple(out)


def component(
    name: str,
    *,
    code: str | None = None,
    status: str = "operational",
    description: str | None = None,
    group: str | None = None,
    position: int = 0,
    uptime_days: tuple[UptimeDay, ...] = (),
    uptime: float | None = None,
    only_show_if_degraded: bool = False,
) -> ComponentView:
    return ComponentView(
        code=code or re.sub(r"[^a-z0-9]", "", name.lower())[:12] or "c",
        name=name,
        description=description,
        position=position,
        status=status,
        group_code=group,
        showcase=bool(uptime_days),
        only_show_if_degraded=only_show_if_degraded,
        start_date=None,
        created_at=CREATED,
        updated_at=CREATED,
        uptime_days=uptime_days,
        uptime=uptime if uptime is not None else (1.0 if uptime_days else None),
    )


def group(name: str, code: str, members: list[ComponentView], position: int = 0) -> GroupView:
    members = [replace(m, group_code=code) for m in members]
    return GroupView(
        code=code,
        name=name,
        description=None,
        position=position,
        status=worst(m.status for m in members).value,
        created_at=CREATED,
        updated_at=CREATED,
        components=tuple(members),
    )


def update(status: str, body: str, at: datetime, n: int = 0) -> UpdateView:
    return views.update(f"u{n}{at.timestamp():.0f}", status, body, at)


def incident(
    number: int,
    title: str,
    updates: list[tuple[str, str, datetime]],
    *,
    kind: str = "incident",
    impact: str = "minor",
    affected: Sequence[ComponentView] = (),
    window: tuple[datetime, datetime] | None = None,
) -> IncidentView:
    """An incident (or maintenance); `updates` oldest first, as they were posted."""
    shown = tuple(update(s, b, at, k) for k, (s, b, at) in enumerate(updates))[::-1]
    first, last = updates[0][2], updates[-1][2]
    status = updates[-1][0]
    closed = status in ("resolved", "completed", "cancelled")
    return IncidentView(
        number=number,
        kind=kind,
        title=title,
        status=status,
        impact="maintenance" if kind == "maintenance" else impact,
        created_at=first,
        updated_at=last,
        started_at=first,
        monitoring_at=None,
        resolved_at=last if closed else None,
        scheduled_for=window[0] if window else None,
        scheduled_until=window[1] if window else None,
        auto=True,
        components=tuple(views.affected(c) for c in affected),
        updates=shown,
    )


def metric(now: datetime = NOW, name: str = "API Response Times") -> MetricView:
    def series(span: timedelta, count: int) -> tuple[tuple[datetime, float], ...]:
        return tuple(
            (now - span + span * k / count, 100.0 + (k * 37 % 50)) for k in range(count + 1)
        )

    return MetricView(
        code="m1",
        name=name,
        unit="ms",
        description=None,
        series={
            "day": series(timedelta(days=1), 288),
            "week": series(timedelta(days=7), 168),
            "month": series(timedelta(days=30), 180),
        },
    )


def snapshot(
    layout: Sequence[ComponentView | GroupView] = (),
    *,
    incidents: Sequence[IncidentView] = (),
    maintenances: Sequence[IncidentView] = (),
    metrics: Sequence[MetricView] = (),
    now: datetime = NOW,
    tz: str = SYDNEY,
    name: str = "Vero",
    support_email: str | None = "support@example.com",
) -> Snapshot:
    components: list[ComponentView] = []
    groups: list[GroupView] = []
    for item in layout:
        if isinstance(item, GroupView):
            groups.append(item)
            components.extend(item.components)
        else:
            components.append(item)
    newest = sorted(incidents, key=lambda i: i.created_at, reverse=True)
    planned = sorted(maintenances, key=lambda m: m.scheduled_for or m.created_at, reverse=True)
    return Snapshot(
        page=PageInfo(
            id="page1",
            name=name,
            url="https://status.example.com",
            time_zone=tz,
            support_email=support_email,
        ),
        generated_at=now,
        status=page_status(
            [c.status for c in components], [i.impact for i in newest if not i.closed]
        ),
        components=tuple(components),
        groups=tuple(groups),
        layout=tuple(layout),
        incidents=tuple(newest),
        maintenances=tuple(planned),
        metrics=tuple(metrics),
    )


def demo_snapshot(now: datetime = NOW) -> Snapshot:
    """The demo page by hand: 8 components (4 showcased) in the example's groups, its incident
    (3 updates) and maintenance (4 updates) with their words, and one metric."""
    tz = ZoneInfo(SYDNEY)
    today = now.astimezone(tz).date()

    def at(day: date, clock: time) -> datetime:
        moved = day + (today - date(2017, 9, 24))
        return datetime.combine(moved, clock, tzinfo=tz)

    email = "support@example.com"
    api = component(
        "API",
        description="Our REST API at api.example.com, used by the SDKs and integrations.",
        uptime_days=days(now),
    )
    emails = [
        component(n, uptime_days=days(now), position=k)
        for k, n in enumerate(["Transactional emails", "Behavioral emails", "Newsletter emails"])
    ]
    web = [
        component("Email reports and statistics", description="Opens, clicks and delivery."),
        component("Activity logs", description="The per-customer event and activity timelines."),
    ]
    imports = component("Imports and Exports", description="CSV imports and report exports.")
    segment = component("Segment calcluation", code="segment")
    backend = group("Backend Processing", "g3", [imports, segment], 3)
    layout: list[ComponentView | GroupView] = [
        api,
        group("Email Processing", "g1", emails, 1),
        group("Web Interface", "g2", web, 2),
        backend,
    ]
    inc = incident(
        1,
        "Delays in segment calculation",
        [(s.value, b.format(email=email), at(d, c)) for d, c, s, b in INCIDENT_UPDATES],
        affected=[backend.components[1]],
    )
    (sd, st), (ed, et) = MAINTENANCE_WINDOW
    mnt = incident(
        2,
        "Database maintenance and capacity upgrades",
        [(s.value, b.format(email=email), at(d, c)) for d, c, s, b in MAINTENANCE_UPDATES],
        kind="maintenance",
        affected=list(backend.components),
        window=(at(sd, st), at(ed, et)),
    )
    return snapshot(layout, incidents=[inc], maintenances=[mnt], metrics=[metric(now)], now=now)


# ---------------------------------------------------------------- reading the output


def parse(html: str) -> ET.Element:
    """Parse strictly (any HTML error raises), into an ElementTree without namespaces."""
    html5lib.HTMLParser(strict=True).parse(html)
    return html5lib.parse(html, namespaceHTMLElements=False)


SVG = "{http://www.w3.org/2000/svg}"


def text(el: ET.Element) -> str:
    """The words in an element (the <body> of a page), one space between text nodes."""
    if el.tag == "html":
        el = el.find("body")  # type: ignore[assignment]
    return " ".join(" ".join(el.itertext()).split())


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def past_day(root: ET.Element, day: date) -> ET.Element:
    for d in by_class(root, "day"):
        t = d.find("h3/time")
        if t is not None and t.get("datetime") == day.isoformat():
            return d
    raise AssertionError(f"no Past Incidents day {day}")


def links(root: ET.Element) -> list[str]:
    return [a.get("href") or "" for a in root.iter("a")]


# ---------------------------------------------------------------- the pages are valid HTML


@pytest.fixture(scope="module")
def demo() -> Snapshot:
    return demo_snapshot()


def test_every_page_parses_strictly(demo: Snapshot) -> None:
    pages = render_html(demo)
    assert set(pages) == {"index.html", "history.html", "incidents/1.html", "incidents/2.html"}
    for html in pages.values():
        parse(html)
        assert html.startswith("<!DOCTYPE html>")


def test_render_html_only_the_incidents_asked_for(demo: Snapshot) -> None:
    pages = render_html(demo, incidents=[2, 99])
    assert set(pages) == {"index.html", "history.html", "incidents/2.html"}
    assert set(render_html(demo, incidents=())) == {"index.html", "history.html"}


def test_no_script_no_handlers_no_inline_style_no_third_party(demo: Snapshot) -> None:
    for html in render_html(demo).values():
        root = parse(html)
        assert not list(root.iter("script"))
        for el in root.iter():
            assert not [a for a in el.attrib if a.lower().startswith("on")], el.tag
            assert "style" not in el.attrib, el.tag
        for tag, attr in (("link", "href"), ("img", "src"), ("a", "href")):
            for el in root.iter(tag):
                value = el.get(attr) or ""
                if tag == "a" and value.startswith("mailto:"):
                    continue
                assert not re.match(r"^(https?:)?//", value), value
        assert "@import" not in html and "url(" not in html
        assert not list(root.iter("style"))  # the CSS is the site's own file, nothing inline
        csp = [
            m.get("content") or ""
            for m in root.iter("meta")
            if m.get("http-equiv") == "Content-Security-Policy"
        ]
        assert csp and "default-src 'none'" in csp[0] and "script-src" not in csp[0]
        assert "style-src 'self';" in csp[0] and "unsafe-inline" not in csp[0]
    sheet = stylesheet().text
    assert "@import" not in sheet and "url(" not in sheet


def page_css(root: ET.Element, prefix: str = "") -> str:
    """The stylesheet a parsed page links (it must link exactly the site's one)."""
    sheets = [link.get("href") for link in root.iter("link") if link.get("rel") == "stylesheet"]
    assert sheets == [prefix + stylesheet().path]
    return stylesheet().text


def test_the_stylesheet_is_named_by_its_content_and_linked_by_every_page(demo: Snapshot) -> None:
    sheet = stylesheet()
    assert re.fullmatch(r"style\.[0-9a-f]{10}\.css", sheet.path)
    assert sheet.path == f"style.{hashlib.sha256(sheet.text.encode()).hexdigest()[:10]}.css"
    files = render_site(demo)
    assert files[sheet.path] == sheet.text.encode()
    for path, body in files.items():
        if path.endswith(".html"):
            page_css(parse(body.decode()), "../" * path.count("/"))
    # The rules of every kind of page are in it, light and dark.
    for rule in (".bars{", ".timeline{", ".hl li{", ".signup,.msg{", "prefers-color-scheme:dark"):
        assert rule in sheet.text


def test_head_is_responsive_and_links_feeds(demo: Snapshot) -> None:
    root = parse(render_index(demo))
    metas = {m.get("name"): m.get("content") for m in root.iter("meta")}
    assert metas["viewport"] == "width=device-width, initial-scale=1"
    alternates = {
        (link.get("type"), link.get("href"))
        for link in root.iter("link")
        if link.get("rel") == "alternate"
    }
    assert alternates == {
        ("application/atom+xml", "history.atom"),
        ("application/rss+xml", "history.rss"),
    }
    hrefs = links(root)
    for target in ("history.html", "maintenance.ics", "api/v2/summary.json", "history.atom"):
        assert target in hrefs
    assert root.find("head/title") is not None
    assert root.get("lang") == "en"
    assert "prefers-color-scheme:dark" in page_css(root)


# ---------------------------------------------------------------- index.html


def test_index_shows_everything_the_example_shows(demo: Snapshot) -> None:
    root = parse(render_index(demo))
    page = text(root)
    expected = [
        "All Systems Operational",
        "API",
        "Email Processing",
        "Transactional emails",
        "Behavioral emails",
        "Newsletter emails",
        "Web Interface",
        "Email reports and statistics",
        "Activity logs",
        "Backend Processing",
        "Imports and Exports",
        "Segment calcluation",
        "90 days ago",
        "100.0 % uptime",
        "Today",
        "Operational",
        "Degraded Performance",
        "Partial Outage",
        "Major Outage",
        "Under Maintenance",
        "System Metrics",
        "Month",
        "Week",
        "Day",
        "API Response Times",
        "Past Incidents",
        "No incidents reported today.",
        "No incidents reported.",
        "Completed - All work related to this scheduled maintenance has now been completed.",
        "Verifying - Our maintenance tasks",
        "In progress - Our maintenance work is starting now",
        "Scheduled - We will be performing a series of important maintenance tasks",
        "Resolved - Hi all, we're going to resolve this incident at this time.",
        "Identified - We have been investigating this issue over the past several hours.",
        "Investigating - We are currently experiencing delays in calculating some segments.",
        "If you have any questions or concerns, please email us at support@example.com",
        "Incident History",
    ]
    for words in expected:
        assert words in page, words
    # Components in page order.
    names = [text(e) for e in by_class(root, "nm")]
    assert names == [
        "API",
        "Email Processing",
        "Transactional emails",
        "Behavioral emails",
        "Newsletter emails",
        "Web Interface",
        "Email reports and statistics",
        "Activity logs",
        "Backend Processing",
        "Imports and Exports",
        "Segment calcluation",
    ]


def test_past_incidents_stand_under_the_day_of_their_last_update(demo: Snapshot) -> None:
    """SPEC §6: the example's incident (Sep 14 → Sep 15) stands under Sep 15, the
    maintenance (Sep 15 → Sep 18) under Sep 18; shifted so Sep 24 is today."""
    root = parse(render_index(demo))
    today = date(2026, 6, 10)
    sep = {n: today - timedelta(days=24 - n) for n in range(10, 25)}
    headings = [t.get("datetime") for t in root.iterfind(".//section[@id='past']//h3/time")]
    assert headings == [(today - timedelta(days=k)).isoformat() for k in range(15)]
    assert "incidents/1.html" in links(past_day(root, sep[15]))
    assert "incidents/2.html" in links(past_day(root, sep[18]))
    for n in (14, 16, 17):
        assert "No incidents reported." in text(past_day(root, sep[n]))
    assert text(past_day(root, today)).endswith("No incidents reported today.")
    # Every update is shown, "Status - body" then its time, newest first.
    day15 = text(past_day(root, sep[15]))
    order = [day15.index(s) for s in ("Resolved - ", "Identified - ", "Investigating - ")]
    assert order == sorted(order)
    sep15 = sep[15].strftime("%b ") + str(sep[15].day)
    assert f"{sep15}, 06:56 AEST" in day15
    # The first update's time is a <time> with its ISO instant and the page's offset.
    times = {t.get("datetime"): text(t) for t in past_day(root, sep[15]).iter("time")}
    assert times[f"{sep[15].isoformat()}T06:56:00+10:00"] == f"{sep15}, 06:56 AEST"


def test_past_incidents_lists_exactly_fifteen_days_and_drops_older() -> None:
    old = incident(7, "Long ago", [("resolved", "done", NOW - timedelta(days=15))])
    edge = incident(8, "Fourteen days ago", [("resolved", "done", NOW - timedelta(days=14))])
    root = parse(render_index(snapshot([component("API")], incidents=[old, edge])))
    assert len(root.findall(".//section[@id='past']/div")) == 15
    assert "incidents/8.html" in links(root)
    assert "incidents/7.html" not in links(root)


LATE = [
    # (zone, instant, local day, local text): 23:30 UTC and DST-edge instants
    (SYDNEY, datetime(2026, 6, 8, 23, 30, tzinfo=UTC), date(2026, 6, 9), "Jun 9, 09:30 AEST"),
    (
        "America/New_York",
        datetime(2026, 6, 8, 23, 30, tzinfo=UTC),
        date(2026, 6, 8),
        "Jun 8, 19:30 EDT",
    ),
    # Sydney's clocks go forward at 16:00 UTC on Oct 3, 2026.
    (SYDNEY, datetime(2026, 10, 3, 23, 30, tzinfo=UTC), date(2026, 10, 4), "Oct 4, 10:30 AEDT"),
    (SYDNEY, datetime(2026, 10, 3, 13, 30, tzinfo=UTC), date(2026, 10, 3), "Oct 3, 23:30 AEST"),
    # ... and back at 16:00 UTC on Apr 4, 2026.
    (SYDNEY, datetime(2026, 4, 4, 23, 30, tzinfo=UTC), date(2026, 4, 5), "Apr 5, 09:30 AEST"),
    (SYDNEY, datetime(2026, 4, 4, 12, 30, tzinfo=UTC), date(2026, 4, 4), "Apr 4, 23:30 AEDT"),
    # New York's go forward at 07:00 UTC on Mar 8, 2026, back at 06:00 UTC on Nov 1.
    (
        "America/New_York",
        datetime(2026, 3, 8, 4, 30, tzinfo=UTC),
        date(2026, 3, 7),
        "Mar 7, 23:30 EST",
    ),
    (
        "America/New_York",
        datetime(2026, 3, 8, 23, 30, tzinfo=UTC),
        date(2026, 3, 8),
        "Mar 8, 19:30 EDT",
    ),
    (
        "America/New_York",
        datetime(2026, 11, 1, 3, 30, tzinfo=UTC),
        date(2026, 10, 31),
        "Oct 31, 23:30 EDT",
    ),
]


@pytest.mark.parametrize(("zone", "instant", "day", "shown"), LATE)
@pytest.mark.parametrize("later", [timedelta(hours=1), timedelta(days=5)])
def test_an_update_lands_on_its_local_day(
    zone: str, instant: datetime, day: date, shown: str, later: timedelta
) -> None:
    item = incident(3, "Late night", [("resolved", "fixed", instant)])
    page = snapshot([component("API")], incidents=[item], now=instant + later, tz=zone)
    root = parse(render_index(page))
    box = past_day(root, day)
    assert "incidents/3.html" in links(box)
    assert shown in text(box)
    others = [d for d in by_class(root, "day") if d is not box]
    assert all("incidents/3.html" not in links(d) for d in others)


def test_a_today_with_incidents_and_an_empty_day_say_so() -> None:
    item = incident(4, "Blip", [("investigating", "looking", NOW - timedelta(minutes=5))])
    root = parse(render_index(snapshot([component("API")], incidents=[item])))
    assert "No incidents reported today." not in text(root)
    assert "Investigating - looking" in text(past_day(root, date(2026, 6, 10)))
    assert text(past_day(root, date(2026, 6, 9))).endswith("No incidents reported.")


def test_banner_is_the_rollup_coloured_by_indicator() -> None:
    api = component("API", status="major_outage")
    root = parse(render_index(snapshot([api, component("Web", position=1)])))
    banner = by_class(root, "banner")[0]
    assert text(banner) == "Partial System Outage"
    assert "b-major" in (banner.get("class") or "")


def test_active_incident_with_every_update_newest_first() -> None:
    api = component("API", status="partial_outage")
    item = incident(
        5,
        "Elevated errors",
        [
            ("investigating", "Looking into it.", NOW - timedelta(hours=2)),
            ("identified", "Found it: a **bad** deploy.", NOW - timedelta(hours=1)),
        ],
        impact="major",
        affected=[api],
    )
    root = parse(render_index(snapshot([api], incidents=[item])))
    card = by_class(root, "card")[0]
    assert "k-major" in (card.get("class") or "")
    words = text(card)
    assert words.index("Identified - Found it: a bad deploy.") < words.index(
        "Investigating - Looking into it."
    )
    assert "Jun 10, 11:00 AEST" in words and "Jun 10, 10:00 AEST" in words
    assert "This incident affects: API." in words
    assert card.find(".//strong") is not None and card.find(".//h3/a").get("href") == (
        "incidents/5.html"
    )


def test_upcoming_and_active_maintenance_show_their_window() -> None:
    tz = ZoneInfo(SYDNEY)
    start = datetime(2026, 6, 12, 10, 0, tzinfo=tz)
    upcoming = incident(
        6,
        "Database upgrade",
        [("scheduled", "We will upgrade.", NOW - timedelta(hours=3))],
        kind="maintenance",
        window=(start, datetime(2026, 6, 14, 0, 0, tzinfo=tz)),
    )
    running = incident(
        7,
        "Network work",
        [
            ("scheduled", "Planned.", NOW - timedelta(days=2)),
            ("in_progress", "Started.", NOW - timedelta(hours=1)),
        ],
        kind="maintenance",
        window=(NOW - timedelta(hours=1), NOW + timedelta(hours=1)),
    )
    root = parse(render_index(snapshot([component("API")], maintenances=[upcoming, running])))
    cards = by_class(root, "card")
    assert [text(c.find("h3")) for c in cards] == ["Network work", "Database upgrade"]
    assert "Scheduled for Jun 12, 10:00 – Jun 14, 00:00 AEST" in text(cards[1])
    assert "Scheduled for Jun 10, 11:00 – 13:00 AEST" in text(cards[0])
    assert "In progress - Started." in text(cards[0])
    assert "k-maintenance" in (cards[0].get("class") or "")


def test_window_across_a_dst_change_names_both_zones() -> None:
    tz = ZoneInfo(SYDNEY)
    item = incident(
        9,
        "Over the change",
        [("scheduled", "x", datetime(2026, 10, 1, tzinfo=tz))],
        kind="maintenance",
        window=(datetime(2026, 10, 3, 22, 0, tzinfo=tz), datetime(2026, 10, 4, 6, 0, tzinfo=tz)),
    )
    page = snapshot([component("API")], maintenances=[item], now=datetime(2026, 10, 1, tzinfo=tz))
    assert "Scheduled for Oct 3, 22:00 AEST – Oct 4, 06:00 AEDT" in text(parse(render_index(page)))


def test_groups_show_their_worst_status_and_open_when_degraded() -> None:
    calm = group("Calm", "g1", [component("A"), component("B")])
    rough = group(
        "Rough", "g2", [component("C"), component("D", status="partial_outage")], position=1
    )
    root = parse(render_index(snapshot([calm, rough])))
    details = list(root.iter("details"))[1:]  # the first is the Subscribe menu
    assert [text(d.find("summary")) for d in details] == [
        "Calm Operational",
        "Rough Partial Outage",
    ]
    assert "open" not in details[0].attrib and "open" in details[1].attrib
    assert [text(e) for e in details[1].iterfind(".//li/div/span")][-1] == "Partial Outage"


def test_only_show_if_degraded_hides_a_healthy_component() -> None:
    hidden = component("Quiet", only_show_if_degraded=True)
    shown = component("Loud", only_show_if_degraded=True, status="degraded_performance")
    words = text(parse(render_index(snapshot([hidden, shown]))))
    assert "Quiet" not in words and "Loud Degraded Performance" in words


def test_description_is_a_real_tooltip() -> None:
    api = component("API", code="apicode", description="Our REST API.")
    root = parse(render_index(snapshot([api, component("Web", position=1)])))
    buttons = [b for b in root.iter("button")]
    assert len(buttons) == 1  # only components with a description get a "?"
    button = buttons[0]
    assert button.get("type") == "button"
    tip_id = button.get("aria-describedby")
    tips = [e for e in root.iter() if e.get("id") == tip_id]
    assert len(tips) == 1 and tips[0].get("role") == "tooltip"
    assert text(tips[0]) == "Our REST API."
    assert text(button) == "? About API"
    # Shown by CSS on hover and on keyboard focus: no script involved.
    css = page_css(root)
    assert ".q:hover .tt,.q:focus-within .tt{display:block}" in css


def test_uptime_bars_with_per_day_detail() -> None:
    ref = IncidentRef(number=12, title="Errors", impact="major")
    special = {
        88: UptimeDay(date.min, 0.99, 60, 10, 50, "partial_outage", (ref,)),
        50: UptimeDay(date.min, 1.0, 0, 0, 0, "degraded_performance"),
    }
    api = component("API", uptime_days=days(no_data=20, special=special), uptime=0.99991)
    root = parse(render_index(snapshot([api])))
    strip = root.find(".//ol[@class='bars']")
    bars = list(strip)
    assert len(bars) == 90
    # The strip's name sums up the days that are no tab stop of their own, and gives the years.
    assert strip.get("aria-label") == (
        "API: 99.99 % uptime over the last 90 days, Mar 13, 2026 to Jun 10, 2026; "
        "no downtime recorded on 68 days, no data on 20 days"
    )
    assert [b.get("class") for b in bars].count("n") == 20
    assert bars[0].get("class") == "n" and bars[20].get("class") is None  # no class: operational
    # A tab stop for each day with something to say, none for the 88 plain ones.
    assert [k for k, b in enumerate(bars) if b.get("tabindex") == "0"] == [50, 88]
    assert text(bars[0]) == "Mar 13"  # the oldest is leftmost; this year's days have no year
    assert text(bars[-1]) == "Jun 10"
    detail = bars[88]
    assert detail.get("class") == "p"
    assert text(detail) == "Jun 9 Major outage 10 min Partial outage 50 min Errors"
    assert detail.find(".//a").get("href") == "incidents/12.html"
    assert bars[50].get("class") == "d"
    assert "Degraded performance, no downtime" in text(bars[50])
    row = text(root.find(".//p[@class='ux']"))
    assert row == "90 days ago 30 days ago 99.99 % uptime Today"
    # Plain days carry no text beyond their date: the CSS says "No downtime recorded".
    css = page_css(root)
    assert 'content:"No downtime recorded"' in css and 'content:"No data"' in css


def test_uptime_days_of_another_year_keep_their_year() -> None:
    in_january = datetime(2027, 1, 20, 1, 0, tzinfo=UTC)
    api = component("API", uptime_days=days(in_january, no_data=1), uptime=1.0)
    strip = parse(render_index(snapshot([api], now=in_january))).find(".//ol[@class='bars']")
    labels = [text(b) for b in strip]
    assert labels[0] == "Oct 23, 2026" and labels[69] == "Dec 31, 2026"
    assert labels[70] == "Jan 1" and labels[-1] == "Jan 20"
    assert strip.get("aria-label") == (
        "API: 100.0 % uptime over the last 90 days, Oct 23, 2026 to Jan 20, 2027; "
        "no downtime recorded on 89 days, no data on 1 day"
    )
    assert not any(b.get("tabindex") for b in strip)  # nothing to say: no tab stop at all


def test_uptime_percentage_is_never_rounded_up_to_100() -> None:
    api = component("API", uptime_days=days(), uptime=0.999999)
    assert "99.99 % uptime" in render_index(snapshot([api]))


def test_group_strip_sums_up_its_members() -> None:
    ref = IncidentRef(number=3, title="Slow", impact="minor")
    bad = {89: UptimeDay(date.min, 0.9, 120, 0, 120, "partial_outage", (ref,))}
    members = [
        component("A", uptime_days=days(), uptime=1.0),
        component("B", uptime_days=days(special=bad), uptime=0.998),
    ]
    root = parse(render_index(snapshot([group("Mail", "g1", members)])))
    strips = root.findall(".//ol[@class='bars']")
    assert len(strips) == 3
    group_strip = strips[-1]
    assert group_strip.get("aria-label") == (
        "Mail: 99.90 % uptime over the last 90 days, Mar 13, 2026 to Jun 10, 2026; "
        "no downtime recorded on 89 days"
    )
    assert [b.get("tabindex") for b in group_strip][-2:] == [None, "0"]
    assert list(group_strip)[-1].get("class") == "p"
    assert "B: partial outage 2 h" in text(list(group_strip)[-1])
    assert "99.90 % uptime" in text(root.findall(".//p[@class='ux']")[-1])


def test_metrics_have_three_views_switchable_without_script() -> None:
    root = parse(render_index(snapshot([component("API")], metrics=[metric()])))
    section = root.find(".//section[@class='metrics']")
    radios = section.findall(".//input[@type='radio']")
    assert [r.get("id") for r in radios] == ["r-month", "r-week", "r-day"]
    assert [r.get("id") for r in radios if "checked" in r.attrib] == ["r-day"]
    labels = {lab.get("for"): text(lab) for lab in section.iter("label")}
    assert labels == {"r-month": "Month", "r-week": "Week", "r-day": "Day"}
    for view in ("day", "week", "month"):
        panel = section.find(f".//div[@class='v v-{view}']")
        svg = panel.find(f".//{SVG}svg")
        assert svg is not None and svg.get("role") == "img"
        assert svg.find(f"{SVG}title") is not None
    css = page_css(root)
    assert ".metrics:has(#r-week:checked) .v-week" in css


def test_no_metrics_no_section() -> None:
    html = render_index(snapshot([component("API")]))
    assert "System Metrics" not in html


def test_support_email_line_only_when_set() -> None:
    with_email = text(parse(render_index(snapshot([component("API")]))))
    assert "please email us at support@example.com" in with_email
    without = render_index(snapshot([component("API")], support_email=None))
    assert "please email us" not in without


# ---------------------------------------------------------------- incidents/N.html


def test_incident_page(demo: Snapshot) -> None:
    root = parse(render_incident(demo, demo.incidents[0]))
    words = text(root)
    assert text(root.find(".//h1")) == "Delays in segment calculation"
    assert "Status Resolved" in words and "Impact Minor" in words
    assert "Affected Backend Processing (Segment calcluation)" in words
    statuses = [text(h) for h in root.iterfind(".//ol[@class='timeline']/li/h3")]
    assert statuses == ["Resolved", "Identified", "Investigating"]
    assert root.find(".//ol[@class='timeline']//strong") is not None  # markdown rendered
    assert "../index.html" in links(root) and "../history.html" in links(root)
    assert all(not h.startswith("incidents/") for h in links(root))
    heads = {link.get("href") for link in root.iter("link") if link.get("rel") == "alternate"}
    assert heads == {"../history.atom", "../history.rss"}


def test_maintenance_page_shows_its_window(demo: Snapshot) -> None:
    words = text(parse(render_incident(demo, demo.maintenances[0])))
    assert re.search(r"Scheduled for \w+ \d+, 10:00 – \w+ \d+, 00:00 AEST", words)
    assert "Scheduled maintenance for Vero" in words
    assert words.index("Completed") < words.index("Verifying") < words.index("In progress")


def test_incident_page_shows_component_changes_and_plain_statuses() -> None:
    api = component("API", status="major_outage")
    item = incident(
        15,
        "Down",
        [("investigating", "", NOW - timedelta(minutes=30))],
        impact="critical",
        affected=[api],
    )
    change = ChangeView(
        code=api.code, name="API", old_status="operational", new_status="major_outage"
    )
    item = replace(item, updates=(replace(item.updates[0], changes=(change,)),))
    page = snapshot([api], incidents=[item])
    root = parse(render_incident(page, item))
    words = text(root)
    assert "API: Operational → Major Outage" in words
    assert "Status Investigating" in words and "Impact Critical" in words
    assert "Affects API" in words
    # An update without words still shows its status, on the index too.
    card = by_class(parse(render_index(page)), "card")[0]
    assert "Investigating" in text(card) and "Investigating -" not in text(card)


def test_an_empty_page_still_renders() -> None:
    for html in render_html(snapshot([], support_email=None)).values():
        root = parse(html)
        assert "All Systems Operational" in text(root) or "Incident History" in text(root)


# ---------------------------------------------------------------- history.html


def test_history_by_month_newest_first_and_compact() -> None:
    tz = ZoneInfo(SYDNEY)
    items = [
        incident(n, f"Incident {n}", [("resolved", "body text " * 20, at)])
        for n, at in [
            (1, datetime(2026, 4, 2, 9, tzinfo=tz)),
            (2, datetime(2026, 5, 1, 0, 30, tzinfo=tz)),  # Apr 30 in UTC: May here
            (3, datetime(2026, 5, 20, tzinfo=tz)),
        ]
    ]
    mnt = incident(
        4,
        "Upgrade",
        [("completed", "done", datetime(2026, 6, 2, tzinfo=tz))],
        kind="maintenance",
        window=(datetime(2026, 6, 1, 22, tzinfo=tz), datetime(2026, 6, 2, 1, tzinfo=tz)),
    )
    root = parse(render_history(snapshot([component("API")], incidents=items, maintenances=[mnt])))
    months = [text(h) for h in root.iterfind(".//section/h2")]
    assert months == ["June 2026", "May 2026", "April 2026"]
    assert [a.get("href") for a in root.iterfind(".//ul[@class='hl']/li/a")] == [
        "incidents/4.html",
        "incidents/3.html",
        "incidents/2.html",
        "incidents/1.html",
    ]
    words = text(root)
    assert "body text" not in words
    assert "Upgrade Completed Jun 1, 22:00 – Jun 2, 01:00 AEST" in words


def test_history_after_a_few_changed_views_is_the_history_shaped_afresh() -> None:
    # The months of the last render are patched when only views changed, not starts.
    tz = ZoneInfo(SYDNEY)
    start = datetime(2025, 1, 3, 9, tzinfo=tz)
    items = [
        incident(n, f"Incident {n}", [("resolved", "x", start + timedelta(days=9 * n))])
        for n in range(1, 80)
    ]
    mnt = [
        incident(
            100 + n,
            f"Upgrade {n}",
            [("completed", "done", start + timedelta(days=11 * n))],
            kind="maintenance",
            window=(start + timedelta(days=11 * n), start + timedelta(days=11 * n, hours=2)),
        )
        for n in range(1, 20)
    ]
    first = snapshot([component("API")], incidents=items, maintenances=mnt)
    render_history(first)
    retitled = [replace(i, title=f"{i.title}, again") if i.number % 7 == 0 else i for i in items]
    resolved = [replace(m, status="cancelled") if m.number == 105 else m for m in mnt]
    second = snapshot([component("API")], incidents=retitled, maintenances=resolved)
    patched = render_history(second)
    html_module._MONTHS.last = None  # what a render with nothing remembered makes
    assert patched == render_history(second)
    # A start that moved means shaping afresh; so does another item.
    moved = [replace(items[0], started_at=start + timedelta(days=400)), *items[1:]]
    for shown in (moved, [*items, incident(90, "New", [("resolved", "y", start)])]):
        changed = snapshot([component("API")], incidents=shown, maintenances=mnt)
        render_history(first)
        after = render_history(changed)
        html_module._MONTHS.last = None
        assert after == render_history(changed)


# ---------------------------------------------------------------- safety


def test_injected_markup_is_escaped_everywhere() -> None:
    evil = component(
        f"API {SCRIPT}{ATTR}", code="evil", description=f"desc {IMG}{ATTR}", uptime_days=days()
    )
    inner = group(f"Group {SCRIPT}", "g9", [component(f"Member {IMG}")])
    item = incident(
        13,
        f"Title {SCRIPT}{IMG}{ATTR}",
        [("investigating", f"Body {PAYLOAD} [ok](https://example.com)", NOW - timedelta(hours=1))],
        affected=[evil],
    )
    mnt = incident(
        14,
        f"Maint {IMG}",
        [("scheduled", PAYLOAD, NOW - timedelta(hours=1))],
        kind="maintenance",
        window=(NOW + timedelta(days=1), NOW + timedelta(days=2)),
    )
    page = snapshot(
        [evil, inner],
        incidents=[item],
        maintenances=[mnt],
        metrics=[metric(name=f"Metric {SCRIPT}")],
        name=f"Page {SCRIPT}",
        support_email=f"x{IMG}@example.com",
    )
    for path, html in render_html(page).items():
        root = parse(html)
        assert not list(root.iter("script")), path
        assert not list(root.iter("img")), path
        for el in root.iter():
            assert not [a for a in el.attrib if a.lower().startswith("on")], (path, el.tag)
        hrefs = links(root)
        assert not [h for h in hrefs if "script:" in h.lower()], path
        assert "<script>" not in html and "<img" not in html and "<svg onload" not in html
        assert "&lt;script&gt;" in html, path
    incident_page = render_html(page)["incidents/13.html"]
    assert 'href="https://example.com" rel="nofollow noopener"' in incident_page


# ---------------------------------------------------------------- size


def test_demo_index_fits_the_size_budget(demo: Snapshot) -> None:
    html = render_index(demo).encode()
    assert len(html) <= 60_000
    assert len(gzip.compress(html, 9)) <= 15_000


def test_times_are_in_time_elements_with_offsets(demo: Snapshot) -> None:
    root = parse(render_index(demo))
    stamps = [t.get("datetime") or "" for t in root.iter("time")]
    assert stamps
    instants = [s for s in stamps if "T" in s]
    assert instants and all(s.endswith("+10:00") for s in instants)


def test_same_incident_page_agrees_with_the_page_key(demo: Snapshot) -> None:
    from renderers.site import incident_page_key, same_incident_page

    base = next(i for i in demo.incidents if i.components)
    first = base.components[0]
    variants = [
        base,
        replace(base),
        replace(base, title="Another title"),
        replace(base, updates=base.updates[1:]),
        replace(base, components=(replace(first, status="major_outage"), *base.components[1:])),
        replace(base, components=(replace(first, updated_at=NOW), *base.components[1:])),
        replace(base, components=(replace(first, name="Renamed"), *base.components[1:])),
        replace(base, components=base.components[1:]),
    ]
    for a in variants:
        for b in variants:
            assert same_incident_page(a, b) == (incident_page_key(a) == incident_page_key(b))
