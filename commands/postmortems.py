"""Postmortems (SPEC §12): written, published (subscribers told once, if asked), reverted.

Every transport ends here: `/incident postmortem` and (later) the REST API. A
postmortem is a draft, seen only by editors in Slack, until it is published;
only then do the page, the JSON and subscribers see it (storage/snapshot.py
reads published postmortems only).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from commands import textrules, words
from commands.common import announce, audit_change, authorise
from commands.context import Context
from commands.errors import CommandError
from commands.incident import get_incident
from commands.result import Notice, Result
from storage import postmortems as store
from storage.models import Incident, Postmortem

USAGE_KEY = "incident postmortem"
EVENT = "postmortem.published"


def _state(postmortem: Postmortem | None) -> dict[str, object] | None:
    if postmortem is None:
        return None
    return {
        "body": postmortem.body,
        "published": postmortem.published_at is not None,
        "notified": postmortem.notified_at is not None,
    }


def _saved(session: Session, incident: Incident, usage: str) -> Postmortem:
    found = store.of(session, incident)
    if found is None:
        raise CommandError(
            f"#{incident.number} has no postmortem yet: write it first with "
            f"/incident postmortem {incident.number} -- MARKDOWN.",
            usage,
        )
    return found


def save_postmortem(session: Session, ctx: Context, *, number: int, body: str | None) -> Result:
    """Write (or rewrite) incident `number`'s postmortem; a new one is a draft."""
    usage = words.USAGE[USAGE_KEY]
    authorise(ctx, action="incident.postmortem", target=f"#{number}")
    incident = get_incident(session, number, usage)
    text = textrules.check(body or "", textrules.POSTMORTEM, usage)
    if not text:
        raise CommandError("Write the postmortem after a lone --, in markdown.", usage)
    before = _state(store.of(session, incident))
    postmortem = store.save(session, incident, body=text, actor=ctx.actor, now=ctx.now)
    audit_change(
        session,
        ctx,
        action="incident.postmortem",
        target=f"#{number}",
        before=before,
        after=_state(postmortem),
    )
    public = postmortem.published_at is not None
    return Result(
        reply=(words.POSTMORTEM_UPDATED if public else words.POSTMORTEM_SAVED).format(
            number=number
        ),
        # A draft changes nothing public; a published one's page shows the new text.
        changed=public,
        number=number,
    )


def publish_postmortem(
    session: Session, ctx: Context, *, number: int, notify: bool = False
) -> Result:
    """Put incident `number`'s postmortem on its page and in the JSON; with `notify`, tell
    subscribers (and the Slack channels), once ever."""
    usage = words.USAGE[USAGE_KEY]
    authorise(ctx, action="incident.postmortem_publish", target=f"#{number}")
    incident = get_incident(session, number, usage)
    postmortem = _saved(session, incident, usage)
    if postmortem.published_at is not None and not notify:
        raise CommandError(f"The postmortem of #{number} is published already.", usage)
    before = _state(postmortem)
    if postmortem.published_at is None:
        postmortem.published_at = ctx.now
    reply = words.POSTMORTEM_PUBLISHED.format(number=number)
    notices: tuple[Notice, ...] = ()
    if notify and postmortem.notified_at is not None:
        reply += words.POSTMORTEM_TOLD_BEFORE.format(
            when=words.when(postmortem.notified_at, ctx.tz)
        )
    elif notify:
        postmortem.notified_at = ctx.now
        session.flush()
        notices = (announce(session, ctx, EVENT, incident),)
        reply += words.POSTMORTEM_TOLD
    session.flush()
    audit_change(
        session,
        ctx,
        action="incident.postmortem_publish",
        target=f"#{number}",
        before=before,
        after=_state(postmortem),
    )
    return Result(reply=reply, changed=True, notices=notices, number=number)


def revert_postmortem(session: Session, ctx: Context, *, number: int) -> Result:
    """Take incident `number`'s postmortem off the page: a draft again."""
    usage = words.USAGE[USAGE_KEY]
    authorise(ctx, action="incident.postmortem_revert", target=f"#{number}")
    incident = get_incident(session, number, usage)
    postmortem = _saved(session, incident, usage)
    if postmortem.published_at is None:
        raise CommandError(f"The postmortem of #{number} is not published.", usage)
    before = _state(postmortem)
    postmortem.published_at = None
    session.flush()
    audit_change(
        session,
        ctx,
        action="incident.postmortem_revert",
        target=f"#{number}",
        before=before,
        after=_state(postmortem),
    )
    return Result(
        reply=words.POSTMORTEM_REVERTED.format(number=number), changed=True, number=number
    )
