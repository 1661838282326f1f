"""Publishing the page: atomic writes, unchanged files left alone, failures keep the last page."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bot import publish as bot_publish
from bot.publish import Publisher, attach_publisher, page_info
from bot.runtime import Runtime
from renderers import publish as publish_module
from renderers.html import stylesheet
from renderers.publish import UnsafePath, read_manifest, remove_files, write_files
from renderers.site import render_site
from storage.snapshot import Snapshot, build_snapshot
from tests.conftest import FakeClock
from tests.helpers import Program


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


# --- write_files -------------------------------------------------------------------------------


def test_write_files_creates_directories_and_writes_every_file(tmp_path: Path) -> None:
    root = tmp_path / "public"
    files = {"index.html": b"<h1>ok</h1>", "api/v2/status.json": b"{}", "incidents/1.html": b"1"}
    written = write_files(root, files)
    assert sorted(written) == sorted(files)
    assert written[-1] == "index.html"  # the front page goes last: its links exist by then
    for name, data in files.items():
        assert (root / name).read_bytes() == data
        assert (root / name).stat().st_mode & 0o777 == 0o644
    assert temporaries(root) == []


def test_unchanged_files_are_not_rewritten(tmp_path: Path) -> None:
    files = {"index.html": b"same", "badge.svg": b"<svg/>", "incidents/1.html": b"one"}
    write_files(tmp_path, files)
    before = {name: identity(tmp_path / name) for name in files}
    assert write_files(tmp_path, files) == []
    assert {name: identity(tmp_path / name) for name in files} == before

    changed = {**files, "badge.svg": b"<svg>new</svg>", "incidents/1.html": b"uno"}
    assert sorted(write_files(tmp_path, changed)) == ["badge.svg", "incidents/1.html"]
    assert identity(tmp_path / "index.html") == before["index.html"]
    # Replaced by a rename, not rewritten in place: a reader holding the old file keeps it.
    assert identity(tmp_path / "badge.svg")[0] != before["badge.svg"][0]
    assert (tmp_path / "badge.svg").read_bytes() == b"<svg>new</svg>"


def test_many_files_at_once(tmp_path: Path) -> None:
    files = {f"incidents/{n}.html": f"page {n}".encode() for n in range(1, 101)}
    assert len(write_files(tmp_path, files)) == 100
    assert (tmp_path / "incidents" / "57.html").read_bytes() == b"page 57"
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize(
    "name",
    ["../escape.html", "/etc/passwd", "a/../../escape", "", "a//b", "./index.html", "a\\b", "x/."],
)
def test_paths_outside_the_page_are_refused_before_anything_is_written(
    tmp_path: Path, name: str
) -> None:
    root = tmp_path / "public"
    with pytest.raises(UnsafePath):
        write_files(root, {"index.html": b"fine", name: b"evil"})
    assert not (root / "index.html").exists()
    assert not (tmp_path / "escape.html").exists()


def test_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "public"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "incidents").symlink_to(outside)
    with pytest.raises(UnsafePath):
        write_files(root, {"incidents/1.html": b"x"})
    assert list(outside.iterdir()) == []


def test_a_symlink_deeper_down_leading_out_is_refused_and_one_staying_inside_is_followed(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "public", tmp_path / "elsewhere"
    (root / "api" / "v2").mkdir(parents=True)
    outside.mkdir()
    (root / "api" / "v2" / "incidents").symlink_to(outside)
    with pytest.raises(UnsafePath):
        write_files(root, {"index.html": b"fine", "api/v2/incidents/new/1.json": b"{}"})
    assert list(outside.iterdir()) == [] and not (root / "index.html").exists()
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    assert write_files(root, {"alias/1.html": b"x"}) == ["alias/1.html"]
    assert (root / "real" / "1.html").read_bytes() == b"x"


def test_release_later_holds_the_replaced_files_and_a_thread_frees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(tmp_path, {"a.html": b"old a", "b.html": b"old b", "c.html": b"same"})
    fds = set(os.listdir("/proc/self/fd"))
    handed: list[list[int]] = []
    real_release = publish_module._releaser.release

    def release(held: list[int]) -> None:
        # The replaced files themselves, already unlinked, each read as it was.
        assert all(os.readlink(f"/proc/self/fd/{fd}").endswith(" (deleted)") for fd in held)
        assert sorted(os.pread(fd, 100, 0) for fd in held) == [b"old a", b"old b"]
        handed.append(list(held))
        real_release(held)

    monkeypatch.setattr(publish_module._releaser, "release", release)
    files = {"a.html": b"new a", "b.html": b"new b", "c.html": b"same", "d.html": b"new d"}
    written = write_files(tmp_path, files, release_later=True)
    assert sorted(written) == ["a.html", "b.html", "d.html"]
    assert {name: (tmp_path / name).read_bytes() for name in files} == files
    assert len(handed) == 1 and len(handed[0]) == 2  # d.html replaced nothing
    assert temporaries(tmp_path) == []
    deadline = time.monotonic() + 5
    while set(os.listdir("/proc/self/fd")) - fds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(os.listdir("/proc/self/fd")) - fds == set()  # every one closed


def test_release_later_frees_at_once_when_a_write_has_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = {f"p{n}.html": b"old" for n in range(publish_module.RELEASE_LIMIT + 1)}
    write_files(tmp_path, many)
    handed: list[list[int]] = []
    monkeypatch.setattr(publish_module._releaser, "release", handed.append)
    write_files(tmp_path, {name: b"new" for name in many}, release_later=True)
    assert handed == []  # a full render's thousands of files are not held open


@pytest.mark.parametrize("count", [3, 40])  # fsync per file, and one sync for many
def test_a_failed_write_leaves_no_temporary_files_and_the_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    old = {f"p{n}.html": b"old" for n in range(count)}
    write_files(tmp_path, old)
    replaced: list[str] = []
    real_replace = os.replace

    def failing_replace(src: str, dst: os.PathLike[str]) -> None:
        if replaced:
            raise OSError(28, "No space left on device")
        replaced.append(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(publish_module.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_files(tmp_path, {name: b"new" for name in old})
    assert temporaries(tmp_path) == []
    contents = sorted((tmp_path / name).read_bytes() for name in old)
    assert contents == [b"new"] + [b"old"] * (count - 1)  # each file whole, old or new


@pytest.mark.parametrize("fail", ["full", "short"])
def test_a_disk_that_fills_while_staging_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    old = {f"p{n}.html": b"old" for n in range(5)}
    write_files(tmp_path, old)
    calls: list[int] = []
    real_write = os.write

    def filling_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        # A short write first, as a signal or a nearly full disk can make: the rest follows.
        return real_write(fd, bytes(data[:2]) if fail == "short" else data)

    monkeypatch.setattr(publish_module.os, "write", filling_write)
    new = {name: b"new page" for name in old}
    with pytest.raises(OSError, match="No space"):
        write_files(tmp_path, new)
    assert temporaries(tmp_path) == []
    assert all((tmp_path / name).read_bytes() == b"old" for name in old)  # none replaced
    monkeypatch.undo()
    if fail == "short":  # and a short write, uninterrupted, still writes every byte
        monkeypatch.setattr(publish_module.os, "write", lambda fd, d: real_write(fd, d[:3]))
        assert write_files(tmp_path, new) == sorted(new)
        assert all((tmp_path / name).read_bytes() == b"new page" for name in new)


def test_remove_files(tmp_path: Path) -> None:
    write_files(tmp_path, {"incidents/1.html": b"1", "incidents/2.html": b"2"})
    assert remove_files(tmp_path, ["incidents/2.html", "incidents/3.html"]) == ["incidents/2.html"]
    assert sorted(p.name for p in (tmp_path / "incidents").iterdir()) == ["1.html"]
    with pytest.raises(UnsafePath):
        remove_files(tmp_path, ["../x"])


# --- render_site -------------------------------------------------------------------------------


def run(runtime: Runtime, *lines: str) -> None:
    for line in lines:
        result = runtime.run_line(line, user="U1")
        assert result.ok, (line, result.reply)


def test_render_site_has_every_file_of_the_page(runtime: Runtime) -> None:
    run(
        runtime,
        "/component add API",
        "/incident open Errors --components API=major -- Looking.",
        "/maintenance schedule Upgrade --start tomorrow 22:00 --end tomorrow 23:00",
    )
    with Session(runtime.engine) as session:
        snap = build_snapshot(session, page=page_info(runtime.settings), now=runtime.clock())
    files = render_site(snap)
    for name in [
        "index.html",
        "history.html",
        "incidents/1.html",
        "incidents/2.html",
        "api/v2/summary.json",
        "api/v2/status.json",
        "api/v2/components.json",
        "api/v2/incidents.json",
        "api/v2/incidents/unresolved.json",
        "api/v2/scheduled-maintenances.json",
        "api/v2/scheduled-maintenances/upcoming.json",
        "api/v2/scheduled-maintenances/active.json",
        "history.atom",
        "history.rss",
        "maintenance.ics",
        "badge.svg",
        "subscribe.html",
        stylesheet().path,
    ]:
        assert name in files, name
        assert isinstance(files[name], bytes) and files[name]
    only = render_site(snap, incidents={2})
    assert "incidents/2.html" in only and "incidents/1.html" not in only
    assert "Errors" in files["index.html"].decode("utf-8")


# --- Publisher ---------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "public"


def test_publish_after_every_change_rewrites_only_what_changed(
    runtime: Runtime, clock: FakeClock, root: Path
) -> None:
    publisher = Publisher(runtime, root=root).attach()
    run(runtime, "/component add API", "/incident open Errors -- Looking.")
    clock.advance(minutes=5)
    run(runtime, "/incident open Other -- Hm.")
    assert (root / "incidents" / "1.html").exists() and (root / "incidents" / "2.html").exists()
    one = identity(root / "incidents" / "1.html")
    calendar = identity(root / "maintenance.ics")

    clock.advance(minutes=5)
    run(runtime, "/incident update 2 --status identified -- Found it.")
    assert identity(root / "incidents" / "1.html") == one  # not rendered, not touched
    assert identity(root / "maintenance.ics") == calendar  # rendered, same bytes: not touched
    assert "Found it." in (root / "incidents" / "2.html").read_text()
    assert publisher.last_snapshot is not None
    assert temporaries(root) == []

    report = publisher.publish()
    assert report is not None and report.written == () and not report.full


def test_a_full_render_syncs_its_directories_and_an_incremental_publish_does_not(
    runtime: Runtime, clock: FakeClock, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(publish_module, "_sync_directory", lambda d: synced.append(str(d)))
    publisher = Publisher(runtime, root=root)
    run(runtime, "/component add API", "/incident open Errors -- Looking.")
    full = publisher.publish_all()
    assert full is not None and full.full and full.written
    assert str(root / "incidents") in synced and str(root) in synced
    synced.clear()
    clock.advance(minutes=5)
    run(runtime, "/incident update 1 --status identified -- Found it.")
    report = publisher.publish(dirty={1})
    assert report is not None and not report.full and "incidents/1.html" in report.written
    assert synced == []  # the renames are left to the file system's journal
    assert "Found it." in (root / "incidents" / "1.html").read_text()


def test_a_component_change_renders_only_the_pages_that_show_it(
    runtime: Runtime, clock: FakeClock, root: Path
) -> None:
    publisher = Publisher(runtime, root=root)
    run(runtime, "/component add API", "/incident open Old --components API=major -- Down.")
    run(runtime, "/incident resolve 1 -- Fixed.", "/incident open New --components API=major")
    assert publisher.publish_all() is not None
    old = identity(root / "incidents" / "1.html")

    # The JSON of incident 1 names API's state now, so its view changes; its page does not.
    clock.advance(minutes=5)
    run(runtime, "/incident update 2 --components API=partial -- Partly back.")
    report = publisher.publish(dirty={2})
    assert report is not None and not report.full
    assert report.incidents == {2}
    assert identity(root / "incidents" / "1.html") == old
    assert "Partly back." in (root / "incidents" / "2.html").read_text()
    fresh = root.with_name("fresh")
    assert Publisher(runtime, root=fresh).publish_all() is not None
    assert files_of(root) == files_of(fresh)


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_incrementally_published_page_equals_a_full_render(
    runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    root = tmp_path / "incremental"
    Publisher(runtime, root=root).attach()
    steps = [
        "/component add API --start-date 2026-01-01",
        '/component add "Transactional emails" --group Email',
        "/incident open API errors --components API=partial -- Looking.",  # the banner turns
        "/incident open Slow mail -- Hm.",
        "/incident update 2 --status identified -- Found it.",
        '/component rename "Transactional emails" --to Mail',
        "/incident edit 1 --title API errors on EU",
        "/component set API major",
        "/incident resolve 1 -- Fixed.",
        "/maintenance schedule Upgrade --start tomorrow 22:00 --end tomorrow 23:00 "
        "--components API",
        "/incident resolve 2",
    ]
    for n, line in enumerate(steps):
        clock.advance(minutes=3)
        run(runtime, line)
        fresh = tmp_path / f"full{n}"
        assert Publisher(runtime, root=fresh).publish_all() is not None
        assert files_of(root) == files_of(fresh), line


def test_publish_all_renders_every_incident_and_drops_stale_pages(
    runtime: Runtime, root: Path
) -> None:
    run(runtime, "/incident open Errors -- Looking.")
    (root / "incidents").mkdir(parents=True)
    (root / "incidents" / "99.html").write_text("from a database long gone")
    (root / "incidents" / "notes.txt").write_text("not ours to delete")
    report = Publisher(runtime, root=root).publish_all()
    assert report is not None and report.full
    assert report.incidents == {1}
    assert report.removed == ("incidents/99.html",)
    assert sorted(p.name for p in (root / "incidents").iterdir()) == ["1.html", "notes.txt"]
    assert "index.html" in report.written


def test_a_failing_renderer_leaves_the_last_good_page(
    runtime: Runtime, clock: FakeClock, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = {"now": False}

    def render(snapshot: Snapshot, *, incidents: Collection[int] | None = None) -> dict[str, bytes]:
        if broken["now"]:
            raise RuntimeError("template bug")
        return render_site(snapshot, incidents=incidents)

    publisher = Publisher(runtime, root=root, render=render).attach()
    run(runtime, "/incident open Errors -- Looking.")
    before = {p: (p.read_bytes(), identity(p)) for p in root.rglob("*") if p.is_file()}
    assert before

    broken["now"] = True
    clock.advance(minutes=5)
    with caplog.at_level(logging.ERROR, logger="bot.publish"):
        run(runtime, "/incident update 1 --status identified -- Found it.")  # the command works
    assert "rendering the page failed" in caplog.text
    after = {p: (p.read_bytes(), identity(p)) for p in root.rglob("*") if p.is_file()}
    assert after == before
    assert temporaries(root) == []

    # Once the renderer works again, the page it owed is rendered even with no new change.
    broken["now"] = False
    report = publisher.publish()
    assert report is not None and 1 in report.incidents
    assert "Found it." in (root / "incidents" / "1.html").read_text()


def test_a_failing_write_is_logged_and_retried(
    runtime: Runtime, root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = Publisher(runtime, root=root)
    run(runtime, "/incident open Errors -- Looking.")

    def full_disk(*_: object, **__: object) -> list[str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bot.publish.write_files", full_disk)
    with caplog.at_level(logging.ERROR, logger="bot.publish"):
        assert publisher.publish() is None
    assert "No space left on device" in caplog.text
    monkeypatch.undo()
    report = publisher.publish()
    assert report is not None and report.full  # the first publish never landed: all of it
    assert (root / "incidents" / "1.html").exists()


def test_publish_from_several_threads_at_once(runtime: Runtime, root: Path) -> None:
    publisher = Publisher(runtime, root=root)
    run(runtime, "/component add API", "/incident open Errors -- Looking.")
    errors: list[BaseException] = []

    def go() -> None:
        try:
            assert publisher.publish() is not None
        except BaseException as error:  # collected for the main thread
            errors.append(error)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (root / "index.html").exists() and temporaries(root) == []


class FakeMirror:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.published: list[str] = []
        self.removed: list[str] = []
        self.calls: list[str] = []

    def publish(self, files: Mapping[str, bytes]) -> list[str]:
        self.calls.append("publish")
        if self.fail:
            raise RuntimeError("bucket unreachable")
        self.published += list(files)
        return list(files)

    def resync(self) -> None:
        self.calls.append("resync")

    def remove(self, paths: Collection[str]) -> list[str]:
        self.removed += list(paths)
        return list(paths)


def test_the_page_is_copied_to_a_mirror_after_the_local_write(
    runtime: Runtime, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run(runtime, "/incident open Errors -- Looking.")
    mirror = FakeMirror()
    report = Publisher(runtime, root=root, mirror=mirror).publish_all()
    assert report is not None and "incidents/1.html" in report.mirrored
    assert "index.html" in mirror.published

    broken = FakeMirror(fail=True)
    (root / "index.html").unlink()
    with caplog.at_level(logging.ERROR, logger="bot.publish"):
        report = Publisher(runtime, root=root, mirror=broken).publish_all()
    assert report is not None and report.mirror_error == "bucket unreachable"
    assert (root / "index.html").exists()  # the local page is published all the same
    assert "bucket unreachable" in caplog.text


def test_an_older_stylesheet_is_removed_once_the_pages_link_the_new_one(
    runtime: Runtime, root: Path
) -> None:
    run(runtime, "/incident open Errors -- Looking.")
    root.mkdir(parents=True)
    (root / "style.0000000000.css").write_text("from the release before")
    (root / "style.css").write_text("not fingerprinted: not ours to delete")
    mirror = FakeMirror()
    report = Publisher(runtime, root=root, mirror=mirror).publish_all()
    assert report is not None
    current = stylesheet().path
    assert report.removed == ("style.0000000000.css",)
    assert mirror.removed == ["style.0000000000.css"]
    assert sorted(p.name for p in root.glob("style*.css")) == sorted([current, "style.css"])
    assert current in read_manifest(root) and "style.0000000000.css" not in read_manifest(root)
    for page in ("index.html", "history.html", "subscribe.html", "incidents/1.html"):
        assert current in (root / page).read_text(), page


def test_a_shared_database_looks_at_the_mirror_afresh_before_each_copy(
    runtime: Runtime, root: Path
) -> None:
    # With PostgreSQL, other processes publish to the same bucket: what this one
    # remembers uploading may be stale, so it re-reads the bucket every time.
    mirror = FakeMirror()
    publisher = Publisher(runtime, root=root, mirror=mirror)
    publisher.publish_all()
    run(runtime, "/incident open Errors -- Looking.")
    publisher.publish()
    shared = runtime.engine.dialect.name == "postgresql"
    expected = ["resync", "publish"] * 2 if shared else ["publish"] * 2
    assert mirror.calls == expected


def test_an_incremental_publish_ends_its_read_before_it_copies_to_the_mirror(
    runtime: Runtime, root: Path
) -> None:
    """Copying to a bucket takes a while: no transaction is left open meanwhile (on
    PostgreSQL a server's idle-in-transaction timeout would end the session and the
    page lock with it)."""
    open_reads: list[int] = []

    class Watching(FakeMirror):
        def publish(self, files: Mapping[str, bytes]) -> list[str]:
            if runtime.engine.dialect.name == "postgresql":
                with runtime.engine.connect() as conn:
                    # The page lock's holder (this publish) and whether it is in a transaction.
                    states = conn.execute(
                        text(
                            "SELECT a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                            "WHERE l.locktype = 'advisory' AND l.granted "
                            "AND a.datname = current_database() AND a.pid <> pg_backend_pid()"
                        )
                    ).scalars()
                open_reads.append(sum(state == "idle in transaction" for state in states))
            return super().publish(files)

    mirror = Watching()
    publisher = Publisher(runtime, root=root, mirror=mirror)
    assert publisher.publish_all() is not None
    run(runtime, "/incident open Errors -- Looking.")
    report = publisher.publish()
    assert report is not None and report.mirror_error is None
    assert "incidents/1.html" in mirror.published
    if runtime.engine.dialect.name == "postgresql":
        assert open_reads == [0, 0]


def test_a_copy_skipped_for_a_lost_page_lock_is_made_by_the_next_publish(
    runtime: Runtime, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock is gone before the copy: nothing is copied then (another process may
    be publishing), and the files are not forgotten: the next publish copies them."""
    mirror = FakeMirror()
    publisher = Publisher(runtime, root=root, mirror=mirror)
    assert publisher.publish_all() is not None
    run(runtime, "/incident open Errors -- Looking.")

    def gone(_conn: object) -> None:
        raise OSError("server closed the connection unexpectedly")

    monkeypatch.setattr(bot_publish, "end_reading", gone)
    report = publisher.publish()
    assert report is not None and (report.mirror_error or "").startswith("lost the page lock")
    assert "incidents/1.html" not in mirror.published
    monkeypatch.undo()

    run(runtime, "/incident open Slow pages -- Looking.")
    report = publisher.publish()
    assert report is not None and report.mirror_error is None
    assert {"incidents/1.html", "incidents/2.html"} <= set(mirror.published)


