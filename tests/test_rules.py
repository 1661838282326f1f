"""The rules that are facts about the data: transitions, worst-of, impact, page rollup."""

from __future__ import annotations

from itertools import pairwise, product

import pytest

from storage.rules import (
    ALL_OK,
    COMPONENT_LABELS,
    IMPACT_RANK,
    SEVERITY,
    STATUS_LABELS,
    ComponentStatus,
    Impact,
    IncidentStatus,
    Kind,
    MaintenanceStatus,
    PageStatus,
    impact_for,
    incident_transition_allowed,
    is_closed,
    maintenance_transition_allowed,
    page_status,
    worst,
)

OK = ComponentStatus.OPERATIONAL
DEGRADED = ComponentStatus.DEGRADED
PARTIAL = ComponentStatus.PARTIAL
MAJOR = ComponentStatus.MAJOR
MAINT = ComponentStatus.MAINTENANCE

INV = IncidentStatus.INVESTIGATING
IDENT = IncidentStatus.IDENTIFIED
MON = IncidentStatus.MONITORING
RES = IncidentStatus.RESOLVED

SCHED = MaintenanceStatus.SCHEDULED
PROG = MaintenanceStatus.IN_PROGRESS
VERIF = MaintenanceStatus.VERIFYING
DONE = MaintenanceStatus.COMPLETED
CANC = MaintenanceStatus.CANCELLED


# --- tables cover every value ---------------------------------------------------


def test_every_status_has_a_severity_and_a_label() -> None:
    assert set(SEVERITY) == set(ComponentStatus)
    assert set(COMPONENT_LABELS) == set(ComponentStatus)
    assert sorted(SEVERITY.values()) == list(range(len(ComponentStatus)))
    assert set(STATUS_LABELS) == {*IncidentStatus, *MaintenanceStatus}
    assert set(IMPACT_RANK) == set(Impact)


def test_severity_order() -> None:
    # Maintenance is worse than operational and better than any trouble.
    assert [s for s in sorted(SEVERITY, key=SEVERITY.__getitem__)] == [
        OK,
        MAINT,
        DEGRADED,
        PARTIAL,
        MAJOR,
    ]


# --- is_closed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "closed"),
    [
        (Kind.INCIDENT, INV, False),
        (Kind.INCIDENT, IDENT, False),
        (Kind.INCIDENT, MON, False),
        (Kind.INCIDENT, RES, True),
        (Kind.MAINTENANCE, SCHED, False),
        (Kind.MAINTENANCE, PROG, False),
        (Kind.MAINTENANCE, VERIF, False),
        (Kind.MAINTENANCE, DONE, True),
        (Kind.MAINTENANCE, CANC, True),
        # Plain strings, as the model columns hold them.
        (Kind.INCIDENT, "resolved", True),
        (Kind.MAINTENANCE, "cancelled", True),
        (Kind.MAINTENANCE, "in_progress", False),
    ],
)
def test_is_closed(kind: Kind, status: str, closed: bool) -> None:
    assert is_closed(kind, status) is closed


# --- incident transitions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (old, new)
        for old, new in product(IncidentStatus, IncidentStatus)
        if old is not RES or new is RES
    ],
)
def test_incident_any_step_is_allowed_while_open(old: IncidentStatus, new: IncidentStatus) -> None:
    # Forward, backward, skipping, staying put; and resolved -> resolved is no step out.
    assert incident_transition_allowed(old, new)


@pytest.mark.parametrize("new", [INV, IDENT, MON])
def test_incident_cannot_leave_resolved(new: IncidentStatus) -> None:
    assert not incident_transition_allowed(RES, new)


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (INV, MON, True),  # skip forward
        (MON, INV, True),  # step back: it came back
        (INV, RES, True),  # straight to resolved
        (IDENT, IDENT, True),
        (RES, INV, False),  # that takes /incident reopen
        (RES, RES, True),
    ],
)
def test_incident_transitions_examples(
    old: IncidentStatus, new: IncidentStatus, allowed: bool
) -> None:
    assert incident_transition_allowed(old, new) is allowed


