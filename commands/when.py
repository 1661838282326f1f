"""Reading the WHEN times incident commanders type: 'Fri 8pm ET', 'in 2h', '2026-12-01 20:00'.

The grammar is ours and strict; dateutil supplies the month and weekday names and the DST
checks, but never guesses the structure (no fuzzy parsing), so a typo is an error, not a time.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

from dateutil import tz as dateutil_tz
from dateutil.parser import parserinfo

from commands.errors import CommandError
from storage.escaping import escape

# --- What the person sees -------------------------------------------------------------------

EXAMPLES = "'2026-12-01 20:00', 'tomorrow 9am', 'Fri 8pm ET', 'in 2h' or 'now'"
DATE_EXAMPLES = "'2017-09-01', 'Sep 1 2017', '1 Sep 2017', 'today' or 'yesterday'"

EMPTY = f"Give a time, for example {EXAMPLES}."
UNREADABLE = f"I can't read '{{said}}' as a time. Try {EXAMPLES}."
NO_TIME_OF_DAY = "'{said}' has no time of day: add one, e.g. '{said} 9am' or '{said} 14:00'."
UNCLEAR_CLOCK = (
    "In '{said}', '{word}' is not a clear time of day: write it like '9am', '9:30pm' or '21:30'."
)
BAD_CLOCK = "In '{said}', '{word}' is not a time: hours go 0-23 (or 1-12 with am/pm), minutes 0-59."
TONIGHT_MORNING = "'tonight' means this evening: for the small hours say 'tomorrow {clock}'."
NO_SUCH_DAY = "'{said}' names a day that doesn't exist: check the day of the month."
WRONG_WEEKDAY = "In '{said}', {day} is a {actual}, not a {named}: check the date."
NUMERIC_DATE = (
    "In '{said}', '{word}' could be read day-first or month-first: write the date as "
    "'2026-12-01' or 'Dec 1 2026'."
)
FIRST_YEAR, LAST_YEAR = 2000, 2100
OUT_OF_RANGE = "'{said}' is outside the years 2000 to 2100: give a time within them."
ZONE_NOT_LAST = "In '{said}', put the time zone '{word}' at the end, e.g. 'tomorrow 9am ET'."
TWO_ZONES = "'{said}' gives two time zones or offsets: keep one, at the end."
WRONG_ABBREVIATION = (
    "{clock} {abbr} on {day} is not in {abbr}: {place} is on {actual} then. "
    "Say {generic} (or {actual})."
)
DST_GAP = (
    "'{said}' is {local} in {zone}, a time skipped when the clocks go forward: give a time "
    "outside that hour, or an explicit UTC time or offset such as '{example}'."
)
DST_OVERLAP = (
    "'{said}' is {local} in {zone}, a time that happens twice when the clocks go back: give an "
    "explicit UTC time or offset, '{first}' for the first or '{second}' for the second."
)
DATE_EMPTY = f"Give a date, for example {DATE_EXAMPLES}."
DATE_UNREADABLE = f"I can't read '{{said}}' as a date. Try {DATE_EXAMPLES}."
DATE_NEEDS_YEAR = "'{said}' has no year: write it like 'Sep 1 2017' or '2017-09-01'."

# --- Zones ----------------------------------------------------------------------------------

# fmt: off
ZONE_ABBREVIATIONS: dict[str, str] = {
    "UTC": "Etc/UTC", "Z": "Etc/UTC", "GMT": "Etc/UTC",
    "ET": "America/New_York", "EST": "America/New_York", "EDT": "America/New_York",
    "CT": "America/Chicago", "CST": "America/Chicago", "CDT": "America/Chicago",
    "MT": "America/Denver", "MST": "America/Denver", "MDT": "America/Denver",
    "PT": "America/Los_Angeles", "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage",
    "HST": "Pacific/Honolulu",
    "AET": "Australia/Sydney", "AEST": "Australia/Sydney", "AEDT": "Australia/Sydney",
    "ACST": "Australia/Adelaide", "ACDT": "Australia/Adelaide",
    "AWST": "Australia/Perth",
    "NZT": "Pacific/Auckland", "NZST": "Pacific/Auckland", "NZDT": "Pacific/Auckland",
    "JST": "Asia/Tokyo", "KST": "Asia/Seoul", "SGT": "Asia/Singapore", "HKT": "Asia/Hong_Kong",
    "IST": "Asia/Kolkata",
    "CET": "Europe/Paris", "CEST": "Europe/Paris",
    "EET": "Europe/Athens", "EEST": "Europe/Athens",
    "WET": "Europe/Lisbon", "WEST": "Europe/Lisbon",
    "BST": "Europe/London",
    "MSK": "Europe/Moscow",
    "BRT": "America/Sao_Paulo",
}

# Names of one season only: they must match the zone's own name at that moment.
_SEASONAL = frozenset({
    "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "AKST", "AKDT",
    "AEST", "AEDT", "ACST", "ACDT", "NZST", "NZDT",
    "CET", "CEST", "EET", "EEST", "WET", "WEST", "BST",
})
# fmt: on
# The all-year name we suggest when a seasonal one is wrong (else the IANA name).
_GENERIC = {ZONE_ABBREVIATIONS[a]: a for a in ("ET", "CT", "MT", "PT", "AET", "NZT")}

# --- Grammar --------------------------------------------------------------------------------

MAX_LENGTH = 80
_NAMES = parserinfo()
_WEEKDAY_ALIASES = {"tues": "tue", "weds": "wed", "thur": "thu", "thurs": "thu"}
_FILLERS = frozenset({"at", "on"})
_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800),
}
_DURATION = re.compile(r"(?:(?:\d{1,9}\s*|an?\s+)[a-z]+\s*)+", re.ASCII)
_DURATION_PART = re.compile(r"(\d{1,9}|an?)\s*([a-z]+)", re.ASCII)
_CLOCK = re.compile(r"(\d{1,2})(?:([:.])(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(am|pm)?", re.ASCII)
_ISO_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", re.ASCII)
_ISO_DATETIME = re.compile(r"(\d{4}-\d{1,2}-\d{1,2})t(.+)", re.ASCII)
_ATTACHED_OFFSET = re.compile(r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(z|[+-].+)", re.ASCII)
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})?", re.ASCII)
_NUMERIC_DATE = re.compile(r"\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?", re.ASCII)
_DAY_NUMBER = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?", re.ASCII)
_YEAR = re.compile(r"\d{4}", re.ASCII)


def parse_when(
    text: str, *, now: datetime, tz: ZoneInfo, prefer: Literal["future", "past"] = "future"
) -> datetime:
    """Parse a WHEN in the commander's zone `tz`; return an aware datetime in UTC."""
    if now.utcoffset() is None:
        raise ValueError("parse_when needs an aware `now`")
    said = _clean(text, empty=EMPTY, unreadable=UNREADABLE)
    words = _words(said)
    relative = _relative(words, said)
    if relative is not None:
        return _shift(now, relative, said)
    zone, abbreviation = _pop_zone(words, said)
    words = [w for w in words if w not in _FILLERS]
    if words == ["now"]:
        return now.astimezone(UTC)
    place = zone or tz
    clock, day_words = _split_clock(words, said, now=now, place=place, prefer=prefer)
    day = _day(day_words, said, clock=clock, now=now, place=place, prefer=prefer)
    if day is None:
        raise CommandError(UNREADABLE.format(said=escape(said)))
    if day_words == ["tonight"] and clock.hour < 12:
        raise CommandError(TONIGHT_MORNING.format(clock=f"{clock:%H:%M}"))
    _check_year(day.year, said)
    return _localize(datetime.combine(day, clock), place, abbreviation, said).astimezone(UTC)


