"""Block Kit modals: "Declare incident", "Post update" and "Resolve", as plain dicts.

Pure builders from plain values. The block and action ids below are the
contract with the Slack transport, which reads a submission back by them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.rules import COMPONENT_LABELS, STATUS_LABELS, ComponentStatus, IncidentStatus
from storage.snapshot import IncidentView

# Callback ids: which modal was submitted.
DECLARE = "declare_incident"
UPDATE = "post_update"
RESOLVE = "resolve_incident"
NOTE = "add_note"
TEMPLATE = "template"  # the declare form's template picker (an actions block)
TEMPLATE_ACTION = "template_pick"

# Block ids (errors are reported against them) and the one action id every input uses.
TITLE = "title"
IMPACT = "impact"
STATUS = "status"
MESSAGE = "message"
NOTIFY = "notify"
DRAFT = "draft"
COMPONENT = "component:"  # + the component's code, one select per component
COMPONENTS = "components"  # the multi-select used when there are too many for one each
COMPONENTS_STATE = "components_state"
VALUE = "value"

UNCHANGED = "unchanged"  # a component select's "not affected / no change" option
AUTO = "auto"  # impact derived from the components (declare) or left as it is (update)
NOTIFY_ON = "notify"
DRAFT_ON = "draft"

# Mirror commands.words (renderers may not import commands); a test holds them equal.
MAX_TITLE = 200
MAX_MESSAGE = 3000
# A modal holds 100 blocks; past this many components, one multi-select and one state.
MAX_COMPONENT_SELECTS = 40
MAX_OPTIONS = 100

INCIDENT_STATES = (
    ComponentStatus.OPERATIONAL,
    ComponentStatus.DEGRADED,
    ComponentStatus.PARTIAL,
    ComponentStatus.MAJOR,
)
OPEN_STATUSES = (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING)
IMPACTS = ("none", "minor", "major", "critical")


@dataclass(frozen=True, slots=True)
class ComponentChoice:
    """A component as a modal offers it: its stable code, shown name and state now."""

    code: str
    name: str
    status: str


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    """A template as the declare form's picker offers it."""

    code: str
    name: str
    title: str


@dataclass(frozen=True, slots=True)
class Prefill:
    """What the declare form starts with: a template's values, or a Slack message's.

    `version` tells one filling from the next: Slack keeps what an input holds
    across views.update unless its block id changes, so each filling gets new ids
    (`title~v`); `block_of` reads them back.
    """

    title: str = ""
    status: str = IncidentStatus.INVESTIGATING.value
    components: Mapping[str, str] = field(default_factory=dict)  # component code → state
    message: str = ""
    template: str | None = None  # the picked template's code
    source_link: str | None = None  # the Slack message it is declared from
    version: str = ""


VERSION_MARK = "~"


def block_of(block_id: str) -> str:
    """A block id without the version a prefilled form gave it."""
    return block_id.partition(VERSION_MARK)[0]


def declare_incident_modal(
    components: Sequence[ComponentChoice],
    *,
    metadata: str = "",
    templates: Sequence[TemplateChoice] = (),
    prefill: Prefill | None = None,
) -> dict[str, Any]:
    """The "Declare incident" modal: a template picker (when there are templates), title,
    status, impact, components, message, notify and draft."""
    fill = prefill or Prefill()
    top: list[dict[str, Any]] = []
    if templates:
        top.append(_template_picker(templates, fill.template))
    if fill.source_link:
        top.append(
            {
                "type": "context",
                "block_id": "source",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"Declared from <{_link(fill.source_link)}|this message>; the "
                        "link stays in Slack, never on the status page.",
                    }
                ],
            }
        )
    blocks: list[dict[str, Any]] = [
        _text_input(
            TITLE,
            "Title",
            initial=fill.title,
            placeholder="Checkout errors",
            max_length=MAX_TITLE,
        ),
        _select(
            STATUS,
            "Status",
            [(s.value, STATUS_LABELS[s.value]) for s in OPEN_STATUSES],
            initial=fill.status,
        ),
        _select(
            IMPACT,
            "Impact",
            [(AUTO, "From the components' states")] + [(i, i.capitalize()) for i in IMPACTS],
            initial=AUTO,
        ),
        *_component_blocks(components, dict(fill.components), unchanged="Not affected"),
        _text_input(
            MESSAGE,
            "Message",
            initial=fill.message,
            placeholder="We are investigating failed payments. Markdown works.",
            multiline=True,
            optional=True,
            max_length=MAX_MESSAGE,
        ),
        _notify(),
        _draft(),
    ]
    if fill.version:
        for block in blocks:
            if block["type"] == "input":
                block["block_id"] += VERSION_MARK + fill.version
    return _modal(DECLARE, "Declare incident", "Declare", top + blocks, metadata)


