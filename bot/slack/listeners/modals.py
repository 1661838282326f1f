"""The incident modals: opening them, and their submissions ending in the incident use cases.

"Declare incident" → `open_incident`, "Post update" → `update_incident` (and
`edit_title` when the title was changed), "Resolve" → `resolve_incident`. A
bad field comes back as `response_action: errors` on its block and nothing is
written; the reply goes to the person through the response_url of the command
or button that opened the modal.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from slack_bolt import Ack, App, BoltContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.slack.gateway import SlackError
from bot.slack.listeners.services import Services, services_of
from commands import dispatch, notes, templates, textrules, words
from commands import incident as incidents
from commands.common import authorise
from commands.context import Context
from commands.errors import CommandError
from commands.result import Result
from renderers import slack_modals as ui
from storage import components as component_store
from storage import incidents as incident_store
from storage import templates as template_store
from storage.models import Component
from storage.rules import ComponentStatus, Impact, IncidentStatus, Kind
from storage.snapshot import incident_view

log = logging.getLogger(__name__)

# The longest error Slack shows comfortably under a field.
MAX_ERROR = 300

NOT_OPENED = (
    "Slack did not open the form ({error}). Try again, or type the command instead, e.g. "
    "/incident open TITLE --components NAME=STATE -- MESSAGE."
)
NOT_SAVED = "Your form was not saved: {reason}"
NOT_FILLED = (
    "Slack did not fill the form from the template ({error}). Pick it again, or type "
    "/incident open --template NAME."
)
# Links to Slack messages only (chat.getPermalink's answer, or one built like it).
_PERMALINK = re.compile(
    r"https://[a-z0-9-]+(\.enterprise)?\.slack\.com/archives/[A-Z0-9]+/p\d+(\?\S*)?"
)
REMOVED = "This component was removed after the form was opened."
NOT_OFFERED = "That {what} is not one this form offers; choose one from the list."

_STATUSES = frozenset(IncidentStatus)
_IMPACTS = frozenset((ui.AUTO, *ui.IMPACTS))
_COMPONENT_STATES = frozenset(ComponentStatus)

Change = Callable[[Session, Context], Result]


def register(app: App) -> None:
    """Listen for the modals' submissions."""
    app.view(ui.DECLARE)(on_declare)
    app.view(ui.UPDATE)(on_update)
    app.view(ui.RESOLVE)(on_resolve)
    app.view(ui.NOTE)(on_note)


# --- opening -------------------------------------------------------------------------------


def open_declare(
    services: Services,
    user: str,
    trigger_id: str,
    response_url: str | None,
    *,
    prefill: ui.Prefill | None = None,
) -> None:
    """Open "Declare incident" for an editor (prefilled from a Slack message, say);
    tell anyone else why not."""
    ctx = services.context(user)
    refusal = refused(services, ctx, action="incident.open", target="new incident")
    if refusal is not None:
        services.respond(response_url, refusal)
        return
    with services.runtime.factory() as session:
        choices = component_choices(session)
        offered = template_choices(session)
    source = prefill.source_link if prefill else None
    view = ui.declare_incident_modal(
        choices,
        metadata=_metadata(None, response_url, source),
        templates=offered,
        prefill=prefill,
    )
    _open(services, trigger_id, view, response_url)


def template_choices(session: Session) -> list[ui.TemplateChoice]:
    """Every template, as the declare form's picker offers them."""
    return [
        ui.TemplateChoice(code=t.code, name=t.name, title=t.title)
        for t in template_store.every(session)
    ]


def fill_from_template(services: Services, body: dict[str, Any]) -> None:
    """A template picked in an open declare form: the form again, filled from it
    (views.update, keeping what the form carries in its metadata)."""
    view = body.get("view") if isinstance(body.get("view"), dict) else None
    actions = body.get("actions") or [{}]
    picked = _option_value((actions[0] or {}).get("selected_option"))
    if view is None or picked is None or view.get("callback_id") != ui.DECLARE:
        return
    meta = read_metadata(view)
    with services.runtime.factory() as session:
        template = template_store.by_code(session, picked)
        if template is None:
            return
        start = templates.start_of(session, template)
        choices = component_choices(session)
        offered = template_choices(session)
    prefill = ui.Prefill(
        title=start.title,
        status=start.status.value,
        components={c.code: state.value for c, state in start.components},
        message=start.body,
        template=picked,
        source_link=meta.source_link,
        version=secrets.token_hex(4),
    )
    filled = ui.declare_incident_modal(
        choices,
        metadata=str(view.get("private_metadata") or ""),
        templates=offered,
        prefill=prefill,
    )
    try:
        services.gateway.update_view(
            str(view.get("id") or ""), filled, hash=str(view.get("hash") or "") or None
        )
    except SlackError as error:
        log.warning("views.update failed: %s", error)
        services.respond(meta.response_url, NOT_FILLED.format(error=error.error))


