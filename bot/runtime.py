"""What every transport shares: settings, the database, and running one command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from commands.context import Context, Editors
from commands.result import Result
from storage.db import make_engine, make_reader, make_sessionmaker

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class SchemaOutOfDate(RuntimeError):
    """The database is behind the code and statusbot will not migrate it by itself."""


class Runtime:
    """The database and settings behind one statusbot process."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        clock: Clock = system_clock,
        members_of: Callable[[str], frozenset[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.factory: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.reader: sessionmaker[Session] = make_reader(self.engine)
        self.clock = clock
        self.editors = Editors(settings.editors, members_of)
        self.after_change: list[Callable[[Result], None]] = []

    def ensure_schema(self) -> None:
        """Migrate an embedded SQLite database; insist on `db upgrade` for a shared one."""
        # Alembic is loaded only when the schema is behind (every process starts here).
        from storage import migrate

        if migrate.is_current(self.engine):
            return
        if self.engine.dialect.name == "sqlite":
            migrate.upgrade(self.engine)
            return
        if not migrate.is_current(self.engine, exact=True):
            raise SchemaOutOfDate(
                "The database schema is not up to date. Run `statusbot db upgrade` (the "
                "Procfile's release step does it on deploy)."
            )

    def context(
        self, user: str, *, tz: ZoneInfo | None = None, now: datetime | None = None
    ) -> Context:
        """The circumstances of a command from `user`, now."""
        return Context(
            actor=user,
            now=now or self.clock(),
            tz=tz or self.settings.tz,
            page_tz=self.settings.tz,
            notify_channels=self.settings.notify_channels,
            editors=self.editors,
            page_url=self.settings.page_url,
            endpoint_refusal=self.endpoint_refusal,
        )

    def endpoint_refusal(self, url: str) -> str | None:
        """Why webhooks may not be sent to `url`, as the webhook deliverer judges it.

        With STATUSBOT_WEBHOOK_ALLOW_PRIVATE any address is allowed, so nothing is looked
        up: the form of the URL was checked already, and delivery still resolves it.
        """
        if self.settings.webhook_allow_private:
            return None
        from bot.notify.webhook import check_endpoint

        return check_endpoint(url, allow_private=False)

    def system_context(self, actor: str) -> Context:
        """A context for statusbot's own loaders (`statusbot demo`): they act as the system,
        not as a Slack user, so STATUSBOT_EDITORS does not apply to them."""
        return replace(self.context(actor), editors=Editors())

    def run(self, command: str, text: str, *, user: str, tz: ZoneInfo | None = None) -> Result:
        """Run one slash command, then let the page and others know if it changed anything."""
        # The commands are loaded when one runs: `statusbot render` never needs them.
        from commands.dispatch import execute

        result = execute(self.factory, self.context(user, tz=tz), command, text)
        _count(command, result)
        self.notify_changed(result)
        return result

    def run_line(self, line: str, *, user: str, tz: ZoneInfo | None = None) -> Result:
        """Run a line as typed in the shell: `/incident open …`."""
        from commands.dispatch import execute_line

        result = execute_line(self.factory, self.context(user, tz=tz), line)
        _count(line.split(maxsplit=1)[0] if line.strip() else "", result)
        self.notify_changed(result)
        return result

    def notify_changed(self, result: Result) -> None:
        """Tell the page, the announcements and anyone else listening that state changed."""
        if not result.changed:
            return
        for hook in self.after_change:
            hook(result)


def _count(command: str, result: Result) -> None:
    """One command for the operators' metrics (bot/instruments.py)."""
    from bot import instruments

    instruments.count_command(command, "ok" if result.ok else "refused")
