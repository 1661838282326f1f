"""`statusbot serve`: gunicorn running bot/http (Falcon), with Slack over HTTP or Socket Mode.

Three kinds of process, so that rendering the page never holds up an ack (a
Python process runs one thread at a time):

- the gunicorn master checks the settings, migrates an embedded SQLite
  database, and keeps the others running;
- web workers (gthread: many threads each; bot/http_worker.py reads each
  request in the main loop under a deadline, so slow clients hold no thread)
  answer HTTP: Slack's requests, the page, /healthz, the metrics API. After a
  change they tell the background process over a pipe;
- one background process publishes the page (coalesced) and runs the
  `on_start` hooks (the scheduler), once however many web workers there are;
  on SQLite it also copies the write-ahead log into the database (bot/wal.py).
- on PostgreSQL a second one delivers the outbox (Slack, the fan-out, email,
  webhooks), so the publisher has its interpreter to itself. On SQLite the
  outbox is delivered from the web worker instead, where its writes queue with
  the commands'.

`build()` puts all of it in one process instead: the tests use that.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from wsgiref.types import WSGIApplication

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from bot import heap, instruments
from bot.coalesce import REST_RATIO, CoalescingPublisher, changed_numbers
from bot.http import HttpApp, create_app
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError
from bot.slack.listeners.services import DEFAULT_DEADLINE
from commands.result import Notice, Result
from storage.db import defer_checkpoints, make_engine, normalise_url

log = logging.getLogger(__name__)

# A hook run once the background work is up (the lead starts the scheduler here);
# it may return a function that stops what it started.
OnStart = Callable[[Runtime], Callable[[], object] | None]
# Hands a change (the incident numbers it touched) to whoever publishes and delivers.
Notify = Callable[[Iterable[int]], None]

DEFAULT_THREADS = 32
MAX_DEFAULT_WORKERS = 4  # web workers on PostgreSQL without WEB_CONCURRENCY: one per core, to 4
# A connection for every thread that may want one at once (command workers, web
# threads, publisher, delivery), so none waits on the pool.
POOL_SIZE = 20
POOL_OVERFLOW = 40
COMMAND_WORKERS = 16
# After a publish, rest this many times as long as it took: in-process the page must
# not starve the commands (coalesce.REST_RATIO); the background process has less to spare.
BACKGROUND_REST_RATIO = 0.25
BACKGROUND_NICENESS = 5
# News the background process hears of before its warm-up freeze (bot/heap.py): by
# then it has published and delivered, and its templates and statements are loaded.
BACKGROUND_WARM_UP = 100
PIPE_MESSAGE = 4000  # below PIPE_BUF, so each write is atomic whoever writes


# --- one process ------------------------------------------------------------------------


@dataclass
class Server:
    """What one process runs; `stop()` shuts it down in order."""

    runtime: Runtime
    web: HttpApp
    pages: CoalescingPublisher | None = None
    stoppers: list[Callable[[], object]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop Slack, the hooks and the delivery worker, then publish what is pending."""
        for stop in reversed(self.stoppers):
            stop()
        if self.pages is not None:
            self.pages.stop()
        self.runtime.engine.dispose()


