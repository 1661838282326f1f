"""`statusbot import statuspage …`: moving a team's Statuspage page into statusbot (SPEC §11).

The transport's part: read the source (bot/statuspage_fetch.py), show progress
(a rich progress bar on a terminal, plain lines otherwise), run the use case
(commands/importer.py) in ONE transaction (rolled back on any error, or on
purpose for --dry-run), then republish the page once. Reading comes first and
writes nothing, so a source that fails half-way leaves the database untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.statuspage_fetch import DEFAULT_API_URL, DEFAULT_RATE
from commands.errors import CommandError
from storage.escaping import CONTROL_CHARS

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from commands.import_report import ImportReport

CLI_ACTOR = "cli"
API_KEY_ENV = "STATUSPAGE_API_KEY"
USAGE = (
    "statusbot import statuspage URL | --api-key KEY --page-id ID [--api-url BASE] | "
    "--from DIR [--dry-run]"
)


def add_parser(sub: Any) -> None:
    """Add `import` and its sources to the program's subcommands."""
    parser = sub.add_parser("import", help="bring a page's history in from another status page")
    kinds = parser.add_subparsers(dest="import_command", metavar="SOURCE", required=True)
    sp = kinds.add_parser(
        "statuspage",
        help="from Atlassian Statuspage: its public URL, its v1 API (--api-key, --page-id) "
        "or saved JSON (--from DIR)",
        description="Import groups, components, incidents, maintenances with every update, "
        "and (from the v1 API) subscribers. Running it again updates what changed and "
        "duplicates nothing. Imported history is not announced in Slack or to subscribers.",
    )
    sp.add_argument("url", nargs="?", help="the page's public address, e.g. https://status.x.com")
    sp.add_argument(
        "--api-key",
        help=f"a Statuspage API key, for the v1 API (or set {API_KEY_ENV}, kept out of `ps`)",
    )
    sp.add_argument("--page-id", help="the page's id (Statuspage: API info), with --api-key")
    sp.add_argument(
        "--api-url",
        default=DEFAULT_API_URL,
        help=f"where the v1 API is (default {DEFAULT_API_URL})",
    )
    sp.add_argument("--from", dest="from_dir", metavar="DIR", help="read saved JSON files")
    sp.add_argument(
        "--dry-run", action="store_true", help="show what would change and write nothing"
    )
    sp.add_argument(
        "--requests-per-second",
        type=float,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"at most N requests a second (default {DEFAULT_RATE:g}, Statuspage's limit)",
    )


