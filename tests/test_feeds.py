"""history.atom and history.rss: read back by feedparser, as a feed reader would."""

from __future__ import annotations

import calendar
import heapq
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import feedparser
import pytest

from renderers import feeds
from renderers.feeds import render_feeds
from storage.rules import ALL_OK
from storage.snapshot import IncidentView, PageInfo, Snapshot, UpdateView
from tests.views import update

URL = "https://status.example.com"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
# Sep 14, 2017, 21:24 UTC is Sep 15, 07:24 AEST: the example page's days.
T0 = datetime(2017, 9, 14, 21, 24, tzinfo=UTC)


def item(
    number: int,
    updates: Sequence[UpdateView],
    *,
    kind: str = "incident",
    status: str = "resolved",
    title: str | None = None,
    created: datetime | None = None,
) -> IncidentView:
    ups = tuple(sorted(updates, key=lambda u: u.display_at, reverse=True))
    created = created or ups[-1].display_at
    start = created + timedelta(days=1) if kind == "maintenance" else None
    return IncidentView(
        number=number,
        kind=kind,
        title=title or f"Incident {number}",
        status=status,
        impact="maintenance" if kind == "maintenance" else "minor",
        created_at=created,
        updated_at=ups[0].display_at,
        started_at=start or created,
        monitoring_at=None,
        resolved_at=None,
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=2) if start else None,
        auto=True,
        components=(),
        updates=ups,
    )


def snapshot(
    items: Sequence[IncidentView] = (),
    *,
    tz: str = "Australia/Sydney",
    name: str = "Vero",
    now: datetime = T0,
) -> Snapshot:
    return Snapshot(
        page=PageInfo(id="vero1234", name=name, url=URL, time_zone=tz),
        generated_at=now,
        status=ALL_OK,
        components=(),
        groups=(),
        layout=(),
        incidents=tuple(i for i in items if i.kind == "incident"),
        maintenances=tuple(i for i in items if i.kind == "maintenance"),
    )


# The example page's segment-calculation incident: Sep 14, 07:24 AEST to Sep 15, 06:56 AEST.
OPENED = datetime(2017, 9, 13, 21, 24, tzinfo=UTC)
IDENTIFIED = OPENED + timedelta(hours=6, minutes=36)
RESOLVED = OPENED + timedelta(hours=23, minutes=32)


def segment() -> IncidentView:
    return item(
        12,
        [
            update("a", "investigating", "We are currently experiencing delays.", OPENED),
            update("b", "identified", "Not **every** segment.\nSee <b>below</b>.", IDENTIFIED),
            update("c", "resolved", "Hi all, we're going to resolve this.", RESOLVED),
        ],
        title="Delays in segment calculation",
    )


def parse(data: bytes) -> Any:
    feed = feedparser.parse(data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


def utc_of(parsed: Any) -> datetime:
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)


@pytest.mark.parametrize("name", ["history.atom", "history.rss"])
def test_feeds_parse_cleanly(name: str) -> None:
    files = render_feeds(snapshot([segment()]))
    assert sorted(files) == ["history.atom", "history.rss"]
    feed = parse(files[name])
    assert feed.feed.title == "Vero status"
    assert feed.feed.link == URL
    (entry,) = feed.entries
    assert entry.title == "Delays in segment calculation"
    assert entry.link == f"{URL}/incidents/12.html"
    assert entry.id == "tag:status.example.com,2005:Incident/12"


def test_atom_details() -> None:
    feed = parse(render_feeds(snapshot([segment()]))["history.atom"])
    assert feed.version == "atom10"
    links = {link["rel"]: link["href"] for link in feed.feed.links}
    assert links == {"alternate": URL, "self": f"{URL}/history.atom"}
    (entry,) = feed.entries
    assert utc_of(entry.published_parsed) == OPENED
    assert utc_of(entry.updated_parsed) == RESOLVED
    assert utc_of(feed.feed.updated_parsed) == RESOLVED
    assert entry.published == "2017-09-14T07:24:00+10:00"  # the page's zone, as Statuspage
    assert entry.updated == "2017-09-15T06:56:00+10:00"


