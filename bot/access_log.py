"""gunicorn's access log without the tokens of the sign-up links (SPEC §9).

A manage or unsubscribe link is as good as the subscriber's password: the log
keeps the route and drops the token.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

_TOKEN = re.compile(r"(/subscribe/confirm/|/subscription/|/unsubscribe/)[^/\s?#]+")


def redact(text: str) -> str:
    """`GET /unsubscribe/SECRET HTTP/1.1` → `GET /unsubscribe/… HTTP/1.1`."""
    return _TOKEN.sub(r"\1…", text)


class AccessLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, its request line and path redacted."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """The access log's fields, tokens removed from the path and request line."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
