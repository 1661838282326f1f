"""Slack Block Kit messages from snapshot values: announcements, thread replies, notes.

Pure functions of frozen values, no I/O and no Slack SDK: each returns a
message as Slack's API takes it, `{"text": fallback, "blocks": [...]}`.

Everything a person typed (titles, names, bodies) is escaped the way Slack
asks (`&`, `<`, `>` become entities), so `<!channel>`, `<@U123>` or a fake
link can't ping, mention or inject; `@channel`, `@here` and `@everyone` get an
invisible word joiner so no client setting can turn them into a ping either.
Markdown bodies become Slack mrkdwn (`**bold**` → `*bold*`, links → `<url|text>`
for http, https and mailto only). Block Kit limits are kept: at most 3,000
characters in a section (a longer text is cut with "…" and a link to the
status page), 150 in a header, 75 on a button, 50 blocks per message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from storage.escaping import CONTROL_CHARS, escape
from storage.rules import COMPONENT_LABELS, STATUS_LABELS, ComponentStatus
from storage.snapshot import IncidentView, UpdateView

Message = dict[str, Any]
Block = dict[str, Any]

MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_BLOCKS = 50
MAX_FALLBACK = 3000
FALLBACK_BODY = 280  # characters of an update's body in a notification's fallback text

DRAFT = "DRAFT"
DISCARDED = ":wastebasket: Discarded draft"
DRAFT_NOTE = (
    "*Draft: not on the status page, and subscribers are not told.* "
    "`/incident publish {number} [-- MESSAGE]` makes it public as if opened then; "
    "`/incident discard {number}` drops it."
)
DISCARDED_NOTE = "This draft was discarded: it never reached the status page."

UPDATE_ACTION = "incident_update"
RESOLVE_ACTION = "incident_resolve"
NOTE_ACTION = "incident_note"
ACTIONS_BLOCK = "incident_actions"
READ_MORE = "read more on the status page"

_IMPACT_EMOJI = {
    "critical": ":red_circle:",
    "major": ":large_orange_circle:",
    "minor": ":large_yellow_circle:",
    "none": ":white_circle:",
}
_CLOSED_EMOJI = {
    "resolved": ":white_check_mark:",
    "completed": ":white_check_mark:",
    "cancelled": ":no_entry_sign:",
}


# -- text (user text goes through storage.escaping.escape, the same escape replies use) --
_SAFE_URL = re.compile(r"^(?:https?://[a-z0-9\[]|mailto:[^\s<>|\"])[^\s<>|\"]*$", re.IGNORECASE)
_LINK = re.compile(
    r"!?\[(?P<label>[^\]\n]*)\]\(\s*<?(?P<url>(?:[^()\s<>]|\([^()\s<>]*\))*)>?"
    r"(?:\s+\"[^\"\n]*\")?\s*\)"
    r"|(?<![\w/])(?P<bare>https?://[^\s<>|\"'`]+)",
    re.IGNORECASE,
)
_HOST = re.compile(r"^https?://[a-z0-9\[]", re.IGNORECASE)
_CODE_SPAN = re.compile(r"(`[^`\n]+`)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_BOLD = (
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"),
    re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"),
)
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_TRAILING = ".,;:!?"


def mrkdwn(markdown: str) -> str:
    """A markdown body as Slack mrkdwn, with every piece of user text escaped."""
    out: list[str] = []
    in_code = False
    lines = CONTROL_CHARS.sub("", markdown.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    for line in lines:
        if line.lstrip().startswith("```"):
            # Slack has no fence languages: "```python" would show "python".
            rest = line.lstrip()[3:]
            if in_code:
                out.append("```")
                in_code = False
            elif rest.strip().endswith("```") and len(rest.strip()) > 3:
                out.append("```" + escape(rest.strip()[:-3]) + "```")
            else:
                out.append("```")
                in_code = True
            continue
        out.append(escape(line) if in_code else _line(line))
    if in_code:
        out.append("```")
    return "\n".join(out)


def _line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    if m := _HEADING.match(line):
        text = _inline(m.group(1)).replace("*", "")
        return f"*{text}*" if text.strip() else ""
    if m := _QUOTE.match(line):
        return "> " + _inline(m.group(1))
    if m := _BULLET.match(line):
        return f"{m.group(1)}• {_inline(m.group(2))}"
    return _inline(line)


def _inline(text: str) -> str:
    parts = _CODE_SPAN.split(text)
    return "".join(escape(p) if i % 2 else _links(p) for i, p in enumerate(parts))


def _links(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _LINK.finditer(text):
        out.append(_emphasis(escape(text[pos : m.start()])))
        pos = m.end()
        if m.group("bare") is not None:
            url = m.group("bare")
            trail = ""
            while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") == 0)):
                url, trail = url[:-1], url[-1] + trail
            linked = _HOST.match(url) is not None
            out.append(f"<{_url(url)}>{escape(trail)}" if linked else escape(url + trail))
            continue
        label, url = m.group("label"), m.group("url")
        words = _emphasis(escape(label.replace("|", "¦"))) or escape(url)
        out.append(f"<{_url(url)}|{words}>" if _SAFE_URL.match(url) else words)
    out.append(_emphasis(escape(text[pos:])))
    return "".join(out)


def _url(url: str) -> str:
    return url.replace("&", "&amp;")


def _emphasis(text: str) -> str:
    text = _BOLD_ITALIC.sub("\x01_\\1_\x01", text)
    for pattern in _BOLD:
        text = pattern.sub("\x01\\1\x01", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    return text.replace("\x01", "*")


def clip(text: str, limit: int, *, more: str = "…") -> str:
    """Text cut to `limit` characters, ending in `more`, never inside an entity or a link."""
    if len(text) <= limit:
        return text
    cut = max(0, limit - len(more) - 4)  # 4: room to close a code block
    amp = text.rfind("&", max(0, cut - 8), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        cut = amp
    if text.rfind("<", 0, cut) > text.rfind(">", 0, cut):
        cut = text.rfind("<", 0, cut)
    head = text[:cut].rstrip()
    if head.count("```") % 2:
        head += "\n```"
    return head + more


def incident_url(page_url: str, number: int) -> str:
    """The public page of one incident or maintenance."""
    return f"{page_url.rstrip('/')}/incidents/{number}.html"


def when(at: datetime, tz: tzinfo) -> str:
    """A time every reader sees in their own zone; the page's zone when a client can't."""
    local = at.astimezone(tz)
    fallback = f"{local:%b} {local.day}, {local:%H:%M} {local.tzname() or ''}".strip()
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def status_label(status: str) -> str:
    """'in_progress' → 'In progress'."""
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def component_label(status: str) -> str:
    """'major_outage' → 'Major Outage'."""
    try:
        return COMPONENT_LABELS[ComponentStatus(status)]
    except ValueError:
        return status.replace("_", " ").title()


# -- blocks -------------------------------------------------------------------------
def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(escape(text), limit), "emoji": True}


def _section(text: str, *, more: str = "…") -> Block:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION, more=more)},
    }


def _context(*parts: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(p, MAX_FIELD)} for p in parts if p][:10],
    }


def _read_more(url: str | None) -> str:
    return f"… <{_url(url)}|{READ_MORE}>" if url else "…"


def _message(text: str, blocks: list[Block]) -> Message:
    return {"text": clip(text, MAX_FALLBACK), "blocks": blocks[:MAX_BLOCKS]}


def _title(incident: IncidentView) -> str:
    """'#12 Checkout errors', for a header (escaped by `_plain`)."""
    return f"#{incident.number} {incident.title}"


def _emoji(incident: IncidentView) -> str:
    if incident.closed:
        return _CLOSED_EMOJI.get(incident.status, ":white_check_mark:")
    if incident.kind == "maintenance":
        return ":wrench:"
    return _IMPACT_EMOJI.get(incident.impact, ":white_circle:")


def _window(incident: IncidentView, tz: tzinfo) -> str:
    if incident.scheduled_for is None or incident.scheduled_until is None:
        return "Not scheduled"
    return f"{when(incident.scheduled_for, tz)} → {when(incident.scheduled_until, tz)}"


def _components(incident: IncidentView, url: str) -> str:
    head = "*Components*"
    lines = [f"• {escape(c.name)}: {component_label(c.status)}" for c in incident.components]
    text = "\n".join([head, *lines])
    if len(text) <= MAX_SECTION:
        return text
    kept: list[str] = []
    for i, line in enumerate(lines):
        tail = f"\n… and {len(lines) - i} more on <{_url(url)}|the status page>"
        if len(head) + sum(len(k) + 1 for k in kept) + len(line) + 1 + len(tail) > MAX_SECTION:
            return "\n".join([head, *kept]) + tail
        kept.append(line)
    return text


def _buttons(incident: IncidentView) -> Block | None:
    if incident.closed or incident.discarded:
        return None
    value = str(incident.number)
    elements: list[dict[str, Any]] = []
    if not incident.draft:
        elements.append(
            {
                "type": "button",
                "action_id": UPDATE_ACTION,
                "text": {"type": "plain_text", "text": "Post update", "emoji": True},
                "value": value,
            }
        )
    if incident.kind == "incident" and not incident.draft:
        title = clip(escape(incident.title), 200)
        elements.append(
            {
                "type": "button",
                "action_id": RESOLVE_ACTION,
                "text": {"type": "plain_text", "text": "Resolve", "emoji": True},
                "style": "danger",
                "value": value,
                "confirm": {
                    "title": {"type": "plain_text", "text": f"Resolve #{incident.number}?"},
                    "text": {
                        "type": "plain_text",
                        "text": clip(
                            f"#{incident.number} {title} will be resolved and its components "
                            "returned to operational.",
                            300,
                        ),
                    },
                    "confirm": {"type": "plain_text", "text": "Resolve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                    "style": "danger",
                },
            }
        )
    if incident.kind == "incident":
        elements.append(
            {
                "type": "button",
                "action_id": NOTE_ACTION,
                "text": {"type": "plain_text", "text": "Add note", "emoji": True},
                "value": value,
            }
        )
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements}


def _pending(incident: IncidentView) -> str:
    lines = [
        f"• {escape(c.name)}: {component_label(c.old_status)} → {component_label(c.new_status)}"
        for c in incident.pending
    ]
    return clip("\n".join(["*Components, when published*", *lines]), MAX_SECTION)


def _update_text(update: UpdateView) -> str:
    label = f"*{status_label(update.status)}*"
    body = mrkdwn(update.body.strip())
    if not body:
        return label
    # A quote, list or code block only works at the start of a line.
    return f"{label}\n{body}" if body.startswith((">", "•", "```")) else f"{label}: {body}"


def _fallback(incident: IncidentView) -> str:
    head = f"#{incident.number} {escape(incident.title)} · {status_label(incident.status)}"
    if incident.discarded:
        return f"{DISCARDED} {head}"
    if incident.draft:
        head = f"{DRAFT} {head}"
    if incident.kind == "incident":
        head += f" · impact {incident.impact}"
    else:
        head += " · maintenance"
    return head


def announcement(incident: IncidentView, *, page_url: str, tz: tzinfo) -> Message:
    """The message that stands for an incident or maintenance in a channel, edited in place."""
    url = incident_url(page_url, incident.number)
    if incident.discarded:
        return _message(
            _fallback(incident),
            [
                {"type": "header", "text": _plain(f"{DISCARDED} {_title(incident)}", MAX_HEADER)},
                _context(DISCARDED_NOTE),
            ],
        )
    marker = f":pencil2: {DRAFT} " if incident.draft else f"{_emoji(incident)} "
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f"{marker}{_title(incident)}", MAX_HEADER)}
    ]
    if incident.draft:
        blocks.append(_section(DRAFT_NOTE.format(number=incident.number)))
    fields = [f"*Status*\n{status_label(incident.status)}"]
    if incident.kind == "maintenance":
        fields.append(f"*Window*\n{_window(incident, tz)}")
    else:
        fields.append(f"*Impact*\n{incident.impact.capitalize()}")
    blocks.append(
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": clip(f, MAX_FIELD)} for f in fields],
        }
    )
    if incident.draft and incident.pending:
        blocks.append(_section(_pending(incident)))
    elif incident.components:
        blocks.append(_section(_components(incident, url)))
    latest = incident.updates[0] if incident.updates else None
    if latest is not None:
        text = f"*Latest update* · {when(latest.display_at, tz)}\n{_update_text(latest)}"
        blocks.append(_section(text, more=_read_more(url)))
    kind = "Maintenance" if incident.kind == "maintenance" else "Incident"
    started = incident.scheduled_for if incident.kind == "maintenance" else incident.started_at
    verb = "Starts" if incident.kind == "maintenance" else "Started"
    if incident.draft:
        verb, kind = "Drafted", "Draft incident"
    link = "" if incident.draft else f" · <{_url(url)}|View on the status page>"
    source = (
        f" · <{_url(incident.source_link)}|Declared from this message>"
        if incident.source_link and _SAFE_URL.match(incident.source_link)
        else ""
    )
    blocks.append(
        _context(
            f"{kind} #{incident.number} · {verb} {when(started or incident.created_at, tz)}"
            + link
            + source
        )
    )
    buttons = _buttons(incident)
    if buttons is not None:
        blocks.append(buttons)
    return _message(_fallback(incident), blocks)


def update_reply(
    incident: IncidentView, update: UpdateView, *, tz: tzinfo, page_url: str | None = None
) -> Message:
    """One update as a reply in the announcement's thread (broadcast when it resolves)."""
    url = incident_url(page_url, incident.number) if page_url else None
    head = f"{_emoji_for_update(incident, update)} *{status_label(update.status)}* · " + escape(
        _title(incident)
    )
    changes = [
        f"• {escape(c.name)}: {component_label(c.old_status)} → {component_label(c.new_status)}"
        for c in update.changes
    ]
    blocks: list[Block] = [_section("\n".join([head, *changes]), more=_read_more(url))]
    body = mrkdwn(update.body.strip())
    if body:
        blocks.append(_section(body, more=_read_more(url)))
    blocks.append(_context(when(update.display_at, tz)))
    text = f"#{incident.number} {escape(incident.title)}: {status_label(update.status)}"
    plain = " ".join(update.body.split())
    if plain:
        text += " · " + clip(escape(plain), FALLBACK_BODY)
    return _message(text, blocks)


