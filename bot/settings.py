"""Settings from the environment (SPEC §8), read once into one frozen value."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import ArgumentError

from storage.db import sqlite_file
from storage.snapshot import page_id as derived_page_id

DEFAULT_DATABASE_URL = "sqlite:///statusbot.db"

EVERYONE_MAY_EDIT = (
    "STATUSBOT_EDITORS is not set: everyone who can use statusbot (anyone in the Slack "
    "workspace) may change the status page. Set it to Slack user ids (U…) and user-group ids "
    "(S…), separated by commas, to say who may."
)


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
    # Where the page's sign-up form posts: `statusbot serve` (SPEC §9); empty: the page's URL.
    app_url: str = ""
    timezone: str = "UTC"
    support_email: str | None = None
    editors: frozenset[str] = frozenset()
    notify_channels: tuple[str, ...] = ()
    stale_after: timedelta = timedelta(minutes=30)
    maintenance_notice: timedelta = timedelta(minutes=60)
    scheduler: bool = True
    api_token: str | None = None
    # The one page's id in the v1 API (SPEC §10); empty: the id the v2 JSON shows.
    page_id: str = ""
    # Requests per key per minute on the v1 API (SPEC §10).
    api_rate_limit: int = 120
    # Seconds a request may take to arrive, head and body (bot/http_worker.py).
    request_timeout: float = 10.0
    # Publishing to S3-compatible storage (bot/s3.py): on when s3_bucket is set.
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Mail to subscribers (bot/notify/email.py): on when smtp_url is set.
    smtp_url: str | None = None
    mail_from: str | None = None

    @property
    def mail_sender(self) -> str:
        """The From of subscriber mail: STATUSBOT_MAIL_FROM, or statusbot@ the page's host."""
        return self.mail_from or f"statusbot@{urlsplit(self.page_url).hostname or 'localhost'}"

    # Webhooks to loopback/private addresses (tests, private deployments); off: refused.
    webhook_allow_private: bool = False
    # Prometheus metrics (bot/http/prometheus.py): GET /metrics on the web port when on,
    # and/or on a port of their own (metrics_port, bound to metrics_host).
    metrics: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None

    def __post_init__(self) -> None:
        if not self.app_url:  # a page on S3 still signs up through serve, at the page's URL
            object.__setattr__(self, "app_url", self.page_url)
        if not self.page_id:  # the v2 JSON's id, derived from the page's URL
            object.__setattr__(self, "page_id", derived_page_id(self.page_url))

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
        app_url = _app_url(get("STATUSBOT_APP_URL"), page_url)
        s3_bucket, s3_prefix, s3_endpoint_url, s3_region = _s3_settings(get)
        database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
        page_dir = Path(get("STATUSBOT_PAGE_DIR") or "public")
        check_page_dir(page_dir, database_url)
        smtp_url = get("STATUSBOT_SMTP_URL")
        if smtp_url is not None:
            smtp_target(smtp_url)  # refuse a URL the mailer could not use, now
        mail_from = get("STATUSBOT_MAIL_FROM")
        if mail_from is not None:
            _check_mail_from(mail_from)
        metrics_host, metrics_port = _metrics_port(get("STATUSBOT_METRICS_PORT"))
        return cls(
            database_url=database_url,
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_api_url=get("SLACK_API_URL"),
            port=int(port_text),
            page_dir=page_dir,
            page_name=get("STATUSBOT_PAGE_NAME") or "Status",
            page_url=page_url,
            app_url=app_url,
            timezone=timezone,
            support_email=get("STATUSBOT_SUPPORT_EMAIL"),
            editors=_editors(get("STATUSBOT_EDITORS")),
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
            page_id=_page_id(get("STATUSBOT_PAGE_ID")),
            api_rate_limit=_rate_limit(get("STATUSBOT_API_RATE_LIMIT")),
            request_timeout=_seconds("STATUSBOT_REQUEST_TIMEOUT", get("STATUSBOT_REQUEST_TIMEOUT")),
            s3_bucket=s3_bucket,
            s3_prefix=s3_prefix,
            s3_endpoint_url=s3_endpoint_url,
            s3_region=s3_region,
            smtp_url=smtp_url,
            mail_from=mail_from,
            webhook_allow_private=_switch(
                "STATUSBOT_WEBHOOK_ALLOW_PRIVATE", get("STATUSBOT_WEBHOOK_ALLOW_PRIVATE")
            ),
            metrics=_switch("STATUSBOT_METRICS", get("STATUSBOT_METRICS")),
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        )


MAX_REQUEST_TIMEOUT = 300.0

