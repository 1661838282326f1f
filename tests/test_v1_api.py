"""The v1 REST API (SPEC §10) through a real HTTP server, as a Statuspage client uses it.

The client here is plain `requests` with Statuspage's paths, headers and bodies (JSON
and Rails-style forms), nothing of statusbot's: what a script written for Statuspage
sends. The whole server runs (`bot.serve.build`): the fake Slack Web API gets the
announcements and the page is republished; both databases.
"""

# The attack table and the expected objects read best one entry a line.
# ruff: noqa: E501

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, func, select

from bot.runtime import Runtime
from bot.serve import Server, build
from bot.settings import Settings
from commands import api_keys
from commands.dispatch import run
from commands.result import Result
from storage.models import AuditEvent, Component, Incident, OutboxEntry, Subscriber
from tests.conftest import FakeClock
from tests.fake_slack import FakeSlack
from tests.helpers import dump
from tests.test_web import serving

# The fields of Statuspage's v1 objects (its published OpenAPI spec), each of which
# statusbot's objects must carry with the same name.
INCIDENT_FIELDS = {
    "id", "components", "created_at", "impact", "impact_override", "incident_updates",
    "metadata", "monitoring_at", "name", "page_id", "postmortem_body",
    "postmortem_body_last_updated_at", "postmortem_ignored", "postmortem_notified_subscribers",
    "postmortem_notified_twitter", "postmortem_published_at", "resolved_at",
    "scheduled_auto_completed", "scheduled_auto_in_progress", "scheduled_for",
    "scheduled_remind_prior", "scheduled_reminded_at", "scheduled_until", "shortlink", "status",
    "updated_at",
}  # fmt: skip
UPDATE_FIELDS = {
    "id", "incident_id", "affected_components", "body", "created_at", "custom_tweet",
    "deliver_notifications", "display_at", "status", "tweet_id", "twitter_updated_at",
    "updated_at", "wants_twitter_update",
}  # fmt: skip
COMPONENT_FIELDS = {
    "id", "page_id", "group_id", "created_at", "updated_at", "group", "name", "description",
    "position", "status", "showcase", "only_show_if_degraded", "automation_email",
}  # fmt: skip
GROUP_FIELDS = {
    "id", "page_id", "name", "description", "components", "position", "created_at", "updated_at"
}  # fmt: skip
SUBSCRIBER_FIELDS = {
    "id", "skip_confirmation_notification", "mode", "email", "endpoint", "phone_number",
    "phone_country", "display_phone_number", "quarantined_at", "purge_at", "components",
    "page_access_user_id", "created_at",
}  # fmt: skip
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$"


@dataclasses.dataclass
class Api:
    """A Statuspage-style client of one running statusbot."""

    base: str
    key: str
    page_id: str
    server: Server
    fake: FakeSlack
    page_dir: Path

    @property
    def runtime(self) -> Runtime:
        return self.server.runtime

    def url(self, path: str) -> str:
        return f"{self.base}/v1/pages/{self.page_id}{path}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"OAuth {self.key}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url(path), headers=headers, timeout=15, **kwargs)


def make_key(runtime: Runtime, name: str) -> str:
    """A key made by the use case `statusbot api-key create` runs."""
    ctx = runtime.system_context("cli")
    made: list[str] = []

    def change(session: Any) -> Result:
        result, token = api_keys.create(session, ctx, name=name)
        made.append(token)
        return result

    assert run(runtime.factory, ctx, change, what="key", note={}).ok
    return made[0]


@pytest.fixture
def api(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeSlack, tmp_path: Path
) -> Iterator[Api]:
    chosen = dataclasses.replace(
        settings,
        slack_bot_token="xoxb-test",
        slack_signing_secret="s" * 32,
        slack_api_url=fake.api_url,
        page_dir=tmp_path / "public",
        api_rate_limit=1000,
    )
    server = build(chosen, runtime=Runtime(chosen, engine=engine, clock=clock))
    try:
        with serving(server.web) as base:
            key = make_key(server.runtime, "monitoring")
            yield Api(base, key, chosen.page_id, server, fake, chosen.page_dir)
    finally:
        server.stop()


def published(api: Api, name: str, needle: str, timeout: float = 20.0) -> Any:
    """The page's file `name` once it holds `needle` (the publisher runs after the reply)."""
    path = api.page_dir / name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in (text := path.read_text()):
            return json.loads(text)
        time.sleep(0.05)
    raise AssertionError(f"{name} never held {needle!r}")


