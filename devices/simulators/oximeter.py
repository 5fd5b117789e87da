"""A simulated pulse oximeter: SpO2, pulse rate and perfusion index once a second, a 75 Hz pleth.

Samples are stamped on a fixed grid of simulated time (session start + k/3 s), so the same scenario
and seed give the same data at any speed. Scenario events behave like the real thing: probe off sends
missing values with SENSOR_OFF; a disconnect makes the reader fail, which the base class reports as
DISCONNECTED and retries until the device is back.
"""

from __future__ import annotations

import threading

from ketmonitor.errors import SourceError
from ketmonitor.samples import NO_FLAGS, Condition, Numeric, WaveformChunk
from ketmonitor.sources import StopSource, VitalsSource

from .patient import PatientModel

PLETH_HZ = 75.0
CHUNK = 25  # samples per chunk: three chunks a second, as Nonin packets


class SimulatedOximeter(VitalsSource):
    kind = "oximeter"
    expected_interval = 1.0

    def __init__(self, source_id: str = "sim-oximeter", *, scenario: str = "uneventful",
                 seed: int = 0, dose_at: float = 300.0, t0: float | None = None,
                 model: PatientModel | None = None, until: float | None = None, **options):
        super().__init__(source_id, **options)
        self.model = model or PatientModel(scenario, seed, dose_at)
        self.t0 = t0  # monotonic time of the session start; set at first run if None
        self._k = 0  # chunk index on the grid
        self.reconnect_delay = 2.0
        self.until = until  # seconds after t0 at which the simulated device stops (batch runs)

    def _run(self, stop: threading.Event) -> None:
        if self.t0 is None:
            self.t0 = self.clock.monotonic()
        wall0 = self.clock.wall() - (self.clock.monotonic() - self.t0)
        chunk_s = CHUNK / PLETH_HZ
        if self._k:  # back after a disconnect: resume now, the gap stays a gap
            self._k = max(self._k, int((self.clock.monotonic() - self.t0) / chunk_s))
        while not stop.is_set():
            t = self._k * chunk_s  # seconds since session start
            if self.until is not None and t >= self.until:
                raise StopSource
            t_mono = self.t0 + t
            if not self.clock.sleep_until(t_mono + chunk_s, stop):  # a chunk is sent once complete
                return
            v = self.model.vitals(t)
            if v.disconnected:
                raise SourceError("no response on the device link")
            flags = frozenset({Condition.SENSOR_OFF}) if v.probe_off else NO_FLAGS
            if flags != self.conditions:
                self.set_status(True, flags, "probe off the finger" if flags else "")
            t_wall = wall0 + t
            self.emit(WaveformChunk("pleth", PLETH_HZ, t_mono, t_wall,
                                    tuple(self.model.pleth(t, CHUNK, PLETH_HZ)), self.source_id, flags))
            if self._k % 3 == 2:  # numerics once a second, at the end of each second
                for name, value in (("spo2", v.spo2), ("pulse_rate", v.pulse_rate),
                                    ("perfusion_index", v.perfusion_index)):
                    self.emit(Numeric.of(name, value, t_mono=t_mono + chunk_s,
                                         t_wall=t_wall + chunk_s, source=self.source_id, flags=flags))
            self._k += 1
