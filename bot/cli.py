"""The `statusbot` program: one entry point for every way of running it (SPEC §8)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commands.errors import CommandError

if TYPE_CHECKING:
    from bot.runtime import Clock, Runtime

log = logging.getLogger("statusbot")

DEFAULT_USER = "U0LOCAL"
# The commands through which people change the status page, so STATUSBOT_EDITORS matters.
EDITING = ("serve", "run", "shell")
# One-off commands that, run as the program, end without the interpreter's teardown.
EXIT_AT_ONCE = ("render",)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; for one of the commands defined here (`command`, the first
    word), without the parsers kept with the commands of their own modules."""
    parser = argparse.ArgumentParser(
        prog="statusbot",
        description="Chat-ops status page: Slack slash commands in, a public status page out. "
        "Settings come from the environment (DATABASE_URL, STATUSBOT_*, SLACK_*).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser(
        "serve",
        help="the web server: Slack's /slack/events, the public page at /, /healthz "
        "(and the scheduler, unless STATUSBOT_SCHEDULER=off)",
    )
    sub.add_parser(
        "clock",
        help="the scheduler alone: maintenance windows, reminders, the midnight render",
    )

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

    sub.add_parser(
        "render", help="render every file of the public page into STATUSBOT_PAGE_DIR now"
    )

    metrics = sub.add_parser("metrics", help="metrics shown as charts on the public page")
    metrics_sub = metrics.add_subparsers(dest="metrics_command", metavar="ACTION", required=True)
    metric_add = metrics_sub.add_parser("add", help="add a metric")
    metric_add.add_argument("name", help="its name on the page, e.g. 'API Response Times'")
    metric_add.add_argument("--unit", required=True, help="e.g. ms or %%; '' for none")
    metric_add.add_argument("--description", help="a line shown with the chart")
    metric_push = metrics_sub.add_parser(
        "push", help="record a point (VALUE) or many (--file points.csv, rows time,value)"
    )
    metric_push.add_argument("name", help="the metric")
    metric_push.add_argument("value", nargs="?", help="the value measured")
    metric_push.add_argument("--at", help="when it was measured (default now), e.g. '5m ago'")
    metric_push.add_argument(
        "--file", help="a CSV of time,value rows (ISO 8601 times with an offset); - for stdin"
    )
    metric_push.add_argument("--tz", help="read --at in this zone (default: STATUSBOT_TIMEZONE)")
    for action in (metric_add, metric_push):
        action.add_argument(
            "--no-render", action="store_true", help="leave the page as it is (default: update it)"
        )
    metrics_sub.add_parser("list", help="every metric with its newest point")
    if command in sub.choices:
        # Theirs import what only their commands use (the importer's client, ~10 ms):
        # `statusbot render` starts without it. Help and mistakes get every command.
        return parser

    from bot.subscribers_cli import add_parser as add_subscribers

    add_subscribers(sub)
    from bot.api_keys_cli import add_parser as add_api_key

    add_api_key(sub)
    from bot.import_cli import add_parser as add_import

    add_import(sub)
    return parser


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    from bot.settings import SettingsError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"--tz {name!r} is not a time zone; try Europe/Berlin.") from exc


def _fixed_clock(value: str | None) -> Clock | None:
    """A clock standing at STATUSBOT_NOW (ISO 8601, with an offset), or None for the real one.

    One-off commands only (a server's clock must move): the tests run the program
    at a known moment with it, so they never depend on today's date.
    """
    if not value:
        return None
    from bot.settings import SettingsError

    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise SettingsError(
            f"STATUSBOT_NOW={value!r} is not an ISO 8601 time with an offset; "
            "try 2026-06-10T10:00:00+00:00, or unset it for the real time."
        )
    return lambda: at


