"""`statusbot serve` as a public server: only the published page, private database files,
/healthz for GET and HEAD only, and slow clients that can't hold the server up."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text

from bot.http_worker import MAX_BODY, MAX_HEAD, request_state
from bot.settings import Settings, SettingsError
from renderers.html import stylesheet
from renderers.publish import MANIFEST
from storage.db import make_engine
from tests.fake_slack import FakeSlack
from tests.helpers import Program, free_port, serve_env, slash_command, start_serve, wait_healthy

SECRET = "page-server-secret"
REQUEST_TIMEOUT = 2.0  # STATUSBOT_REQUEST_TIMEOUT for the server under test
SLOW_CLIENTS = 48  # more than gunicorn's 32 threads


@dataclass
class Served:
    base: str
    port: int
    page: Path
    fake: FakeSlack


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One real `statusbot serve` (gunicorn, Slack on, SQLite) with its page published."""
    workdir = tmp_path_factory.mktemp("served")
    fake = FakeSlack().start()
    port = free_port()
    env = serve_env(
        f"sqlite:///{workdir / 'statusbot.db'}",
        port,
        workdir / "public",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        STATUSBOT_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
    )
    process = start_serve(env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        deadline = time.monotonic() + 30
        while get(port, "/").status != 200:  # the background process publishes at start
            assert time.monotonic() < deadline, "the page was never published"
            time.sleep(0.05)
        yield Served(base, port, workdir / "public", fake)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        fake.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def get(
    port: int,
    path: str,
    method: str = "GET",
    body: str = "",
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


# --- only what the renderer published ----------------------------------------------------


def test_only_published_files_are_served(served: Served) -> None:
    page = served.page
    strays = {
        "statusbot.db": b"SQLite format 3\x00 the audit log",
        "statusbot.db-wal": b"wal",
        "statusbot.db-shm": b"shm",
        "statusbot.db-turn": b"",
        "serve.log": b"a log",
        "notes.txt": b"stray",
        "incidents/99.html": b"<title>looks like a page, was never published</title>",
    }
    for name, data in strays.items():
        (page / name).parent.mkdir(parents=True, exist_ok=True)
        (page / name).write_bytes(data)
    for name in strays:
        assert get(served.port, f"/{name}").status == 404, name
    assert get(served.port, "/incidents/99").status == 404
    assert get(served.port, f"/{MANIFEST}").status == 404
    # The published page itself is there.
    assert b"<html" in get(served.port, "/").body.lower()
    assert get(served.port, "/api/v2/summary.json").status == 200
    assert get(served.port, "/history").status == 200


def test_the_stylesheet_is_served_as_immutable_and_pages_briefly(served: Served) -> None:
    sheet = stylesheet()
    index = get(served.port, "/")
    assert f'href="{sheet.path}"'.encode() in index.body
    assert index.headers["Cache-Control"] == "public, max-age=10"
    css = get(served.port, f"/{sheet.path}")
    assert css.status == 200 and css.body == sheet.text.encode()
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = get(served.port, f"/{sheet.path}", headers={"If-None-Match": css.headers["ETag"]})
    assert again.status == 304
    # Only this release's: an unlisted stylesheet-looking file is not served.
    (served.page / "style.0123456789.css").write_text("body{}")
    assert get(served.port, "/style.0123456789.css").status == 404


# --- /healthz ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_healthz_answers_get_and_head_only(served: Served, method: str) -> None:
    answer = get(served.port, "/healthz", method)
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET, HEAD"
    assert b"GET /healthz" in answer.body


def test_healthz_get_and_head(served: Served) -> None:
    assert get(served.port, "/healthz").status == 200
    head = get(served.port, "/healthz", "HEAD")
    assert head.status == 200 and head.body == b""


# --- slow clients -------------------------------------------------------------------------


def signed_status(served: Served) -> Answer:
    body = urlencode(
        slash_command("/status", "", user="U0SLOW", response_url=f"{served.fake.url}/response/1")
    )
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
    }
    return get(served.port, "/slack/events", "POST", body, headers, timeout=REQUEST_TIMEOUT / 2)


def read_until_closed(sock: socket.socket) -> bytes | None:
    """What the server sent before closing; None when it reset the connection."""
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        return None
    return received


def test_slow_clients_hold_no_thread_and_are_timed_out(served: Served) -> None:
    # A head that never ends in time: one byte of it every 0.25 s.
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 1000
    slow = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(SLOW_CLIENTS)]
    opened = time.monotonic()
    stop = threading.Event()

    def drip() -> None:
        for n in range(len(head)):
            for sock in slow:
                with contextlib.suppress(OSError):  # closed by the server: as wanted
                    sock.send(head[n : n + 1])
            if stop.wait(0.25):
                return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        time.sleep(0.3)  # every slow connection has begun its request
        # Answered while all 48 are open (each answer's timeout is under the deadline).
        assert get(served.port, "/healthz", timeout=REQUEST_TIMEOUT / 2).status == 200
        assert signed_status(served).status == 200
        assert time.monotonic() - opened < REQUEST_TIMEOUT, "answered only after the deadline"
        # Then the server closes each slow one, with a 408, soon after the deadline.
        margin = 2.0
        replies = []
        for sock in slow:
            sock.settimeout(max(0.1, opened + REQUEST_TIMEOUT + margin - time.monotonic()))
            replies.append(read_until_closed(sock))  # TimeoutError if it stays open
        assert time.monotonic() - opened < REQUEST_TIMEOUT + margin
        # A byte the client sends after the 408 may reset the connection before it is read.
        assert all(r is None or r.startswith(b"HTTP/1.1 408 ") for r in replies), replies
        assert sum(r is not None for r in replies) >= SLOW_CLIENTS // 2, replies
    finally:
        stop.set()
        dripper.join()
        for sock in slow:
            sock.close()
    assert get(served.port, "/healthz").status == 200


