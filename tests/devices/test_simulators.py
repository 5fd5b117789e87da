import pytest

from devices.simulators.nibp import SimulatedNibp
from devices.simulators.oximeter import SimulatedOximeter
from devices.simulators.patient import SCENARIOS, PatientModel
from ketmonitor.clock import ManualClock, ScaledClock
from ketmonitor.samples import Condition, DeviceStatus, Numeric, WaveformChunk


def run_batch(source_cls, seconds, **kw):
    """Run a simulator to ``seconds`` of simulated time on a fast clock; return what it sent."""
    got = []
    src = source_cls(clock=ScaledClock(2000.0), t0=0.0, until=seconds, **kw)
    src.start(got.append)
    assert src.wait_stopped(30)
    src.stop()
    return got


def test_same_seed_same_data_and_different_seed_different_data():
    a = run_batch(SimulatedOximeter, 60, seed=5)
    b = run_batch(SimulatedOximeter, 60, seed=5)
    c = run_batch(SimulatedOximeter, 60, seed=6)
    data = lambda got: [(s.metric, s.value, s.t_mono) for s in got if isinstance(s, Numeric)]
    assert data(a) == data(b)
    assert data(a) != data(c)
    assert len([s for s in a if isinstance(s, Numeric) and s.metric == "spo2"]) == 60


def test_pleth_is_75_hz_and_beats_at_the_pulse_rate():
    got = run_batch(SimulatedOximeter, 30, seed=1)
    chunks = [s for s in got if isinstance(s, WaveformChunk)]
    assert all(c.rate_hz == 75.0 for c in chunks)
    assert sum(len(c.samples) for c in chunks) == 30 * 75
    samples = [x for c in chunks for x in c.samples]
    threshold = min(samples) + 0.7 * (max(samples) - min(samples))
    peaks = sum(1 for i in range(1, len(samples) - 1)
                if samples[i] > samples[i - 1] and samples[i] >= samples[i + 1]
                and samples[i] > threshold)
    pulse = [s.value for s in got if isinstance(s, Numeric) and s.metric == "pulse_rate"]
    expected_beats = sum(pulse) / len(pulse) / 2  # per 30 s
    assert abs(peaks - expected_beats) <= 0.15 * expected_beats


def test_ketamine_response_peaks_near_40_minutes():
    m = PatientModel("uneventful", seed=3, dose_at=300)
    sys_at = lambda minutes: m.vitals(300 + minutes * 60).systolic
    assert sys_at(40) > sys_at(0) + 8
    assert sys_at(40) > sys_at(10) and sys_at(40) > sys_at(120)
    surge = PatientModel("hypertensive-surge", seed=3, dose_at=300)
    assert surge.vitals(300 + 40 * 60).systolic >= 160


def test_desaturation_and_probe_off_scenarios():
    d = PatientModel("desaturation", seed=1)
    assert min(d.vitals(300 + m * 60).spo2 for m in range(14, 22)) < 85
    p = PatientModel("probe-off", seed=1)
    v = p.vitals(300 + 10.5 * 60)
    assert v.probe_off and v.spo2 is None and v.pulse_rate is None
    with pytest.raises(ValueError, match="unknown scenario"):
        PatientModel("nope")
    assert set(SCENARIOS) == {"uneventful", "hypertensive-surge", "desaturation", "probe-off",
                              "device-disconnect"}


def test_probe_off_sends_missing_values_with_the_condition():
    got = run_batch(SimulatedOximeter, 300 + 11 * 60, scenario="probe-off", seed=1)
    off = [s for s in got if isinstance(s, Numeric) and Condition.SENSOR_OFF in s.flags]
    assert off and all(s.value is None for s in off)
    assert any(isinstance(s, DeviceStatus) and Condition.SENSOR_OFF in s.conditions for s in got)


def test_device_disconnect_is_reported_and_recovers():
    got = run_batch(SimulatedOximeter, 300 + 23 * 60, scenario="device-disconnect", seed=1)
    statuses = [s for s in got if isinstance(s, DeviceStatus)]
    down = [s for s in statuses if not s.connected]
    assert down and Condition.DISCONNECTED in down[0].conditions
    assert statuses[-1].connected
    spo2_times = [s.t_mono for s in got if isinstance(s, Numeric) and s.metric == "spo2"]
    gaps = [b - a for a, b in zip(spo2_times, spo2_times[1:])]
    assert max(gaps) > 100  # the two minutes without a device


def test_nibp_measures_on_demand_with_cuff_pressure_and_result():
    clock = ManualClock()
    got = []
    nibp = SimulatedNibp(clock=clock, t0=0.0, failure_rate=0.0, seed=2)
    nibp.start(got.append)
    nibp.request_nibp()
    from tests.waiting import wait_for
    wait_for(lambda: nibp.measuring)
    for _ in range(120):
        clock.advance(0.5)
        if any(isinstance(s, Numeric) and s.metric == "nibp_mean" for s in got):
            break
        wait_for(lambda: not nibp.measuring or any(
            isinstance(s, Numeric) and s.metric == "cuff_pressure" and s.t_mono >= clock.monotonic() - 0.5
            for s in got), timeout=5)
    nibp.stop()
    cuff = [s for s in got if isinstance(s, Numeric) and s.metric == "cuff_pressure"]
    result = {s.metric: s for s in got if isinstance(s, Numeric) and s.metric.startswith("nibp_")}
    assert 25 <= result["nibp_mean"].t_mono <= 45
    assert max(c.value for c in cuff) > result["nibp_systolic"].value
    assert result["nibp_systolic"].value > result["nibp_mean"].value > result["nibp_diastolic"].value
    assert result["nibp_systolic"].t_mono == result["nibp_diastolic"].t_mono


def test_nibp_fails_like_a_real_cuff_sometimes():
    got = run_batch(SimulatedNibp, 3600, seed=4, interval_s=120, failure_rate=0.3)
    errors = [s for s in got if isinstance(s, Numeric) and s.metric == "nibp_error"]
    results = [s for s in got if isinstance(s, Numeric) and s.metric == "nibp_systolic"]
    assert errors and results
    assert all(Condition.NIBP_FAILED in e.flags and e.detail for e in errors)
    assert len(errors) + len(results) == 3600 // 120 - 1 or len(errors) + len(results) == 3600 // 120