def parse_date(text: str, *, today: date) -> date:
    """A --start-date: '2017-09-01', 'Sep 1 2017', '1 Sep 2017', 'today' or 'yesterday'."""
    said = _clean(text, empty=DATE_EMPTY, unreadable=DATE_UNREADABLE)
    words = _words(said)
    if words == ["today"]:
        return today
    if words == ["yesterday"]:
        return today - timedelta(days=1)
    day = _calendar_date(words, said, today=today, prefer=None)
    if day is None:
        raise CommandError(DATE_UNREADABLE.format(said=escape(said)))
    _check_year(day.year, said)
    return day


def resolve_local(naive: datetime, tz: ZoneInfo, *, said: str) -> datetime:
    """Attach tz to a naive local time, raising CommandError if it falls in a DST gap or overlap."""
    if naive.tzinfo is not None:
        raise ValueError("resolve_local needs a naive datetime")
    aware = naive.replace(tzinfo=tz, fold=0)
    local = f"{naive:%Y-%m-%d %H:%M}"
    if not dateutil_tz.datetime_exists(aware):
        example = f"{aware.astimezone(UTC):%Y-%m-%dT%H:%M}Z"
        raise CommandError(
            DST_GAP.format(said=escape(said), local=local, zone=tz.key, example=example)
        )
    if dateutil_tz.datetime_ambiguous(aware):
        first, second = (aware.replace(fold=f).isoformat(timespec="minutes") for f in (0, 1))
        raise CommandError(
            DST_OVERLAP.format(
                said=escape(said), local=local, zone=tz.key, first=first, second=second
            )
        )
    return aware


