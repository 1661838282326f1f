"""What every v1 route does before and after its handler: the key, the rate limit, the
page id, the method, the body's errors, the JSON reply, and the page's republish.

A handler gets a `Call` and returns a `Reply`. It reads through `Call.read` (a
read-only session) and writes through `Call.write`, which runs the `commands/` use
cases in one transaction with `commands.dispatch.run` (the same checks, audit,
announcements and notifications as Slack) and then hands the Result to the runtime
(the page's publisher and the deliverers), as the Slack transport does.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

import falcon
from sqlalchemy.orm import Session

from bot.http.errors import status_line
from bot.http.v1.body import BadRequest, read
from bot.runtime import Runtime
from commands import dispatch
from commands.context import Context, Editors
from commands.result import Notice, Result
from renderers.v1 import V1
from storage import api_keys, ratelimits
from storage.db import transaction
from storage.snapshot import PageInfo

log = logging.getLogger(__name__)

T = TypeVar("T")
Json = dict[str, Any]
RATE_WINDOW = timedelta(minutes=1)
NO_KEY = (
    "Send an API key: 'Authorization: OAuth KEY' (as Statuspage takes it), "
    "'Authorization: Bearer KEY' or ?api_key=KEY. Make one with `statusbot api-key create NAME`."
)
BAD_KEY = "That API key is wrong or was revoked."


class ApiError(Exception):
    """A refusal with its status: the reply is `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(what: str, given: str) -> ApiError:
    """404 for an id that names nothing."""
    return ApiError(404, f"There is no {what} with id {given[:60]!r}.")


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: its status and its JSON (None: no body, as for 204)."""

    status: int
    body: Json | list[Json] | None


@dataclass
class Call:
    """One authenticated request to a v1 route."""

    runtime: Runtime
    req: falcon.Request
    params: Mapping[str, str]
    actor: str
    _body: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def objects(self) -> V1:
        """The v1 object mapping for this page."""
        settings = self.runtime.settings
        page = PageInfo(
            id=settings.page_id,
            name=settings.page_name,
            url=settings.page_url,
            time_zone=settings.timezone,
        )
        return V1(page, page_id=settings.page_id)

    def body(self) -> dict[str, Any]:
        """The request body as a dict (read once)."""
        if self._body is None:
            self._body = read(self.req)
        return self._body

    def query(self, name: str) -> str | None:
        """One query-string parameter."""
        value = self.req.get_param(name)
        return value if isinstance(value, str) else None

    def context(self) -> Context:
        """The use cases' context: the key's name is the actor, and an editor (the key
        holder was given the key by someone who can reach the database)."""
        return replace(self.runtime.context(self.actor), editors=Editors())

    def read(self, look: Callable[[Session], T]) -> T:
        """Run `look` in a read-only session."""
        with self.runtime.reader() as session:
            return look(session)

    def write(
        self,
        change: Callable[[Session, Context], Result],
        view: Callable[[Session], T],
        *,
        what: str,
    ) -> T:
        """Run `change` (use cases) then `view` (what to answer) in one transaction;
        then tell the publisher and deliverers. A use case's refusal is a 422."""
        ctx = self.context()
        seen: list[T] = []

        def unit(session: Session) -> Result:
            result = change(session, ctx)
            seen.append(view(session))
            return result

        note = {"via": "v1 API", "request": f"{self.req.method} {self.req.path}"[:200]}
        result = dispatch.run(self.runtime.factory, ctx, unit, what=what, note=note, usage=False)
        if not result.ok:
            if result.reply == dispatch.DATABASE_DOWN:
                raise ApiError(503, result.reply)
            raise ApiError(409 if result.reply == dispatch.CLASH else 422, result.reply)
        self.runtime.notify_changed(result)
        return seen[0]


def combined(*results: Result) -> Result:
    """Several use cases' Results as one: changed if any changed, every notice."""
    notices: tuple[Notice, ...] = tuple(n for r in results for n in r.notices)
    number = next((r.number for r in results if r.number is not None), None)
    return Result(
        reply=" ".join(r.reply for r in results if r.reply),
        changed=any(r.changed for r in results),
        notices=notices,
        number=number,
    )


Handler = Callable[[Call], Reply]


@dataclass(frozen=True, slots=True)
class Operation:
    """One method of a route, and what the OpenAPI document says of it."""

    method: str
    handler: Handler
    summary: str
    operation_id: str
    status: int
    response: str  # the schema of its reply ("Incident", "Incident[]", "")
    request: str | None = None  # the schema of its body
    query: tuple[str, ...] = ()  # the query parameters it reads


@dataclass(frozen=True, slots=True)
class Route:
    """A path under /v1 and its methods."""

    path: str
    operations: tuple[Operation, ...]

    @property
    def allow(self) -> str:
        return ", ".join(op.method for op in self.operations)


class Resource:
    """The Falcon resource of one route: every method comes here, then to its handler."""

    def __init__(self, runtime: Runtime, route: Route) -> None:
        self.runtime = runtime
        self.route = route
        self.handlers = {op.method: op.handler for op in route.operations}

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        self._handle(req, resp, params)

    on_post = on_put = on_patch = on_delete = on_head = on_options = on_get

    def _handle(self, req: falcon.Request, resp: falcon.Response, params: dict[str, str]) -> None:
        try:
            actor = self._authorised(req)
            if (
                params.get("page_id", self.runtime.settings.page_id)
                != self.runtime.settings.page_id
            ):
                raise ApiError(404, f"There is no page with id {params['page_id'][:60]!r}.")
            handler = self.handlers.get(req.method)
            if handler is None:
                resp.set_header("Allow", self.route.allow)
                raise ApiError(405, f"{req.method} is not allowed here; use {self.route.allow}.")
            reply = handler(Call(self.runtime, req, params, actor))
        except BadRequest as error:
            reply = Reply(error.status, {"error": error.message})
        except RateLimited as error:
            resp.set_header("Retry-After", str(error.wait))
            reply = Reply(error.status, {"error": error.message})
        except ApiError as error:
            reply = Reply(error.status, {"error": error.message})
        answer(resp, reply)

    def _authorised(self, req: falcon.Request) -> str:
        token = key_of(req)
        if token is None:
            raise ApiError(401, NO_KEY)
        return authenticate(self.runtime, token)


def authenticate(runtime: Runtime, token: str) -> str:
    """The name of the live key `token` is, counted against its rate limit; ApiError
    401 for no such key, RateLimited (429) past the limit."""
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        key = api_keys.find(session, token)
        if key is None:
            raise ApiError(401, BAD_KEY)
        key.last_used_at = now
        counted = ratelimits.hit(session, key=f"api:{key.id}", window=RATE_WINDOW, now=now)
        name = key.name
    limit = runtime.settings.api_rate_limit
    if counted.count > limit:
        wait = max(1, math.ceil((counted.resets_at - now).total_seconds()))
        raise RateLimited(wait, limit)
    return name


class RateLimited(ApiError):
    """429, with when to try again."""

    def __init__(self, wait: int, limit: int) -> None:
        super().__init__(
            429,
            f"Rate limit exceeded: at most {limit} requests a minute per key. "
            f"Try again in {wait} s.",
        )
        self.wait = wait


def key_of(req: falcon.Request) -> str | None:
    """The key a request carries: `Authorization: OAuth|Bearer KEY` or `?api_key=KEY`."""
    header = (req.get_header("Authorization") or "").strip()
    if header:
        scheme, _, given = header.partition(" ")
        if scheme.lower() in ("oauth", "bearer") and given.strip():
            return given.strip()
        return None
    param = req.get_param("api_key")
    return param.strip() if isinstance(param, str) and param.strip() else None


def answer(resp: falcon.Response, reply: Reply) -> None:
    """Write a reply: JSON, never cached."""
    resp.status = status_line(reply.status)
    resp.cache_control = ["no-store"]
    if reply.body is None:
        return
    resp.content_type = "application/json; charset=utf-8"
    resp.data = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode()
