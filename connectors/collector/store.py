"""The collector's durable landing: one append-only file per source, folder and minute, fsynced before anyone
is told (docs/connectors.md, "pushed" column of the landing layout).

``MinuteStore.append`` (or ``append_async`` from the event loop, ``append_cb`` from the MQTT thread) adds one
line to ``<landing>/<source>/<day>/<folder>/.push-<YYYYmmddHHMM>-<collector>.ndjson.part`` and returns only
once the line is on disk. Group commit: callers only put their line in the file's buffer; a small pool of sync
threads writes each file's whole buffer with one ``write`` and one ``fdatasync`` and then releases every caller
whose line was in it, so concurrent pushes share a sync and nobody returns before its bytes are durable. A file
is handled by one sync thread at a time (lines stay in arrival order), different files in parallel. Nothing
here touches the disk on the caller's thread, so the HTTP event loop never blocks on I/O.

``<day>`` is the local (Asia/Shanghai) day of the minute; the minute is the collector's receive time. A
closer thread closes a minute's file ``grace_s`` after the minute ends (its last lines synced, then renamed to
``push-<minute>-<collector>.ndjson`` and the folder fsynced); a line for a minute already closed lands in the
current minute's file instead (a push held up longer than the grace). ``close()`` closes every file.

Start-up recovers this collector's leftovers: each ``.part`` is cut back to its last complete line (a torn tail
was never acknowledged; a line holding NUL bytes, what a power cut can leave in unsynced blocks, is dropped
too) and renamed, or, when its minute is still open, adopted and appended to. The collector id is locked
(``flock`` on ``_wire/collector/<id>.lock``) so two processes never share its files.

GA/T 1400 bodies are documents, not lines: ``write_document`` lands each one whole as
``push-<minute>-<collector>-<seq>.json`` with ``connectors.landing.write_atomic`` (``seq`` continues across
restarts).

``landed_line`` is the line rule for bodies: JSON -> one compact line (key order kept); anything else -> the
bytes with CR/LF as spaces. Bytes that are not UTF-8 are kept as ``\\xNN`` escapes and NUL as ``\\x00``: the
parsers read a minute file as UTF-8 text, and one undecodable push must not make the whole file unreadable.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.collector.metrics import Metrics
from connectors.landing import WIRE, fsync_dir, write_atomic

log = logging.getLogger("neuron.collector.store")

PUSH_SOURCES = ("telemetry", "access_events", "parking", "vehicle_passages")
COLLECTOR_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
FILE_MODE = 0o640
DEFAULT_TZ = "Asia/Shanghai"


class StoreError(RuntimeError):
    pass


class StoreBusy(StoreError):
    """Another live process holds this collector id on this landing zone."""


class StoreClosed(StoreError):
    pass


class WriteFailed(StoreError):
    """The line was not made durable (write or fsync failed); the sender must be told to retry."""


# --- the line rule --------------------------------------------------------------------------------------------

def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def compact(obj: Any) -> bytes:
    """One compact JSON line, key order kept, non-ASCII as itself (escaped only where it cannot be UTF-8)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") in a string: keep it as its JSON escape
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def raw_line(body: bytes) -> bytes:
    """A body that is not JSON, as one UTF-8 line: CR and LF as spaces, undecodable bytes as ``\\xNN``, NUL as
    ``\\x00`` (it is quarantined downstream as malformed; nothing is lost, nothing else in its file is harmed)."""
    text = body.decode("utf-8", "backslashreplace")
    return text.replace("\r", " ").replace("\n", " ").replace("\x00", "\\x00").encode("utf-8")