def open_runtime(settings: Settings, *, checkpointed_elsewhere: bool = False) -> Runtime:
    """A runtime whose engine suits a busy server (pool size, SQLite turns); with
    `checkpointed_elsewhere`, its SQLite commits leave checkpoints to bot/wal.py's
    thread, which serve's background process runs."""
    engine = make_engine(settings.database_url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    if engine.dialect.name == "sqlite":
        queue_sqlite_writers(engine)
        if checkpointed_elsewhere:
            defer_checkpoints(engine)
    return Runtime(settings, engine=engine)


def build(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    deadline: float = DEFAULT_DEADLINE,
    on_start: Sequence[OnStart] = (),
    notify: Notify | None = None,
) -> Server:
    """One process's statusbot: the web app, Slack (if configured) and its delivery worker.

    Without `notify`, this process also publishes the page and runs `on_start`
    (the tests, and any single-process use). With it (serve's web workers), each
    change is handed to `notify` instead: the background process publishes.
    """
    runtime = runtime or open_runtime(settings)
    stoppers: list[Callable[[], object]] = []
    pages: CoalescingPublisher | None = None
    on_metrics: Callable[[], None]
    if notify is None:
        pages = start_publisher(runtime, rest_ratio=REST_RATIO)
        on_metrics = pages.request
    else:
        runtime.after_change.append(lambda result: notify(changed_numbers(result)))
        on_metrics = lambda: notify(())  # noqa: E731
    slack: WSGIApplication | None = None
    if settings.slack_enabled:
        slack = _start_slack(runtime, stoppers, deadline)
    else:
        log.info(
            "Slack is off (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN are not "
            "set): serving the page and /healthz only; `statusbot shell` drives it locally."
        )
    if notify is None or _sqlite(runtime):
        # Subscribers are told whether or not Slack is configured.
        stoppers += start_delivery(runtime)
    web = create_app(runtime, slack=slack, on_metrics=on_metrics)
    server = Server(runtime=runtime, web=web, pages=pages, stoppers=stoppers)
    if notify is None:
        server.stoppers += run_hooks(runtime, on_start)
        server.stoppers += serve_metrics_port(runtime)
    return server


def serve_metrics_port(runtime: Runtime) -> list[Callable[[], object]]:
    """/metrics on a port of its own, if STATUSBOT_METRICS_PORT asks; its stopper."""
    port = runtime.settings.metrics_port
    if port is None:
        return []
    from bot.http.prometheus import serve_port

    return [serve_port(runtime, runtime.settings.metrics_host, port)]


def start_publisher(runtime: Runtime, *, rest_ratio: float) -> CoalescingPublisher:
    """The coalesced page publisher, hooked to the runtime's changes and started."""
    from bot.publish import Publisher

    reader = runtime
    if _sqlite(runtime):
        # The page only reads (deferred transactions, storage.db.make_reader); on an
        # engine of its own it also stays out of the writers' queue of turns.
        engine = make_engine(runtime.engine.url.render_as_string(hide_password=False))
        reader = Runtime(runtime.settings, engine=engine, clock=runtime.clock)
    publisher = Publisher(reader)
    pages = CoalescingPublisher(lambda dirty: publisher.publish(dirty=dirty), rest_ratio=rest_ratio)
    pages.attach(runtime.after_change).start()
    pages.request()  # bring the page up to date now: the database may have moved on
    return pages


def start_delivery(runtime: Runtime) -> list[Callable[[], object]]:
    """The outbox delivery workers, poked after every change: Slack's (if configured),
    the subscribers' fan-out and its senders (always); their stoppers.

    On SQLite they run in the web worker, not the background process, so their
    writes queue with the commands' (FIFO) instead of meeting them at the lock.
    """
    import bot.notify
    from bot.slack import delivery
    from bot.slack.gateway import SlackGateway

    stoppers = bot.notify.start(runtime, bot.notify.senders(runtime))
    token = runtime.settings.slack_bot_token
    if runtime.settings.slack_enabled and token:
        gateway = SlackGateway(token, base_url=runtime.settings.slack_api_url)
        stoppers.append(delivery.start_delivery(runtime, gateway).stop)
    return stoppers


def _sqlite(runtime: Runtime) -> bool:
    return runtime.engine.dialect.name == "sqlite"


def run_hooks(runtime: Runtime, on_start: Sequence[OnStart]) -> list[Callable[[], object]]:
    """Run the on_start hooks; the stoppers they return."""
    stoppers = []
    for hook in on_start:
        stop = hook(runtime)
        if stop is not None:
            stoppers.append(stop)
    return stoppers


def _start_slack(
    runtime: Runtime, stoppers: list[Callable[[], object]], deadline: float
) -> WSGIApplication | None:
    """The Slack app; its WSGI handler, or None in Socket Mode. What stops it goes in `stoppers`."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    from bot.slack.app import create_app
    from bot.slack.gateway import SlackGateway

    settings = runtime.settings
    assert settings.slack_bot_token
    gateway = SlackGateway(settings.slack_bot_token, base_url=settings.slack_api_url)
    pool = ThreadPoolExecutor(COMMAND_WORKERS, thread_name_prefix="statusbot-slack")
    stoppers.append(lambda: pool.shutdown(wait=True, cancel_futures=False))
    socket_mode = bool(settings.slack_app_token)
    app = create_app(
        runtime, gateway=gateway, pool=pool, deadline=deadline, socket_mode=socket_mode
    )
    if socket_mode:
        handler = SocketModeHandler(app, settings.slack_app_token)
        handler.connect()  # type: ignore[no-untyped-call]
        stoppers.append(handler.close)
        log.info("Slack is on, in Socket Mode")
        return None
    log.info("Slack is on: requests at POST /slack/events")
    wsgi: WSGIApplication = SlackRequestHandler(app)
    return wsgi


# --- SQLite under load ------------------------------------------------------------------


def queue_sqlite_writers(engine: Engine) -> None:
    """Let SQLite transactions take turns, first come first served, across processes.

    Every statusbot transaction on SQLite is BEGIN IMMEDIATE (storage/db.py), so
    they run one at a time anyway. Left to SQLite, the ones that find the lock
    taken nap and poll (up to 100 ms a nap) while newcomers barge in, and under
    load an unlucky command waits seconds. Here the threads of a process queue
    in order, and the one at the front of each process's queue waits on a lock
    file (flock) beside the database, so the web workers and the background
    process hand the database over without a nap. Call it after any fork.
    """
    turns = _Turns(turn_file(engine))
    event.listen(engine, "checkout", lambda *_: turns.take())
    event.listen(engine, "checkin", lambda *_: turns.give())


def turn_file(engine: Engine) -> str | None:
    """The lock file beside an SQLite database that its writers take turns on."""
    database = engine.url.database
    return f"{database}-turn" if database and database != ":memory:" else None


class _Turns:
    """A first-in, first-out lock that the holding thread may take again (re-entrant),
    and, with a lock file, held against other processes too while a thread has it."""

    def __init__(self, lock_file: str | None = None) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, threading.Event]] = deque()
        self._owner: int | None = None
        self._depth = 0
        self._fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600) if lock_file else None

    def take(self) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                gate = None
            else:
                gate = threading.Event()
                self._queue.append((me, gate))
        if gate is not None:
            gate.wait()  # give() made us the owner before opening the gate
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without holding the GIL

    def give(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth > 0:
                return
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)  # other processes get a chance
            if self._queue:
                self._owner, gate = self._queue.popleft()
                self._depth = 1
                gate.set()
            else:
                self._owner = None
                self._depth = 0


# --- the background process -------------------------------------------------------------


# What a background process does (`run_background`): the page (the publisher, the
# hooks, the metrics port and on SQLite the checkpoints), and on PostgreSQL the
# deliveries in a process of their own.
PAGE = "page"
DELIVERY = "delivery"


class _Child:
    """One background process: its role, its pid, and the pipe it hears changes on."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.pid: int | None = None
        self.read, self.write = os.pipe()
        os.set_blocking(self.write, False)

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def tell(self, message: bytes) -> None:
        # A full pipe holds news not read yet: the process acts on it anyway.
        with contextlib.suppress(BlockingIOError):
            os.write(self.write, message)


class Background:
    """The background processes: forked from the master, told of changes over pipes.

    On SQLite one, for the page (deliveries run in the web worker, bot/serve.py
    `start_delivery`). On PostgreSQL a second one delivers the outbox: in the page's
    process the four deliverers took about a quarter of the interpreter from the
    publisher under bench/ack.py's load, and the page showed each change later.
    """

    def __init__(self, settings: Settings, on_start: Sequence[OnStart]) -> None:
        self.settings = settings
        self.on_start = on_start
        sqlite = make_url(normalise_url(settings.database_url)).get_backend_name() == "sqlite"
        self.children = [_Child(PAGE)] + ([] if sqlite else [_Child(DELIVERY)])

    def start(self) -> None:
        """Fork the background processes (from the master, which runs no threads)."""
        for child in self.children:
            self._fork(child)

    def _fork(self, child: _Child) -> None:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; the e2e test and the benchmark run it
            code = 1
            try:
                # The page's own changes (the scheduler's) reach the deliveries too.
                forward = [c for c in self.children if c is not child and child.role == PAGE]
                for other in self.children:
                    if other is not child:
                        os.close(other.read)
                    if other not in forward:
                        os.close(other.write)
                on_start = self.on_start if child.role == PAGE else ()
                run_background(
                    self.settings, on_start, child.read, role=child.role, forward=forward
                )
                code = 0
            except BaseException:
                log.exception("the %s process failed", child.role)
            finally:
                logging.shutdown()
                os._exit(code)
        child.pid = pid
        log.info("background process (%s) started: pid %d", _ROLES[child.role], pid)

    def ensure(self) -> None:
        """Start again any that died."""
        for child in self.children:
            if child.pid is not None and not child.alive():
                log.error("the %s process %d ended; starting it again", child.role, child.pid)
                self._fork(child)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask them to finish (the page publishes what is pending) and wait for them."""
        running = [c for c in self.children if c.alive()]
        for child in running:
            assert child.pid is not None
            os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in running:
            while child.alive() and time.monotonic() < deadline:
                try:
                    if child.pid is None or os.waitpid(child.pid, os.WNOHANG)[0]:
                        break
                except ChildProcessError:
                    break
                select.select([], [], [], 0.05)
        for child in self.children:
            child.pid = None

    def notify(self, numbers: Iterable[int]) -> None:
        """Tell the background processes about a change; never blocks (web workers call it)."""
        message = news_message(numbers)
        for child in self.children:
            child.tell(message)


_ROLES = {PAGE: "page, hooks", DELIVERY: "outbox delivery"}


def news_message(numbers: Iterable[int]) -> bytes:
    """One line for the pipe: the incidents that changed, or "" for "something did"."""
    text = " ".join(str(n) for n in sorted(set(numbers)))
    if len(text) >= PIPE_MESSAGE:
        text = ""  # the publisher finds what changed by itself
    return text.encode() + b"\n"


def _forward(child: _Child, result: Result) -> None:
    child.tell(news_message(changed_numbers(result)))


class StopSignal:
    """SIGTERM or SIGINT asked this process to stop: `asked`, read by its main loop.

    The handler only sets an attribute. It used to set a threading.Event, whose set()
    takes a lock that is not re-entrant: a signal arriving while a handler held it ran
    the handler again inside it, and the process waited on itself for ever. Seen once
    in some thirty bench/ack.py runs: a page process whose main thread was three
    handlers deep in Event.set, still running the scheduler after serve had gone.
    """

    def __init__(self) -> None:
        self.asked = False

    def install(self) -> StopSignal:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle)
        return self

    def handle(self, _signum: int, _frame: object) -> None:
        self.asked = True


def run_background(
    settings: Settings,
    on_start: Sequence[OnStart],
    read_fd: int,
    *,
    role: str = PAGE,
    forward: Sequence[_Child] = (),
) -> None:
    """A background process's life: publish (PAGE) or deliver (DELIVERY, and PAGE on
    SQLite never: the web worker does) after every change it hears of; the changes it
    makes itself go to `forward` too."""
    stopping = StopSignal().install()
    for sig in (signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_DFL)
    parent = os.getppid()
    # When the machine is busy, the acks come first: the page can be a moment later.
    os.nice(BACKGROUND_NICENESS)
    runtime = open_runtime(settings, checkpointed_elsewhere=True)
    pages: CoalescingPublisher | None = None
    forwarders: list[Callable[[Result], None]] = []
    stoppers: list[Callable[[], object]] = []
    if role == DELIVERY:
        stoppers += start_delivery(runtime)
    else:
        pages = start_publisher(runtime, rest_ratio=BACKGROUND_REST_RATIO)
        # Its own changes (the scheduler's) go to the deliveries' process too; what it
        # hears from the pipe the web workers have told that process already.
        forwarders = [partial(_forward, other) for other in forward]
        runtime.after_change.extend(forwarders)
        if _sqlite(runtime):
            from bot.wal import Checkpointer

            url = runtime.engine.url.render_as_string(hide_password=False)
            turns = turn_file(runtime.engine)
            stoppers.append(Checkpointer(url, turn_file=turns).start().stop)
        stoppers += run_hooks(runtime, on_start)
        stoppers += serve_metrics_port(runtime)
    heap.settle(f"background process ({role})")
    warm = heap.WarmUp(after=BACKGROUND_WARM_UP)
    pending = b""
    try:
        while not stopping.asked and os.getppid() == parent:
            readable, _, _ = select.select([read_fd], [], [], 0.5)
            if not readable:
                continue
            warm.tick()
            pending += os.read(read_fd, 65536)
            *lines, pending = pending.split(b"\n")
            if not lines:
                continue
            numbers = {int(w) for line in lines for w in line.split() if w.isdigit()}
            news = Result(
                reply="changed in a web worker",
                changed=True,
                notices=tuple(Notice(event="changed", number=n, text="") for n in numbers),
            )
            for hook in runtime.after_change:
                if hook not in forwarders:
                    hook(news)
    finally:
        for stop in reversed(stoppers):
            stop()
        if pages is not None:
            pages.stop()
        runtime.engine.dispose()


# --- gunicorn ---------------------------------------------------------------------------


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, also keeping the background process alive."""

    def manage_workers(self) -> None:
        super().manage_workers()
        self.app.background.ensure()


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured in code; honours GUNICORN_CMD_ARGS and WEB_CONCURRENCY."""

    def __init__(self, settings: Settings, options: dict[str, Any], background: Background) -> None:
        self.settings = settings
        self.options = options
        self.background = background
        self.request_timeout = settings.request_timeout  # read by bot/http_worker.py
        self.server: Server | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("worker_exit", lambda _arbiter, _worker: self.stop_worker())
        self.cfg.set("on_exit", lambda _arbiter: self.background.stop())
        self.cfg.set("child_exit", lambda _arbiter, worker: instruments.forget_process(worker.pid))
        self.cfg.set("control_socket_disable", True)
        env_args = self.cfg.get_cmd_args_from_env()
        if env_args:
            parsed = self.cfg.parser().parse_args(env_args)
            for key, value in vars(parsed).items():
                if value is not None and key != "args":
                    self.cfg.set(key.lower(), value)

    def load(self) -> WSGIApplication:
        # Runs in each worker after the fork.
        runtime = open_runtime(self.settings, checkpointed_elsewhere=True)
        self.server = build(self.settings, runtime=runtime, notify=self.background.notify)
        heap.settle("web worker")
        return heap.warming(self.server.web)

    def stop_worker(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as error:
            print(f"\nError: {error}\n", file=sys.stderr)
            sys.exit(1)


def default_workers(runtime: Runtime, environ: Mapping[str, str] = os.environ) -> int | None:
    """How many web workers serve runs unless told (None: gunicorn's WEB_CONCURRENCY).

    On PostgreSQL one per core, up to MAX_DEFAULT_WORKERS: a Python process runs
    one thread at a time, so one worker uses one core, and under load its
    threads queue for it. On SQLite one: its writers take turns anyway.
    """
    if "WEB_CONCURRENCY" in environ or _sqlite(runtime):
        return None
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def serve(
    settings: Settings,
    *,
    on_start: Sequence[OnStart] = (),
    workers: int | None = None,
    threads: int | None = None,
) -> int:
    """Run the web server, and the background process, until stopped; the exit status."""
    runtime = Runtime(settings)
    runtime.ensure_schema()  # SQLite migrates itself; PostgreSQL must be at head already
    runtime.engine.dispose()  # no connection may cross a fork
    options: dict[str, Any] = {
        "bind": f"0.0.0.0:{settings.port}",
        # gthread, reading each request in the main loop: a slow client can't hold a thread.
        "worker_class": "bot.http_worker.DeadlineWorker",
        "threads": threads or DEFAULT_THREADS,
        "accesslog": "-",
        "logger_class": "bot.access_log.AccessLogger",  # no sign-up token in the log
        "errorlog": "-",
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "proc_name": "statusbot",
    }
    workers = workers or default_workers(runtime)
    if workers is not None:
        options["workers"] = workers
    # Every worker and the background process counts in files a scrape sums; chosen
    # here, before any of them is forked.
    folder = (
        instruments.use_multiprocess_dir() if settings.metrics or settings.metrics_port else None
    )
    background = Background(settings, on_start)
    application = _Gunicorn(settings, options, background)
    heap.settle("statusbot serve")  # before the forks: the children share these pages
    background.start()
    try:
        application.run()
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 1
    finally:
        background.stop()
        if folder is not None:
            instruments.remove_multiprocess_dir(folder)
    return 0


if __name__ == "__main__":  # pragma: no cover - `statusbot serve` is the usual way in
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        configured = Settings.from_env()
    except SettingsError as error:
        print(f"statusbot: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(configured))
