"""Webhook payloads in Statuspage's shape (SPEC §9), so receivers written for it read ours.

The incident and component objects are the v2 ones (renderers/statuspage.py's
`Objects`, the one mapping); a webhook adds the few fields Statuspage's own
webhooks carry beyond v2 (postmortem and scheduling flags, Twitter leftovers),
with the values Statuspage sends when they don't apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from renderers.statuspage import Json, Objects
from storage.rules import PageStatus
from storage.snapshot import AffectedView, ComponentView, IncidentView

# What Statuspage's incident webhook has beyond the v2 incident, and its value here.
_INCIDENT_EXTRAS: Json = {
    "postmortem_ignored": False,
    "postmortem_body": None,
    "postmortem_body_last_updated_at": None,
    "postmortem_published_at": None,
    "postmortem_notified_subscribers": False,
    "postmortem_notified_twitter": False,
    "backfilled": False,
    "scheduled_for": None,
    "scheduled_until": None,
    "scheduled_remind_prior": False,
    "scheduled_reminded_at": None,
    "impact_override": None,
    "scheduled_auto_in_progress": False,
    "scheduled_auto_completed": False,
}
_UPDATE_EXTRAS: Json = {"wants_twitter_update": False, "twitter_updated_at": None}


def incident_extras() -> Json:
    """What Statuspage's incident has beyond the v2 one (webhooks and the v1 API), a copy."""
    return dict(_INCIDENT_EXTRAS)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every payload starts with: its links, when it was made, and the page's status."""

    unsubscribe_url: str
    documentation_url: str
    generated_at: datetime
    status: PageStatus


@dataclass(frozen=True, slots=True)
class ComponentUpdate:
    """One status change of a component (Statuspage's `component_update`)."""

    id: str
    old_status: str
    new_status: str
    created_at: datetime


def incident_payload(objects: Objects, envelope: Envelope, incident: IncidentView) -> Json:
    """The webhook for an incident or maintenance event: its object as it is now."""
    body = dict(objects.incident(incident))  # a copy: Objects shares what it maps
    for key, value in _INCIDENT_EXTRAS.items():
        body.setdefault(key, value)
    updates = body["incident_updates"]
    assert isinstance(updates, list)
    body["incident_updates"] = [{**u, **_UPDATE_EXTRAS} for u in updates]
    return {**_head(objects, envelope), "incident": body}


def component_payload(
    objects: Objects,
    envelope: Envelope,
    component: ComponentView | AffectedView,
    change: ComponentUpdate,
) -> Json:
    """The webhook for a component's status change."""
    return {
        **_head(objects, envelope),
        "component_update": {
            "id": change.id,
            "component_id": component.code,
            "component_type": "Component",
            "old_status": change.old_status,
            "new_status": change.new_status,
            "created_at": objects.time(change.created_at),
        },
        "component": objects.component(component),
    }


def dumps(payload: Json) -> str:
    """The body as sent (and signed): compact JSON, as Statuspage sends it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _head(objects: Objects, envelope: Envelope) -> Json:
    return {
        "meta": {
            "unsubscribe": envelope.unsubscribe_url,
            "documentation": envelope.documentation_url,
            "generated_at": objects.time(envelope.generated_at),
        },
        "page": {
            "id": objects.page_id,
            "status_indicator": envelope.status.indicator,
            "status_description": envelope.status.description,
        },
    }
