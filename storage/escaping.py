"""The one way text a person typed is made inert for Slack, in announcements and replies alike.

Slack reads `&`, `<` and `>` as markup (`<@U1>`, `<!here>`, `<!subteam^S1>`,
`<https://evil.example|Sign in again>`), so every piece of user text (titles,
names, bodies, words echoed in an error) goes through `escape` before it meets
statusbot's own markup. It lives in storage/ because both commands/ (replies)
and renderers/ (Block Kit messages) need it and neither may import the other;
like storage/rules.py it is pure, no session and no I/O.
"""

from __future__ import annotations

import re

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BROADCAST = re.compile(r"@(channel|here|everyone)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_ESCAPED = re.compile(r"&(amp|lt|gt);|@\u2060")
_CHARS = {"amp": "&", "lt": "<", "gt": ">"}


def escape(text: str) -> str:
    """User text made inert for Slack: `&<>` escaped, broadcasts defused, controls dropped."""
    text = CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + _WORD_JOINER + r"\1", text)


def unescape(text: str) -> str:
    """A reply as a terminal shows it: what `escape` did undone, in one pass."""
    return _ESCAPED.sub(lambda m: _CHARS[m.group(1)] if m.group(1) else "@", text)