def parse_json(body: bytes) -> tuple[bool, Any]:
    """(True, value) for a body that is JSON (NaN and Infinity are not), else (False, None)."""
    try:
        return True, json.loads(body, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False, None


def landed_line(body: bytes) -> bytes:
    ok, obj = parse_json(body)
    return compact(obj) if ok else raw_line(body)


# --- minutes --------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _minute_end(minute: str, tz: str) -> float:
    return datetime.strptime(minute, "%Y%m%d%H%M").replace(tzinfo=ZoneInfo(tz)).timestamp() + 60.0


def day_of(minute: str) -> str:
    return f"{minute[:4]}-{minute[4:6]}-{minute[6:8]}"


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def truncate_torn(path: Path) -> int:
    """Cut ``path`` back to its last complete line and drop lines holding NUL bytes; returns bytes dropped."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        keep, pos = 0, size
        while pos > 0:
            n = min(1 << 16, pos)
            pos -= n
            i = os.pread(fd, n, pos).rfind(b"\n")
            if i >= 0:
                keep = pos + i + 1
                break
        dropped = size - keep
        if dropped:
            os.ftruncate(fd, keep)
        if keep and b"\x00" in (data := os.pread(fd, keep, 0)):
            good = b"".join(line for line in data.splitlines(keepends=True) if b"\x00" not in line)
            os.ftruncate(fd, 0)
            os.pwrite(fd, good, 0)
            dropped += keep - len(good)
        if dropped:
            os.fsync(fd)
        return dropped
    finally:
        os.close(fd)


def makedirs_durable(folder: Path) -> None:
    """``mkdir -p`` whose new entries survive a power cut (each new folder's parent is fsynced)."""
    missing: list[Path] = []
    p = folder
    while not p.is_dir():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d)
        fsync_dir(d.parent)


# --- the store ------------------------------------------------------------------------------------------------

class _MinuteFile:
    __slots__ = ("source", "folder", "minute", "dir", "part", "final", "fd", "size", "lines", "buffer",
                 "waiters", "queued", "closing", "cond")

    def __init__(self, source: str, folder: str, minute: str, directory: Path) -> None:
        self.source, self.folder, self.minute, self.dir = source, folder, minute, directory
        self.part: Path | None = None
        self.final: Path | None = None
        self.fd: int | None = None
        self.size = 0  # bytes written and synced (a line boundary)
        self.lines = 0
        self.buffer = bytearray()
        self.waiters: list[Any] = []
        self.queued = False  # in the sync queue or being synced
        self.closing = False
        self.cond = threading.Condition(threading.Lock())


Waiter = Callable[[BaseException | None], None] | tuple[asyncio.AbstractEventLoop, asyncio.Future]


def _settle(futures: list[asyncio.Future], err: BaseException | None) -> None:
    for fut in futures:
        if not fut.done():
            if err is None:
                fut.set_result(None)
            else:
                fut.set_exception(WriteFailed(str(err)))


def _release(waiters: list[Any], err: BaseException | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
    for w in waiters:
        if type(w) is tuple:
            by_loop.setdefault(w[0], []).append(w[1])
        else:
            try:
                w(err)
            except Exception:  # a waiter's bug must not stop the sync thread
                log.exception("collector store: a durability callback failed")
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, futures, err)


class MinuteStore:
    """Durable per-minute append files of one collector (see the module doc)."""

    def __init__(self, landing: Path, collector_id: str, *, grace_s: float = 5.0, tz: str = DEFAULT_TZ,
                 clock: Callable[[], float] = time.time, sync_threads: int = 2, tick_s: float = 1.0,
                 metrics: Metrics | None = None) -> None:
        if not COLLECTOR_ID.match(collector_id or ""):
            raise StoreError(f"collector id must be 1-64 letters, digits or '_' (it is part of file names), "
                             f"got {collector_id!r}")
        self.landing = Path(landing).absolute()
        self.collector_id = collector_id
        self.grace_s = grace_s
        self.tz_name = tz
        self.tz = ZoneInfo(tz)
        self.clock = clock
        self.tick_s = tick_s
        self.metrics = metrics or Metrics()
        self._lock = threading.Lock()
        self._files: dict[tuple[str, str, str], _MinuteFile] = {}
        self._seq: dict[tuple[str, str, str], int] = {}
        self._seq_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_MinuteFile | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._closed = False
        self._minute_cache: tuple[int, str] = (-1, "")
        self._lock_fd = self._acquire()
        try:
            self.recovered = self.recover()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._syncers = [threading.Thread(target=self._sync_loop, name=f"collector-sync-{i}", daemon=True)
                         for i in range(max(1, sync_threads))]
        self._closer = threading.Thread(target=self._closer_loop, name="collector-closer", daemon=True)
        for t in (*self._syncers, self._closer):
            t.start()

    # -- identity and lock

    def _acquire(self) -> int:
        folder = self.landing / WIRE / "collector"
        makedirs_durable(folder)
        fd = os.open(folder / f"{self.collector_id}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreBusy(f"collector id {self.collector_id!r} is already running on {self.landing}") from None
        return fd

    # -- minutes

    def minute_key(self, ts: float | None = None) -> str:
        """``YYYYmmddHHMM`` of ``ts`` (default: now) in local time."""
        ts = self.clock() if ts is None else ts
        whole = int(ts // 60)
        cached = self._minute_cache
        if cached[0] == whole:
            return cached[1]
        key = datetime.fromtimestamp(whole * 60, self.tz).strftime("%Y%m%d%H%M")
        self._minute_cache = (whole, key)
        return key

    def folder_path(self, source: str, folder: str, minute: str) -> Path:
        return self.landing / source / day_of(minute) / folder

    @property
    def open_files(self) -> int:
        with self._lock:
            return len(self._files)

    # -- appending

    def _file(self, source: str, folder: str, minute: str) -> _MinuteFile:
        with self._lock:
            if self._closed:
                raise StoreClosed("the collector store is closed")
            mf = self._files.get((source, folder, minute))
            if mf is not None:
                return mf
            now = self.clock()
            if _minute_end(minute, self.tz_name) + self.grace_s <= now:  # that minute is closed: land it now
                minute = self.minute_key(now)
                mf = self._files.get((source, folder, minute))
                if mf is not None:
                    return mf
            mf = _MinuteFile(source, folder, minute, self.folder_path(source, folder, minute))
            self._files[(source, folder, minute)] = mf
            return mf

    def _enqueue(self, source: str, folder: str, minute: str, line: bytes, waiter: Waiter) -> None:
        if b"\n" in line or b"\r" in line:
            raise ValueError("a landed line must not contain CR or LF")
        if "/" in folder or folder.startswith(".") or not folder or "/" in source:
            raise ValueError(f"bad landing folder {source}/{folder}")
        while True:
            mf = self._file(source, folder, minute)
            with mf.cond:
                if mf.closing:  # closed under our feet: the next lookup finds (or opens) the current minute
                    continue
                mf.buffer += line
                mf.buffer += b"\n"
                mf.lines += 1
                mf.waiters.append(waiter)
                if not mf.queued:
                    mf.queued = True
                    self._queue.put(mf)
                return

    def append_cb(self, source: str, folder: str, minute: str, line: bytes,
                  done: Callable[[BaseException | None], None]) -> None:
        """Queue ``line``; ``done(None)`` is called (from a sync thread) once it is durable, ``done(error)`` if
        it could not be made durable."""
        self._enqueue(source, folder, minute, line, done)

    def append(self, source: str, folder: str, minute: str, line: bytes) -> None:
        """Append ``line`` (no newline) and return once it is fsynced; raises ``WriteFailed`` otherwise."""
        event = threading.Event()
        box: list[BaseException | None] = []

        def done(err: BaseException | None) -> None:
            box.append(err)
            event.set()

        self._enqueue(source, folder, minute, line, done)
        event.wait()
        if box[0] is not None:
            raise WriteFailed(str(box[0]))

    async def append_async(self, source: str, folder: str, minute: str, line: bytes) -> None:
        """``append`` for the event loop: awaits the fsync without blocking the loop."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._enqueue(source, folder, minute, line, (loop, fut))
        await fut

    # -- documents (GA/T 1400 bodies)

    def _next_seq(self, folder_path: Path, minute: str) -> int:
        key = (str(folder_path), minute, "")
        with self._seq_lock:
            seq = self._seq.get(key)
            if seq is None:
                pattern = re.compile(rf"^\.?push-{minute}-{self.collector_id}-(\d+)\.json")
                seq = 1 + max((int(m[1]) for n in (os.listdir(folder_path) if folder_path.is_dir() else ())
                               if (m := pattern.match(n))), default=0)
            self._seq[key] = seq + 1
            return seq

    def write_document(self, source: str, folder: str, minute: str, data: bytes) -> Path:
        """Land one document whole and durably (blocking); returns its path."""
        if self._closed:
            raise StoreClosed("the collector store is closed")
        path_dir = self.folder_path(source, folder, minute)
        t0 = time.perf_counter()
        try:
            makedirs_durable(path_dir)
            path = path_dir / f"push-{minute}-{self.collector_id}-{self._next_seq(path_dir, minute):06d}.json"
            write_atomic(path, data)
        except OSError as exc:
            self.metrics.observe_fsync(time.perf_counter() - t0, ok=False)
            raise WriteFailed(f"{type(exc).__name__}: {exc.strerror or exc}") from None
        self.metrics.observe_fsync(time.perf_counter() - t0)
        return path

    # -- syncing

    def _open(self, mf: _MinuteFile) -> None:
        makedirs_durable(mf.dir)
        base = f"push-{mf.minute}-{self.collector_id}"
        k = 0
        while True:
            stem = base if k == 0 else f"{base}-{k}"
            final, part = mf.dir / f"{stem}.ndjson", mf.dir / f".{stem}.ndjson.part"
            if not final.exists():
                break
            k += 1  # that minute was closed already (a restart or the clock stepped back): a file beside it
        existed = part.exists()
        if existed:  # a leftover of ours (a failed close): keep its complete lines, append after them
            self.metrics.add("torn_bytes_dropped", truncate_torn(part))
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        mf.fd, mf.part, mf.final, mf.size = fd, part, final, os.fstat(fd).st_size
        if not existed:
            fsync_dir(mf.dir)

    def _flush(self, mf: _MinuteFile) -> None:
        with mf.cond:
            data, mf.buffer = mf.buffer, bytearray()
            waiters, mf.waiters = mf.waiters, []
        err: BaseException | None = None
        t0 = time.perf_counter()
        try:
            if mf.fd is None:
                self._open(mf)
            _write_all(mf.fd, data)
            os.fdatasync(mf.fd)
            mf.size += len(data)
        except OSError as exc:
            err = exc
            if mf.fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(mf.fd, mf.size)  # no partial batch stays behind a later good one
            log.error("collector store: write/fsync of %s/%s minute %s failed (%d lines not acknowledged): %s",
                      mf.source, mf.folder, mf.minute, len(waiters), type(exc).__name__)
        self.metrics.observe_fsync(time.perf_counter() - t0, ok=err is None)
        _release(waiters, err)
        with mf.cond:
            if mf.buffer:
                self._queue.put(mf)
            else:
                mf.queued = False
                mf.cond.notify_all()

    def _sync_loop(self) -> None:
        while (mf := self._queue.get()) is not None:
            try:
                self._flush(mf)
            except BaseException:  # never leave waiters hanging on a bug
                log.exception("collector store: sync thread error")
                with mf.cond:
                    mf.queued = False
                    mf.cond.notify_all()

    # -- closing minutes

    def _finish(self, part: Path, final: Path) -> Path | None:
        """Rename a complete ``.part`` to its final name (beside an existing one, never over it)."""
        if part.stat().st_size == 0:
            part.unlink()
            fsync_dir(part.parent)
            return None
        k, target = 0, final
        while target.exists():
            k += 1
            target = final.with_name(final.name.removesuffix(".ndjson") + f"-{k}.ndjson")
        os.rename(part, target)
        fsync_dir(part.parent)
        return target

    def _close_file(self, mf: _MinuteFile) -> Path | None:
        with mf.cond:
            mf.closing = True
            while mf.queued:
                mf.cond.wait()
        if mf.fd is None:
            return None
        try:
            os.close(mf.fd)
            mf.fd = None
            done = self._finish(mf.part, mf.final)
        except OSError as exc:  # left as .part: recovered at the next start
            log.error("collector store: closing %s/%s minute %s failed: %s", mf.source, mf.folder, mf.minute,
                      type(exc).__name__)
            return None
        self.metrics.add("files_closed")
        return done

    def close_due(self, now: float | None = None) -> list[Path]:
        """Close every minute file whose minute ended ``grace_s`` ago; returns the files made visible."""
        now = self.clock() if now is None else now
        with self._lock:
            due = [k for k in self._files if _minute_end(k[2], self.tz_name) + self.grace_s <= now]
            files = [self._files.pop(k) for k in due]
        closed = [p for mf in files if (p := self._close_file(mf)) is not None]
        if files:
            current = self.minute_key(now)
            with self._seq_lock:
                for k in [k for k in self._seq if k[1] < current]:
                    del self._seq[k]
            self.write_counters()
        return closed

    def _closer_loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.close_due()
            except Exception:
                log.exception("collector store: closer error")

    def write_counters(self) -> None:
        """The collector's counters beside its lock (``_wire/collector/<id>.json``)."""
        with contextlib.suppress(OSError):
            write_atomic(self.landing / WIRE / "collector" / f"{self.collector_id}.json",
                         json.dumps({"collector_id": self.collector_id, "written": self.clock(),
                                     **self.metrics.snapshot()}, indent=1).encode())

    def close(self) -> None:
        """Sync and close every minute file, stop the threads, release the collector id."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            files = list(self._files.values())
            self._files.clear()
        for mf in files:
            self._close_file(mf)
        self._stop.set()
        for _ in self._syncers:
            self._queue.put(None)
        for t in (*self._syncers, self._closer):
            t.join(timeout=30)
        self.write_counters()
        os.close(self._lock_fd)

    def __enter__(self) -> MinuteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recovery

    def recover(self) -> list[Path]:
        """Finish this collector's leftovers (see the module doc); returns the files made visible."""
        cid = re.escape(self.collector_id)
        part_name = re.compile(rf"^\.push-(\d{{12}})-{cid}(-\d+)?\.ndjson\.part$")
        tmp_name = re.compile(rf"^\.push-\d{{12}}-{cid}-\d+\.json\..+\.tmp$")
        now = self.clock()
        done: list[Path] = []
        for source in PUSH_SOURCES:
            for day in _subdirs(self.landing / source):
                for folder in _subdirs(day):
                    removed = False
                    for entry in os.scandir(folder):
                        if tmp_name.match(entry.name):  # a GA/T 1400 document whose write was killed: never acked
                            os.unlink(entry.path)
                            removed = True
                            continue
                        m = part_name.match(entry.name)
                        if not m:
                            continue
                        path = Path(entry.path)
                        self.metrics.add("torn_bytes_dropped", truncate_torn(path))
                        self.metrics.add("files_recovered")
                        minute = m[1]
                        key = (source, folder.name, minute)
                        if (m[2] is None and now < _minute_end(minute, self.tz_name) + self.grace_s
                                and key not in self._files and path.stat().st_size):
                            mf = _MinuteFile(*key, folder)  # its minute is still open: go on appending to it
                            mf.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                            mf.part, mf.final, mf.size = path, folder / entry.name[1:-5], os.fstat(mf.fd).st_size
                            self._files[key] = mf
                            continue
                        final = folder / entry.name[1:].removesuffix(".part")
                        if (made := self._finish(path, final)) is not None:
                            done.append(made)
                    if removed:
                        fsync_dir(folder)
        if done:
            log.info("collector store: recovered %d minute files of collector %s", len(done), self.collector_id)
        return done


def _subdirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