# --- maintenance transitions ---------------------------------------------------------

# Rows: from; columns: to, in the order SCHED, PROG, VERIF, DONE, CANC.
MAINTENANCE_TABLE = {
    SCHED: (True, True, False, False, True),
    PROG: (False, True, True, True, True),
    VERIF: (False, True, True, True, True),
    DONE: (False, False, False, True, False),
    CANC: (False, False, False, False, True),
}


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (old, new, row[i])
        for old, row in MAINTENANCE_TABLE.items()
        for i, new in enumerate((SCHED, PROG, VERIF, DONE, CANC))
    ],
)
def test_maintenance_transitions(
    old: MaintenanceStatus, new: MaintenanceStatus, allowed: bool
) -> None:
    assert maintenance_transition_allowed(old, new) is allowed


@pytest.mark.parametrize(
    ("components", "impacts", "indicator"),
    [
        (["operational", "operational"], [], "none"),
        (["degraded_performance", "operational"], [], "minor"),
        (["operational"], ["maintenance"], "none"),
        (["operational"], ["major"], "major"),
    ],
)
def test_page_status_takes_plain_strings_from_the_database(
    components: list[str], impacts: list[str], indicator: str
) -> None:
    assert page_status(components, impacts).indicator == indicator


def test_resolved_as_plain_string_still_needs_reopen() -> None:
    assert not incident_transition_allowed("resolved", "investigating")


def test_maintenance_flow_in_order() -> None:
    flow = [SCHED, PROG, VERIF, DONE]
    for old, new in pairwise(flow):
        assert maintenance_transition_allowed(old, new)


def test_maintenance_verifying_may_step_back_to_in_progress_only() -> None:
    assert maintenance_transition_allowed(VERIF, PROG)
    assert not maintenance_transition_allowed(VERIF, SCHED)
    assert not maintenance_transition_allowed(PROG, SCHED)


def test_nothing_leaves_completed_or_cancelled() -> None:
    for old in (DONE, CANC):
        for new in MaintenanceStatus:
            assert maintenance_transition_allowed(old, new) is (new is old)


# --- worst ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], OK),
        ([OK], OK),
        ([OK, OK], OK),
        ([OK, MAINT], MAINT),
        ([MAINT, DEGRADED], DEGRADED),  # maintenance ranks below any trouble
        ([MAINT, MAJOR, OK], MAJOR),  # a group with one down and one in maintenance is down
        ([DEGRADED, PARTIAL], PARTIAL),
        ([PARTIAL, MAJOR, DEGRADED], MAJOR),
        ([MAJOR], MAJOR),
    ],
)
def test_worst(statuses: list[ComponentStatus], expected: ComponentStatus) -> None:
    assert worst(statuses) is expected
    assert worst(iter(statuses)) is expected  # any iterable, read once


# --- impact_for ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Impact.NONE),
        ([OK], Impact.NONE),
        ([MAINT], Impact.NONE),
        ([OK, DEGRADED], Impact.MINOR),
        ([DEGRADED, MAINT], Impact.MINOR),
        ([PARTIAL, DEGRADED], Impact.MAJOR),
        ([MAJOR], Impact.CRITICAL),
        ([OK, PARTIAL, MAJOR], Impact.CRITICAL),
    ],
)
def test_impact_for(statuses: list[ComponentStatus], expected: Impact) -> None:
    assert impact_for(statuses) is expected


# --- page_status: components only ----------------------------------------------------------


