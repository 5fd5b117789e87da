import threading

import pytest

from ketmonitor.clock import ManualClock
from ketmonitor.dispatch import Dispatcher
from ketmonitor.errors import NotSupportedError, UnknownSourceError
from ketmonitor.samples import Condition, DeviceStatus, Numeric
from ketmonitor.sources import StopSource, VitalsSource, create_source, register_source, source_names
from tests.waiting import wait_for


def test_a_failing_listener_is_isolated_and_reported_once():
    d = Dispatcher()
    got, reported = [], []
    d.on_listener_error = lambda listener, exc: reported.append(type(exc).__name__)

    def broken(sample):
        raise RuntimeError("boom")

    d.add_listener(broken)
    d.add_listener(got.append)
    for i in range(5):
        d.publish(i)
    assert got == [0, 1, 2, 3, 4]
    assert reported == ["RuntimeError"]
    assert sum(d.errors.values()) == 5


def test_unknown_source_name_lists_the_known_ones():
    with pytest.raises(UnknownSourceError, match="sim-oximeter"):
        create_source("no-such-device")
    assert {"nonin", "masimo", "contec", "suntech", "sim-oximeter", "sim-nibp"} <= set(source_names())


class FlakySource(VitalsSource):
    """Fails twice, then sends three values and ends."""

    reconnect_delay = 0.01

    def __init__(self, source_id, **kw):
        super().__init__(source_id, **kw)
        self.attempts = 0

    def _run(self, stop):
        self.attempts += 1
        if self.attempts <= 2:
            raise OSError(f"port vanished ({self.attempts})")
        for v in (95, 96, 97):
            t = self.clock.monotonic()
            self.emit(Numeric.of("spo2", v, t_mono=t, t_wall=self.clock.wall(), source=self.source_id))
        raise StopSource


def test_source_errors_become_disconnected_status_then_reconnect():
    register_source("flaky-test", f"{__name__}:FlakySource")
    got = []
    src = create_source("flaky-test", "flaky", clock=ManualClock())
    src.start(got.append)
    assert src.wait_stopped(10)
    statuses = [s for s in got if isinstance(s, DeviceStatus)]
    assert statuses[0].connected is False and Condition.DISCONNECTED in statuses[0].conditions
    assert "port vanished (1)" in statuses[0].message
    assert statuses[-1].connected is True
    assert [s.value for s in got if isinstance(s, Numeric)] == [95, 96, 97]
    assert src.attempts == 3
    with pytest.raises(NotSupportedError):
        src.request_nibp()
    src.stop()


def test_stop_is_idempotent_and_joins_the_thread():
    class Idle(VitalsSource):
        def _run(self, stop):
            stop.wait()

    src = Idle("idle")
    started = threading.Event()
    src.start(lambda s: started.set())
    wait_for(lambda: src.running)
    src.stop()
    src.stop()
    assert not src.running


class HandDriven(VitalsSource):
    """A source whose connection and data the test drives by hand (no reader thread)."""

    def _run(self, stop):  # pragma: no cover - never started
        stop.wait()


def test_silence_after_a_reconnection_counts_from_the_reconnection(db_path):
    from ketmonitor.runtime import MonitorRuntime

    clock = ManualClock(0.0)
    src = HandDriven("ox", clock=clock)
    src.sync_time = 2.0  # a protocol that needs up to 2 s more for its first frame
    got = []
    src._sink = got.append
    rt = MonitorRuntime(db_path, [src], clock=clock, t0=0.0)  # not started: no threads
    src.set_status(True)
    src.emit(Numeric.of("spo2", 97, t_mono=0.0, t_wall=clock.wall(), source="ox"))
    clock.set(1.0)
    src.set_status(False, {Condition.DISCONNECTED})  # cable pulled for 10 s
    clock.set(11.0)
    src.set_status(True)  # back: no data yet, the protocol is finding sync
    assert src.connected_mono == 11.0
    for t in (11.05, 12.0, 13.0, 14.0, 15.4):  # 2 intervals + 0.5 s slack + sync_time = 4.5 s
        clock.set(t)
        rt._check_silence(t)
        assert Condition.NO_DATA not in src.conditions, t
    clock.set(15.6)
    rt._check_silence(15.6)
    assert Condition.NO_DATA in src.conditions  # still silent: said, counted from the reconnection
    assert "no data for 5 s" in [s for s in got if isinstance(s, DeviceStatus)][-1].message
    src.emit(Numeric.of("spo2", 96, t_mono=15.7, t_wall=clock.wall(), source="ox"))
    assert Condition.NO_DATA not in src.conditions
    clock.set(18.1)  # data has come since: two intervals and the slack again, no sync allowance
    rt._check_silence(18.1)
    assert Condition.NO_DATA not in src.conditions
    clock.set(18.3)
    rt._check_silence(18.3)
    assert Condition.NO_DATA in src.conditions
    rt.writer.stop()
