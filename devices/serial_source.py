"""Sources that turn a parser's frames into samples: the serial driver base and its shared core.

``ParsedSource`` holds what every byte-fed source does, whatever the bytes come from (a serial port
or a replayed capture): stamp each read once, feed the parser, turn measurements into ``Numeric``
samples and pleth into ``WaveformChunk``s, keep the device's conditions as a ``DeviceStatus``, and
say NO_DATA when nothing decodes for two expected data intervals. After a (re)connection, until the
first data frame decodes, the watch allows ``sync_time`` more: the time the protocol needs to find
its first frame (Nonin #8: two records and a third STATUS byte). A reply to a host command (an ACK)
is not data (``Frame.is_data``).

A driver reacts to frames (command replies, a state machine) in methods marked
``@reacts_to(FrameType, ...)``. The marks are the one list of the frames a driver reacts to, so no
frame type can be handled in a method yet left out of a separate list (and so never reach it): the
class's ``frame_hooks`` table is built from them when the class is made.

``SerialSource`` opens the port with ``serial.serial_for_url`` (a device path, a pty, ``loop://``,
``socket://``, ``spy://`` all work), calls the ``on_open`` hook (format selection, start commands),
calls ``periodic`` every ``poll_interval`` (keep-alive, polling), and reads in the source's thread.
A read error or a vanished port ends ``_run`` with an exception; the VitalsSource base reports
DISCONNECTED and calls ``_run`` again until the port returns. No exception reaches the caller.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Container, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from ketmonitor.clock import Clock
from ketmonitor.samples import Condition, Numeric, WaveformChunk
from ketmonitor.sources import VitalsSource

from .capture import RX, TX, CaptureWriter
from .parsers.base import Frame, Parser

log = logging.getLogger(__name__)

_Hook = TypeVar("_Hook", bound=Callable[..., None])


def reacts_to(*frame_types: type[Frame]) -> Callable[[_Hook], _Hook]:
    """Mark a driver method as its reaction to frames of ``frame_types`` (and of their
    subclasses): ``handle_frames`` calls ``method(frame, t_mono)`` for each such frame, on the
    reader thread. Frames of no marked type cost the read path one dictionary look-up."""
    if not frame_types or not all(isinstance(t, type) and issubclass(t, Frame)
                                  for t in frame_types):
        raise TypeError(f"reacts_to takes Frame classes, not {frame_types!r}")

    def mark(method: _Hook) -> _Hook:
        method._reacts_to = frame_types  # type: ignore[attr-defined]
        return method
    return mark


class ParsedSource(VitalsSource):
    """A source fed with raw bytes through ``handle_read``; subclasses decide where bytes come from."""

    parser_class: ClassVar[type[Parser] | None] = None
    waveform_metric: ClassVar[str] = "pleth"
    chunk_seconds: ClassVar[float] = 0.5  # pleth is sent on in chunks of about this length
    condition_hold: ClassVar[float] = 1.5  # a condition stays reported this long after last seen
    no_data_hint: ClassVar[str] = ""  # what to tell the user when nothing decodes
    protocol_label: ClassVar[str] = ""
    # frame type -> name of the method that reacts to it; built from the @reacts_to marks of the
    # class and its bases when the class is made, never written by hand
    frame_hooks: ClassVar[Mapping[type[Frame], str]] = MappingProxyType({})
    _hook_names: ClassVar[dict[type, str | None]] = {}  # per frame class, resolved once

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for old in ("on_frame", "on_frame_types", "frame_hooks"):
            if old in vars(cls):  # would be ignored in silence: say so when the class is made
                raise TypeError(f"{cls.__name__}.{old}: mark the methods that react to frames "
                                "with @reacts_to(FrameType) instead")
        hooks: dict[type[Frame], str] = {}
        for klass in reversed(cls.__mro__):  # a subclass's marks replace its bases'
            own: dict[type[Frame], str] = {}
            for name, attr in vars(klass).items():
                for frame_type in getattr(attr, "_reacts_to", ()):
                    if frame_type in own:
                        raise TypeError(f"{klass.__name__}: both {own[frame_type]} and {name} "
                                        f"react to {frame_type.__name__}")
                    own[frame_type] = name
            hooks.update(own)
        cls.frame_hooks = MappingProxyType(hooks)
        cls._hook_names = {}

    def __init__(self, source_id: str, *, clock: Clock | None = None, **options: Any):
        super().__init__(source_id, clock=clock, **options)
        self.parser: Parser = self.make_parser()
        self.reads = 0
        self.bytes_read = 0
        self.last_bytes_mono: float | None = None
        self.last_frame_mono: float | None = None
        self._watch_from: float | None = None  # silence is measured from here when no frame yet
        self._seen: dict[Condition, float] = {}
        self._frame_conditions: frozenset[Condition] = frozenset()
        self._wave: list[int] = []
        self._wave_t0 = 0.0
        self._wave_wall0 = 0.0
        self._wave_flags: set[Condition] = set()
        self._wave_end: float | None = None

    def make_parser(self) -> Parser:
        if self.parser_class is None:
            raise TypeError(f"{type(self).__name__} needs a parser_class")
        return self.parser_class()

    # -- the byte path ---------------------------------------------------------------------------
    def handle_read(self, data: bytes, t_mono: float, t_wall: float) -> None:
        """One read from the device, stamped once on arrival."""
        self.reads += 1
        self.bytes_read += len(data)
        self.last_bytes_mono = t_mono
        frames = self.parser.feed(data)
        if frames:
            for f in frames:
                if f.is_data:
                    self.last_frame_mono = t_mono
                    break
            self.handle_frames(frames, t_mono, t_wall)
        self.update_status(t_mono)

    def handle_frames(self, frames: list[Frame], t_mono: float, t_wall: float,
                      numerics_at: Container[int] | None = None) -> None:
        """Conditions, pleth and values of the frames of one read. ``numerics_at``: the indexes
        of the frames whose measurements go on (None: every frame's)."""
        rate = self.parser.waveform_rate
        seen = self._seen
        hook_names = self._hook_names if self.frame_hooks else None
        source = self.source_id
        last_conds = wave_conds = None
        if rate:
            waves = [f.waveform() for f in frames]
            left = sum(map(len, waves))  # samples of this read after the current frame's
            per_chunk = rate * self.chunk_seconds
        for i, frame in enumerate(frames):
            conds = frame.conditions()
            if conds is not last_conds:  # (conditions often come from one shared table)
                for c in conds:
                    seen[c] = t_mono
                last_conds = conds
            if rate:
                wave = waves[i]
                if wave:
                    left -= len(wave)
                    if not self._wave:
                        # the last sample of this read arrived now, earlier ones one period apart
                        t0 = t_mono - (left + len(wave) - 1) / rate
                        if self._wave_end is not None and abs(t0 - self._wave_end) < 0.25:
                            t0 = self._wave_end  # keep the waveform timeline continuous
                        self._wave_t0, self._wave_wall0 = t0, t_wall - (t_mono - t0)
                    self._wave.extend(wave)
                    if conds is not wave_conds:
                        self._wave_flags.update(conds)
                        wave_conds = conds
                    if len(self._wave) >= per_chunk:
                        self.flush_waveform()
                        wave_conds = None
            if numerics_at is None or i in numerics_at:
                measurements = frame.measurements()
                if measurements:
                    device_time = frame.device_time
                    for m in measurements:
                        self.emit(Numeric.of(m.metric, m.value, t_mono=t_mono, t_wall=t_wall,
                                             source=source, flags=m.flags, detail=m.detail,
                                             device_time=device_time))
            if hook_names is not None:
                kind = type(frame)
                name = hook_names[kind] if kind in hook_names else self._hook_name(kind)
                if name is not None:
                    getattr(self, name)(frame, t_mono)

    @classmethod
    def _hook_name(cls, frame_type: type) -> str | None:
        """The method reacting to frames of ``frame_type``: the hook of its own class or of its
        nearest base class that has one (None: no reaction), found once per frame class."""
        hooks = cls.frame_hooks
        name = next((hooks[k] for k in frame_type.__mro__ if k in hooks), None)
        cls._hook_names[frame_type] = name
        return name

    def flush_waveform(self) -> None:
        rate = self.parser.waveform_rate
        if not self._wave or not rate:
            return
        chunk = WaveformChunk(self.waveform_metric, float(rate), self._wave_t0, self._wave_wall0,
                              tuple(self._wave), self.source_id, frozenset(self._wave_flags))
        self._wave_end = self._wave_t0 + len(self._wave) / rate
        self._wave, self._wave_flags = [], set()
        self.emit(chunk)

    # -- status ----------------------------------------------------------------------------------
    def update_status(self, now: float) -> None:
        """Recompute conditions (frame conditions seen recently, NO_DATA when silent) and report."""
        hold = self.condition_hold
        for c in [c for c, t in self._seen.items() if now - t > hold]:
            del self._seen[c]
        conds = set(self._seen)
        message = ""
        if self.last_frame_mono is not None:
            ref, allowed = self.last_frame_mono, 2 * self.expected_interval
        else:  # nothing decoded since the connection: the protocol may still be finding sync
            ref, allowed = self._watch_from, 2 * self.expected_interval + self.sync_time
        if ref is not None and now - ref > allowed:
            conds.add(Condition.NO_DATA)
            message = self.silence_message(now - ref)
        self.set_status(True, conds, message)

    def silence_message(self, silent_for: float) -> str:
        label = self.protocol_label or self.parser.name or "the protocol"
        if self.last_bytes_mono is not None and (self.last_frame_mono is None
                                                 or self.last_bytes_mono > self.last_frame_mono):
            text = (f"{self.source_id}: bytes arrive but none decode as {label} for "
                    f"{silent_for:.0f} s; check the protocol and baud rate")
        else:
            text = f"{self.source_id}: no data for {silent_for:.0f} s"
        return f"{text}. {self.no_data_hint}" if self.no_data_hint else text

    def reset_stream(self, now: float) -> None:
        """A new connection: forget partial frames, conditions and the waveform timeline."""
        self.flush_waveform()
        self.parser.reset()
        self._seen.clear()
        self._wave_end = None
        self.last_frame_mono = None
        self._watch_from = now


class SerialSource(ParsedSource):
    """A device on a serial port. Options: ``port`` (path or pyserial URL), ``capture`` (file to
    record every read and write with timestamps), ``baudrate``/``parity`` to override the device's."""

    baudrate: ClassVar[int] = 9600
    parity: ClassVar[str] = "N"  # pyserial's PARITY_NONE; "O" odd, "E" even
    bytesize: ClassVar[int] = 8
    stopbits: ClassVar[float] = 1
    read_timeout: ClassVar[float] = 0.05
    poll_interval: ClassVar[float | None] = None  # seconds between ``periodic`` calls

    def __init__(self, source_id: str, *, port: str, clock: Clock | None = None,
                 capture: str | None = None, baudrate: int | None = None,
                 parity: str | None = None, **options: Any):
        super().__init__(source_id, clock=clock, **options)
        if not port:
            raise ValueError("a serial source needs a port")
        self.port = str(port)
        self.capture_path = capture
        self.port_baudrate = int(baudrate or self.baudrate)
        self.port_parity = parity or self.parity
        self._serial = None  # the open serial.SerialBase while connected
        self._write_lock = threading.Lock()
        self._capture: CaptureWriter | None = None
        self.connections = 0  # successful opens
        self.open_attempts = 0

    # -- hooks -----------------------------------------------------------------------------------
    def on_open(self, now: float) -> None:
        """Send what the device needs right after the port opens (start, format selection)."""

    def periodic(self, now: float) -> None:
        """Called every ``poll_interval`` while connected (keep-alive, polling)."""

    # -- port ------------------------------------------------------------------------------------
    def open_port(self):
        # pyserial is imported here, not at module level, so that ParsedSource and ReplaySource
        # (which share this module) work where pyserial is absent, e.g. replay on a laptop
        serial = importlib.import_module("serial")
        return serial.serial_for_url(self.port, baudrate=self.port_baudrate,
                                     parity=self.port_parity, bytesize=self.bytesize,
                                     stopbits=self.stopbits, timeout=self.read_timeout,
                                     write_timeout=1.0, exclusive=True)  # one reader per port

    def write(self, data: bytes) -> bool:
        """Send bytes to the device from any thread; False if the port is not open or failed."""
        ser = self._serial
        if ser is None:
            return False
        with self._write_lock:
            try:
                ser.write(data)
                ser.flush()
            except Exception as exc:  # noqa: BLE001 - the reader thread notices and reconnects
                log.warning("%s: write failed: %s", self.source_id, exc)
                return False
        if self._capture is not None:
            t_mono, t_wall = self.now()
            self._capture.record(t_mono, t_wall, data, TX)
        return True

    def _run(self, stop: threading.Event) -> None:
        if self.capture_path and self._capture is None:
            t_mono, t_wall = self.now()
            self._capture = CaptureWriter(self.capture_path, t0_mono=t_mono, t0_wall=t_wall,
                                          protocol=self.parser.name or type(self).__name__,
                                          port=self.port, baudrate=self.port_baudrate,
                                          parity=self.port_parity)
        self.open_attempts += 1
        ser = self.open_port()
        self._serial = ser
        self.connections += 1
        try:
            now = self.clock.monotonic()
            self.reset_stream(now)
            self.set_status(True, frozenset(), f"{self.source_id}: connected to {self.port}")
            self.on_open(now)
            next_poll = now + (self.poll_interval or 0.0)
            while not stop.is_set():
                data = ser.read(1)
                if data:
                    waiting = ser.in_waiting
                    if waiting:
                        data += ser.read(waiting)
                    t_mono, t_wall = self.now()
                    if self._capture is not None:
                        self._capture.record(t_mono, t_wall, data, RX)
                    self.handle_read(data, t_mono, t_wall)
                    now = t_mono
                else:
                    now = self.clock.monotonic()
                    self.update_status(now)
                if self.poll_interval and now >= next_poll:
                    next_poll = now + self.poll_interval
                    self.periodic(now)
        finally:
            self._serial = None
            self.flush_waveform()
            try:
                ser.close()
            except Exception:  # noqa: BLE001 - the port may already be gone
                pass

    def _describe_error(self, exc: Exception) -> str:
        return f"{self.source_id}: port {self.port} unavailable ({exc})"

    def _closed(self) -> None:
        if self._capture is not None:
            self._capture.close()
            self._capture = None
