"""`statusbot api-key create | list | revoke`: keys for the REST API (SPEC §10).

`create` prints the key alone on the last line of its output, so a script can take
it with `tail -n 1`; it is never shown again.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from commands.result import Result

CLI_ACTOR = "cli"


def add_parser(sub: Any) -> None:
    """Add `api-key` and its actions to the program's subcommands."""
    parser = sub.add_parser("api-key", help="keys for the REST API (/v1)")
    actions = parser.add_subparsers(dest="api_key_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once, on the last line")
    create.add_argument("name", help="who uses it (the audit log's actor), e.g. monitoring")
    actions.add_parser("list", help="live keys: names and when they were last used")
    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("name")


def run_api_key(args: argparse.Namespace, runtime: Runtime) -> int:
    """Run one `statusbot api-key` action; the exit status."""
    # The use cases load here, not when every `statusbot` command builds its parser.
    from commands import api_keys
    from commands.dispatch import run

    ctx = runtime.system_context(CLI_ACTOR)
    action = args.api_key_command
    token: list[str] = []

    def change(session: Any) -> Result:
        if action == "create":
            result, key = api_keys.create(session, ctx, name=args.name)
            token.append(key)
            return result
        if action == "revoke":
            return api_keys.revoke(session, ctx, name=args.name)
        return api_keys.list_keys(session, ctx)

    result = run(runtime.factory, ctx, change, what=f"api-key {action}", note={"cli": action})
    print(result.reply, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1
