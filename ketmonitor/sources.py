"""The source interface every simulator, serial driver and replay implements, and the registry
that finds them by name with a lazy import (python-can's interface table is the model).

A source owns one reader thread. The base class does the generic work — start/stop, stamping,
reporting connection state, turning any exception into a DeviceStatus instead of letting it reach the
UI, and reconnecting with back-off — and a concrete source overrides ``_run``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from .clock import Clock
from .errors import NotSupportedError, UnknownSourceError
from .samples import Condition, DeviceStatus, Numeric, Sample, WaveformChunk

log = logging.getLogger(__name__)

Sink = Callable[[Sample], None]

# name -> "module:Class". Drivers live in devices/; the core never imports them at module level.
_REGISTRY: dict[str, str] = {
    "sim-oximeter": "devices.simulators.oximeter:SimulatedOximeter",
    "sim-nibp": "devices.simulators.nibp:SimulatedNibp",
    "nonin": "devices.drivers.nonin:NoninSource",
    "masimo": "devices.drivers.masimo:MasimoSource",
    "contec": "devices.drivers.contec:ContecSource",
    "contec-legacy": "devices.drivers.contec:ContecLegacySource",
    "suntech": "devices.drivers.suntech:SuntechSource",
    "replay": "devices.replay:ReplaySource",
}


def register_source(name: str, target: str) -> None:
    """Add or replace a source: ``target`` is ``"package.module:ClassName"``."""
    _REGISTRY[name] = target


def source_names() -> list[str]:
    return sorted(_REGISTRY)


def source_class(name: str) -> type["VitalsSource"]:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UnknownSourceError(
            f"unknown source {name!r}; known sources: {', '.join(source_names())}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # a broken driver dependency breaks only that driver
        raise UnknownSourceError(f"source {name!r} cannot be loaded: {exc}") from exc
    return getattr(module, attr)


def create_source(name: str, source_id: str | None = None, **options: Any) -> "VitalsSource":
    return source_class(name)(source_id or name, **options)


class StopSource(Exception):
    """Raised inside ``_run`` to end the source for good (e.g. a replay reached its end)."""


class VitalsSource(ABC):
    """Base of every vitals source.

    Subclasses set ``kind`` ("oximeter" or "nibp"), ``expected_interval`` (seconds between data when
    all is well; two of them without data raise NO_DATA) and implement ``_run(stop)``, which reads
    until ``stop`` is set and hands samples to ``self.emit``. If ``_run`` raises, the base reports the
    device as disconnected with the error text, waits, and calls ``_run`` again.

    ``sync_time`` is how much longer than usual the first data may take after a (re)connection
    (a protocol that must see several records before it trusts one); ``connected_mono`` is when
    the source last became connected. The silence watches measure from the later of the last data
    and that moment, allowing ``sync_time`` until data comes.
    """

    kind: ClassVar[str] = "oximeter"
    capabilities: ClassVar[frozenset[str]] = frozenset()
    expected_interval: ClassVar[float] = 1.0
    sync_time: float = 0.0
    reconnect_delay: float = 1.0

    def __init__(self, source_id: str, *, clock: Clock | None = None, **options: Any):
        self.source_id = source_id
        self.clock = clock or Clock()
        self.options = options
        self._sink: Sink | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected: bool | None = None
        self._conditions: frozenset[Condition] = frozenset()
        self._status_lock = threading.Lock()
        self.last_data_mono: float | None = None
        self.connected_mono: float | None = None
        self.last_error: str = ""
        self.sink_errors = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, sink: Sink) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.source_id} already started")
        self._sink = sink
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"source-{self.source_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Idempotent; returns when the reader thread has ended (or after ``timeout``)."""
        self._stop.set()
        self._wake()
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the reader thread has ended by itself (StopSource) or been stopped."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _wake(self) -> None:
        """Override to interrupt a blocking read when stop() is called."""

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._run(self._stop)
                if self._stop.is_set():
                    break
            except StopSource:
                break
            except Exception as exc:  # noqa: BLE001 - a device must never take the app down
                error = f"{type(exc).__name__}: {exc}"
                if error != self.last_error:  # log a failure once, not at every retry
                    log.warning("%s: %s", self.source_id, error)
                self.last_error = error
                self.set_status(False, {Condition.DISCONNECTED}, self._describe_error(exc))
            self._stop.wait(self.reconnect_delay / max(self.clock.speed, 1.0))
        self._closed()

    def _closed(self) -> None:
        """Called on the reader thread after the loop ends."""

    def _describe_error(self, exc: Exception) -> str:
        return f"{self.source_id}: {exc}"

    @abstractmethod
    def _run(self, stop: threading.Event) -> None:
        """Read until ``stop`` is set, handing every sample to ``self.emit``."""

    # -- commands ----------------------------------------------------------------------------
    def request_nibp(self) -> None:
        """Start a blood-pressure measurement now."""
        raise NotSupportedError(f"{self.source_id} cannot measure blood pressure")

    def abort_nibp(self) -> None:
        raise NotSupportedError(f"{self.source_id} cannot measure blood pressure")

    # -- helpers for subclasses --------------------------------------------------------------
    def now(self) -> tuple[float, float]:
        return self.clock.monotonic(), self.clock.wall()

    def emit(self, sample: Sample) -> None:
        if isinstance(sample, (Numeric, WaveformChunk)):
            self.last_data_mono = sample.t_mono
            if self._connected is not True or Condition.NO_DATA in self._conditions:
                self.last_error = ""
                self.set_status(True, self._conditions - {Condition.DISCONNECTED, Condition.NO_DATA})
        self._deliver(sample)

    def _deliver(self, sample: Sample) -> None:
        """Hand a sample to the sink; a sink that raises is logged, never allowed to stop the
        reader (the Dispatcher isolates its listeners the same way)."""
        sink = self._sink
        if sink is None:
            return
        try:
            sink(sample)
        except Exception as exc:  # noqa: BLE001 - acquisition must go on
            self.sink_errors += 1
            if self.sink_errors == 1:  # once, not at every sample
                log.exception("%s: the sink failed on %s: %s", self.source_id,
                              type(sample).__name__, exc)

    def set_status(self, connected: bool, conditions=frozenset(), message: str = "") -> None:
        """Report connection state and device conditions; only changes are sent on."""
        conditions = frozenset(conditions)
        with self._status_lock:
            if connected == self._connected and conditions == self._conditions:
                return
            newly_connected = connected and self._connected is not True
            self._connected, self._conditions = connected, conditions
        t_mono, t_wall = self.now()
        if newly_connected:
            self.connected_mono = t_mono
        self._deliver(DeviceStatus(self.source_id, connected, conditions, t_mono, t_wall, message))

    @property
    def connected(self) -> bool:
        return bool(self._connected)

    @property
    def conditions(self) -> frozenset[Condition]:
        return self._conditions