def test_a_statuspage_client_creates_and_updates_components_and_incidents(api: Api) -> None:
    made = api("POST", "/components", json={"component": {"name": "API", "description": "REST"}})
    assert made.status_code == 201, made.text
    component = made.json()
    assert set(component) >= COMPONENT_FIELDS
    assert component["status"] == "operational" and component["page_id"] == api.page_id
    cid = component["id"]
    # A monitoring bridge marks it degraded, the way it would on Statuspage.
    patched = api(
        "PATCH", f"/components/{cid}", json={"component": {"status": "degraded_performance"}}
    )
    assert patched.status_code == 200 and patched.json()["status"] == "degraded_performance"

    # An incident, form-encoded as Rails takes it.
    form = [
        ("incident[name]", "Checkout errors"),
        ("incident[status]", "investigating"),
        ("incident[body]", "Payments are failing."),
        (f"incident[components][{cid}]", "major_outage"),
        ("incident[component_ids][]", cid),
        ("incident[deliver_notifications]", "true"),
    ]
    opened = api("POST", "/incidents", data=form)
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    assert set(incident) >= INCIDENT_FIELDS
    assert incident["id"] == "1" and incident["name"] == "Checkout errors"
    assert incident["impact"] == "critical" and incident["impact_override"] is None
    assert [c["status"] for c in incident["components"]] == ["major_outage"]
    (update,) = incident["incident_updates"]
    assert set(update) >= UPDATE_FIELDS and update["body"] == "Payments are failing."
    assert update["affected_components"] == [
        {
            "code": cid,
            "name": "API",
            "old_status": "degraded_performance",
            "new_status": "major_outage",
        }
    ]
    for stamp in (incident["created_at"], update["display_at"]):
        assert re.match(TIMESTAMP, stamp), stamp

    # Slack hears of it, and the page shows it, after the reply.
    # The component's change by hand and the incident, each announced once.
    posts = api.fake.wait_for("chat.postMessage", 2)
    assert {p.params["channel"] for p in posts} == {"C0INCIDENTS"}
    assert "Operational → Degraded Performance" in posts[0].params["text"]
    assert "Checkout errors" in json.dumps(posts[1].params, ensure_ascii=False)
    page = published(api, "api/v2/incidents.json", "Checkout errors")
    assert page["incidents"][0]["id"] == "1"

    moved = api(
        "PATCH",
        "/incidents/1",
        json={"incident": {"status": "identified", "body": "A bad deploy."}},
    )
    assert moved.status_code == 200 and moved.json()["status"] == "identified"
    # Only a status, as clients often send: the update gets Statuspage's default words.
    only = api("PUT", "/incidents/1", json={"incident": {"status": "monitoring"}})
    assert only.json()["incident_updates"][0]["body"].startswith("A fix has been implemented")
    done = api("PATCH", "/incidents/1", json={"incident": {"status": "resolved", "body": "Fixed."}})
    assert done.status_code == 200
    assert done.json()["status"] == "resolved" and done.json()["resolved_at"] is not None
    assert done.json()["components"][0]["status"] == "operational"  # resolving frees it
    published(api, "api/v2/incidents.json", '"resolved"')
    # Updates go to the announcement's thread (replies are posts too).
    api.fake.wait_for("chat.postMessage", 5)

    got = api("GET", "/incidents/1").json()
    assert [u["status"] for u in got["incident_updates"]] == [
        "resolved", "monitoring", "identified", "investigating"
    ]  # fmt: skip
    with api.runtime.factory() as session:
        actors = set(
            session.scalars(select(AuditEvent.actor).where(AuditEvent.action != "api_key.create"))
        )
    assert actors == {"monitoring"}


