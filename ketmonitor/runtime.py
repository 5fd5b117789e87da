"""The running monitor: sources -> dispatcher -> (store writer, alarm engine, UI queue, ...).

One reader thread per source, one writer thread for SQLite, one ticker thread for time-driven work
(alarm delays, no-data checks, scheduled tasks). The UI never runs here: it adds a listener that puts
samples on a queue it drains on its own thread.

When a patient's session has ended the monitor goes on monitoring: ``next_session()`` records from
then on into a new session awaiting check-in, so the ended session's rows stay what its signed
record will hold (a sample written into it after sealing would fail ``verify --db``), and with the
clinic's alarm configuration back in force (the previous patient's limits are not the next one's).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .alarms import attach_alarms, load_alarm_config
from .clock import Clock
from .dispatch import Dispatcher, Listener
from .errors import KetmonitorError, NotSupportedError, StoreError
from .samples import Condition, SessionEvent
from .sessions import create_session, end_session
from .sources import VitalsSource
from .store import StoreWriter

log = logging.getLogger(__name__)
RESTORE_REASON = "next patient: the clinic's alarm configuration"


class _Ticker:
    def __init__(self, fn: Callable[[float], None], interval: float):
        self.fn, self.interval, self.next = fn, interval, 0.0


class MonitorRuntime:
    """Owns one monitoring session's threads. ``start()`` opens or resumes the session."""

    def __init__(self, db_path, sources: list[VitalsSource], *, clock: Clock | None = None,
                 session_id: str | None = None, protocol: str | None = None,
                 patient_id: str | None = None, scenario: str | None = None,
                 seed: int | None = None, user_id: str | None = None,
                 commit_interval: float = 0.5, t0: float | None = None):
        self.clock = clock or Clock()
        self.sources = list(sources)
        self.dispatcher = Dispatcher()
        self.writer = StoreWriter(db_path, commit_interval=commit_interval,
                                  on_error=self._storage_error)
        self.session_id = session_id
        self._resume = session_id is not None
        self._meta = dict(protocol=protocol, patient_id=patient_id, scenario=scenario, seed=seed,
                          user_id=user_id)
        self._tickers: list[_Ticker] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.storage_listeners: list[Callable[[str | None], None]] = []
        self.t0 = t0  # monotonic time of the session start (defaults to when start() is called)
        self.dispatcher.on_listener_error = self._listener_failed
        self.alarms = attach_alarms(self, protocol=protocol, db_path=db_path)

    # -- wiring ------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> Listener:
        return self.dispatcher.add_listener(listener)

    def add_ticker(self, fn: Callable[[float], None], interval: float) -> None:
        """Call ``fn(now_mono)`` every ``interval`` seconds of session time, on the ticker thread."""
        self._tickers.append(_Ticker(fn, interval))

    def publish(self, sample) -> None:
        self.dispatcher.publish(sample)

    def event(self, kind: str, data: dict | None = None, user_id: str | None = None) -> SessionEvent:
        ev = SessionEvent(kind, self.clock.monotonic(), self.clock.wall(), data or {}, user_id)
        self.dispatcher.publish(ev)
        return ev

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> str:
        self.writer.start()
        if self._resume and self.t0 is None:
            # keep the session's time base: t0 is where the session started on this process's clock
            anchor = self.writer.run(lambda db: db.conn.execute(
                "SELECT wall_anchor FROM sessions WHERE id=?", (self.session_id,)).fetchone())
            if anchor is None:
                raise StoreError(f"no session {self.session_id} to resume")
            self.t0 = self.clock.monotonic() - (self.clock.wall() - anchor[0])
        if self.t0 is None:
            self.t0 = self.clock.monotonic()
        if self.session_id is None:
            mono = self.t0
            wall = self.clock.wall() - (self.clock.monotonic() - mono)
            self.session_id = self.writer.run(lambda db: create_session(
                db, wall_anchor=wall, mono_anchor=mono, **self._meta))
        self.writer.heartbeat(self.session_id)
        self.dispatcher.add_listener(self._record)
        for source in self.sources:
            source.start(self.dispatcher.publish)
        self._thread = threading.Thread(target=self._tick_loop, name="ticker", daemon=True)
        self._thread.start()
        if self._resume:
            self.event("session.resumed", {})
        return self.session_id

    def _record(self, sample) -> None:
        """Dispatcher listener: every sample into the session being recorded now."""
        self.writer.put(self.session_id, sample)

    def next_session(self, *, user_id: str | None = None) -> str:
        """Record from now on into a new session awaiting check-in (the previous one has ended).
        Monitoring never pauses: samples queued before the switch go to the old session, later
        ones to the new; alarms active now are carried into the new session's alarm log. The alarm
        configuration goes back to the clinic's (defaults and clinic settings): the previous
        patient's protocol limits and bedside changes are not the next patient's. That is recorded
        in the new session like any limit change; the next check-in applies its protocol."""
        if self.session_id is None:
            raise StoreError("the monitor has not started a session")
        old = self.session_id
        mono, wall = self.clock.monotonic(), self.clock.wall()
        meta = {k: self._meta[k] for k in ("scenario", "seed")}

        def create(db):
            sid = create_session(db, wall_anchor=wall, mono_anchor=mono, user_id=user_id, **meta)
            try:  # read now: an administrator may have changed the clinic's settings meanwhile
                clinic = load_alarm_config(db)
            except KetmonitorError as exc:  # the session must still be created
                clinic = exc
            return sid, clinic
        new, clinic = self.writer.run(create)
        self.writer.heartbeat(new)
        self.session_id = new  # one assignment: every later sample goes to the new session
        self.writer.end_heartbeat(old)
        self.event("session.continued", {"previous_session_id": old}, user_id)
        if getattr(self, "alarms", None) is not None:
            self.alarms.replay_active()  # first: a restored limit may end a carried-over alarm
            self._restore_clinic_alarms(clinic, user_id)
        return new

    def _restore_clinic_alarms(self, clinic, user_id: str | None) -> None:
        try:
            if isinstance(clinic, KetmonitorError):
                raise clinic
            self.alarms.restore(clinic, user_id=user_id, reason=RESTORE_REASON)
        except KetmonitorError as exc:
            # monitoring goes on, on the limits in force; the failure is in the new session's record
            log.error("the clinic's alarm configuration could not be restored: %s", exc)
            self.event("alarm.restore_failed", {"error": str(exc)}, user_id)

    def stop(self, *, end: bool = True, status: str = "ended", reason: str | None = None,
             t_wall: float | None = None) -> None:
        """Stop the threads; with ``end`` record the session's end (at ``t_wall``, default now)."""
        self._stop.set()
        for source in self.sources:
            source.stop()
        if self._thread is not None:
            self._thread.join(5)
        if end and self.session_id is not None:
            sid, user = self.session_id, self._meta.get("user_id")
            t_wall = self.clock.wall() if t_wall is None else t_wall
            self.writer.end_heartbeat(sid)
            self.writer.run(lambda db: end_session(db, sid, status=status, user_id=user,
                                                   t_wall=t_wall, reason=reason))
        self.writer.stop()

    def request_nibp(self) -> VitalsSource:
        for source in self.sources:
            if "nibp" in source.capabilities:
                source.request_nibp()
                return source
        raise NotSupportedError("no blood-pressure monitor is connected")

    # -- internals ---------------------------------------------------------------------------
    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            now = self.clock.monotonic()
            for t in self._tickers:
                if now >= t.next:
                    t.next = now + t.interval
                    try:
                        t.fn(now)
                    except Exception:  # noqa: BLE001 - keep ticking
                        log.exception("ticker %r failed", t.fn)
            self._check_silence(now)
            self._stop.wait(0.05)

    def _check_silence(self, now: float) -> None:
        """A connected source with no data for two expected intervals gets NO_DATA.

        Half a second of real time is allowed on top, so an accelerated simulation whose reader
        thread lags a little is not taken for a silent device. After a reconnection silence counts
        from the reconnection, with the source's ``sync_time`` on top until its first data (not
        from the data before the cable was pulled, which would raise NO_DATA at once).
        """
        slack = 0.5 * self.clock.speed
        for s in self.sources:
            last = s.last_data_mono
            if not s.connected or last is None or s.kind == "nibp":
                continue
            allowed = 2 * s.expected_interval + slack
            since = s.connected_mono
            if since is not None and since > last:
                last, allowed = since, allowed + s.sync_time
            if now - last > allowed and Condition.NO_DATA not in s.conditions:
                s.set_status(True, s.conditions | {Condition.NO_DATA},
                             f"{s.source_id}: no data for {now - last:.0f} s")

    def _storage_error(self, message: str | None) -> None:
        for fn in list(self.storage_listeners):
            try:
                fn(message)
            except Exception:  # noqa: BLE001
                log.exception("storage listener failed")

    def _listener_failed(self, listener, exc: BaseException) -> None:
        log.error("listener %r failed: %s", listener, exc)
