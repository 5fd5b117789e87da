"""Soak and fault injection: what cables, line noise, power cuts, full disks and tampering do.

    make soak                                   (= QT_QPA_PLATFORM=offscreen .venv/bin/python -m benchmarks.soak)
    .venv/bin/python -m benchmarks.soak [--short] [--json FILE] [SCENARIO ...]

Scenarios (each raises ``SoakFailure`` naming what went wrong, or returns what it measured):

- ``unplug``: every emulated device (Nonin 2/7/8, Masimo, Contec, Contec legacy, SunTech) on its
  own real pty, all in one MonitorRuntime; each in turn is unplugged mid-session: the alarm engine
  raises "device disconnected" for it while the others keep delivering, it is plugged back, the
  driver reconnects, values arrive again and the alarm ends; no listener ever fails.
- ``corruption``: 1% of the bytes every device sends replaced by random bytes, for ten simulated
  minutes of each protocol (all at once, accelerated): no exception anywhere, every value stored is
  missing or within its metric's physical range, bad frames counted, values keep arriving to the end.
- ``sigkill``: a child process records a session and is killed with SIGKILL at random moments, at
  least 20 times; each restart finds the unfinished session and resumes it. After every kill:
  ``PRAGMA integrity_check`` ok, the audit chain verifies, the newest stored pleth is at most one
  second older than the kill.
- ``disk-full``: the store writer's SQLite file hits its size limit (``PRAGMA max_page_count``) while
  recording: the "storage failing" technical alarm, monitoring goes on, every row stored before is
  still there, and once space is back every sample queued meanwhile is written.
- ``disk-full-fs`` (``make soak`` only, needs root): the same on a real 2 MB tmpfs filling up (ENOSPC).
- ``tamper``: a signed session's database damaged in several ways; ``ketmonitor verify`` (a child
  process) exits 1 and names each damage.

``--short`` runs the versions that ``make test`` runs through tests/soak/ (a minute together).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devices.parsers.base import value_ok  # noqa: E402
from devices.protocols import PROTOCOLS  # noqa: E402
from ketmonitor.audit import verify_chain  # noqa: E402
from ketmonitor.clock import Clock, ScaledClock  # noqa: E402
from ketmonitor.runtime import MonitorRuntime  # noqa: E402
from ketmonitor.samples import DeviceStatus, Numeric, WaveformChunk  # noqa: E402
from ketmonitor.sessions import unfinished_sessions  # noqa: E402
from ketmonitor.simulation import simulated_sources  # noqa: E402
from ketmonitor.sources import create_source  # noqa: E402
from ketmonitor.store import open_db  # noqa: E402

ALL_PROTOCOLS = tuple(PROTOCOLS)  # nonin2, nonin7, nonin8, masimo, contec, contec-legacy, suntech
OXIMETERS = tuple(p for p in ALL_PROTOCOLS if p != "suntech")


class SoakFailure(AssertionError):
    """A soak scenario found a fault; the message names it."""


def check(cond, message: str) -> None:
    if not cond:
        raise SoakFailure(message)


def wait_for(predicate, timeout: float, message: str, interval: float = 0.01):
    """Poll ``predicate`` until truthy (returned); SoakFailure after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SoakFailure(f"{message} (waited {timeout:g} s)")
        threading.Event().wait(interval)


class Collector:
    """Dispatcher listener keeping every sample (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.samples: list = []

    def __call__(self, sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def snapshot(self) -> list:
        with self._lock:
            return list(self.samples)

    def numerics(self, source: str | None = None, metric: str | None = None,
                 after: float | None = None) -> list[Numeric]:
        return [s for s in self.snapshot() if isinstance(s, Numeric)
                and (source is None or s.source == source)
                and (metric is None or s.metric == metric)
                and (after is None or s.t_mono > after)]

    def data(self, source: str, after: float | None = None) -> list:
        """Numerics and waveform chunks from ``source`` (stamped after ``after``)."""
        return [s for s in self.snapshot() if isinstance(s, (Numeric, WaveformChunk))
                and s.source == source and (after is None or s.t_mono > after)]

    def statuses(self, source: str) -> list[DeviceStatus]:
        return [s for s in self.snapshot() if isinstance(s, DeviceStatus) and s.source == source]


class ErrorLog(logging.Handler):
    """Collects log records that carry an exception (a swallowed crash is still a crash)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def __enter__(self):
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)

    def describe(self) -> str:
        return "; ".join(f"{r.name}: {r.getMessage()} ({r.exc_info[1]!r})" for r in self.records[:5])