IncidentForm = Literal["update", "resolve", "note"]
_FORM_ACTIONS: dict[str, str] = {
    "update": "incident.update",
    "resolve": "incident.resolve",
    "note": "incident.note",
}


def open_incident_modal(
    services: Services,
    user: str,
    trigger_id: str,
    number: int,
    response_url: str | None,
    *,
    form: IncidentForm,
) -> None:
    """Open "Post update", "Resolve" or "Add note" for incident `number`, prefilled."""
    ctx = services.context(user)
    refusal = refused(services, ctx, action=_FORM_ACTIONS[form], target=f"#{number}")
    if refusal is not None:
        services.respond(response_url, refusal)
        return
    with services.runtime.factory() as session:
        found = incident_store.get(session, number=number)
        if found is None or found.kind != Kind.INCIDENT or found.discarded_at is not None:
            services.respond(response_url, f"There is no incident #{number} any more.")
            return
        if found.draft and form != "note":
            services.respond(response_url, words.DRAFT_FIRST.format(number=number))
            return
        view_of = incident_view(found)
        choices = component_choices(session)
    if form == "resolve" and view_of.closed:
        services.respond(response_url, f"#{number} is already resolved.")
        return
    metadata = _metadata(number, response_url)
    if form == "resolve":
        view = ui.resolve_modal(view_of, metadata=metadata)
    elif form == "note":
        view = ui.note_modal(view_of, metadata=metadata)
    else:
        view = ui.post_update_modal(view_of, choices, metadata=metadata)
    _open(services, trigger_id, view, response_url)


def component_choices(session: Session) -> list[ui.ComponentChoice]:
    """Every live component as the modals offer it, in page order."""
    return [
        ui.ComponentChoice(
            code=c.code,
            name=f"{c.group.name}/{c.name}" if c.group else c.name,
            status=c.status,
        )
        for c in component_store.live(session)
    ]


def refused(services: Services, ctx: Context, *, action: str, target: str) -> str | None:
    """The refusal (audited) when `ctx.actor` may not change things, else None."""

    def check(_session: Session) -> Result:
        authorise(ctx, action=action, target=target)
        return Result(reply="")

    result = dispatch.run(
        services.runtime.factory, ctx, check, what="a Slack form", note={"via": "slack form"}
    )
    return None if result.ok else result.reply


def _open(
    services: Services, trigger_id: str, view: dict[str, Any], response_url: str | None
) -> None:
    try:
        services.gateway.open_view(trigger_id, view)
    except SlackError as error:
        log.warning("views.open failed: %s", error)
        services.respond(response_url, NOT_OPENED.format(error=error.error))


def _metadata(number: int | None, response_url: str | None, source_link: str | None = None) -> str:
    data: dict[str, Any] = {"response_url": response_url or ""}
    if number is not None:
        data["number"] = number
    if source_link:
        data["source"] = source_link
    return json.dumps(data)


@dataclass(frozen=True, slots=True)
class Metadata:
    """What a modal carries from its opening to its submission."""

    number: int | None = None
    response_url: str | None = None
    source_link: str | None = None  # the Slack message the incident is declared from


def read_metadata(view: dict[str, Any]) -> Metadata:
    """The modal's private_metadata; empty when missing or garbled."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return Metadata()
    if not isinstance(data, dict):
        return Metadata()
    number = data.get("number")
    url = data.get("response_url")
    source = data.get("source")
    return Metadata(
        number=number if isinstance(number, int) else None,
        response_url=url if isinstance(url, str) and url else None,
        source_link=source if isinstance(source, str) and _PERMALINK.match(source) else None,
    )


# --- reading a submission ------------------------------------------------------------------


@dataclass
class Form:
    """A submitted modal's fields; `errors` maps block ids to what is wrong with them."""

    title: str = ""
    status: str | None = None
    impact: Impact | None = None
    components: list[tuple[str, ComponentStatus, str]] = field(default_factory=list)
    message: str | None = None
    notify: bool = True
    draft: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, str] = field(default_factory=dict)  # block id → as the form has it


