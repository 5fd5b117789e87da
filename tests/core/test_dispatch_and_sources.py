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
