"""`/v1/pages/{page_id}/subscribers`: Statuspage's subscriber routes, for email and webhooks.

Writes end in commands/subscribers.py: add (a confirmation email, unless
`skip_confirmation_notification` is true: the key holder vouches and it is confirmed
at once), follow (which components), remove. SMS and Slack subscribers are Statuspage
features statusbot does not have: asking for one is a 422.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.http.v1.body import BadRequest, Fields, Kind, unwrap
from bot.http.v1.components import components_named
from bot.http.v1.route import ApiError, Call, Operation, Reply, Route, not_found
from commands import subscribers as uc
from commands.addresses import check_email, validate_endpoint
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from storage import subscribers as store
from storage.models import Subscriber

SUBSCRIBER = Fields(
    "subscriber",
    {
        "email": Kind.TEXT,
        "endpoint": Kind.TEXT,
        "skip_confirmation_notification": Kind.BOOL,
        "component_ids": Kind.IDS,
        "phone_number": Kind.TEXT,
        "phone_country": Kind.TEXT,
    },
    ignored=frozenset({"page_access_user"}),
)
EXAMPLE = '{"subscriber": {"email": "ops@example.com", "component_ids": ["ID"]}}'
STATES = ("active", "unconfirmed", "quarantined", "unsubscribed", "all")
TYPES = ("email", "webhook")


def _state(s: Subscriber) -> str:
    if s.unsubscribed_at is not None:
        return "unsubscribed"
    if s.quarantined_at is not None or s.bounced_at is not None:
        return "quarantined"
    if s.confirmed_at is None:
        return "unconfirmed"
    return "active"


def list_subscribers(call: Call) -> Reply:
    """Subscribers, oldest first: `q` (in the address), `type`, `state`, `limit`, `page` (0-).

    `page` counts from 0 here, as Statuspage's subscriber list does."""
    text = (call.query("q") or "").strip().lower()
    kind = call.query("type")
    if kind is not None and kind not in TYPES:
        raise ApiError(400, f"type must be one of {', '.join(TYPES)} (statusbot has no SMS).")
    state = call.query("state") or "active"
    if state not in STATES:
        raise ApiError(400, f"state must be one of {', '.join(STATES)}; got {state[:40]!r}.")
    limit = _number(call.query("limit"), "limit", lowest=1)
    page = _number(call.query("page"), "page", lowest=0) or 0
    objects = call.objects

    def look(session: Session) -> list[dict[str, Any]]:
        stmt = select(Subscriber).order_by(Subscriber.id)
        if kind:
            stmt = stmt.where(Subscriber.kind == kind)
        found = [
            s
            for s in session.scalars(stmt)
            if (state == "all" or _state(s) == state)
            and (not text or text in (s.endpoint or s.email).lower())
        ]
        if limit:
            found = found[page * limit : (page + 1) * limit]
        return [objects.subscriber(store.view_of(s)) for s in found]

    return Reply(200, call.read(look))


def _number(text: str | None, name: str, *, lowest: int) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit() or not lowest <= int(text) <= 1_000_000:
        raise ApiError(400, f"{name} must be a whole number from {lowest}; got {text[:20]!r}.")
    return int(text)


def get_subscriber(call: Call) -> Reply:
    code = call.params["subscriber_id"]
    objects = call.objects

    def look(session: Session) -> dict[str, Any]:
        found = session.scalars(select(Subscriber).where(Subscriber.code == code)).first()
        if found is None:
            raise not_found("subscriber", code)
        return objects.subscriber(store.view_of(found))

    return Reply(200, call.read(look))


