"""The sign-up routes (SPEC §9): the page's form posts here, the mail's links land here.

- `POST /subscribe`: form fields `email`, `endpoint`, `component` (repeatable);
- `GET /subscribe/confirm/{token}`: double opt-in; a webhook's secret shown once;
- `GET|POST /subscription/{token}`: the manage page, and saving it;
- `GET|POST /unsubscribe/{token}`: a button; the POST (also RFC 8058 one-click) unsubscribes.

Every answer is an HTML page that says no-store, no-referrer (tokens are in the
URLs) and a strict CSP. The client address is REMOTE_ADDR: behind a proxy, the
operator sets gunicorn's `--forwarded-allow-ips` so it is the client's, never a
header a client could write. Addresses and tokens are never logged at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs

import falcon
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.http.errors import Refuse, TooLarge, read_body, status_line
from bot.publish import page_info
from bot.runtime import Runtime
from commands import signup, words
from renderers.subscribe import Shown, render_message
from storage.db import transaction

log = logging.getLogger(__name__)

MAX_FORM = 64 * 1024
MAX_FIELDS = 1000
FORM_TYPE = "application/x-www-form-urlencoded"
# The pages link the app's own copy of the stylesheet (bot/http/pages.py): nothing inline.
CSP = (
    "default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
T = TypeVar("T")


class _Routes(Refuse):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.page = page_info(runtime.settings)

    def answer(
        self, resp: falcon.Response, status: int, heading: str, *lines: str, **kw: Any
    ) -> None:
        """An HTML page with the headers every sign-up page carries."""
        resp.status = status_line(status)
        resp.content_type = "text/html; charset=utf-8"
        resp.data = render_message(self.page, heading, lines, **kw).encode()
        resp.cache_control = ["no-store"]
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Content-Security-Policy", CSP)

    def gone(self, resp: falcon.Response) -> None:
        """The friendly 404 of an unknown, expired or used-up link."""
        self.answer(
            resp,
            404,
            "This link has expired or is not valid",
            "Confirmation links last 7 days. Subscribe again on the form to get a new one.",
            back_to_form=True,
        )

    def run(self, work: Callable[[Session], T]) -> T:
        """One transaction: all of it is written, or none."""
        with transaction(self.runtime.factory) as session:
            return work(session)

    def form(self, req: falcon.Request, resp: falcon.Response) -> dict[str, list[str]] | None:
        """The posted form, or None after answering what was wrong with it."""
        media = (req.content_type or "").split(";")[0].strip().lower()
        if media != FORM_TYPE:
            self.answer(
                resp,
                415,
                "Send the form as a web page does",
                f"Expected {FORM_TYPE}.",
                back_to_form=True,
            )
            return None
        try:
            raw = read_body(req, limit=MAX_FORM)
        except TooLarge:
            self.answer(
                resp,
                413,
                "That form is too large",
                f"Send at most {MAX_FORM:,} bytes.",
                back_to_form=True,
            )
            return None
        try:
            text = raw.decode("utf-8")
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            self.answer(
                resp,
                400,
                "That form could not be read",
                "Send it from the page's form.",
                back_to_form=True,
            )
            return None
        if any("\x00" in v or "\x00" in k for k, vs in fields.items() for v in vs):
            self.answer(
                resp,
                400,
                "That form could not be read",
                "It contains a NUL character.",
                back_to_form=True,
            )
            return None
        return fields


class SignUp(_Routes):
    """`POST /subscribe`."""

    allow = ("POST",)

    def __init__(self, runtime: Runtime, endpoint_refusal: signup.EndpointRefusal) -> None:
        super().__init__(runtime)
        self.endpoint_refusal = endpoint_refusal

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Sign up; the same page for every address."""
        fields = self.form(req, resp)
        if fields is None:
            return
        kind = _one(fields, "kind") or "email"
        endpoint = _one(fields, "endpoint") if kind == "webhook" else None
        now = self.runtime.clock()
        try:
            if kind not in ("email", "webhook"):
                raise signup.SignupRefused(words.SIGNUP_BAD_KIND)
            self.run(
                lambda s: signup.sign_up(
                    s,
                    email=_one(fields, "email"),
                    endpoint=endpoint,
                    component_codes=fields.get("component", []),
                    client=req.remote_addr or "unknown",
                    now=now,
                    endpoint_refusal=self.endpoint_refusal,
                )
            )
        except signup.SignupRefused as refused:
            if refused.retry_after is not None:
                resp.set_header("Retry-After", str(refused.retry_after))
            heading = "Please wait a moment" if refused.status == 429 else "Please check the form"
            self.answer(resp, refused.status, heading, refused.message, back_to_form=True)
            return
        except IntegrityError:
            # The same address signed up twice at the same moment: the other one won.
            log.info("a sign-up clashed with another for the same address")
        log.info("a sign-up from the page (%s)", "webhook" if endpoint else "email")
        self.answer(
            resp,
            200,
            "Check your inbox",
            "If that address can be subscribed, we have sent it a link to confirm. "
            "Nothing is sent until you follow it; the link lasts 7 days.",
        )


