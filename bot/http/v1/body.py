"""Request bodies of the v1 API as Statuspage takes them, and their fields' types.

Statuspage (Rails) takes a wrapped object, as JSON (`{"incident": {"name": …}}`) or as
a form (`incident[name]=…&incident[component_ids][]=ID&incident[components][ID]=major_outage`).
Both become the same dict here, and each field is checked against its type: a
form's values are all text, so `t`/`true`/`1` are true, as Rails reads them.

Limits: the body's size, the number of form fields, and the nesting of either, so
an attacker's body costs a bounded amount of work before it is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC as _UTC
from datetime import date, datetime, time
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

import falcon

from bot.http.errors import TooLarge, read_body

MAX_BODY = 256 * 1024
MAX_FIELDS = 500
MAX_DEPTH = 4  # {"incident": {"components": {"ID": "major_outage"}}} is 3

_FORM_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)\Z")
_TRUE = {"true", "t", "1", "yes", "on"}
_FALSE = {"false", "f", "0", "no", "off", ""}


class BadRequest(Exception):
    """A body the v1 API refuses: `status` (400, 413, 415, 422) and what to do instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read(req: falcon.Request) -> dict[str, Any]:
    """The request's body as a dict: {} when there is none."""
    try:
        raw = read_body(req, limit=MAX_BODY)
    except TooLarge:
        raise BadRequest(413, f"Send at most {MAX_BODY:,} bytes per request.") from None
    if not raw.strip():
        return {}
    kind = (req.content_type or "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return _json(raw)
    if kind == "application/x-www-form-urlencoded":
        return _form(raw)
    raise BadRequest(
        415,
        "Send the body as JSON (Content-Type: application/json) or as a form "
        "(Content-Type: application/x-www-form-urlencoded).",
    )


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise BadRequest(400, "The body is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequest(400, f"The body is not JSON: {error}.") from None
    if not isinstance(data, dict):
        raise BadRequest(400, 'Send a JSON object, e.g. {"incident": {"name": "…"}}.')
    if _depth(data) > MAX_DEPTH:
        raise BadRequest(400, "The body is nested too deeply.")
    return data


def _depth(value: object, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _form(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise BadRequest(400, "The form is not UTF-8.") from None
    except ValueError:
        raise BadRequest(400, f"Send at most {MAX_FIELDS} form fields.") from None
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = _FORM_KEY.match(key)
        if match is None:
            raise BadRequest(400, f"Form field {key[:80]!r} is not NAME or NAME[FIELD].")
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        if len(path) > MAX_DEPTH:
            raise BadRequest(400, "The form is nested too deeply.")
        _put(out, path, value, key)
    return out


def _put(out: dict[str, Any], path: list[str], value: str, key: str) -> None:
    node: Any = out
    for n, part in enumerate(path):
        last = n == len(path) - 1
        following = None if last else path[n + 1]
        if part == "":
            if not isinstance(node, list):
                raise BadRequest(400, f"Form field {key[:80]!r} mixes a list and an object.")
            if not last:
                raise BadRequest(400, f"Form field {key[:80]!r}: [] must come last.")
            node.append(value)
            return
        if not isinstance(node, dict):
            raise BadRequest(400, f"Form field {key[:80]!r} mixes a list and an object.")
        if last:
            node[part] = value
            return
        fresh: Any = [] if following == "" else {}
        node = node.setdefault(part, fresh)


def unwrap(body: Mapping[str, Any], name: str, *, example: str) -> dict[str, Any]:
    """The object under `name` (Statuspage's wrapper); {} when the body is empty."""
    if not body:
        return {}
    inner = body.get(name)
    if not isinstance(inner, dict):
        raise BadRequest(
            400, f"Send the {name.replace('_', ' ')} wrapped, as Statuspage takes it: {example}."
        )
    others = sorted(set(body) - {name})
    if others:
        raise BadRequest(
            422, f"Unknown top-level field {others[0][:80]!r}: put fields in {name!r}."
        )
    return inner


class Kind(Enum):
    TEXT = "string"
    BOOL = "boolean"
    INT = "integer"
    TIME = "date-time"
    IDS = "list of ids"
    STATUSES = "map of component id to status"
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Fields:
    """The fields an object takes: their types, and Statuspage's fields that statusbot
    accepts and ignores (so clients that send every field still work)."""

    name: str
    types: Mapping[str, Kind]
    ignored: frozenset[str] = frozenset()

    def check(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The known fields, each of its type (None where a null was sent); 422 otherwise."""
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in self.ignored:
                continue
            kind = self.types.get(key)
            if kind is None:
                known = ", ".join(sorted(self.types))
                raise BadRequest(
                    422, f"{self.name} has no field {str(key)[:80]!r}; its fields are {known}."
                )
            out[key] = None if value is None else _typed(f"{self.name}[{key}]", kind, value)
        return out


def _typed(where: str, kind: Kind, value: object) -> object:
    if kind is Kind.TEXT:
        if isinstance(value, str):
            return value
    elif kind is Kind.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif kind is Kind.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value.strip()):
            return int(value)
    elif kind is Kind.NUMBER:
        return _number(where, value)
    elif kind is Kind.TIME:
        if isinstance(value, str):
            return _time(where, value)
        if isinstance(value, int) and not isinstance(value, bool):
            return _epoch(where, value)
    elif kind is Kind.IDS:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v for v in value if v]
        if isinstance(value, str):  # a form's `x[component_ids]=a` without []
            return [value] if value else []
    elif (
        kind is Kind.STATUSES
        and isinstance(value, dict)
        and all(isinstance(v, str) for v in value.values())
    ):
        return {str(k): v for k, v in value.items()}
    raise BadRequest(422, f"{where} must be a {kind.value}; got {_shown(value)}.")


def _number(where: str, value: object) -> float:
    if isinstance(value, bool):
        raise BadRequest(422, f"{where} must be a number; got {_shown(value)}.")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise BadRequest(422, f"{where} is out of range.") from None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise BadRequest(422, f"{where} must be a number; got {_shown(value)}.")


def _time(where: str, text: str) -> datetime:
    word = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
            # Statuspage's backfill_date is a day: its start, in UTC.
            return datetime.combine(date.fromisoformat(word), time(0, 0, tzinfo=_UTC))
        at = datetime.fromisoformat(word.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(
            422, f"{where} must be an ISO 8601 time, e.g. 2026-06-10T10:00:00Z; got {_shown(text)}."
        ) from None
    if at.tzinfo is None:
        raise BadRequest(422, f"{where} {_shown(text)} has no UTC offset; add one, e.g. Z.")
    if not 2000 <= at.year <= 2100:
        raise BadRequest(422, f"{where} {_shown(text)} is not between the years 2000 and 2100.")
    return at.astimezone(_UTC)


def _epoch(where: str, seconds: int) -> datetime:
    if not 946_684_800 <= seconds <= 4_102_444_800:  # 2000 to 2100
        raise BadRequest(422, f"{where}: {seconds} is not a Unix time between 2000 and 2100.")
    return datetime.fromtimestamp(seconds, _UTC)


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
