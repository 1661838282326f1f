"""`statusbot demo`: the example status page, replayed through the real commands.

Everything goes through the same use cases a commander would use, each at the
moment it happened, so the history, audit log and uptime are what they would
have been. The example's last day (Sep 24, 2017) becomes today in the page's
zone; times of day are kept.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.runtime import Runtime
from commands import component as components
from commands import incident as incidents
from commands import maintenance as maintenances
from commands import metrics as metric_commands
from commands.context import Context
from commands.errors import CommandError
from storage import components as component_store
from storage import metrics as metric_store
from storage.db import transaction
from storage.rules import ComponentStatus, IncidentStatus, MaintenanceStatus

DEMO_USER = "U0DEMO"
EXAMPLE_TODAY = date(2017, 9, 24)
EXAMPLE_START = date(2017, 3, 1)  # components existed long before the 90 days shown

GROUPS: list[tuple[str | None, list[tuple[str, str | None, bool]]]] = [
    (None, [("API", "Our REST API at api.example.com, used by the SDKs and integrations.", True)]),
    (
        "Email Processing",
        [
            ("Transactional emails", None, True),
            ("Behavioral emails", None, True),
            ("Newsletter emails", None, True),
        ],
    ),
    (
        "Web Interface",
        [
            (
                "Email reports and statistics",
                "Opens, clicks and delivery reports in the app.",
                False,
            ),
            ("Activity logs", "The per-customer event and activity timelines.", False),
        ],
    ),
    (
        "Backend Processing",
        [
            ("Imports and Exports", "CSV imports of customers and exports of reports.", False),
            ("Segment calcluation", None, False),
        ],
    ),
]

INCIDENT_TITLE = "Delays in segment calculation"
INCIDENT_UPDATES = [
    (
        date(2017, 9, 14),
        time(7, 24),
        IncidentStatus.INVESTIGATING,
        "We are currently experiencing delays in calculating some segments. We're investigating "
        "the root cause for this at this time.\n\nSegments are still calculating, but are taking "
        "significantly longer to do so. For some customers, this will cause delays in newsletter "
        "sends as newsletters force recalculations on segments.\n\nWe will keep you updated here. "
        "We have not previously seen such an acute occurrence of this issue and have added a new "
        "component above to reflect Vero's current status. Thanks.",
    ),
    (
        date(2017, 9, 14),
        time(14, 0),
        IncidentStatus.IDENTIFIED,
        "We have been investigating this issue over the past several hours.\n\nWe have not "
        "provided updates as we have only recently had concrete leads in this investigation.\n\n"
        "Firstly, to clarify, this issue has not affected **every** segment. This has made our "
        "investigation difficult, as our core metrics suggest that things are operating "
        "effectively. After much work, we've isolated that the segments affected are any "
        'segments that contain the "user has property" condition.\n\nOver the last 72 hours, '
        "the calculation time on these segments has been steadily increasing and has now "
        "reached an average calculation time of approximately four times the normal average. "
        "There are also significant outliers leading to long delays for some customers.\n\nWe "
        "believe we've found the root cause and are in the process of correcting this. We "
        "estimate it may take 12+ hours for these segments to be back to their normal "
        "calculation times.\n\nIn the interim, if you are sending **large** newsletters that use "
        "segments with these conditions we recommend that you:\n\n"
        "* Refresh the segments manually yourself prior to sending.\n"
        "* Email us at {email} and let us know which campaign this is / these are.\n"
        "* We will update our system so that the send goes out on time, as the segments have "
        "been pre-calculated.\n\nWe will provide another update once we start seeing good "
        "improvements in calculation speed. This may take several hours. We will update earlier "
        "if we have more information of course. We're going to leave this incident open until "
        "full resolution.\n\nThank you.",
    ),
    (
        date(2017, 9, 15),
        time(6, 56),
        IncidentStatus.RESOLVED,
        "Hi all, we're going to resolve this incident at this time.\n\nFor the last 10 hours we "
        "have observed our segment queries operating at their regular speeds. The changes we "
        "made worked effectively and rapidly.\n\nWe will continue to monitor proactively for the "
        "coming 24 hours.\n\nThis issue was hard to detect and, having found the cause, we have "
        "learnt from this case. In response to this incident we are setting up further "
        "monitoring to help alert us to another incident of this nature ahead of time.\n\nAgain, "
        "we apologise for the inconvenience causes. Have a great day.",
    ),
]

MAINTENANCE_TITLE = "Database maintenance and capacity upgrades"
MAINTENANCE_WINDOW = ((date(2017, 9, 16), time(10, 0)), (date(2017, 9, 18), time(0, 0)))
MAINTENANCE_UPDATES = [
    (
        date(2017, 9, 15),
        time(17, 48),
        MaintenanceStatus.SCHEDULED,
        "We will be performing a series of important maintenance tasks and capacity upgrades on "
        "our databases (commencing from Friday 8pm ET) across the weekend.\n\nThe aim of this "
        "maintenance is to improve our systems performance and will also help prevent any "
        "recurrence of an incident earlier this week that resulted in delays in segment "
        "calculation.\n\nThis maintenance work will not delay any email sends or impact system "
        "performance, however there may be some intermittent delays for events or user "
        "properties tracked during the maintenance period being made available for inclusion in "
        "segment calculations.\n\nIf you have any questions or concerns, please email us at "
        "{email}",
    ),
    (
        date(2017, 9, 16),
        time(10, 2),
        MaintenanceStatus.IN_PROGRESS,
        "Our maintenance work is starting now, we will post updates periodically during this "
        "time.\n\nIf you have any questions or concerns, please email us at {email}",
    ),
    (
        date(2017, 9, 17),
        time(3, 12),
        MaintenanceStatus.VERIFYING,
        "Our maintenance tasks and capacity upgrades have successfully completed, we are running "
        "some further verification tests over the next day.",
    ),
    (
        date(2017, 9, 18),
        time(0, 13),
        MaintenanceStatus.COMPLETED,
        "All work related to this scheduled maintenance has now been completed.",
    ),
]


def shifted(day: date, at: time, *, today: date, tz: ZoneInfo) -> datetime:
    """An example moment moved so that the example's last day is `today`, time of day kept."""
    moved = day + (today - EXAMPLE_TODAY)
    return datetime.combine(moved, at, tzinfo=tz)


