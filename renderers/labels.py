"""Words the page shows for a status, an uptime and a duration (renderers/html.py and
renderers/uptime_strips.py)."""

from __future__ import annotations

from storage.rules import COMPONENT_LABELS, STATUS_LABELS, ComponentStatus


def component_label(status: str) -> str:
    """'partial_outage' → 'Partial Outage'."""
    try:
        return COMPONENT_LABELS[ComponentStatus(status)]
    except ValueError:
        return status.replace("_", " ").title()


def status_label(status: str) -> str:
    """'in_progress' → 'In progress'."""
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def uptime_text(uptime: float | None) -> str:
    """'99.99 % uptime', never rounded up to 100 while anything was down."""
    if uptime is None:
        return "No data"
    if uptime >= 1:
        return "100.0 % uptime"
    hundredths = int(uptime * 10_000)  # floor: 99.996 % shows as 99.99 %
    return f"{hundredths // 100}.{hundredths % 100:02d} % uptime"


def minutes_text(minutes: int) -> str:
    """'45 min', '2 h 5 min', '3 h'."""
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
