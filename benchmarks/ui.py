"""Live-screen figures, offscreen: frame time and CPU, bytes-on-the-pty to tile latency, memory over
an accelerated 12-hour session, and cold start to the first frame."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from .harness import Figure

ROOT = Path(__file__).resolve().parents[1]


def _app():
    """The application, for suites that run one after another in one process: closing a suite's
    last window must not quit it (Qt would post a quit that ends the next suite's event loops,
    and after which every ``exec()`` returns at once)."""
    from ui.app import make_app

    app = make_app()
    app.setQuitOnLastWindowClosed(False)
    return app


def _pump(app, seconds: float, until=None) -> bool:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        if until is not None and until():
            return True
        time.sleep(0.001)
    return until is None


def frame_time(seconds: float = 10.0) -> list[Figure]:
    """Real-time demo (speed 1) whose trends already hold two hours of data; the 30 Hz timer redraws
    the pleth every frame and the trends every second."""
    import numpy as np

    from devices.simulators.patient import PatientModel
    from ui.app import build_demo

    app = _app()
    with tempfile.TemporaryDirectory() as tmp:
        rt, w = build_demo(Path(tmp) / "b.db", speed=1.0, seed=3)
        model = PatientModel("uneventful", 3)
        for t in np.arange(-7200.0, 0.0, 1.0):
            v = model.vitals(t + 7200)
            w.trends.add("spo2", t / 60, v.spo2)
            w.trends.add("pulse_rate", t / 60, v.pulse_rate)
            if int(t) % 300 == 0:
                for m, val in (("nibp_systolic", v.systolic), ("nibp_diastolic", v.diastolic),
                               ("nibp_mean", v.mean)):
                    w.trends.add(m, t / 60, val)
        w.trends.span_minutes = 130
        rt.start()
        w.resize(1600, 900)
        w.show()
        w.start()
        _pump(app, 2.0)  # warm up
        w.frames.frame_times.clear()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        _pump(app, seconds)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
        times = sorted(w.frames.frame_times)
        w.close()
        rt.stop()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000  # noqa: E731
    note = (f"{len(times)} frames at 30 Hz over {seconds:g} s, 1600x900 offscreen, 2-hour trends "
            "(7,200 points a series) and a 75 Hz pleth; CPU is the whole process (simulators, "
            "writer and alarms included) as a share of one core. The frame time is the 30 Hz "
            "callback (samples drained, curves and tiles updated); Qt's painting runs afterwards "
            "in the event loop and is not in it (it is in the CPU figure)")
    return [Figure("ui.frame_p50", "Live screen frame time p50", "ms", [p(0.5)], "< 10", note),
            Figure("ui.frame_p99", "Live screen frame time p99", "ms", [p(0.99)], "< 10"),
            Figure("ui.cpu", "Live screen process CPU", "% of a core", [cpu], "< 15")]


def pty_to_tile_latency(n: int = 60) -> list[Figure]:
    """Write a Masimo ASCII 1 line on a real pseudo-terminal; time until the SpO2 tile shows it."""
    import tty

    from ketmonitor.clock import Clock
    from ketmonitor.runtime import MonitorRuntime
    from ketmonitor.workstation import DeviceChoice, build_sources
    from ui.monitor_window import MonitorWindow

    app = _app()
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    lat = []
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        rt = MonitorRuntime(Path(tmp) / "l.db", build_sources([DeviceChoice("oximeter", "masimo", path)],
                                                              clock=clock), clock=clock)
        rt.start()
        w = MonitorWindow(rt)
        w.show()
        w.start()
        try:
            for i in range(n + 5):
                spo2 = 90 + i % 10
                line = (f"01/01/26 00:00:{i % 60:02d} SN=0000001 SPO2={spo2:03d}% BPM=072 "
                        f"PI=03.60% ALARM=0000 EXC=000800\r\n").encode()
                _pump(app, 0.05)
                t = time.perf_counter()
                os.write(master, line)
                if not _pump(app, 2.0, lambda s=str(spo2): w.tiles["spo2"].text() == s):
                    raise RuntimeError("the tile never showed the value")
                if i >= 5:  # the first lines open the port and sync the parser
                    lat.append((time.perf_counter() - t) * 1000)
        finally:
            w.close()
            rt.stop()
            os.close(master)
            os.close(slave)
    lat.sort()
    note = (f"{n} lines; Masimo ASCII 1 on a real pty -> driver thread -> dispatcher -> UI queue -> "
            "30 Hz frame timer -> tile text")
    return [Figure("latency.tile_p50", "Bytes on the pty to tile, p50", "ms",
                   [lat[len(lat) // 2]], "< 100", note),
            Figure("latency.tile_p99", "Bytes on the pty to tile, p99", "ms",
                   [lat[min(len(lat) - 1, int(0.99 * len(lat)))]], "< 100")]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_12h(speed: float = 1200.0) -> list[Figure]:
    """The GUI demo at high speed for 12 simulated hours; resident size sampled once a second."""
    from ui.app import build_demo

    app = _app()
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        rt, w = build_demo(Path(tmp) / "m.db", speed=speed, seed=5)
        rt.start()
        w.show()
        w.start()
        end_sim = 12 * 3600
        while rt.clock.monotonic() < end_sim:
            _pump(app, 1.0)
            samples.append((rt.clock.monotonic(), _rss_mb()))
        w.close()
        rt.stop()
    base = next(r for t, r in samples if t >= 1800)  # after warm-up (half an hour simulated)
    growth = samples[-1][1] - base
    note = (f"GUI demo at speed {speed:g} for 12 simulated hours ({len(samples)} s real); growth "
            f"from 30 simulated minutes ({base:.0f} MB) to the end ({samples[-1][1]:.0f} MB)")
    return [Figure("memory.growth_12h", "Resident memory growth over 12 h", "MB", [growth], "< 20",
                   note)]


COLD_START = """
import sys
from ui.app import make_app, build_demo
from pathlib import Path
app = make_app()
rt, w = build_demo(Path(sys.argv[1]), speed=1.0, seed=1)
rt.start(); w.show(); w.start()
orig = w.frame
state = {"frames": 0}
def frame(samples):
    orig(samples)
    state["frames"] += 1
    if state["frames"] == 1:
        print("first-frame", flush=True)
    if w.tiles["spo2"].text() != "---":
        print("first-data", flush=True)
        w.close(); rt.stop(); app.quit()
