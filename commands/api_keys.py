"""API key use cases (SPEC §10): create, list, revoke; from `statusbot api-key`.

The CLI acts as the system, as `statusbot subscribers` does: whoever can run it can
reach the database anyway. A key's name is what the audit log records as the actor
of every change made with it, so names are short, plain and unique among live keys.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from commands import words
from commands.common import audit_change, authorise
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from storage import api_keys as store

# Lower case, so a key's name never looks like a Slack user id (U…) in the audit log.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")

USAGE = {
    "create": "statusbot api-key create NAME",
    "revoke": "statusbot api-key revoke NAME",
}


def create(session: Session, ctx: Context, *, name: str) -> tuple[Result, str]:
    """A new key; the Result and the key itself (shown once: only its hash is kept)."""
    usage = USAGE["create"]
    authorise(ctx, action="api_key.create", target=name[:40])
    name = _name(name, usage)
    if store.named(session, name) is not None:
        raise CommandError(
            f"There is already a key called {name!r}. Revoke it first with "
            f"`statusbot api-key revoke {name}`, or choose another name.",
            usage,
        )
    _key, token = store.create(session, name=name, now=ctx.now)
    audit_change(
        session, ctx, action="api_key.create", target=name, before=None, after={"name": name}
    )
    reply = (
        f"Created API key {name!r}. It is shown this once; only its hash is kept. "
        "Send it as 'Authorization: OAuth KEY' (or Bearer, or ?api_key=KEY):\n" + token
    )
    return Result(reply=reply, changed=True), token


def list_keys(session: Session, ctx: Context) -> Result:
    """Live keys: their names, when made and last used (never the keys)."""
    authorise(ctx, action="api_key.list", target="api keys")
    keys = store.live(session)
    if not keys:
        return Result(reply="No API keys. Make one with " + USAGE["create"])
    lines = [
        f"• {k.name}: created {words.when(k.created_at, ctx.tz)}, "
        + (f"last used {words.when(k.last_used_at, ctx.tz)}" if k.last_used_at else "never used")
        for k in keys
    ]
    return Result(reply=f"{len(keys)} API keys:\n" + "\n".join(lines))


def revoke(session: Session, ctx: Context, *, name: str) -> Result:
    """Revoke a key: every request with it is refused (401) from now on."""
    usage = USAGE["revoke"]
    authorise(ctx, action="api_key.revoke", target=name[:40])
    key = store.named(session, name.strip().lower())
    if key is None:
        raise CommandError(
            f"There is no live API key called {name.strip()[:40]!r}. See `statusbot api-key list`.",
            usage,
        )
    key.revoked_at = ctx.now
    audit_change(
        session,
        ctx,
        action="api_key.revoke",
        target=key.name,
        before={"name": key.name, "revoked": False},
        after={"name": key.name, "revoked": True},
    )
    return Result(reply=f"Revoked API key {key.name!r}.", changed=True)


def _name(name: str, usage: str) -> str:
    word = name.strip().lower()
    if not _NAME.fullmatch(word):
        raise CommandError(
            "Name the key with 1 to 40 lower-case letters, digits, '.', '_' or '-' "
            "(e.g. monitoring or deploy-pipeline): it is what the audit log shows.",
            usage,
        )
    return word
