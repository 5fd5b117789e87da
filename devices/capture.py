"""Raw capture files: every read from a device, with the time it arrived, for diagnostics and replay.

Format (text, UTF-8, one record per line, so a capture survives truncation and can be read by eye):

    # ketmonitor raw capture v1
    # protocol=nonin2 port=/dev/ttyUSB0 baudrate=9600 parity=N started=2026-11-23T18:00:00.000Z
    0.000000 1795456800.123456 < 018f3c0a4d
    0.013402 1795456800.136858 > 027002020203

- Header lines start with ``#``; the first is the magic line, later ones carry ``key=value`` words.
- A record is ``<t> <t_wall> <dir> <hex>``: ``t`` seconds since the capture started (monotonic),
  ``t_wall`` epoch seconds UTC of the same instant, ``dir`` ``<`` for device-to-host bytes and ``>``
  for host-to-device bytes, ``hex`` the bytes of one read (or one write) in lowercase hex.

Anything else given to ``read_capture`` (a plain binary dump of device bytes, e.g. from ``cat`` or a
logic analyser) is read as a single device-to-host record at t=0 with ``timed=False``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ketmonitor.clock import utc_iso
from ketmonitor.errors import ConfigError

MAGIC = "# ketmonitor raw capture v1"
RX, TX = "<", ">"


@dataclass(frozen=True, slots=True)
class Record:
    t: float  # seconds since capture start
    t_wall: float
    direction: str  # "<" device -> host, ">" host -> device
    data: bytes


@dataclass
class Capture:
    meta: dict[str, str] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    timed: bool = True  # False for a plain binary dump

    def device_records(self) -> Iterator[Record]:
        return (r for r in self.records if r.direction == RX)

    def device_bytes(self) -> bytes:
        return b"".join(r.data for r in self.device_records())


class CaptureWriter:
    """Appends records to a capture file; thread-safe, flushed every record (diagnostics > speed)."""

    def __init__(self, path, *, t0_mono: float, t0_wall: float | None = None, **meta):
        self.path = Path(path)
        self._t0 = t0_mono
        self._lock = threading.Lock()
        try:
            self._f = open(self.path, "w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise ConfigError(f"cannot write capture {self.path}: {exc.strerror or exc}") from exc
        words = [f"{k}={str(v).replace(' ', '_')}" for k, v in meta.items() if v is not None]
        if t0_wall is not None:
            words.append(f"started={utc_iso(t0_wall)}")
        self._f.write(MAGIC + "\n")
        if words:
            self._f.write("# " + " ".join(w.replace("\n", "_") for w in words) + "\n")
        self._f.flush()
        self.records = 0

    def record(self, t_mono: float, t_wall: float, data: bytes, direction: str = RX) -> None:
        if not data:
            return
        line = f"{t_mono - self._t0:.6f} {t_wall:.6f} {direction} {bytes(data).hex()}\n"
        with self._lock:
            if self._f.closed:
                return
            self._f.write(line)
            self._f.flush()
            self.records += 1

    def close(self) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_capture(path) -> Capture:
    """Read a capture file (or a plain binary dump). Raises ConfigError with the line at fault."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read capture {path}: {exc.strerror or exc}") from exc
    if not raw.startswith(MAGIC.encode()):
        return Capture({}, [Record(0.0, 0.0, RX, raw)] if raw else [], timed=False)
    cap = Capture()
    for lineno, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if lineno > 1:
                for word in line[1:].split():
                    key, sep, value = word.partition("=")
                    if sep:
                        cap.meta[key] = value
            continue
        parts = line.split()
        try:
            if len(parts) == 3:  # a read with no bytes cannot be written, but be lenient
                parts.append("")
            t, t_wall, direction, hexdata = parts
            if direction not in (RX, TX):
                raise ValueError(f"direction {direction!r}")
            cap.records.append(Record(float(t), float(t_wall), direction, bytes.fromhex(hexdata)))
        except ValueError as exc:
            raise ConfigError(f"{path}:{lineno}: not a capture record ({exc})") from None
    return cap