def active_alarms(rt: MonitorRuntime, condition: str, source: str | None = None) -> list:
    return [a for a in rt.alarms.snapshot().alarms
            if a.condition == condition and a.active and (source is None or a.source == source)]


def _integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def _verify_chain(path: Path) -> int:
    db = open_db(path)
    try:
        return verify_chain(db).rows
    finally:
        db.conn.close()


def _source_options(name: str) -> dict:
    opts = dict(PROTOCOLS[name].options)
    if name == "suntech":
        opts["interval_s"] = 45.0
    return opts


# -- unplug and replug ---------------------------------------------------------------------------
EMULATOR_SPEED = {"nonin2": 1.0, "nonin7": 1.0, "nonin8": 4.0, "masimo": 4.0, "contec": 1.0,
                  "contec-legacy": 1.0, "suntech": 20.0}  # SunTech: a measurement in ~2 s


def _fresh_data(col: Collector, rt, name: str, after: float, timeout: float) -> None:
    """Values from ``name`` stamped after ``after``; a blood-pressure module is asked to measure."""
    if name == "suntech":
        src = next(s for s in rt.sources if s.source_id == name)
        wait_for(lambda: src.connected and not src.measuring, timeout, "the NIBP module is not idle")
        src.request_nibp()
        wait_for(lambda: col.numerics(name, "nibp_systolic", after), timeout,
                 "no NIBP reading after the request")
    else:
        wait_for(lambda: col.data(name, after), timeout, f"no values from {name}")


def unplug_replug(tmp: Path, protocols=ALL_PROTOCOLS, cycles: int = 1, timeout: float = 15.0) -> dict:
    tmp = Path(tmp)
    clock = Clock()
    emus, sources = {}, []
    col = Collector()
    out: dict = {}
    with ErrorLog() as errors:
        try:
            for i, name in enumerate(protocols):
                emu = PROTOCOLS[name].make_emulator(seed=10 + i, speed=EMULATOR_SPEED[name],
                                                    link=tmp / f"tty-{name}")
                emus[name] = emu.start()
                src = create_source(PROTOCOLS[name].source, name, port=emu.path, clock=clock,
                                    **_source_options(name))
                sources.append(src)  # (the drivers' own reconnection delay, 1 s)
            rt = MonitorRuntime(tmp / "unplug.db", sources, clock=clock, scenario="soak-unplug")
            rt.add_listener(col)
            rt.start()
            try:
                for name in protocols:
                    _fresh_data(col, rt, name, 0.0, timeout)
                for cycle in range(cycles):
                    for name in protocols:
                        src = next(s for s in sources if s.source_id == name)
                        emu = emus[name]
                        conns = src.connections
                        t_pull = clock.monotonic()
                        emu.unplug()
                        alarm = wait_for(lambda: active_alarms(rt, "device_disconnected", name),
                                         timeout, f"no 'device disconnected' alarm for {name}")[0]
                        t_alarm = clock.monotonic()
                        others = [p for p in protocols if p != name and p != "suntech"]
                        for other in others[:2]:
                            wait_for(lambda o=other: col.data(o, t_alarm), timeout,
                                     f"{other} stopped while {name} was unplugged")
                        t_plug = clock.monotonic()
                        emu.plug()
                        wait_for(lambda: src.connected and src.connections > conns, timeout,
                                 f"{name} did not reconnect after the cable came back")
                        t_up = clock.monotonic()
                        _fresh_data(col, rt, name, t_up, timeout)
                        wait_for(lambda: not active_alarms(rt, "device_disconnected", name),
                                 timeout, f"the 'device disconnected' alarm of {name} did not end")
                        r = out.setdefault(name, {"cycles": 0, "max_alarm_s": 0.0,
                                                  "max_reconnect_s": 0.0,
                                                  "alarm_text": alarm.text})
                        r["cycles"] += 1
                        r.setdefault("alarm_s_all", []).append(t_alarm - t_pull)
                        r.setdefault("reconnect_s_all", []).append(t_up - t_plug)
                        r["max_alarm_s"] = round(max(r["max_alarm_s"], t_alarm - t_pull), 3)
                        r["max_reconnect_s"] = round(max(r["max_reconnect_s"], t_up - t_plug), 3)
                check(all(s.running for s in sources), "a driver thread ended")
                check(rt.dispatcher.errors == {}, f"listeners failed: {rt.dispatcher.errors}")
            finally:
                rt.stop()
        finally:
            for emu in emus.values():
                emu.stop()
        check(not errors.records, f"exceptions logged: {errors.describe()}")
    check(_integrity(tmp / "unplug.db") == "ok", "integrity_check failed after the unplug soak")
    return out


