"""history.atom and history.rss: the newest incidents and maintenances, as Statuspage's feeds.

Entry content is HTML: each update's time, status and markdown body, the body
through the page's own safe markdown renderer (no raw HTML, no unsafe links).
"""

from __future__ import annotations

import heapq
import re
from datetime import datetime
from functools import partial
from html import escape
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from renderers.markdown import render_markdown
from renderers.memo import ByIdentity
from renderers.timefmt import when
from storage.rules import STATUS_LABELS
from storage.snapshot import IncidentView, PageInfo, Snapshot, UpdateView

FEED_LIMIT = 50
# Characters XML 1.0 can't carry (lxml refuses them); a pasted control character
# must not cost the page its feeds.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
ATOM = "history.atom"
RSS = "history.rss"
# An entry's content, by the identity of its incident's view (renderers/memo.py): a
# publish after one change formats one entry's updates, not fifty.
_CONTENT: ByIdentity[str] = ByIdentity(1024)
# An entry as serialised in each feed (its Atom <entry> and RSS <item> blocks), by the
# same identity: feedgen builds and serialises only the entries that changed.
_ENTRIES: ByIdentity[tuple[bytes, bytes]] = ByIdentity(1024)
# How each feed's document ends after its last entry, and how an entry starts; entries
# are serialised one after another at these depths, whatever their neighbours.
_ATOM_END = b"</feed>\n"
_RSS_END = b"  </channel>\n</rss>\n"
_ATOM_ENTRY = b"\n  <entry>"
_RSS_ENTRY = b"\n    <item>"


def render_feeds(snapshot: Snapshot) -> dict[str, bytes]:
    """history.atom and history.rss, each holding the newest incidents and maintenances.

    The documents are feedgen's, built with the entries a previous render has not
    serialised yet; the others are spliced in as they were serialised before (lxml
    writes each entry the same way whatever its neighbours; the tests compare the
    result with a document built with every entry).
    """
    page = snapshot.page
    base = page.url.rstrip("/")
    host = urlsplit(page.url).hostname or "statusbot"
    tz = snapshot.tz
    items = heapq.nlargest(
        FEED_LIMIT,
        (*snapshot.incidents, *snapshot.maintenances),
        key=lambda i: (i.last_update_at, i.number),
    )
    # The feed changes when an entry does; falling back to the page keeps an empty feed valid.
    updated = max((_updated(i) for i in items), default=snapshot.updated_at)
    values = (host, base, tz)
    known = [_ENTRIES.known((item,), values) for item in items]
    missing = [item for item, found in zip(items, known, strict=True) if found is None]
    atom, rss = _documents(page, host, base, tz, updated, missing)
    atom_head, atom_new = _split(atom, _ATOM_ENTRY, _ATOM_END)
    rss_head, rss_new = _split(rss, _RSS_ENTRY, _RSS_END)
    fresh = iter(zip(atom_new, rss_new, strict=True))
    entries = [
        found if found is not None else _ENTRIES.get((item,), values, partial(next, fresh))
        for item, found in zip(items, known, strict=True)
    ]
    return {
        ATOM: b"".join([atom_head, *(a for a, _ in entries), _ATOM_END]),
        RSS: b"".join([rss_head, *(r for _, r in entries), _RSS_END]),
    }


def _documents(
    page: PageInfo,
    host: str,
    base: str,
    tz: ZoneInfo,
    updated: datetime,
    items: list[IncidentView],
) -> tuple[bytes, bytes]:
    """The Atom and RSS documents with these entries, as feedgen writes them."""
    # Loaded here (feedgen and lxml, ~10 ms): `statusbot render` loads them after
    # forking, in the process that renders the page-wide files.
    from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]  # it ships no types

    fg = FeedGenerator()
    fg.id(f"tag:{host},2005:/history")
    name = _xml(page.name)
    fg.title(f"{name} status")
    fg.subtitle(f"Incident and maintenance history of {name}")
    fg.author({"name": name})
    fg.language("en")
    fg.generator("statusbot")
    # feedgen stamps both with the wall clock unless told; the page's own time keeps
    # the bytes the same for the same snapshot, so unchanged feeds are not rewritten.
    fg.updated(_seconds(updated, tz))
    fg.lastBuildDate(_seconds(updated, tz))
    for item in items:
        fe = fg.add_entry(order="append")
        fe.id(f"tag:{host},2005:Incident/{item.number}")
        fe.title(_xml(item.title))
        fe.link(href=f"{base}/incidents/{item.number}.html", rel="alternate", type="text/html")
        fe.published(_seconds(item.created_at, tz))
        fe.updated(_seconds(_updated(item), tz))
        content = _CONTENT.get((item,), (tz,), partial(_content, item, tz))
        if content:
            fe.content(content, type="html")

    alternate = {"href": page.url, "rel": "alternate", "type": "text/html"}
    fg.link([alternate, {"href": f"{base}/{ATOM}", "rel": "self", "type": "application/atom+xml"}])
    atom: bytes = fg.atom_str(pretty=True)
    # RSS's channel <link> is feedgen's last link: the page, not the feed.
    fg.link(
        [{"href": f"{base}/{RSS}", "rel": "self", "type": "application/rss+xml"}, alternate],
        replace=True,
    )
    rss: bytes = fg.rss_str(pretty=True)
    return atom, rss


def _split(document: bytes, entry: bytes, end: bytes) -> tuple[bytes, list[bytes]]:
    """A feed document's head (everything before its first entry) and its entries' blocks.

    An entry's start can't occur inside one: text and attributes are escaped.
    """
    if not document.endswith(end):
        raise ValueError("the feed document does not end as feedgen writes it")
    body = document[: -len(end)]
    starts = []
    at = body.find(entry)
    while at >= 0:
        starts.append(at + 1)  # after the newline that ends the line before
        at = body.find(entry, at + 1)
    if not starts:
        return body, []
    ends = [*starts[1:], len(body)]
    return body[: starts[0]], [body[a:b] for a, b in zip(starts, ends, strict=True)]


def _updated(item: IncidentView) -> datetime:
    # A backfilled update can be displayed earlier than it was written; the entry
    # changed when either happened last.
    return max(item.updated_at, item.last_update_at)


def _seconds(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(microsecond=0)


def _content(item: IncidentView, tz: ZoneInfo) -> str:
    """Every update, newest first, as Statuspage's feed prints them."""
    updates = sorted(item.updates, key=lambda u: u.display_at, reverse=True)
    return "".join(_update(u, tz) for u in updates)


def _update(u: UpdateView, tz: ZoneInfo) -> str:
    head = (
        f"<small>{escape(when(u.display_at, tz))}</small><br>"
        f"<strong>{escape(STATUS_LABELS.get(u.status, u.status))}</strong>"
    )
    body = str(render_markdown(_xml(u.body))).strip()
    if body.startswith("<p>"):
        # The first paragraph joins the status line, as on Statuspage's feed:
        # "<p><small>…</small><br><strong>Resolved</strong> - body</p>".
        return f"<p>{head} - {body.removeprefix('<p>')}"
    return f"<p>{head}</p>{body}"


def _xml(text: str) -> str:
    return _XML_INVALID.sub("", text)
