"""The house's one-way data flow (STYLE.md), held by reading every import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> packages of ours it may not import
FORBIDDEN = {
    "storage": {"commands", "renderers", "bot"},
    "commands": {"renderers", "bot"},
    "renderers": {"commands", "bot"},
}
SLACK = {"slack_bolt", "slack_sdk"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


SOURCES = [
    p for pkg in ("storage", "commands", "renderers", "bot") for p in (ROOT / pkg).rglob("*.py")
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layers_only_import_downwards(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    used = imports(path)
    assert not used & FORBIDDEN.get(package, set()), (
        f"{package} may not import {used & FORBIDDEN[package]}"
    )
    if package != "bot":
        assert not used & SLACK, "only bot/ talks to Slack"