def test_no_mirror_unless_a_bucket_is_set(runtime: Runtime) -> None:
    assert Publisher(runtime).mirror is None


def test_attach_publisher_and_page_info(runtime: Runtime, engine: Engine) -> None:
    publisher = attach_publisher(runtime)
    assert publisher.on_change in runtime.after_change
    info = page_info(runtime.settings)
    assert info.url == "https://status.example.com" and info.name == "Example"
    assert info.time_zone == "Australia/Sydney" and len(info.id) == 12


# --- Through the program -----------------------------------------------------------------------


def test_statusbot_render_and_run(empty_db: tuple[Engine, str], tmp_path: Path) -> None:
    _, url = empty_db
    statusbot = Program(url, tmp_path, STATUSBOT_PAGE_URL="https://status.example.com")
    assert statusbot("db", "upgrade").returncode == 0
    page = tmp_path / "public"

    done = statusbot("render")
    assert done.returncode == 0, done.stderr
    assert "wrote index.html" in done.stdout
    assert "Rendered 16 files in" in done.stdout  # no incident pages yet

    done = statusbot("run", "/incident open Errors -- Looking.")
    assert done.returncode == 0, done.stderr
    assert "Errors" in (page / "incidents" / "1.html").read_text()  # `run` publishes
    index = identity(page / "index.html")

    done = statusbot("render")
    assert done.returncode == 0, done.stderr
    assert "0 written, 17 unchanged" in done.stdout
    assert identity(page / "index.html") == index
    assert temporaries(page) == []

    unwritable = tmp_path / "file"
    unwritable.write_text("not a directory")
    failed = statusbot("render", env={"STATUSBOT_PAGE_DIR": str(unwritable)})
    assert failed.returncode == 1
    assert "could not be rendered" in failed.stderr