def test_a_request_sent_in_pieces_within_the_deadline_is_answered(served: Served) -> None:
    body = b'{"value": 1}'
    request = (
        b"POST /api/metrics/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        for n in range(0, len(request), 10):
            sock.send(request[n : n + 10])
            time.sleep(0.01)
        answer = sock.recv(4096)
    # The metrics API is off on this server: its 404 proves the whole request arrived.
    assert answer.startswith(b"HTTP/1.1 404 "), answer
    assert b"STATUSBOT_API_TOKEN" in answer


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "nan", "301"])
def test_request_timeout_setting_is_checked(bad: str) -> None:
    with pytest.raises(SettingsError, match=r"STATUSBOT_REQUEST_TIMEOUT=.* number of seconds"):
        Settings.from_env({"STATUSBOT_REQUEST_TIMEOUT": bad})


def test_request_timeout_setting(tmp_path: Path) -> None:
    assert Settings.from_env({}).request_timeout == 10.0
    assert Settings.from_env({"STATUSBOT_REQUEST_TIMEOUT": "2.5"}).request_timeout == 2.5
    done = Program(f"sqlite:///{tmp_path / 'statusbot.db'}", tmp_path)(
        "render", env={"STATUSBOT_REQUEST_TIMEOUT": "soon"}
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "STATUSBOT_REQUEST_TIMEOUT='soon' is not a number of seconds" in done.stderr


# --- refusing a page directory that holds the database ------------------------------------


@pytest.mark.parametrize(
    ("command", "page_dir"),
    [
        *[(c, ".") for c in (["serve"], ["render"], ["shell"], ["demo"], ["run", "/status"])],
        (["render"], "{workdir}"),  # the same folder, named absolutely
        (["serve"], "{workdir}/.."),  # a parent of it
        (["serve"], "/"),
    ],
)
def test_a_page_dir_holding_the_database_is_refused(
    tmp_path: Path, command: list[str], page_dir: str
) -> None:
    program = Program("sqlite:///statusbot.db", tmp_path)  # relative: in the working directory
    done = program(
        *command, stdin="", env={"STATUSBOT_PAGE_DIR": page_dir.format(workdir=tmp_path)}
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "STATUSBOT_PAGE_DIR" in done.stderr
    assert str(tmp_path / "statusbot.db") in done.stderr
    assert "e.g. public" in done.stderr
    assert "Traceback" not in done.stderr
    # Refused before anything was written.
    assert list(tmp_path.iterdir()) == []


def test_a_page_dir_beside_the_database_is_fine(tmp_path: Path) -> None:
    program = Program("sqlite:///statusbot.db", tmp_path)
    done = program("render", env={"STATUSBOT_PAGE_DIR": "public"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "public" / "index.html").is_file()


# --- private database files -----------------------------------------------------------------


def test_sqlite_files_are_created_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which makes new files 0644
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'private.db'}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            # Inside the transaction the -wal and -shm files exist.
            for name in ("private.db", "private.db-wal", "private.db-shm"):
                mode = (tmp_path / name).stat().st_mode & 0o777
                assert mode == 0o600, f"{name} is {mode:o}"
        engine.dispose()
    finally:
        os.umask(old)


def test_the_cli_creates_the_database_owner_only(tmp_path: Path) -> None:
    program = Program(f"sqlite:///{tmp_path / 'statusbot.db'}", tmp_path)
    done = program("db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "statusbot.db").stat().st_mode & 0o777 == 0o600


def test_expect_100_continue_gets_its_interim_answer(served: Served) -> None:
    body = b'{"value": 1}'
    head = (
        b"POST /api/metrics/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.send(head)
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.send(body)
        answer = b""
        while b"STATUSBOT_API_TOKEN" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    assert b"HTTP/1.1 404 " in answer


HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("data", "state", "expect"),
    [
        (b"GET / HTTP/1.1\r\nHost: x", "incomplete", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "complete", False),
        (b"GET / HTTP/1.1\r\nX: " + b"z" * (MAX_HEAD + 1), "too_large", False),
        (HEAD + b"Content-Length: 5\r\n\r\n12", "incomplete", False),
        (HEAD + b"content-length: 5\r\n\r\n12345", "complete", False),
        (HEAD + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", "incomplete", True),
        (
            HEAD + b"Content-Length: %d\r\n\r\n" % (10 * MAX_BODY) + b"z" * MAX_BODY,
            "complete",
            False,
        ),
        (HEAD + b"Content-Length: x\r\n\r\n", "complete", False),  # gunicorn answers 400
        (HEAD + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n", "complete", False),
        (HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "complete", False),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel", "incomplete", False),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", "incomplete", False),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "complete", False),
        (
            HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            "complete",
            False,
        ),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", "complete", False),
    ],
)
def test_request_state(data: bytes, state: str, expect: bool) -> None:
    assert request_state(data) == (state, expect)


def test_signing_up_through_gunicorn_keeps_addresses_and_tokens_out_of_the_log(
    tmp_path: Path,
) -> None:
    """The real server: the form is published, the routes answer, the log stays clean."""
    url = f"sqlite:///{tmp_path / 'statusbot.db'}"
    port = free_port()
    process = start_serve(serve_env(url, port, tmp_path / "public"))
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + 30
        while get(port, "/subscribe.html").status != 200:
            assert time.monotonic() < deadline, "subscribe.html was never published"
            time.sleep(0.05)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = get(port, "/subscribe", "POST", "email=secret.person%40example.com", form)
        assert answer.status == 200 and b"Check your inbox" in answer.body
        with make_engine(url).connect() as conn:
            token = conn.execute(text("SELECT token FROM subscribers")).scalar_one()
        assert get(port, f"/unsubscribe/{token}").status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    log = output.decode()
    assert "/unsubscribe/…" in log  # the access log has the route
    assert token not in log and "secret.person" not in log