def _template_picker(templates: Sequence[TemplateChoice], chosen: str | None) -> dict[str, Any]:
    options = [_option(t.code, t.name) for t in templates[:MAX_OPTIONS]]
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": TEMPLATE_ACTION,
        "placeholder": _plain("Start from a template"),
        "options": options,
    }
    picked = [o for o in options if o["value"] == chosen]
    if picked:
        element["initial_option"] = picked[0]
    return {"type": "actions", "block_id": TEMPLATE, "elements": [element]}


def _link(url: str) -> str:
    return url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


def post_update_modal(
    incident: IncidentView, components: Sequence[ComponentChoice], *, metadata: str = ""
) -> dict[str, Any]:
    """The "Post update" modal, prefilled with the incident's title, status and components."""
    affected = {c.code: c.status for c in incident.components}
    statuses = [*OPEN_STATUSES, IncidentStatus.RESOLVED]
    blocks: list[dict[str, Any]] = [
        _summary(incident),
        _text_input(TITLE, "Title", initial=incident.title, max_length=MAX_TITLE),
        _select(
            STATUS,
            "Status",
            [(s.value, STATUS_LABELS[s.value]) for s in statuses],
            initial=incident.status if incident.status in statuses else None,
        ),
        _select(
            IMPACT,
            "Impact",
            [(AUTO, f"Leave as it is ({incident.impact})")]
            + [(i, i.capitalize()) for i in IMPACTS],
            initial=AUTO,
        ),
        *_component_blocks(_affected_first(components, affected), affected, unchanged="No change"),
        _text_input(
            MESSAGE,
            "Update",
            placeholder="What changed, and what happens next? Markdown works.",
            multiline=True,
            max_length=MAX_MESSAGE,
        ),
        _notify(),
    ]
    return _modal(UPDATE, "Post update", "Post update", blocks, metadata)


def resolve_modal(incident: IncidentView, *, metadata: str = "") -> dict[str, Any]:
    """The "Resolve" modal: a closing message (optional) and the notify toggle."""
    blocks: list[dict[str, Any]] = [
        _summary(incident),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Its components go back to operational, unless another open "
                    "incident or a maintenance in progress still holds them.",
                }
            ],
        },
        _text_input(
            MESSAGE,
            "Message",
            placeholder="This incident has been resolved.",
            multiline=True,
            optional=True,
            max_length=MAX_MESSAGE,
        ),
        _notify(),
    ]
    return _modal(RESOLVE, "Resolve incident", "Resolve", blocks, metadata)


def note_modal(incident: IncidentView, *, metadata: str = "") -> dict[str, Any]:
    """The "Add note" modal: an internal note for the announcement's thread, never public."""
    blocks: list[dict[str, Any]] = [
        _summary(incident),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": ":lock: Internal: posted in the announcement's thread and kept in "
                    "the audit log; never on the status page nor sent to subscribers.",
                }
            ],
        },
        _text_input(
            MESSAGE,
            "Note",
            placeholder="Rolled back deploy 4512; watching the error rate.",
            multiline=True,
            max_length=MAX_MESSAGE,
        ),
    ]
    return _modal(NOTE, "Add internal note", "Add note", blocks, metadata)


# --- pieces ------------------------------------------------------------------------------


