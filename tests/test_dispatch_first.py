"""commands/dispatch.run with `first` (the Slack gate's replay check): what `first` writes
is never undone, even for a moment, whatever becomes of the use case.

A second copy of a signed request waits on the first copy's seen-request row; if that
row were rolled back with a refused or failed command and written again afterwards,
the copy would slip in between and run. So the whole run is one transaction, with the
use case in a SAVEPOINT: these tests count the transactions and read what stayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from commands import dispatch
from commands.context import NotAllowed
from commands.errors import CommandError
from commands.result import Result
from storage import components, seen_requests
from storage.models import AuditEvent, Component, SeenRequest
from storage.rules import Cause, ComponentStatus

KEY = "k" * 64


@pytest.fixture
def begins(runtime: Runtime) -> Iterator[list[object]]:
    """Every transaction begun on the engine while the test runs."""
    seen: list[object] = []

    def note(conn: object) -> None:
        seen.append(conn)

    event.listen(runtime.engine, "begin", note)
    yield seen
    event.remove(runtime.engine, "begin", note)


def first_of(runtime: Runtime) -> Callable[[Session], Result | None]:
    expires = runtime.clock() + timedelta(minutes=6)

    def first(session: Session) -> Result | None:
        taken = seen_requests.first_time(session, key=KEY, expires_at=expires, alone=False)
        return None if taken else Result(ok=False, reply="Already done")

    return first


def refuse(session: Session) -> Result:
    session.add(Component(name="Half-made", name_key="half-made"))
    session.flush()
    raise NotAllowed("Not you.", action="component.add", target="Half-made")


def bad_input(session: Session) -> Result:
    session.add(Component(name="Half-made", name_key="half-made"))
    session.flush()
    raise CommandError("No such thing.")


def clash(session: Session) -> Result:
    # A real unique violation, as two writers racing for one row would meet.
    row = insert(SeenRequest).values(key="dup", expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    session.execute(row)
    session.execute(row)
    return Result(reply="never")


def counts(runtime: Runtime) -> tuple[int, int, int]:
    with runtime.factory() as session:
        return (
            session.scalar(select(func.count()).where(SeenRequest.key == KEY)) or 0,
            session.scalar(select(func.count()).select_from(Component)) or 0,
            session.scalar(select(func.count()).where(AuditEvent.action == "denied.component.add"))
            or 0,
        )


@pytest.mark.parametrize(
    ("change", "reply", "audited"),
    [(refuse, "Not you.", 1), (bad_input, "No such thing.", 0), (clash, dispatch.CLASH, 0)],
    ids=["refused", "bad-input", "clash"],
)
def test_an_undone_use_case_keeps_what_first_wrote_in_the_same_transaction(
    runtime: Runtime,
    begins: list[object],
    change: Callable[[Session], Result],
    reply: str,
    audited: int,
) -> None:
    ctx = runtime.context("U1")

    result = dispatch.run(
        runtime.factory, ctx, change, what="/test", note={}, first=first_of(runtime)
    )

    assert not result.ok and reply in result.reply
    assert len(begins) == 1  # never a second transaction: the row was never released
    assert counts(runtime) == (1, 0, audited)  # the key stays, the use case's rows don't

    again = dispatch.run(
        runtime.factory, ctx, change, what="/test", note={}, first=first_of(runtime)
    )
    assert again.reply == "Already done"
    assert counts(runtime) == (1, 0, audited)  # not run again, not audited again


def test_a_use_case_that_succeeds_is_written_with_what_first_wrote(
    runtime: Runtime, begins: list[object]
) -> None:
    def add(session: Session) -> Result:
        session.add(Component(name="API", name_key="api"))
        return Result(reply="Added API.", changed=True)

    result = dispatch.run(
        runtime.factory, runtime.context("U1"), add, what="/test", note={}, first=first_of(runtime)
    )

    assert result.ok and len(begins) == 1
    assert counts(runtime) == (1, 1, 0)


def test_a_bug_in_the_use_case_still_raises_and_keeps_the_key(runtime: Runtime) -> None:
    def broken(session: Session) -> Result:
        session.add(Component(name="Half-made", name_key="half-made"))
        session.flush()
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        dispatch.run(
            runtime.factory,
            runtime.context("U1"),
            broken,
            what="/test",
            note={},
            first=first_of(runtime),
        )
    assert counts(runtime) == (1, 0, 0)


def test_an_undone_use_case_leaves_nothing_in_the_session_that_shows_what_was_undone(
    runtime: Runtime,
) -> None:
    """A component's state is written at once (storage/components.py), not flushed: the
    SAVEPOINT's rollback undoes the row but would not expire the object. The session
    forgets what the use case touched, so nothing after it reads the undone state."""
    assert runtime.run_line("/component add API", user="U1").ok
    seen: list[tuple[Component, Session]] = []

    def change_then_fail(session: Session) -> Result:
        api = session.scalars(select(Component)).one()
        components.change_status(
            session, api, ComponentStatus.MAJOR, at=runtime.clock(), cause=Cause.MANUAL, actor="U1"
        )
        assert api.status == "major_outage"
        seen.append((api, session))
        raise CommandError("No such thing.")

    result = dispatch.run(
        runtime.factory,
        runtime.context("U1"),
        change_then_fail,
        what="/test",
        note={},
        first=first_of(runtime),
    )
    assert not result.ok
    ((api, session),) = seen
    assert api not in session  # forgotten, not left showing major_outage
    with runtime.factory() as fresh:
        assert fresh.scalars(select(Component.status)).one() == "operational"
