"""Fixtures for device tests: emulators on real pseudo-terminals, started and always stopped."""

from __future__ import annotations

import threading

import pytest

from ketmonitor.samples import DeviceStatus, Numeric, WaveformChunk


class Collector:
    """A thread-safe sink that keeps every sample, with helpers to look at them."""

    def __init__(self):
        self._lock = threading.Lock()
        self.samples: list = []

    def __call__(self, sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def snapshot(self) -> list:
        with self._lock:
            return list(self.samples)

    def numerics(self, metric: str | None = None) -> list[Numeric]:
        return [s for s in self.snapshot() if isinstance(s, Numeric)
                and (metric is None or s.metric == metric)]

    def chunks(self) -> list[WaveformChunk]:
        return [s for s in self.snapshot() if isinstance(s, WaveformChunk)]

    def statuses(self, source: str | None = None) -> list[DeviceStatus]:
        return [s for s in self.snapshot() if isinstance(s, DeviceStatus)
                and (source is None or s.source == source)]


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def emulator(tmp_path):
    """``emulator(protocol_name, **kw)`` starts an emulator on a pty (link under tmp_path)."""
    from devices.protocols import protocol

    started = []

    def make(name: str, **kw):
        kw.setdefault("link", tmp_path / f"tty-{name}-{len(started)}")
        emu = protocol(name).make_emulator(**kw)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def sources():
    """Keeps sources to stop at teardown: ``sources(src)`` returns src."""
    kept = []

    def keep(src):
        kept.append(src)
        return src

    yield keep
    for src in kept:
        src.stop()