def test_rss_details() -> None:
    data = render_feeds(snapshot([segment()]))["history.rss"]
    feed = parse(data)
    assert feed.version == "rss20"
    channel = ElementTree.fromstring(data).find("channel")
    assert channel is not None
    self_link = channel.find(f"{ATOM_NS}link")
    assert self_link is not None and self_link.get("href") == f"{URL}/history.rss"
    assert self_link.get("rel") == "self"
    (entry,) = feed.entries
    assert utc_of(entry.published_parsed) == OPENED
    assert entry.guid == "tag:status.example.com,2005:Incident/12"


def test_content_is_every_update_newest_first_as_statuspage_prints_it() -> None:
    data = render_feeds(snapshot([segment()]))["history.atom"]
    content = ElementTree.fromstring(data).findtext(f"{ATOM_NS}entry/{ATOM_NS}content")
    assert content == (
        "<p><small>Sep 15, 06:56 AEST</small><br><strong>Resolved</strong> - "
        "Hi all, we're going to resolve this.</p>"
        "<p><small>Sep 14, 14:00 AEST</small><br><strong>Identified</strong> - "
        "Not <strong>every</strong> segment.<br>\nSee &lt;b&gt;below&lt;/b&gt;.</p>"
        "<p><small>Sep 14, 07:24 AEST</small><br><strong>Investigating</strong> - "
        "We are currently experiencing delays.</p>"
    )
    rss = ElementTree.fromstring(render_feeds(snapshot([segment()]))["history.rss"])
    assert rss.findtext("channel/item/description") == content


def test_markdown_blocks_stay_valid_html() -> None:
    body = "First paragraph.\n\n- one\n- [two](javascript:alert(1))\n\nLast."
    inc = item(1, [update("x", "monitoring", body, T0)])
    data = render_feeds(snapshot([inc]))["history.atom"]
    content = ElementTree.fromstring(data).findtext(f"{ATOM_NS}entry/{ATOM_NS}content")
    assert content == (
        "<p><small>Sep 15, 07:24 AEST</small><br><strong>Monitoring</strong> - "
        "First paragraph.</p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n<p>Last.</p>"
    )
    heading_first = item(2, [update("y", "identified", "# Cause\nA bad deploy.", T0)])
    data = render_feeds(snapshot([heading_first]))["history.atom"]
    content = ElementTree.fromstring(data).findtext(f"{ATOM_NS}entry/{ATOM_NS}content") or ""
    assert content.startswith(
        "<p><small>Sep 15, 07:24 AEST</small><br><strong>Identified</strong></p><h5>Cause</h5>"
    )


def test_bodies_cannot_inject_markup() -> None:
    payload = '<script>alert(1)</script><img src=x onerror="y">'
    evil = item(1, [update("x", "investigating", payload, T0)], title="<b>Title</b>")
    name = "<script>alert('page')</script>"
    for data in render_feeds(snapshot([evil], name=name)).values():
        parse(data)
        assert b"<script" not in data and b"<img" not in data and b"<b>" not in data
        root = ElementTree.fromstring(data)
        texts = {el.tag.removeprefix(ATOM_NS): el.text or "" for el in root.iter()}
        assert texts["title"] == "<b>Title</b>"  # the entry's, as text
        # The HTML inside the feed carries the payload as text, never as a tag.
        html = texts.get("content") or texts["description"]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img" in html
        assert "<script" not in html and "<img" not in html
    atom = ElementTree.fromstring(render_feeds(snapshot([evil], name=name))["history.atom"])
    assert atom.findtext(f"{ATOM_NS}title") == f"{name} status"


def test_control_characters_do_not_break_the_feed() -> None:
    bad = item(
        1, [update("x", "investigating", "bell\x07 and vertical\x0btab", T0)], title="a\x00b"
    )
    for data in render_feeds(snapshot([bad])).values():
        feed = parse(data)
        assert feed.entries[0].title == "ab"