def test_keys_are_taken_in_statuspages_three_forms_and_refused_otherwise(api: Api) -> None:
    url = api.url("/components")
    assert requests.get(url, timeout=15).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {api.key}"}, timeout=15).ok
    assert requests.get(url, params={"api_key": api.key}, timeout=15).ok
    for header in ("OAuth wrong", f"Basic {api.key}", "OAuth", f"OAuth {api.key}x"):
        refused = requests.get(url, headers={"Authorization": header}, timeout=15)
        assert refused.status_code == 401 and "error" in refused.json(), header
    ctx = api.runtime.system_context("cli")
    run(
        api.runtime.factory,
        ctx,
        lambda s: api_keys.revoke(s, ctx, name="monitoring"),
        what="r",
        note={},
    )
    assert api("GET", "/components").status_code == 401
    other = requests.get(
        f"{api.base}/v1/pages/notourpage/components",
        headers={"Authorization": f"OAuth {make_key(api.runtime, 'second')}"},
        timeout=15,
    )
    assert other.status_code == 404 and "notourpage" in other.json()["error"]


def test_pages_component_groups_and_deletes(api: Api) -> None:
    (page,) = requests.get(
        f"{api.base}/v1/pages", headers={"Authorization": f"OAuth {api.key}"}, timeout=15
    ).json()
    assert page["id"] == api.page_id and page["time_zone"] == "Australia/Sydney"
    assert api("GET", "").json()["url"] == "https://status.example.com"
    ids = [
        api("POST", "/components", json={"component": {"name": n}}).json()["id"] for n in ("A", "B")
    ]
    group = api(
        "POST",
        "/component-groups",
        json={"description": "Our core", "component_group": {"name": "Core", "components": ids}},
    )
    assert group.status_code == 201, group.text
    assert set(group.json()) == GROUP_FIELDS and group.json()["components"] == ids
    gid = group.json()["id"]
    listed = api("GET", "/components").json()
    assert [(c["name"], c["group"]) for c in listed] == [("Core", True), ("A", False), ("B", False)]
    assert all(c["group_id"] == gid for c in listed[1:])
    smaller = api(
        "PATCH", f"/component-groups/{gid}", json={"component_group": {"components": ids[:1]}}
    )
    assert smaller.json()["components"] == ids[:1]
    assert api("GET", f"/components/{ids[1]}").json()["group_id"] is None
    assert api("DELETE", f"/component-groups/{gid}").status_code == 200
    assert api("GET", f"/component-groups/{gid}").status_code == 404
    assert api("DELETE", f"/components/{ids[0]}").status_code == 204
    assert api("GET", f"/components/{ids[0]}").status_code == 404
    assert [c["name"] for c in api("GET", "/components").json()] == ["B"]


def test_maintenance_lists_and_backfills(api: Api, clock: FakeClock) -> None:
    cid = api("POST", "/components", json={"component": {"name": "DB"}}).json()["id"]
    start, end = "2026-06-11T01:00:00Z", "2026-06-11T03:00:00Z"
    body = {"incident": {"name": "DB upgrade", "scheduled_for": start, "scheduled_until": end,
                         "component_ids": [cid], "scheduled_auto_in_progress": False,
                         "scheduled_auto_completed": False, "auto_tweet_at_beginning": False,
                         "metadata": {}}}  # fmt: skip
    made = api("POST", "/incidents", json=body)
    assert made.status_code == 201, made.text
    work = made.json()
    assert work["status"] == "scheduled" and work["impact"] == "maintenance"
    assert work["scheduled_for"] == "2026-06-11T11:00:00.000+10:00"
    assert work["scheduled_auto_in_progress"] is False
    assert [i["id"] for i in api("GET", "/incidents/upcoming").json()] == [work["id"]]
    assert api("GET", "/incidents/active_maintenance").json() == []
    started = api("PATCH", f"/incidents/{work['id']}", json={"incident": {"status": "in_progress"}})
    assert started.json()["components"][0]["status"] == "under_maintenance"
    assert [i["id"] for i in api("GET", "/incidents/active_maintenance").json()] == [work["id"]]
    assert [i["id"] for i in api("GET", "/incidents/scheduled").json()] == [work["id"]]
    api("PATCH", f"/incidents/{work['id']}", json={"incident": {"status": "completed"}})
    assert api("GET", f"/components/{cid}").json()["status"] == "operational"

    # A backfilled incident: on the record, resolved, nobody told.
    before = _outbox(api)
    old = api("POST", "/incidents", json={"incident": {"name": "Old outage", "backfilled": True,
                                                        "backfill_date": "2026-05-01", "body": "It was down."}})  # fmt: skip
    assert old.status_code == 201, old.text
    assert old.json()["status"] == "resolved" and old.json()["created_at"] is not None
    assert old.json()["incident_updates"][0]["display_at"] == "2026-05-01T10:00:00.000+10:00"
    assert _outbox(api) == before
    assert [i["name"] for i in api("GET", "/incidents/unresolved").json()] == []