SMTP_PORTS = {"smtp": 587, "smtps": 465}
_SMTP_HINT = (
    "write it like smtp://USER:PASSWORD@mail.example.com:587 (STARTTLS when the server "
    "offers it) or smtps://USER:PASSWORD@mail.example.com:465 (TLS from the start); "
    "percent-encode @, : and / in the user name or password"
)


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where subscriber mail goes: STATUSBOT_SMTP_URL, taken apart."""

    host: str
    port: int
    implicit_tls: bool  # smtps: TLS from the first byte; smtp: STARTTLS when offered
    user: str | None
    password: str | None = field(default=None, repr=False)


def smtp_target(url: str) -> SmtpTarget:
    """STATUSBOT_SMTP_URL taken apart; SettingsError saying how to write it."""
    shown = _without_password(url)
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as exc:
        raise SettingsError(f"STATUSBOT_SMTP_URL={shown!r} is not a URL; {_SMTP_HINT}.") from exc
    scheme = parsed.scheme.lower()
    if scheme not in SMTP_PORTS:
        raise SettingsError(
            f"STATUSBOT_SMTP_URL={shown!r} must start with smtp:// or smtps://; {_SMTP_HINT}."
        )
    if not parsed.hostname:
        raise SettingsError(f"STATUSBOT_SMTP_URL={shown!r} names no mail server; {_SMTP_HINT}.")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise SettingsError(
            f"STATUSBOT_SMTP_URL={shown!r} has a path or query, which means nothing to SMTP; "
            f"{_SMTP_HINT}."
        )
    user = unquote(parsed.username) if parsed.username else None
    password = unquote(parsed.password) if parsed.password is not None else None
    if password is not None and user is None:
        raise SettingsError(
            f"STATUSBOT_SMTP_URL={shown!r} has a password but no user name; {_SMTP_HINT}."
        )
    return SmtpTarget(
        host=parsed.hostname,
        port=port or SMTP_PORTS[scheme],
        implicit_tls=scheme == "smtps",
        user=user,
        password=password,
    )


def _without_password(url: str) -> str:
    """The URL as it may be shown in an error: the password replaced by ***."""
    return re.sub(r"^([^:/]*://[^:@/]*:)[^@/]*@", r"\1***@", url)


def _check_mail_from(text: str) -> None:
    """STATUSBOT_MAIL_FROM must be one address, optionally with a name."""
    from email import policy  # only when it is set: `statusbot render` starts without it

    try:
        header = policy.default.header_factory("From", text)
        specs = [a.addr_spec for a in getattr(header, "addresses", ())]
        usable = not header.defects and len(specs) == 1 and "@" in specs[0]
    except (ValueError, IndexError):
        usable = False
    if not usable:
        raise SettingsError(
            f"STATUSBOT_MAIL_FROM={text!r} is not one email address; write it like "
            "status@example.com or 'Example Status <status@example.com>'."
        )


_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def _switch(name: str, text: str | None, default: bool = False) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off; anything else is refused."""
    if text is None:
        return default
    if text.lower() in _ON:
        return True
    if text.lower() in _OFF:
        return False
    raise SettingsError(f"{name}={text!r} is neither on nor off; write 1 (on) or 0 (off).")


def _page_id(text: str | None) -> str:
    if text is None:
        return ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", text):
        raise SettingsError(
            f"STATUSBOT_PAGE_ID={text!r} is not a page id: use letters, digits, - or _ "
            "(at most 40), e.g. the id of the Statuspage page you are moving from."
        )
    return text


def _rate_limit(text: str | None) -> int:
    if text is None:
        return 120
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise SettingsError(
            f"STATUSBOT_API_RATE_LIMIT={text!r} is not a number of requests per minute "
            "per key from 1 to 100000; e.g. 120."
        )
    return int(text)


def _metrics_port(text: str | None) -> tuple[str, int | None]:
    """STATUSBOT_METRICS_PORT: PORT (on 127.0.0.1) or HOST:PORT; unset: no port of its own."""
    if text is None:
        return "127.0.0.1", None
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(
            f"STATUSBOT_METRICS_PORT={text!r} is not a port; write a port number such as 9100 "
            "(served on 127.0.0.1), or HOST:PORT such as 0.0.0.0:9100."
        )
    return host, int(port)


def _app_url(text: str | None, page_url: str) -> str:
    """STATUSBOT_APP_URL: an http(s) address without query or fragment; the page's by default."""
    if text is None:
        return page_url
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(
            f"STATUSBOT_APP_URL={text!r} is not the address of `statusbot serve`; write it like "
            "https://status-app.example.com (http or https, no query)."
        )
    return text.rstrip("/")


