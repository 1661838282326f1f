"""Every word statusbot says to a person, in one place so it stays consistent.

Usage lines follow SPEC §3; each command's `help` prints its block below.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from storage.escaping import escape
from storage.rules import COMPONENT_LABELS, STATUS_LABELS, ComponentStatus

MAX_MESSAGE = 3000
MAX_POSTMORTEM = 20000
MAX_TITLE = 200
MAX_NAME = 200  # components, groups and metrics
MAX_DESCRIPTION = 1000
MAX_UNIT = 20
MAX_EMAIL = 254  # RFC 5321's limit on a forward path
MAX_URL = 2048  # what browsers and most servers accept in a request line


def webhook_refused(reason: str) -> str:
    """Why a webhook URL was not taken: statusbot only calls public addresses."""
    return (
        f"statusbot can't send webhooks there: {escape(reason.rstrip('.'))}. Give a URL on "
        "the public "
        "internet (statusbot never calls loopback, private or link-local addresses)."
    )


SHOWN_SUBSCRIBERS = 50  # a Slack reply lists this many; the CLI export gives them all

NOT_AN_EDITOR = (
    "Sorry, {who} may not {action}: only the editors set in STATUSBOT_EDITORS can change the "
    "status page. Ask one of them, or an admin to add you. You can still use list, show, help "
    "and /status."
)
SLACK_UNANSWERED = (
    "Sorry, {who} may not {action} right now: statusbot couldn't ask Slack who is in the user "
    "groups of STATUSBOT_EDITORS (Slack did not answer), so nothing was changed. Please try "
    "again in a minute; if it keeps happening, statusbot's log says why. You can still use "
    "list, show, help and /status."
)

STATE_WORDS = "ok, degraded, partial, major (or down, outage), maintenance"

USAGE: dict[str, str] = {
    "incident open": (
        "/incident open TITLE... [--impact none|minor|major|critical] "
        "[--status investigating|identified|monitoring] [--components NAME=STATE,...] "
        "[--at WHEN] [--draft] [--template NAME] [--silent] [-- MESSAGE]"
    ),
    "incident update": (
        "/incident update ID [--status S] [--components NAME=STATE,...] [--impact I] "
        "[--at WHEN] [--silent] -- MESSAGE"
    ),
    "incident resolve": "/incident resolve ID [--at WHEN] [--silent] [-- MESSAGE]",
    "incident reopen": "/incident reopen ID [--silent] [-- MESSAGE]",
    "incident edit": (
        "/incident edit ID --title NEW TITLE\n/incident edit ID --update N -- NEW TEXT"
    ),
    "incident note": "/incident note ID -- TEXT",
    "incident publish": "/incident publish ID [--silent] [-- MESSAGE]",
    "incident discard": "/incident discard ID",
    "incident postmortem": (
        "/incident postmortem ID -- MARKDOWN\n/incident postmortem ID --publish [--notify]\n"
        "/incident postmortem ID --revert"
    ),
    "incident list": "/incident list",
    "incident show": "/incident show ID",
    "maintenance schedule": (
        "/maintenance schedule TITLE... --start WHEN --end WHEN [--components NAME,...] "
        "[--no-auto] [--silent] [-- MESSAGE]"
    ),
    "maintenance update": (
        "/maintenance update ID [--status scheduled|in_progress|verifying|completed] "
        "[--silent] -- MESSAGE"
    ),
    "maintenance start": "/maintenance start ID [--silent] [-- MESSAGE]",
    "maintenance complete": "/maintenance complete ID [--silent] [-- MESSAGE]",
    "maintenance cancel": "/maintenance cancel ID [--silent] [-- MESSAGE]",
    "maintenance list": "/maintenance list",
    "maintenance show": "/maintenance show ID",
    "component set": "/component set NAME STATE [-- MESSAGE]",
    "component add": (
        "/component add NAME [--group G] [--description D] [--position N] "
        "[--showcase | --no-showcase] [--start-date DATE]"
    ),
    "component rename": "/component rename NAME --to NEW NAME",
    "component remove": "/component remove NAME",
    "component list": "/component list",
    "status": "/status",
    "template add": (
        "/template add NAME --title TITLE [--status investigating|identified|monitoring] "
        "[--components NAME=STATE,...] [-- MESSAGE]"
    ),
    "template list": "/template list",
    "template show": "/template show NAME",
    "template remove": "/template remove NAME",
    "subscribers count": "/subscribers count",
    "subscribers list": "/subscribers list [--components NAME,...]",
    "subscribers show": "/subscribers show ID",
    "subscribers add": "/subscribers add EMAIL [--components NAME,...]",
    "subscribers add-webhook": (
        "/subscribers add-webhook URL --email EMAIL [--components NAME,...]"
    ),
    "subscribers remove": "/subscribers remove EMAIL|ID",
}


NOTES: dict[str, str] = {
    "incident": (
        "ID is 12 or #12. STATE is " + STATE_WORDS + ". A component is named by its name "
        "(any case) or Group/Name. WHEN is like '2026-12-01 20:00', 'Fri 8pm ET', "
        "'tomorrow 03:00 AEST', 'in 2h', '2h ago' or 'now'; --at backfills and may not be "
        "in the future. Everything after a lone -- is the message (markdown allowed, up to "
        f"{MAX_MESSAGE} characters). --silent changes the page without telling the Slack "
        "channels or subscribers. /incident with no text opens a form in Slack. "
        "note posts an internal note in the announcement's thread: it is audited and never "
        "shown on the status page, its feeds or JSON, nor sent to subscribers. "
        "--draft opens a draft: announced in Slack marked DRAFT, and nothing of it (its "
        "component states included) public or sent to subscribers until publish, which makes "
        "it public as if opened then (MESSAGE replaces its first message); discard drops it. "
        "list shows drafts to editors. postmortem saves a postmortem (markdown, up to "
        f"{MAX_POSTMORTEM:,} characters) as a draft that only editors see in show; --publish "
        "puts it on the incident's page and in its JSON, --notify tells subscribers (once), "
        "--revert takes it off the page again."
    ),
    "maintenance": (
        "ID is 12 or #12. WHEN is like '2026-12-01 20:00', 'Fri 8pm ET' or 'in 2h'. "
        "Components go under maintenance while it is in progress and return to their "
        "previous states when it completes. With --no-auto it does not start or complete by "
        "itself. --silent changes the page without telling the Slack channels or subscribers."
    ),
    "component": (
        "STATE is " + STATE_WORDS + ". A component is named by its name (any case) or "
        "Group/Name; quote names with spaces in add and rename, e.g. "
        '/component add "Newsletter emails" --group "Email Processing".'
    ),
    "status": "Shows the overall status, open incidents, upcoming maintenance and the page link.",
    "template": (
        "Templates are starting points for incidents. NAME is one word (letters, digits, - _ .). "
        "STATE is " + STATE_WORDS + ". /incident open --template NAME [TITLE...] "
        "[--components ...] [-- MORE] opens one: a TITLE replaces the template's, named "
        "components override its states and MORE follows its message. The declare form "
        "(/incident with no text) has a template picker. Anyone may list and show them; "
        "editors add and remove them."
    ),
    "subscribers": (
        "Customers told by email or webhook when something changes (editors only). ID is a "
        "subscriber's id from list. An address added here still gets a confirmation email and "
        "hears nothing else until it is confirmed. Without --components a subscriber follows "
        "everything. show gives a webhook's signing secret. "
        "The CLI adds `statusbot subscribers import FILE.csv` and `export`."
    ),
}

NO_TEMPLATES = (
    "No templates yet. Add one with /template add NAME --title TITLE [--components "
    "NAME=STATE,...] -- MESSAGE."
)
DRAFTED = (
    "Drafted incident #{number} {title}: it is in Slack only, marked DRAFT; the status page "
    "and subscribers see nothing of it (its component states included) until "
    "/incident publish {number} [-- MESSAGE], or /incident discard {number}."
)
PUBLISHED = "Published #{number} {title}: it is on the status page now, opened as of now."
PUBLISHED_TOLD = " The channels and subscribers are told."
DISCARDED = "Discarded draft #{number} {title}: it never reached the status page."
DRAFTS_HEADING = "Drafts (editors only; not on the status page):"

POSTMORTEM_SAVED = (
    "Saved the postmortem of #{number} as a draft: only editors see it (/incident show "
    "{number}). Publish it with /incident postmortem {number} --publish [--notify]."
)
POSTMORTEM_UPDATED = (
    "Saved the postmortem of #{number}. It is published, so the status page shows the new text."
)
POSTMORTEM_PUBLISHED = "Published the postmortem of #{number} on its page and in its JSON."
POSTMORTEM_TOLD = " Subscribers are told."
POSTMORTEM_TOLD_BEFORE = " Subscribers were told already, on {when}; they are not told again."
POSTMORTEM_REVERTED = "Took the postmortem of #{number} off the status page; it is a draft again."
POSTMORTEM_HEADING = "Postmortem ({state}):"

NOTES_HEADING = "Internal notes (never on the status page):"
NOTE_WHERE = " Posted in the announcement's thread, marked internal."
DRAFT_FIRST = (
    "#{number} is a draft: publish it first with /incident publish {number} [-- MESSAGE], "
    "or discard it with /incident discard {number}."
)

NOT_ANNOUNCED = " Not announced (notify off): neither the Slack channels nor subscribers are told."


def help_text(command: str) -> str:
    """The help block of one slash command: every usage line, then notes."""
    lines = [u for key, u in USAGE.items() if key == command or key.startswith(command + " ")]
    return "\n".join(lines) + ("\n\n" + NOTES[command] if command in NOTES else "")


def when(at: datetime, tz: ZoneInfo) -> str:
    """A time as the page shows it: 'Sep 15, 06:56 AEST'."""
    local = at.astimezone(tz)
    return f"{local:%b} {local.day}, {local:%H:%M} {local.tzname()}"


def status_label(status: str) -> str:
    """'in_progress' → 'In progress'."""
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def component_label(status: str) -> str:
    """'partial_outage' → 'Partial Outage'."""
    return COMPONENT_LABELS[ComponentStatus(status)]


def quote(title: str) -> str:
    """A title in quotes, escaped: replies are Slack mrkdwn (storage/escaping.py)."""
    return f"“{escape(title)}”"


def plain_quote(title: str) -> str:
    """A title in quotes, unescaped: for a reminder's text, which its renderer escapes."""
    return f"“{title}”"


