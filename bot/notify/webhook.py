"""Webhooks to subscribers (SPEC §9): the sender of WEBHOOK outbox entries.

Each entry is rendered at send time from the database as it is now (Statuspage's
webhook shape, renderers/webhooks.py), signed with the Standard Webhooks scheme
under the subscriber's secret, and POSTed to the address its URL was checked to
have (bot/notify/http.py). `webhook-id` is the entry's id, the same on every retry,
so receivers can drop a duplicate.

- 2xx within 30 s: delivered. 3xx (never followed), 4xx, 5xx, timeouts, connection
  and DNS failures: retried (the worker backs off from 5 s, doubling to an hour).
- A URL that is or resolves to a non-public address: given up at once.
- Given up (refused, or still failing after 24 hours): the subscriber is
  quarantined and its failure address gets a "subscriber.quarantined" email entry.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from bot.notify.http import (
    DEADLINE,
    Answer,
    Refused,
    Resolver,
    Unresolved,
    post,
    resolve,
    system_resolver,
)
from bot.notify.worker import Delivered, GiveUp, Job, Outcome, Retry
from bot.runtime import Clock, system_clock
from commands import words
from renderers import webhooks as render
from renderers.statuspage import Json, Objects
from storage import components as component_store
from storage import incidents as incident_store
from storage import outbox
from storage import subscribers as subscriber_store
from storage.models import Component, StatusChange, Subscriber
from storage.rules import Kind, PageStatus, page_status
from storage.snapshot import affected_view, incident_view, page_id

if TYPE_CHECKING:
    from bot.runtime import Runtime

USER_AGENT = "statusbot"
COMPONENT_EVENT = "component.changed"
QUARANTINED_EVENT = "subscriber.quarantined"
# Posts at once (threads: a post waits, it hardly computes), and how many rounds of
# them a pass takes. A round of slow receivers takes one deadline plus the DNS lookup.
PARALLEL = 32
ROUNDS = 4
DNS_SLACK = 10.0  # seconds a lookup may add to a post's deadline


def check_endpoint(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> str | None:
    """Why webhooks can't be sent to `url` (its shape, no address, a non-public address),
    or None: what sign-up asks before it takes a webhook URL."""
    try:
        resolve(url, allow_private=allow_private, resolver=resolver)
    except (Refused, Unresolved) as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class _Message:
    """One signed-to-be webhook, rendered, with nothing left to read from the database."""

    job_id: int
    endpoint: str
    secret: str
    body: str


class WebhookSender:
    """The `Sender` of WEBHOOK entries for bot/notify/worker.OutboxDeliverer."""

    kind = outbox.Kind.WEBHOOK
    # ROUNDS rounds of PARALLEL posts a pass; the lease outlasts the slowest pass (every
    # receiver taking its whole deadline), so no other deliverer takes an entry in flight.
    batch = ROUNDS * PARALLEL
    lease = timedelta(seconds=ROUNDS * (DEADLINE + DNS_SLACK) + 30)
    rest_ratio = 0.25  # as email: a large fan-out drains without starving the acks

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        page_url: str,
        tz: ZoneInfo,
        allow_private: bool,
        app_url: str | None = None,
        resolver: Resolver = system_resolver,
        deadline: float = DEADLINE,
        clock: Clock = system_clock,
        ca_certs: str | None = None,
    ) -> None:
        self.factory = factory
        self.page_url = page_url.rstrip("/")
        self.app_url = (app_url or page_url).rstrip("/")
        self.tz = tz
        self.allow_private = allow_private
        self.resolver = resolver
        self.deadline = deadline
        self.clock = clock
        self.ca_certs = ca_certs
        # Entries given up because there was nobody (or nothing) to send: not the
        # receiver's fault, so no quarantine.
        self._skipped: set[int] = set()
        self._lock = threading.Lock()

    # -- the Sender protocol -------------------------------------------------------------
    def send(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        """Render every job (one read of the page), then post them in parallel."""
        with self.factory() as session:
            prepared = self._prepare(session, jobs)
        messages = [p for p in prepared if isinstance(p, _Message)]
        sent: dict[int, Outcome] = {}
        if messages:
            with ThreadPoolExecutor(min(PARALLEL, len(messages))) as pool:
                for message, outcome in zip(
                    messages, pool.map(self._deliver, messages), strict=True
                ):
                    sent[message.job_id] = outcome
        return [sent[p.job_id] if isinstance(p, _Message) else p for p in prepared]

    def on_give_up(self, session: Session, job: Job, error: str) -> None:
        """Quarantine the subscriber and tell its failure address (an EMAIL entry)."""
        with self._lock:
            if job.id in self._skipped:
                self._skipped.discard(job.id)
                return
        subscriber = _subscriber(session, job.channel)
        if subscriber is None or not subscriber_store.is_active(subscriber):
            return
        now = self.clock()
        if not subscriber_store.quarantine(subscriber, now=now, error=error):
            return
        outbox.enqueue(
            session,
            channels=[subscriber.code],
            event=QUARANTINED_EVENT,
            at=now,
            payload={"endpoint": subscriber.endpoint, "error": error},
            kind=outbox.Kind.EMAIL,
        )

    # -- rendering -----------------------------------------------------------------------
    def _prepare(self, session: Session, jobs: Sequence[Job]) -> list[_Message | Outcome]:
        codes = {job.channel for job in jobs}
        # Any state: a quarantined or unsubscribed subscriber is found, and then skipped.
        found = {
            s.code: s for s in session.scalars(select(Subscriber).where(Subscriber.code.in_(codes)))
        }
        live = component_store.live(session)
        open_incidents = incident_store.unresolved(session, Kind.INCIDENT)
        status = page_status((c.status for c in live), (i.impact for i in open_incidents))
        objects = Objects(
            page_id=page_id(self.page_url),
            page_url=self.page_url,
            tz=self.tz,
            only_if_degraded={c.code: c.only_show_if_degraded for c in live},
        )
        bodies = _Bodies(session, objects, generated_at=self.clock())
        out: list[_Message | Outcome] = []
        for job in jobs:
            subscriber = found.get(job.channel)
            if (
                subscriber is None
                or subscriber.kind != subscriber_store.WEBHOOK
                or not subscriber_store.is_active(subscriber)
                or not subscriber.endpoint
                or not subscriber.secret
            ):
                out.append(self._skip(job, words.WEBHOOK_NOT_SUBSCRIBED.format(code=job.channel)))
                continue
            body: str | None
            if job.event == COMPONENT_EVENT:
                envelope = self._envelope(subscriber.token, bodies.generated_at, status)
                payload = self._component_payload(session, job, objects, envelope)
                body = None if payload is None else render.dumps(payload)
            else:
                body = bodies.incident(job.incident_id, subscriber.token, self, status)
            if body is None:
                out.append(self._skip(job, words.WEBHOOK_NOTHING))
                continue
            out.append(_Message(job.id, subscriber.endpoint, subscriber.secret, body))
        return out

    def _envelope(self, token: str, generated_at: datetime, status: PageStatus) -> render.Envelope:
        return render.Envelope(
            unsubscribe_url=f"{self.app_url}/unsubscribe/{token}",
            documentation_url=f"{self.page_url}/subscribe.html",
            generated_at=generated_at,
            status=status,
        )

    def _component_payload(
        self, session: Session, job: Job, objects: Objects, envelope: render.Envelope
    ) -> Json | None:
        component = session.get(Component, job.payload.get("component_id"))
        if component is None:
            return None
        change_id = job.payload.get("change_id")
        change = session.get(StatusChange, change_id) if change_id is not None else None
        update = render.ComponentUpdate(
            id=str(change_id if change_id is not None else job.id),
            old_status=str(job.payload.get("old_status") or ""),
            new_status=str(job.payload.get("new_status") or component.status),
            created_at=change.at if change is not None else job.created_at,
        )
        group = component.group.code if component.group else None
        return render.component_payload(objects, envelope, affected_view(component, group), update)

    def _skip(self, job: Job, reason: str) -> GiveUp:
        with self._lock:
            self._skipped.add(job.id)
        return GiveUp(reason)

    # -- posting -------------------------------------------------------------------------
    def _deliver(self, message: _Message) -> Outcome:
        url = message.endpoint
        try:
            target = resolve(url, allow_private=self.allow_private, resolver=self.resolver)
        except Refused as exc:
            return GiveUp(str(exc))
        except Unresolved as exc:
            return Retry(str(exc))
        webhook_id = f"msg_{message.job_id}"
        now = self.clock().astimezone(UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(message.secret).sign(webhook_id, now, message.body),
        }
        try:
            answer = post(
                target,
                message.body.encode(),
                headers,
                deadline=self.deadline,
                ca_certs=self.ca_certs,
            )
        except Exception as exc:  # any failure to talk to a receiver is its own
            return Retry(words.WEBHOOK_UNREACHABLE.format(url=url, error=_describe(exc)))
        return _outcome(url, answer)


def _outcome(url: str, answer: Answer) -> Outcome:
    status = answer.status
    if 200 <= status < 300:
        return Delivered()
    if 300 <= status < 400:
        to = f" to {answer.location}" if answer.location else ""
        return Retry(words.WEBHOOK_REDIRECT.format(url=url, status=status, to=to))
    text = answer.body[:200].decode("utf-8", "replace").strip()
    detail = f" ({text})" if text and text.isprintable() else ""
    return Retry(words.WEBHOOK_STATUS.format(url=url, status=status, detail=detail))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class _Bodies:
    """Each incident's payload rendered once a batch, with a stand-in for the one thing that
    differs per subscriber (the token in `meta.unsubscribe`), put in per subscriber."""

    def __init__(self, session: Session, objects: Objects, *, generated_at: datetime) -> None:
        self.session = session
        self.objects = objects
        self.generated_at = generated_at
        self.slot = f"x{secrets.token_hex(8)}token"  # random: no incident's text holds it
        self._bodies: dict[int, str | None] = {}

    def incident(
        self, incident_id: int | None, token: str, sender: WebhookSender, status: PageStatus
    ) -> str | None:
        """The incident's payload as it is now, for the subscriber with `token`."""
        if incident_id is None:
            return None
        if incident_id not in self._bodies:
            incident = incident_store.get_by_id(self.session, incident_id)
            envelope = sender._envelope(self.slot, self.generated_at, status)
            self._bodies[incident_id] = (
                None
                if incident is None
                else render.dumps(
                    render.incident_payload(self.objects, envelope, incident_view(incident))
                )
            )
        body = self._bodies[incident_id]
        # The token as JSON writes it inside a string (a URL-safe token needs no escape).
        return None if body is None else body.replace(self.slot, json.dumps(token)[1:-1])


def _subscriber(session: Session, code: str) -> Subscriber | None:
    # Any state: a quarantined or unsubscribed subscriber is found, and then skipped.
    return session.scalars(select(Subscriber).where(Subscriber.code == code)).first()


def webhook_sender(runtime: Runtime) -> WebhookSender:
    """The webhook sender for this runtime's settings."""
    settings = runtime.settings
    return WebhookSender(
        runtime.factory,
        page_url=settings.page_url,
        app_url=settings.app_url,
        tz=settings.tz,
        allow_private=settings.webhook_allow_private,
    )
