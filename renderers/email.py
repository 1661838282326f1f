"""Mail to subscribers (SPEC §9): notifications, the confirmation and the quarantine notice.

Pure functions from plain values to `email.message.EmailMessage` (policy SMTP,
so lines end in CRLF as SMTP wants). A notification is `multipart/alternative`:
a plain text part and an HTML part (inline styles, no remote images, readable
in light and dark mail clients), the update's markdown rendered by the page's
own safe renderer. Headers follow Statuspage and the list RFCs: one-click
unsubscribe (RFC 8058), `List-Id` (RFC 2919), `Auto-Submitted` (RFC 3834),
and `In-Reply-To`/`References` to the incident's first mail so clients thread.

Every header value passes `one_line` first: a title typed with line breaks
can't start a header of its own (the email package would refuse it anyway, and
the mail would never go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from renderers.markdown import render_markdown
from renderers.site import incident_page
from renderers.timefmt import when
from storage.rules import COMPONENT_LABELS, STATUS_LABELS, ComponentStatus
from storage.snapshot import IncidentView, UpdateView

# The events that open an incident's thread: their mail's Message-ID is the one
# every later mail of the incident refers to.
THREAD_START = frozenset({"incident.opened", "maintenance.scheduled"})
# Subject suffixes that say more than the status does.
EVENT_LABELS = {
    "maintenance.notice": "Starting soon",
    "postmortem.published": "Postmortem published",
}
CONFIRM_DAYS = 7  # SPEC §9: a confirmation link expires after a week

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

# SMTP's CRLF, folding only past RFC 5322's hard limit: a folded List-Unsubscribe
# ("List-Unsubscribe:" CRLF " <https…>") reads back with a leading space in some
# parsers, Python's among them.
POLICY = policy.SMTP.clone(max_line_length=998)

_ENV = Environment(
    loader=PackageLoader("renderers", "templates/email"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


@dataclass(frozen=True, slots=True)
class MailPage:
    """The page mail is about and where its links go."""

    name: str
    url: str  # the public page
    app_url: str  # where the confirm, manage and unsubscribe links are served
    sender: str  # the From header
    tz: tzinfo

    @property
    def host(self) -> str:
        """The page's host name: Message-IDs and the List-Id are made under it."""
        return urlsplit(self.url).hostname or "localhost"


@dataclass(frozen=True, slots=True)
class MailTo:
    """One subscriber, as its mail needs it."""

    address: str
    code: str
    token: str


def one_line(text: str) -> str:
    """Text fit for a header: control characters and line breaks become single spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


def thread_id(page: MailPage, number: int, to: MailTo) -> str:
    """The Message-ID of an incident's first mail to a subscriber: the thread's root."""
    return f"<incident-{number}.{to.code}@{page.host}>"


def manage_url(page: MailPage, to: MailTo) -> str:
    """The subscriber's manage page."""
    return f"{page.app_url.rstrip('/')}/subscription/{quote(to.token, safe='')}"


def unsubscribe_url(page: MailPage, to: MailTo) -> str:
    """The unsubscribe page; also the RFC 8058 one-click POST target."""
    return f"{page.app_url.rstrip('/')}/unsubscribe/{quote(to.token, safe='')}"


def confirm_url(page: MailPage, to: MailTo) -> str:
    """The double opt-in link."""
    return f"{page.app_url.rstrip('/')}/subscribe/confirm/{quote(to.token, safe='')}"


def incident_url(page: MailPage, number: int) -> str:
    """The incident's own public page."""
    return f"{page.url.rstrip('/')}/{incident_page(number)}"


def subject(page: MailPage, view: IncidentView, event: str, update: UpdateView | None) -> str:
    """'[Vero] Delays in segment calculation - Resolved', as Statuspage words it."""
    status = update.status if update is not None else view.status
    label = EVENT_LABELS.get(event) or STATUS_LABELS.get(status, status.replace("_", " "))
    return one_line(f"[{page.name}] {view.title} - {label}")


@dataclass(frozen=True, slots=True)
class Body:
    """A notification's text and HTML parts, the same for every subscriber but for their
    links: rendered once per (event, update) and filled in for each subscriber."""

    text: str
    html: str

    def fill(self, page: MailPage, to: MailTo) -> tuple[str, str]:
        """The parts with this subscriber's links, as the templates would have rendered them."""
        text, html = self.text, self.html
        for name, url in (
            ("manage_url", manage_url(page, to)),
            ("unsubscribe_url", unsubscribe_url(page, to)),
        ):
            text = text.replace(_slot(name), url)
            html = html.replace(_slot(name), str(escape(url)))
        return text, html


