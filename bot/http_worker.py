"""gunicorn's threaded worker, reading each request in its main loop, under a deadline.

Stock gthread hands a connection to a thread once its first byte arrives, and
the thread then blocks until the whole request is in: a client sending a byte
every few seconds holds a thread as long as it likes, and 32 of them hold every
thread, so Slack's requests queue and their acks come too late. Here the main
loop (one selector, no thread) collects the request head and its body, without
blocking, and only a complete request goes to a thread. A request not complete
within the deadline (STATUSBOT_REQUEST_TIMEOUT, from its first moment, however
it trickles in) is answered 408 and closed.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

DEFAULT_REQUEST_TIMEOUT = 10.0
# A head this large is not one of ours (Slack's are a few KiB): 431, not a thread.
MAX_HEAD = 64 * 1024
# Bodies are collected up to this; a larger one goes to the app, which refuses it
# unread (bot/http/errors.py's MAX_BODY is 1 MiB) without waiting for it.
MAX_BODY = 1024 * 1024 + 1
RECV_SIZE = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

State = Literal["incomplete", "complete", "too_large"]


def _reply(status: str, text: str) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


TIMED_OUT = _reply("408 Request Timeout", "The request took too long to arrive; send it again.\n")
HEAD_TOO_LARGE = _reply(
    "431 Request Header Fields Too Large", f"Send at most {MAX_HEAD:,} bytes of headers.\n"
)


def request_state(data: bytes) -> tuple[State, bool]:
    """Whether `data` holds a whole HTTP/1 request (head and body); and whether its head
    asks for `100 Continue` before the body. Framing it can't read counts as complete:
    gunicorn's parser then answers 400 in its own words."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return ("too_large" if len(data) > MAX_HEAD else "incomplete"), False
    length: int | None = None
    chunked = expect = False
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if not value.isdigit() or length is not None:
                return "complete", False
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = chunked or b"chunked" in value
        elif name == b"expect":
            expect = value == b"100-continue"
    body = end + 4
    if chunked and length is not None:
        return "complete", False  # request smuggling's shape: gunicorn refuses it
    if chunked:
        done = _chunked_end(data, body) or len(data) - body >= MAX_BODY
    else:
        done = length is None or len(data) - body >= min(length, MAX_BODY)
    return ("complete" if done else "incomplete"), expect


def _chunked_end(data: bytes, pos: int) -> bool:
    """Whether a chunked body starting at `pos` has ended (last chunk and trailers)."""
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return False
        try:
            size = int(data[pos:line_end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            return True  # not chunked framing: the parser says so
        if size == 0:
            return data.find(b"\r\n\r\n", line_end) >= 0
        pos = line_end + 2 + size + 2
        if pos > len(data):
            return False


@dataclass
class _Pending:
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    continued: bool = False


class DeadlineWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with requests read in the main loop; reads the deadline from the app's
    `request_timeout` (bot/serve.py sets it from the settings)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = float(getattr(self.app, "request_timeout", DEFAULT_REQUEST_TIMEOUT))
        # Connections still arriving, oldest (first deadline) first.
        self.incoming: dict[Any, _Pending] = {}

    def enqueue_req(self, conn: Any) -> None:
        """Every way in (a new connection, a kept-alive one readable again, bytes read
        ahead of the last response) comes here: collect the request, then a thread."""
        if self.cfg.is_ssl or getattr(self.cfg, "http2_cleartext", "off") != "off":
            super().enqueue_req(conn)  # not plain HTTP/1 bytes on the socket: as stock
            return
        pending = _Pending(deadline=time.monotonic() + self.request_timeout)
        if conn.parser is not None:
            pending.data += conn.parser.unreader.take_buffered()
        if self._advance(conn, pending):
            return
        conn.sock.setblocking(False)
        self.incoming[conn] = pending
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: Any, _sock: object) -> None:
        pending = self.incoming[conn]
        try:
            chunk = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._forget(conn)
            self._close(conn)
            return
        pending.data += chunk
        if self._advance(conn, pending):
            self._forget(conn)

    def _advance(self, conn: Any, pending: _Pending) -> bool:
        """Hand a complete request to a thread, refuse an oversized one; True when done."""
        state, expect = request_state(bytes(pending.data))
        if state == "too_large":
            self._close(conn, HEAD_TOO_LARGE)
            return True
        if state == "incomplete":
            if expect and not pending.continued:
                pending.continued = True
                self._send(conn, CONTINUE)  # the client waits for it before the body
            return False
        conn.init()  # the HTTP/1 parser, the socket blocking again for the thread
        conn.sock.setblocking(True)
        conn.parser.unreader.unread(bytes(pending.data))
        super().enqueue_req(conn)
        return True

    def murder_keepalived(self, force: bool = False) -> None:
        """Close idle kept-alive connections (stock), and requests past their deadline."""
        super().murder_keepalived(force)
        now = time.monotonic()
        while self.incoming:
            conn, pending = next(iter(self.incoming.items()))
            if pending.deadline > now and not force:
                break
            self._forget(conn)
            # Silence for a connection that never sent a byte (a browser's preconnect).
            self._close(conn, TIMED_OUT if pending.data else b"")

    def _forget(self, conn: Any) -> None:
        self.incoming.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _close(self, conn: Any, reply: bytes = b"") -> None:
        if reply:
            self._send(conn, reply)
            # Closing with unread bytes would reset the connection, and the client might
            # lose the reply: read what has come (never waiting), then send FIN first.
            with contextlib.suppress(OSError):
                for _ in range(16):
                    if not conn.sock.recv(RECV_SIZE):
                        break
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)
        self.nr_conns -= 1
        conn.close()

    @staticmethod
    def _send(conn: Any, data: bytes) -> None:
        """Best effort and never blocking: the main loop must not wait on a client."""
        with contextlib.suppress(OSError):
            conn.sock.setblocking(False)
            conn.sock.send(data)