# -- line noise -----------------------------------------------------------------------------------
def corruption(tmp: Path, protocols=ALL_PROTOCOLS, sim_seconds: float = 600.0, rate: float = 0.01,
               speed: float = 20.0) -> dict:
    tmp = Path(tmp)
    clock = ScaledClock(speed)
    emus, sources = {}, []
    col = Collector()
    with ErrorLog() as errors:
        try:
            for i, name in enumerate(protocols):
                emu = PROTOCOLS[name].make_emulator(seed=20 + i, speed=speed, noise_rate=rate,
                                                    link=tmp / f"tty-{name}")
                emus[name] = emu.start()
                src = create_source(PROTOCOLS[name].source, name, port=emu.path, clock=clock,
                                    **_source_options(name))
                sources.append(src)
            db_path = tmp / "noise.db"
            rt = MonitorRuntime(db_path, sources, clock=clock, scenario="soak-noise")
            rt.add_listener(col)
            rt.start()
            try:
                if "suntech" in protocols:
                    nibp = next(s for s in sources if s.source_id == "suntech")
                    wait_for(lambda: nibp.connected, 10, "the NIBP module never connected")
                    nibp.request_nibp()
                last_quarter = 0.75 * sim_seconds
                wait_for(lambda: clock.monotonic() >= last_quarter, sim_seconds / speed + 60,
                         "the simulated run did not reach its last quarter", interval=0.05)
                frames_then = {s.source_id: s.parser.frames for s in sources}
                wait_for(lambda: clock.monotonic() >= sim_seconds, sim_seconds / speed + 60,
                         "the simulated run did not finish", interval=0.05)
                check(all(s.running for s in sources), "a driver thread ended under line noise")
                check(rt.dispatcher.errors == {}, f"listeners failed: {rt.dispatcher.errors}")
            finally:
                rt.stop()
        finally:
            for emu in emus.values():
                emu.stop()
        check(not errors.records, f"exceptions logged under line noise: {errors.describe()}")
    out = {}
    con = sqlite3.connect(db_path)
    try:
        stored = con.execute("SELECT source, metric, value FROM numerics").fetchall()
    finally:
        con.close()
    for source, metric, value in stored:
        check(value_ok(metric, value), f"{source}: stored {metric}={value}, outside its range")
    for src in sources:
        name = src.source_id
        nums = col.numerics(name)
        bad = [n for n in nums if not value_ok(n.metric, n.value)]
        check(not bad, f"{name}: out-of-range values accepted: {bad[:3]}")
        p = src.parser
        check(p.bad_frames + p.skipped_bytes > 0, f"{name}: 1% noise yet no bad frame was counted")
        # resynchronised: frames still decode at the end (at heavy noise few Nonin #2/#7 packets
        # arrive whole or with frames 1-3 intact, so values alone would not show it)
        check(p.frames > frames_then[name],
              f"{name}: no frame decoded in the last quarter of the run: no resynchronisation")
        if name == "suntech":
            readings = col.numerics(name, "nibp_systolic") + col.numerics(name, "nibp_error")
            check(readings, "suntech: no measurement ended under line noise")
            check(col.numerics(name, "cuff_pressure", last_quarter - 60),
                  "suntech: cuff pressures stopped arriving")
        elif rate <= 0.01:  # at ordinary noise values keep coming too
            check(col.data(name, last_quarter),
                  f"{name}: no values in the last quarter of the run")
        else:
            check(col.data(name), f"{name}: no values under {rate:.0%} noise")
        out[name] = {"frames": p.frames, "bad_frames": p.bad_frames,
                     "skipped_bytes": p.skipped_bytes, "numerics": len(nums),
                     "chunks": len([s for s in col.data(name) if isinstance(s, WaveformChunk)]),
                     "bytes_read": src.bytes_read}
    return out


