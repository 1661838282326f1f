"""renderers/html.py's template cache: templates compiled once, the same pages from it,
and a cache that cannot be used never stops a render."""

from __future__ import annotations

from pathlib import Path

import jinja2.compiler
import pytest
from jinja2 import Environment, PackageLoader

from renderers import html
from renderers.html import TemplateCache, environment

TEMPLATE = "incident.html"


def compiled_with(cache: TemplateCache) -> Environment:
    env = Environment(loader=PackageLoader("renderers", "templates"), bytecode_cache=cache)
    env.get_template(TEMPLATE)
    return env


def test_a_template_compiled_once_is_loaded_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled_with(TemplateCache(str(tmp_path)))
    assert len(list(tmp_path.iterdir())) == 1

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(Environment, "compile", refuse)
    compiled_with(TemplateCache(str(tmp_path)))  # from the file, not compiled


@pytest.mark.parametrize("kind", ["a file, not a directory", "a cut-short entry"])
def test_a_cache_it_cannot_use_is_compiled_past(tmp_path: Path, kind: str) -> None:
    if kind.startswith("a file"):
        where = tmp_path / "file"
        where.write_text("not a directory")
    else:
        where = tmp_path / "cache"
        where.mkdir()
        compiled_with(TemplateCache(str(where)))
        (entry,) = where.iterdir()
        entry.write_bytes(entry.read_bytes()[:40])
    env = compiled_with(TemplateCache(str(where)))
    assert env.get_template(TEMPLATE).name == TEMPLATE


def test_the_page_environment_keeps_its_templates_in_a_cache() -> None:
    assert isinstance(environment().bytecode_cache, TemplateCache)


def test_entries_are_named_for_the_jinja_and_the_options_that_compiled_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Jinja checks a cached entry against its template's source only: another Jinja, or
    other options in renderers/html.py, must not load code compiled the old way."""
    ours = html._template_cache()
    assert ours is not None and ours.pattern.endswith("_%s.cache")
    upgraded = tmp_path / "compiler.py"  # another Jinja's compiler, installed
    upgraded.write_text("# another release\n")
    monkeypatch.setattr(jinja2.compiler, "__file__", str(upgraded))
    other = html._template_cache()
    assert other is not None and other.pattern != ours.pattern