# --- Steps ----------------------------------------------------------------------------------


def _clean(text: str, *, empty: str, unreadable: str) -> str:
    """Collapse whitespace (Slack sends no-break spaces too); refuse what can't be a time."""
    said = " ".join(text.split())
    if not said:
        raise CommandError(empty)
    if len(said) > MAX_LENGTH:
        raise CommandError(unreadable.format(said=escape(said[:MAX_LENGTH] + "…")))
    if not said.isascii():  # also keeps Unicode digits away from int()
        raise CommandError(unreadable.format(said=escape(said)))
    return said


def _words(said: str) -> list[str]:
    """Lower-case words, with '8 pm' -> '8pm' and ISO '...T20:00+01:00' split into pieces."""
    text = said.lower().replace(",", " ")
    text = re.sub(r"(?<![a-z])([ap])\.m\.?", r"\1m", text)
    text = re.sub(r"(\d)\s+([ap]m)\b", r"\1\2", text).rstrip(".")  # 'at 9am.' ends a sentence
    words: list[str] = []
    for word in text.split():
        if match := _ISO_DATETIME.fullmatch(word):
            words.append(match[1])
            word = match[2]
        if match := _ATTACHED_OFFSET.fullmatch(word):
            words.extend(match.groups())
        else:
            words.append(word)
    return words


def _relative(words: list[str], said: str) -> timedelta | None:
    """'in 1h 30m' -> +90 min, '2 days ago' -> -2 days; None if not a relative time."""
    if len(words) > 1 and words[0] == "in":
        sign, body = 1, words[1:]
    elif len(words) > 1 and words[-1] == "ago":
        sign, body = -1, words[:-1]
    else:
        return None
    text = " ".join(w for w in body if w != "and")
    if not _DURATION.fullmatch(text):
        raise CommandError(UNREADABLE.format(said=escape(said)))
    seconds = 0
    for amount, unit in _DURATION_PART.findall(text):
        if unit not in _UNITS:
            raise CommandError(UNREADABLE.format(said=escape(said)))
        seconds += (1 if amount in ("a", "an") else int(amount)) * _UNITS[unit]
    try:
        return timedelta(seconds=sign * seconds)
    except OverflowError:
        raise CommandError(OUT_OF_RANGE.format(said=escape(said))) from None


def _shift(now: datetime, delta: timedelta, said: str) -> datetime:
    """Exact elapsed time from now (not wall-clock arithmetic), kept within the years allowed."""
    try:
        moment = (now + delta).astimezone(UTC)
    except OverflowError:
        raise CommandError(OUT_OF_RANGE.format(said=escape(said))) from None
    _check_year(moment.year, said)
    return moment


def _zone(word: str) -> tuple[tzinfo, str | None] | None:
    """The zone a word names (with its abbreviation, if it is one), or None."""
    if (abbreviation := word.upper()) in ZONE_ABBREVIATIONS:
        return ZoneInfo(ZONE_ABBREVIATIONS[abbreviation]), abbreviation
    if key := _iana_names().get(word):
        return ZoneInfo(key), None
    if match := _OFFSET.fullmatch(word):
        sign, hours, minutes = match[1], int(match[2]), int(match[3] or 0)
        if hours < 24 and minutes < 60:
            offset = timedelta(hours=hours, minutes=minutes)
            return timezone(-offset if sign == "-" else offset), None
    return None


@functools.cache
def _iana_names() -> dict[str, str]:
    """IANA zone names by their lower-case spelling ('Region/City' only; abbreviations above)."""
    return {key.lower(): key for key in available_timezones() if "/" in key}


