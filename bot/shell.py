"""`statusbot shell`: the slash commands at a local prompt, no Slack needed."""

from __future__ import annotations

import contextlib
import sys
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import bot.notify
from bot.runtime import Runtime
from commands.result import Result
from storage.escaping import unescape

BANNER = """statusbot shell: type slash commands as you would in Slack, e.g.
  /status
  /incident open API errors --components API=major -- We are investigating.
  /incident help
Shell commands: .user UID (act as another Slack user), .tz ZONE, .help, .quit (or Ctrl-D).
"""


def format_result(result: Result, runtime: Runtime) -> str:
    """The reply, then the announcements that would go out, as the shell prints them.

    Replies are Slack mrkdwn with what people typed escaped; a terminal shows it as typed.
    """
    out = [unescape(result.reply)]
    channels = runtime.settings.notify_channels
    for notice in result.notices:
        where = ", ".join(f"#{c}" for c in channels) if channels else "no channel configured"
        out.append(f"\n📣 {notice.event} → {where}\n{unescape(notice.text)}")
    return "\n".join(out)


def deliver_now(runtime: Runtime, stdout: TextIO = sys.stdout) -> None:
    """Tell subscribers what the last command queued, now: the fan-out, then each sender
    (without SMTP, the email sender prints what it would send)."""
    bot.notify.run_pending(runtime, bot.notify.senders(runtime, printing=stdout))


def run_shell(
    runtime: Runtime,
    *,
    user: str,
    tz: ZoneInfo | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> int:
    """Read lines until end of input; each is one slash command or a shell command."""
    interactive = stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):  # not on every platform
            import readline  # noqa: F401  (line editing and history for input())
    print(BANNER, file=stdout)
    failures = 0
    while True:
        prompt = f"statusbot ({user})> "
        if interactive:
            try:
                line = input(prompt)
            except EOFError:
                print(file=stdout)
                break
        else:
            raw = stdin.readline()
            if not raw:
                break
            line = raw.rstrip("\n")
            print(prompt + line, file=stdout)
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in (".quit", ".exit", "exit", "quit"):
            break
        if line == ".help":
            print(BANNER, file=stdout)
            continue
        if line.startswith(".user"):
            new = line.removeprefix(".user").strip()
            if new:
                user = new
                print(f"Now acting as {user}.", file=stdout)
            else:
                print("Usage: .user U12345", file=stdout)
            continue
        if line.startswith(".tz"):
            name = line.removeprefix(".tz").strip()
            try:
                tz = ZoneInfo(name)
                print(f"Times are now read in {name}.", file=stdout)
            except (ZoneInfoNotFoundError, ValueError):
                print(
                    f"'{name}' is not a time zone; try Europe/Berlin or America/New_York.",
                    file=stdout,
                )
            continue
        result = runtime.run_line(line, user=user, tz=tz)
        if not result.ok:
            failures += 1
        print(format_result(result, runtime), file=stdout)
        if result.changed:
            deliver_now(runtime, stdout)
        print(file=stdout)
    return 0
