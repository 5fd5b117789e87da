"""IEC 60601-1-8 auditory alarm signals generated in code: burst patterns rendered as 16-bit PCM.

Timing (every figure within the standard's range, shown in brackets; gaps are silence between the end
of one pulse and the start of the next, the inter-burst interval runs from the end of a burst's last
pulse to the start of the next burst):

=========  ========  ==========  ==========================================  ============  =====
priority   pulses    pulse       gaps between pulses                          inter-burst   f0
=========  ========  ==========  ==========================================  ============  =====
high       10        150 ms      x=100 ms [50-125]; 3-4 and 8-9: 2x+td =      4.0 s         660 Hz
           (3+2,                 350 ms; 5-6: 1.0 s [0.35-1.3 s]             [2.5-15 s]
           3+2)      [75-200]
medium     3         150 ms      y=200 ms [125-250]                           6.0 s         523 Hz
                     [125-250]                                                [2.5-30 s]
low        2         150 ms      200 ms                                       20 s [> 15 s] 440 Hz
=========  ========  ==========  ==========================================  ============  =====

Each pulse is a fundamental (150-1000 Hz) with four harmonics in 300-4000 Hz whose levels are within
15 dB of it (1, 0.7, 0.5, 0.4, 0.3 = 0 to -10.5 dB), rising and falling over 20 ms (13 % of the pulse,
in the 10-20 % range) so it neither clicks nor sounds soft.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

RATE = 22050
HARMONICS = (1.0, 0.7, 0.5, 0.4, 0.3)  # amplitude of harmonic n = 1..5


@dataclass(frozen=True, slots=True)
class BurstPattern:
    priority: str
    fundamental_hz: float
    pulse_s: float
    gaps_s: tuple[float, ...]  # one fewer than the pulses
    interburst_s: float
    ramp_s: float = 0.020

    @property
    def pulses(self) -> int:
        return len(self.gaps_s) + 1

    def pulse_times(self) -> list[tuple[float, float]]:
        """(start, end) of each pulse, seconds from the start of the burst."""
        out, t = [], 0.0
        for i in range(self.pulses):
            out.append((t, t + self.pulse_s))
            t += self.pulse_s + (self.gaps_s[i] if i < len(self.gaps_s) else 0.0)
        return out

    @property
    def burst_s(self) -> float:
        return self.pulse_times()[-1][1]

    @property
    def cycle_s(self) -> float:
        """Burst plus the silence before the next one: the length of the looping sound."""
        return self.burst_s + self.interburst_s


_TD, _X, _Y = 0.150, 0.100, 0.200
PATTERNS: dict[str, BurstPattern] = {
    "high": BurstPattern("high", 660.0, _TD,
                         (_X, _X, 2 * _X + _TD, _X, 1.0, _X, _X, 2 * _X + _TD, _X), 4.0),
    "medium": BurstPattern("medium", 523.25, _TD, (_Y, _Y), 6.0),
    "low": BurstPattern("low", 440.0, _TD, (_Y,), 20.0),
}


def _pulse(pattern: BurstPattern, rate: int) -> np.ndarray:
    n = int(round(pattern.pulse_s * rate))
    t = np.arange(n) / rate
    wave_ = sum(a * np.sin(2 * np.pi * pattern.fundamental_hz * (k + 1) * t)
                for k, a in enumerate(HARMONICS))
    wave_ /= sum(HARMONICS)
    ramp = int(round(pattern.ramp_s * rate))
    env = np.ones(n)
    env[:ramp] = np.linspace(0.0, 1.0, ramp, endpoint=False)
    env[n - ramp:] = np.linspace(1.0, 0.0, ramp)
    return wave_ * env


def render(priority: str, *, rate: int = RATE, volume: float = 0.8, loop: bool = True
           ) -> np.ndarray:
    """PCM (int16, mono) of one burst, followed by the inter-burst silence when ``loop``."""
    try:
        pattern = PATTERNS[priority]
    except KeyError:
        raise ValueError(f"no alarm tone for priority {priority!r}") from None
    if not 0 < volume <= 1:
        raise ValueError("volume must be in (0, 1]")
    total = pattern.cycle_s if loop else pattern.burst_s
    out = np.zeros(int(round(total * rate)) + 1)  # +1: rounding of the last pulse start
    pulse = _pulse(pattern, rate)
    for start, _ in pattern.pulse_times():
        i = int(round(start * rate))
        out[i:i + len(pulse)] = pulse
    return np.round(out * volume * 32767).astype(np.int16)


def wav_bytes(priority: str, *, rate: int = RATE, volume: float = 0.8, loop: bool = True) -> bytes:
    """A complete WAV file of ``render``: what QSoundEffect plays in a loop."""
    pcm = render(priority, rate=rate, volume=volume, loop=loop)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()