def create_subscriber(call: Call) -> Reply:
    fields = SUBSCRIBER.check(unwrap(call.body(), "subscriber", example=EXAMPLE))
    if fields.get("phone_number") or fields.get("phone_country"):
        raise ApiError(422, "statusbot has no SMS subscribers: subscribe an email or a webhook.")
    email, endpoint = fields.get("email"), fields.get("endpoint")
    if not email:
        raise ApiError(422, f"subscriber[email] is required (for a webhook too), e.g. {EXAMPLE}.")
    try:  # the address as the use case keeps it, to find the subscriber it made
        address = validate_endpoint(endpoint) if endpoint else check_email(email)
    except CommandError as error:
        raise BadRequest(422, error.message) from None
    vouched = bool(fields.get("skip_confirmation_notification"))
    kind = store.WEBHOOK if endpoint else store.EMAIL
    objects = call.objects

    def change(session: Session, ctx: Context) -> Result:
        chosen = components_named(
            session, fields.get("component_ids") or [], "subscriber[component_ids]"
        )
        if endpoint:
            result = uc.add_webhook(
                session,
                ctx,
                url=endpoint,
                email=email,
                components=chosen,
                source="api",
                vouched=vouched,
            )
        else:
            result = uc.add_email(
                session, ctx, email=email, components=chosen, source="api", vouched=vouched
            )
        if not result.changed:  # already subscribed: nothing was written
            raise ApiError(422, result.reply)
        return result

    def view(session: Session) -> dict[str, Any]:
        made = store.find_live(session, kind=kind, address=address)
        assert made is not None  # the use case just made it
        return {
            **objects.subscriber(store.view_of(made)),
            "skip_confirmation_notification": vouched,
        }

    return Reply(201, call.write(change, view, what="create subscriber"))


def update_subscriber(call: Call) -> Reply:
    code = call.params["subscriber_id"]
    body = call.body()
    fields = SUBSCRIBER.check(
        unwrap(body, "subscriber", example=EXAMPLE) if "subscriber" in body else body
    )
    if set(fields) - {"component_ids"}:
        raise ApiError(
            422, "Only component_ids can change; to change an address, subscribe it anew."
        )
    if "component_ids" not in fields:
        raise ApiError(422, 'Send the components to follow: {"component_ids": ["ID", …]}.')

    def change(session: Session, ctx: Context) -> Result:
        chosen = components_named(session, fields["component_ids"] or [], "component_ids")
        return uc.follow(session, ctx, which=code, components=chosen)

    return _change_one(call, code, change, what="update subscriber")


def delete_subscriber(call: Call) -> Reply:
    code = call.params["subscriber_id"]
    return _change_one(
        call,
        code,
        lambda session, ctx: uc.remove(session, ctx, which=code),
        what="delete subscriber",
    )


def _change_one(
    call: Call, code: str, use: Callable[[Session, Context], Result], *, what: str
) -> Reply:
    """Run a use case on the live subscriber `code` (404 without one); answer it as it is now."""
    objects = call.objects
    found: list[Subscriber] = []

    def change(session: Session, ctx: Context) -> Result:
        subscriber = store.by_code(session, code)
        if subscriber is None:
            raise not_found("subscriber", code)
        found.append(subscriber)
        return use(session, ctx)

    return Reply(
        200, call.write(change, lambda s: objects.subscriber(store.view_of(found[0])), what=what)
    )


ROUTES = (
    Route(
        "/pages/{page_id}/subscribers",
        (
            Operation(
                "GET",
                list_subscribers,
                "Get a list of subscribers",
                "getPagesPageIdSubscribers",
                200,
                "Subscriber[]",
                query=("q", "type", "state", "limit", "page"),
            ),
            Operation(
                "POST",
                create_subscriber,
                "Create a subscriber",
                "postPagesPageIdSubscribers",
                201,
                "Subscriber",
                "PostSubscriber",
            ),
        ),
    ),
    Route(
        "/pages/{page_id}/subscribers/{subscriber_id}",
        (
            Operation(
                "GET",
                get_subscriber,
                "Get a subscriber",
                "getPagesPageIdSubscribersSubscriberId",
                200,
                "Subscriber",
            ),
            Operation(
                "PATCH",
                update_subscriber,
                "Update a subscriber",
                "patchPagesPageIdSubscribersSubscriberId",
                200,
                "Subscriber",
                "PatchSubscriber",
            ),
            Operation(
                "DELETE",
                delete_subscriber,
                "Unsubscribe a subscriber",
                "deletePagesPageIdSubscribersSubscriberId",
                200,
                "Subscriber",
            ),
        ),
    ),
)
