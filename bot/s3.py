"""Publishing the rendered page to S3-compatible storage (AWS S3, MinIO, R2), linked files first.

The local write (renderers/publish.py) stays the source of truth; this copies the same
files to a bucket so a CDN can serve them. Three promises:

- Only new and changed files are uploaded: the MD5 of what each key last received is kept
  in memory, seeded on first use from one listing of the prefix (S3's ETag of a plain PUT
  is the MD5 of its body).
- Files go up in an order that never shows a reader a dead link: incident pages, then the
  JSON, feeds, calendar and badge, then history.html, and index.html last.
- A failed upload (after botocore's own retries) raises S3PublishError and stops there:
  what went up stays up, index.html is not uploaded ahead of what it links to, and the
  files not yet uploaded are kept, so the next publish (or retry()) uploads them even when
  its caller, rendering incrementally, does not offer them again.

The caller after a local write: `s3.publish(files)` with the whole rendered mapping, and
`s3.remove(paths)` for pages it deleted. One instance per process; calls are serialised.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Collection, Mapping
from typing import Any

# boto3 and botocore ship no type information and no stubs are installed; the client is
# `Any` at this boundary, and everything this module exposes is typed.
import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from bot.settings import Settings, SettingsError, normalise_s3_prefix
from renderers.publish import IMMUTABLE, content_type, fingerprinted

log = logging.getLogger(__name__)

# Status changes must reach readers within seconds, so every file is cached briefly;
# stale-while-revalidate lets a CDN answer at once while it fetches the new copy.
CACHE_CONTROL = "public, max-age=30, stale-while-revalidate=60"

# Standard mode retries throttling, 5xx and connection errors with backoff (3 attempts
# unless AWS_MAX_ATTEMPTS says otherwise). Checksums only "when required": we send our own
# Content-MD5, and some S3-compatible stores refuse botocore's newer default CRC32 headers.
CLIENT_CONFIG = Config(
    retries={"mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


class S3PublishError(RuntimeError):
    """Listing or uploading failed after botocore's retries; the message names the key."""

    def __init__(self, message: str, *, key: str | None, uploaded: list[str]) -> None:
        super().__init__(message)
        self.key = key
        self.uploaded = uploaded


class UnsafeKeyError(ValueError):
    """A file path that must not become an object key (absolute, '..', empty parts)."""


def upload_rank(path: str) -> tuple[int, str]:
    """Sort key: pages that are linked to first, then data, history.html, index.html last."""
    if fingerprinted(path):
        return (-1, path)  # the stylesheet: every page links it, so it goes up before them
    if path == "index.html":
        return (3, path)
    if path == "history.html":
        return (2, path)
    if path.endswith(".html"):
        return (0, path)  # incidents/N.html: the JSON, feeds and both lists link to them
    return (1, path)  # JSON, feeds, calendar, badge, assets: index.html may refer to them


def check_key(path: str) -> None:
    """Refuse a path that could escape the prefix or name an odd key; UnsafeKeyError if so."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or not path.isprintable()
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UnsafeKeyError(
            f"{path!r} can't be published: a page file is a relative path such as "
            "incidents/3.html, without '..', '.', empty parts, backslashes or control characters."
        )


def make_client(*, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 S3 client with standard retries; credentials come from boto3's usual chain."""
    session = boto3.session.Session()  # one per client: the default session isn't thread-safe
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=CLIENT_CONFIG)