def run_import(args: argparse.Namespace, runtime: Runtime) -> int:
    """Run `statusbot import statuspage`; the exit status."""
    # The fetcher's pool, the reader and the importer load here, not whenever a
    # `statusbot` command builds its argument parser.
    from bot.statuspage_fetch import Fetcher, fetch_v1, fetch_v2, read_dir
    from commands.statuspage_reader import read_page

    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    sources = [bool(args.url), bool(args.from_dir), bool(api_key and args.page_id)]
    if args.page_id and not api_key:
        raise CommandError(f"--page-id needs --api-key (or {API_KEY_ENV}).", USAGE)
    if api_key and not args.page_id and not args.url and not args.from_dir:
        raise CommandError("--api-key needs --page-id: the page's id.", USAGE)
    if sum(sources) != 1:
        raise CommandError(
            "Give one source: a page's URL, --api-key with --page-id, or --from DIR.", USAGE
        )
    if args.requests_per_second <= 0:
        raise CommandError("--requests-per-second must be above 0.", USAGE)
    out = _Progress(sys.stderr)
    started = time.monotonic()
    skipped: list[str] = []
    with out:
        fetcher = Fetcher(rate=args.requests_per_second, on_read=out.read)
        if args.from_dir:
            source = args.from_dir
            docs = read_dir(args.from_dir, out.read)
        elif args.url:
            source = args.url
            docs = fetch_v2(fetcher, args.url)
        else:
            source = f"{args.api_url.rstrip('/')}/pages/{args.page_id}"
            docs = fetch_v1(
                fetcher,
                api_url=args.api_url,
                page_id=args.page_id,
                api_key=api_key or "",
                skipped=skipped,
            )
        ctx = replace(runtime.system_context(CLI_ACTOR), notify_channels=(), tell_subscribers=False)
        data = read_page(docs, source=source, now=ctx.now)
        out.plain(
            f"read {len(data.components):,} components, {len(data.incidents):,} incidents "
            f"and maintenances, {data.updates:,} updates"
            + (f", {len(data.subscribers):,} subscribers" if data.subscribers is not None else "")
            + (f" in {fetcher.requests:,} requests" if fetcher.requests else "")
        )
        report = _write(runtime, ctx, data, source, out, dry_run=args.dry_run)
    report.skipped[:0] = skipped
    seconds = time.monotonic() - started
    print(_clean(f"{'Would import' if args.dry_run else 'Imported'} {source} in {seconds:.1f} s:"))
    for line in report.lines():
        print(_clean(line))
    if args.dry_run:
        print("Dry run: nothing was written.")
        return 0
    if report.changed:
        from bot.publish import Publisher

        published = Publisher(runtime).publish_all()
        if published is None:
            print("statusbot: imported, but the page could not be rendered.", file=sys.stderr)
            return 1
        print(
            f"Rendered the page into {runtime.settings.page_dir}/ ({published.rendered:,} files)."
        )
    return 0


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def _write(
    runtime: Runtime,
    ctx: Any,
    data: Any,
    source: str,
    out: _Progress,
    *,
    dry_run: bool,
) -> ImportReport:
    """The use case in one transaction: committed, or rolled back on error or a dry run."""
    from commands.importer import import_page

    report: ImportReport | None = None
    try:
        with runtime.factory() as session, session.begin():
            report = import_page(session, ctx, data, source=source, progress=out.write)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except OperationalError as error:
        if "refused" not in str(error.orig) and "locked" not in str(error.orig):
            raise CommandError("The database did not answer, so nothing was written.") from None
        raise CommandError(_refused(error)) from None
    except DBAPIError as error:
        raise CommandError(_refused(error)) from None
    assert report is not None
    return report


def _refused(error: DBAPIError) -> str:
    first = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "?"
    return f"The database refused the import ({first[:300]}), so nothing was written."


class _Progress:
    """A rich progress bar on a terminal; plain lines, a few per stage, otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}
        self._said: dict[str, int] = {}

    def __enter__(self) -> _Progress:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def read(self, what: str, items: int) -> None:
        """Reading `what`: `items` so far (the total is not known until the end)."""
        label = f"reading {what}"
        if self.bar is not None:
            task = self.tasks.get(label)
            if task is None:
                self.tasks[label] = self.bar.add_task(label, total=None, completed=items)
            else:
                self.bar.update(task, completed=items)
            return
        self._line(label, f"{label}: {items:,} items")

    def write(self, stage: str, done: int, total: int) -> None:
        """Writing `stage`: `done` of `total`."""
        label = f"importing {stage}"
        if self.bar is not None:
            task = self.tasks.get(label)
            if task is None:
                task = self.tasks[label] = self.bar.add_task(label, total=total)
            self.bar.update(task, completed=done)
            return
        # A line at each tenth, so a long import shows it is moving without flooding a log.
        step = max(total // 10, 1) if total >= 20 else total
        if done == total or done % step == 0:
            self._line(label, f"{label}: {done:,}/{total:,}", key=done)

    def plain(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)

    def _line(self, label: str, line: str, key: int = 0) -> None:
        if self._said.get(label) == key and key:
            return
        self._said[label] = key
        print(line, file=self.stream, flush=True)


def _clean(text: str) -> str:
    """A line for the terminal: nothing a hostile page put in a name can move the cursor."""
    return CONTROL_CHARS.sub("", text)
