"""Where the browser tests find Chromium: one answer for tests/test_browser.py and .ci/run.

`python -m tests.browser_path` prints the path and exits 0, or says what to
install and exits 1 (so .ci/run installs it only when the tests would not find it).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

# Debian's package installs `chromium`; other distributions name it `chromium-browser`.
NAMES = ("chromium", "chromium-browser")
HINT = "Chromium not found: apt-get install chromium (or set CHROMIUM to its path)"


def find_chromium(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The Chromium to drive: $CHROMIUM when set (and runnable), else the first on PATH."""
    named = environ.get("CHROMIUM")
    if named:
        path = Path(named)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for name in NAMES:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return Path(found)
    return None


def main() -> int:
    """Print where Chromium is, or what to do about its absence."""
    found = find_chromium()
    if found is None:
        print(HINT, file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