def _outbox(api: Api) -> int:
    with api.runtime.factory() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEntry)) or 0)


def test_incident_list_searches_and_pages_and_updates_can_be_corrected(
    api: Api, clock: FakeClock
) -> None:
    for n in range(5):
        clock.advance(minutes=1)
        name = f"Trouble {n}" if n % 2 else f"Slow 100%_{n}"
        assert api("POST", "/incidents", json={"incident": {"name": name, "body": "x"}}).ok
    every = api("GET", "/incidents").json()
    assert [i["id"] for i in every] == ["5", "4", "3", "2", "1"]
    assert [i["id"] for i in api("GET", "/incidents", params={"limit": 2, "page": 2}).json()] == [
        "3",
        "2",
    ]
    assert [i["name"] for i in api("GET", "/incidents", params={"q": "trouble"}).json()] == [
        "Trouble 3",
        "Trouble 1",
    ]
    # LIKE's wildcards are searched for literally.
    assert [i["id"] for i in api("GET", "/incidents", params={"q": "100%_4"}).json()] == ["5"]
    assert api("GET", "/incidents", params={"q": "%"}).json()[0]["id"] == "5"
    assert api("GET", "/incidents", params={"q": "' OR 1=1 --"}).json() == []
    uid = every[0]["incident_updates"][0]["id"]
    fixed = api(
        "PATCH",
        f"/incidents/5/incident_updates/{uid}",
        json={"incident_update": {"body": "Corrected.", "display_at": "2026-06-10T09:00:00Z",
                                  "deliver_notifications": False, "wants_twitter_update": False}},
    )  # fmt: skip
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["body"] == "Corrected." and fixed.json()["deliver_notifications"] is False
    assert fixed.json()["display_at"] == "2026-06-10T19:00:00.000+10:00"
    assert (
        api(
            "PATCH", "/incidents/5/incident_updates/nope", json={"incident_update": {"body": "x"}}
        ).status_code
        == 404
    )
    gone = api("DELETE", "/incidents/5")
    assert gone.status_code == 200 and gone.json()["id"] == "5"
    assert api("GET", "/incidents/5").status_code == 404


def test_subscribers_confirm_unless_the_key_holder_vouches(api: Api) -> None:
    cid = api("POST", "/components", json={"component": {"name": "API"}}).json()["id"]
    asked = api("POST", "/subscribers", json={"subscriber": {"email": "ops@example.com"}})
    assert asked.status_code == 201, asked.text
    assert set(asked.json()) >= SUBSCRIBER_FIELDS and asked.json()["mode"] == "email"
    vouched = api("POST", "/subscribers", data={"subscriber[email]": "vip@example.com",
                                                 "subscriber[skip_confirmation_notification]": "t",
                                                 "subscriber[component_ids][]": cid})  # fmt: skip
    assert vouched.status_code == 201 and vouched.json()["components"] == [cid]
    with api.runtime.factory() as session:
        rows = {s.email: s for s in session.scalars(select(Subscriber))}
        confirmations = session.scalars(
            select(OutboxEntry.channel).where(OutboxEntry.event == "subscriber.confirm")
        ).all()
    assert (
        rows["vip@example.com"].confirmed_at is not None and rows["vip@example.com"].source == "api"
    )
    assert rows["ops@example.com"].confirmed_at is None
    assert confirmations == [rows["ops@example.com"].code]
    again = api("POST", "/subscribers", json={"subscriber": {"email": "OPS@example.com"}})
    assert again.status_code == 422 and "already subscribed" in again.json()["error"]
    assert [s["email"] for s in api("GET", "/subscribers").json()] == ["vip@example.com"]
    assert len(api("GET", "/subscribers", params={"state": "all"}).json()) == 2
    sid = vouched.json()["id"]
    assert (
        api("PATCH", f"/subscribers/{sid}", json={"component_ids": []}).json()["components"] == []
    )
    assert api("GET", f"/subscribers/{sid}").json()["email"] == "vip@example.com"
    assert api("DELETE", f"/subscribers/{sid}").status_code == 200
    assert api("DELETE", f"/subscribers/{sid}").status_code == 404
    sms = api(
        "POST",
        "/subscribers",
        json={"subscriber": {"phone_number": "5551234", "phone_country": "US"}},
    )
    assert sms.status_code == 422