def _emoji_for_update(incident: IncidentView, update: UpdateView) -> str:
    if update.status in _CLOSED_EMOJI:
        return _CLOSED_EMOJI[update.status]
    if incident.kind == "maintenance":
        return ":wrench:"
    return _IMPACT_EMOJI.get(incident.impact, ":white_circle:")


def component_change(payload: Mapping[str, Any], *, page_url: str | None = None) -> Message:
    """A component's state changed by hand: a plain message in the channel."""
    name = escape(str(payload.get("name") or "A component"))
    old = component_label(str(payload.get("old_status") or "operational"))
    new = component_label(str(payload.get("new_status") or "operational"))
    blocks: list[Block] = [_section(f"*{name}*: {old} → {new}")]
    body = mrkdwn(str(payload.get("message") or "").strip())
    if body:
        blocks.append(_section(body, more=_read_more(page_url)))
    if page_url:
        blocks.append(_context(f"<{_url(page_url.rstrip('/'))}/|View the status page>"))
    return _message(f"{name}: {old} → {new}", blocks)


def note(text: str, *, page_url: str | None = None) -> Message:
    """A short message of statusbot's own (a reminder), markdown allowed, user text escaped."""
    body = mrkdwn(text.strip()) or "…"
    return _message(escape(" ".join(text.split())), [_section(body, more=_read_more(page_url))])


_SLACK_USER = re.compile(r"[UW][A-Z0-9]+")


def internal_note(incident: IncidentView, body: str, *, author: str) -> Message:
    """An internal note in the announcement's thread, marked as never public."""
    who = f"<@{author}>" if _SLACK_USER.fullmatch(author) else escape(author)
    head = f":lock: *Internal note* · {escape(_title(incident))} · not on the status page"
    blocks: list[Block] = [
        _section(head),
        _section(mrkdwn(body.strip()) or "…"),
        _context(f"By {who}"),
    ]
    text = f"Internal note on #{incident.number}: " + clip(
        escape(" ".join(body.split())), FALLBACK_BODY
    )
    return _message(text, blocks)


def postmortem_reply(incident: IncidentView, *, page_url: str) -> Message:
    """A published postmortem, told in the announcement's thread with a link to it."""
    url = incident_url(page_url, incident.number)
    head = f":memo: *Postmortem published* · {escape(_title(incident))}"
    blocks: list[Block] = [_section(f"{head}\n<{_url(url)}#postmortem|Read it on the status page>")]
    return _message(f"Postmortem published: #{incident.number} {escape(incident.title)}", blocks)
