"""One Slack deliverer in a process of its own, for tests/test_slack_pacing.py.

    python -m tests.deliverer_process DATABASE_URL SLACK_API_URL SECONDS

Delivers the outbox with Slack's pacing and its lane threads, as `statusbot
serve` does, until nothing is pending or SECONDS pass; prints how many entries
it delivered.
"""

from __future__ import annotations

import sys
import time
from zoneinfo import ZoneInfo

from bot.slack.delivery import THREADS, Deliverer
from bot.slack.gateway import SlackGateway
from bot.slack.pacing import Pacer
from storage import outbox
from storage.db import make_engine, make_sessionmaker


def main(url: str, api_url: str, seconds: float) -> int:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    deliverer = Deliverer(
        factory,
        SlackGateway("xoxb-test", base_url=api_url),
        page_url="https://status.example.com",
        tz=ZoneInfo("UTC"),
        pacer=Pacer(),
        threads=THREADS,
    )
    delivered = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        delivered += deliverer.deliver_pending()
        with factory() as session:
            left = outbox.pending(session, limit=1)
        if not left:
            break
        time.sleep(min(0.5, deliverer.next_wake() or 0.05))
    deliverer.close()
    engine.dispose()
    print(delivered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
