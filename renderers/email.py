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

import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
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
    entry_id: int | str,
    now: datetime,
    body: Body | None = None,
    boundary: str | None = None,
) -> EmailMessage:
    """The mail telling one subscriber of an incident or maintenance event; `body` is
    `notification_body(page, view, update)` when the caller has it already, `boundary`
    the MIME boundary (the email package picks a random one without it)."""
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
    if boundary is not None:
        message.set_boundary(boundary)
    return message


# -- sending many: one serialised notification, filled in per subscriber ------------------

# An address whose header, text and HTML forms are the address itself (no quoting, no
# escaping, no encoding): the fast path of Prototype.fill takes only these.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._+-]{1,64}@[A-Za-z0-9.-]{1,190}")
# What quote(token, safe="") and a subscriber code can contain: the same in a URL, a
# header, the text part and (unescaped) the HTML part.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.~%-]{1,200}")
_MAX_LINE = 998  # RFC 5322's hard limit, which POLICY folds at


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One mail as SMTP sends it: the envelope and the serialised message (CRLF)."""

    sender: str  # the envelope's MAIL FROM: the From header's address
    recipient: str  # the envelope's RCPT TO
    data: bytes
    international: bool = False  # a non-ASCII address: needs the server's SMTPUTF8


def envelope_sender(page: MailPage) -> str:
    """The address of the From header, as smtplib's send_message would take it."""
    found = getaddresses([one_line(page.sender)])
    return found[0][1] if found else ""


def outgoing(page: MailPage, message: EmailMessage, recipient: str) -> Outgoing:
    """A built message as SMTP sends it, serialised as smtplib.send_message would."""
    international = not (recipient.isascii() and envelope_sender(page).isascii())
    return Outgoing(
        envelope_sender(page), recipient, flatten(message, utf8=international), international
    )


def flatten(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message's bytes with CRLF line ends: smtplib.send_message's serialisation."""
    out = io.BytesIO()
    generator_policy = POLICY.clone(utf8=True) if utf8 else None
    BytesGenerator(out, policy=generator_policy).flatten(message, linesep="\r\n")
    return out.getvalue()


@dataclass(slots=True)
class Prototype:
    """One notification (an event of one update) built and serialised once by the email
    package for a stand-in subscriber, then filled in for each real one by replacing the
    stand-in's address, code, token and entry id in the bytes: building headers and
    parts costs milliseconds a mail, replacing a few words microseconds.

    The stand-ins are random (a nonce per prototype), so no title or update can contain
    them. `fill` returns None when the fast path can't be sure to write what the email
    package would (an address that needs quoting or encoding, a token or code with other
    characters, a line grown past the limit): the caller builds that mail in full. The
    first mail filled is checked byte for byte against one built in full, and a
    prototype that differs is never used (`verified`).
    """

    page: MailPage
    view: IncidentView
    update: UpdateView | None
    event: str
    now: datetime
    body: Body
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    data: bytes = b""
    sender: str = ""
    verified: bool | None = None  # None: not checked yet

    def __post_init__(self) -> None:
        self.sender = envelope_sender(self.page)
        self.data = flatten(self.build(self.stand_in(), entry_id=self._slot("entry")))

    def build(self, to: MailTo, *, entry_id: int | str) -> EmailMessage:
        """The mail for `to` built in full by the email package (what `fill` must equal)."""
        return notification(
            self.page,
            to,
            self.view,
            self.update,
            event=self.event,
            entry_id=entry_id,
            now=self.now,
            body=self.body,
            boundary=self.boundary,
        )

    @property
    def boundary(self) -> str:
        """One MIME boundary for every mail of this prototype (unique within each)."""
        return f"===============statusbot{self.nonce}=="

    def stand_in(self) -> MailTo:
        """The subscriber the prototype is built for."""
        return MailTo(
            address=f"{self._slot('address')}@example.invalid",
            code=self._slot("code"),
            token=self._slot("token"),
        )

    def fill(self, to: MailTo, *, entry_id: int) -> Outgoing | None:
        """The mail for `to`, or None if it must be built in full (see the class)."""
        if self.verified is False:
            return None
        token = quote(to.token, safe="")
        if not (
            _PLAIN_ADDRESS.fullmatch(to.address)
            and _PLAIN_VALUE.fullmatch(token)
            and _PLAIN_VALUE.fullmatch(to.code)
        ):
            return None
        stand_in = self.stand_in()
        data = (
            self.data.replace(stand_in.address.encode(), to.address.encode())
            .replace(stand_in.token.encode(), token.encode())
            .replace(stand_in.code.encode(), to.code.encode())
            .replace(self._slot("entry").encode(), str(entry_id).encode())
        )
        if max(map(len, data.split(b"\r\n"))) > _MAX_LINE:
            return None
        if self.verified is None:
            self.verified = flatten(self.build(to, entry_id=entry_id)) == data
            if not self.verified:
                return None
        return Outgoing(self.sender, to.address, data)

    def _slot(self, name: str) -> str:
        return f"x{self.nonce}{name}"


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
