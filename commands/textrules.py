"""One set of rules for the text people give statusbot, whichever way it arrives.

Titles, messages, names, group names, descriptions and units follow the same
rules from a slash command, a Slack form, the shell, the CLI or any API: the
use case applies them, so a new transport gets them for free, and a form only
asks first to put the error under the right field.

- A length limit per kind, counted after the text is tidied (one-line kinds
  have their runs of whitespace folded into one space; others are trimmed).
- No control characters but tab, newline and carriage return: NUL and the
  rest are invisible, and some stores and terminals cut the text at them.
- No bidirectional embeddings, overrides or isolates (U+202A-U+202E,
  U+2066-U+2069), in message bodies too: they make text display in another
  order than it is stored, so "resolved" can read as anything (the Trojan
  Source trick). Right-to-left text needs none of them, since the Unicode
  bidirectional algorithm orders it; the marks U+200E, U+200F and U+061C,
  which cannot reorder a run of text, stay allowed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from commands import words
from commands.errors import CommandError

# Control characters a person may type on purpose; one-line kinds fold them into spaces.
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


@dataclass(frozen=True, slots=True)
class TextKind:
    """A kind of text field: what the person calls it, its limit, whether it keeps lines."""

    what: str
    limit: int
    lines: bool = False
    note: str = ""  # said after the limit, e.g. whose limit it is


TITLE = TextKind("title", words.MAX_TITLE)
MESSAGE = TextKind("message", words.MAX_MESSAGE, lines=True, note=" (Slack's limit)")
POSTMORTEM = TextKind("postmortem", words.MAX_POSTMORTEM, lines=True)
NAME = TextKind("name", words.MAX_NAME)
GROUP = TextKind("group name", words.MAX_NAME)
DESCRIPTION = TextKind("description", words.MAX_DESCRIPTION, lines=True)
UNIT = TextKind("unit", words.MAX_UNIT, note=", e.g. 'ms' or '%'")


def tidy(text: str, kind: TextKind) -> str:
    """The text as it is stored: one line with single spaces, or trimmed with \\n line ends."""
    if kind.lines:
        return text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return " ".join(text.split())


def problem(text: str, kind: TextKind) -> str | None:
    """What is wrong with text of this kind as given, or None."""
    for n, char in enumerate(text, start=1):
        if char in _BIDI_CONTROLS:
            return (
                f"The {kind.what} contains a bidirectional control character "
                f"({_code(char)}, character {n:,}), which makes text show in another order "
                "than it is written: remove it."
            )
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            return (
                f"The {kind.what} contains the control character {_code(char)} "
                f"(character {n:,}), which can't be shown: remove it."
            )
    length = len(tidy(text, kind))
    if length > kind.limit:
        return (
            f"The {kind.what} is {length:,} characters long: keep the {kind.what} to "
            f"{kind.limit:,} characters{kind.note}."
        )
    return None


def check(text: str, kind: TextKind, usage: str) -> str:
    """The tidied text, or a CommandError saying what to change (empty text is the caller's)."""
    wrong = problem(text, kind)
    if wrong is not None:
        raise CommandError(wrong, usage)
    return tidy(text, kind)


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"
