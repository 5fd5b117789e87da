"""The generated alarm tones measured from their PCM: pulse count and grouping, timings, pitch."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from ketmonitor.alarms.tones import PATTERNS, RATE, render, wav_bytes


def pulses(pcm: np.ndarray, rate: int = RATE) -> list[tuple[float, float]]:
    """(start, end) in seconds of every stretch where the envelope is above 10 % of full scale."""
    env = np.abs(pcm.astype(float))
    win = int(0.004 * rate)  # 4 ms moving maximum smooths out the zero crossings
    smooth = np.array([env[i:i + win].max() for i in range(0, len(env), win)])
    on = smooth > 0.1 * env.max()
    edges = np.flatnonzero(np.diff(on.astype(int)))
    if on[0]:
        edges = np.r_[-1, edges]
    if on[-1]:
        edges = np.r_[edges, len(on) - 1]
    return [((a + 1) * win / rate, (b + 1) * win / rate) for a, b in edges.reshape(-1, 2)]


@pytest.mark.parametrize("priority, count, groups", [
    ("high", 10, [3, 2, 3, 2]),
    ("medium", 3, [3]),
    ("low", 2, [2]),
])
def test_burst_pulse_count_and_grouping(priority, count, groups):
    found = pulses(render(priority, loop=False))
    assert len(found) == count
    gaps = [b[0] - a[1] for a, b in zip(found, found[1:])]
    # group boundaries are the gaps clearly longer than the shortest one
    sizes, n = [], 1
    for g in gaps:
        if g > 1.5 * min(gaps):
            sizes.append(n)
            n = 0
        n += 1
    sizes.append(n)
    assert sizes == groups


@pytest.mark.parametrize("priority", PATTERNS)
def test_pulse_durations_and_spacing_within_iec_ranges(priority):
    found = pulses(render(priority, loop=False))
    widths = [b - a for a, b in found]
    assert all(0.075 <= w <= 0.200 for w in widths), widths
    gaps = [b[0] - a[1] for a, b in zip(found, found[1:])]
    if priority == "high":
        assert all(0.05 <= g <= 0.125 for g in gaps[:2])
        assert 0.35 <= gaps[4] <= 1.3  # between the two halves
    else:
        assert all(0.125 <= g <= 0.25 for g in gaps)


@pytest.mark.parametrize("priority, low, high", [("high", 2.5, 15), ("medium", 2.5, 30),
                                                 ("low", 15, 60)])
def test_burst_repeat_interval(priority, low, high):
    found = pulses(render(priority, loop=True))
    cycle = len(render(priority, loop=True)) / RATE
    silence_after = cycle - found[-1][1]  # the loop restarts with the next burst
    assert low <= silence_after <= high


@pytest.mark.parametrize("priority", PATTERNS)
def test_fundamental_and_harmonics(priority):
    pcm = render(priority, loop=False).astype(float)
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    f0 = freqs[np.argmax(spectrum)]
    assert 150 <= f0 <= 1000
    assert f0 == pytest.approx(PATTERNS[priority].fundamental_hz, abs=5)
    peak = spectrum.max()
    strong = [k for k in range(2, 10) if 300 <= k * f0 <= 4000 and
              spectrum[np.abs(freqs - k * f0) < 0.02 * k * f0].max() >= peak * 10 ** (-15 / 20)]
    assert len(strong) >= 3  # with the fundamental: at least 4 components within 15 dB


def test_priorities_sound_different():
    assert len({p.fundamental_hz for p in PATTERNS.values()}) == 3


def test_wav_is_playable_pcm():
    data = wav_bytes("medium")
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.array_equal(frames, render("medium"))
    assert 0 < np.abs(frames).max() <= 32767


def test_unknown_priority_is_refused():
    with pytest.raises(ValueError, match="priority"):
        render("urgent")