def test_metrics_are_listed_and_take_points_and_the_old_metrics_api_takes_the_keys(
    api: Api, clock: FakeClock
) -> None:
    ctx = api.runtime.system_context("cli")
    from commands.metrics import add_metric

    run(
        api.runtime.factory,
        ctx,
        lambda s: add_metric(s, ctx, name="Latency", unit="ms"),
        what="m",
        note={},
    )
    (metric,) = api("GET", "/metrics").json()
    assert metric["name"] == "Latency" and metric["suffix"] == "ms"
    stamp = int(clock.now.timestamp()) - 60
    added = api(
        "POST", f"/metrics/{metric['id']}/data", json={"data": {"timestamp": stamp, "value": 12.5}}
    )
    assert added.status_code == 201 and added.json() == {
        "data": {"timestamp": stamp, "value": 12.5}
    }
    many = api(
        "POST", "/metrics/data", json={"data": {metric["id"]: [{"timestamp": stamp, "value": 1}]}}
    )
    assert many.status_code == 201
    future = api(
        "POST",
        f"/metrics/{metric['id']}/data",
        json={"data": {"timestamp": stamp + 7200, "value": 1}},
    )
    assert future.status_code == 422 and "future" in future.json()["error"]
    assert api("POST", "/metrics/nope/data", json={"data": {"value": 1}}).status_code == 404
    assert api("GET", f"/metrics/{metric['id']}").json()["most_recent_data_at"] is not None
    old = requests.post(f"{api.base}/api/metrics/Latency", json={"value": 3},
                        headers={"Authorization": f"Bearer {api.key}"}, timeout=15)  # fmt: skip
    assert old.status_code == 200, old.text
    refused = requests.post(f"{api.base}/api/metrics/Latency", json={"value": 3},
                            headers={"Authorization": "Bearer nope"}, timeout=15)  # fmt: skip
    assert refused.status_code == 401


# --- bad input: a Statuspage-shaped 4xx, nothing written ------------------------------------


