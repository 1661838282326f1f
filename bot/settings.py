"""Settings from the environment (SPEC §8), read once into one frozen value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATABASE_URL = "sqlite:///statusbot.db"


class SettingsError(ValueError):
    """A setting has a value statusbot can't use; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    port: int = 3000
    page_dir: Path = Path("public")
    page_name: str = "Status"
    page_url: str = "http://localhost:3000"
    timezone: str = "UTC"
    support_email: str | None = None
    editors: frozenset[str] = frozenset()
    notify_channels: tuple[str, ...] = ()
    stale_after: timedelta = timedelta(minutes=30)
    maintenance_notice: timedelta = timedelta(minutes=60)
    scheduler: bool = True
    api_token: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting; a bad value raises SettingsError naming the variable."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        timezone = get("STATUSBOT_TIMEZONE") or "UTC"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"STATUSBOT_TIMEZONE={timezone!r} is not a time zone; use an IANA name such as "
                "Australia/Sydney or America/New_York."
            ) from exc
        port_text = get("PORT") or "3000"
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SettingsError(f"PORT={port_text!r} is not a port number (1 to 65535).")
        page_url = (get("STATUSBOT_PAGE_URL") or f"http://localhost:{port_text}").rstrip("/")
        return cls(
            database_url=get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_api_url=get("SLACK_API_URL"),
            port=int(port_text),
            page_dir=Path(get("STATUSBOT_PAGE_DIR") or "public"),
            page_name=get("STATUSBOT_PAGE_NAME") or "Status",
            page_url=page_url,
            timezone=timezone,
            support_email=get("STATUSBOT_SUPPORT_EMAIL"),
            editors=frozenset(_ids(get("STATUSBOT_EDITORS"))),
            notify_channels=tuple(_ids(get("STATUSBOT_NOTIFY_CHANNELS"))),
            stale_after=duration(
                "STATUSBOT_STALE_AFTER", get("STATUSBOT_STALE_AFTER"), timedelta(minutes=30)
            ),
            maintenance_notice=duration(
                "STATUSBOT_MAINTENANCE_NOTICE",
                get("STATUSBOT_MAINTENANCE_NOTICE"),
                timedelta(minutes=60),
            ),
            scheduler=(get("STATUSBOT_SCHEDULER") or "on").lower()
            not in ("off", "0", "false", "no"),
            api_token=get("STATUSBOT_API_TOKEN"),
        )


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


_DURATION = re.compile(r"(\d+)\s*(d|h|m|s)", re.IGNORECASE)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def duration(name: str, text: str | None, default: timedelta) -> timedelta:
    """'30m', '1h30m', '90s', '2d', or a plain number of minutes."""
    if text is None:
        return default
    compact = text.replace(" ", "").lower()
    if compact.isdigit():
        return timedelta(minutes=int(compact))
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise SettingsError(
            f"{name}={text!r} is not a duration; write it like 30m, 1h, 1h30m or 90s."
        )
    return timedelta(seconds=sum(int(n) * _UNITS[u.lower()] for n, u in parts))
