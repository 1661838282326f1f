"""Signing up from the page (SPEC §9): the public use cases behind the form and the links.

Nobody is logged in here. A sign-up is done by "page"; after it, the token in a
link proves who is asking, so the audit names the subscriber's code. Each
function works in the caller's transaction and raises SignupRefused for input
it won't take (nothing is written then: the caller rolls back).

A sign-up always gets the same answer, whether the address was new, already
subscribed or unconfirmed, so the form can't be used to learn who subscribes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from commands import addresses, endpoints, words
from storage import audit, components, outbox, ratelimits, subscribers
from storage.models import Component, Subscriber

PAGE_ACTOR = "page"
CONFIRM_EVENT = "subscriber.confirm"
RESEND_AFTER = timedelta(minutes=10)  # at most one confirmation mail per address this often
CONFIRM_FOR = timedelta(days=7)  # a confirmation link's life
SIGNUP_LIMIT = 5  # sign-ups per client address per window
SIGNUP_WINDOW = timedelta(minutes=10)

# A URL check beyond syntax (bot/: DNS, private addresses); None means acceptable.
EndpointRefusal = Callable[[str], str | None]
# The form's components: per section (a group's name, or None for those in no group),
# (code, name) in page order.
Choices = tuple[tuple[str | None, tuple[tuple[str, str], ...]], ...]


class SignupRefused(Exception):
    """Input the sign-up won't take: `message` says why; `status` is the HTTP answer."""

    def __init__(self, message: str, *, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds, for a rate limit


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscriber as its own pages show it; `secret` only on the confirmation that confirmed."""

    code: str
    kind: str
    email: str
    endpoint: str | None
    token: str
    components: frozenset[str]  # codes; empty: everything
    unsubscribed: bool
    secret: str | None = None


def choices(session: Session) -> Choices:
    """The live components the form offers, by group, in page order."""
    sections: list[tuple[str | None, list[tuple[str, str]]]] = []
    for component in components.live(session):
        group = component.group.name if component.group is not None else None
        if not sections or sections[-1][0] != group:
            sections.append((group, []))
        sections[-1][1].append((component.code, component.name))
    return tuple((name, tuple(items)) for name, items in sections)


def check_email(text: str) -> str:
    """addresses.normalised_email for the page: SignupRefused says what is wrong."""
    try:
        return addresses.normalised_email(text)
    except addresses.AddressProblem as problem:
        raise SignupRefused(str(problem)) from None


def sign_up(
    session: Session,
    *,
    email: str,
    endpoint: str | None,
    component_codes: Sequence[str],
    client: str,
    now: datetime,
    endpoint_refusal: EndpointRefusal | None = None,
) -> None:
    """Sign up from the page (a webhook when `endpoint` is given); a confirmation mail is
    queued when one is due. The same outcome for a new address and a known one;
    SignupRefused for bad input or too many sign-ups."""
    address = check_email(email)
    url = endpoint.strip() if endpoint is not None else None
    if url == "":
        raise SignupRefused(words.SIGNUP_NO_ENDPOINT)
    if url is not None:
        refusal = endpoints.url_problem(url) or (
            endpoint_refusal(url) if endpoint_refusal else None
        )
        if refusal is not None:
            raise SignupRefused(refusal)
    chosen = _components(session, component_codes)
    _count(session, client, now)
    kind = subscribers.WEBHOOK if url else subscribers.EMAIL
    known = subscribers.find_live(session, kind=kind, address=url or address)
    if known is not None:
        if known.confirmed_at is None and _resend_due(known, now):
            _send_confirmation(session, known, now, action="subscriber.confirmation_resent")
        return
    subscriber = subscribers.add(
        session,
        kind=kind,
        email=address,
        endpoint=url,
        components=chosen,
        source="page",
        now=now,
    )
    _send_confirmation(session, subscriber, now, action="subscriber.signed_up")


def confirm(session: Session, *, token: str, now: datetime) -> Subscription | None:
    """Confirm by the link's token; None for an unknown, unsubscribed or expired link.
    The webhook secret comes back only from the visit that confirmed."""
    subscriber = subscribers.by_token(session, token)
    if subscriber is None or subscriber.unsubscribed_at is not None:
        return None
    if subscriber.confirmed_at is not None:
        return _view(subscriber)
    sent = subscriber.confirmation_sent_at or subscriber.created_at
    if now >= sent + CONFIRM_FOR:
        return None
    subscribers.confirm(subscriber, now=now)
    _audit(session, subscriber, now, "subscriber.confirmed")
    return _view(subscriber, secret=subscriber.secret)


def subscription(session: Session, *, token: str) -> Subscription | None:
    """The subscription behind a manage or unsubscribe link, or None."""
    subscriber = subscribers.by_token(session, token)
    return None if subscriber is None else _view(subscriber)


def manage(
    session: Session, *, token: str, component_codes: Sequence[str], now: datetime
) -> Subscription | None:
    """Follow exactly these components (none: everything); None for an unknown link."""
    subscriber = subscribers.by_token(session, token)
    if subscriber is None:
        return None
    if subscriber.unsubscribed_at is not None:
        return _view(subscriber)
    chosen = _components(session, component_codes)
    before = sorted(c.code for c in subscriber.components)
    if before != sorted(c.code for c in chosen):
        subscribers.set_components(session, subscriber, chosen)
        _audit(
            session,
            subscriber,
            now,
            "subscriber.components_changed",
            before={"components": before},
            after={"components": sorted(c.code for c in chosen)},
        )
    return _view(subscriber)


def unsubscribe(session: Session, *, token: str, now: datetime) -> Subscription | None:
    """Unsubscribe (idempotent); None for an unknown link."""
    subscriber = subscribers.by_token(session, token)
    if subscriber is None:
        return None
    if subscribers.unsubscribe(subscriber, now=now):
        _audit(session, subscriber, now, "subscriber.unsubscribed")
    return _view(subscriber)


def client_key(client: str) -> str:
    """The rate limit's key for a client address: hashed, so no address is stored."""
    return "signup:" + hashlib.sha256(client.encode()).hexdigest()[:32]


def _count(session: Session, client: str, now: datetime) -> None:
    counted = ratelimits.hit(session, key=client_key(client), window=SIGNUP_WINDOW, now=now)
    if counted.count > SIGNUP_LIMIT:
        wait = max(1, int((counted.resets_at - now).total_seconds() + 0.999))
        raise SignupRefused(
            words.SIGNUP_TOO_MANY.format(minutes=(wait + 59) // 60), status=429, retry_after=wait
        )


def _components(session: Session, codes: Sequence[str]) -> list[Component]:
    wanted = list(dict.fromkeys(code.strip() for code in codes if code.strip()))
    if not wanted:
        return []
    live = {c.code: c for c in components.live(session, groups=False)}
    unknown = [code for code in wanted if code not in live]
    if unknown:
        shown = ", ".join(repr(code[:40]) for code in unknown[:5])
        raise SignupRefused(words.SIGNUP_UNKNOWN_COMPONENTS.format(codes=shown))
    return [live[code] for code in wanted]


def _resend_due(subscriber: Subscriber, now: datetime) -> bool:
    sent = subscriber.confirmation_sent_at
    return sent is None or now - sent > RESEND_AFTER


def _send_confirmation(
    session: Session, subscriber: Subscriber, now: datetime, *, action: str
) -> None:
    subscriber.confirmation_sent_at = now
    outbox.enqueue(
        session,
        kind=outbox.Kind.EMAIL,
        channels=[subscriber.code],
        event=CONFIRM_EVENT,
        at=now,
        payload={},
    )
    _audit(session, subscriber, now, action, actor=PAGE_ACTOR)


def _audit(
    session: Session,
    subscriber: Subscriber,
    now: datetime,
    action: str,
    *,
    actor: str | None = None,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
    # No address in the audit: the code names the subscriber, the row holds the rest.
    audit.record(
        session,
        actor=actor or subscriber.code,
        action=action,
        target=subscriber.code,
        at=now,
        before=before,
        after=after or {"kind": subscriber.kind, "via": "page"},
    )


def _view(subscriber: Subscriber, *, secret: str | None = None) -> Subscription:
    return Subscription(
        code=subscriber.code,
        kind=subscriber.kind,
        email=subscriber.email,
        endpoint=subscriber.endpoint,
        token=subscriber.token,
        components=frozenset(c.code for c in subscriber.components),
        unsubscribed=subscriber.unsubscribed_at is not None,
        secret=secret,
    )
