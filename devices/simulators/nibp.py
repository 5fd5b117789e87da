"""A simulated NIBP monitor: a measurement takes 25-45 s of cuff inflation and deflation, runs on
demand or on an interval, reports cuff pressure while it runs, and now and then fails like a real
cuff (artifact, loose cuff), with the SunTech error codes.
"""

from __future__ import annotations

import random
import threading

from ketmonitor.samples import Condition, Numeric
from ketmonitor.sources import StopSource, VitalsSource

from .patient import PatientModel

FAILURES = ((2, "erratic signal or artifact"), (87, "inflate timeout, leak or loose cuff"),
            (1, "weak or no signal"))


class SimulatedNibp(VitalsSource):
    kind = "nibp"
    capabilities = frozenset({"nibp"})
    expected_interval = 3600.0  # silent between measurements by design

    def __init__(self, source_id: str = "sim-nibp", *, scenario: str = "uneventful", seed: int = 0,
                 dose_at: float = 300.0, t0: float | None = None, interval_s: float | None = None,
                 failure_rate: float = 0.04, model: PatientModel | None = None,
                 until: float | None = None, **options):
        super().__init__(source_id, **options)
        self.model = model or PatientModel(scenario, seed, dose_at)
        self.t0 = t0
        self.interval_s = interval_s
        self.failure_rate = failure_rate
        self._rng = random.Random(seed * 7919 + 1)
        self._requested = threading.Event()
        self._abort = threading.Event()
        self.measuring = False
        self.measurements = 0
        self.until = until  # seconds after t0 at which the simulated device stops (batch runs)

    def request_nibp(self) -> None:
        self._requested.set()

    def abort_nibp(self) -> None:
        self._abort.set()

    def _wake(self) -> None:
        self._requested.set()

    def _run(self, stop: threading.Event) -> None:
        if self.t0 is None:
            self.t0 = self.clock.monotonic()
        self.set_status(True, frozenset())
        # automatic measurements on a fixed grid from the session start, so a seed gives the same data
        next_auto = None
        if self.interval_s:
            k = int((self.clock.monotonic() - self.t0) / self.interval_s) + 1
            next_auto = self.t0 + k * self.interval_s
        poll = 0.25  # simulated seconds between checks of the interval schedule
        while not stop.is_set():
            now = self.clock.monotonic()
            if self.until is not None and now >= self.t0 + self.until:
                raise StopSource
            if next_auto is not None and now >= next_auto:
                start, next_auto = next_auto, next_auto + self.interval_s
                self._measure(stop, start)
                continue
            if self._requested.wait(poll / self.clock.speed):
                self._requested.clear()
                if stop.is_set():
                    return
                self._measure(stop, self.clock.monotonic())

    def _measure(self, stop: threading.Event, start: float) -> None:
        self.measuring = True
        self._abort.clear()
        self.set_status(True, {Condition.NIBP_BUSY}, "measuring")
        duration = self.model.nibp_duration(self._rng)
        v = self.model.vitals(start - self.t0)
        peak = v.systolic + 30
        fail = self._rng.random() < self.failure_rate
        step = 0.5
        t = 0.0
        while t < duration:
            if stop.is_set():
                self.measuring = False
                return
            if self._abort.is_set():
                self._finish_error(86, "stopped by user")
                return
            inflate = 0.25 * duration
            cuff = peak * (t / inflate) if t < inflate else peak * (1 - (t - inflate) / (duration - inflate))
            t_mono = start + t
            self.emit(Numeric.of("cuff_pressure", round(max(cuff, 0.0)), t_mono=t_mono,
                                 t_wall=self._wall(t_mono), source=self.source_id,
                                 flags={Condition.NIBP_BUSY}))
            t += step
            self.clock.sleep_until(start + t, stop)
        self.measurements += 1
        if fail:
            code, meaning = self._rng.choice(FAILURES)
            self._finish_error(code, meaning)
            return
        t_mono = start + duration
        v = self.model.vitals(t_mono - self.t0)
        for name, value in (("nibp_systolic", round(v.systolic)), ("nibp_diastolic", round(v.diastolic)),
                            ("nibp_mean", round(v.mean)),
                            ("nibp_pulse_rate", round(v.pulse_rate) if v.pulse_rate else None)):
            self.emit(Numeric.of(name, value, t_mono=t_mono, t_wall=self._wall(t_mono),
                                 source=self.source_id))
        self.measuring = False
        self.set_status(True, frozenset())

    def _finish_error(self, code: int, meaning: str) -> None:
        t_mono = self.clock.monotonic()
        self.emit(Numeric.of("nibp_error", code, t_mono=t_mono, t_wall=self._wall(t_mono),
                             source=self.source_id, flags={Condition.NIBP_FAILED}, detail=meaning))
        self.measuring = False
        self.set_status(True, {Condition.NIBP_FAILED}, f"NIBP failed: {meaning} (code {code})")

    def _wall(self, t_mono: float) -> float:
        return self.clock.wall() - (self.clock.monotonic() - t_mono)
