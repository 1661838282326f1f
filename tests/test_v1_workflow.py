"""The commander's workflow through the v1 API (SPEC §10, §12): postmortems and incident
templates as Statuspage's routes have them, drafts and internal notes kept out, and
deleting an incident that has notes, a postmortem and an import's id map rows.

A Statuspage-style `requests` client against the whole running server; both databases.
"""

# `api` is the fixture imported from test_v1_api, named again by each test that uses it.
# ruff: noqa: F811

from __future__ import annotations

import copy
import json
import time
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from bot.http.v1.openapi import document
from commands import incident as incident_uc
from commands import notes as notes_uc
from commands.dispatch import run
from commands.result import Result
from storage.imports import IdMap
from storage.models import AuditEvent, IncidentNote, Postmortem, StatuspageId, Template
from tests.page_scan import subscriber_entries
from tests.test_v1_api import Api, api, published  # noqa: F401 (fixture)
from tests.test_v1_openapi import _json_schema

POSTMORTEM_FIELDS = {
    "preview_key", "body", "body_updated_at", "body_draft", "body_draft_updated_at",
    "published_at", "notify_subscribers", "notify_twitter", "custom_tweet", "created_at",
    "updated_at",
}  # fmt: skip
TEMPLATE_FIELDS = {
    "id", "components", "name", "title", "body", "group_id", "update_status", "should_tweet",
    "should_send_notifications",
}  # fmt: skip
SECRET = "zqxinternalnote"


def _valid(api: Api, name: str, body: Any) -> None:
    """`body` fits the schema /v1/openapi.json gives it."""
    from bot.http.v1 import ROUTES

    doc = document(ROUTES, base_url="http://x", title="t")
    parts = doc["components"]["schemas"]
    schema = _json_schema(copy.deepcopy({"$ref": f"#/components/schemas/{name}"}), parts)
    Draft202012Validator(schema).validate(body)


def _use(api: Api, change: Any) -> Result:
    ctx = api.runtime.system_context("cli")
    result = run(api.runtime.factory, ctx, lambda s: change(s, ctx), what="t", note={})
    assert result.ok, result.reply
    return result


def _component(api: Api, name: str = "API") -> str:
    made = api("POST", "/components", json={"component": {"name": name}})
    assert made.status_code == 201, made.text
    cid: str = made.json()["id"]
    return cid


def test_a_postmortem_is_written_published_and_reverted_through_the_api(api: Api) -> None:
    cid = _component(api)
    opened = api(
        "POST",
        "/incidents",
        json={"incident": {"name": "Errors", "components": {cid: "major_outage"}}},
    )
    assert opened.status_code == 201
    path = "/incidents/1/postmortem"
    missing = api("GET", path)
    assert missing.status_code == 404 and "no postmortem yet" in missing.json()["error"]

    text = "## Root cause zqxpmapi\n\nA bad deploy."
    written = api("PUT", path, json={"postmortem": {"body_draft": text}})
    assert written.status_code == 200, written.text
    pm = written.json()
    assert set(pm) == POSTMORTEM_FIELDS
    assert pm["body_draft"] == text and pm["body"] is None and pm["published_at"] is None
    _valid(api, "Postmortem", pm)
    # A draft: nowhere public, not in the v1 incident either.
    incident = api("GET", "/incidents/1").json()
    assert incident["postmortem_body"] is None and incident["postmortem_published_at"] is None

    # Form-encoded, as Rails takes it, with Twitter's fields ignored.
    form = [("postmortem[notify_subscribers]", "true"), ("postmortem[notify_twitter]", "true"),
            ("postmortem[custom_tweet]", "ignored")]  # fmt: skip
    subscribers_before = len(subscriber_entries(api.runtime))
    done = api("PUT", path + "/publish", data=form)
    assert done.status_code == 200, done.text
    pm = done.json()
    assert pm["body"] == text and pm["published_at"] and pm["notify_subscribers"] is True
    assert pm["notify_twitter"] is False
    _valid(api, "Postmortem", pm)
    # Subscribers told once (the fan-out entry), and the page shows it.
    assert len(subscriber_entries(api.runtime)) == subscribers_before + 1
    page = published(api, "api/v2/incidents.json", "zqxpmapi")
    assert page["incidents"][0]["postmortem_body"] == text
    incident = api("GET", "/incidents/1").json()
    assert incident["postmortem_body"] == text and incident["postmortem_notified_subscribers"]

    # Publishing again (a client's usual draft-then-publish) changes nothing, tells nobody.
    again = api("PUT", path + "/publish", json={"postmortem": {"notify_subscribers": True}})
    assert again.status_code == 200 and again.json()["published_at"] == pm["published_at"]
    quiet = api("PUT", path + "/publish", json={})
    assert quiet.status_code == 200
    assert len(subscriber_entries(api.runtime)) == subscribers_before + 1

    reverted = api("PUT", path + "/revert")
    assert reverted.status_code == 200 and reverted.json()["published_at"] is None
    assert reverted.json()["body_draft"] == text
    assert api("GET", "/incidents/1").json()["postmortem_body"] is None
    # Reverting what is not published is refused, writing nothing.
    refused = api("PUT", path + "/revert")
    assert refused.status_code == 422 and "not published" in refused.json()["error"]
    with api.runtime.factory() as session:
        actions = list(
            session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.like("incident.postmortem%"))
            )
        )
        # The second publish asked to notify again: the use case's "told before", audited.
        assert actions == [
            "incident.postmortem",
            "incident.postmortem_publish",
            "incident.postmortem_publish",
            "incident.postmortem_revert",
        ]
        actors = set(
            session.scalars(
                select(AuditEvent.actor).where(AuditEvent.action.like("incident.postmortem%"))
            )
        )
        assert actors == {"monitoring"}


