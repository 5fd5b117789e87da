"""One contract, every source: simulators, each serial driver on its emulator, and replay.

To add a source, append one ``SourceCase`` to ``CASES`` (a name, a factory that builds the source —
registering anything to clean up on the ExitStack — and, for sources that only measure on demand, a
``prime`` that asks for data).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from devices.capture import CaptureWriter
from devices.protocols import protocol
from ketmonitor.clock import ScaledClock
from ketmonitor.metrics import METRICS
from ketmonitor.samples import Condition, DeviceStatus, Numeric, WaveformChunk
from ketmonitor.sources import VitalsSource, create_source
from tests.waiting import wait_for


@dataclass
class SourceCase:
    name: str
    make: Callable[[Path, ExitStack], VitalsSource]
    prime: Callable[[VitalsSource], None] = lambda source: None
    timeout: float = 20.0


def _simulator(name: str, speed: float, **kw):
    def make(tmp: Path, stack: ExitStack) -> VitalsSource:
        return create_source(name, f"contract-{name}", clock=ScaledClock(speed), **kw)
    return make


def _driver(name: str, **emulator_kw):
    """The protocol's driver reading its emulator over a real pty."""
    def make(tmp: Path, stack: ExitStack) -> VitalsSource:
        proto = protocol(name)
        emu = proto.make_emulator(seed=5, t0=120.0, link=tmp / f"tty-{name}", **emulator_kw)
        stack.callback(emu.stop)
        emu.start()
        return create_source(proto.source, f"contract-{name}", port=emu.path, **proto.options)
    return make


def _replay(name: str, seconds: float):
    """A capture of ``seconds`` of the emulator's output, in 0.1 s reads, replayed at 4x."""
    def make(tmp: Path, stack: ExitStack) -> VitalsSource:
        emu = protocol(name).make_emulator(seed=6, t0=120.0)
        path = tmp / f"{name}.cap"
        with CaptureWriter(path, t0_mono=0.0, t0_wall=1.8e9, protocol=name) as cap:
            for k in range(int(seconds * 10)):
                cap.record(k / 10, 1.8e9 + k / 10, emu.render(0.1, 120.0 + k / 10))
        return create_source("replay", f"contract-replay-{name}", file=str(path), protocol=name,
                             speed=4.0)
    return make


def _request(source: VitalsSource) -> None:
    source.request_nibp()


CASES: list[SourceCase] = [
    SourceCase("sim-oximeter", _simulator("sim-oximeter", 10.0)),
    SourceCase("sim-nibp", _simulator("sim-nibp", 40.0, failure_rate=0.0), _request),
    SourceCase("nonin2", _driver("nonin2")),
    SourceCase("nonin7", _driver("nonin7")),
    SourceCase("nonin8", _driver("nonin8", speed=4.0)),
    SourceCase("masimo", _driver("masimo", speed=4.0)),
    SourceCase("contec", _driver("contec")),
    SourceCase("contec-legacy", _driver("contec-legacy")),
    SourceCase("suntech", _driver("suntech", speed=20.0), _request),
    SourceCase("replay-nonin2", _replay("nonin2", 3.0)),
    SourceCase("replay-masimo", _replay("masimo", 6.0)),
]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request, tmp_path):
    stack = ExitStack()
    c: SourceCase = request.param
    source = c.make(tmp_path, stack)
    stack.callback(source.stop)
    with stack:
        yield c, source


def _values(samples):
    return [s for s in samples if isinstance(s, Numeric) and s.value is not None]


def test_delivers_well_formed_samples(case, collector):
    c, source = case
    assert source.kind in ("oximeter", "nibp")
    source.start(collector)
    c.prime(source)
    wait_for(lambda: _values(collector.snapshot()), timeout=c.timeout,
             message=f"{c.name} delivered no value")
    source.stop()
    samples = collector.snapshot()
    last_t: dict[str, float] = {}
    for s in samples:
        if isinstance(s, Numeric):
            assert s.source == source.source_id
            m = METRICS[s.metric]
            assert s.unit == m.unit
            assert s.value is None or m.in_range(s.value), s
            assert all(isinstance(f, Condition) for f in s.flags)
            assert s.t_mono >= last_t.get(s.metric, float("-inf")), "time went backwards"
            last_t[s.metric] = s.t_mono
        elif isinstance(s, WaveformChunk):
            assert s.source == source.source_id and s.rate_hz > 0 and s.samples
            assert all(METRICS[s.metric].in_range(v) for v in s.samples)
        else:
            assert isinstance(s, DeviceStatus) and s.source == source.source_id
    statuses = [s for s in samples if isinstance(s, DeviceStatus)]
    assert any(s.connected for s in statuses) or source.connected


def test_stop_is_final_and_idempotent(case, collector):
    c, source = case
    source.start(collector)
    assert source.running
    source.stop()
    assert not source.running  # the reader thread, the only one that emits, has ended
    n = len(collector.snapshot())
    source.stop()
    assert len(collector.snapshot()) == n


def test_cannot_start_twice(case, collector):
    c, source = case
    source.start(collector)
    with pytest.raises(RuntimeError):
        source.start(collector)
    source.stop()




def test_a_failing_sink_does_not_escape(case, request):
    """A sink that raises (not a Dispatcher) must not end the source or reach the caller."""
    c, source = case
    calls = []

    def bad_sink(sample):
        calls.append(sample)
        raise ValueError("listener bug")

    source.start(bad_sink)
    c.prime(source)
    wait_for(lambda: len(calls) >= 2, timeout=c.timeout)
    assert source.running
    source.stop()