w.frames.frame = frame
app.exec()
"""


def cold_start(runs: int = 5) -> list[Figure]:
    """Process start to the first drawn frame, and to the first live SpO2 on its tile."""
    first_frame, first_data = [], []
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", COLD_START, str(Path(tmp) / "c.db")],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            marks = {}
            for line in proc.stdout:
                marks[line.strip()] = time.perf_counter() - t
            proc.wait(60)
            if "first-data" not in marks:
                raise RuntimeError("the cold-start child never showed data")
            first_frame.append(marks["first-frame"])
            first_data.append(marks["first-data"])
    note = ("a new Python process (fresh database: migrations included) to the first frame drawn "
            "by the 30 Hz timer")
    note_data = ("the same to the first live SpO2 on its tile: the simulated oximeter sends numerics "
                 "once a second, like a real one, so this includes up to a second of waiting for data")
    return [Figure("startup.first_frame", "Cold start to first frame", "s", first_frame, "< 2", note),
            Figure("startup.first_data", "Cold start to first SpO2 shown", "s", first_data, "",
                   note_data)]


_KEPT: list = []  # windows of finished measurements, kept (hidden, timers stopped) until exit


def settle_qt() -> None:
    """Park the last measurement's windows: hidden, their timers stopped, and referenced until the
    process ends. Left to the cyclic garbage collector, a window may be finalised on a worker
    thread (Qt then stops its timers from the wrong thread, and the process can crash); deleting
    it explicitly crashes PySide here too. Then collect the rest of the garbage on this thread."""
    import gc

    from PySide6.QtCore import QTimer

    app = _app()
    for w in app.topLevelWidgets():
        w.hide()
        for t in w.findChildren(QTimer):
            t.stop()
        _KEPT.append(w)
    app.processEvents()
    gc.collect()


def _runs(n: int, fn, *args) -> list[Figure]:
    """Measure ``n`` times; each figure keeps every run (median and spread over them)."""
    merged = fn(*args)
    settle_qt()
    for _ in range(n - 1):
        for into, again in zip(merged, fn(*args)):
            into.runs += again.runs
        settle_qt()
    return merged


def figures(quick: bool = False) -> list[Figure]:
    runs = 2 if quick else 3
    out = []
    out += _runs(runs, frame_time, 4.0 if quick else 10.0)
    out += _runs(runs, pty_to_tile_latency, 20 if quick else 60)
    out += cold_start(2 if quick else 5)
    out += _runs(runs, memory_12h, 4000.0 if quick else 1200.0)
    return out
