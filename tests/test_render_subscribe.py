"""subscribe.html and the served sign-up pages: the form's shape, escaping, links."""

from __future__ import annotations

from dataclasses import replace

from bot.http.subscribe import CSP
from renderers.html import render_index, stylesheet
from renderers.site import render_site
from renderers.subscribe import Shown, render_message, render_subscribe
from storage.snapshot import Snapshot
from tests.test_render_html import PAYLOAD, component, group, links, parse, snapshot, text


def hostile() -> Snapshot:
    return snapshot(
        [
            component("API", code="api"),
            group(PAYLOAD, "g1", [component(PAYLOAD, code="mail"), component("SMS", code="sms")]),
        ]
    )


def test_the_form_posts_to_the_app_with_a_fieldset_per_group() -> None:
    snap = hostile()
    page = replace(snap.page, app_url="https://app.example.com")
    html = render_subscribe(replace(snap, page=page))
    root = parse(html)
    form = next(root.iter("form"))
    assert (
        form.get("method") == "post" and form.get("action") == "https://app.example.com/subscribe"
    )
    assert "form-action https://app.example.com" in html
    boxes = [i for i in root.iter("input") if i.get("type") == "checkbox"]
    assert [(b.get("name"), b.get("value")) for b in boxes] == [
        ("component", "api"),
        ("component", "mail"),
        ("component", "sms"),
    ]
    labelled = {label.get("for") for label in root.iter("label")}
    assert all(i.get("id") in labelled for i in root.iter("input"))
    legends = [text(legend) for legend in root.iter("legend")]
    assert PAYLOAD in legends  # the group's name, as text
    assert "<script" not in html and "<img" not in html


def test_without_an_app_url_the_form_posts_to_the_page() -> None:
    html = render_subscribe(hostile())
    assert 'action="https://status.example.com/subscribe"' in html


def test_the_menu_links_the_form_and_the_site_has_it() -> None:
    snap = hostile()
    assert "subscribe.html" in links(parse(render_index(snap)))
    assert "subscribe.html" in render_site(snap)


def test_served_pages_escape_and_link_the_page() -> None:
    snap = hostile()
    shown = Shown(token="tok", components={"sms"}, unsubscribed=False)
    html = render_message(
        snap.page,
        PAYLOAD,
        [PAYLOAD],
        shown=shown,
        manage=True,
        sections=[(None, [("sms", PAYLOAD)])],
        secret="whsec_abc",
    )
    root = parse(html)
    assert "<script" not in html
    assert [f.get("action") for f in root.iter("form")] == ["/subscription/tok"]
    assert "checked" in html and "whsec_abc" in html
    assert "https://status.example.com/index.html" in links(root)
    assert "/unsubscribe/tok" in links(root)


def test_every_sign_up_page_links_the_stylesheet_its_policy_allows() -> None:
    snap = hostile()
    sheet = stylesheet().path
    form = parse(render_subscribe(snap))
    assert [lk.get("href") for lk in form.iter("link") if lk.get("rel") == "stylesheet"] == [sheet]
    served = parse(render_message(snap.page, "Check your inbox", ["We sent a link."]))
    hrefs = [lk.get("href") for lk in served.iter("link") if lk.get("rel") == "stylesheet"]
    # Served by the app, whose own copy it links (the page may live on another origin).
    assert hrefs == [f"/{sheet}"]
    policy = CSP  # the header the app sends with them
    assert "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "script-src" not in policy
    metas = [m.get("content") or "" for m in served.iter("meta") if m.get("http-equiv")]
    assert any("style-src 'self';" in m for m in metas)
