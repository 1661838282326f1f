"""badge.svg: a shields.io-style "status | all systems operational" badge."""

from __future__ import annotations

import re

from storage.snapshot import Snapshot

LABEL = "status"

# Right-hand colour per Statuspage indicator. Darker than shields' own palette so
# white text keeps a 4.5:1 contrast (WCAG AA) on every colour, yellow included.
COLORS: dict[str, str] = {
    "none": "#1a7f37",
    "minor": "#9a6700",
    "major": "#bc4c00",
    "critical": "#cf222e",
    "maintenance": "#0969da",
}
UNKNOWN_COLOR = "#57606a"
LABEL_COLOR = "#555"

# Advance widths of Verdana at 11px, the font shields.io measures with; text in
# other fonts still fits because textLength pins every string to this width.
_WIDTHS: dict[str, float] = {
    " ": 3.87, "!": 4.33, '"': 5.05, "#": 9.0, "$": 7.0, "%": 11.84, "&": 7.99, "'": 2.95,
    "(": 5.0, ")": 5.0, "*": 7.0, "+": 9.0, ",": 4.0, "-": 5.0, ".": 4.0, "/": 5.0,
    ":": 5.0, ";": 5.0, "<": 9.0, "=": 9.0, ">": 9.0, "?": 6.0, "@": 11.0, "[": 5.0,
    "\\": 5.0, "]": 5.0, "^": 9.0, "_": 7.0, "`": 7.0, "{": 6.98, "|": 5.0, "}": 6.98,
    "~": 9.0, "A": 7.52, "B": 7.6, "C": 7.68, "D": 8.48, "E": 6.96, "F": 6.32, "G": 8.53,
    "H": 8.27, "I": 4.63, "J": 5.0, "K": 7.62, "L": 6.12, "M": 9.27, "N": 8.23, "O": 8.66,
    "P": 6.63, "Q": 8.66, "R": 7.65, "S": 7.52, "T": 6.78, "U": 8.05, "V": 7.52, "W": 10.88,
    "X": 7.54, "Y": 6.77, "Z": 7.54, "a": 6.61, "b": 6.85, "c": 5.73, "d": 6.85, "e": 6.55,
    "f": 3.87, "g": 6.85, "h": 6.96, "i": 3.02, "j": 3.79, "k": 6.51, "l": 3.02, "m": 10.75,
    "n": 6.96, "o": 6.68, "p": 6.85, "q": 6.85, "r": 4.69, "s": 5.73, "t": 4.33, "u": 6.96,
    "v": 6.51, "w": 8.98, "x": 6.51, "y": 6.51, "z": 5.78,
}  # fmt: skip
_DIGIT = 7.0
_OTHER = 8.0  # letters outside ASCII: a little wide rather than clipped
_PAD = 10  # horizontal padding around each half
# Characters XML 1.0 can't carry at all (control characters other than tab and newlines).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_badge(snapshot: Snapshot) -> str:
    """badge.svg for the page's overall status, coloured by its indicator."""
    # Loaded here (with urllib.request and http.client, ~5 ms): `statusbot render`
    # loads it after forking, in the process that renders the page-wide files.
    from xml.sax.saxutils import escape, quoteattr

    message = snapshot.status.description.lower()
    color = COLORS.get(snapshot.status.indicator, UNKNOWN_COLOR)
    title = _XML_INVALID.sub("", f"{snapshot.page.name} {LABEL}: {snapshot.status.description}")
    label_text, label_w = _measure(LABEL)
    message_text, message_w = _measure(message)
    left, right = label_w + _PAD, message_w + _PAD
    width = left + right
    aria = quoteattr(title)
    return "".join(
        [
            '<svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="20" viewBox="0 0 {width} 20" '
            f'role="img" aria-label={aria}>',
            f"<title>{escape(title)}</title>",
            '<linearGradient id="s" x2="0" y2="100%">'
            '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
            '<stop offset="1" stop-opacity=".1"/></linearGradient>',
            f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>',
            '<g clip-path="url(#r)">',
            f'<rect width="{left}" height="20" fill="{LABEL_COLOR}"/>',
            f'<rect x="{left}" width="{right}" height="20" fill="{color}"/>',
            f'<rect width="{width}" height="20" fill="url(#s)"/>',
            "</g>",
            '<g fill="#fff" text-anchor="middle" '
            'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
            'text-rendering="geometricPrecision" font-size="110">',
            _text(label_text, center=left * 5, length=label_w * 10),
            _text(message_text, center=left * 10 + right * 5, length=message_w * 10),
            "</g></svg>",
        ]
    )


def _measure(text: str) -> tuple[str, int]:
    """The text escaped for XML and its width in whole pixels."""
    from xml.sax.saxutils import escape

    width = sum(_WIDTHS.get(ch, _DIGIT if ch.isdigit() else _OTHER) for ch in text)
    return escape(_XML_INVALID.sub("", text)), round(width)


def _text(text: str, *, center: int, length: int) -> str:
    # Drawn at 10x and scaled down, as shields does, for crisp sub-pixel placement;
    # the shadow copy is hidden from screen readers so the badge is read once.
    common = f'x="{center}" transform="scale(.1)" textLength="{length}"'
    return (
        f'<text aria-hidden="true" {common} y="150" fill="#010101" fill-opacity=".3">'
        f"{text}</text>"
        f'<text {common} y="140">{text}</text>'
    )