def notification_body(page: MailPage, view: IncidentView, update: UpdateView | None) -> Body:
    """The parts of an incident or maintenance mail, with slots for each subscriber's links."""
    # A mail about no update in particular of an incident with a published postmortem is
    # the postmortem's (`postmortem.published`): it shows the postmortem, not an update.
    postmortem = view.postmortem if update is None else None
    shown = update if update is not None else (view.updates[0] if view.updates else None)
    if postmortem is not None:
        shown = None
    values = {
        "page": page,
        "view": view,
        "update": shown,
        "status": STATUS_LABELS.get(shown.status, shown.status) if shown else "",
        "at": when(shown.display_at, page.tz) if shown else "",
        "body_html": render_markdown(shown.body) if shown and shown.body else "",
        "title": one_line(view.title),
        "postmortem": postmortem.body if postmortem else "",
        "postmortem_html": render_markdown(postmortem.body) if postmortem else "",
        "components": [(c.name, _component_label(c.status)) for c in view.components],
        "incident_url": incident_url(page, view.number),
        "manage_url": _slot("manage_url"),
        "unsubscribe_url": _slot("unsubscribe_url"),
    }
    return Body(*_render("notification", values))


def notification(
    page: MailPage,
    to: MailTo,
    view: IncidentView,
    update: UpdateView | None,
    *,
    event: str,
    entry_id: int,
    now: datetime,
    body: Body | None = None,
) -> EmailMessage:
    """The mail telling one subscriber of an incident or maintenance event; `body` is
    `notification_body(page, view, update)` when the caller has it already."""
    root = thread_id(page, view.number, to)
    if event in THREAD_START:
        message_id, refers_to = root, None
    else:
        message_id, refers_to = f"<incident-{view.number}.{to.code}.{entry_id}@{page.host}>", root
    message = _message(page, to, subject(page, view, event, update), message_id, now)
    if refers_to is not None:
        message["In-Reply-To"] = refers_to
        message["References"] = refers_to
    _list_headers(message, page, to)
    text, html = (body or notification_body(page, view, update)).fill(page, to)
    _set_parts(message, text, html)
    return message


def confirmation(page: MailPage, to: MailTo, *, entry_id: int, now: datetime) -> EmailMessage:
    """The double opt-in mail: the only one an unconfirmed subscriber gets."""
    values = {"page": page, "confirm_url": confirm_url(page, to), "days": CONFIRM_DAYS}
    message_id = f"<confirm-{entry_id}.{to.code}@{page.host}>"
    message = _message(
        page, to, one_line(f"[{page.name}] Confirm your subscription"), message_id, now
    )
    _parts(message, "confirm", values)
    return message


def quarantine_notice(
    page: MailPage, to: MailTo, *, endpoint: str, error: str, entry_id: int, now: datetime
) -> EmailMessage:
    """Told to a webhook's failure address: its deliveries failed for a day and stopped."""
    values = {
        "page": page,
        "endpoint": one_line(endpoint),
        "error": one_line(error),
        "manage_url": manage_url(page, to),
    }
    message_id = f"<quarantine-{entry_id}.{to.code}@{page.host}>"
    message = _message(
        page, to, one_line(f"[{page.name}] Webhook deliveries stopped"), message_id, now
    )
    _list_headers(message, page, to)
    _parts(message, "quarantined", values)
    return message


def _message(
    page: MailPage, to: MailTo, title: str, message_id: str, now: datetime
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["Subject"] = title
    message["From"] = one_line(page.sender)
    message["To"] = one_line(to.address)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    return message


def _list_headers(message: EmailMessage, page: MailPage, to: MailTo) -> None:
    message["List-Id"] = f"{one_line(page.name).replace('<', '').replace('>', '')} " + (
        f"<statusbot.{page.host}>"
    )
    message["List-Unsubscribe"] = f"<{unsubscribe_url(page, to)}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _parts(message: EmailMessage, name: str, values: dict[str, object]) -> None:
    _set_parts(message, *_render(name, values))


def _render(name: str, values: dict[str, object]) -> tuple[str, str]:
    text = _ENV.get_template(f"{name}.txt").render(values)
    html = _ENV.get_template(f"{name}.html").render(values)
    return text, html


def _set_parts(message: EmailMessage, text: str, html: str) -> None:
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")


def _slot(name: str) -> str:
    """A stand-in no template escapes and no text contains (NUL), replaced after rendering."""
    return f"\x00{name}\x00"


def _component_label(status: str) -> str:
    try:
        return COMPONENT_LABELS[ComponentStatus(status)]
    except ValueError:
        return status.replace("_", " ").capitalize()
