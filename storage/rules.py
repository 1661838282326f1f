"""Rules that are facts about the data: statuses, transitions, impact and rollup.

Everything here is pure: no session, no I/O, so the commands, the renderers and
the scheduler all agree on one definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded_performance"
    PARTIAL = "partial_outage"
    MAJOR = "major_outage"
    MAINTENANCE = "under_maintenance"


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Impact(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    MAINTENANCE = "maintenance"


class Kind(StrEnum):
    INCIDENT = "incident"
    MAINTENANCE = "maintenance"


class Cause(StrEnum):
    INCIDENT = "incident"
    MAINTENANCE = "maintenance"
    MANUAL = "manual"


# How bad a component state is, for "worst of" rollups. Maintenance ranks
# below every outage: a group with one component down and one in maintenance
# is down.
SEVERITY: dict[ComponentStatus, int] = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.MAINTENANCE: 1,
    ComponentStatus.DEGRADED: 2,
    ComponentStatus.PARTIAL: 3,
    ComponentStatus.MAJOR: 4,
}

IMPACT_RANK: dict[Impact, int] = {
    Impact.NONE: 0,
    Impact.MAINTENANCE: 1,
    Impact.MINOR: 2,
    Impact.MAJOR: 3,
    Impact.CRITICAL: 4,
}

# Statuspage's display names, used on the page and in Slack.
COMPONENT_LABELS: dict[ComponentStatus, str] = {
    ComponentStatus.OPERATIONAL: "Operational",
    ComponentStatus.DEGRADED: "Degraded Performance",
    ComponentStatus.PARTIAL: "Partial Outage",
    ComponentStatus.MAJOR: "Major Outage",
    ComponentStatus.MAINTENANCE: "Under Maintenance",
}

STATUS_LABELS: dict[str, str] = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
    "scheduled": "Scheduled",
    "in_progress": "In progress",
    "verifying": "Verifying",
    "completed": "Completed",
    "cancelled": "Cancelled",
}

INCIDENT_ORDER = list(IncidentStatus)
MAINTENANCE_FLOW = [
    MaintenanceStatus.SCHEDULED,
    MaintenanceStatus.IN_PROGRESS,
    MaintenanceStatus.VERIFYING,
    MaintenanceStatus.COMPLETED,
]


def is_closed(kind: Kind, status: str) -> bool:
    """Whether an incident or maintenance is over (resolved, completed, cancelled)."""
    if kind is Kind.INCIDENT:
        return status == IncidentStatus.RESOLVED
    return status in (MaintenanceStatus.COMPLETED, MaintenanceStatus.CANCELLED)


def incident_transition_allowed(old: str, new: str) -> bool:
    """Any forward or backward step, except out of resolved (that takes `reopen`)."""
    return IncidentStatus(old) is not IncidentStatus.RESOLVED or new == IncidentStatus.RESOLVED


# Where a maintenance may go from each status (staying put is always allowed: an
# update that only adds a message). A maintenance that never started can't
# complete; it is cancelled instead. Verifying may step back to in progress (the
# check failed). Nothing leaves completed or cancelled.
_MAINTENANCE_MOVES: dict[MaintenanceStatus, frozenset[MaintenanceStatus]] = {
    MaintenanceStatus.SCHEDULED: frozenset(
        {MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.CANCELLED}
    ),
    MaintenanceStatus.IN_PROGRESS: frozenset(
        {MaintenanceStatus.VERIFYING, MaintenanceStatus.COMPLETED, MaintenanceStatus.CANCELLED}
    ),
    MaintenanceStatus.VERIFYING: frozenset(
        {MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.COMPLETED, MaintenanceStatus.CANCELLED}
    ),
    MaintenanceStatus.COMPLETED: frozenset(),
    MaintenanceStatus.CANCELLED: frozenset(),
}


def maintenance_transition_allowed(old: str, new: str) -> bool:
    """scheduled → in_progress → verifying → completed, or cancelled before it is over."""
    before, after = MaintenanceStatus(old), MaintenanceStatus(new)
    return before is after or after in _MAINTENANCE_MOVES[before]


def worst(statuses: Iterable[str]) -> ComponentStatus:
    """The worst of some component states; operational when there are none."""
    return max(
        (ComponentStatus(s) for s in statuses),
        key=SEVERITY.__getitem__,
        default=ComponentStatus.OPERATIONAL,
    )


def impact_for(statuses: Iterable[str]) -> Impact:
    """The impact an incident has when its commander did not set one."""
    w = worst(statuses)
    return {
        ComponentStatus.OPERATIONAL: Impact.NONE,
        ComponentStatus.MAINTENANCE: Impact.NONE,
        ComponentStatus.DEGRADED: Impact.MINOR,
        ComponentStatus.PARTIAL: Impact.MAJOR,
        ComponentStatus.MAJOR: Impact.CRITICAL,
    }[w]


@dataclass(frozen=True, slots=True)
class PageStatus:
    """Statuspage's `status` object: an indicator and its description."""

    indicator: str  # none | minor | major | critical | maintenance
    description: str


ALL_OK = PageStatus("none", "All Systems Operational")


def page_status(components: Iterable[str], open_incident_impacts: Iterable[str] = ()) -> PageStatus:
    """Statuspage's overall rollup of component states and unresolved incidents.

    The component side follows Statuspage: the worst state, blended with the
    share of components in it (one component down is a partial outage of the
    system, all of them is a major one). An unresolved incident never leaves the
    page at "All Systems Operational": its impact raises the indicator, and an
    incident with no impact still shows as degraded.
    """
    states = [ComponentStatus(s) for s in components]
    n = len(states)
    w = worst(states)
    every = n > 0 and all(s is w for s in states)
    by_components: PageStatus
    if w is ComponentStatus.OPERATIONAL:
        by_components = ALL_OK
    elif w is ComponentStatus.MAINTENANCE:
        by_components = PageStatus("maintenance", "Service Under Maintenance")
    elif w is ComponentStatus.DEGRADED:
        by_components = PageStatus(
            "minor", "Degraded System Service" if every else "Partially Degraded Service"
        )
    elif w is ComponentStatus.PARTIAL:
        by_components = (
            PageStatus("major", "Partial System Outage")
            if every
            else PageStatus("minor", "Minor Service Outage")
        )
    else:
        by_components = (
            PageStatus("critical", "Major System Outage")
            if every
            else PageStatus("major", "Partial System Outage")
        )

    impacts = [Impact(i) for i in open_incident_impacts if i != Impact.MAINTENANCE]
    if not impacts:
        return by_components
    top = max(impacts, key=IMPACT_RANK.__getitem__)
    by_incident = {
        Impact.NONE: PageStatus("minor", "Partially Degraded Service"),
        Impact.MINOR: PageStatus("minor", "Partially Degraded Service"),
        Impact.MAJOR: PageStatus("major", "Partial System Outage"),
        Impact.CRITICAL: PageStatus("critical", "Major System Outage"),
    }[top]
    if _indicator_rank(by_incident.indicator) > _indicator_rank(by_components.indicator):
        return by_incident
    return by_components


def _indicator_rank(indicator: str) -> int:
    return ["none", "maintenance", "minor", "major", "critical"].index(indicator)
