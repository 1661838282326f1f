"""The sign-up pages (SPEC §9): subscribe.html, a file of the site, and the pages
`statusbot serve` answers the form and the mail's links with.

Plain values in, HTML out, through the page's own templates and CSS (base.html,
light and dark). Everything is escaped; no script; nothing loaded from anywhere.
The served pages link the page's files absolutely (they are answered by the app,
which may live elsewhere) and post only to their own origin.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup

from renderers.html import FAVICON, environment, stylesheet
from storage.snapshot import ComponentView, GroupView, PageInfo, Snapshot

SUBSCRIBE = "subscribe.html"

# Per section (a group's name, or None for components in no group): (code, name) in page order.
Sections = Sequence[tuple[str | None, Sequence[tuple[str, str]]]]


@dataclass(frozen=True, slots=True)
class Shown:
    """What a served page says about a subscription (from commands.signup.Subscription)."""

    token: str
    components: Collection[str]
    unsubscribed: bool


def sections_of(snapshot: Snapshot) -> list[tuple[str | None, list[tuple[str, str]]]]:
    """The snapshot's components as the form offers them: by group, in page order."""
    out: list[tuple[str | None, list[tuple[str, str]]]] = []
    for item in snapshot.layout:
        if isinstance(item, GroupView):
            if item.components:
                out.append((item.name, [(c.code, c.name) for c in item.components]))
        elif isinstance(item, ComponentView):
            if not out or out[-1][0] is not None:
                out.append((None, []))
            out[-1][1].append((item.code, item.name))
    return out


def render_subscribe(snapshot: Snapshot) -> str:
    """subscribe.html: the form, posting to the app's /subscribe."""
    base = snapshot.page.signup_base
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    return _render(
        "subscribe.html",
        snapshot.page,
        root="",
        favicon=FAVICON.get(snapshot.status.indicator, FAVICON["none"]),
        action=base + "/subscribe",
        action_origin=origin,
        sections=sections_of(snapshot),
    )


def render_message(
    page: PageInfo,
    heading: str,
    lines: Sequence[str],
    *,
    shown: Shown | None = None,
    secret: str | None = None,
    button: str | None = None,
    manage: bool = False,
    sections: Sections = (),
    back_to_form: bool = False,
) -> str:
    """A page served by the app: a heading and lines; with `shown`, its links or forms."""
    root = page.url.rstrip("/") + "/"
    return _render(
        "signup.html",
        page,
        root=root,
        css_root="/",
        favicon=FAVICON["none"],
        heading=heading,
        lines=list(lines),
        sub=shown,
        secret=secret,
        button=button,
        manage=manage,
        sections=sections,
        back=root + (SUBSCRIBE if back_to_form else "index.html"),
        back_label="Back to the form" if back_to_form else f"Back to {page.name} status",
    )


def _render(
    name: str,
    page: PageInfo,
    *,
    root: str,
    favicon: str,
    css_root: str | None = None,
    **values: Any,
) -> str:
    context = {
        # The file of the site beside the page; the served pages link the app's own copy.
        "css": (root if css_root is None else css_root) + stylesheet().path,
        "style_src": Markup("'self'"),
        "page": page,
        "root": root,
        "favicon": favicon,
    }
    return environment().get_template(name).render({**context, **values})