def test_bad_postmortem_requests_are_refused_and_write_nothing(api: Api) -> None:
    api("POST", "/incidents", json={"incident": {"name": "Errors"}})
    path = "/incidents/1/postmortem"
    cases = [
        ("PUT", "/incidents/9/postmortem", {"postmortem": {"body_draft": "x"}}, 404, "no incident"),
        ("PUT", "/incidents/x/postmortem", {"postmortem": {"body_draft": "x"}}, 404, "no incident"),
        ("PUT", path, {"body_draft": "x"}, 400, "wrapped"),
        ("PUT", path, {"postmortem": {"body_draft": ""}}, 422, "body_draft] is required"),
        ("PUT", path, {"postmortem": {"body": "x"}}, 422, "no field 'body'"),
        ("PUT", path, {"postmortem": {"body_draft": 5}}, 422, "must be a string"),
        ("PUT", path, {"postmortem": {"body_draft": "x" * 100_001}}, 422, ""),
        ("PUT", path + "/publish", {}, 422, "no postmortem yet"),
        ("PUT", path + "/publish", {"postmortem": {"notify_subscribers": "maybe"}}, 422, "boolean"),
        ("PUT", path + "/revert", {}, 422, "no postmortem yet"),
        ("DELETE", path, {}, 405, "use GET, PUT"),
    ]
    for method, where, body, status, words in cases:
        answer = api(method, where, json=body)
        assert answer.status_code == status, (where, body, answer.text)
        assert words in answer.json()["error"], answer.text
    with api.runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(Postmortem)) == 0


def test_templates_are_listed_and_created_as_statuspage_has_them(api: Api) -> None:
    cid = _component(api)
    other = _component(api, "Web")
    assert api("GET", "/incident_templates").json() == []
    body = {
        "template": {
            "name": "db-failover",
            "title": "Database failover",
            "body": "We are failing over <b>now</b>.",
            "group_id": "ignored",
            "update_status": "identified",
            "should_tweet": True,
            "should_send_notifications": True,
            "component_ids": [cid, other],
            "components": {other: "partial_outage"},
        }
    }
    made = api("POST", "/incident_templates", json=body)
    assert made.status_code == 201, made.text
    template = made.json()
    assert set(template) == TEMPLATE_FIELDS
    assert template["name"] == "db-failover" and template["update_status"] == "identified"
    assert template["body"] == "We are failing over <b>now</b>."
    states = {c["id"]: c["status"] for c in template["components"]}
    assert states == {other: "partial_outage", cid: "major_outage"}
    _valid(api, "IncidentTemplate", template)
    # Slack's /template sees the same template.
    shown = api.runtime.run("/template", "show db-failover", user="U0CMD").reply
    assert "Database failover" in shown and "Partial Outage" in shown

    for n in range(3):
        form = [("template[name]", f"t{n}"), ("template[title]", f"Title {n}")]
        assert api("POST", "/incident_templates", data=form).status_code == 201
    names = [t["name"] for t in api("GET", "/incident_templates").json()]
    assert names == ["db-failover", "t0", "t1", "t2"]
    second = api("GET", "/incident_templates", params={"page": 2, "per_page": 3}).json()
    assert [t["name"] for t in second] == ["t2"]

    cases = [
        ({"template": {"name": "db-failover", "title": "Again"}}, 422, "already"),
        ({"template": {"name": "two words", "title": "T"}}, 422, "one word"),
        ({"template": {"title": "T"}}, 422, "name] is required"),
        ({"template": {"name": "x"}}, 422, "title] is required"),
        (
            {"template": {"name": "x", "title": "T", "update_status": "resolved"}},
            422,
            "update_status",
        ),
        ({"template": {"name": "x", "title": "T", "component_ids": ["nope"]}}, 422, "no component"),
        (
            {"template": {"name": "x", "title": "T", "components": {cid: "under_maintenance"}}},
            422,
            "maintenance",
        ),
        ({"template": {"name": "x", "title": "T", "colour": "red"}}, 422, "no field"),
        ({"name": "x"}, 400, "wrapped"),
    ]
    for bad, status, words in cases:
        answer = api("POST", "/incident_templates", json=bad)
        assert answer.status_code == status, (bad, answer.text)
        assert words in answer.json()["error"], answer.text
    bad_page = api("GET", "/incident_templates", params={"per_page": "0"})
    assert bad_page.status_code == 400
    with api.runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(Template)) == 4


