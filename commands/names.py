"""Reading what people call things: component names, states, impacts and statuses."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from enum import StrEnum
from typing import TypeVar

from sqlalchemy.orm import Session

from commands.errors import CommandError
from commands.words import STATE_WORDS
from storage import components as component_store
from storage.escaping import escape
from storage.models import Component
from storage.rules import ComponentStatus

E = TypeVar("E", bound=StrEnum)

STATE_ALIASES: dict[str, ComponentStatus] = {
    "ok": ComponentStatus.OPERATIONAL,
    "up": ComponentStatus.OPERATIONAL,
    "operational": ComponentStatus.OPERATIONAL,
    "degraded": ComponentStatus.DEGRADED,
    "degraded_performance": ComponentStatus.DEGRADED,
    "slow": ComponentStatus.DEGRADED,
    "partial": ComponentStatus.PARTIAL,
    "partial_outage": ComponentStatus.PARTIAL,
    "major": ComponentStatus.MAJOR,
    "major_outage": ComponentStatus.MAJOR,
    "down": ComponentStatus.MAJOR,
    "outage": ComponentStatus.MAJOR,
    "maintenance": ComponentStatus.MAINTENANCE,
    "under_maintenance": ComponentStatus.MAINTENANCE,
}


def parse_state(word: str, *, usage: str) -> ComponentStatus:
    """A component state from its API name or short form."""
    key = word.strip().lower().replace("-", "_").replace(" ", "_")
    if key in STATE_ALIASES:
        return STATE_ALIASES[key]
    raise CommandError(
        f"'{escape(word)}' is not a component state. Use one of: {STATE_WORDS}.", usage
    )


def parse_choice(word: str, choices: Sequence[E], *, what: str, usage: str) -> E:
    """One of a fixed set of values (impact, status), any case, spaces or dashes for `_`."""
    key = word.strip().lower().replace("-", "_").replace(" ", "_")
    for choice in choices:
        if choice.value == key:
            return choice
    names = ", ".join(c.value for c in choices)
    raise CommandError(f"'{escape(word)}' is not a valid {what}. Use one of: {names}.", usage)


def _display(component: Component) -> str:
    return f"{component.group.name}/{component.name}" if component.group else component.name


def find_component(session: Session, name: str, *, usage: str) -> Component:
    """The live component called `name` or `Group/Name` (any case), else a helpful error."""
    wanted = component_store.name_key(name)
    if not wanted:
        raise CommandError("Name a component.", usage)
    if "/" not in wanted:
        # Names hold no '/', so only a grouped component's `Group/Name` has one: a name
        # without it can match a component's own name alone, which is unique among the
        # live ones. Looked up directly; the page's whole list only when it is not found.
        named = component_store.live_named(session, wanted)
        if named is not None and component_store.name_key(named.name) == wanted:
            return named
    live = component_store.live(session)
    for component in live:
        full = component_store.name_key(_display(component))
        if wanted in (component_store.name_key(component.name), full):
            return component
    by_name = {component_store.name_key(_display(c)): c for c in live}
    by_name.update({component_store.name_key(c.name): c for c in live})
    group = component_store.group_named(session, name)
    if group is not None:
        members = [c.name for c in live if c.group_id == group.id]
        if members:
            raise CommandError(
                f"'{escape(group.name)}' is a group. Name one of its components: "
                f"{_or_list(members)}.",
                usage,
            )
    starts = sorted(
        {_display(c) for key, c in by_name.items() if _partly(wanted, key)}, key=str.casefold
    )
    if len(starts) > 1:
        raise CommandError(
            f"'{escape(name)}' could be {_or_list(starts)}. Name one of them in full.", usage
        )
    close = difflib.get_close_matches(wanted, list(by_name), n=3, cutoff=0.6)
    suggestions = starts or sorted({_display(by_name[k]) for k in close}, key=str.casefold)
    if suggestions:
        raise CommandError(
            f"There is no component '{escape(name)}'. Did you mean {_or_list(suggestions)}?", usage
        )
    known = ", ".join(escape(_display(c)) for c in live) or "none yet: add one with /component add"
    raise CommandError(f"There is no component '{escape(name)}'. Components: {known}.", usage)


def parse_component_states(
    session: Session, text: str, *, usage: str
) -> list[tuple[Component, ComponentStatus]]:
    """`NAME=STATE, NAME=STATE` into components and states; each component once."""
    pairs: list[tuple[Component, ComponentStatus]] = []
    for part in _items(text):
        name, sep, state = part.rpartition("=")
        if not sep or not name.strip():
            raise CommandError(
                f"'{escape(part)}' needs a state: write NAME=STATE, e.g. API=major.", usage
            )
        component = find_component(session, _unquote(name), usage=usage)
        if any(c.id == component.id for c, _ in pairs):
            raise CommandError(f"{escape(component.name)} is named twice in --components.", usage)
        pairs.append((component, parse_state(_unquote(state), usage=usage)))
    if not pairs:
        raise CommandError("--components needs at least one NAME=STATE.", usage)
    return pairs


def parse_component_list(session: Session, text: str, *, usage: str) -> list[Component]:
    """`NAME, NAME` into components; each once."""
    found: list[Component] = []
    for part in _items(text):
        component = find_component(session, _unquote(part), usage=usage)
        if all(c.id != component.id for c in found):
            found.append(component)
    if not found:
        raise CommandError("--components needs at least one component name.", usage)
    return found


def _partly(wanted: str, key: str) -> bool:
    """Whether `wanted` is how `key` begins, or a word of it: 'news', 'emails'."""
    if key.startswith(wanted):
        return True
    return any(word.startswith(wanted) for word in key.replace("/", " ").split())


def _items(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


_QUOTES = "\"'“”‘’"


def _unquote(text: str) -> str:
    """`"Newsletter emails"` → `Newsletter emails`: quotes inside a NAME=STATE list."""
    text = text.strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _or_list(names: Sequence[str]) -> str:
    quoted = [f"'{escape(n)}'" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
