"""One entry point for a slash-command line, whatever transport it came from."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from commands.context import Context, NotAllowed
from commands.errors import CommandError
from commands.result import Result
from commands.text import HANDLERS, may_change
from storage import audit
from storage.db import transaction
from storage.escaping import escape

log = logging.getLogger(__name__)

COMMANDS = tuple(f"/{name}" for name in HANDLERS)


def changes(command: str, text: str) -> bool:
    """Whether `/command text` asks for a change (transports look up editors only then)."""
    return may_change(command.strip().lstrip("/").lower(), text)


CLASH = (
    "That clashed with another change made at the same moment, so nothing was saved. "
    "Please try again."
)
DATABASE_DOWN = "The database did not answer, so nothing was saved. Please try again in a moment."


# Runs first in a command's transaction and may answer instead of the command: the
# Slack gate's replay check, so that a request is taken in with what it changes.
First = Callable[[Session], Result | None]


def execute(
    factory: sessionmaker[Session],
    ctx: Context,
    command: str,
    text: str,
    *,
    first: First | None = None,
) -> Result:
    """Run `/command text` in one transaction: all of it is written, or none of it.

    Bad input and refusals come back as a Result with ok=False and a reply that
    says what was wrong; only a refusal writes (its audit event). `first`: see run().
    """
    name = command.strip().lstrip("/").lower()
    handler = HANDLERS.get(name)
    if handler is None:
        return Result(
            ok=False,
            reply=f"statusbot has no /{escape(name)}. Its commands are {', '.join(COMMANDS)}.",
        )
    return run(
        factory,
        ctx,
        lambda session: handler(session, ctx, text),
        what=f"/{name}",
        note={"command": f"/{name}", "text": text[:500]},
        first=first,
    )


def run(
    factory: sessionmaker[Session],
    ctx: Context,
    change: Callable[[Session], Result],
    *,
    what: str,
    note: dict[str, str],
    usage: bool = True,
    first: First | None = None,
) -> Result:
    """Run one use case in one transaction: all of it is written, or none of it.

    Every transport ends here (a slash command's text, a Slack form, the
    shell): bad input and refusals come back as a Result with ok=False and a
    reply that says what was wrong (with the usage, unless `usage` is off, as
    for a form); only a refusal writes (its audit event, with `note`).

    `first` runs first in the transaction, and its answer, if any, is the result
    instead of the use case's. What it writes stands whatever becomes of the use
    case (see `_run_after`).
    """
    if first is not None:
        return _run_after(factory, ctx, change, first, what=what, note=note, usage=usage)
    try:
        with transaction(factory) as session:
            return change(session)
    except NotAllowed as refusal:
        with transaction(factory) as session:
            _audit_refusal(session, ctx, refusal, note)
        return _refused(ctx, refusal, usage)
    except (CommandError, IntegrityError) as error:
        return _undone(error, what, usage)
    except OperationalError:
        log.exception("database unavailable for %s", what)
        return Result(ok=False, reply=DATABASE_DOWN)


def _run_after(
    factory: sessionmaker[Session],
    ctx: Context,
    change: Callable[[Session], Result],
    first: First,
    *,
    what: str,
    note: dict[str, str],
    usage: bool,
) -> Result:
    """`run` with `first`: what `first` writes is never undone, even for a moment.

    The use case runs in a SAVEPOINT inside the transaction `first` wrote in: a
    refusal, bad input or a clash rolls back only the use case, and the refusal's
    audit event is written in the same transaction. So a second copy of the same
    request, waiting on the first's row, finds it taken in whatever became of the
    first, and is never run.

    Once the SAVEPOINT is rolled back the session forgets every object the use case
    touched: some of its writes went to the database at once (an update's row, a
    component's state: storage/incidents.py, storage/components.py), and a rollback
    does not expire those objects, so they would still show what was undone.
    """
    failure: Exception | None = None
    try:
        with transaction(factory) as session:
            answer = first(session)
            if answer is not None:
                return answer
            try:
                with session.begin_nested():
                    result: Result = change(session)
                return result
            except NotAllowed as refusal:
                session.expunge_all()
                _audit_refusal(session, ctx, refusal, note)
                return _refused(ctx, refusal, usage)
            except (CommandError, IntegrityError) as error:
                session.expunge_all()
                return _undone(error, what, usage)
            except OperationalError:
                raise
            except Exception as error:  # a bug: the request stays taken in, the error goes on
                session.expunge_all()
                failure = error
    except OperationalError:
        log.exception("database unavailable for %s", what)
        return Result(ok=False, reply=DATABASE_DOWN)
    assert failure is not None  # every other way out of the transaction returned
    raise failure


def _audit_refusal(
    session: Session, ctx: Context, refusal: NotAllowed, note: dict[str, str]
) -> None:
    audit.record(
        session,
        actor=ctx.actor,
        action="denied." + refusal.action,
        target=refusal.target,
        at=ctx.now,
        after=dict(note),
    )


def _refused(ctx: Context, refusal: NotAllowed, usage: bool) -> Result:
    log.info("refused %s for %s", refusal.action, ctx.actor)
    return Result(ok=False, reply=refusal.reply() if usage else refusal.message)


def _undone(error: CommandError | IntegrityError, what: str, usage: bool) -> Result:
    """The answer to a use case undone by bad input (what was wrong) or a clash."""
    if isinstance(error, CommandError):
        return Result(ok=False, reply=error.reply() if usage else error.message, field=error.field)
    log.warning("conflicting write for %s", what, exc_info=True)
    return Result(ok=False, reply=CLASH)


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