class Confirm(_Routes):
    """`GET /subscribe/confirm/{token}`."""

    allow = ("GET",)

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Confirm, and show the webhook secret the first time."""
        now = self.runtime.clock()
        sub = self.run(lambda s: signup.confirm(s, token=token, now=now))
        if sub is None:
            self.gone(resp)
            return
        lines = ["You will now be told when something changes."]
        if sub.kind == "webhook" and sub.secret is None:
            lines.append("This webhook was confirmed before; its secret is shown only once.")
        self.answer(
            resp, 200, "Subscription confirmed", *lines, shown=_shown(sub), secret=sub.secret
        )


class Manage(_Routes):
    """`GET|POST /subscription/{token}`."""

    allow = ("GET", "POST")

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """The manage page, components ticked."""
        found = self.run(lambda s: (signup.subscription(s, token=token), signup.choices(s)))
        self._page(resp, *found)

    def on_post(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Save the component choices."""
        fields = self.form(req, resp)
        if fields is None:
            return
        now = self.runtime.clock()
        codes = fields.get("component", [])
        try:
            found = self.run(
                lambda s: (
                    signup.manage(s, token=token, component_codes=codes, now=now),
                    signup.choices(s),
                )
            )
        except signup.SignupRefused as refused:
            self.answer(resp, refused.status, "Please check the form", refused.message)
            return
        self._page(resp, *found, saved=True)

    def _page(
        self,
        resp: falcon.Response,
        sub: signup.Subscription | None,
        sections: signup.Choices,
        *,
        saved: bool = False,
    ) -> None:
        if sub is None:
            self.gone(resp)
            return
        if sub.unsubscribed:
            self.answer(
                resp, 200, "You are unsubscribed", "Nothing more will be sent.", back_to_form=True
            )
            return
        lines = ["Saved." if saved else "Choose what you hear about."]
        lines.append("No component ticked means every component.")
        self.answer(
            resp,
            200,
            "Your subscription",
            *lines,
            shown=_shown(sub),
            manage=True,
            sections=sections,
        )


class Unsubscribe(_Routes):
    """`GET|POST /unsubscribe/{token}`: a GET only shows the button (scanners follow links)."""

    allow = ("GET", "POST")

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """A page with the Unsubscribe button."""
        sub = self.run(lambda s: signup.subscription(s, token=token))
        if sub is None:
            self.gone(resp)
        elif sub.unsubscribed:
            self.answer(resp, 200, "You are unsubscribed", "Nothing more will be sent.")
        else:
            self.answer(
                resp,
                200,
                "Unsubscribe?",
                "Press the button to stop all updates.",
                shown=_shown(sub),
                button="Unsubscribe",
            )

    def on_post(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Unsubscribe (idempotent); a one-click body (RFC 8058) or the page's button."""
        try:
            read_body(req, limit=MAX_FORM)  # whatever it says, the POST is the request
        except TooLarge:
            self.answer(resp, 413, "That form is too large", f"Send at most {MAX_FORM:,} bytes.")
            return
        now = self.runtime.clock()
        sub = self.run(lambda s: signup.unsubscribe(s, token=token, now=now))
        if sub is None:
            self.gone(resp)
            return
        self.answer(
            resp, 200, "You are unsubscribed", "Nothing more will be sent.", back_to_form=True
        )


def register(
    app: falcon.App[Any, Any],
    runtime: Runtime,
    *,
    endpoint_refusal: signup.EndpointRefusal | None = None,
) -> None:
    """Add the sign-up routes; `endpoint_refusal` checks a webhook URL beyond its syntax
    (by default the webhook deliverer's own address check, Runtime.endpoint_refusal)."""
    app.add_route("/subscribe", SignUp(runtime, endpoint_refusal or runtime.endpoint_refusal))
    app.add_route("/subscribe/confirm/{token}", Confirm(runtime))
    app.add_route("/subscription/{token}", Manage(runtime))
    app.add_route("/unsubscribe/{token}", Unsubscribe(runtime))


def _one(fields: dict[str, list[str]], name: str) -> str:
    values: Sequence[str] = fields.get(name, [])
    return values[0] if values else ""


def _shown(sub: signup.Subscription) -> Shown:
    return Shown(token=sub.token, components=sub.components, unsubscribed=sub.unsubscribed)
