"""What a benchmark's figures were measured on: the machine's load and its speed.

This VM's speed moves by a factor of three to four from one period to the next
(the same code took 3 ms of CPU a command in one and 15 ms in another), so every
benchmark prints a reference figure beside its own: the CPU time one core takes
for a fixed pure-Python loop. Figures are comparable across runs when that
reference is; divide by it to compare runs made in different periods.
"""

from __future__ import annotations

import os
import time

LOOP = 10_000_000


def reference_seconds(rounds: int = 3) -> float:
    """CPU seconds (the best of `rounds`) for LOOP integer additions in a Python loop."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for n in range(LOOP):
            total += n
        best = min(best, time.process_time() - started)
    return best


def describe() -> str:
    """One line: the CPUs, the load average and the speed reference."""
    one, five, _ = os.getloadavg()
    return (
        f"   machine: {os.cpu_count()} CPUs, load average {one:.1f} (5 min {five:.1f}); "
        f"speed reference {reference_seconds():.2f} s CPU ({LOOP:,} additions in Python)"
    )
