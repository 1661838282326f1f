"""Reading a Statuspage page for `statusbot import statuspage` (SPEC §11): the transport.

Three sources give the same documents (file name → decoded JSON), which
commands/statuspage_data.py reads: a page's public v2 files over HTTP, the v1
manage API (paginated, within its rate limit, with an API key), or a directory
of saved files. Every body is read up to a size limit and decoded within a
nesting limit; anything wrong with the source is a `CommandError` that says
what and where, never a traceback.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from commands.errors import CommandError
from commands.statuspage_data import MAX_DOCUMENT_BYTES, V1_FILES, V2_FILES, decode, too_big

DEFAULT_API_URL = "https://api.statuspage.io/v1"
# Statuspage's documented limit is about one request a second per key.
DEFAULT_RATE = 1.0
PER_PAGE = 100  # Statuspage's largest page of results
MAX_PAGES = 10_000  # per list: a server that never ends its list is stopped here
MAX_RETRY_AFTER = 120.0  # seconds a 429 may ask us to wait before we give up instead
ATTEMPTS = 5  # per request, for 429s, 5xx and dropped connections
CHUNK = 64 * 1024
USER_AGENT = "statusbot-import/1 (+https://github.com/statusbot)"

# what is being read, and how many items so far
OnRead = Callable[[str, int], None]


def _nothing(what: str, items: int) -> None:
    return None


class Fetcher:
    """GETs JSON within the size limit, at most `rate` requests a second, retrying what
    a server asks to be retried (429 with Retry-After, 5xx) a few times."""

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_read: OnRead = _nothing,
    ) -> None:
        import urllib3  # here, not at the top: every `statusbot` command loads this module

        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self.sleep = sleep
        self.monotonic = monotonic
        self.on_read = on_read
        self._last = -1e9
        self.requests = 0
        self.waited = 0.0

    def get(self, url: str, *, what: str, headers: dict[str, str] | None = None) -> Any:
        """The decoded JSON at `url`; a CommandError naming `what` if it can't be had."""
        import urllib3

        for attempt in range(1, ATTEMPTS + 1):
            self._pace()
            try:
                response = self.pool.request(
                    "GET", url, headers=headers, preload_content=False, decode_content=True
                )
            except urllib3.exceptions.HTTPError as error:
                if attempt == ATTEMPTS:
                    raise CommandError(
                        f"Could not read {what} from {_host(url)}: {error}."
                    ) from None
                self._wait(2.0**attempt)
                continue
            try:
                status = response.status
                if status == 429 or status >= 500:
                    if attempt == ATTEMPTS:
                        raise CommandError(
                            f"{_host(url)} answered {status} for {what} {ATTEMPTS} times; "
                            "try again later."
                        )
                    self._wait(self._retry_after(response, default=2.0**attempt, what=what))
                    continue
                if status >= 400:
                    raise HTTPRefusal(status, _refusal(status, what, url))
                body = _read_limited(response, what)
            finally:
                response.release_conn()
            return decode(body, what)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _pace(self) -> None:
        wait = self._last + self.interval - self.monotonic()
        if wait > 0:
            self._wait(wait)
        self._last = self.monotonic()
        self.requests += 1

    def _wait(self, seconds: float) -> None:
        self.waited += seconds
        self.sleep(seconds)

    def _retry_after(self, response: Any, *, default: float, what: str) -> float:
        value = (response.headers.get("Retry-After") or "").strip()
        if not value:
            return default
        seconds: float | None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                seconds = (when - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                seconds = None
        if seconds is None:
            return default
        if seconds > MAX_RETRY_AFTER:
            raise CommandError(
                f"The server asked to wait {seconds:,.0f} s before reading {what} (rate "
                f"limited); try again later, or lower --requests-per-second."
            )
        return max(seconds, 0.0)


class HTTPRefusal(CommandError):
    """A 4xx answer (other than 429): the request itself was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _read_limited(response: Any, what: str) -> bytes:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > MAX_DOCUMENT_BYTES:
        raise too_big(what, int(length))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(CHUNK):
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise too_big(what)
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(status: int, what: str, url: str) -> str:
    host = _host(url)
    if status in (401, 403):
        return f"{host} refused the API key ({status}) for {what}: check --api-key."
    if status == 404:
        return f"{host} has no {what} (404): check the page's address (or --page-id and --api-url)."
    return f"{host} answered {status} for {what}."


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def page_base(url: str) -> str:
    """A page's address from what someone pasted: the page, or one of its API files."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandError(
            f"'{url[:200]}' is not a page's address; give it as https://status.example.com."
        )
    path = parts.path
    marker = path.find("/api/v2")
    if marker >= 0:
        path = path[:marker]
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}"