# -- SIGKILL --------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import os, sys, threading
    from ketmonitor.clock import Clock
    from ketmonitor.runtime import MonitorRuntime
    from ketmonitor.sessions import unfinished_sessions
    from ketmonitor.simulation import simulated_sources
    from ketmonitor.store import open_db
    path, seed = sys.argv[1], int(sys.argv[2])
    resume = None
    if os.path.exists(path):  # what the app does at start: find the session a crash left open
        db = open_db(path)
        left = unfinished_sessions(db)
        db.conn.close()
        resume = left[0]["id"] if left else None
    print("resume", resume, flush=True)
    clock = Clock()
    rt = MonitorRuntime(path, simulated_sources(clock=clock, scenario="uneventful", seed=seed),
                        clock=clock, session_id=resume, scenario=None if resume else "soak-kill")
    rt.start()
    print("started", rt.session_id, flush=True)
    threading.Event().wait()
""")


def _newest_chunk_end(path: Path) -> float | None:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT max(t_wall + n / rate_hz) FROM waveform_chunks").fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()


def _chunks(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM waveform_chunks").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def sigkill(tmp: Path, kills: int = 20, seed: int = 7) -> dict:
    """Kill a recording child ``kills`` times; each child resumes the session the last one left."""
    tmp = Path(tmp)
    db_path = tmp / "kill.db"
    rng = random.Random(seed)
    losses, moments, sessions = [], [], set()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k in range(kills):
        err_path = tmp / f"child-{k}.err"
        with open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db_path), str(k)], cwd=ROOT,
                                    env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        lines: list[str] = []

        def read(out=proc.stdout, lines=lines):
            for line in out:
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            started_sid = None
            if k % 5 == 2:
                # a kill while the process starts: migrations, finding and resuming the session
                moment = "start-up"
                threading.Event().wait(rng.uniform(0.05, 1.5))
            else:
                started = wait_for(lambda: [x for x in list(lines) if x.startswith("started")]
                                   or proc.poll() is not None, 60, "the child never started")
                if proc.poll() is not None:
                    raise SoakFailure(f"the child died by itself: {err_path.read_text()[-800:]}")
                started_sid = started[0].split()[1]
                base = _chunks(db_path)
                target = base + rng.randint(1, 12)  # kill after a random number of commits...
                wait_for(lambda: _chunks(db_path) >= target, 30, "the child stopped recording")
                threading.Event().wait(rng.uniform(0.0, 0.5))  # ...at a random point between them
                moment = f"recording ({_chunks(db_path) - base} chunks in)"
            killed_at = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(5)
            proc.stdout.close()
        check(proc.returncode == -signal.SIGKILL, f"kill {k + 1}: child ended with {proc.returncode}")
        moments.append(moment)
        if not db_path.exists():
            continue  # killed before the database was created
        check(_integrity(db_path) == "ok", f"kill {k + 1} ({moment}): integrity_check failed")
        check(_verify_chain(db_path) >= 0, "audit chain")  # raises AuditChainError naming the row
        db = open_db(db_path)
        try:
            left = unfinished_sessions(db)
        finally:
            db.conn.close()
        if started_sid is not None:
            check([s["id"] for s in left] == [started_sid],
                  f"kill {k + 1}: the unfinished session is not found ({left})")
            sessions.add(started_sid)
            newest = _newest_chunk_end(db_path)
            lost = killed_at - newest
            losses.append(lost)
            check(lost <= 1.0, f"kill {k + 1}: {lost:.2f} s of data lost (at most 1 s allowed)")
    # the last restart: resume, record a little, end the session properly
    db = open_db(db_path)
    left = unfinished_sessions(db)
    db.conn.close()
    check(len(left) == 1, f"after {kills} kills, {len(left)} unfinished sessions instead of 1")
    clock = Clock()
    rt = MonitorRuntime(db_path, simulated_sources(clock=clock, seed=99), clock=clock,
                        session_id=left[0]["id"])
    rt.start()
    before = _chunks(db_path)
    wait_for(lambda: _chunks(db_path) > before, 10, "the resumed session does not record")
    rt.stop()
    check(_integrity(db_path) == "ok", "integrity_check failed after the final resume")
    audit_rows = _verify_chain(db_path)
    con = sqlite3.connect(db_path)
    try:
        n_sessions, = con.execute("SELECT count(*) FROM sessions").fetchone()
        status, = con.execute("SELECT status FROM sessions").fetchone()
        resumed, = con.execute("SELECT count(*) FROM events WHERE kind='session.resumed'").fetchone()
    finally:
        con.close()
    check(n_sessions == 1 and status == "ended",
          f"expected one ended session, found {n_sessions} ({status})")
    return {"kills": kills, "during_start_up": moments.count("start-up"), "lost_s": losses,
            "max_lost_s": round(max(losses), 3) if losses else None,
            "median_lost_s": round(sorted(losses)[len(losses) // 2], 3) if losses else None,
            "resumed_events": resumed, "audit_rows": audit_rows}


# -- disk full ------------------------------------------------------------------------------------
def _rows(path: Path) -> dict[str, set]:
    con = sqlite3.connect(path)
    try:
        return {"numerics": set(con.execute("SELECT rowid, metric, t_mono, value FROM numerics")),
                "chunks": set(con.execute("SELECT id, t_mono, sha256 FROM waveform_chunks"))}
    finally:
        con.close()


def _disk_full_run(db_path: Path, make_full, make_room, speed: float, timeout: float) -> dict:
    clock = ScaledClock(speed)
    col = Collector()
    with ErrorLog() as errors:
        rt = MonitorRuntime(db_path, simulated_sources(clock=clock, seed=4), clock=clock,
                            scenario="soak-disk-full")
        rt.add_listener(col)
        rt.start()
        try:
            wait_for(lambda: _chunks(db_path) >= 20, timeout, "nothing was recorded")
            make_full(rt)
            wait_for(lambda: active_alarms(rt, "storage_failing"), timeout,
                     "no 'storage failing' alarm when the disk filled")
            t_fail = clock.monotonic()
            kept = _rows(db_path)  # what is stored once writing fails
            # monitoring goes on: values keep reaching the listeners (screen, alarms)
            n_fail = len(col.numerics(after=t_fail))
            wait_for(lambda: len(col.numerics(after=t_fail)) >= n_fail + 10, timeout,
                     "monitoring stopped when the disk filled")
            still = _rows(db_path)
            check(all(kept[t] <= still[t] for t in kept), "rows stored before the failure vanished")
            failure = rt.writer.failing
            check(failure, "the writer does not say it is failing")
            alarm_text = active_alarms(rt, "storage_failing")[0].text
            make_room(rt)
            wait_for(lambda: not active_alarms(rt, "storage_failing"), timeout,
                     "the 'storage failing' alarm did not end when space came back")
            rt.writer.flush()
            published = len(col.numerics())
        finally:
            rt.stop()
        check(not errors.records, f"exceptions logged: {errors.describe()}")
    final = _rows(db_path)
    check(all(kept[t] <= final[t] for t in kept), "rows stored before the failure were lost")
    check(len(final["numerics"]) >= published,
          f"{published} numerics published but {len(final['numerics'])} stored: samples queued "
          "during the outage were dropped")
    check(_integrity(db_path) == "ok", "integrity_check failed after the disk-full episode")
    _verify_chain(db_path)
    return {"alarm": alarm_text[:120], "rows_before_failure": sum(len(v) for v in kept.values()),
            "numerics_published": published, "numerics_stored": len(final["numerics"]),
            "chunks_stored": len(final["chunks"])}


def disk_full(tmp: Path, speed: float = 10.0, timeout: float = 20.0) -> dict:
    """SQLITE_FULL through ``PRAGMA max_page_count`` on the store writer's own connection."""

    def full(rt):
        rt.writer.run(lambda db: db.conn.execute(
            f"PRAGMA max_page_count={db.conn.execute('PRAGMA page_count').fetchone()[0]}"))

    def room(rt):
        rt.writer.run(lambda db: db.conn.execute("PRAGMA max_page_count=1073741823"))

    return _disk_full_run(Path(tmp) / "full.db", full, room, speed, timeout)


