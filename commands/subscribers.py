"""Subscriber use cases for editors (SPEC §9): add, add a webhook, remove, list, show, count.

Slack's `/subscribers`, the shell and `statusbot subscribers` all end here. Every
verb is for editors only: the answers name customers' addresses. An address an
editor adds still confirms (double opt-in): adding it queues its confirmation mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from commands import words
from commands.addresses import check_email, validate_endpoint
from commands.common import audit_change, authorise
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from storage import outbox
from storage import subscribers as store
from storage.escaping import escape
from storage.models import Component, Subscriber

CONFIRM_EVENT = "subscriber.confirm"


def request_confirmation(session: Session, subscriber: Subscriber, ctx: Context) -> None:
    """Queue the confirmation mail, the only mail an unconfirmed subscriber gets."""
    outbox.enqueue(
        session,
        channels=[subscriber.code],
        event=CONFIRM_EVENT,
        at=ctx.now,
        payload={},
        kind=outbox.Kind.EMAIL,
    )
    subscriber.confirmation_sent_at = ctx.now


def subscriber_state(subscriber: Subscriber) -> dict[str, Any]:
    """What the audit log keeps of a subscriber (never its secret or token)."""
    return {
        "id": subscriber.code,
        "kind": subscriber.kind,
        "email": subscriber.email,
        "endpoint": subscriber.endpoint,
        "components": [c.name for c in subscriber.components],
        "source": subscriber.source,
        "confirmed": subscriber.confirmed_at is not None,
        "unsubscribed": subscriber.unsubscribed_at is not None,
    }


def add_email(
    session: Session,
    ctx: Context,
    *,
    email: str,
    components: Sequence[Component] = (),
    source: str = "slack",
    vouched: bool = False,
) -> Result:
    """Subscribe an address; it is sent a confirmation and told nothing else until it confirms
    (unless `vouched`: an API key holder said it need not, as Statuspage's
    skip_confirmation_notification does; it is confirmed at once, and audited so)."""
    usage = words.USAGE["subscribers add"]
    authorise(ctx, action="subscribers.add", target="subscriber")
    address = check_email(email, usage)
    return _add(
        session,
        ctx,
        kind=store.EMAIL,
        email=address,
        components=components,
        source=source,
        vouched=vouched,
    )


def add_webhook(
    session: Session,
    ctx: Context,
    *,
    url: str,
    email: str,
    components: Sequence[Component] = (),
    source: str = "slack",
    vouched: bool = False,
) -> Result:
    """Subscribe a webhook URL, with the address its failure notices (and confirmation) go to;
    `vouched` as for add_email."""
    usage = words.USAGE["subscribers add-webhook"]
    authorise(ctx, action="subscribers.add_webhook", target="subscriber")
    endpoint = validate_endpoint(url, usage)
    refused = ctx.endpoint_refusal(endpoint) if ctx.endpoint_refusal else None
    if refused is not None:
        raise CommandError(words.webhook_refused(refused), usage)
    address = check_email(email, usage)
    return _add(
        session,
        ctx,
        kind=store.WEBHOOK,
        email=address,
        endpoint=endpoint,
        components=components,
        source=source,
        vouched=vouched,
    )


def _add(
    session: Session,
    ctx: Context,
    *,
    kind: str,
    email: str,
    components: Sequence[Component],
    source: str,
    endpoint: str | None = None,
    vouched: bool = False,
) -> Result:
    shown = escape(endpoint or email)
    existing = store.find_live(session, kind=kind, address=endpoint or email)
    if existing is not None:
        return Result(
            reply=f"{shown} is already subscribed (id {existing.code}, "
            f"{_standing(existing)}); nothing changed. See /subscribers show {existing.code}."
        )
    subscriber = store.add(
        session,
        kind=kind,
        email=email,
        endpoint=endpoint,
        components=components,
        source=source,
        now=ctx.now,
    )
    if vouched:
        store.confirm(subscriber, now=ctx.now)
    else:
        request_confirmation(session, subscriber, ctx)
    audit_change(
        session,
        ctx,
        action=f"subscriber.add_{kind}",
        target=subscriber.code,
        before=None,
        after={**subscriber_state(subscriber), "vouched": vouched},
    )
    if vouched:
        return Result(
            reply=f"Added {shown} (id {subscriber.code}), following {_following(subscriber)}, "
            "confirmed at once (no confirmation email).",
            changed=True,
        )
    return Result(
        reply=f"Added {shown} (id {subscriber.code}), following {_following(subscriber)}. "
        f"A confirmation email is on its way to {escape(email)}; nothing else is sent until "
        "it is confirmed.",
        changed=True,
    )


def remove(session: Session, ctx: Context, *, which: str) -> Result:
    """Unsubscribe an email address, or any subscriber by its id."""
    usage = words.USAGE["subscribers remove"]
    authorise(ctx, action="subscribers.remove", target="subscriber")
    subscriber = find(session, which, usage)
    before = subscriber_state(subscriber)
    store.unsubscribe(subscriber, now=ctx.now)
    audit_change(
        session,
        ctx,
        action="subscriber.remove",
        target=subscriber.code,
        before=before,
        after=subscriber_state(subscriber),
    )
    return Result(
        reply=f"Removed {escape(_address(subscriber))} (id {subscriber.code}): it is told "
        "nothing more.",
        changed=True,
    )


def follow(
    session: Session, ctx: Context, *, which: str, components: Sequence[Component]
) -> Result:
    """Change which components a subscriber follows (none: everything)."""
    usage = words.USAGE["subscribers show"]
    authorise(ctx, action="subscribers.follow", target="subscriber")
    subscriber = find(session, which, usage)
    before = subscriber_state(subscriber)
    store.set_components(session, subscriber, components)
    audit_change(
        session,
        ctx,
        action="subscriber.follow",
        target=subscriber.code,
        before=before,
        after=subscriber_state(subscriber),
    )
    return Result(
        reply=f"{escape(_address(subscriber))} (id {subscriber.code}) now follows "
        f"{_following(subscriber)}.",
        changed=True,
    )


def find(session: Session, which: str, usage: str) -> Subscriber:
    """A live subscriber by email address (an email subscription) or by id."""
    word = which.strip()
    if not word:
        raise CommandError("Which subscriber? Give an email address or an id from list.", usage)
    found = (
        store.find_live(session, kind=store.EMAIL, address=word)
        if "@" in word
        else store.by_code(session, word.lower())
    )
    if found is None:
        what = "email subscription for" if "@" in word else "subscriber with id"
        raise CommandError(
            f"There is no {what} '{escape(word)}'. See /subscribers list.",
            usage,
        )
    return found


def list_subscribers(
    session: Session, ctx: Context, *, components: Sequence[Component] | None = None
) -> Result:
    """Live subscribers, oldest first; with components, those told about any of them."""
    authorise(ctx, action="subscribers.list", target="subscribers")
    wanted = {c.id for c in components or ()}
    found = [
        s
        for s in store.live(session)
        if not wanted or not s.components or wanted & {c.id for c in s.components}
    ]
    if not found:
        return Result(reply="No subscribers yet. Add one with " + words.USAGE["subscribers add"])
    shown = found[: words.SHOWN_SUBSCRIBERS]
    lines = [
        f"• {s.code} {s.kind} {escape(_address(s))}: {_standing(s)}, following {_following(s)}"
        for s in shown
    ]
    if len(found) > len(shown):
        lines.append(
            f"… and {len(found) - len(shown):,} more (`statusbot subscribers export` lists all)."
        )
    return Result(reply=f"{len(found):,} subscribers:\n" + "\n".join(lines))


def show(session: Session, ctx: Context, *, which: str) -> Result:
    """One subscriber in full; a webhook's signing secret too (editors only)."""
    usage = words.USAGE["subscribers show"]
    authorise(ctx, action="subscribers.show", target=which[:40])
    subscriber = find(session, which, usage)
    lines = [
        f"Subscriber {subscriber.code} ({subscriber.kind}): {_standing(subscriber)}",
        f"Email: {escape(subscriber.email)}",
    ]
    if subscriber.endpoint:
        lines.append(f"URL: {escape(subscriber.endpoint)}")
    lines.append(f"Following: {_following(subscriber)}")
    lines.append(f"Added {words.when(subscriber.created_at, ctx.tz)} from {subscriber.source}")
    if subscriber.confirmed_at:
        lines.append(f"Confirmed {words.when(subscriber.confirmed_at, ctx.tz)}")
    if subscriber.last_error:
        lines.append(f"Last error: {escape(subscriber.last_error[:300])}")
    if subscriber.secret:
        lines.append(f"Signing secret: `{subscriber.secret}` (keep it private)")
        # Who has seen a secret matters if it leaks: the reveal is on the record.
        audit_change(
            session,
            ctx,
            action="subscriber.show_secret",
            target=subscriber.code,
            before=None,
            after=None,
        )
    return Result(reply="\n".join(lines), changed=False)


def count(session: Session, ctx: Context) -> Result:
    """Confirmed, reachable subscribers by kind."""
    authorise(ctx, action="subscribers.count", target="subscribers")
    counts = store.count_active(session)
    total = sum(counts.values())
    return Result(
        reply=f"{total:,} confirmed subscribers: {counts[store.EMAIL]:,} by email, "
        f"{counts[store.WEBHOOK]:,} by webhook."
    )


def _address(subscriber: Subscriber) -> str:
    return subscriber.endpoint or subscriber.email


def _following(subscriber: Subscriber) -> str:
    if not subscriber.components:
        return "everything"
    return ", ".join(escape(c.name) for c in subscriber.components)


def _standing(subscriber: Subscriber) -> str:
    if subscriber.unsubscribed_at is not None:
        return "unsubscribed"
    if subscriber.quarantined_at is not None:
        return "quarantined (its webhook kept failing)"
    if subscriber.bounced_at is not None:
        return "bouncing (mail to it was refused)"
    if subscriber.confirmed_at is None:
        return "waiting for confirmation"
    return "confirmed"