def _pop_zone(words: list[str], said: str) -> tuple[tzinfo | None, str | None]:
    """Take the zone off the end of `words`; a zone anywhere else is an error."""
    if len(words) < 2:  # a zone alone is not a time; leave it to be unreadable
        return None, None
    found = _zone(words[-1])
    if found is not None:
        words.pop()
        if _zone(words[-1]) is not None:
            raise CommandError(TWO_ZONES.format(said=escape(said)))
    for word in words:
        if _zone(word) is not None:
            raise CommandError(ZONE_NOT_LAST.format(said=escape(said), word=escape(word.upper())))
    return found if found is not None else (None, None)


def _clock(word: str, said: str) -> time | None:
    """'8pm', '8:30 pm', '8.30pm', '20:00', '20:00:15.5', 'noon' -> a time; None if not one."""
    if word == "noon":
        return time(12)
    if word == "midnight":  # the start or the end of the day? make them say
        raise CommandError(UNCLEAR_CLOCK.format(said=escape(said), word=escape(word)))
    match = _CLOCK.fullmatch(word)
    if match is None or not (match[2] == ":" or match[6]):
        return None
    hour, minute, second = int(match[1]), int(match[3] or 0), int(match[4] or 0)
    if match[6]:
        if not 1 <= hour <= 12:
            raise CommandError(BAD_CLOCK.format(said=escape(said), word=escape(word)))
        hour = hour % 12 + (12 if match[6] == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise CommandError(BAD_CLOCK.format(said=escape(said), word=escape(word)))
    return time(hour, minute, second, int((match[5] or "").ljust(6, "0")))


def _split_clock(
    words: list[str], said: str, *, now: datetime, place: tzinfo, prefer: str
) -> tuple[time, list[str]]:
    """The time of day (first or last word) and the words that name the day."""
    if not words:
        raise CommandError(UNREADABLE.format(said=escape(said)))
    for index in (0, len(words) - 1):
        clock = _clock(words[index], said)
        if clock is not None:
            return clock, words[:index] + words[index + 1 :]
    # No time of day: say what is missing if the rest reads as a day.
    day_of = functools.partial(_day, said=said, clock=time(), now=now, place=place, prefer=prefer)
    if re.fullmatch(r"\d{1,2}", words[-1], re.ASCII) and day_of(words[:-1]) is not None:
        raise CommandError(UNCLEAR_CLOCK.format(said=escape(said), word=escape(words[-1])))
    if day_of(words) is not None:
        raise CommandError(NO_TIME_OF_DAY.format(said=escape(said)))
    raise CommandError(UNREADABLE.format(said=escape(said)))


_DAY_OFFSETS = {"today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "yesterday": -1}


def _weekday(word: str) -> int:
    """0 for Monday ... 6 for Sunday, -1 if the word is not a weekday."""
    number = _NAMES.weekday(_WEEKDAY_ALIASES.get(word, word))
    return -1 if number is None else number


def _day(
    words: list[str], said: str, *, clock: time, now: datetime, place: tzinfo, prefer: str
) -> date | None:
    """The local date the day words name, in `place`; None if they name none."""
    today = now.astimezone(place).date()
    match words:
        case []:
            return today
        case [word] if word in _DAY_OFFSETS:
            return today + timedelta(days=_DAY_OFFSETS[word])
        case ["next", word] if _weekday(word) >= 0:
            return today + timedelta(days=(_weekday(word) - today.weekday() - 1) % 7 + 1)
        case ["last", word] if _weekday(word) >= 0:
            return today - timedelta(days=(today.weekday() - _weekday(word) - 1) % 7 + 1)
        case [word] | ["this", word] if _weekday(word) >= 0:
            return _nearest_weekday(_weekday(word), clock, now=now, place=place, prefer=prefer)
    return _calendar_date(words, said, today=today, prefer=prefer)


def _nearest_weekday(
    weekday: int, clock: time, *, now: datetime, place: tzinfo, prefer: str
) -> date:
    """Future: the next such day whose time is still ahead; past: the last one already gone."""
    today = now.astimezone(place).date()
    if prefer == "future":
        day = today + timedelta(days=(weekday - today.weekday()) % 7)
        if datetime.combine(day, clock, tzinfo=place) <= now:
            day += timedelta(days=7)
    else:
        day = today - timedelta(days=(today.weekday() - weekday) % 7)
        if datetime.combine(day, clock, tzinfo=place) > now:
            day -= timedelta(days=7)
    return day


def _calendar_date(words: list[str], said: str, *, today: date, prefer: str | None) -> date | None:
    """'2026-12-01', 'Dec 1', '1st of December 2026', 'Tue Dec 1 2026'; None if not a date.

    Without a year, `prefer` picks the year: the date's next (future) or last (past)
    occurrence counting today; with `prefer=None` a year is required.
    """
    if len(words) == 1 and (match := _ISO_DATE.fullmatch(words[0])):
        return _make_date(int(match[1]), int(match[2]), int(match[3]), said)
    for word in words:
        if _NUMERIC_DATE.fullmatch(word):
            raise CommandError(NUMERIC_DATE.format(said=escape(said), word=escape(word)))
    named = _weekday(words[0]) if words else -1
    rest = [w for w in words[1:] if w != "of"] if named >= 0 else [w for w in words if w != "of"]
    month = day = year = None
    shape = ""
    for word in rest:
        if (number := _NAMES.month(word)) is not None:
            shape, month = shape + "M", number
        elif match := _DAY_NUMBER.fullmatch(word):
            shape, day = shape + "D", int(match[1])
        elif _YEAR.fullmatch(word):
            shape, year = shape + "Y", int(word)
        else:
            return None
    if shape not in ("MD", "DM", "MDY", "DMY") or month is None or day is None:
        return None
    if year is None:
        if prefer is None:
            raise CommandError(DATE_NEEDS_YEAR.format(said=escape(said)))
        year = today.year
        if prefer == "future" and (month, day) < (today.month, today.day):
            year += 1
        elif prefer == "past" and (month, day) > (today.month, today.day):
            year -= 1
    result = _make_date(year, month, day, said)
    if named >= 0 and result.weekday() != named:
        raise CommandError(
            WRONG_WEEKDAY.format(
                said=escape(said),
                day=_show_day(result),
                actual=_day_name(result.weekday()),
                named=_day_name(named),
            )
        )
    return result


def _make_date(year: int, month: int, day: int, said: str) -> date:
    """A date, or the error that there is no such day (Feb 30)."""
    _check_year(year, said)
    try:
        return date(year, month, day)
    except ValueError:
        raise CommandError(NO_SUCH_DAY.format(said=escape(said))) from None


def utc_in_years(at: datetime) -> datetime | None:
    """An aware time in UTC, or None when it falls outside the years 2000 to 2100.

    The year is checked before converting: year 1 at +01:00 (or 9999 at -01:00)
    has no UTC time, and converting it raises OverflowError.
    """
    if not FIRST_YEAR <= at.year <= LAST_YEAR:
        return None
    utc = at.astimezone(UTC)
    return utc if FIRST_YEAR <= utc.year <= LAST_YEAR else None


def _check_year(year: int, said: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise CommandError(OUT_OF_RANGE.format(said=escape(said)))


def _localize(naive: datetime, place: tzinfo, abbreviation: str | None, said: str) -> datetime:
    """Attach the zone; a seasonal abbreviation must be the zone's own name at that time."""
    if not isinstance(place, ZoneInfo):
        return naive.replace(tzinfo=place)
    if abbreviation not in _SEASONAL:
        return resolve_local(naive, place, said=said)
    for fold in (0, 1):  # 'EDT' or 'EST' also settles which 01:30 of a fall-back night
        candidate = naive.replace(tzinfo=place, fold=fold)
        if dateutil_tz.datetime_exists(candidate) and candidate.tzname() == abbreviation:
            return candidate
    actual = resolve_local(naive, place, said=said).tzname() or "another zone"
    raise CommandError(
        WRONG_ABBREVIATION.format(
            clock=f"{naive:%H:%M}",
            abbr=abbreviation,
            day=_show_day(naive.date()),
            place=place.key.rsplit("/", 1)[-1].replace("_", " "),
            actual=actual,
            generic=_GENERIC.get(place.key, place.key),
        )
    )


def _show_day(day: date) -> str:
    return f"{_NAMES.MONTHS[day.month - 1][0]} {day.day}"


def _day_name(weekday: int) -> str:
    return _NAMES.WEEKDAYS[weekday][1]
