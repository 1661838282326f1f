"""Update bodies: CommonMark rendered safely (no raw HTML, no unsafe links)."""

from __future__ import annotations

import html5lib
import pytest
from markupsafe import Markup

from renderers.markdown import is_safe_url, render_markdown


def hrefs(html: str) -> list[str]:
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    return [a.get("href") or "" for a in tree.iter("a")]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("*em* and _em_", "<p><em>em</em> and <em>em</em></p>"),
        ("**strong** and __strong__", "<p><strong>strong</strong> and <strong>strong</strong></p>"),
        ("`a < b`", "<p><code>a &lt; b</code></p>"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
        ("```\nx = 1 < 2\n```", "<pre><code>x = 1 &lt; 2\n</code></pre>"),
        ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
        ("para one\n\npara two", "<p>para one</p>\n<p>para two</p>"),
        # A single newline is a line break, as it is in Slack where the text is typed.
        ("line one\nline two", "<p>line one<br>\nline two</p>"),
        ("AT&T &amp; co", "<p>AT&amp;T &amp; co</p>"),
    ],
)
def test_commonmark_features(source: str, expected: str) -> None:
    assert render_markdown(source).strip() == expected


def test_returns_markup() -> None:
    assert isinstance(render_markdown("x"), Markup)


def test_headings_are_pushed_below_the_page_headings() -> None:
    assert render_markdown("# Big\n## Less").strip() == "<h5>Big</h5>\n<h6>Less</h6>"


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        "<div onclick=alert(1)>x</div>",
        "<!-- comment --><style>body{}</style>",
        "inline <b onmouseover=alert(1)>bold</b> html",
    ],
)
def test_raw_html_is_escaped(source: str) -> None:
    html = str(render_markdown(source))
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    tags = {el.tag for el in tree.iter()} - {"html", "head", "body", "p"}
    # The only element may be a link made of a bare address in the text, with a safe href.
    assert tags <= {"a"}, html
    assert all(is_safe_url(href) for href in hrefs(html)), html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](java&#10;script:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](%6Aavascript:alert(1))",
        "[x]( javascript:alert(1) )",
        "[x](<javascript:alert(1)>)",
        "[x](\x01javascript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](VBScript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](file:///etc/passwd)",
        "<javascript:alert(1)>",
        "<data:text/html,hi>",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "![x](javascript:alert(1))",
        "![x](data:image/png;base64,AAAA)",
    ],
)
def test_unsafe_links_are_dropped_keeping_their_words(source: str) -> None:
    html = str(render_markdown(source))
    assert hrefs(html) == [], html
    assert "javascript:" not in html.lower().replace("&colon;", ":") or "href" not in html
    assert "<img" not in html


def test_link_words_survive_when_the_link_is_dropped() -> None:
    assert render_markdown("see [the docs](javascript:alert(1)) now").strip() == (
        "<p>see the docs now</p>"
    )


@pytest.mark.parametrize(
    ("source", "href"),
    [
        ("[x](https://example.com/a?b=1&c=2)", "https://example.com/a?b=1&c=2"),
        ("[x](http://example.com)", "http://example.com"),
        ("[x](mailto:support@example.com)", "mailto:support@example.com"),
        ("<https://example.com/x>", "https://example.com/x"),
        ("<support@example.com>", "mailto:support@example.com"),
        ("[x](/incidents/12.html)", "/incidents/12.html"),
        ("[x](#past)", "#past"),
        ("[x](HTTPS://EXAMPLE.COM)", "HTTPS://EXAMPLE.COM"),
    ],
)
def test_safe_links_are_kept_with_rel(source: str, href: str) -> None:
    html = str(render_markdown(source))
    assert hrefs(html) == [href]
    assert 'rel="nofollow noopener"' in html


@pytest.mark.parametrize(
    ("source", "href", "words"),
    [
        ("Details: https://example.com/a?b=1 (graphs)", "https://example.com/a?b=1", None),
        ("see www.example.com/status.", "http://www.example.com/status", "www.example.com/status"),
        ("write to support@example.com", "mailto:support@example.com", "support@example.com"),
    ],
)
def test_bare_addresses_become_links(source: str, href: str, words: str | None) -> None:
    html = str(render_markdown(source))
    assert hrefs(html) == [href]
    assert f">{words or href}</a>" in html and 'rel="nofollow noopener"' in html


@pytest.mark.parametrize(
    "source",
    [
        "ftp://files.example.com/dump.sql",  # linkify knows ftp:, the page does not
        "javascript:alert(1)",
        "`https://example.com/in/code`",
        "no.such.tld.invalidtld",
    ],
)
def test_bare_addresses_outside_the_allowlist_or_in_code_stay_text(source: str) -> None:
    assert hrefs(str(render_markdown(source))) == []


def test_images_become_links_so_the_page_requests_nothing() -> None:
    html = str(render_markdown("![a graph](https://cdn.example.com/graph.png)"))
    assert "<img" not in html
    assert hrefs(html) == ["https://cdn.example.com/graph.png"]
    assert ">a graph</a>" in html


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://x", True),
        ("mailto:a@b", True),
        ("relative/path", True),
        ("?q=1", True),
        ("javascript:x", False),
        ("  JAVASCRIPT:x", False),
        ("java\tscript:x", False),
        ("java%0ascript:x", False),
        ("%2520javascript:x", False),
        ("data:x", False),
        ("ftp://x", False),
        ("weird:thing", False),
    ],
)
def test_is_safe_url(url: str, safe: bool) -> None:
    assert is_safe_url(url) is safe