def read_form(view: dict[str, Any], *, message_required: bool = False, what: str = "") -> Form:
    """The fields of any of the three modals, checked by the text rules every path
    follows (commands.textrules); errors keyed by block id."""
    # Slack sends what the form offered; anything else (a forged or garbled payload,
    # checked by its signature but not by its shape) is an error on its block.
    state = view.get("state")
    given_values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(given_values, dict):
        given_values = {}
    # A prefilled form's block ids carry a version (ui.block_of): read them without it,
    # and put errors back under the ids the form has.
    values = {ui.block_of(str(k)): v for k, v in given_values.items()}
    actual = {ui.block_of(str(k)): str(k) for k in given_values}

    def element(block: str) -> dict[str, Any]:
        entry = values.get(block)
        found = entry.get(ui.VALUE) if isinstance(entry, dict) else None
        return found if isinstance(found, dict) else {}

    def selected(block: str) -> str | None:
        return _option_value(element(block).get("selected_option"))

    form = Form()
    if ui.TITLE in values:
        given = str(element(ui.TITLE).get("value") or "")
        form.title = textrules.tidy(given, textrules.TITLE)
        wrong = textrules.problem(given, textrules.TITLE)
        if wrong is not None:
            form.errors[ui.TITLE] = wrong
        elif not form.title:
            form.errors[ui.TITLE] = "Give the incident a title."
    form.status = selected(ui.STATUS)
    if form.status is not None and form.status not in _STATUSES:
        form.errors[ui.STATUS] = NOT_OFFERED.format(what="status")
    impact = selected(ui.IMPACT)
    if impact is not None and impact not in _IMPACTS:
        form.errors[ui.IMPACT] = NOT_OFFERED.format(what="impact")
    elif impact and impact != ui.AUTO:
        form.impact = Impact(impact)
    for block in values:
        if isinstance(block, str) and block.startswith(ui.COMPONENT):
            chosen_state = _state(form, block, selected(block))
            if chosen_state is not None:
                code = block.removeprefix(ui.COMPONENT)
                form.components.append((code, chosen_state, block))
    if ui.COMPONENTS in values:
        options = element(ui.COMPONENTS).get("selected_options")
        chosen = [_option_value(o) for o in options] if isinstance(options, list) else []
        picked = _state(form, ui.COMPONENTS_STATE, selected(ui.COMPONENTS_STATE))
        if None in chosen:
            form.errors[ui.COMPONENTS] = NOT_OFFERED.format(what="component")
        elif chosen and picked is None and ui.COMPONENTS_STATE not in form.errors:
            form.errors[ui.COMPONENTS_STATE] = "Choose the state of the components you picked."
        elif chosen and picked is not None:
            for chosen_code in chosen:
                form.components.append((str(chosen_code), picked, ui.COMPONENTS))
    given = str(element(ui.MESSAGE).get("value") or "")
    message = textrules.tidy(given, textrules.MESSAGE)
    form.message = message or None
    wrong = textrules.problem(given, textrules.MESSAGE)
    if wrong is not None:
        form.errors[ui.MESSAGE] = wrong
    elif message_required and not message:
        form.errors[ui.MESSAGE] = (
            f"Write {what}." if what else "Write the update: what changed, and what happens next."
        )
    if ui.NOTIFY in values:
        form.notify = bool(element(ui.NOTIFY).get("selected_options"))
    if ui.DRAFT in values:
        form.draft = bool(element(ui.DRAFT).get("selected_options"))
    form.blocks = actual
    form.errors = {actual.get(k, k): v for k, v in form.errors.items()}
    return form


def _option_value(option: object) -> str | None:
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) else None


def _state(form: Form, block: str, value: str | None) -> ComponentStatus | None:
    """A component select's state; None for "no change" (or an error on its block)."""
    if value is None or value == ui.UNCHANGED:
        return None
    if value not in _COMPONENT_STATES:
        form.errors[block] = NOT_OFFERED.format(what="state")
        return None
    return ComponentStatus(value)


class FieldError(CommandError):
    """Bad input that belongs to one field of the form."""

    def __init__(self, message: str, block: str) -> None:
        super().__init__(message, field=block)
        self.block = block


def _components(
    session: Session, form: Form, *, only_changes: bool
) -> list[tuple[Component, ComponentStatus]]:
    codes = [code for code, _, _ in form.components]
    found = {
        c.code: c
        for c in session.scalars(
            select(Component).where(Component.code.in_(codes), Component.removed_at.is_(None))
        )
    }
    pairs: list[tuple[Component, ComponentStatus]] = []
    for code, state, block in form.components:
        component = found.get(code)
        if component is None:
            raise FieldError(REMOVED, block)
        if only_changes and component.status == state:
            continue
        pairs.append((component, state))
    return pairs


# --- the use cases -------------------------------------------------------------------------