class S3Publisher:
    """Uploads the page's files to one bucket under one prefix, skipping unchanged ones."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3Publisher needs a bucket")
        self.bucket = bucket
        try:
            self.prefix = normalise_s3_prefix(prefix)
        except ValueError as exc:
            raise ValueError(f"S3 prefix {prefix!r}: {exc}") from exc
        self.endpoint_url = endpoint_url
        self.region = region
        self.client: Any = (
            client if client is not None else make_client(endpoint_url=endpoint_url, region=region)
        )
        self._lock = threading.Lock()
        self._etags: dict[str, str] | None = None  # path -> MD5 hex of its object; None: unread
        self._pending: dict[str, bytes] = {}  # what a failed publish did not upload

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> S3Publisher:
        """The publisher STATUSBOT_S3_* describe; SettingsError when no bucket is set."""
        if not settings.s3_bucket:
            raise SettingsError("STATUSBOT_S3_BUCKET is not set, so there is nowhere to publish.")
        return cls(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            client=client,
        )

    def __repr__(self) -> str:
        return f"S3Publisher(s3://{self.bucket}/{self.prefix})"

    def key(self, path: str) -> str:
        """The object key of a page file."""
        return self.prefix + path

    @property
    def pending(self) -> list[str]:
        """Files a failed publish did not get to upload; the next publish or retry() sends them."""
        with self._lock:
            return sorted(self._pending, key=upload_rank)

    def publish(self, files: Mapping[str, bytes]) -> list[str]:
        """Upload new and changed files, index.html last; returns the keys uploaded, in order."""
        for path in files:
            check_key(path)
        with self._lock:
            return self._publish(files)

    def retry(self) -> list[str]:
        """Upload what a failed publish left pending; returns the keys uploaded."""
        with self._lock:
            return self._publish({})

    def remove(self, paths: Collection[str]) -> list[str]:
        """Delete page files (a deleted incident's page), after anything pending; returns keys."""
        for path in paths:
            check_key(path)
        with self._lock:
            # Pending files may include an index.html that still links to these pages.
            self._publish({})
            etags = self._known_etags()
            removed: list[str] = []
            for path in sorted(paths):
                try:
                    self.client.delete_object(Bucket=self.bucket, Key=self.key(path))
                except (ClientError, BotoCoreError) as exc:
                    raise S3PublishError(
                        f"deleting s3://{self.bucket}/{self.key(path)} failed: {exc}",
                        key=self.key(path),
                        uploaded=[],
                    ) from exc
                etags.pop(path, None)
                removed.append(self.key(path))
            return removed

    def resync(self) -> None:
        """Forget what is in the bucket, so the next publish lists the prefix again."""
        with self._lock:
            self._etags = None

    def _publish(self, files: Mapping[str, bytes]) -> list[str]:
        etags = self._known_etags()
        # The caller may render incrementally, so a file a failed publish left behind (an
        # incident page) need not be offered again: carry it over, unless superseded.
        todo = {**self._pending, **files}
        changed = []
        for path in sorted(todo, key=upload_rank):
            digest = hashlib.md5(todo[path], usedforsecurity=False)
            if etags.get(path) != digest.hexdigest():
                changed.append((path, digest))
        uploaded: list[str] = []
        for done, (path, digest) in enumerate(changed):
            try:
                self._put(path, todo[path], digest.digest())
            except (ClientError, BotoCoreError) as exc:
                # The object may or may not have changed; either way upload it next time.
                etags.pop(path, None)
                self._pending = {left: todo[left] for left, _ in changed[done:]}
                held = ", index.html among them," if "index.html" in self._pending else ""
                raise S3PublishError(
                    f"uploading {path} to s3://{self.bucket}/{self.key(path)} failed: {exc}. "
                    f"{len(uploaded)} file(s) went up before it and stay; {len(self._pending)} "
                    f"file(s){held} were not uploaded and are pending for the next publish.",
                    key=self.key(path),
                    uploaded=uploaded,
                ) from exc
            etags[path] = digest.hexdigest()
            uploaded.append(self.key(path))
        self._pending = {}
        if uploaded:
            log.info(
                "published %d of %d files to s3://%s/%s",
                len(uploaded),
                len(todo),
                self.bucket,
                self.prefix,
            )
        return uploaded

    def _put(self, path: str, body: bytes, md5: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(path),
            Body=body,
            ContentType=content_type(path),
            CacheControl=IMMUTABLE if fingerprinted(path) else CACHE_CONTROL,
            ContentMD5=base64.b64encode(md5).decode("ascii"),
        )

    def _known_etags(self) -> dict[str, str]:
        if self._etags is None:
            self._etags = self._list_etags()
        return self._etags

    def _list_etags(self) -> dict[str, str]:
        etags: dict[str, str] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    path = item["Key"][len(self.prefix) :]
                    # A multipart or KMS-encrypted object's ETag is no MD5; it just won't match.
                    etags[path] = item["ETag"].strip('"').lower()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "AccessDenied":
                log.warning(
                    "may not list s3://%s/%s (%s); uploading every file once instead",
                    self.bucket,
                    self.prefix,
                    exc,
                )
                return {}
            raise S3PublishError(
                f"listing s3://{self.bucket}/{self.prefix} failed: {exc}", key=None, uploaded=[]
            ) from exc
        except BotoCoreError as exc:
            raise S3PublishError(
                f"listing s3://{self.bucket}/{self.prefix} failed: {exc}", key=None, uploaded=[]
            ) from exc
        return etags
