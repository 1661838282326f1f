"""Turn the text of a slash command, exactly as Slack sends it, into words and options.

Slack escapes `& < >` as entities, wraps mentions and links in `<...>` markup and,
on most clients, turns typed quotes into curly ones. `split_words` undoes all of that
and then splits the text shell-style, with two differences that suit chat: a quote
that is never closed is just a character (so "Can't log in" needs no escaping), and
an option's value runs over every word up to the next option (so `--start tomorrow
9am` needs no quotes).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from commands.errors import CommandError
from storage.escaping import escape

__all__ = ["Opt", "Words", "parse_id", "split_words", "unslack"]

# What a person reads when the text is wrong; kept together so the wording stays consistent.
NEEDS_VALUE = "--{name} needs a value."
TAKES_NO_VALUE = "--{name} is a switch and takes no value."
UNKNOWN_OPTION = "Unknown option {word}."
DID_YOU_MEAN = " Did you mean --{name}?"
GIVEN_TWICE = "Give --{name} only once."
CONTRADICTS = "Give only one of {first} and {second}."
NOT_AN_ID = "'{word}' is not an incident number. Write it as 12 or #12."

MAX_ID = 2**31 - 1
# Words echoed back in an error are cut short: the reply must stay readable whatever was typed.
_SHOWN_LENGTH = 40


class Opt(Enum):
    """How an option is written: with a value after it, or alone as a switch."""

    VALUE = "value"
    FLAG = "flag"


@dataclass(frozen=True, slots=True)
class Words:
    """A command's text split up: positional words, options and the message after `--`."""

    args: tuple[str, ...]
    options: Mapping[str, str | bool]
    message: str | None


# --- Slack's escaping -------------------------------------------------------------------

# One pattern for markup and entities, so a single left-to-right pass never rereads its
# own output: `&lt;@U1&gt;` (a person typing "<@U1>") stays text and `&amp;lt;` stays `&lt;`.
_SLACK_ESCAPES = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
_ENTITIES = re.compile(r"&(amp|lt|gt);")
_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
_BROADCASTS = frozenset({"here", "channel", "everyone"})
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def unslack(text: str) -> str:
    """Undo Slack's escaping: entities, user/channel/link markup."""
    return _SLACK_ESCAPES.sub(_unslack_one, text)


def _unslack_one(match: re.Match[str]) -> str:
    entity = match.group(2)
    if entity is not None:
        return _ENTITY_CHARS[entity]
    inner = _ENTITIES.sub(lambda m: _ENTITY_CHARS[m.group(1)], match.group(1))
    return _markup(inner, original=match.group(0))


def _markup(inner: str, *, original: str) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label.removeprefix("@") or target[1:])
    if target.startswith("#"):
        return "#" + (label.removeprefix("#") or target[1:])
    if target.startswith("!subteam^"):
        return "@" + (label.removeprefix("@") or target.removeprefix("!subteam^"))
    if target.startswith("!"):
        if target[1:] in _BROADCASTS:
            return "@" + target[1:]
        # `<!date^...|fallback>` and other specials: the fallback is what people saw.
        return label or original
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    if _URL_SCHEME.match(target):
        # Slack links bare text it recognises (`example.com` -> `<http://example.com|
        # example.com>`); give back what was typed rather than a markdown link.
        if not label or target in (label, "http://" + label, "https://" + label):
            return label or target
        return f"[{label}]({target})"
    return original  # not markup Slack makes; leave it as it came


# --- Words ---------------------------------------------------------------------------

# Slack turns typed quotes into curly ones, but a pasted or half-converted text may close
# a curly quote with a straight one, so each opener lists every mark that may close it.
_CLOSING = {
    '"': re.compile(r'"(?=\s|\Z)'),
    "'": re.compile(r"'(?=\s|\Z)"),
    "“": re.compile(r'[”"](?=\s|\Z)'),
    "‘": re.compile(r"[’'](?=\s|\Z)"),
}
_WORD_START = re.compile(r"\S")
_WORD_END = re.compile(r"\s")
_OPTION = re.compile(r"--[A-Za-z]")
_OPTION_EQUALS = re.compile(r"--[A-Za-z][^\s=]*=")


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    quoted: bool  # a quoted word is always positional, even "--impact"


