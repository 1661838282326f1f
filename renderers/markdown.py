"""Update bodies: CommonMark in, HTML that is safe to put in the page out.

markdown-it-py's "commonmark" preset with raw HTML off, so any tag a commander
types shows as text. Every link is checked after parsing against an allowlist
of schemes (http, https, mailto, or none: a relative link); any other link
(javascript:, vbscript:, data:, file:, …, however it is cased, entity-encoded or
split by control characters) loses its anchor and keeps its words. Images
become plain links, because the page makes no request of its own to any other
host. Headings are pushed down to h5/h6 so a body can't outrank the page's
own headings. A single newline is a line break and a bare address is a link,
as they are in Slack, where the text is typed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener"

_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
# Browsers drop ASCII tab and newline anywhere in a URL and trim C0 controls and
# spaces around it before they look for a scheme; a check must see what they see.
_IGNORED = re.compile(r"[\x00-\x20\x7f-\x9f\u00ad\u200b-\u200f\u2028\u2029\ufeff]+")


def is_safe_url(url: str) -> bool:
    """Whether a link target may become an href: a relative URL or an allowed scheme."""
    seen = url
    for _ in range(3):  # percent-encoding inside percent-encoding
        decoded = unquote(seen)
        if decoded == seen:
            break
        seen = decoded
    bare = _IGNORED.sub("", seen).lower()
    match = _SCHEME.match(bare)
    if match is None:
        # No scheme before the first ':' means the browser resolves it against the page.
        return ":" not in bare.split("/", 1)[0] or bare.startswith(("/", "?", "#"))
    return match.group(1) in SAFE_SCHEMES


def _sanitise(state: StateCore) -> None:
    """Drop unsafe links, turn images into links, push headings down."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            level = int(token.tag[1])
            token.tag = "h5" if level == 1 else "h6"
        if token.type == "inline" and token.children:
            token.children = _safe_inline(token.children)


def _safe_inline(children: list[Token]) -> list[Token]:
    out: list[Token] = []
    dropping = False
    for child in children:
        if child.type == "link_open":
            href = str(child.attrGet("href") or "")
            if is_safe_url(href):
                child.attrSet("rel", LINK_REL)
                out.append(child)
            else:
                dropping = True
            continue
        if child.type == "link_close" and dropping:
            dropping = False
            continue
        if child.type == "image":
            out.extend(_image_as_link(child))
            continue
        out.append(child)
    return out


def _image_as_link(image: Token) -> list[Token]:
    src = str(image.attrGet("src") or "")
    words = image.content or src
    text = Token("text", "", 0, content=words)
    if not src or not is_safe_url(src) or src.lower().startswith("data:"):
        return [text]
    opening = Token("link_open", "a", 1, attrs={"href": src, "rel": LINK_REL})
    return [opening, text, Token("link_close", "a", -1)]


class _Parser(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        # Every link parses, so that `_sanitise` can keep the words of an unsafe
        # one instead of leaving its raw markdown on the page.
        return True


def _build() -> MarkdownIt:
    md = _Parser("commonmark", {"html": False, "breaks": True, "xhtmlOut": False, "linkify": True})
    # Bare addresses (https://…, www.…, an e-mail) become links, as Slack shows
    # them; linkify-it finds them, and `_sanitise`, which runs last, checks them too.
    md.enable("linkify")
    md.core.ruler.push("statusbot_sanitise", _sanitise)
    return md


_MD = _build()


@lru_cache(maxsize=8192)
def _render(text: str) -> str:
    return str(_MD.render(text))


def render_markdown(text: str) -> Markup:
    """CommonMark to HTML that is safe in the page: no raw HTML, no unsafe links."""
    return Markup(_render(text))
