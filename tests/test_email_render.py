"""The subscriber mail renderer alone: header injection and HTML escaping."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from renderers import email as render
from storage.snapshot import AffectedView, IncidentView, UpdateView

NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
PAGE = render.MailPage(
    name="Vero",
    url="https://status.vero.com",
    app_url="https://app.vero.com",
    sender="status@vero.com",
    tz=ZoneInfo("UTC"),
)
TO = render.MailTo(address="ann@example.org", code="SUB1", token="tok")


def view(title: str, body: str, component: str = "API") -> tuple[IncidentView, UpdateView]:
    update = UpdateView("u1", "resolved", body, NOW, NOW, NOW, True, ())
    affected = AffectedView("c1", component, "major_outage", None, 1, True, None, NOW, NOW, None)
    incident = IncidentView(
        7,
        "incident",
        title,
        "resolved",
        "major",
        NOW,
        NOW,
        NOW,
        None,
        NOW,
        None,
        None,
        False,
        (affected,),
        (update,),
    )
    return incident, update


def sent(message: EmailMessage) -> EmailMessage:
    """The message as a receiver parses it from the bytes on the wire."""
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_title_with_line_breaks_adds_no_header() -> None:
    incident, update = view("Outage\r\nBcc: victim@example.com\nX-Evil: 1", "Down.")
    mail = sent(
        render.notification(
            PAGE, TO, incident, update, event="incident.resolved", entry_id=3, now=NOW
        )
    )
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    assert mail["Subject"] == "[Vero] Outage Bcc: victim@example.com X-Evil: 1 - Resolved"
    assert mail.get_all("To") == ["ann@example.org"]


def test_a_page_name_with_line_breaks_adds_no_header_either() -> None:
    page = render.MailPage(
        name="Vero\r\nBcc: x@y.z",
        url=PAGE.url,
        app_url=PAGE.app_url,
        sender=PAGE.sender,
        tz=PAGE.tz,
    )
    mail = sent(render.confirmation(page, TO, entry_id=1, now=NOW))
    assert mail["Bcc"] is None and "\n" not in str(mail["Subject"])


def test_titles_and_bodies_are_escaped_in_the_html_and_plain_in_the_text() -> None:
    incident, update = view(
        "<script>alert(1)</script> & co",
        "<img src=x onerror=alert(1)> [x](javascript:alert(1))",
        component="<b>API</b>",
    )
    mail = sent(
        render.notification(
            PAGE, TO, incident, update, event="incident.resolved", entry_id=3, now=NOW
        )
    )
    html = mail.get_body(preferencelist=("html",))
    text = mail.get_body(preferencelist=("plain",))
    assert isinstance(html, EmailMessage) and isinstance(text, EmailMessage)
    markup, plain = html.get_content(), text.get_content()
    assert "<script>" not in markup and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in markup
    assert "<img" not in markup and 'href="javascript' not in markup
    assert "<b>API</b>" not in markup and "&lt;b&gt;API&lt;/b&gt;" in markup
    assert "<script>alert(1)</script> & co" in plain, "the text part is not HTML-escaped"


def test_no_remote_images_and_both_colour_schemes() -> None:
    incident, update = view("Outage", "![logo](https://evil.example/pixel.png)")
    mail = sent(
        render.notification(
            PAGE, TO, incident, update, event="incident.opened", entry_id=3, now=NOW
        )
    )
    html = mail.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    markup = html.get_content()
    assert "<img" not in markup and 'content="light dark"' in markup
    assert mail["Message-ID"] == "<incident-7.SUB1@status.vero.com>" and mail["References"] is None


# -- one prototype, filled in per subscriber ---------------------------------------------


def prototype(title: str = "Outage", body: str = "Down.", event: str = "incident.resolved"):
    incident, update = view(title, body)
    return render.Prototype(
        page=PAGE,
        view=incident,
        update=update,
        event=event,
        now=NOW,
        body=render.notification_body(PAGE, incident, update),
    )


@pytest.mark.parametrize(
    ("title", "body", "event"),
    [
        ("Outage", "Down.", "incident.resolved"),
        ("Panne générale — 日本", "Réparé **vite**: <https://x.example/ü>.", "incident.updated"),
        ("Opened", "First.", "incident.opened"),  # the thread's root: no In-Reply-To
        ("Long", "word " * 400, "incident.updated"),  # a line past 998: not 7bit/8bit
    ],
)
def test_a_filled_prototype_is_byte_for_byte_the_mail_built_in_full(
    title: str, body: str, event: str
) -> None:
    proto = prototype(title, body, event)
    subscribers = [
        render.MailTo(address=f"reader{n}@example.org", code=f"code{n:08d}", token=f"tok-{n}_x")
        for n in range(3)
    ]
    for n, to in enumerate(subscribers):
        filled = proto.fill(to, entry_id=1000 + n)
        full = render.flatten(proto.build(to, entry_id=1000 + n))
        if filled is None:  # the fast path declined (a long line): never a wrong mail
            assert proto.verified is not True or b"=\r\n" in full or b"base64" in full
            continue
        assert filled.data == full
        assert (filled.recipient, filled.sender) == (to.address, "status@vero.com")
        parsed = message_from_bytes(filled.data, policy=policy.default)
        assert parsed["To"] == to.address
        assert f"/unsubscribe/{to.token}" in parsed["List-Unsubscribe"]
    assert proto.verified is True or body.startswith("word ")


@pytest.mark.parametrize(
    "address", ["o'brien@example.org", '"a b"@example.org', "ünï@example.org", "x&y@example.org"]
)
def test_addresses_the_fast_path_does_not_take_are_built_in_full(address: str) -> None:
    proto = prototype()
    to = render.MailTo(address=address, code="SUB1", token="tok")
    assert proto.fill(to, entry_id=5) is None
    mail = render.outgoing(PAGE, proto.build(to, entry_id=5), address)
    assert mail.international == (not address.isascii())
    parsed = message_from_bytes(mail.data, policy=policy.default)
    assert parsed["Message-ID"] == "<incident-7.SUB1.5@status.vero.com>"


def test_no_update_text_can_reach_the_stand_ins() -> None:
    first, second = prototype(), prototype()
    assert first.nonce != second.nonce, "each prototype's stand-ins are random"
    typed = prototype(body=f"Try x{first.nonce}token and x{first.nonce}address here.")
    filled = typed.fill(TO, entry_id=9)
    assert filled is not None
    assert f"x{first.nonce}token".encode() in filled.data, "another prototype's words stay"
