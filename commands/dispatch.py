"""One entry point for a slash-command line, whatever transport it came from."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from commands.context import Context, NotAllowed
from commands.errors import CommandError
from commands.result import Result
from commands.text import HANDLERS
from storage import audit
from storage.db import transaction

log = logging.getLogger(__name__)

COMMANDS = tuple(f"/{name}" for name in HANDLERS)


def execute(factory: sessionmaker[Session], ctx: Context, command: str, text: str) -> Result:
    """Run `/command text` in one transaction: all of it is written, or none of it.

    Bad input and refusals come back as a Result with ok=False and a reply that
    says what was wrong; only a refusal writes (its audit event).
    """
    name = command.strip().lstrip("/").lower()
    handler = HANDLERS.get(name)
    if handler is None:
        return Result(
            ok=False,
            reply=f"statusbot has no /{name}. Its commands are {', '.join(COMMANDS)}.",
        )
    try:
        with transaction(factory) as session:
            return handler(session, ctx, text)
    except NotAllowed as refusal:
        with transaction(factory) as session:
            audit.record(
                session,
                actor=ctx.actor,
                action="denied." + refusal.action,
                target=refusal.target,
                at=ctx.now,
                after={"command": f"/{name}", "text": text[:500]},
            )
        log.info("refused %s for %s", refusal.action, ctx.actor)
        return Result(ok=False, reply=refusal.reply())
    except CommandError as error:
        return Result(ok=False, reply=error.reply())
    except IntegrityError:
        log.warning("conflicting write for /%s %r", name, text, exc_info=True)
        return Result(
            ok=False,
            reply="That clashed with another change made at the same moment, so nothing was "
            "saved. Please try again.",
        )
    except OperationalError:
        log.exception("database unavailable for /%s", name)
        return Result(
            ok=False,
            reply="The database did not answer, so nothing was saved. Please try again in a "
            "moment.",
        )


def execute_line(factory: sessionmaker[Session], ctx: Context, line: str) -> Result:
    """Run a whole line as typed in the shell: `/incident open …`."""
    stripped = line.strip()
    if not stripped.startswith("/"):
        return Result(
            ok=False,
            reply="Start with a slash command: " + ", ".join(COMMANDS) + ". Try /status.",
        )
    command, _, text = stripped.partition(" ")
    if "\n" in command:
        command, _, more = command.partition("\n")
        text = more + (" " + text if text else "")
    return execute(factory, ctx, command, text)
