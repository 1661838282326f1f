"""What a Statuspage import did (or, dry, would do): a tally per kind of thing, the
steps it skipped and what it noticed, as the summary `statusbot import` prints and
the one audit event of the run records (commands/importer.py fills it in)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

# The kinds of thing an import makes, in the order the summary lists them.
ORDER = (
    "groups",
    "components",
    "incidents",
    "maintenances",
    "updates",
    "history",
    "subscribers",
    "templates",
    "postmortems",
)


@dataclass
class Tally:
    """How many of one kind of thing a run added, changed and found as they were."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def count(self, *, new: bool, changed: bool) -> None:
        if new:
            self.added += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


@dataclass
class ImportReport:
    """What a run did (or, dry, would do), kind by kind, and what it noticed."""

    source: str
    page_id: str
    tallies: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(t.added or t.updated for t in self.tallies.values())

    def lines(self) -> list[str]:
        """The summary, a line per kind, then the skipped steps and the notes."""
        order = {k: n for n, k in enumerate(ORDER)}
        out = [
            f"{kind}: {t.added:,} added, {t.updated:,} updated, {t.unchanged:,} unchanged"
            for kind, t in sorted(self.tallies.items(), key=lambda kv: order.get(kv[0], 99))
        ]
        out.extend(self.skipped)
        if self.notes:
            out.append("Noticed on the way (each handled as said):")
            out.extend(f"  {line}" for line in self.notes)
        return out

    def audit(self) -> dict[str, object]:
        return {
            "source": self.source[:200],
            "page_id": self.page_id,
            **{k: [t.added, t.updated, t.unchanged] for k, t in self.tallies.items()},
        }
