"""Slash-command text as Slack sends it -> words, options and message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import CommandError
from commands.tokens import Opt, Words, parse_id, split_words, unslack

USAGE = "/thing do ARGS [--impact I] [--start WHEN] [--showcase/--no-showcase] [-- MESSAGE]"
OPTIONS = {
    "impact": Opt.VALUE,
    "start": Opt.VALUE,
    "end": Opt.VALUE,
    "components": Opt.VALUE,
    "title": Opt.VALUE,
    "showcase": Opt.FLAG,
    "auto": Opt.FLAG,
}


# Inputs that a quadratic or backtracking splitter would choke on; bench/tokens.py times them.
LONG_INPUTS = [
    '"' * 100_000,
    '"a ' * 35_000,
    "'x " * 35_000,
    "“a " * 35_000,
    "‘a’b " * 25_000,
    "<" * 100_000,
    "<@" * 50_000,
    "&amp;" * 20_000,
    "a " * 50_000,
    "--title " + "w " * 50_000,
    "--title=" + '"' * 100_000,
    "-- " + '"' * 100_000,
    "--" + "x" * 100_000,
]


def split(text: str) -> Words:
    return split_words(text, options=OPTIONS, usage=USAGE)


def error(text: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        split(text)
    assert caught.value.usage == USAGE
    return caught.value


# --- unslack ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@U123|name>", "@name"),
        ("<@U123>", "@U123"),
        ("<#C123|general>", "#general"),
        ("<#C123>", "#C123"),
        ("<!here>", "@here"),
        ("<!channel>", "@channel"),
        ("<!everyone>", "@everyone"),
        ("<!here|here>", "@here"),
        ("<!subteam^S123|@oncall>", "@oncall"),
        ("<!subteam^S123>", "@S123"),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("<https://x.y/z|label>", "[label](https://x.y/z)"),
        ("<https://x.y/z|two words>", "[two words](https://x.y/z)"),
        ("<https://x.y/z>", "https://x.y/z"),
        ("<http://example.com|example.com>", "example.com"),
        ("<https://x.y/z|https://x.y/z>", "https://x.y/z"),
        ("<https://x.y/?a=1&amp;b=2|a &amp; b>", "[a & b](https://x.y/?a=1&b=2)"),
        ("<mailto:a@b.c|a@b.c>", "a@b.c"),
        ("<mailto:a@b.c>", "a@b.c"),
        ("ping <@U1> and <@U2|bo> in <#C9|ops>", "ping @U1 and @bo in #ops"),
        ("<not markup>", "<not markup>"),
        ("<>", "<>"),
        ("plain text", "plain text"),
    ],
)
def test_unslack_markup(text: str, expected: str) -> None:
    assert unslack(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A &amp; B", "A & B"),
        ("&lt;b&gt;", "<b>"),
        ("&amp;lt;", "&lt;"),  # one pass: a typed "&lt;" stays "&lt;"
        ("&amp;amp;", "&amp;"),
        ("&lt;@U1&gt;", "<@U1>"),  # typed text that looks like markup stays text
        ("&quot; &nbsp; &AMP;", "&quot; &nbsp; &AMP;"),  # Slack escapes only three
        ("&amp", "&amp"),
    ],
)
def test_unslack_entities(text: str, expected: str) -> None:
    assert unslack(text) == expected


# --- words and quotes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("", ()),
        ("   ", ()),
        ("open Login broken", ("open", "Login", "broken")),
        ("open\tLogin\n broken", ("open", "Login", "broken")),
        ('open "Login broken" now', ("open", "Login broken", "now")),
        ("open 'Login broken' now", ("open", "Login broken", "now")),
        ("open “Login broken” now", ("open", "Login broken", "now")),
        ("open ‘Login broken’ now", ("open", "Login broken", "now")),
        ('open “Login broken" now', ("open", "Login broken", "now")),
        ("open ‘Login broken' now", ("open", "Login broken", "now")),
        ('open "  spaced   out  "', ("open", "  spaced   out  ")),
        ('open ""', ("open", "")),
        ("open “”", ("open", "")),
        ('"a" "b"', ("a", "b")),
        ('"a"b c"', ('a"b c',)),  # closes only where the quote ends a word
        ('"a b', ('"a', "b")),  # never closed: a plain character
        ("“a b", ("“a", "b")),
        ("“a b”", ("a b",)),
        ("Can't log in", ("Can't", "log", "in")),
        ("Can’t log in", ("Can’t", "log", "in")),
        ("'Can't log in'", ("Can't log in",)),
        ("‘Can’t log in’", ("Can’t log in",)),
        ('5" screen', ('5"', "screen")),
        ("it's the users' fault", ("it's", "the", "users'", "fault")),
        ("'tis bad", ("'tis", "bad")),
        ('say "--impact" now', ("say", "--impact", "now")),  # quoting makes it a word
        ('"--"', ("--",)),
        ("-5 - -x ---", ("-5", "-", "-x", "---")),
        ("--5 --", ("--5",)),
        ("A &amp; B <@U1|ann>", ("A", "&", "B", "@ann")),
        ("a\u00a0b", ("a", "b")),
    ],
)
def test_words(text: str, args: tuple[str, ...]) -> None:
    words = split(text)
    assert words.args == args
    assert words.options == {}


# --- the message after `--` ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("update 12", ("update", "12"), None),
        ("update 12 --", ("update", "12"), ""),
        ("update 12 --   ", ("update", "12"), ""),
        ("update 12 -- We’re on it", ("update", "12"), "We’re on it"),
        ("update 12 -- “quoted” and 'single'", ("update", "12"), "“quoted” and 'single'"),
        ("update 12 -- a -- b --impact x", ("update", "12"), "a -- b --impact x"),
        ("update 12 --\nline one\n\n* line two\n", ("update", "12"), "line one\n\n* line two"),
        ("update 12 -- A &amp; B &lt;3 *bold* `code`", ("update", "12"), "A & B <3 *bold* `code`"),
        ("update 12 -- ask <@U1|ann> in <#C2|ops>", ("update", "12"), "ask @ann in #ops"),
        ("update 12 -- see <https://x.y|docs>", ("update", "12"), "see [docs](https://x.y)"),
        ("update 12 --  'unclosed \"quote", ("update", "12"), "'unclosed \"quote"),
        ("a\nb\n--\nmsg", ("a", "b"), "msg"),
        ('open "x -- y" -- msg', ("open", "x -- y"), "msg"),
        ("-- only", (), "only"),
        ("open x--y", ("open", "x--y"), None),
    ],
)
def test_message(text: str, args: tuple[str, ...], message: str | None) -> None:
    words = split(text)
    assert words.args == args
    assert words.message == message


def test_message_after_options() -> None:
    words = split("update 12 --impact major -- Fixed. Watching --impact closely")
    assert words == Words(("update", "12"), {"impact": "major"}, "Fixed. Watching --impact closely")


# --- options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args", "options"),
    [
        ("open Title --impact major", ("open", "Title"), {"impact": "major"}),
        ("open Title --impact=major", ("open", "Title"), {"impact": "major"}),
        ("open Title --IMPACT Major", ("open", "Title"), {"impact": "Major"}),
        (
            "--start tomorrow 9am --end tomorrow 11am",
            (),
            {"start": "tomorrow 9am", "end": "tomorrow 11am"},
        ),
        (
            "--start=tomorrow 9am --end=tomorrow   11am",
            (),
            {"start": "tomorrow 9am", "end": "tomorrow 11am"},
        ),
        (
            "--components Newsletter emails=major, API=ok",
            (),
            {"components": "Newsletter emails=major, API=ok"},
        ),
        ("--title 'New   title' here", (), {"title": "New   title here"}),
        ('--title="New   title" here', (), {"title": "New   title here"}),
        ("--title=“New title”", (), {"title": "New title"}),
        ('--title ""', (), {"title": ""}),
        ('--title=""', (), {"title": ""}),
        ("--title= spaced", (), {"title": "spaced"}),
        ("--title a=b=c", (), {"title": "a=b=c"}),
        ("--title -5 - x", (), {"title": "-5 - x"}),
        ('--title "--impact" x', (), {"title": "--impact x"}),
        ("--start in 2h -- msg", (), {"start": "in 2h"}),
        ("--title <@U1|ann> &amp; co", (), {"title": "@ann & co"}),
        ("x --showcase y", ("x", "y"), {"showcase": True}),
        ("x --no-showcase y", ("x", "y"), {"showcase": False}),
        ("x --No-Showcase", ("x",), {"showcase": False}),
        ("--showcase --no-auto", (), {"showcase": True, "auto": False}),
        ("--impact minor --showcase", (), {"impact": "minor", "showcase": True}),
    ],
)
def test_options(text: str, args: tuple[str, ...], options: dict[str, str | bool]) -> None:
    words = split(text)
    assert words.args == args
    assert dict(words.options) == options


def test_options_keep_the_declared_spelling() -> None:
    words = split_words("--START now", options={"Start": Opt.VALUE}, usage=USAGE)
    assert dict(words.options) == {"Start": "now"}


def test_a_flag_declared_with_no_prefix_is_taken_as_is() -> None:
    words = split_words("--no-auto", options={"no-auto": Opt.FLAG}, usage=USAGE)
    assert dict(words.options) == {"no-auto": True}


def test_options_are_read_only() -> None:
    words = split("--impact major")
    with pytest.raises(TypeError):
        words.options["impact"] = "minor"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("open --start", "--start needs a value."),
        ("open --start --end x", "--start needs a value."),
        ("open --start -- msg", "--start needs a value."),
        ("open --start=", "--start needs a value."),
        ("--impcat major", "Unknown option --impcat. Did you mean --impact?"),
        ("--Impcat major", "Unknown option --Impcat. Did you mean --impact?"),
        ("--showcse", "Unknown option --showcse. Did you mean --showcase?"),
        ("--no-showcse", "Unknown option --no-showcse. Did you mean --no-showcase?"),
        ("--no-impact", "Unknown option --no-impact. Did you mean --impact?"),
        ("--verbose", "Unknown option --verbose."),
        ("--impact, major", "Unknown option --impact,. Did you mean --impact?"),
        ("--impact major --impact minor", "Give --impact only once."),
        ("--impact=major --IMPACT minor", "Give --impact only once."),
        ("--showcase --showcase", "Give --showcase only once."),
        ("--showcase --no-showcase", "Give only one of --showcase and --no-showcase."),
        ("--showcase=yes", "--showcase is a switch and takes no value."),
        ("--no-showcase=", "--showcase is a switch and takes no value."),
        ("--" + "x" * 500, "Unknown option --" + "x" * 37 + "…."),
    ],
)
def test_option_errors(text: str, message: str) -> None:
    assert error(text).message == message


def test_no_options_declared() -> None:
    with pytest.raises(CommandError, match="Unknown option --impact") as caught:
        split_words("list --impact x", options={}, usage="/incident list")
    assert caught.value.usage == "/incident list"
    assert split_words("list x -- y", options={}, usage="u") == Words(("list", "x"), {}, "y")


# --- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "number"),
    [("12", 12), ("#12", 12), ("1", 1), ("#007", 7), (" 12 ", 12), (str(2**31 - 1), 2**31 - 1)],
)
def test_parse_id(word: str, number: int) -> None:
    assert parse_id(word, usage=USAGE) == number


@pytest.mark.parametrize(
    "word",
    ["0", "#0", "-1", "12a", "#", "", "##12", "# 12", "1 2", "+12", "1.5", "١٢", "１２", "²",
     str(2**31), "9" * 11, "9" * 5000, "twelve"],
)  # fmt: skip
def test_parse_id_rejects(word: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_id(word, usage=USAGE)
    assert caught.value.usage == USAGE
    assert caught.value.message.endswith("is not an incident number. Write it as 12 or #12.")


def test_parse_id_message() -> None:
    with pytest.raises(CommandError) as caught:
        parse_id("12a", usage=USAGE)
    assert caught.value.message == "'12a' is not an incident number. Write it as 12 or #12."


# --- any text at all -------------------------------------------------------------------

PIECES = [
    " ", "  ", "\n", "\t", "a", "Bc", "=", ",", "-", "--", "---", "--impact", "--impcat",
    "--showcase", "--no-showcase", "--start=", "--title=", '"', "'", "“", "”", "‘", "’",
    "<@U1>", "<@U1|ann>", "<#C1|ops>", "<!here>", "<https://x.y|l>", "<", ">", "|",
    "&amp;", "&lt;", "&gt;", "&", ";", "#12", "12", "١", "\u00a0", "\u2028",
]  # fmt: skip
slackish = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


def words_or_command_error(text: str) -> None:
    try:
        words = split(text)
    except CommandError as problem:
        assert problem.usage == USAGE
        assert problem.message
        return
    assert all(isinstance(arg, str) for arg in words.args)
    assert set(words.options) <= set(OPTIONS)


@given(st.text())
def test_any_text_gives_words_or_command_error(text: str) -> None:
    words_or_command_error(text)


@settings(max_examples=500)
@given(slackish)
def test_slackish_text_gives_words_or_command_error(text: str) -> None:
    words_or_command_error(text)


@given(st.text())
def test_parse_id_only_raises_command_error(word: str) -> None:
    try:
        number = parse_id(word, usage=USAGE)
    except CommandError:
        return
    assert 0 < number <= 2**31 - 1


@given(st.text())
def test_unslack_gives_a_string(text: str) -> None:
    assert isinstance(unslack(text), str)


def slack_escape(text: str) -> str:
    """What Slack does to the characters a person types."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


plain = st.text(st.characters(exclude_characters='"'))


@given(st.lists(plain, max_size=8))
def test_double_quoted_words_come_back_unchanged(args: list[str]) -> None:
    text = " ".join('"' + slack_escape(arg) + '"' for arg in args)
    words = split(text)
    assert words.args == tuple(args)
    assert words.options == {}
    assert words.message is None


@given(st.lists(plain, max_size=8), plain)
def test_message_comes_back_unchanged(args: list[str], message: str) -> None:
    text = " ".join('"' + slack_escape(arg) + '"' for arg in args)
    words = split(text + " -- " + slack_escape(message))
    assert words.args == tuple(args)
    assert words.message == message.strip()


# --- long input stays fast -------------------------------------------------------------


@pytest.mark.parametrize("text", LONG_INPUTS, ids=lambda text: repr(text[:10]))
def test_long_input_ends_in_words_or_a_clear_error(text: str) -> None:
    """Pathological input splits or is refused with a CommandError, never anything else.

    How fast it does so is measured by bench/tokens.py, not here.
    """
    try:
        words = split(text)
    except CommandError as error:
        assert str(error)
    else:
        assert isinstance(words, Words)
