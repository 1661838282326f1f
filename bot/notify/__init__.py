"""Telling subscribers: the fan-out, email and webhook deliverers on the shared outbox.

Two ways to run them:

- `start(runtime, senders)`: in threads (bot.delivery_worker.DeliveryWorker): the
  fan-out poked after every change, the senders by the fan-out when it gives them
  work, and all of them every few seconds; `serve` and `clock` do this (bot/serve.py
  `start_delivery`).
- `run_pending(runtime, senders)`: once, now, in this thread; the shell and
  `statusbot run` do this after each command, so what a command sends is printed
  (or sent) before the next prompt.

`senders(runtime)` is the list of email and webhook senders this process uses
(bot.notify.worker.Sender); each is run by an OutboxDeliverer on its own kind's lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from bot.notify.fanout import FanOut
from bot.notify.worker import OutboxDeliverer, Sender

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# How many passes run_pending makes at most: a bound, so a sender that keeps
# answering "retry now" cannot hold the shell's prompt forever.
MAX_PASSES = 1000


def senders(runtime: Runtime, *, printing: TextIO | None = None) -> list[Sender]:
    """The email and webhook senders of this process.

    Webhooks always (they need no settings).
    Email goes over SMTP when STATUSBOT_SMTP_URL is set. Without it, `printing` (the
    shell's and `run`'s output) gets what would be sent; a server without it logs once
    that email is off and leaves the mail in the outbox for when SMTP is configured.
    """
    from bot.notify.email import email_sender
    from bot.notify.webhook import webhook_sender

    found: list[Sender] = [webhook_sender(runtime)]
    if runtime.settings.smtp_url or printing is not None:
        found.append(email_sender(runtime, stream=printing))
    else:
        log.info("Email is off: set STATUSBOT_SMTP_URL to mail subscribers")
    return found


def run_pending(runtime: Runtime, senders: Sequence[Sender]) -> dict[str, int]:
    """Fan out what is pending, then run each sender until nothing is due; how many
    entries each kind delivered ("fanout", "email", "webhook").

    Synchronous, in the caller's thread: the shell and `statusbot run` call it after
    each command. The email sender that prints "would send" when SMTP is off plugs
    in here as one of `senders`, so the shell shows what each command would mail.
    """
    done = {"fanout": _drain(FanOut(runtime.factory, clock=runtime.clock).deliver_pending)}
    for sender in senders:
        deliverer = OutboxDeliverer(runtime.factory, sender, clock=runtime.clock)
        done[sender.kind] = done.get(sender.kind, 0) + _drain(deliverer.deliver_pending)
    return done


def start(runtime: Runtime, senders: Sequence[Sender]) -> list[Callable[[], object]]:
    """The fan-out and one worker per sender in threads; their stoppers. Runs whether
    or not Slack is configured."""
    from bot.delivery_worker import DeliveryWorker

    workers = [
        DeliveryWorker(
            OutboxDeliverer(runtime.factory, s),
            name=f"{s.kind}-delivery",
            # A batch must finish inside the worker's lease: a sender that waits on
            # slow peers (webhooks, 30 s each at worst) says how many it takes at once.
            batch=getattr(s, "batch", 50),
            # Slack's worker rests as long as it worked, to leave the acks their core;
            # a sender may rest less (email: ten thousand mails are waited for).
            rest_ratio=getattr(s, "rest_ratio", 1.0),
        )
        for s in senders
    ]

    def poke_senders() -> None:
        for worker in workers:
            worker.poke()

    fanout = DeliveryWorker(FanOut(runtime.factory, on_expanded=poke_senders), name="fanout")
    # A change pokes the fan-out only: the senders' lines come from its expansions,
    # which poke them. What else writes to their lines (a confirmation mail, a
    # failing webhook's notice) waits at most for their next look (`interval`), as a
    # sign-up from the page always has. Poking them on every change ran an empty
    # pass of each, a transaction in the writers' queue, up to 20 times a second.
    runtime.after_change.append(fanout.poke)
    stoppers: list[Callable[[], object]] = []
    for worker in [fanout, *workers]:
        stoppers.append(worker.start().stop)
    return stoppers


def _drain(deliver_pending: Callable[[int], int]) -> int:
    total = 0
    for _ in range(MAX_PASSES):
        done = deliver_pending(200)
        total += done
        if not done:
            break
    return total
