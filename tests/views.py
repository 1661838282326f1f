"""Frozen snapshot values built by hand, for the renderer tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage.snapshot import AffectedView, ChangeView, ComponentView, UpdateView


def update(
    code: str, status: str, body: str, at: datetime, changes: Sequence[ChangeView] = ()
) -> UpdateView:
    """An update shown at `at`, posted and last edited then too."""
    return UpdateView(
        code=code,
        status=status,
        body=body,
        display_at=at,
        created_at=at,
        updated_at=at,
        deliver_notifications=True,
        changes=tuple(changes),
    )


def affected(c: ComponentView) -> AffectedView:
    """A component as an incident that affects it shows it."""
    return AffectedView(
        code=c.code,
        name=c.name,
        status=c.status,
        group_code=c.group_code,
        position=c.position,
        showcase=c.showcase,
        description=c.description,
        created_at=c.created_at,
        updated_at=c.updated_at,
        start_date=c.start_date,
    )
