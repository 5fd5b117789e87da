"""What every wire-protocol parser shares: incremental bytes in, frames out, with honest counters.

A parser is pure: no port, no clock, no threads. ``feed(data)`` appends bytes to a buffer and returns
the frames completed so far; a frame cut in half by a read boundary is finished by the next feed.

Contract for a concrete parser (subclass ``Parser``, implement ``_parse``):

- ``_parse(buf, out)`` consumes complete frames from the front of ``buf`` (``del buf[:n]``) and
  appends Frame objects to ``out``; it leaves an incomplete tail in ``buf`` for the next feed.
- Bytes thrown away while hunting for a frame start go through ``self._skip(buf, n)``
  (counted in ``skipped_bytes``); a frame that fails its checksum or grammar goes through
  ``self._bad(buf, n)`` (counted in ``bad_frames``). Never turn such a frame into a value.
- Every documented "missing" encoding becomes ``value=None`` in a Measurement, never a number.
- A frame the driver must react to although it is bad (a command with a wrong checksum the module
  must answer with 'N'; a NIBP result that is no reading) goes through ``self._hand_on_bad(out,
  frame)``: counted in ``bad_frames`` and not in ``frames``, and it carries no values.

The base then checks each frame (``Frame.values_in_range``): a frame carrying any value outside
its metric's physical range (``ketmonitor.metrics.METRICS[m].in_range``) or an unknown metric is
counted as a bad frame and dropped, so no caller ever sees an impossible number. The default check
walks ``measurements()`` and ``waveform()``; a frame sent tens of times a second may override it
with direct comparisons against the same METRICS bounds (it must check every value it carries), to
spare building Measurement objects only to look at them. Accepted frames are counted in ``frames``.
An exception inside ``_parse`` (a bug) is logged, the buffer is dropped and counted, and ``feed``
still returns normally: a parser never raises to its caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from ketmonitor.metrics import METRICS
from ketmonitor.samples import NO_FLAGS, Condition

log = logging.getLogger(__name__)

_PLETH = METRICS["pleth"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """One decoded value. ``value`` is None when the device said "missing"."""

    metric: str
    value: float | None
    flags: frozenset[Condition] = NO_FLAGS
    detail: str | None = None


class Frame:
    """Base of every decoded frame. Subclasses override what they carry.

    ``device_time`` is the device's own clock reading when the frame carries one (kept beside the
    arrival stamp, never used for ordering).
    """

    device_time: str | None = None
    # False for a frame that only answers a host command (an ACK): it shows the device is there,
    # not that its data decodes, so the silence watch does not count it as data
    is_data: ClassVar[bool] = True

    def measurements(self) -> list[Measurement]:
        return []

    def waveform(self) -> list[int]:
        """Pleth samples carried by this frame, at the parser's ``waveform_rate``."""
        return []

    def conditions(self) -> frozenset[Condition]:
        """Device/signal conditions this frame reports (status bits as named conditions)."""
        return NO_FLAGS

    def values_in_range(self) -> bool:
        """True if every value this frame carries is missing or inside its metric's physical
        range (unknown metrics are not). Override only with an equivalent, cheaper check."""
        for m in self.measurements():
            if not value_ok(m.metric, m.value):
                return False
        for s in self.waveform():
            if not _PLETH.in_range(s):
                return False
        return True


def value_ok(metric: str, value: float | None) -> bool:
    """True if ``value`` is missing or inside the metric's physical range."""
    if value is None:
        return True
    m = METRICS.get(metric)
    return m is not None and m.in_range(value)


class Parser:
    """Incremental parser base. See the module docstring for the subclass contract."""

    name: ClassVar[str] = ""
    waveform_rate: ClassVar[float | None] = None  # Hz of Frame.waveform() samples, if any
    max_buffer: ClassVar[int] = 1 << 16  # a runaway buffer is dropped (counted as skipped)

    def __init__(self) -> None:
        self.frames = 0
        self.bad_frames = 0
        self.skipped_bytes = 0
        self._handed_on_bad = 0  # frames in this feed's output counted as bad, not as frames
        self._buf = bytearray()

    # -- public --------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        if data:
            buf += data
        out: list[Frame] = []
        try:
            self._parse(buf, out)
        except Exception:  # noqa: BLE001 - a parser bug must not reach the reader thread
            log.exception("%s parser failed; %d buffered bytes dropped", type(self).__name__,
                          len(buf))
            self.bad_frames += 1
            self.skipped_bytes += len(buf)
            buf.clear()
            self._reset_state()
        if len(buf) > self.max_buffer:
            self._skip(buf, len(buf))
            self._reset_state()
        if not out:
            return out
        try:  # every frame's range check in one pass (the usual case: all pass)
            ok = [frame.values_in_range() for frame in out]
        except Exception:  # noqa: BLE001 - a frame that cannot describe itself: one by one
            ok = [self._acceptable(frame) for frame in out]
        if all(ok):
            accepted = out
        else:
            accepted = [frame for frame, good in zip(out, ok) if good]
            self.bad_frames += len(out) - len(accepted)
        self.frames += len(accepted) - self._handed_on_bad
        self._handed_on_bad = 0
        return accepted

    def reset(self) -> None:
        """Forget buffered bytes and sync state (e.g. after the port was reopened)."""
        self._buf.clear()
        self._reset_state()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def summary(self) -> dict[str, int]:
        return {"frames": self.frames, "bad_frames": self.bad_frames,
                "skipped_bytes": self.skipped_bytes}

    # -- for subclasses ------------------------------------------------------------------------
    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        raise NotImplementedError

    def _reset_state(self) -> None:
        """Override to drop sync state."""

    def _skip(self, buf: bytearray, n: int = 1) -> None:
        n = min(n, len(buf))
        del buf[:n]
        self.skipped_bytes += n

    def _hand_on_bad(self, out: list[Frame], frame: Frame) -> None:
        """A bad frame (counted as such) the driver must still see; it must carry no values."""
        self.bad_frames += 1
        self._handed_on_bad += 1
        out.append(frame)

    def _bad(self, buf: bytearray, n: int) -> None:
        """Drop ``n`` bytes that formed a frame which failed its checksum or grammar."""
        del buf[:min(n, len(buf))]
        self.bad_frames += 1

    @staticmethod
    def _acceptable(frame: Frame) -> bool:
        try:
            return frame.values_in_range()
        except Exception:  # noqa: BLE001 - a frame that cannot describe itself is bad
            log.exception("frame %r failed to decode", frame)
            return False
