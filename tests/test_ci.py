"""Under CI the suite fails, rather than skips, when PostgreSQL or Chromium is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser_path import find_chromium

ROOT = Path(__file__).resolve().parent.parent


def python(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in the project, with these variables changed (None: unset)."""
    environ = {k: v for k, v in os.environ.items() if k not in env}
    environ.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def pytest_run(**env: str | None) -> subprocess.CompletedProcess[str]:
    """Collect one small test module in a fresh pytest session."""
    return python(
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only"),
        "tests/test_architecture.py",
        **env,
    )


def test_ci_without_postgresql_fails_the_session() -> None:
    done = pytest_run(CI="true", TEST_DATABASE_URL=None, CHROMIUM=sys.executable)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "CI=true, but TEST_DATABASE_URL is not set" in done.stdout + done.stderr
    assert "Chromium" not in done.stdout + done.stderr


def test_ci_with_an_unreachable_postgresql_fails_the_session() -> None:
    done = pytest_run(
        CI="true",
        TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:1/test",
        CHROMIUM=sys.executable,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "TEST_DATABASE_URL can't be reached" in done.stdout + done.stderr


def test_ci_without_chromium_fails_the_session(tmp_path: Path) -> None:
    done = pytest_run(CI="true", CHROMIUM=str(tmp_path / "no-chromium"))
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "Chromium not found: apt-get install chromium" in done.stdout + done.stderr
    assert "the browser tests would not run" in done.stdout + done.stderr


def test_outside_ci_missing_tools_only_skip(tmp_path: Path) -> None:
    done = pytest_run(CI=None, TEST_DATABASE_URL=None, CHROMIUM=str(tmp_path / "no-chromium"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tests collected" in done.stdout


def test_chromium_is_found_as_ci_finds_it(tmp_path: Path) -> None:
    runnable = tmp_path / "chromium"
    runnable.write_text("#!/bin/sh\n")
    runnable.chmod(0o755)
    assert find_chromium({"PATH": str(tmp_path)}) == runnable
    assert find_chromium({"CHROMIUM": str(runnable), "PATH": ""}) == runnable
    assert find_chromium({"CHROMIUM": str(tmp_path / "missing"), "PATH": str(tmp_path)}) is None
    assert find_chromium({"PATH": str(tmp_path / "empty")}) is None
    # .ci/run asks the same module, and gets the same answer.
    shown = python("-m", "tests.browser_path", CHROMIUM=str(runnable))
    assert (shown.returncode, shown.stdout.strip()) == (0, str(runnable))
    missing = python("-m", "tests.browser_path", CHROMIUM=str(tmp_path / "missing"))
    assert missing.returncode == 1 and "apt-get install chromium" in missing.stderr