def _attacks(cid: str) -> list[tuple[str, str, dict[str, Any], int]]:
    return [
        ("POST", "/incidents", {"data": b'{"incident": {"name": ', "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/incidents", {"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/incidents", {"data": b'{"incident": {"name": "\xff"}}', "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/incidents", {"data": "[" * 100_000 + "]" * 100_000, "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/incidents", {"json": {"incident": {"name": {"a": {"b": {"c": {"d": 1}}}}}}}, 400),
        ("POST", "/incidents", {"data": "incident[name][a][b][c][d]=x", "headers": FORM}, 400),
        ("POST", "/incidents", {"data": "&".join(f"incident[f{n}]=x" for n in range(600)), "headers": FORM}, 400),
        ("POST", "/incidents", {"data": "incident[name]=x&incident[name][]=y", "headers": FORM}, 400),
        ("POST", "/incidents", {"data": "incident[[x=1", "headers": FORM}, 400),
        ("POST", "/incidents", {"data": b"x" * (300 * 1024), "headers": {"Content-Type": "application/json"}}, 413),
        ("POST", "/incidents", {"data": "name=x", "headers": {"Content-Type": "text/plain"}}, 415),
        ("POST", "/incidents", {"json": {"name": "not wrapped"}}, 400),
        ("POST", "/incidents", {"json": {"incident": {"name": "x"}, "extra": 1}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "severity": "high"}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": 12}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "status": "on fire"}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "impact_override": "maintenance"}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "deliver_notifications": "maybe"}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "components": {cid: "kaput"}}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "component_ids": ["nope"]}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "scheduled_for": "tomorrow"}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x" * 5000}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {"name": "x", "backfilled": True, "backfill_date": "2999-01-01"}}}, 422),
        ("POST", "/incidents", {"json": {"incident": {}}}, 422),
        ("PATCH", "/incidents/999", {"json": {"incident": {"status": "resolved"}}}, 404),
        ("PATCH", "/incidents/1%27%20OR%201=1", {"json": {"incident": {"status": "resolved"}}}, 404),
        ("DELETE", "/incidents/abc", {}, 404),
        ("PATCH", f"/components/{cid}", {"json": {"component": {"status": "broken"}}}, 422),
        ("PATCH", f"/components/{cid}", {"json": {"component": {"showcase": "perhaps"}}}, 422),
        ("PATCH", f"/components/{cid}", {"json": {"component": {"group_id": "nogroup"}}}, 422),
        ("PATCH", "/components/nope", {"json": {"component": {"status": "major_outage"}}}, 404),
        ("POST", "/components", {"json": {"component": {"name": "API"}}}, 422),
        ("POST", "/components", {"json": {"component": {"name": "a/b"}}}, 422),
        ("POST", "/component-groups", {"json": {"component_group": {"name": "G", "components": []}}}, 422),
        ("POST", "/subscribers", {"json": {"subscriber": {"email": "not an address"}}}, 422),
        ("POST", "/subscribers", {"json": {"subscriber": {"email": "a@example.com", "endpoint": "ftp://x"}}}, 422),
        ("GET", "/incidents?limit=0", {}, 400),
        ("GET", "/incidents?page=-1", {}, 400),
        ("PUT", "/incidents/unresolved", {"json": {}}, 405),
        ("GET", "/nothing/here", {}, 404),
    ]  # fmt: skip


def test_bad_input_is_refused_with_statuspage_shaped_errors_and_nothing_written(
    api: Api, engine: Engine
) -> None:
    cid = api("POST", "/components", json={"component": {"name": "API"}}).json()["id"]
    assert api("POST", "/incidents", json={"incident": {"name": "Real"}}).status_code == 201
    # The deliverer works on the outbox meanwhile: its rows are counted, not compared.
    moving = ("rate_limits", "api_keys", "outbox", "announcements")
    before, queued = dump(engine, skip=moving), _outbox(api)
    for method, path, kwargs, status in _attacks(cid):
        answer = api(method, path, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text[:300])
        assert answer.headers["Content-Type"].startswith("application/json"), path
        assert isinstance(answer.json()["error"], str) and answer.json()["error"], path
        assert "Traceback" not in answer.text
    assert dump(engine, skip=moving) == before and _outbox(api) == queued
    # SQL-ish text is just text: stored and shown as given.
    odd = "Robert'); DROP TABLE incidents;--"
    made = api("POST", "/incidents", json={"incident": {"name": odd, "body": "1' OR '1'='1"}})
    assert made.status_code == 201 and made.json()["name"] == odd
    with api.runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 2
        assert session.scalar(select(func.count()).select_from(Component)) == 1


def test_each_key_is_rate_limited_with_retry_after(api: Api, clock: FakeClock) -> None:
    api.server.runtime.settings = dataclasses.replace(api.runtime.settings, api_rate_limit=3)
    assert [api("GET", "/components").status_code for _ in range(4)] == [200, 200, 200, 429]
    limited = api("GET", "/components")
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "error" in limited.json()
    other = make_key(api.runtime, "other")
    assert requests.get(
        api.url("/components"), headers={"Authorization": f"OAuth {other}"}, timeout=15
    ).ok
    clock.advance(seconds=61)
    assert api("GET", "/components").status_code == 200


def test_subscribers_are_told_unless_deliver_notifications_is_false(api: Api) -> None:
    made = api(
        "POST",
        "/subscribers",
        json={"subscriber": {"email": "ops@example.com", "skip_confirmation_notification": True}},
    )
    assert made.status_code == 201

    def fanned() -> list[str]:
        with api.runtime.factory() as session:
            return list(
                session.scalars(
                    select(OutboxEntry.event)
                    .where(OutboxEntry.kind == "fanout")
                    .order_by(OutboxEntry.id)  # PostgreSQL returns an updated row last
                )
            )

    assert api(
        "POST", "/incidents", json={"incident": {"name": "Quiet", "deliver_notifications": False}}
    ).ok
    assert fanned() == []
    assert api("POST", "/incidents", json={"incident": {"name": "Loud", "body": "Told."}}).ok
    assert api("PATCH", "/incidents/2", json={"incident": {"status": "resolved"}}).ok
    assert fanned() == ["incident.opened", "incident.resolved"]
    with api.runtime.factory() as session:
        quiet = session.scalars(select(Incident).where(Incident.number == 1)).one()
        assert [u.deliver_notifications for u in quiet.updates] == [False]
