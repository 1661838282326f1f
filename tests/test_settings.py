"""Settings come from the environment; bad values are refused with the variable's name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///statusbot.db"
    assert s.port == 3000
    assert s.page_dir == Path("public")
    assert s.timezone == "UTC"
    assert s.editors == frozenset()
    assert s.stale_after == timedelta(minutes=30)
    assert s.maintenance_notice == timedelta(minutes=60)
    assert s.scheduler is True
    assert not s.slack_enabled


def test_everything_set() -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgres://u@h/db",
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "secret",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "PORT": "8080",
            "STATUSBOT_PAGE_DIR": "/srv/page",
            "STATUSBOT_PAGE_NAME": "Vero",
            "STATUSBOT_PAGE_URL": "https://status.example.com/",
            "STATUSBOT_TIMEZONE": "Australia/Sydney",
            "STATUSBOT_SUPPORT_EMAIL": "help@example.com",
            "STATUSBOT_EDITORS": "U1, S2 ,,U3",
            "STATUSBOT_NOTIFY_CHANNELS": "C1,C2",
            "STATUSBOT_STALE_AFTER": "1h30m",
            "STATUSBOT_MAINTENANCE_NOTICE": "15",
            "STATUSBOT_SCHEDULER": "off",
        }
    )
    assert s.editors == frozenset({"U1", "S2", "U3"})
    assert s.notify_channels == ("C1", "C2")
    assert s.page_url == "https://status.example.com"
    assert s.stale_after == timedelta(minutes=90)
    assert s.maintenance_notice == timedelta(minutes=15)
    assert s.scheduler is False
    assert s.slack_enabled
    assert s.tz.key == "Australia/Sydney"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("STATUSBOT_TIMEZONE", "Mars/Olympus", "not a time zone"),
        ("PORT", "http", "not a port"),
        ("PORT", "70000", "not a port"),
        ("STATUSBOT_STALE_AFTER", "soon", "not a duration"),
        ("STATUSBOT_MAINTENANCE_NOTICE", "1h 5x", "not a duration"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value) and words in str(caught.value)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


def test_app_url_defaults_to_the_page_url() -> None:
    s = Settings.from_env({"STATUSBOT_PAGE_URL": "https://status.example.com/"})
    assert s.app_url == "https://status.example.com"
    set_apart = Settings.from_env({"STATUSBOT_APP_URL": "https://app.example.com/"})
    assert set_apart.app_url == "https://app.example.com"


@pytest.mark.parametrize(
    "value", ["app.example.com", "ftp://app.example.com", "https://", "https://a.example?x=1"]
)
def test_app_url_must_be_an_http_address(value: str) -> None:
    with pytest.raises(SettingsError, match="STATUSBOT_APP_URL"):
        Settings.from_env({"STATUSBOT_APP_URL": value})