def test_newest_fifty_by_last_update_incidents_and_maintenances() -> None:
    items = []
    for n in range(1, 61):
        # Last updates out of number order, incidents and maintenances interleaved.
        last = T0 + timedelta(hours=(n * 37) % 60)
        kind = "maintenance" if n % 3 == 0 else "incident"
        items.append(
            item(n, [update(f"u{n}", "investigating" if kind == "incident" else "scheduled",
                            "x", last)], kind=kind, created=T0 - timedelta(days=n))
        )  # fmt: skip
    expected = [i.number for i in sorted(items, key=lambda i: i.last_update_at, reverse=True)][:50]
    for data in render_feeds(snapshot(items)).values():
        feed = parse(data)
        assert len(feed.entries) == 50
        assert [
            int(e.link.rsplit("/", 1)[1].removesuffix(".html")) for e in feed.entries
        ] == expected
    maintenance = next(i for i in items if i.kind == "maintenance" and i.number in expected)
    atom = parse(render_feeds(snapshot(items))["history.atom"])
    titles = {e.title for e in atom.entries}
    assert maintenance.title in titles


def test_times_follow_the_page_zone_across_dst() -> None:
    summer = datetime(2018, 1, 10, 23, 30, tzinfo=UTC)  # Jan 11, 10:30 AEDT
    winter = datetime(2018, 7, 10, 23, 30, tzinfo=UTC)  # Jul 11, 09:30 AEST
    inc = item(1, [update("a", "investigating", "x", summer), update("b", "resolved", "y", winter)])
    data = render_feeds(snapshot([inc]))["history.atom"]
    content = ElementTree.fromstring(data).findtext(f"{ATOM_NS}entry/{ATOM_NS}content") or ""
    assert "<small>Jul 11, 09:30 AEST</small>" in content
    assert "<small>Jan 11, 10:30 AEDT</small>" in content
    ny = render_feeds(snapshot([inc], tz="America/New_York"))["history.atom"]
    content = ElementTree.fromstring(ny).findtext(f"{ATOM_NS}entry/{ATOM_NS}content") or ""
    assert "<small>Jul 10, 19:30 EDT</small>" in content
    assert "<small>Jan 10, 18:30 EST</small>" in content


def test_empty_history_is_still_a_valid_feed() -> None:
    for data in render_feeds(snapshot()).values():
        assert parse(data).entries == []


def test_same_snapshot_same_bytes_whenever_it_runs() -> None:
    first = render_feeds(snapshot([segment()], now=T0))
    assert first == render_feeds(snapshot([segment()], now=T0))
    assert first == render_feeds(snapshot([segment()], now=T0 + timedelta(days=3)))


def whole(snap: Snapshot) -> dict[str, bytes]:
    """The feeds as one feedgen document each, every entry built afresh (the reference)."""
    items = heapq.nlargest(
        50,
        (*snap.incidents, *snap.maintenances),
        key=lambda i: (i.last_update_at, i.number),
    )
    updated = max((max(i.updated_at, i.last_update_at) for i in items), default=snap.updated_at)
    host = snap.page.url.split("//")[1].split("/")[0]
    atom, rss = feeds._documents(
        snap.page, host, snap.page.url.rstrip("/"), snap.tz, updated, items
    )
    return {"history.atom": atom, "history.rss": rss}


def test_entries_spliced_from_earlier_renders_are_the_whole_document() -> None:
    # A render serialises only the entries no earlier render did, and splices in the rest.
    many = [
        item(
            n,
            [update(f"u{n}", "resolved", f"Fixed **{n}** <b>x</b> &", T0 + timedelta(hours=n))],
            kind="maintenance" if n % 4 == 0 else "incident",
        )
        for n in range(1, 60)
    ]
    first = snapshot(many, now=T0 + timedelta(days=3))
    assert render_feeds(first) == whole(first)
    # One entry changed, one new: the others come from the first render.
    changed = [*many[:-1], item(59, [update("z", "monitoring", "Again", T0)], title="New title")]
    changed.append(item(60, [update("y", "investigating", "New\n\n- one", T0 + timedelta(days=2))]))
    second = snapshot(changed, now=T0 + timedelta(days=3))
    assert render_feeds(second) == whole(second)
    assert render_feeds(second) == render_feeds(second)
    empty = snapshot([])
    assert render_feeds(empty) == whole(empty)
