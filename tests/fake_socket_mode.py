"""Slack's end of Socket Mode on localhost: a websocket that sends envelopes and records acks.

Give its `url` to the fake Web API (`FakeSlack.socket_mode_url`), which answers
`apps.connections.open` with it, as Slack does. The app connects, gets a
`hello`, then the envelopes a test sends; each ack it sends back is recorded by
envelope id.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class FakeSocketMode:
    """Thread-safe; one app connection at a time is enough for statusbot."""

    def __init__(self) -> None:
        self.acks: dict[str, dict[str, Any]] = {}
        self.connections = 0  # how many times an app connected
        self._live: ServerConnection | None = None
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() it first"
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket=fake-ticket"

    def start(self) -> FakeSocketMode:
        self._server = serve(self._session, "127.0.0.1", 0, ping_interval=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(5)

    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._live is not None, timeout):
                raise AssertionError(f"no app connected within {timeout}s")

    def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Hand the app an envelope (`slash_commands`, `interactive`…); its envelope id."""
        envelope_id = f"env-{next(self._ids)}"
        with self._cond:
            live = self._live
        assert live is not None, "no app is connected"
        live.send(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": True,
                    "retry_attempt": 0,
                    "retry_reason": "",
                }
            )
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The app's ack of an envelope (with its response payload, if any)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self.acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack of {envelope_id} within {timeout}s")
                self._cond.wait(left)
            return self.acks[envelope_id]

    def _session(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": "A0APP"},
                    "debug_info": {"host": "fake-socket-mode"},
                }
            )
        )
        with self._cond:
            self._live = connection
            self.connections += 1
            self._cond.notify_all()
        try:
            for message in connection:
                data = json.loads(message)
                if "envelope_id" in data:
                    with self._cond:
                        self.acks[str(data["envelope_id"])] = data
                        self._cond.notify_all()
        except ConnectionClosed:
            pass  # the app hung up (Slack's SDK closes without a close frame)
        finally:
            with self._cond:
                if self._live is connection:
                    self._live = None
