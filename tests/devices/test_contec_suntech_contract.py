"""Contract points for the Contec and SunTech drivers on their emulators that complement the shared
suite (test_source_contract.py): found by name with the right kind, NIBP requests only where they
make sense, arrival stamps, and a port that never appears reported rather than raised."""

from __future__ import annotations

import threading
import time

import pytest

from devices.protocols import protocol
from ketmonitor.errors import NotSupportedError
from ketmonitor.metrics import METRICS
from ketmonitor.samples import Condition, DeviceStatus, Numeric, WaveformChunk
from ketmonitor.sources import create_source, source_class
from tests.waiting import wait_for

CASES = {
    # protocol: (registry name, kind, emulator options, wait until this many data samples)
    "contec": ("contec", "oximeter", {}, 3),
    "contec-legacy": ("contec-legacy", "oximeter", {}, 3),
    "suntech": ("suntech", "nibp", {"speed": 200.0}, 4),
}


class Sink:
    def __init__(self):
        self.items, self.lock = [], threading.Lock()

    def __call__(self, sample):
        with self.lock:
            self.items.append(sample)

    def of(self, kind):
        with self.lock:
            return [x for x in self.items if isinstance(x, kind)]


@pytest.fixture(params=sorted(CASES))
def running(request, emulator):
    name = request.param
    reg, kind, emu_kw, want = CASES[name]
    emu = emulator(name, seed=21, t0=60.0, **emu_kw)
    src = create_source(reg, f"{name}-dev", port=emu.path)
    sink = Sink()
    yield name, emu, src, sink, kind, want
    src.stop()


def _data(sink):
    return sink.of(Numeric) + sink.of(WaveformChunk)


def test_found_by_name_with_its_kind(running):
    name, emu, src, sink, kind, want = running
    assert type(src) is source_class(protocol(name).source)
    assert src.kind == kind and src.source_id == f"{name}-dev"
    assert ("nibp" in src.capabilities) == (kind == "nibp")


def test_start_stream_stop(running):
    name, emu, src, sink, kind, want = running
    t_before = time.monotonic()
    src.start(sink)
    if kind == "nibp":
        src.request_nibp()
    else:
        with pytest.raises(NotSupportedError):
            src.request_nibp()
    wait_for(lambda: len([n for n in sink.of(Numeric) if n.metric != "cuff_pressure"]) >= want,
             timeout=15)
    with pytest.raises(RuntimeError):
        src.start(sink)
    src.stop()
    assert not src.running
    src.stop()  # idempotent
    n = len(sink.items)
    status = sink.of(DeviceStatus)
    assert status[0].connected and status[0].source == src.source_id
    for s in _data(sink):
        assert s.source == src.source_id
        assert t_before <= s.t_mono <= time.monotonic()
        assert abs(s.t_wall - time.time()) < 60
    for x in sink.of(Numeric):
        assert x.unit == METRICS[x.metric].unit
        assert x.value is None or METRICS[x.metric].in_range(x.value)
    assert len(sink.items) == n  # nothing arrives after stop() returned


def test_port_that_never_appears_is_reported_not_raised(tmp_path):
    for name, (reg, *_rest) in CASES.items():
        sink = Sink()
        src = create_source(reg, name, port=str(tmp_path / "no-such-tty"))
        src.start(sink)
        try:
            wait_for(lambda: any(not s.connected and Condition.DISCONNECTED in s.conditions
                                 for s in sink.of(DeviceStatus)))
        finally:
            src.stop()
        assert "no-such-tty" in sink.of(DeviceStatus)[-1].message
        assert _data(sink) == []
