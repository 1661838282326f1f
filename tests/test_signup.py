"""Signing up from the page (SPEC §9), through real HTTP to the served app, on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from sqlalchemy import Engine, select

from bot.http import create_app
from bot.runtime import Runtime
from commands.signup import SIGNUP_LIMIT
from storage.models import AuditEvent, Component, OutboxEntry, Subscriber
from tests.conftest import FakeClock
from tests.helpers import dump
from tests.test_web import Answer, call, serving

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def app(runtime: Runtime) -> Iterator[str]:
    for line in (
        "/component add API",
        '/component add "Transactional emails" --group "Email Processing"',
        '/component add "Newsletter emails" --group "Email Processing"',
    ):
        assert runtime.run_line(line, user="U0EDITOR").ok
    with serving(create_app(runtime)) as base:
        yield base


def post(base: str, path: str, fields: list[tuple[str, str]] | str, **headers: str) -> Answer:
    body = fields if isinstance(fields, str) else urlencode(fields)
    return call(base, "POST", path, body, {**FORM, **headers})


def codes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Component.name, Component.code)).tuples().all())


def subscriber(engine: Engine, email: str) -> Subscriber:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        found = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        session.expunge_all()
        return found


def confirm_entries(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxEntry.kind, OutboxEntry.channel, OutboxEntry.event))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_sign_up_confirm_manage_unsubscribe(app: str, engine: Engine) -> None:
    api = codes(engine)["API"]
    answer = post(app, "/subscribe", [("email", "Ops@Example.com"), ("component", api)])
    assert answer.status == 200, answer.body
    assert b"Check your inbox" in answer.body
    for name, value in {
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
    }.items():
        assert answer.headers[name] == value
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "<script" not in answer.body.decode()
    sub = subscriber(engine, "Ops@example.com")
    assert confirm_entries(engine) == [("email", sub.code, "subscriber.confirm")]
    assert sub.confirmed_at is None and sub.source == "page"

    confirmed = call(app, "GET", f"/subscribe/confirm/{sub.token}")
    assert confirmed.status == 200 and b"Subscription confirmed" in confirmed.body
    assert subscriber(engine, "Ops@example.com").confirmed_at is not None
    assert call(app, "GET", f"/subscribe/confirm/{sub.token}").status == 200  # twice: harmless

    manage = call(app, "GET", f"/subscription/{sub.token}")
    assert manage.status == 200
    assert re.search(rf'value="{api}"[^>]*checked', manage.body.decode())
    emails = codes(engine)["Newsletter emails"]
    saved = post(app, f"/subscription/{sub.token}", [("component", emails)])
    assert saved.status == 200 and b"Saved." in saved.body
    assert [c.code for c in subscriber(engine, "Ops@example.com").components] == [emails]

    # A GET never unsubscribes (mail scanners follow links); the POST does, twice harmlessly.
    assert b"<button" in call(app, "GET", f"/unsubscribe/{sub.token}").body
    assert subscriber(engine, "Ops@example.com").unsubscribed_at is None
    for _ in range(2):
        gone = post(app, f"/unsubscribe/{sub.token}", [])
        assert gone.status == 200 and b"You are unsubscribed" in gone.body
    assert subscriber(engine, "Ops@example.com").unsubscribed_at is not None
    with engine.connect() as conn:
        actions = list(conn.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-4:] == [
        "subscriber.signed_up",
        "subscriber.confirmed",
        "subscriber.components_changed",
        "subscriber.unsubscribed",
    ]


def test_one_click_unsubscribe(app: str, engine: Engine) -> None:
    post(app, "/subscribe", [("email", "a@example.com")])
    token = subscriber(engine, "a@example.com").token
    answer = post(app, f"/unsubscribe/{token}", "List-Unsubscribe=One-Click")
    assert answer.status == 200
    assert subscriber(engine, "a@example.com").unsubscribed_at is not None


def test_a_webhook_to_a_private_address_is_refused(app: str, engine: Engine) -> None:
    """The webhook deliverer's own address check runs at sign-up (SSRF)."""
    before = dump(engine)
    for url in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://169.254.169.254/"):
        fields = [("kind", "webhook"), ("endpoint", url), ("email", "h@example.com")]
        answer = post(app, "/subscribe", fields)
        assert answer.status == 400
        assert b"public internet addresses" in answer.body, answer.body[-600:]
    assert dump(engine) == before


def test_a_webhook_secret_is_shown_once(app: str, engine: Engine, runtime: Runtime) -> None:
    # A private deployment's receiver on this machine: no name is looked up.
    runtime.settings = replace(runtime.settings, webhook_allow_private=True)
    fields = [
        ("kind", "webhook"),
        ("endpoint", "http://127.0.0.1:9/x"),
        ("email", "h@example.com"),
    ]
    assert post(app, "/subscribe", fields).status == 200
    sub = subscriber(engine, "h@example.com")
    assert sub.kind == "webhook" and sub.secret and sub.secret.startswith("whsec_")
    first = call(app, "GET", f"/subscribe/confirm/{sub.token}").body.decode()
    assert sub.secret in first
    assert sub.secret not in call(app, "GET", f"/subscribe/confirm/{sub.token}").body.decode()


