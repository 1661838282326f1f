"""`statusbot subscribers …`: the subscriber use cases from a terminal (SPEC §9).

The CLI acts as the system (Runtime.system_context), like `statusbot demo`: whoever
can run it can reach the database anyway. Each action is one transaction through
commands.dispatch.run, audited as the use cases audit.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from commands.errors import CommandError
from commands.result import Result

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.runtime import Runtime

# The use cases are imported where they run: every `statusbot` command builds this
# parser, and `statusbot render` should not pay for loading the subscriber commands.

CLI_ACTOR = "cli"


def add_parser(sub: Any) -> None:
    """Add `subscribers` and its actions to the program's subcommands."""
    parser = sub.add_parser("subscribers", help="customers told by email or webhook")
    actions = parser.add_subparsers(dest="subscribers_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="live subscribers, oldest first")
    listing.add_argument("--components", help="only those told about any of these (NAME,...)")
    add = actions.add_parser("add", help="subscribe an address (it is sent a confirmation)")
    add.add_argument("email")
    add.add_argument("--components", help="follow only these (NAME,...); default everything")
    remove = actions.add_parser("remove", help="unsubscribe an address or a subscriber id")
    remove.add_argument("which", metavar="EMAIL|ID")
    show = actions.add_parser("show", help="one subscriber, with a webhook's secret")
    show.add_argument("which", metavar="ID")
    actions.add_parser("count", help="confirmed subscribers by kind")
    load = actions.add_parser("import", help="add or update email subscribers from a CSV file")
    load.add_argument("file", help="columns email,components,confirmed_at; - for stdin")
    actions.add_parser("export", help="email subscribers as CSV on stdout")


def run_subscribers(args: argparse.Namespace, runtime: Runtime) -> int:
    """Run one `statusbot subscribers` action; the exit status."""
    from bot.shell import deliver_now
    from commands import subscribers_csv
    from commands.dispatch import run

    action = args.subscribers_command
    ctx = runtime.system_context(CLI_ACTOR)
    if action == "export":
        out: list[str] = []

        def export(session: Session) -> Result:
            out.append(subscribers_csv.export_csv(session, ctx))
            return Result(reply="")

        result = run(runtime.factory, ctx, export, what="export", note={"cli": "export"})
        if result.ok:
            sys.stdout.write(out[0])
            return 0
        return _print(result)
    if action == "import":
        text, source = _read(args.file)
        result = run(
            runtime.factory,
            ctx,
            lambda session: subscribers_csv.import_csv(session, ctx, text, source=source),
            what="import",
            note={"cli": "import", "file": source[:200]},
        )
    else:
        result = run(
            runtime.factory,
            ctx,
            lambda session: _action(session, args, ctx),
            what=f"subscribers {action}",
            note={"cli": action},
        )
    code = _print(result)
    if result.changed:
        runtime.notify_changed(result)
        deliver_now(runtime)  # the confirmation mails, printed when SMTP is off
    return code


def _action(session: Session, args: argparse.Namespace, ctx: Any) -> Result:
    from commands import subscribers as subs
    from commands import words
    from commands.names import parse_component_list

    action = args.subscribers_command
    names = getattr(args, "components", None)
    usage = words.USAGE.get(f"subscribers {action}", "")
    chosen = parse_component_list(session, names, usage=usage) if names else ()
    if action == "list":
        return subs.list_subscribers(session, ctx, components=chosen or None)
    if action == "add":
        return subs.add_email(session, ctx, email=args.email, components=chosen, source="cli")
    if action == "remove":
        return subs.remove(session, ctx, which=args.which)
    if action == "show":
        return subs.show(session, ctx, which=args.which)
    return subs.count(session, ctx)


def _print(result: Result) -> int:
    from storage.escaping import unescape

    print(unescape(result.reply), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _read(name: str) -> tuple[str, str]:
    from commands import subscribers_csv

    if name == "-":
        return sys.stdin.read(), "stdin"
    try:
        with open(name, encoding="utf-8-sig") as handle:
            return handle.read(), name
    except FileNotFoundError as error:
        raise CommandError(f"There is no file {name!r}.", subscribers_csv.USAGE) from error
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"Can't read {name!r}: {error}.", subscribers_csv.USAGE) from error
