"""Publishing the page to S3-compatible storage, against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped]
from botocore.retries.standard import ExponentialBackoff  # type: ignore[import-untyped]
from moto.server import ThreadedMotoServer

from bot.s3 import (
    CACHE_CONTROL,
    S3Publisher,
    S3PublishError,
    UnsafeKeyError,
    upload_rank,
)
from bot.settings import Settings, SettingsError
from renderers.publish import content_type

REGION = "us-east-1"

# What render_site returns, in miniature: every kind of file the page has.
PAGE: dict[str, bytes] = {
    "index.html": b"<h1>All Systems Operational</h1><a href='incidents/2.html'>",
    "history.html": b"<a href='incidents/1.html'></a><a href='incidents/2.html'></a>",
    "incidents/1.html": b"<h1>Segment calculation delays</h1>",
    "incidents/2.html": b"<h1>Database maintenance</h1>",
    "api/v2/summary.json": b'{"status": {"indicator": "none"}}',
    "api/v2/status.json": b'{"status": {"indicator": "none"}}',
    "api/v2/components.json": b'{"components": []}',
    "api/v2/incidents.json": b'{"incidents": []}',
    "api/v2/incidents/unresolved.json": b'{"incidents": []}',
    "api/v2/scheduled-maintenances.json": b'{"scheduled_maintenances": []}',
    "api/v2/scheduled-maintenances/upcoming.json": b'{"scheduled_maintenances": []}',
    "api/v2/scheduled-maintenances/active.json": b'{"scheduled_maintenances": []}',
    "history.atom": b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
    "history.rss": b"<rss version='2.0'/>",
    "maintenance.ics": b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    "badge.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
}

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".ics": "text/calendar; charset=utf-8",
    ".svg": "image/svg+xml",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 in server mode, on a free port of 127.0.0.1, for this module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials, no config files, no proxies, no instance metadata: nothing leaves."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries still happen, but without sleeping between them."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture(scope="module")
def store(endpoint: str) -> Any:
    """The test's own client, for making buckets and looking at what was published."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client("s3", endpoint_url=endpoint)