def disk_full_fs(tmp: Path, size: str = "2m", speed: float = 30.0, timeout: float = 60.0) -> dict:
    """A real filesystem filling up: a tmpfs of ``size`` (needs root), filled but for ~200 kB."""
    mnt = Path(tmp) / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SoakFailure(f"cannot mount a tmpfs here ({r.stderr.strip()}); skipped")
    filler = mnt / "filler"
    try:
        def full(rt):  # fill the disk but for a few pages; the session fills the rest itself
            st = os.statvfs(mnt)
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 48_000))

        def room(rt):
            filler.unlink()

        out = _disk_full_run(mnt / "full.db", full, room, speed, timeout)
        out["filesystem"] = f"tmpfs size={size}"
        return out
    finally:
        import gc

        gc.collect()  # a connection left by a failed open would keep the mount busy
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# -- tampering ------------------------------------------------------------------------------------
def _sealed_db(path: Path) -> str:
    from ketmonitor.signing import enrol_key, seal_session

    clock = ScaledClock(30.0)
    rt = MonitorRuntime(path, simulated_sources(clock=clock, seed=5), clock=clock,
                        scenario="soak-tamper")
    sid = rt.start()
    wait_for(lambda: _chunks(path) >= 30, 20, "nothing recorded for the tamper test")
    rt.stop()
    db = open_db(path)
    try:
        enrol_key(db, "nurse1", "Soak Nurse", "nurse", "soak-password")
        seal_session(db, sid, "nurse1", "soak-password")
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.conn.close()
    return sid