_SLACK_ID = re.compile(r"[UW][A-Z0-9]+")


def mention(user: str) -> str:
    """A Slack user as a mention (`<@U1>`); anything else (a shell user) as escaped text."""
    return f"<@{user}>" if _SLACK_ID.fullmatch(user) else escape(user)


# --- where subscribers are told (SPEC §9): why an address or a webhook URL is refused -----
# One rule each (commands/addresses.py, commands/endpoints.py) for Slack, the CLI, CSV
# import, the sign-up page and every delivery; these are their words.
EMAIL_MISSING = "Give an email address, e.g. ops@example.com."
EMAIL_TOO_LONG = "That email address is too long: {length:,} characters, and the most is {limit:,}."
EMAIL_BAD = "That is not an email address: {why}"
ENDPOINT_MISSING = "Give the webhook's URL, e.g. https://hooks.example.com/status."
ENDPOINT_TOO_LONG = (
    "That webhook URL is too long: {length:,} characters, and the most is {limit:,}."
)
ENDPOINT_SPACES = "A webhook URL can't contain spaces or control characters."
ENDPOINT_NOT_HTTP = (
    "A webhook URL starts with https:// (or http://) and names a host, "
    "e.g. https://hooks.example.com/status."
)
ENDPOINT_CREDENTIALS = (
    "A webhook URL can't carry a user name or password (user:pass@host); statusbot signs "
    "every delivery (Standard Webhooks) with the subscription's secret, so the receiver "
    "checks that instead."
)
ENDPOINT_NO_ADDRESS = "The host of {url!r} has no address ({error}); check the URL."
ENDPOINT_PRIVATE = (
    "The host of {url!r} is at {address}, a {why} address; statusbot sends webhooks only to "
    "public internet addresses (an administrator can allow private ones with "
    "STATUSBOT_WEBHOOK_ALLOW_PRIVATE=1)."
)
WEBHOOK_REDIRECT = (
    "{url} answered HTTP {status}, a redirect{to}; webhooks are not redirected: change the "
    "subscription's URL to the final one."
)
WEBHOOK_STATUS = "{url} answered HTTP {status}{detail}; a webhook needs a 2xx answer."
WEBHOOK_UNREACHABLE = "{url} could not be reached: {error}"
WEBHOOK_NOT_SUBSCRIBED = "not sent: the webhook subscriber {code} is no longer subscribed"
WEBHOOK_NOTHING = "not sent: what the notification was about no longer exists"

# Signing up from the page (commands/signup.py): shown on the page's reply, so plain text.
SIGNUP_NO_ENDPOINT = "Enter the webhook URL, or choose to be told by email."
SIGNUP_BAD_KIND = "Choose to be told by email or by webhook."
SIGNUP_UNKNOWN_COMPONENTS = (
    "The page has no component {codes}: choose among the components listed on the form."
)
SIGNUP_TOO_MANY = (
    "Too many sign-ups from your address just now. Please try again in {minutes} minute(s)."
)