@dataclass
class Recorder:
    """Watches a client: the PutObject calls it makes, the HTTP requests it sends."""

    puts: list[dict[str, Any]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    @property
    def put_keys(self) -> list[str]:
        return [params["Key"] for params in self.puts]

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.s3.PutObject", self._on_put)
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_put(self, params: dict[str, Any], **_: Any) -> None:
        self.puts.append(dict(params))

    def _on_send(self, request: Any, **_: Any) -> None:
        assert urlsplit(request.url).hostname == "127.0.0.1", "a test tried to leave 127.0.0.1"
        self.sent.append(f"{request.method} {urlsplit(request.url).path}")


@dataclass
class Setup:
    endpoint: str
    bucket: str
    client: Any  # the test's own view of the store

    def publisher(self, prefix: str = "status/") -> tuple[S3Publisher, Recorder]:
        publisher = S3Publisher(
            bucket=self.bucket, prefix=prefix, endpoint_url=self.endpoint, region=REGION
        )
        recorder = Recorder()
        recorder.attach(publisher.client)
        return publisher, recorder

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return {
            item["Key"]: self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
            for item in listing.get("Contents", [])
        }

    def head(self, key: str) -> dict[str, Any]:
        head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        return head


@pytest.fixture
def s3(endpoint: str, store: Any) -> Setup:
    """A fresh, empty bucket on the local server."""
    bucket = f"status-{uuid.uuid4().hex[:12]}"
    store.create_bucket(Bucket=bucket)
    return Setup(endpoint, bucket, store)


@dataclass
class Outage:
    """Every HTTP attempt to upload `key` is answered `status` by the store, until end()."""

    client: Any
    key: str
    status: int = 503
    attempts: int = 0

    def __post_init__(self) -> None:
        self.client.meta.events.register_first("before-send.s3.PutObject", self._answer)

    def end(self) -> None:
        self.client.meta.events.unregister("before-send.s3.PutObject", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        if not urlsplit(request.url).path.endswith(f"/{self.key}"):
            return None
        self.attempts += 1
        body = b"<Error><Code>ServiceUnavailable</Code><Message>Slow down.</Message></Error>"
        return AWSResponse(request.url, self.status, {}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def changed(page: dict[str, bytes], *paths: str) -> dict[str, bytes]:
    return {path: body + (b" v2" if path in paths else b"") for path, body in page.items()}


# -- where files land, with which headers -------------------------------------------------


def test_every_file_lands_under_the_prefix_with_its_type_and_cache_headers(s3: Setup) -> None:
    publisher, _ = s3.publisher("status/")
    uploaded = publisher.publish(PAGE)

    assert sorted(uploaded) == sorted(f"status/{path}" for path in PAGE)
    assert s3.objects() == {f"status/{path}": body for path, body in PAGE.items()}
    for path, body in PAGE.items():
        head = s3.head(f"status/{path}")
        assert head["ContentType"] == TYPES[path[path.rfind(".") :]], path
        assert head["CacheControl"] == CACHE_CONTROL
        assert head["ETag"].strip('"') == hashlib.md5(body).hexdigest()


def test_the_stylesheet_goes_up_first_cached_for_good(s3: Setup) -> None:
    publisher, recorder = s3.publisher("status/")
    css = "style.0123abcdef.css"
    publisher.publish({**PAGE, css: b"body{color:red}"})
    head = s3.head(f"status/{css}")
    assert head["ContentType"] == "text/css; charset=utf-8"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert recorder.put_keys[0] == f"status/{css}"  # before the pages that link it
    assert s3.head("status/index.html")["CacheControl"] == CACHE_CONTROL


def test_without_a_prefix_files_land_at_the_top_of_the_bucket(s3: Setup) -> None:
    publisher, _ = s3.publisher("")
    publisher.publish(PAGE)
    assert set(s3.objects()) == set(PAGE)


def test_each_upload_carries_its_content_md5(s3: Setup) -> None:
    publisher, recorder = s3.publisher()
    publisher.publish(PAGE)
    for params in recorder.puts:
        body = PAGE[params["Key"].removeprefix("status/")]
        assert params["ContentMD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("incidents/12.html", "text/html; charset=utf-8"),
        ("api/v2/summary.json", "application/json"),
        ("history.atom", "application/atom+xml"),
        ("history.rss", "application/rss+xml"),
        ("maintenance.ics", "text/calendar; charset=utf-8"),
        ("badge.svg", "image/svg+xml"),
        ("static/page.css", "text/css; charset=utf-8"),
        ("favicon.png", "image/png"),
        ("LICENSE", "application/octet-stream"),
        ("v1.2/README", "application/octet-stream"),
    ],
)
def test_content_type_by_extension(path: str, expected: str) -> None:
    assert content_type(path) == expected


# -- only what changed ---------------------------------------------------------------------


def test_unchanged_files_are_not_uploaded_again(s3: Setup) -> None:
    publisher, recorder = s3.publisher()
    publisher.publish(PAGE)
    assert len(recorder.puts) == len(PAGE)
    recorder.puts.clear()

    assert publisher.publish(PAGE) == []
    assert recorder.puts == []

    new_page = changed(PAGE, "incidents/2.html", "index.html")
    new_page["incidents/3.html"] = b"<h1>Checkout errors</h1>"
    assert publisher.publish(new_page) == [
        "status/incidents/2.html",
        "status/incidents/3.html",
        "status/index.html",
    ]
    assert s3.objects("status/")["status/index.html"] == new_page["index.html"]


def test_the_bucket_is_listed_once_not_on_every_publish(s3: Setup) -> None:
    publisher, recorder = s3.publisher()
    publisher.publish(PAGE)
    publisher.publish(changed(PAGE, "badge.svg"))
    publisher.publish(PAGE)
    assert sum(1 for line in recorder.sent if line.startswith("GET")) == 1


def test_a_fresh_process_learns_what_is_already_there(s3: Setup) -> None:
    first, _ = s3.publisher()
    first.publish(PAGE)

    second, recorder = s3.publisher()  # a restart: nothing in memory
    assert second.publish(changed(PAGE, "badge.svg")) == ["status/badge.svg"]
    assert recorder.put_keys == ["status/badge.svg"]


def test_resync_notices_what_another_process_uploaded(s3: Setup) -> None:
    ours, _ = s3.publisher()
    theirs, _ = s3.publisher()
    ours.publish(PAGE)
    theirs.publish(changed(PAGE, "badge.svg"))

    # Our memory says the old badge is up, so the same page again uploads nothing...
    assert ours.publish(PAGE) == []
    # ...until we read the bucket again.
    ours.resync()
    assert ours.publish(PAGE) == ["status/badge.svg"]
    assert s3.objects("status/badge.svg") == {"status/badge.svg": PAGE["badge.svg"]}


def test_a_file_outside_our_prefix_is_neither_read_nor_touched(s3: Setup) -> None:
    other, _ = s3.publisher("other/")
    other.publish({"index.html": b"someone else's page"})
    ours, recorder = s3.publisher("status/")
    ours.publish(PAGE)
    assert "status/index.html" in recorder.put_keys
    assert s3.objects("other/") == {"other/index.html": b"someone else's page"}


# -- order ---------------------------------------------------------------------------------


def test_linked_files_go_up_first_and_the_index_last(s3: Setup) -> None:
    publisher, recorder = s3.publisher()
    publisher.publish(PAGE)
    order = [key.removeprefix("status/") for key in recorder.put_keys]

    assert order[-1] == "index.html"
    assert order[-2] == "history.html"
    incident_pages = [i for i, path in enumerate(order) if path.startswith("incidents/")]
    data = [i for i, path in enumerate(order) if not path.endswith(".html")]
    assert max(incident_pages) < min(data)
    assert [upload_rank(path)[0] for path in order] == sorted(upload_rank(p)[0] for p in order)


def test_an_index_that_is_the_only_change_goes_up_alone(s3: Setup) -> None:
    publisher, _ = s3.publisher()
    publisher.publish(PAGE)
    assert publisher.publish(changed(PAGE, "index.html")) == ["status/index.html"]


# -- failures ------------------------------------------------------------------------------


def test_a_failed_upload_stops_before_the_index_and_the_next_publish_finishes(
    s3: Setup,
) -> None:
    publisher, recorder = s3.publisher()
    publisher.publish(PAGE)
    recorder.puts.clear()

    new_page = changed(PAGE, "incidents/2.html", "api/v2/summary.json", "badge.svg", "index.html")
    outage = Outage(publisher.client, "status/api/v2/summary.json")
    with pytest.raises(S3PublishError) as caught:
        publisher.publish(new_page)

    error = caught.value
    assert error.key == "status/api/v2/summary.json"
    assert error.uploaded == ["status/incidents/2.html"]
    assert "api/v2/summary.json" in str(error) and "index.html among them" in str(error)
    assert publisher.pending == ["api/v2/summary.json", "badge.svg", "index.html"]
    assert outage.attempts == 3, "botocore's standard mode tries three times"
    on_s3 = s3.objects("status/")
    assert on_s3["status/incidents/2.html"] == new_page["incidents/2.html"]  # stays up
    assert on_s3["status/api/v2/summary.json"] == PAGE["api/v2/summary.json"]
    assert on_s3["status/badge.svg"] == PAGE["badge.svg"]  # after the failure: not tried
    assert on_s3["status/index.html"] == PAGE["index.html"]  # the old index, still whole

    # The store recovers; the next publish uploads what is left, and only that.
    outage.end()
    recorder.puts.clear()
    assert publisher.publish(new_page) == [
        "status/api/v2/summary.json",
        "status/badge.svg",
        "status/index.html",
    ]
    assert s3.objects("status/") == {f"status/{path}": body for path, body in new_page.items()}


def test_the_first_publish_failing_leaves_no_index_at_all(s3: Setup) -> None:
    publisher, _ = s3.publisher()
    Outage(publisher.client, "status/history.html", status=500)
    with pytest.raises(S3PublishError):
        publisher.publish(PAGE)
    on_s3 = s3.objects("status/")
    assert "status/index.html" not in on_s3
    assert "status/history.html" not in on_s3
    assert "status/incidents/1.html" in on_s3


def test_files_left_pending_go_up_even_when_not_offered_again(s3: Setup) -> None:
    """The Publisher renders incrementally: a failed incident page isn't in its next call."""
    publisher, recorder = s3.publisher()
    publisher.publish(PAGE)
    new_page = changed(PAGE, "index.html")
    new_page["incidents/3.html"] = b"<h1>Checkout errors</h1>"
    outage = Outage(publisher.client, "status/incidents/3.html")
    with pytest.raises(S3PublishError):
        publisher.publish(new_page)
    assert publisher.pending == ["incidents/3.html", "index.html"]
    outage.end()
    recorder.puts.clear()

    next_render = {path: body for path, body in new_page.items() if path != "incidents/3.html"}
    assert publisher.publish(next_render) == ["status/incidents/3.html", "status/index.html"]
    assert publisher.pending == []
    assert s3.objects("status/incidents/3.html") == {
        "status/incidents/3.html": new_page["incidents/3.html"]
    }


def test_a_newer_render_supersedes_what_was_pending(s3: Setup) -> None:
    publisher, _ = s3.publisher()
    outage = Outage(publisher.client, "status/index.html")
    with pytest.raises(S3PublishError):
        publisher.publish(PAGE)
    outage.end()
    newer = changed(PAGE, "index.html")
    assert publisher.publish(newer) == ["status/index.html"]
    assert s3.objects("status/index.html") == {"status/index.html": newer["index.html"]}


def test_retry_uploads_what_is_pending(s3: Setup) -> None:
    publisher, _ = s3.publisher()
    assert publisher.retry() == []
    outage = Outage(publisher.client, "status/history.html")
    with pytest.raises(S3PublishError):
        publisher.publish(PAGE)
    outage.end()
    assert publisher.retry() == ["status/history.html", "status/index.html"]
    assert publisher.pending == []


def test_removing_deleted_pages(s3: Setup) -> None:
    publisher, _ = s3.publisher()
    publisher.publish(PAGE)
    assert publisher.remove(["incidents/2.html"]) == ["status/incidents/2.html"]
    assert "status/incidents/2.html" not in s3.objects("status/")
    # Should it come back, it is uploaded again.
    assert publisher.publish(PAGE) == ["status/incidents/2.html"]


def test_nothing_is_removed_while_an_index_linking_to_it_is_pending(s3: Setup) -> None:
    publisher, _ = s3.publisher()
    publisher.publish(PAGE)
    without_2 = changed(PAGE, "index.html", "history.html")
    del without_2["incidents/2.html"]
    outage = Outage(publisher.client, "status/history.html")
    with pytest.raises(S3PublishError):
        publisher.publish(without_2)
    with pytest.raises(S3PublishError):
        publisher.remove(["incidents/2.html"])
    assert "status/incidents/2.html" in s3.objects("status/")  # the old index still links it

    outage.end()
    assert publisher.remove(["incidents/2.html"]) == ["status/incidents/2.html"]
    assert s3.objects("status/index.html") == {"status/index.html": without_2["index.html"]}
    assert "status/incidents/2.html" not in s3.objects("status/")


def test_unsafe_paths_are_refused_for_removal_too(s3: Setup) -> None:
    publisher, _ = s3.publisher()
    with pytest.raises(UnsafeKeyError):
        publisher.remove(["../index.html"])


def test_a_missing_bucket_is_a_clear_error(endpoint: str) -> None:
    publisher = S3Publisher(bucket="no-such-bucket-here", endpoint_url=endpoint, region=REGION)
    with pytest.raises(S3PublishError, match=r"no-such-bucket-here.*NoSuchBucket"):
        publisher.publish(PAGE)


def test_an_unreachable_store_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port on 127.0.0.1 that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    publisher = S3Publisher(
        bucket="status-page", endpoint_url=f"http://127.0.0.1:{port}", region=REGION
    )
    with pytest.raises(S3PublishError, match="listing s3://status-page/ failed"):
        publisher.publish(PAGE)


def test_without_permission_to_list_it_uploads_everything_once(s3: Setup) -> None:
    publisher, _ = s3.publisher()

    def denied(**_: Any) -> tuple[Any, dict[str, Any]]:
        error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
        return _Status(403), error

    publisher.client.meta.events.register("before-call.s3.ListObjectsV2", denied)
    assert len(publisher.publish(PAGE)) == len(PAGE)
    assert publisher.publish(PAGE) == []


@dataclass
class _Status:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(
    "path",
    [
        "../index.html",
        "/etc/passwd",
        "incidents/../../x.html",
        "",
        "a//b.html",
        "./index.html",
        "incidents/",
        "a\\b.html",
        "incidents/1.html\n",
    ],
)
def test_unsafe_paths_are_refused_before_anything_is_uploaded(s3: Setup, path: str) -> None:
    publisher, recorder = s3.publisher()
    with pytest.raises(UnsafeKeyError):
        publisher.publish({"incidents/1.html": b"fine", path: b"not fine"})
    assert recorder.puts == []
    assert s3.objects() == {}


# -- settings ------------------------------------------------------------------------------


def test_s3_is_off_by_default() -> None:
    settings = Settings.from_env({})
    assert settings.s3_bucket is None
    assert settings.s3_prefix == ""
    with pytest.raises(SettingsError, match="STATUSBOT_S3_BUCKET"):
        S3Publisher.from_settings(settings)


def test_s3_settings_are_read(endpoint: str) -> None:
    settings = Settings.from_env(
        {
            "STATUSBOT_S3_BUCKET": "status-page",
            "STATUSBOT_S3_PREFIX": "/public/status",
            "STATUSBOT_S3_ENDPOINT_URL": endpoint + "/",
            "STATUSBOT_S3_REGION": "eu-west-1",
        }
    )
    assert settings.s3_bucket == "status-page"
    assert settings.s3_prefix == "public/status/"
    assert settings.s3_endpoint_url == endpoint
    assert settings.s3_region == "eu-west-1"

    publisher = S3Publisher.from_settings(settings)
    assert (publisher.bucket, publisher.prefix) == ("status-page", "public/status/")
    assert publisher.client.meta.endpoint_url == endpoint
    assert publisher.client.meta.region_name == "eu-west-1"
    assert publisher.client.meta.config.retries["mode"] == "standard"


def test_publishing_from_settings_end_to_end(s3: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSBOT_S3_BUCKET", s3.bucket)
    monkeypatch.setenv("STATUSBOT_S3_PREFIX", "status")
    monkeypatch.setenv("STATUSBOT_S3_ENDPOINT_URL", s3.endpoint)
    publisher = S3Publisher.from_settings(Settings.from_env())
    Recorder().attach(publisher.client)
    publisher.publish(PAGE)
    assert set(s3.objects()) == {f"status/{path}" for path in PAGE}


@pytest.mark.parametrize(
    ("text", "prefix"),
    [("", ""), ("/", ""), ("status", "status/"), ("status/", "status/"), ("/a//b/", "a/b/")],
)
def test_the_prefix_is_normalised(text: str, prefix: str) -> None:
    env = {"STATUSBOT_S3_BUCKET": "status-page", "STATUSBOT_S3_PREFIX": text}
    assert Settings.from_env(env).s3_prefix == prefix
    assert S3Publisher(bucket="status-page", prefix=text, client=object()).prefix == prefix


@pytest.mark.parametrize(
    ("env", "name", "words"),
    [
        ({"STATUSBOT_S3_BUCKET": "s3://status-page"}, "STATUSBOT_S3_BUCKET", "bare name"),
        ({"STATUSBOT_S3_BUCKET": "status-page/public"}, "STATUSBOT_S3_BUCKET", "bare name"),
        ({"STATUSBOT_S3_BUCKET": "x"}, "STATUSBOT_S3_BUCKET", "not a bucket name"),
        (
            {"STATUSBOT_S3_BUCKET": "status-page", "STATUSBOT_S3_PREFIX": "../up"},
            "STATUSBOT_S3_PREFIX",
            "'..'",
        ),
        (
            {"STATUSBOT_S3_BUCKET": "status-page", "STATUSBOT_S3_ENDPOINT_URL": "minio:9000"},
            "STATUSBOT_S3_ENDPOINT_URL",
            "not an http(s) URL",
        ),
        (
            {"STATUSBOT_S3_BUCKET": "b-1", "STATUSBOT_S3_ENDPOINT_URL": "ftp://127.0.0.1"},
            "STATUSBOT_S3_ENDPOINT_URL",
            "not an http(s) URL",
        ),
        (
            {"STATUSBOT_S3_BUCKET": "b-1", "STATUSBOT_S3_ENDPOINT_URL": "http://127.0.0.1:x"},
            "STATUSBOT_S3_ENDPOINT_URL",
            "not an http(s) URL",
        ),
        (
            {"STATUSBOT_S3_BUCKET": "status-page", "STATUSBOT_S3_REGION": "eu west 1"},
            "STATUSBOT_S3_REGION",
            "not a region",
        ),
        ({"STATUSBOT_S3_PREFIX": "status"}, "STATUSBOT_S3_PREFIX", "STATUSBOT_S3_BUCKET is not"),
        (
            {"STATUSBOT_S3_ENDPOINT_URL": "http://127.0.0.1:9000"},
            "STATUSBOT_S3_ENDPOINT_URL",
            "STATUSBOT_S3_BUCKET is not",
        ),
    ],
)
def test_bad_s3_settings_are_refused_by_name(env: dict[str, str], name: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert name in str(caught.value)
    assert words in str(caught.value)
