"""The outbox events the Slack deliverer tells apart, and what each asks of it.

Which events post a thread reply, which broadcast it to the channel, which
leave the announcement as it is; the deliverer (bot/slack/delivery.py) reads
these sets, the commands write the events (commands/common.py).
"""

from __future__ import annotations

COMPONENT_EVENT = "component.changed"
# Events whose update is also posted as a reply in the announcement's thread.
REPLY_EVENTS = frozenset(
    {
        "incident.published",
        "incident.updated",
        "incident.resolved",
        "incident.reopened",
        "maintenance.updated",
        "maintenance.started",
        "maintenance.completed",
        "maintenance.cancelled",
    }
)
# Replies the whole channel should see, not only the thread: an incident that
# closes or comes back, and a maintenance that is about to start, starts or ends.
BROADCAST_EVENTS = frozenset(
    {
        "incident.published",
        "incident.resolved",
        "incident.reopened",
        "maintenance.notice",
        "maintenance.started",
        "maintenance.completed",
        "maintenance.cancelled",
    }
)
# Events that change nothing shown in the announcement: no edit needed.
NOTE_EVENTS = frozenset({"incident.stale", "maintenance.notice", "incident.note"})
# An internal note (commands/notes.py): a thread reply marked internal, nothing else.
INTERNAL_NOTE = "incident.note"
# A published postmortem, with --notify: a reply in the thread linking to it.
POSTMORTEM_EVENT = "postmortem.published"
# A fixed title or update text: the announcement is edited, and when it names an
# update, so is the thread reply that carried that update.
EDIT_EVENT = "incident.edited"

# The announcement's edit that an entry left for later, because the workspace's
# chat.update allowance was spent when its reply went: an edit, nothing else, and
# none at all once a newer change of the incident is waiting (it edits instead).
REFRESH_EVENT = "announcement.refresh"
REFRESH_RECHECK = 2.0  # seconds
