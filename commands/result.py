"""What a command returns: the reply, what changed, and what to announce."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Notice:
    """One announcement that goes out to the notification channels.

    `event` names what happened (`incident.opened`, `incident.updated`,
    `incident.resolved`, `incident.edited`, `maintenance.scheduled`, …,
    `component.changed`); `text` is a plain summary for logs and the shell.
    The Slack transport renders the real message from the stored state.
    """

    event: str
    number: int | None
    text: str


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one command, whatever transport ran it."""

    reply: str
    ok: bool = True
    changed: bool = False
    notices: tuple[Notice, ...] = ()
    number: int | None = None
    field: str | None = None  # for a refused form: the field the reply is about