def _modal(
    callback_id: str, title: str, submit: str, blocks: list[dict[str, Any]], metadata: str
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, 24),
        "submit": _plain(submit, 24),
        "close": _plain("Cancel", 24),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return {"type": "plain_text", "text": text or " "}


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _summary(incident: IncidentView) -> dict[str, Any]:
    status = STATUS_LABELS.get(incident.status, incident.status)
    title = _mrkdwn_escape(incident.title)
    return {
        "type": "section",
        "block_id": "summary",
        "text": {
            "type": "mrkdwn",
            "text": f"*#{incident.number} {title}*\n{status} · impact {incident.impact}",
        },
    }


def _text_input(
    block_id: str,
    label: str,
    *,
    initial: str | None = None,
    placeholder: str | None = None,
    multiline: bool = False,
    optional: bool = False,
    max_length: int,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": VALUE,
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    if placeholder:
        element["placeholder"] = _plain(placeholder, 150)
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "optional": optional,
        "element": element,
    }


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": _plain(text), "value": value}


def _select(
    block_id: str,
    label: str,
    options: Sequence[tuple[str, str]],
    *,
    initial: str | None,
    optional: bool = False,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": VALUE,
        "options": [_option(v, t) for v, t in options[:MAX_OPTIONS]],
    }
    chosen = [_option(v, t) for v, t in options if v == initial]
    if chosen:
        element["initial_option"] = chosen[0]
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "optional": optional,
        "element": element,
    }


def _state_options(unchanged: str) -> list[tuple[str, str]]:
    return [(UNCHANGED, unchanged)] + [(s.value, COMPONENT_LABELS[s]) for s in INCIDENT_STATES]


def _affected_first(
    components: Sequence[ComponentChoice], affected: dict[str, str]
) -> list[ComponentChoice]:
    return sorted(components, key=lambda c: c.code not in affected)


def _component_blocks(
    components: Sequence[ComponentChoice], affected: dict[str, str], *, unchanged: str
) -> list[dict[str, Any]]:
    if not components:
        return [
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "No components yet: add them with `/component add NAME`.",
                    }
                ],
            }
        ]
    header: dict[str, Any] = {
        "type": "section",
        "block_id": "components_header",
        "text": {"type": "mrkdwn", "text": "*Components*: set the state of each one affected."},
    }
    if len(components) <= MAX_COMPONENT_SELECTS:
        blocks = [header]
        for c in components:
            now = COMPONENT_LABELS.get(ComponentStatus(c.status), c.status)
            initial = affected.get(c.code, UNCHANGED)
            blocks.append(
                _select(
                    COMPONENT + c.code,
                    f"{c.name} (now {now})",
                    _state_options(unchanged),
                    initial=initial,
                    optional=True,
                )
            )
        return blocks
    # Too many for one select each: pick components, then one state for all of them.
    shown = list(components)[:MAX_OPTIONS]
    multi: dict[str, Any] = {
        "type": "multi_static_select",
        "action_id": VALUE,
        "placeholder": _plain("Choose the affected components"),
        "options": [_option(c.code, c.name) for c in shown],
    }
    chosen = [_option(c.code, c.name) for c in shown if c.code in affected]
    if chosen:
        multi["initial_options"] = chosen
    return [
        {
            "type": "input",
            "block_id": COMPONENTS,
            "label": _plain("Affected components", 2000),
            "optional": True,
            "element": multi,
        },
        _select(
            COMPONENTS_STATE,
            "Their state",
            _state_options(unchanged),
            initial=UNCHANGED,
            optional=True,
        ),
    ]


def _notify() -> dict[str, Any]:
    return _checkbox(
        NOTIFY, "Notify", NOTIFY_ON, "Announce it in the notification channels", on=True
    )


def _draft() -> dict[str, Any]:
    return _checkbox(
        DRAFT, "Draft", DRAFT_ON, "Save as a draft: Slack only, until /incident publish", on=False
    )


def _checkbox(block_id: str, label: str, value: str, text: str, *, on: bool) -> dict[str, Any]:
    """One optional checkbox, ticked or not to begin with."""
    option = _option(value, text)
    element: dict[str, Any] = {"type": "checkboxes", "action_id": VALUE, "options": [option]}
    if on:
        element["initial_options"] = [option]
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "optional": True,
        "element": element,
    }