def _seconds(name: str, text: str | None, default: float = 10.0) -> float:
    """A number of seconds, e.g. 10 or 2.5, above 0 and at most MAX_REQUEST_TIMEOUT."""
    if text is None:
        return default
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_REQUEST_TIMEOUT:  # also false for NaN
        raise SettingsError(
            f"{name}={text!r} is not a number of seconds; write it like 10 or 2.5 "
            f"(more than 0, at most {MAX_REQUEST_TIMEOUT:g})."
        )
    return value


def check_page_dir(page_dir: Path, database_url: str) -> None:
    """Refuse a page folder that holds the SQLite database: the web server publishes it."""
    try:
        database = sqlite_file(database_url)
    except ArgumentError:
        return  # not a URL at all: opening the database says so
    if database is None:
        return
    page = page_dir.resolve()
    folder = Path(database).resolve().parent
    if folder == page or page in folder.parents:
        raise SettingsError(
            f"STATUSBOT_PAGE_DIR={str(page_dir)!r} ({page}) holds the SQLite database "
            f"{Path(database).resolve()} (DATABASE_URL): the page folder is public, and the "
            "database with its audit log must not be. Set STATUSBOT_PAGE_DIR to a folder of "
            "its own, e.g. public, or keep the database outside it, e.g. "
            "DATABASE_URL=sqlite:////var/lib/statusbot/statusbot.db."
        )


_S3_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
_S3_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _s3_settings(
    get: Callable[[str], str | None],
) -> tuple[str | None, str, str | None, str | None]:
    """(bucket, prefix, endpoint URL, region); all unset unless STATUSBOT_S3_BUCKET is set."""
    bucket = get("STATUSBOT_S3_BUCKET")
    prefix_text = get("STATUSBOT_S3_PREFIX")
    endpoint_url = get("STATUSBOT_S3_ENDPOINT_URL")
    region = get("STATUSBOT_S3_REGION")
    if bucket is None:
        for name, value in (
            ("STATUSBOT_S3_PREFIX", prefix_text),
            ("STATUSBOT_S3_ENDPOINT_URL", endpoint_url),
            ("STATUSBOT_S3_REGION", region),
        ):
            if value is not None:
                raise SettingsError(
                    f"{name} is set but STATUSBOT_S3_BUCKET is not; set the bucket to publish "
                    f"to S3, or unset {name}."
                )
        return None, "", None, None
    if not _S3_BUCKET.fullmatch(bucket):
        raise SettingsError(
            f"STATUSBOT_S3_BUCKET={bucket!r} is not a bucket name; give the bare name "
            "(my-status-page), without s3:// or a path; put a path in STATUSBOT_S3_PREFIX."
        )
    try:
        prefix = normalise_s3_prefix(prefix_text or "")
    except ValueError as exc:
        raise SettingsError(f"STATUSBOT_S3_PREFIX={prefix_text!r}: {exc}") from exc
    if endpoint_url is not None:
        if not _is_http_url(endpoint_url):
            raise SettingsError(
                f"STATUSBOT_S3_ENDPOINT_URL={endpoint_url!r} is not an http(s) URL; write it "
                "like https://ACCOUNT.r2.cloudflarestorage.com or http://127.0.0.1:9000."
            )
        endpoint_url = endpoint_url.rstrip("/")
    if region is not None and not _S3_REGION.fullmatch(region):
        raise SettingsError(
            f"STATUSBOT_S3_REGION={region!r} is not a region name; write it like eu-west-1 "
            "(or auto for Cloudflare R2)."
        )
    return bucket, prefix, endpoint_url, region


def _is_http_url(text: str) -> bool:
    parsed = urlsplit(text)
    try:
        parsed.port  # noqa: B018 - raises ValueError when the port is not a number
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def normalise_s3_prefix(text: str) -> str:
    """'status', '/status/' and 'status/' all become 'status/'; '' stays ''."""
    parts = [part for part in text.strip().split("/") if part]
    for part in parts:
        if part in (".", "..") or "\\" in part or not part.isprintable():
            raise ValueError(
                "a key prefix is folder names separated by /, without '.', '..', "
                "backslashes or control characters"
            )
    return "".join(part + "/" for part in parts)


def _editors(text: str | None) -> frozenset[str]:
    """STATUSBOT_EDITORS: unset means everyone, so a value that names nobody is refused."""
    ids = frozenset(_ids(text))
    if text is not None and not ids:
        raise SettingsError(
            f"STATUSBOT_EDITORS={text!r} names nobody. List Slack user ids (U…) and user-group "
            "ids (S…) separated by commas, e.g. U012ABCDEF,S0ONCALL; or unset it to let "
            "everyone change the status page."
        )
    return ids


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