def test_drafts_and_notes_never_reach_the_api(api: Api) -> None:
    api("POST", "/incidents", json={"incident": {"name": "Public one"}})
    _use(api, lambda s, ctx: incident_uc.open_incident(s, ctx, title="Secret zqxdraft", draft=True))
    _use(api, lambda s, ctx: notes_uc.add_note(s, ctx, number=1, text=SECRET))
    _use(api, lambda s, ctx: notes_uc.add_note(s, ctx, number=2, text=SECRET))
    for path in ("/incidents", "/incidents/unresolved", "/incidents/1"):
        answer = api("GET", path)
        assert answer.status_code == 200
        text = answer.text
        assert "zqxdraft" not in text and SECRET not in text, path
    assert [i["id"] for i in api("GET", "/incidents").json()] == ["1"]
    # The draft is not there for any route, reading or writing.
    for method, path, body in [
        ("GET", "/incidents/2", None),
        ("PATCH", "/incidents/2", {"incident": {"status": "identified"}}),
        ("DELETE", "/incidents/2", None),
        ("GET", "/incidents/2/postmortem", None),
        ("PUT", "/incidents/2/postmortem", {"postmortem": {"body_draft": "x"}}),
    ]:
        answer = api(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    # Creating through the API can't make a draft: Statuspage's incidents have no such field.
    refused = api("POST", "/incidents", json={"incident": {"name": "X", "draft": True}})
    assert refused.status_code == 422 and "no field 'draft'" in refused.json()["error"]
    with api.runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(IncidentNote)) == 2


def test_deleting_an_incident_takes_its_notes_postmortem_and_import_ids(api: Api) -> None:
    cid = _component(api)
    api(
        "POST",
        "/incidents",
        json={"incident": {"name": "Gone", "components": {cid: "major_outage"}}},
    )
    api("POST", "/incidents", json={"incident": {"name": "Stays"}})
    for number in (1, 2):
        _use(api, lambda s, ctx, n=number: notes_uc.add_note(s, ctx, number=n, text=SECRET))
        path = f"/incidents/{number}/postmortem"
        assert api("PUT", path, json={"postmortem": {"body_draft": f"pm {number}"}}).ok
        assert api("PUT", path + "/publish", json={}).ok

    def mapped(session: Any, ctx: Any) -> Result:
        from storage import incidents as store

        ids = IdMap(session, "oldpage")
        for number in (1, 2):
            found = store.get(session, number=number)
            assert found is not None
            ids.put("incident", f"sp{number}", found.id, now=ctx.now)
            ids.put("update", f"spu{number}", found.updates[0].id, now=ctx.now)
        return Result(reply="")

    _use(api, mapped)
    gone = api("DELETE", "/incidents/1")
    assert gone.status_code == 200, gone.text
    assert gone.json()["name"] == "Gone"
    assert api("GET", "/incidents/1").status_code == 404
    with api.runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(IncidentNote)) == 1
        assert list(session.scalars(select(Postmortem.body))) == ["pm 2"]
        left = sorted(session.scalars(select(StatuspageId.statuspage_id)))
        assert left == ["sp2", "spu2"]
    deadline = time.monotonic() + 20
    names: list[str] = []
    while time.monotonic() < deadline:  # the publisher runs after the reply
        page = published(api, "api/v2/incidents.json", "Stays")
        names = [i["name"] for i in page["incidents"]]
        if names == ["Stays"]:
            break
        time.sleep(0.05)
    assert names == ["Stays"] and "pm 1" not in json.dumps(page)