def load_demo(runtime: Runtime) -> list[str]:
    """Load the example page into an empty database; returns what was done, line by line."""
    settings = runtime.settings
    tz = settings.tz
    now = runtime.clock()
    today = now.astimezone(tz).date()
    email = settings.support_email or "support@example.com"
    with transaction(runtime.factory) as session:
        if component_store.live(session):
            raise CommandError(
                "This database already has components; the demo loads into an empty one. "
                "Run `statusbot demo --reset` to wipe it first, or point DATABASE_URL elsewhere."
            )
    done: list[str] = []

    def ctx_at(moment: datetime) -> Context:
        return replace(
            runtime.system_context(DEMO_USER),
            now=min(moment, now),
            notify_channels=(),
            tell_subscribers=False,
        )

    def at(day: date, clock: time) -> datetime:
        return shifted(day, clock, today=today, tz=tz)

    start_day = EXAMPLE_START + (today - EXAMPLE_TODAY)
    created = at(EXAMPLE_START, time(9, 0))
    with transaction(runtime.factory) as session:
        for group, members in GROUPS:
            for name, description, showcase in members:
                result = components.add_component(
                    session,
                    ctx_at(created),
                    name=name,
                    group=group,
                    description=description,
                    showcase=showcase,
                    start_date=start_day,
                )
                done.append(result.reply)

    with transaction(runtime.factory) as session:
        segment = next(c for c in component_store.live(session) if c.name == "Segment calcluation")
        first = True
        number = 0
        for day, clock, status, body in INCIDENT_UPDATES:
            ctx = ctx_at(at(day, clock))
            text = body.format(email=email)
            if first:
                result = incidents.open_incident(
                    session,
                    ctx,
                    title=INCIDENT_TITLE,
                    message=text,
                    status=status,
                    components=[(segment, ComponentStatus.DEGRADED)],
                )
                number = result.number or 0
                first = False
            elif status is IncidentStatus.RESOLVED:
                result = incidents.resolve_incident(session, ctx, number=number, message=text)
            else:
                result = incidents.update_incident(
                    session, ctx, number=number, message=text, status=status
                )
            done.append(result.reply)

    with transaction(runtime.factory) as session:
        live = component_store.live(session)
        affected = [c for c in live if c.name in ("Imports and Exports", "Segment calcluation")]
        (start_d, start_t), (end_d, end_t) = MAINTENANCE_WINDOW
        number = 0
        for day, clock, mstatus, body in MAINTENANCE_UPDATES:
            ctx = ctx_at(at(day, clock))
            text = body.format(email=email)
            if mstatus is MaintenanceStatus.SCHEDULED:
                result = maintenances.schedule_maintenance(
                    session,
                    ctx,
                    title=MAINTENANCE_TITLE,
                    start=at(start_d, start_t),
                    end=at(end_d, end_t),
                    components=affected,
                    message=text,
                )
                number = result.number or 0
            else:
                verb = {
                    MaintenanceStatus.IN_PROGRESS: "start",
                    MaintenanceStatus.COMPLETED: "complete",
                }.get(mstatus, "update")
                result = maintenances.move_maintenance(
                    session, ctx, number=number, status=mstatus, message=text, verb=verb
                )
            done.append(result.reply)

    done.append(load_demo_metric(runtime))
    return done


METRIC_NAME = "API Response Times"
METRIC_STEP = timedelta(minutes=5)
METRIC_DAYS = 30


def load_demo_metric(runtime: Runtime) -> str:
    """The example's "API Response Times" chart: 30 days of plausible per-5-minute points."""
    now = runtime.clock()
    tz = runtime.settings.tz
    step = int(METRIC_STEP.total_seconds())
    last = datetime.fromtimestamp(int(now.timestamp()) // step * step, UTC)
    count = int(timedelta(days=METRIC_DAYS) / METRIC_STEP)
    # Seeded, so the demo page is the same every time it is loaded for the same day.
    rng = random.Random(EXAMPLE_TODAY.toordinal())
    points = []
    for k in range(count, -1, -1):
        at = last - k * METRIC_STEP
        hour = at.astimezone(tz).hour + at.astimezone(tz).minute / 60
        # Busier (slower) in the local working day, quickest before dawn.
        daily = 18 * math.sin((hour - 9) / 24 * 2 * math.pi)
        value = 82 + daily + rng.gauss(0, 6)
        if rng.random() < 0.004:
            value += rng.uniform(80, 250)  # the occasional slow spike
        points.append((at, round(max(value, 20.0), 1)))
    with transaction(runtime.factory) as session:
        ctx = replace(runtime.system_context(DEMO_USER), notify_channels=(), tell_subscribers=False)
        result = metric_commands.add_metric(
            session,
            ctx,
            name=METRIC_NAME,
            unit="ms",
            description="Median response time of the public API, measured every 5 minutes.",
        )
        metric = metric_store.by_name(session, METRIC_NAME)
        assert metric is not None  # just added
        metric_store.add_points(session, metric, points)
    return f"{result.reply} {len(points):,} points over {METRIC_DAYS} days."