def _drop_triggers(con, table: str) -> None:
    """What someone editing the file does first: remove the append-only triggers."""
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name=?",
                               (table,)).fetchall():
        con.execute(f'DROP TRIGGER "{name}"')


def _flip_blob(blob: bytes, at: int | None = None) -> bytes:
    b = bytearray(blob)
    i = len(b) // 2 if at is None else at
    b[i] ^= 0x01
    return bytes(b)


# name -> (table whose triggers go, SQL or function(con), words the verdict must contain)
DAMAGES = {
    "numeric value changed": (
        "numerics", "UPDATE numerics SET value = value + 1 WHERE rowid = (SELECT min(rowid) FROM"
        " numerics WHERE value IS NOT NULL)", ["numerics"]),
    "numeric row deleted": (
        "numerics", "DELETE FROM numerics WHERE rowid = (SELECT max(rowid) FROM numerics)", ["numerics"]),
    "row added after sealing": (
        "events", "INSERT INTO events (session_id, kind, t_mono, t_wall, t_utc, data) SELECT"
        " id, 'note', 1.0, wall_anchor + 1, started_utc, '{}' FROM sessions", ["events"]),
    "waveform samples altered": (
        "waveform_chunks", lambda con: con.execute(
            "UPDATE waveform_chunks SET samples = ? WHERE id = (SELECT min(id) FROM waveform_chunks)",
            (_flip_blob(con.execute("SELECT samples FROM waveform_chunks ORDER BY id LIMIT 1")
                        .fetchone()[0]),)), ["chunk"]),
    "session row altered": (
        "sessions", "UPDATE sessions SET started_utc = '2020-01-01T00:00:00Z'", ["session"]),
    "audit row altered": (
        "audit_log", "UPDATE audit_log SET user_id = 'mallory' WHERE seq = 2", ["audit row 2"]),
    "audit row deleted": (
        "audit_log", "DELETE FROM audit_log WHERE seq = 2", ["audit row 2"]),
    "signed record altered": (
        "session_records", lambda con: con.execute(
            "UPDATE session_records SET payload = ?",
            (_flip_blob(con.execute("SELECT payload FROM session_records").fetchone()[0]),)),
        ["record", "sha-256"]),
    "signature altered": (
        "record_signatures", lambda con: con.execute(
            "UPDATE record_signatures SET signature = ?",
            ((lambda s: s[:10] + ("A" if s[10] != "A" else "B") + s[11:])(
                con.execute("SELECT signature FROM record_signatures").fetchone()[0]),)),
        ["signature"]),
}


