"""Who is asking, when, and the settings a command needs: the input every use case gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from commands.errors import CommandError


@dataclass(frozen=True, slots=True)
class Editors:
    """Who may change state (SPEC §4): Slack user ids and user-group ids (`S…`).

    Empty means everyone. `members_of` resolves a user group to its members; the
    Slack transport passes the memberships it looked up, others pass nothing.
    `unanswered` names the groups Slack could not be asked about: someone not
    found elsewhere is refused with that reason, not as a non-editor.
    """

    ids: frozenset[str] = frozenset()
    members_of: Callable[[str], frozenset[str]] | None = None
    unanswered: frozenset[str] = frozenset()

    @property
    def everyone(self) -> bool:
        return not self.ids

    def allows(self, user: str) -> bool:
        """Whether `user` may change things."""
        if self.everyone or user in self.ids:
            return True
        if self.members_of is None:
            return False
        return any(user in self.members_of(gid) for gid in self.ids if gid.startswith("S"))


@dataclass(frozen=True, slots=True)
class Context:
    """One command's circumstances: the person, the clock, the zones, the settings."""

    actor: str
    now: datetime
    tz: ZoneInfo
    page_tz: ZoneInfo
    notify_channels: tuple[str, ...] = ()
    # Off for statusbot's own loaders (the demo, imports): history they write is not
    # news, so subscribers are not told of it (SPEC §11).
    tell_subscribers: bool = True
    # Why webhooks may not go to a URL (a private or unresolvable host), or None: the
    # webhook deliverer's own check (bot/notify/webhook.py), handed in by the transport
    # because looking a name up is transport's work. None: the URL's form only.
    endpoint_refusal: Callable[[str], str | None] | None = None
    editors: Editors = field(default_factory=Editors)
    page_url: str = ""

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Context.now must be timezone-aware")


class NotAllowed(CommandError):
    """The person may not make this change; the refusal itself is audited."""

    def __init__(self, message: str, *, action: str, target: str) -> None:
        super().__init__(message)
        self.action = action
        self.target = target