def fetch_v2(fetcher: Fetcher, url: str) -> dict[str, Any]:
    """The public v2 files of the page at `url`."""
    base = page_base(url)
    docs: dict[str, Any] = {}
    for name in V2_FILES:
        try:
            docs[name] = fetcher.get(f"{base}/api/v2/{name}", what=name)
        except HTTPRefusal as refusal:
            if name == "summary.json" or refusal.status != 404:
                raise
            continue  # an old page without the file: summary.json has the rest
        fetcher.on_read(name, _count(docs[name]))
    return docs


# What the v1 API lists, by the file name a saved copy has; the optional ones a
# page's plan or the key's rights may not allow; and the number of its first page:
# Statuspage counts the subscribers' pages from 0 ("the first page is page 0",
# `page * limit` skipped), every other list's from 1.
V1_LISTS = (
    ("components.json", "components", True, 1),
    ("component-groups.json", "component-groups", False, 1),
    ("incidents.json", "incidents", True, 1),
    ("subscribers.json", "subscribers", False, 0),
    ("incident_templates.json", "incident_templates", False, 1),
)


def fetch_v1(
    fetcher: Fetcher,
    *,
    api_url: str,
    page_id: str,
    api_key: str,
    per_page: int = PER_PAGE,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    """Everything the v1 manage API gives about one page, every page of every list."""
    base = api_url.strip().rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise CommandError(f"--api-url '{base[:200]}' is not an http(s) URL.")
    if not page_id.strip() or "/" in page_id or len(page_id) > 64:
        raise CommandError("--page-id is the page's id from Statuspage's API info page.")
    headers = {"Authorization": f"OAuth {api_key.strip()}"}
    root = f"{base}/pages/{page_id.strip()}"
    docs: dict[str, Any] = {"page.json": fetcher.get(root, what="the page", headers=headers)}
    fetcher.on_read("page.json", 1)
    for name, path, required, first in V1_LISTS:
        try:
            docs[name] = _all_pages(fetcher, f"{root}/{path}", name, headers, per_page, first=first)
        except HTTPRefusal as refusal:
            if required or refusal.status in (401,):
                raise
            if skipped is not None:
                skipped.append(f"{name}: not readable ({refusal.status}), not imported")
    return docs


def _all_pages(
    fetcher: Fetcher,
    url: str,
    name: str,
    headers: dict[str, str],
    per_page: int,
    *,
    first: int = 1,
) -> list[Any]:
    """Every item of a paginated list: `page` from `first` until a page brings nothing new."""
    items: list[Any] = []
    seen: set[str] = set()
    for number in range(first, first + MAX_PAGES):
        query = urlencode({"page": number, "per_page": per_page, "limit": per_page})
        got = fetcher.get(f"{url}?{query}", what=f"{name} page {number}", headers=headers)
        if isinstance(got, dict):  # some lists come wrapped, as in v2
            got = next((v for v in got.values() if isinstance(v, list)), [])
        if not isinstance(got, list):
            raise CommandError(f"{name} page {number} is not a list.")
        fresh = [i for i in got if not (isinstance(i, dict) and str(i.get("id")) in seen)]
        seen.update(str(i.get("id")) for i in fresh if isinstance(i, dict))
        if not fresh:
            return items
        items.extend(fresh)
        fetcher.on_read(name, len(items))
    raise CommandError(f"{name} goes on past {MAX_PAGES:,} pages; stopped there.")


def read_dir(directory: str, on_read: OnRead = _nothing) -> dict[str, Any]:
    """The saved files in `directory` (or its api/v2/), under the names the page serves."""
    root = Path(directory)
    if not root.is_dir():
        raise CommandError(f"--from {directory!r} is not a directory.")
    docs: dict[str, Any] = {}
    for name in (*V2_FILES, *V1_FILES, "components.json", "incidents.json"):
        if name in docs:
            continue
        for place in (root / name, root / "api" / "v2" / name):
            if not place.exists():
                continue
            if not place.is_file():
                raise CommandError(f"{place} is not a file.")
            size = os.stat(place).st_size
            if size > MAX_DOCUMENT_BYTES:
                raise too_big(str(place), size)
            docs[name] = decode(place.read_bytes(), str(place))
            on_read(name, _count(docs[name]))
            break
    if not docs:
        raise CommandError(
            f"{directory} has none of a Statuspage page's files ({', '.join(V2_FILES)}, or "
            "the v1 lists); save them there first."
        )
    return docs


def _count(doc: Any) -> int:
    if isinstance(doc, list):
        return len(doc)
    if isinstance(doc, dict):
        return sum(len(v) for v in doc.values() if isinstance(v, list))
    return 0