def _verify_cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ketmonitor", "verify", "--db", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def tamper(tmp: Path, damages=None) -> dict:
    tmp = Path(tmp)
    pristine = tmp / "sealed.db"
    _sealed_db(pristine)
    ok = _verify_cli(pristine)
    check(ok.returncode == 0, f"the undamaged database does not verify: {ok.stderr.strip()}")
    out = {}
    for name in damages or DAMAGES:
        table, change, words = DAMAGES[name]
        copy = tmp / f"damaged-{name.replace(' ', '-')}.db"
        shutil.copyfile(pristine, copy)
        con = sqlite3.connect(copy)
        try:
            _drop_triggers(con, table)
            cur = con.execute(change) if isinstance(change, str) else change(con)
            check(cur.rowcount == 1, f"{name}: the damage touched {cur.rowcount} rows")
            con.commit()
        finally:
            con.close()
        r = _verify_cli(copy)
        failed = [line for line in r.stderr.splitlines() if "FAILED" in line]
        check(r.returncode == 1, f"{name}: verify exited {r.returncode}: {r.stderr.strip()[:300]}")
        check("Traceback" not in r.stderr, f"{name}: verify crashed: {r.stderr[-500:]}")
        check(failed and all(any(w in line.lower() for line in failed) for w in words),
              f"{name}: verify does not name the damage ({words}): {r.stderr.strip()[:500]}")
        out[name] = failed[0].split("FAILED: ", 1)[-1][:160]
    return out


# -- figures for make bench --------------------------------------------------------------------------
def figures(quick: bool = False) -> list:
    """For ``python -m benchmarks soak``: what the fault scenarios measure, with their goals."""
    from benchmarks.harness import Figure

    with tempfile.TemporaryDirectory(prefix="ketmonitor-soak-") as tmp:
        k = sigkill(Path(tmp), kills=4 if quick else 12, seed=11)
    with tempfile.TemporaryDirectory(prefix="ketmonitor-soak-") as tmp:
        u = unplug_replug(Path(tmp), cycles=1 if quick else 2)
    alarm = [x for r in u.values() for x in r["alarm_s_all"]]
    reconnect = [x for r in u.values() for x in r["reconnect_s_all"]]
    slowest = max(u, key=lambda n: u[n]["max_reconnect_s"])
    return [
        Figure("soak.kill_loss", "SIGKILL mid-session: recording lost", "s", k["lost_s"], "<= 1",
               f"{k['kills']} kills of a recording child process at random moments "
               f"({k['during_start_up']} during start-up); after each: integrity_check ok, audit "
               "chain verified, the unfinished session found and resumed by the next start; lost "
               "= kill time minus the end of the newest stored pleth chunk (commits every 0.5 s)"),
        Figure("soak.unplug_alarm", "Cable pulled to 'device disconnected' alarm", "s", alarm,
               "< 2", f"each of the {len(u)} emulated devices unplugged "
               f"{u[next(iter(u))]['cycles']}x mid-session on its real pty, the others running"),
        Figure("soak.replug_reconnect", "Cable back to reconnected", "s", reconnect, "",
               f"the drivers retry every second (slowest: {slowest}, "
               f"{u[slowest]['max_reconnect_s']:.2f} s); values then arrive and the alarm ends"),
    ]


# -- runner ---------------------------------------------------------------------------------------
SCENARIOS = ("unplug", "corruption", "sigkill", "disk-full", "disk-full-fs", "tamper")


def run(name: str, tmp: Path, short: bool):
    if name == "unplug":
        return unplug_replug(tmp, cycles=1 if short else 3)
    if name == "corruption":
        return corruption(tmp, sim_seconds=60.0 if short else 600.0, speed=15.0 if short else 20.0)
    if name == "sigkill":
        return sigkill(tmp, kills=3 if short else 25)
    if name == "disk-full":
        return disk_full(tmp)
    if name == "disk-full-fs":
        return disk_full_fs(tmp)
    if name == "tamper":
        return tamper(tmp)
    raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--short", action="store_true", help="the versions make test runs")
    ap.add_argument("--json", default=str(ROOT / "bench-results" / "soak.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # failures are collected, not printed
    results, failed = {}, []
    for name in args.scenarios:
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"ketmonitor-soak-{name}-") as tmp:
            try:
                got = run(name, Path(tmp), args.short)
                status = "ok"
            except SoakFailure as exc:
                got, status = {"failure": str(exc)}, "FAILED"
                if not str(exc).endswith("skipped"):
                    failed.append(name)
                else:
                    status = "skipped"
        dt = time.perf_counter() - t
        results[name] = {"status": status, "seconds": round(dt, 1), "result": got}
        print(f"{name}: {status} in {dt:.0f} s")
        for k, v in (got.items() if isinstance(got, dict) else []):
            print(f"  {k}: {v}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