def main(argv: Sequence[str] | None = None) -> int:
    """Run `statusbot …`; returns the exit status."""
    words = sys.argv[1:] if argv is None else list(argv)
    args = _parser(words[0] if words else None).parse_args(words)
    if argv is None and args.command in EXIT_AT_ONCE:
        # A program that ends in os._exit never needs its garbage collected: no
        # collector passes over the modules as they load (a tenth of the start-up).
        # Publishing pauses it anyway; cycles are few, and freed at exit.
        gc.disable()
    # Loaded here, after that: every command but help needs them (SQLAlchemy, ~0.3 s).
    from bot.runtime import Runtime, SchemaOutOfDate
    from bot.settings import EVERYONE_MAY_EDIT, Settings, SettingsError

    # Servers log what they do; one-off commands only what went wrong.
    quiet = args.command not in ("serve", "clock")
    level = os.environ.get("STATUSBOT_LOG_LEVEL", "WARNING" if quiet else "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Their routine chatter (every tick, every migration step) is noise in our logs.
    for chatty in ("apscheduler", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    try:
        settings = Settings.from_env()
        if args.command in EDITING and not settings.editors:
            log.warning(EVERYONE_MAY_EDIT)  # shown at WARNING, the level of one-off commands
        clock = _fixed_clock(os.environ.get("STATUSBOT_NOW")) if quiet else None
        runtime = Runtime(settings, clock=clock) if clock else Runtime(settings)
        code = _dispatch(args, runtime)
        if argv is None and args.command in EXIT_AT_ONCE:
            runtime.engine.dispose()
            _exit_at_once(code)
        return code
    except (SettingsError, SchemaOutOfDate, CommandError) as error:
        message = error.reply() if isinstance(error, CommandError) else str(error)
        print(f"statusbot: {message}", file=sys.stderr)
        return 2


def _exit_at_once(code: int) -> NoReturn:
    """End the program now, skipping the interpreter's teardown (a quarter of a second).

    Safe once the command is done: every file of the page is in place (renamed,
    its directory fsynced), the database connections are closed, no thread runs
    and nothing of ours waits at exit. What teardown would still do is free the
    snapshot's heap object by object and unload every module, which the kernel
    does at once. Only the buffered output and log records are left: flushed here.
    Never from a test calling main(argv) in its own process: only when argv is None.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
        from bot.publish import Publisher

        report = Publisher(runtime).publish_all()
        if report is not None:
            where = runtime.settings.page_dir
            print(f"\nRendered the page into {where}/ ({report.rendered:,} files).")
        print("\nThe example page is loaded. Try `statusbot shell` and type /status.")
        return 0 if report is not None else 1

    if args.command == "serve":
        from bot.clock import scheduler_hook
        from bot.serve import serve

        runtime.engine.dispose()  # serve forks: it opens its own connections
        return serve(
            runtime.settings, on_start=[scheduler_hook] if runtime.settings.scheduler else []
        )

    runtime.ensure_schema()
    if args.command == "clock":
        return _clock(runtime)
    if args.command == "render":
        return _render(runtime)
    if args.command == "metrics":
        return _metrics(args, runtime)
    if args.command == "subscribers":
        from bot.subscribers_cli import run_subscribers

        return run_subscribers(args, runtime)
    if args.command == "api-key":
        from bot.api_keys_cli import run_api_key

        return run_api_key(args, runtime)
    if args.command == "import":
        from bot.import_cli import run_import

        return run_import(args, runtime)
    if args.command in ("run", "shell"):
        from bot.publish import attach_publisher

        attach_publisher(runtime)  # every change they make republishes the page
    if args.command == "run":
        result = runtime.run_line(args.line, user=args.user, tz=_zone(args.tz))
        from bot.shell import deliver_now, format_result

        stream = sys.stdout if result.ok else sys.stderr
        print(format_result(result, runtime), file=stream)
        if result.changed:
            deliver_now(runtime)
        return 0 if result.ok else 1
    if args.command == "shell":
        from bot.shell import run_shell

        return run_shell(runtime, user=args.user, tz=_zone(args.tz))
    raise AssertionError(f"unhandled command {args.command}")  # argparse guarantees this


def _clock(runtime: Runtime) -> int:
    """The scheduler alone; it publishes the page and delivers what its own changes announce."""
    from bot.clock import run_clock
    from bot.publish import attach_publisher
    from bot.serve import start_delivery

    attach_publisher(runtime)
    stoppers = start_delivery(runtime)
    try:
        return run_clock(runtime)
    finally:
        for stop in stoppers:
            stop()


def _render(runtime: Runtime) -> int:
    from pathlib import Path

    from bot.publish import Publisher
    from renderers.parallel import ParallelSite

    # One thread, one full render, then the exit: the incident pages may go to a fork,
    # made as soon as the snapshot's incidents are read (before uptime and charts).
    site = ParallelSite(Path(runtime.settings.page_dir))
    publisher = Publisher(
        runtime, render=site.render, write=site.write, early=site.start, discard_early=site.stop
    )
    report = publisher.publish_all()
    if report is None:
        print("statusbot: the page could not be rendered; see the log above.", file=sys.stderr)
        return 1
    shown = 20
    for path in report.written[:shown]:
        print(f"wrote {path}")
    if len(report.written) > shown:
        print(f"… and {len(report.written) - shown:,} more")
    for path in report.removed:
        print(f"removed {path}")
    print(
        f"Rendered {report.rendered:,} files in {report.seconds:.2f} s (snapshot "
        f"{report.snapshot_seconds:.2f} s, render {report.render_seconds:.2f} s, write "
        f"{report.write_seconds:.2f} s): {len(report.written):,} written, "
        f"{report.rendered - len(report.written):,} unchanged, in {runtime.settings.page_dir}/."
    )
    return 0


def _metrics(args: argparse.Namespace, runtime: Runtime) -> int:
    from commands import metrics
    from storage.db import transaction

    ctx = runtime.context(DEFAULT_USER, tz=_zone(getattr(args, "tz", None)))
    usage = metrics.USAGE.get(args.metrics_command, "")
    with transaction(runtime.factory) as session:
        if args.metrics_command == "add":
            result = metrics.add_metric(
                session, ctx, name=args.name, unit=args.unit, description=args.description
            )
        elif args.metrics_command == "list":
            result = metrics.list_metrics(session, ctx)
        elif args.file is not None:
            if args.value is not None or args.at is not None:
                raise CommandError("Give a VALUE (with --at) or --file, not both.", usage)
            text, source = _read_points(args.file, usage)
            result = metrics.push_csv(session, ctx, name=args.name, text=text, source=source)
        elif args.value is None:
            raise CommandError("Give the VALUE to record, or --file points.csv.", usage)
        else:
            result = metrics.push_value(session, ctx, name=args.name, value=args.value, at=args.at)
    print(result.reply)
    if result.changed and not args.no_render:
        from bot.publish import Publisher

        if Publisher(runtime).publish() is None:
            print("statusbot: saved, but the page could not be rendered.", file=sys.stderr)
            return 1
    return 0


def _read_points(name: str, usage: str) -> tuple[str, str]:
    """The text of a points file (or stdin for '-') and how to name it in errors."""
    if name == "-":
        return sys.stdin.read(), "stdin"
    try:
        with open(name, encoding="utf-8") as handle:
            return handle.read(), name
    except FileNotFoundError as error:
        raise CommandError(f"There is no file {name!r}.", usage) from error
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"Can't read {name!r}: {error}.", usage) from error


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