@pytest.mark.parametrize(
    "path", ["/subscribe/confirm/nope", "/subscription/nope", "/unsubscribe/nope"]
)
def test_unknown_tokens_get_a_friendly_404(app: str, path: str) -> None:
    answer = call(app, "GET", path)
    assert answer.status == 404
    assert b"This link has expired or is not valid" in answer.body
    assert answer.headers["content-type"].startswith("text/html")


def test_a_confirmation_link_expires_after_7_days(
    app: str, engine: Engine, clock: FakeClock
) -> None:
    post(app, "/subscribe", [("email", "late@example.com")])
    clock.advance(days=7)
    token = subscriber(engine, "late@example.com").token
    assert call(app, "GET", f"/subscribe/confirm/{token}").status == 404
    assert subscriber(engine, "late@example.com").confirmed_at is None


def test_the_same_reply_for_a_new_and_a_known_address(
    app: str, engine: Engine, clock: FakeClock
) -> None:
    first = post(app, "/subscribe", [("email", "same@example.com")])
    again = post(app, "/subscribe", [("email", "SAME@example.com")])
    assert first.status == again.status == 200 and first.body == again.body
    assert len(confirm_entries(engine)) == 1  # no second mail within 10 minutes, no new row
    clock.advance(minutes=11)
    post(app, "/subscribe", [("email", "same@example.com")])
    assert len(confirm_entries(engine)) == 2  # unconfirmed and 10 minutes on: sent again
    with engine.connect() as conn:
        assert len(conn.execute(select(Subscriber.id)).all()) == 1


def test_too_many_sign_ups_from_one_client(app: str, engine: Engine, clock: FakeClock) -> None:
    for n in range(SIGNUP_LIMIT):
        assert post(app, "/subscribe", [("email", f"u{n}@example.com")]).status == 200
    before = dump(engine)
    over = post(app, "/subscribe", [("email", "one-more@example.com")])
    assert over.status == 429 and b"Too many sign-ups" in over.body
    assert 0 < int(over.headers["retry-after"]) <= 600
    assert dump(engine) == before
    clock.advance(minutes=10)
    assert post(app, "/subscribe", [("email", "one-more@example.com")]).status == 200


HOSTILE = [
    ([("email", "<script>alert(1)</script>@example.com")], 400, b"not an email address"),
    ([("email", "a" * 10_000 + "@example.com")], 400, b"too long"),
    ([("email", "a\x00b@example.com")], 400, b"NUL"),
    ([("email", "")], 400, b"Give an email address"),
    ([("kind", "webhook"), ("email", "x@example.com"), ("endpoint", " ")], 400, b"webhook URL"),
    ([("kind", "<i>carrier pigeon</i>"), ("email", "x@example.com")], 400, b"by email or"),
    ([("email", "x@example.com"), ("component", "<b>nope</b>")], 400, b"no component"),
    (
        [("kind", "webhook"), ("endpoint", "javascript:alert(1)"), ("email", "x@example.com")],
        400,
        b"http",
    ),
    (
        [
            ("kind", "webhook"),
            ("endpoint", "https://u:p@h.example.com/"),
            ("email", "x@example.com"),
        ],
        400,
        b"user name",
    ),
    (
        [
            ("kind", "webhook"),
            ("endpoint", "https://h.example.com/" + "a" * 3000),
            ("email", "x@example.com"),
        ],
        400,
        b"too long",
    ),
]


@pytest.mark.parametrize(("fields", "status", "says"), HOSTILE)
def test_hostile_input_is_refused_and_writes_nothing(
    app: str, engine: Engine, fields: list[tuple[str, str]], status: int, says: bytes
) -> None:
    before = dump(engine)
    answer = post(app, "/subscribe", fields)
    assert answer.status == status and says in answer.body
    assert b"<script>" not in answer.body and b"<b>nope" not in answer.body
    assert dump(engine) == before


def test_wrong_content_type_and_huge_bodies(app: str, engine: Engine) -> None:
    before = dump(engine)
    wrong = call(
        app,
        "POST",
        "/subscribe",
        '{"email": "a@example.com"}',
        {"Content-Type": "application/json"},
    )
    assert wrong.status == 415 and wrong.headers["content-type"].startswith("text/html")
    huge = post(app, "/subscribe", "email=a%40example.com&x=" + "a" * 70_000)
    assert huge.status == 413
    bad = call(app, "POST", "/subscribe", b"email=\xff", FORM)
    assert bad.status == 400
    assert call(app, "GET", "/subscribe").status == 405
    assert dump(engine) == before


def test_the_page_files_are_still_served_beside_the_routes(app: str) -> None:
    assert call(app, "GET", "/subscribe/confirm").status == 404  # the page sink, no token


def test_manage_refuses_unknown_components_and_writes_nothing(app: str, engine: Engine) -> None:
    post(app, "/subscribe", [("email", "m@example.com")])
    token = subscriber(engine, "m@example.com").token
    before = dump(engine)
    answer = post(app, f"/subscription/{token}", [("component", "zzz")])
    assert answer.status == 400
    assert dump(engine) == before
