"""A patient model of a ketamine / esketamine session, shared by the simulators and the emulators.

Time ``t`` is seconds since the session started; the dose is given at ``dose_at``. Blood pressure and
heart rate rise after the dose, peak near 40 minutes and return slowly (clinical.md); noise is
deterministic for a seed. Scenarios add the events a dosing room sees.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

SCENARIOS = ("uneventful", "hypertensive-surge", "desaturation", "probe-off", "device-disconnect")


@dataclass(frozen=True, slots=True)
class Vitals:
    spo2: float | None
    pulse_rate: float | None
    perfusion_index: float | None
    systolic: float
    diastolic: float
    probe_off: bool = False
    disconnected: bool = False  # the device (or its cable) is gone

    @property
    def mean(self) -> float:
        return self.diastolic + (self.systolic - self.diastolic) / 3.0


@dataclass(frozen=True, slots=True)
class Baseline:
    spo2: float
    pulse_rate: float
    perfusion_index: float
    systolic: float
    diastolic: float


def _surge_shape(minutes_after_dose: float, peak_min: float = 40.0) -> float:
    """0 before the dose, rising to 1 at the peak, decaying slowly (about 4 h to settle)."""
    if minutes_after_dose <= 0:
        return 0.0
    x = minutes_after_dose
    if x <= peak_min:
        return math.sin(0.5 * math.pi * x / peak_min) ** 2
    return math.exp(-(x - peak_min) / 70.0)


class PatientModel:
    def __init__(self, scenario: str = "uneventful", seed: int = 0, dose_at: float = 300.0):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.seed = seed
        self.dose_at = dose_at
        rng = random.Random(seed)
        self.baseline = Baseline(
            spo2=rng.uniform(96.5, 99.0),
            pulse_rate=rng.uniform(62, 82),
            perfusion_index=rng.uniform(2.0, 6.0),
            systolic=rng.uniform(112, 132),
            diastolic=rng.uniform(68, 82),
        )
        # slow noise: a few incommensurate sines with seeded phases, so vitals(t) is a pure function
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in range(8)]
        self._rise_sys = 16.0 if scenario != "hypertensive-surge" else 62.0
        self._rise_dia = 11.0 if scenario != "hypertensive-surge" else 30.0
        self._rise_hr = 8.0 if scenario != "hypertensive-surge" else 28.0

    def _wobble(self, t: float, k: int, period: float) -> float:
        return math.sin(2 * math.pi * t / period + self._phases[k])

    def minutes_after_dose(self, t: float) -> float:
        return (t - self.dose_at) / 60.0

    def vitals(self, t: float) -> Vitals:
        b = self.baseline
        m = self.minutes_after_dose(t)
        surge = _surge_shape(m)
        noise = 0.6 * self._wobble(t, 0, 37.0) + 0.4 * self._wobble(t, 1, 11.3)
        hr = b.pulse_rate + self._rise_hr * surge + 2.0 * noise + 1.2 * self._wobble(t, 2, 4.7)
        spo2 = b.spo2 + 0.5 * self._wobble(t, 3, 23.0) - 0.6 * surge
        pi = max(0.2, b.perfusion_index * (1 - 0.25 * surge) + 0.3 * self._wobble(t, 4, 19.0))
        sys_ = b.systolic + self._rise_sys * surge + 3.0 * self._wobble(t, 5, 300.0)
        dia = b.diastolic + self._rise_dia * surge + 2.0 * self._wobble(t, 6, 270.0)
        probe_off = disconnected = False
        if self.scenario == "desaturation":
            # a respiratory depression episode 15-21 min after the dose: SpO2 falls to ~82 %
            depth = 0.0
            if 15 <= m <= 21:
                depth = math.sin(math.pi * (m - 15) / 6) ** 1.5
            spo2 -= 16.0 * depth
            hr += 6.0 * depth
        elif self.scenario == "probe-off":
            probe_off = 10 <= m <= 11.5 or 30 <= m <= 30.5
        elif self.scenario == "device-disconnect":
            disconnected = 20 <= m <= 22
        spo2 = min(100.0, spo2)
        if probe_off:
            return Vitals(None, None, None, sys_, dia, probe_off=True)
        return Vitals(round(spo2, 1), round(hr, 1), round(pi, 2), round(sys_, 1), round(dia, 1),
                      disconnected=disconnected)

    def pleth(self, t0: float, n: int, rate: float) -> list[int]:
        """``n`` pleth samples from ``t0`` at ``rate`` Hz, 0..255, one beat per pulse."""
        out = []
        v = self.vitals(t0)
        if v.probe_off:
            return [0] * n
        hr = v.pulse_rate or 60.0
        amp = min(1.0, 0.35 + (v.perfusion_index or 1.0) / 8.0)
        for i in range(n):
            t = t0 + i / rate
            phase = (t * hr / 60.0) % 1.0
            # systolic upstroke, dicrotic notch, diastolic run-off
            wave = (math.exp(-((phase - 0.15) / 0.07) ** 2)
                    + 0.35 * math.exp(-((phase - 0.45) / 0.09) ** 2)
                    - 0.08 * math.exp(-((phase - 0.35) / 0.03) ** 2))
            resp = 0.06 * math.sin(2 * math.pi * t / 4.0)  # respiratory modulation
            out.append(int(max(0, min(255, 128 + 110 * amp * (wave - 0.4 + resp)))))
        return out

    def nibp_duration(self, rng: random.Random) -> float:
        """How long one cuff measurement takes (inflation + deflation), 25-45 s."""
        return rng.uniform(25.0, 45.0)
