"""Benchmark: how long the slash-command splitter takes on pathological input.

    python bench/tokens.py [--runs 5] [--limit 1.0]

Each input is 100,000 characters or so, built to make a quadratic or
backtracking splitter choke (tests/test_tokens.py checks what they split
into). It prints the slowest of --runs for each, and exits 1 when any is over
--limit seconds (default 1 s; Slack sends at most a few thousand characters).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.errors import CommandError
from tests.test_tokens import LONG_INPUTS, split


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=float, default=1.0)
    args = parser.parse_args()
    worst_all = 0.0
    for text in LONG_INPUTS:
        worst = 0.0
        for _ in range(args.runs):
            started = time.perf_counter()
            with contextlib.suppress(CommandError):
                split(text)
            worst = max(worst, time.perf_counter() - started)
        worst_all = max(worst_all, worst)
        print(f"{text[:12]!r:<18} {len(text):>8,} chars  {worst * 1000:8.1f} ms")
    print(f"slowest: {worst_all * 1000:.1f} ms (limit {args.limit * 1000:.0f} ms)")
    return 0 if worst_all <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
