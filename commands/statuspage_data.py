"""A Statuspage page as plain values (SPEC §11), the limits on reading one, and decoding
its JSON within them: no database, no I/O.

The importer's input is whatever a page served or someone saved: the v2 public
files (`summary.json`, `components.json`, `incidents.json`,
`scheduled-maintenances.json`) or the v1 manage API's lists (incidents and
maintenances together, component groups, subscribers, templates).
commands/statuspage_reader.py reads them into these values; only input that is
not a page at all (not JSON, too big or too deep, the wrong shape at the top)
stops an import, with a `CommandError` that says so.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from commands.errors import CommandError
from storage.rules import ComponentStatus, Impact, Kind

# Limits on what one import reads: far above any real page, low enough that a
# hostile or broken source can't exhaust memory or the stack.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32
MAX_INCIDENTS = 100_000
MAX_UPDATES = 1_000  # per incident
MAX_COMPONENTS = 5_000
MAX_SUBSCRIBERS = 1_000_000
MAX_ID = 64
SHOWN_EXAMPLES = 3

# The files of a page, by the name a saved copy has (`--from DIR`).
V2_FILES = ("summary.json", "components.json", "incidents.json", "scheduled-maintenances.json")
V1_FILES = ("page.json", "component-groups.json", "subscribers.json", "incident_templates.json")


class Notes:
    """The kinds of mess met, each by name with how often and a few examples."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, case: str, example: str = "") -> None:
        """Count one instance of `case`, keeping the first few examples."""
        self.counts[case] += 1
        shown = self.examples.setdefault(case, [])
        if example and len(shown) < SHOWN_EXAMPLES and example not in shown:
            shown.append(example)

    def lines(self) -> list[str]:
        """One line per case, most frequent first."""
        out = []
        for case, count in self.counts.most_common():
            examples = self.examples.get(case) or []
            suffix = f" (e.g. {'; '.join(examples)})" if examples else ""
            out.append(f"{case}: {count:,}{suffix}")
        return out


@dataclass(frozen=True, slots=True)
class PageInfo:
    id: str
    name: str
    url: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class GroupData:
    id: str
    name: str
    description: str | None
    position: int
    component_ids: tuple[str, ...]
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ComponentData:
    id: str
    name: str
    description: str | None
    position: int
    group_id: str | None
    showcase: bool
    only_show_if_degraded: bool
    start_date: date | None
    status: ComponentStatus
    created_at: datetime | None
    updated_at: datetime | None
    # False for a component met only inside incidents (deleted from the page since).
    listed: bool = True


@dataclass(frozen=True, slots=True)
class ChangeData:
    component_id: str
    old_status: ComponentStatus
    new_status: ComponentStatus


@dataclass(frozen=True, slots=True)
class UpdateData:
    id: str
    status: str
    body: str
    display_at: datetime
    created_at: datetime
    updated_at: datetime
    deliver_notifications: bool
    # None: the page did not say (`affected_components: null`); () it said none.
    changes: tuple[ChangeData, ...] | None


@dataclass(frozen=True, slots=True)
class PostmortemData:
    incident_id: str
    body: str
    published_at: datetime | None
    body_updated_at: datetime | None = None
    notified: bool = False  # subscribers were told (`postmortem_notified_subscribers`)


@dataclass(frozen=True, slots=True)
class IncidentData:
    id: str
    kind: Kind
    name: str
    status: str
    impact: Impact
    impact_given: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    scheduled_for: datetime | None
    scheduled_until: datetime | None
    component_ids: tuple[str, ...]
    updates: tuple[UpdateData, ...]  # oldest first
    postmortem: PostmortemData | None = None


@dataclass(frozen=True, slots=True)
class SubscriberData:
    id: str
    kind: str  # email | webhook
    email: str
    endpoint: str | None
    component_ids: tuple[str, ...]
    created_at: datetime | None
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TemplateData:
    id: str
    name: str
    title: str
    body: str
    status: str | None
    component_ids: tuple[str, ...]
    # The state each component is set to, where the page said (a component object's
    # `status`, as statusbot's own /v1 answers): component id → status.
    states: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PageData:
    """Everything one import read, checked and tidied, with the notes on its mess."""

    page: PageInfo
    groups: tuple[GroupData, ...]
    components: tuple[ComponentData, ...]
    incidents: tuple[IncidentData, ...]
    subscribers: tuple[SubscriberData, ...] | None  # None: the source has none to give
    templates: tuple[TemplateData, ...] | None
    notes: Notes = field(default_factory=Notes)

    @property
    def updates(self) -> int:
        return sum(len(i.updates) for i in self.incidents)


def decode(raw: bytes, what: str) -> Any:
    """A JSON document as Python values, within the size and nesting limits."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise too_big(what, len(raw))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CommandError(
            f"{what} is not UTF-8 text ({error.reason} at byte {error.start:,})."
        ) from None
    depth = _max_depth(text)
    if depth > MAX_DEPTH:
        raise CommandError(
            f"{what} nests {depth:,} levels deep; a Statuspage file nests a few, so it is "
            f"refused above {MAX_DEPTH}."
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        start = text.lstrip()[:1]
        hint = " (it looks like HTML: is the URL the page's address?)" if start == "<" else ""
        raise CommandError(f"{what} is not JSON{hint}: {str(error)[:200]}") from None


def too_big(what: str, size: int | None = None) -> CommandError:
    """The error for a file over the size limit (`size` when it is known)."""
    said = f"{size:,} bytes" if size is not None else "too big"
    return CommandError(
        f"{what} is {said}; an import reads at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB "
        "per file."
    )


def _max_depth(text: str) -> int:
    """How deep brackets nest, counted outside strings, before anything is parsed."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest
