"""The one thread that owns the write connection (Datasette's pattern).

Samples are queued from any thread and written in batches; a batch is committed at least every
``commit_interval`` seconds, so a killed process loses at most that much. Other writes (sessions,
workflow entries, signatures) go through ``call``, which runs a function on the writer thread inside
a transaction and returns a Future. A failing write (disk full, read-only file) is reported through
``on_error`` and the batch of samples is kept and retried: monitoring goes on and no sample is
dropped. A call whose transaction cannot be committed fails with a ``StoreError`` at once and is
never retried (the user who made the entry is told, and it cannot land later unseen).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import sqlite_utils

from ..clock import utc_iso
from ..errors import StoreError
from ..samples import DeviceStatus, Numeric, Sample, SessionEvent, WaveformChunk
from .database import open_db

log = logging.getLogger(__name__)
T = TypeVar("T")

_STOP = object()


def pack_samples(samples) -> bytes:
    return struct.pack(f"<{len(samples)}i", *samples)


def unpack_samples(blob: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(blob) // 4}i", blob)


def flags_text(flags) -> str:
    return ",".join(sorted(str(getattr(f, "value", f)) for f in flags))


class StoreWriter:
    def __init__(self, path, *, commit_interval: float = 0.5,
                 on_error: Callable[[str | None], None] | None = None):
        self.path = path
        self.commit_interval = commit_interval
        self.on_error = on_error
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self.db: sqlite_utils.Database | None = None
        self.rows_written = 0
        self.failing: str | None = None  # text of the current write failure, None when healthy
        self._heartbeat_sessions: set[str] = set()
        self._stopped = False  # after stop(): calls fail at once instead of waiting for ever

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "StoreWriter":
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        self._stopped = True

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- API ---------------------------------------------------------------------------------
    def put(self, session_id: str, sample: Sample) -> None:
        self._queue.put((session_id, sample))

    def listener(self, session_id: str) -> Callable[[Sample], None]:
        """A dispatcher listener that records every sample into ``session_id``."""
        self._heartbeat_sessions.add(session_id)

        def record(sample: Sample) -> None:
            self._queue.put((session_id, sample))

        record.__qualname__ = "StoreWriter.record"
        return record

    def call(self, fn: Callable[[sqlite_utils.Database], T]) -> "Future[T]":
        fut: Future = Future()
        if self._stopped:
            fut.set_exception(StoreError(f"the store writer of {self.path} has stopped"))
            return fut
        self._queue.put((fn, fut))
        return fut

    def run(self, fn: Callable[[sqlite_utils.Database], T], timeout: float = 30.0) -> T:
        return self.call(fn).result(timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Return when everything queued before this call is committed."""
        self.run(lambda db: None, timeout)

    def heartbeat(self, session_id: str) -> None:
        """Keep ``last_seen_utc`` of ``session_id`` current while samples are written."""
        self._heartbeat_sessions.add(session_id)

    def end_heartbeat(self, session_id: str) -> None:
        self._heartbeat_sessions.discard(session_id)

    # -- writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.db = open_db(self.path)
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        conn = self.db.conn
        pending: list[tuple[str, Sample]] = []
        calls: list[tuple[Callable, Future]] = []
        stopping = False
        next_commit = time.monotonic() + self.commit_interval
        while True:
            timeout = max(0.0, next_commit - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout) if not stopping else self._queue.get_nowait()
            except queue.Empty:
                item = None
            if item is _STOP:
                stopping = True
            elif item is not None:
                if isinstance(item[0], str):
                    pending.append(item)
                else:
                    calls.append(item)
                    next_commit = 0  # calls are answered promptly
                if len(pending) < 5000 and time.monotonic() < next_commit:
                    continue
            if pending or calls:
                if self._commit(conn, pending, calls):
                    pending, calls = [], []
                else:
                    # The samples cannot be written (disk full, I/O error): keep them queued, but
                    # answer the calls on their own, so the app is not blocked behind the samples.
                    # A call that had run in the failed transaction already has the error; one
                    # that fails again now gets it too. No call is ever retried: a clinical entry
                    # the user was told had failed must not be committed behind their back later.
                    waiting = [c for c in calls if not c[1].done()]
                    if waiting:
                        self._commit(conn, [], waiting, report=False)
                    calls = []
                    if stopping:
                        break  # asked to stop and cannot write: the error was reported
                    time.sleep(min(1.0, self.commit_interval))  # writer thread: back off, retry
            elif stopping:
                break
            next_commit = time.monotonic() + self.commit_interval
        conn.close()

    def _commit(self, conn, pending, calls, report: bool = True) -> bool:
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._write_samples(conn, pending)
            results = []
            for fn, fut in calls:
                if fut.set_running_or_notify_cancel():
                    try:
                        conn.execute("SAVEPOINT call")
                        results.append((fut, fn(self.db), None))
                        conn.execute("RELEASE call")
                    except Exception as exc:  # noqa: BLE001 - the caller gets it
                        if not conn.in_transaction:
                            raise  # SQLite rolled the whole transaction back (disk full, I/O)
                        conn.execute("ROLLBACK TO call")
                        conn.execute("RELEASE call")
                        results.append((fut, None, exc))
            if self._heartbeat_sessions and pending:
                now = utc_iso(time.time())
                conn.executemany("UPDATE sessions SET last_seen_utc=? WHERE id=? AND ended_utc IS NULL",
                                 [(now, s) for s in self._heartbeat_sessions])
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - disk full, I/O error, locked
            try:
                conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001
                pass
            message = f"cannot write to {self.path}: {exc}"
            for _fn, fut in calls:
                if fut.running():  # it ran in the transaction that failed: its write is gone
                    fut.set_exception(StoreError(message))
            if report and self.failing != message:
                self.failing = message
                log.error(message)
                if self.on_error:
                    self.on_error(message)
            return False
        self.rows_written += len(pending)
        for fut, value, exc in results:
            fut.set_exception(exc) if exc is not None else fut.set_result(value)
        if self.failing is not None and pending:
            self.failing = None
            if self.on_error:
                self.on_error(None)
        return True

    @staticmethod
    def _write_samples(conn, pending) -> None:
        numerics, chunks, statuses, events = [], [], [], []
        for sid, s in pending:
            if isinstance(s, Numeric):
                numerics.append((sid, s.source, s.metric, s.t_mono, s.t_wall, utc_iso(s.t_wall),
                                 s.value, s.unit, flags_text(s.flags), s.device_time, s.detail))
            elif isinstance(s, WaveformChunk):
                blob = pack_samples(s.samples)
                chunks.append((sid, s.source, s.metric, s.rate_hz, s.t_mono, s.t_wall,
                               utc_iso(s.t_wall), len(s.samples), blob,
                               hashlib.sha256(blob).hexdigest(), flags_text(s.flags)))
            elif isinstance(s, DeviceStatus):
                statuses.append((sid, s.source, s.t_mono, s.t_wall, utc_iso(s.t_wall),
                                 int(s.connected), flags_text(s.conditions), s.message))
            elif isinstance(s, SessionEvent):
                events.append((sid, s.kind, s.t_mono, s.t_wall, utc_iso(s.t_wall), s.user_id,
                               json.dumps(s.data, sort_keys=True, default=str)))
        if numerics:
            conn.executemany(
                "INSERT INTO numerics (session_id, source, metric, t_mono, t_wall, t_utc, value, unit,"
                " flags, device_time, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)", numerics)
        if chunks:
            conn.executemany(
                "INSERT INTO waveform_chunks (session_id, source, metric, rate_hz, t_mono, t_wall,"
                " t_utc, n, samples, sha256, flags) VALUES (?,?,?,?,?,?,?,?,?,?,?)", chunks)
        if statuses:
            conn.executemany(
                "INSERT INTO device_status (session_id, source, t_mono, t_wall, t_utc, connected,"
                " conditions, message) VALUES (?,?,?,?,?,?,?,?)", statuses)
        if events:
            conn.executemany(
                "INSERT INTO events (session_id, kind, t_mono, t_wall, t_utc, user_id, data)"
                " VALUES (?,?,?,?,?,?,?)", events)