def declare(form: Form, source_link: str | None = None) -> Change:
    """The "Declare incident" submission as a use-case call."""

    def change(session: Session, ctx: Context) -> Result:
        return incidents.open_incident(
            session,
            ctx,
            title=form.title,
            message=form.message,
            status=IncidentStatus(form.status or IncidentStatus.INVESTIGATING),
            impact=form.impact,
            components=_components(session, form, only_changes=False),
            notify=form.notify,
            draft=form.draft,
            source_link=source_link,
        )

    return change


def post_update(form: Form, number: int) -> Change:
    """The "Post update" submission: a new title if it changed, then the update."""

    def change(session: Session, ctx: Context) -> Result:
        usage = words.USAGE["incident update"]
        incident = incidents.get_incident(session, number, usage)
        renamed: Result | None = None
        if form.title and form.title != incident.title:
            renamed = incidents.edit_title(session, ctx, number=number, title=form.title)
        impact = form.impact if form.impact is not None and form.impact != incident.impact else None
        updated = incidents.update_incident(
            session,
            ctx,
            number=number,
            message=form.message,
            status=IncidentStatus(form.status) if form.status else None,
            impact=impact,
            components=_components(session, form, only_changes=True),
            notify=form.notify,
        )
        if renamed is None:
            return updated
        return Result(
            reply=renamed.reply + " " + updated.reply,
            changed=True,
            notices=renamed.notices + updated.notices,
            number=number,
        )

    return change


def resolve(form: Form, number: int) -> Change:
    """The "Resolve" submission."""

    def change(session: Session, ctx: Context) -> Result:
        return incidents.resolve_incident(
            session, ctx, number=number, message=form.message, notify=form.notify
        )

    return change


@dataclass(frozen=True, slots=True)
class Outcome:
    """A submission's result, and the block an error belongs to (None: the default one)."""

    result: Result
    block: str | None = None


def apply(services: Services, user: str, change: Change) -> Outcome:
    """Run one use case the way every command runs (commands.dispatch.run)."""
    ctx = services.context(user)
    result = dispatch.run(
        services.runtime.factory,
        ctx,
        lambda session: change(session, ctx),
        what="a Slack form",
        note={"via": "slack form"},
        usage=False,
    )
    if result.ok:
        services.changed(result)
    return Outcome(result, result.field)


# --- the listeners -------------------------------------------------------------------------


def on_declare(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Submission of "Declare incident"."""
    form = read_form(view)
    _submit(
        ack,
        body,
        view,
        context,
        form,
        lambda meta: declare(form, meta.source_link),
        default_block=ui.TITLE,
    )


def on_update(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Submission of "Post update"."""
    form = read_form(view, message_required=True)
    _submit(
        ack, body, view, context, form, lambda meta: post_update(form, _number(meta)), ui.MESSAGE
    )


def on_resolve(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Submission of "Resolve"."""
    form = read_form(view)
    _submit(ack, body, view, context, form, lambda meta: resolve(form, _number(meta)), ui.MESSAGE)


def on_note(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """Submission of "Add note"."""
    form = read_form(view, message_required=True, what="the note")
    _submit(ack, body, view, context, form, lambda meta: note(form, _number(meta)), ui.MESSAGE)


def note(form: Form, number: int) -> Change:
    """The "Add note" submission."""

    def change(session: Session, ctx: Context) -> Result:
        return notes.add_note(session, ctx, number=number, text=form.message)

    return change


def _number(meta: Metadata) -> int:
    if meta.number is None:
        raise CommandError("This form lost track of its incident; open it again.")
    return meta.number


def _submit(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    context: BoltContext,
    form: Form,
    make: Callable[[Metadata], Change],
    default_block: str,
) -> None:
    if form.errors:
        ack(response_action="errors", errors=form.errors)
        return
    services = services_of(context)
    meta = read_metadata(view)
    user = str((body.get("user") or {}).get("id") or "")

    def work() -> Outcome:
        try:
            change = make(meta)
        except CommandError as error:
            return Outcome(Result(ok=False, reply=error.message))
        return apply(services, user, change)

    def late(outcome: Outcome) -> None:
        reply = outcome.result.reply
        services.respond(
            meta.response_url, reply if outcome.result.ok else NOT_SAVED.format(reason=reply)
        )

    outcome = services.within_deadline(work, late=late, response_url=meta.response_url)
    if outcome is None:
        ack()  # closes the modal; the outcome follows through the response_url
        return
    if not outcome.result.ok:
        block = outcome.block or default_block
        block = form.blocks.get(block, block)
        ack(response_action="errors", errors={block: _short(outcome.result.reply)})
        return
    ack()
    reply = outcome.result.reply
    services.start(lambda: services.respond(meta.response_url, reply), response_url=None)


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"
