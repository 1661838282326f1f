"""Frozen snapshot values built by hand, for the renderer tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage.snapshot import AffectedView, ChangeView, ComponentView, UpdateView, affected_view


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
    return affected_view(c, c.group_code)
