"""The `statusbot` program: one entry point for every way of running it (SPEC §8)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.runtime import Runtime, SchemaOutOfDate
from bot.settings import Settings, SettingsError
from commands.errors import CommandError

log = logging.getLogger("statusbot")

DEFAULT_USER = "U0LOCAL"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statusbot",
        description="Chat-ops status page: Slack slash commands in, a public status page out. "
        "Settings come from the environment (DATABASE_URL, STATUSBOT_*, SLACK_*).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    shell = sub.add_parser(
        "shell", help="a local prompt taking the slash commands, with announcements printed"
    )
    shell.add_argument("--user", default=DEFAULT_USER, help="act as this Slack user id")
    shell.add_argument("--tz", help="read times in this zone (default: STATUSBOT_TIMEZONE)")

    run = sub.add_parser("run", help="run one slash command, print the reply, then exit")
    run.add_argument("line", help="the command, e.g. '/incident open API errors'")
    run.add_argument("--user", default=DEFAULT_USER, help="act as this Slack user id")
    run.add_argument("--tz", help="read times in this zone (default: STATUSBOT_TIMEZONE)")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", help="apply migrations up to the newest schema")
    db_sub.add_parser("current", help="print the schema revision the database is at")

    demo = sub.add_parser("demo", help="load the example status page, shifted to today")
    demo.add_argument("--reset", action="store_true", help="wipe the database first")
    return parser


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"--tz {name!r} is not a time zone; try Europe/Berlin.") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run `statusbot …`; returns the exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        runtime = Runtime(settings)
        return _dispatch(args, runtime)
    except (SettingsError, SchemaOutOfDate, CommandError) as error:
        message = error.reply() if isinstance(error, CommandError) else str(error)
        print(f"statusbot: {message}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, runtime: Runtime) -> int:
    from storage import migrate

    if args.command == "db":
        if args.db_command == "upgrade":
            migrate.upgrade(runtime.engine)
            print(f"Database is at revision {migrate.current_revision(runtime.engine)}.")
        else:
            print(migrate.current_revision(runtime.engine) or "empty (never migrated)")
        return 0

    if args.command == "demo":
        from bot.demo import load_demo

        if args.reset:
            migrate.reset(runtime.engine)
            migrate.upgrade(runtime.engine)
        runtime.ensure_schema()
        for line in load_demo(runtime):
            print(line)
        print("\nThe example page is loaded. Try `statusbot shell` and type /status.")
        return 0

    runtime.ensure_schema()
    if not runtime.settings.editors:
        log.info("STATUSBOT_EDITORS is not set: everyone may change the status page")
    if args.command == "run":
        result = runtime.run_line(args.line, user=args.user, tz=_zone(args.tz))
        from bot.shell import format_result

        stream = sys.stdout if result.ok else sys.stderr
        print(format_result(result, runtime), file=stream)
        return 0 if result.ok else 1
    if args.command == "shell":
        from bot.shell import run_shell

        return run_shell(runtime, user=args.user, tz=_zone(args.tz))
    raise AssertionError(f"unhandled command {args.command}")  # argparse guarantees this


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
