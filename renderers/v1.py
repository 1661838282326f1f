"""Statuspage's v1 manage API objects (SPEC §10), from frozen values.

Incidents and components are the v2 objects (`statuspage.Objects`, the one mapping
the v2 files and webhooks use) with the fields the v1 API has beyond them, set to
what Statuspage returns when a feature does not apply. Subscribers, groups, metrics
and the page have v1 shapes of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from renderers.statuspage import Json, Objects
from renderers.webhooks import incident_extras
from storage.metrics import MetricInfo
from storage.postmortems import Record
from storage.rules import Kind
from storage.snapshot import ComponentView, GroupView, IncidentView, PageInfo
from storage.subscribers import SubscriberView
from storage.templates import TemplateView


class V1(Objects):
    """The v1 objects of one page."""

    def __init__(self, page: PageInfo, *, page_id: str) -> None:
        super().__init__(page_id=page_id, page_url=page.url, tz=ZoneInfo(page.time_zone))
        self.info = page

    def page(self, *, created_at: object, updated_at: object) -> Json:
        """The page object (Statuspage's `Page`), with the settings statusbot has."""
        return {
            "id": self.page_id,
            "created_at": created_at,
            "updated_at": updated_at,
            "name": self.info.name,
            "page_description": None,
            "headline": None,
            "branding": "basic",
            "subdomain": None,
            "domain": None,
            "url": self.info.url,
            "support_url": None,
            "hidden_from_search": False,
            "allow_page_subscribers": True,
            "allow_incident_subscribers": False,
            "allow_email_subscribers": True,
            "allow_sms_subscribers": False,
            "allow_rss_atom_feeds": True,
            "allow_webhook_subscribers": True,
            "notifications_from_email": None,
            "notifications_email_footer": None,
            "activity_score": 0,
            "twitter_username": None,
            "viewers_must_be_team_members": False,
            "ip_restrictions": None,
            "city": None,
            "state": None,
            "country": None,
            "time_zone": self.info.time_zone,
        }

    def v1_incident(self, i: IncidentView) -> Json:
        """An incident or maintenance as the v1 API returns it."""
        body = dict(self.incident(i))
        for key, value in incident_extras().items():
            body.setdefault(key, value)
        maintenance = i.kind == Kind.MAINTENANCE
        body["impact_override"] = i.impact if i.impact_override and not maintenance else None
        body["metadata"] = {}
        # statusbot reminds before every window and moves its components (SPEC §2).
        body["scheduled_remind_prior"] = maintenance
        body["scheduled_auto_in_progress"] = maintenance and i.auto
        body["scheduled_auto_completed"] = maintenance and i.auto
        body["auto_transition_to_maintenance_state"] = maintenance
        body["auto_transition_to_operational_state"] = maintenance
        updates = body["incident_updates"]
        assert isinstance(updates, list)
        body["incident_updates"] = [
            {**u, "wants_twitter_update": False, "twitter_updated_at": None} for u in updates
        ]
        return body

    def v1_incidents(self, items: Iterable[IncidentView]) -> list[Json]:
        """Incident objects, in the order given."""
        return [self.v1_incident(i) for i in items]

    def v1_component(self, c: ComponentView) -> Json:
        """A component as the v1 API returns it."""
        return {**self.component(c), "automation_email": None}

    def v1_group(self, g: GroupView) -> Json:
        """A component group (Statuspage's `GroupComponent`)."""
        return {
            "id": g.code,
            "page_id": self.page_id,
            "name": g.name,
            "description": g.description,
            "components": [c.code for c in g.components],
            "position": g.position,
            "created_at": self.time(g.created_at),
            "updated_at": self.time(g.updated_at),
        }

    def subscriber(self, s: SubscriberView) -> Json:
        """A subscriber (never its token or a webhook's secret)."""
        return {
            "id": s.code,
            "skip_confirmation_notification": False,
            "mode": s.kind,
            "email": s.email,
            "endpoint": s.endpoint,
            "phone_number": None,
            "phone_country": None,
            "display_phone_number": None,
            "obfuscated_channel_name": None,
            "workspace_name": None,
            "quarantined_at": self.time(s.quarantined_at),
            "purge_at": None,
            "components": list(s.components),
            "page_access_user_id": None,
            "created_at": self.time(s.created_at),
        }

    def metric(self, m: MetricInfo) -> Json:
        """A metric (Statuspage's `Metric`); its unit is the suffix."""
        return {
            "id": m.code,
            "metrics_provider_id": None,
            "metrics_display_id": None,
            "name": m.name,
            "display": True,
            "tooltip_description": m.description,
            "backfilled": False,
            "y_axis_min": None,
            "y_axis_max": None,
            "y_axis_hidden": False,
            "suffix": m.unit,
            "decimal_places": 0,
            "most_recent_data_at": self.time(m.last_at),
            "created_at": self.time(m.created_at),
            "updated_at": self.time(m.last_at or m.created_at),
            "last_fetched_at": None,
            "backfill_percentage": 1,
            "reference_name": None,
        }

    def postmortem_object(self, p: Record) -> Json:
        """A postmortem (Statuspage's `Postmortem`). statusbot keeps one text: it is the
        draft, and once published it is also the body the page shows."""
        public = p.published_at is not None
        return {
            "preview_key": None,
            "body": p.body if public else None,
            "body_updated_at": self.time(p.body_updated_at) if public else None,
            "body_draft": p.body,
            "body_draft_updated_at": self.time(p.body_updated_at),
            "published_at": self.time(p.published_at),
            "notify_subscribers": p.notified_at is not None,
            "notify_twitter": False,
            "custom_tweet": None,
            "created_at": self.time(p.created_at),
            "updated_at": self.time(max(p.body_updated_at, p.published_at or p.created_at)),
        }

    def template(self, t: TemplateView) -> Json:
        """An incident template (Statuspage's `IncidentTemplate`); each component's
        status is the state the template sets it to."""
        return {
            "id": t.code,
            "components": [self.v1_component(c) for c in t.components],
            "name": t.name,
            "title": t.title,
            "body": t.body,
            "group_id": None,
            "update_status": t.status,
            "should_tweet": False,
            "should_send_notifications": True,
        }
