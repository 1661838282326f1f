"""What statusbot counts for its operators, in Prometheus's terms (prometheus_client).

Every process counts as it goes: commands by name and outcome, the Slack ack's
latency, publish durations, deliveries and their retries, Slack's 429s. The
outbox's backlog and its oldest pending entry per kind are read from the
database when Prometheus scrapes (`OutboxCollector`), so they are right however
many processes deliver.

Under gunicorn each worker and the background process is a process of its own:
`use_multiprocess_dir` (called by `statusbot serve` before it forks) puts
prometheus_client in its multi-process mode, where each process writes its
counts to files in PROMETHEUS_MULTIPROC_DIR and a scrape sums them
(`registry`). The metrics are built on first use, after that choice is made.

Nothing is exposed unless STATUSBOT_METRICS=on (GET /metrics on the web port)
or STATUSBOT_METRICS_PORT is set (a port of its own); see bot/http/prometheus.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from storage import outbox

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Acks are wanted within tens of milliseconds (Slack gives up after 3 s).
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
PUBLISH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Instruments:
    commands: Counter
    ack: Histogram
    publish: Histogram
    deliveries: Counter
    rate_limited: Counter


_built: Instruments | None = None
_building = threading.Lock()


def instruments() -> Instruments:
    """This process's metrics, built on first use (after the multi-process choice).

    Once per process, under a lock: a worker's first commands arrive on several
    threads at once, and a second build would register every metric twice
    (prometheus_client's DuplicateTimeseries, which failed those commands).
    """
    global _built
    if _built is None:
        with _building:
            if _built is None:
                _built = _build()
    return _built


def _build() -> Instruments:
    return Instruments(
        commands=Counter(
            "statusbot_commands",
            "Commands run, by command and outcome (ok, refused, error).",
            ["command", "outcome"],
        ),
        ack=Histogram(
            "statusbot_slack_ack_seconds",
            "Time from a Slack request's arrival to statusbot's answer (the ack).",
            buckets=ACK_BUCKETS,
        ),
        publish=Histogram(
            "statusbot_publish_seconds",
            "Time one publish of the page took (snapshot, render, write).",
            buckets=PUBLISH_BUCKETS,
        ),
        deliveries=Counter(
            "statusbot_deliveries",
            "Outbox entries handled, by kind and outcome (delivered, retried, failed).",
            ["kind", "outcome"],
        ),
        rate_limited=Counter(
            "statusbot_slack_rate_limited",
            "Slack's 429 answers, by Web API method.",
            ["method"],
        ),
    )


def count_command(command: str, outcome: str) -> None:
    """One command run (`outcome`: ok, refused or error)."""
    instruments().commands.labels(command=command or "?", outcome=outcome).inc()


def count_delivery(kind: str, outcome: str) -> None:
    """One outbox entry delivered, put back for a retry, or given up on."""
    instruments().deliveries.labels(kind=kind, outcome=outcome).inc()


def count_rate_limited(method: str) -> None:
    instruments().rate_limited.labels(method=method).inc()


def use_multiprocess_dir(path: str | None = None) -> str:
    """Count in files shared by this process's children (gunicorn's workers); the folder.

    Without a folder (PROMETHEUS_MULTIPROC_DIR unset) a private one is made. What
    an earlier run left there is removed: its counts are not this run's.
    """
    folder = path or os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="statusbot-prom-")
    Path(folder).mkdir(parents=True, exist_ok=True)
    for old in Path(folder).glob("*.db"):
        old.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = folder
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    global _built
    with _building:
        _built = None  # built again on first use, counting in the folder
    return folder


def forget_process(pid: int) -> None:
    """A worker ended: gunicorn's child_exit hook (its counters stay in the sum)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def remove_multiprocess_dir(folder: str) -> None:
    """A private folder made by `use_multiprocess_dir`, removed when serve stops."""
    if Path(folder).name.startswith("statusbot-prom-"):
        shutil.rmtree(folder, ignore_errors=True)


class OutboxCollector(Collector):
    """The outbox's backlog and its oldest pending entry's age per kind, read at scrape."""

    def __init__(self, factory: sessionmaker[Session], clock: Any) -> None:
        self.factory = factory
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = GaugeMetricFamily(
            "statusbot_outbox_pending",
            "Outbox entries not yet delivered nor given up on, by kind.",
            labels=["kind"],
        )
        oldest = GaugeMetricFamily(
            "statusbot_outbox_oldest_pending_seconds",
            "Age of the oldest outbox entry still pending, by kind (0: none pending).",
            labels=["kind"],
        )
        now: datetime = self.clock()
        with self.factory() as session:
            found = outbox.backlog(session)
        for kind in outbox.KINDS:
            count, since = found.get(kind, (0, None))
            backlog.add_metric([kind], count)
            oldest.add_metric([kind], (now - since).total_seconds() if since else 0.0)
        yield backlog
        yield oldest


def registry(factory: sessionmaker[Session], clock: Any) -> CollectorRegistry:
    """What a scrape reads: every process's counts (or this one's), and the outbox."""
    if os.environ.get(MULTIPROC_ENV):
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        instruments()  # registered in the default registry when built
        scrape = CollectorRegistry()
        scrape.register(_Forward(REGISTRY))
    scrape.register(OutboxCollector(factory, clock))
    return scrape


class _Forward(Collector):
    """Another registry's metrics, collected as part of this one."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        yield from self.source.collect()