class _Closers:
    """Where each kind of quote could close, found once so scanning stays linear."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._found: dict[str, list[int]] = {}

    def after(self, opener: str, start: int) -> int | None:
        found = self._found.get(opener)
        if found is None:
            found = [m.start() for m in _CLOSING[opener].finditer(self._text)]
            self._found[opener] = found
        index = bisect.bisect_left(found, start)
        return found[index] if index < len(found) else None


def _next_word(text: str, pos: int) -> int:
    match = _WORD_START.search(text, pos)
    return match.start() if match else len(text)


def _word_end(text: str, pos: int) -> int:
    match = _WORD_END.search(text, pos)
    return match.start() if match else len(text)


def _scan(text: str) -> tuple[list[_Word], str | None]:
    """Split text into words up to a lone `--`; return them and the message after it."""
    closers = _Closers(text)
    words: list[_Word] = []
    pos = _next_word(text, 0)
    while pos < len(text):
        # `--title="New title"`: the quote may open right after the `=`.
        prefix = _OPTION_EQUALS.match(text, pos)
        quote_at = prefix.end() if prefix else pos
        close = None
        if quote_at < len(text) and text[quote_at] in _CLOSING:
            close = closers.after(text[quote_at], quote_at + 1)
        if close is not None:
            if prefix:
                words.append(_Word(prefix.group(), quoted=False))
            words.append(_Word(text[quote_at + 1 : close], quoted=True))
            end = close + 1
        else:
            end = _word_end(text, pos)
            word = text[pos:end]
            if word == "--":
                return words, text[end:].strip()
            words.append(_Word(word, quoted=False))
        pos = _next_word(text, end)
    return words, None


def _is_option(word: _Word) -> bool:
    return not word.quoted and _OPTION.match(word.text) is not None


def _shown(word: str) -> str:
    """A typed word as an error echoes it: cut short and escaped."""
    return escape(word if len(word) <= _SHOWN_LENGTH else word[: _SHOWN_LENGTH - 1] + "…")


def split_words(text: str, *, options: Mapping[str, Opt], usage: str) -> Words:
    """Split command text into positional words, options and the message after `--`."""
    words, message = _scan(unslack(text))
    by_key = {name.lower(): name for name in options}
    args: list[str] = []
    found: dict[str, str | bool] = {}
    typed_as: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not _is_option(word):
            args.append(word.text)
            continue
        typed, equals, inline = word.text[2:].partition("=")
        name, positive = _lookup(typed, by_key, options, usage)
        if name in found:
            first, second = typed_as[name], "--" + typed.lower()
            if first == second:
                raise CommandError(GIVEN_TWICE.format(name=name), usage)
            raise CommandError(CONTRADICTS.format(first=first, second=second), usage)
        typed_as[name] = "--" + typed.lower()
        if options[name] is Opt.FLAG:
            if equals:
                raise CommandError(TAKES_NO_VALUE.format(name=name), usage)
            found[name] = positive
            continue
        # `--x=v w` means the same as `--x v w`: the value runs to the next option.
        parts = [inline] if inline else []
        while i < len(words) and not _is_option(words[i]):
            parts.append(words[i].text)
            i += 1
        if not parts:
            raise CommandError(NEEDS_VALUE.format(name=name), usage)
        found[name] = " ".join(parts)
    return Words(args=tuple(args), options=MappingProxyType(found), message=message)


def _lookup(
    typed: str, by_key: Mapping[str, str], options: Mapping[str, Opt], usage: str
) -> tuple[str, bool]:
    """The declared option a typed name means, and False when it is a `--no-` switch."""
    key = typed.lower()
    if key in by_key:
        return by_key[key], True
    negated = by_key.get(key.removeprefix("no-")) if key.startswith("no-") else None
    if negated is not None and options[negated] is Opt.FLAG:
        return negated, False
    message = UNKNOWN_OPTION.format(word=_shown("--" + typed))
    spellings = dict(by_key)
    spellings |= {f"no-{k}": f"no-{n}" for k, n in by_key.items() if options[n] is Opt.FLAG}
    close = difflib.get_close_matches(key, spellings, n=1)
    if close:
        message += DID_YOU_MEAN.format(name=spellings[close[0]])
    raise CommandError(message, usage)


# --- Numbers ---------------------------------------------------------------------------

# ASCII digits only (`\d` would take `١٢`), and at most ten so `int()` never sees a huge
# string (Python refuses over 4,300 digits with a ValueError).
_ID = re.compile(r"#?([0-9]{1,10})")


def parse_id(word: str, *, usage: str) -> int:
    """An incident or maintenance number written `12` or `#12`."""
    match = _ID.fullmatch(word.strip())
    number = int(match.group(1)) if match else 0
    if not 0 < number <= MAX_ID:
        raise CommandError(NOT_AN_ID.format(word=_shown(word)), usage)
    return number
