"""gunicorn's access log without the tokens of the sign-up links (SPEC §9) or API keys.

A manage or unsubscribe link is as good as the subscriber's password: the log
keeps the route and drops the token.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

_TOKEN = re.compile(r"(/subscribe/confirm/|/subscription/|/unsubscribe/)[^/\s?#]+")
# A REST API key sent as ?api_key=KEY (SPEC §10) is as secret as the header form.
_KEY = re.compile(r"((?:^|[?&])api_key=)[^&\s#]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`GET /unsubscribe/SECRET HTTP/1.1` → `GET /unsubscribe/… HTTP/1.1`, and `?api_key=…`."""
    # Most fields hold neither; telling so by substring is a tenth of the regexes' cost,
    # and the access log redacts every field of every request.
    lowered = text.lower()
    if "api_key=" in lowered:
        text = _KEY.sub(r"\1…", text)
    if "/subscri" in lowered or "/unsubscribe/" in lowered:
        text = _TOKEN.sub(r"\1…", text)
    return text


class AccessLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, its request line and path redacted."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """The access log's fields, tokens and keys removed wherever they appear."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        # Every text field: the path and query appear in several (r, U, q, {raw_uri}e, …).
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