@pytest.mark.parametrize(
    ("components", "indicator", "description"),
    [
        ([], "none", "All Systems Operational"),
        ([OK], "none", "All Systems Operational"),
        ([OK, OK, OK], "none", "All Systems Operational"),
        ([OK, MAINT], "maintenance", "Service Under Maintenance"),
        ([MAINT, MAINT], "maintenance", "Service Under Maintenance"),
        ([OK, DEGRADED], "minor", "Partially Degraded Service"),
        ([MAINT, DEGRADED], "minor", "Partially Degraded Service"),
        ([DEGRADED, DEGRADED], "minor", "Degraded System Service"),
        ([DEGRADED], "minor", "Degraded System Service"),
        ([OK, PARTIAL], "minor", "Minor Service Outage"),
        ([DEGRADED, PARTIAL], "minor", "Minor Service Outage"),
        ([PARTIAL, PARTIAL], "major", "Partial System Outage"),
        ([OK, MAJOR], "major", "Partial System Outage"),
        ([PARTIAL, MAJOR, MAINT], "major", "Partial System Outage"),
        ([MAJOR, MAJOR], "critical", "Major System Outage"),
        ([MAJOR], "critical", "Major System Outage"),
    ],
)
def test_page_status_from_components(
    components: list[ComponentStatus], indicator: str, description: str
) -> None:
    assert page_status(components) == PageStatus(indicator, description)
    assert page_status(iter(components)) == PageStatus(indicator, description)


def test_all_operational_is_the_shared_constant() -> None:
    assert page_status([OK, OK]) == ALL_OK
    assert (ALL_OK.indicator, ALL_OK.description) == ("none", "All Systems Operational")


# --- page_status: unresolved incidents ---------------------------------------------------------


@pytest.mark.parametrize(
    ("impact", "indicator", "description"),
    [
        (Impact.NONE, "minor", "Partially Degraded Service"),
        (Impact.MINOR, "minor", "Partially Degraded Service"),
        (Impact.MAJOR, "major", "Partial System Outage"),
        (Impact.CRITICAL, "critical", "Major System Outage"),
    ],
)
def test_an_unresolved_incident_is_never_all_systems_operational(
    impact: Impact, indicator: str, description: str
) -> None:
    result = page_status([OK, OK], [impact])
    assert result != ALL_OK
    assert result.description != "All Systems Operational"
    assert result == PageStatus(indicator, description)


def test_the_worst_open_incident_sets_the_banner() -> None:
    result = page_status([OK], [Impact.MINOR, Impact.CRITICAL, Impact.NONE])
    assert result == PageStatus("critical", "Major System Outage")
    assert page_status([OK], iter([Impact.MAJOR])) == PageStatus("major", "Partial System Outage")


def test_maintenance_impacts_are_ignored() -> None:
    assert page_status([OK, OK], [Impact.MAINTENANCE]) == ALL_OK
    assert page_status([OK, MAINT], [Impact.MAINTENANCE]) == PageStatus(
        "maintenance", "Service Under Maintenance"
    )
    # Alongside a real incident, the maintenance does not count either way.
    assert page_status([OK], [Impact.MAINTENANCE, Impact.MINOR]) == PageStatus(
        "minor", "Partially Degraded Service"
    )


def test_incident_outranks_maintenance_on_the_page() -> None:
    assert page_status([OK, MAINT], [Impact.NONE]) == PageStatus(
        "minor", "Partially Degraded Service"
    )


def test_components_win_when_they_are_worse_than_the_incidents() -> None:
    assert page_status([MAJOR, MAJOR], [Impact.MINOR]) == PageStatus(
        "critical", "Major System Outage"
    )
    assert page_status([OK, MAJOR], [Impact.NONE]) == PageStatus("major", "Partial System Outage")


def test_incidents_win_when_they_are_worse_than_the_components() -> None:
    assert page_status([OK, DEGRADED], [Impact.CRITICAL]) == PageStatus(
        "critical", "Major System Outage"
    )
    assert page_status([PARTIAL, OK], [Impact.MAJOR]) == PageStatus(
        "major", "Partial System Outage"
    )


def test_on_a_tie_the_components_describe_the_page() -> None:
    # Both say "minor": the component wording, which is more specific, stays.
    assert page_status([OK, PARTIAL], [Impact.MINOR]) == PageStatus("minor", "Minor Service Outage")
    assert page_status([DEGRADED], [Impact.NONE]) == PageStatus("minor", "Degraded System Service")


def test_incident_with_no_components_on_the_page() -> None:
    assert page_status([], [Impact.NONE]) == PageStatus("minor", "Partially Degraded Service")
