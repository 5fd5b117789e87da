"""Device emulators on real pseudo-terminals: the app opens ``emulator.path`` exactly as /dev/ttyUSB0.

An ``Emulator`` owns a pty pair (raw mode) and a stable ``path``: a symlink it manages pointing at the
current /dev/pts/N. ``unplug(seconds)`` closes the pty and removes the link, as when a USB-serial
cable is pulled; after ``seconds`` a new pty appears behind the same path, as when it is plugged back.

One thread writes the device's output at its real rate (``speed`` > 1 runs the patient model and the
output faster), reads host commands and hands them to ``handle_input``. Output goes through fault
injection: ``noise_rate`` (per byte: replaced by a random byte), ``drop_rate`` (per byte: lost).
Vitals come from ``devices.simulators.patient.PatientModel(scenario, seed)`` at simulated time
``t0 + elapsed * speed``; in the patient's "device-disconnect" episode the device goes silent.

Subclasses set ``interval`` (simulated seconds between output units) and implement ``produce(t)``
returning the bytes of one unit at simulated time ``t`` (b"" to stay silent), and may override
``handle_input(data)`` (use ``reply``), ``on_plug()`` (reset per-connection state).
"""

from __future__ import annotations

import logging
import os
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import ClassVar

from devices.simulators.patient import PatientModel

log = logging.getLogger(__name__)


class Emulator:
    protocol: ClassVar[str] = ""
    baudrate: ClassVar[int] = 9600
    interval: ClassVar[float] = 1.0  # simulated seconds between output units
    max_burst: ClassVar[int] = 200  # units produced at once when the thread fell behind

    def __init__(self, scenario: str = "uneventful", seed: int = 0, *, speed: float = 1.0,
                 link: str | os.PathLike | None = None, noise_rate: float = 0.0,
                 drop_rate: float = 0.0, t0: float = 0.0, patient: PatientModel | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.patient = patient or PatientModel(scenario, seed)
        self.speed = float(speed)
        self.t0 = float(t0)
        self.noise_rate = float(noise_rate)
        self.drop_rate = float(drop_rate)
        self.rng = random.Random(seed ^ 0x5EED)
        self._fault_rng = random.Random(seed + 1)
        self._tmpdir: str | None = None
        self.link: Path | None = Path(link) if link is not None else None  # made at start()
        self._master: int | None = None
        self._slave: int | None = None
        self.pts: str | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unplug_until: float | None = None
        self._plugged = threading.Event()
        self._real0 = time.monotonic()
        self.plug_time = 0.0  # simulated time of the last plug-in
        self.bytes_written = 0
        self.units_written = 0
        self.bytes_dropped = 0  # by fault injection or because nobody reads the port
        self.commands_received = bytearray()
        self.plug_count = 0

    # -- public --------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The stable port path (a symlink to the current /dev/pts/N); set by start()."""
        if self.link is None:
            raise RuntimeError("the emulator has no port until start()")
        return str(self.link)

    def render(self, seconds: float, t_start: float | None = None) -> bytes:
        """The bytes the device would send over ``seconds`` of simulated time, without a pty
        (for tests, benchmarks and sample captures). Fault injection applies."""
        t = self.t0 if t_start is None else t_start
        out = []
        end = t + seconds
        while t < end:
            if not self.device_silent(t):
                out.append(self.produce(t))
            t += self.interval
        return self._faulty(b"".join(out))

    def sim_time(self) -> float:
        return self.t0 + (time.monotonic() - self._real0) * self.speed

    def start(self) -> "Emulator":
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        if self.link is None:
            self._tmpdir = tempfile.mkdtemp(prefix="ketmonitor-emu-")
            self.link = Path(self._tmpdir) / f"tty{self.protocol or 'EMU'}"
        elif self.link.exists() and not self.link.is_symlink():
            # never replace a real file or device node (say, --link /dev/ttyUSB0)
            raise ValueError(f"{self.link} exists and is not a symlink; choose another --link")
        self._real0 = time.monotonic()
        self._plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"emulator-{self.protocol}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(5.0)
        if self.link is not None:
            self._unplug()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def unplug(self, seconds: float | None = None) -> None:
        """Pull the cable now (the path disappears); plug it back after ``seconds`` (real seconds),
        or never if None (call ``plug()``). Returns once the port is gone."""
        with self._lock:
            self._unplug()
            self._unplug_until = None if seconds is None else time.monotonic() + seconds

    def plug(self) -> None:
        with self._lock:
            self._unplug_until = None
            if self._master is None:
                self._plug()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def set_faults(self, *, noise_rate: float | None = None, drop_rate: float | None = None):
        if noise_rate is not None:
            self.noise_rate = float(noise_rate)
        if drop_rate is not None:
            self.drop_rate = float(drop_rate)

    def reply(self, data: bytes) -> None:
        """Answer the host at once (through the same faults as any output)."""
        self._write(data)

    # -- for subclasses ------------------------------------------------------------------------
    def produce(self, t: float) -> bytes:
        raise NotImplementedError

    def handle_input(self, data: bytes) -> None:
        """Bytes the host sent."""

    def on_plug(self) -> None:
        """A new connection: reset per-connection state."""

    def device_silent(self, t: float) -> bool:
        """True while the patient model says the device is off or its cable gone."""
        return self.patient.vitals(t).disconnected

    # -- internals -----------------------------------------------------------------------------
    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation, before anyone opens the slave
        tty.setraw(master)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.pts = os.ttyname(slave)
        tmp = self.link.with_name(self.link.name + ".new")
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        os.symlink(self.pts, tmp)
        os.replace(tmp, self.link)
        self.plug_time = self.sim_time()
        self.plug_count += 1
        self.on_plug()
        self._plugged.set()

    def _unplug(self) -> None:
        with self._lock:
            self._plugged.clear()
            if self.link is not None and self.link.is_symlink():  # only ever our own link
                try:
                    self.link.unlink()
                except FileNotFoundError:
                    pass
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None
            self.pts = None

    def _faulty(self, data: bytes) -> bytes:
        if not (self.noise_rate or self.drop_rate):
            return data
        rnd = self._fault_rng.random
        out = bytearray()
        for b in data:
            if self.drop_rate and rnd() < self.drop_rate:
                continue
            if self.noise_rate and rnd() < self.noise_rate:
                b = self._fault_rng.randrange(256)
            out.append(b)
        return bytes(out)

    def _write(self, data: bytes) -> None:
        data = self._faulty(data)
        with self._lock:
            fd = self._master
            if fd is None or not data:
                return
            try:
                n = os.write(fd, data)
            except BlockingIOError:  # nobody reads: the bytes are lost, as on a real line
                n = 0
            except OSError:
                n = 0
        self.bytes_written += n
        self.bytes_dropped += len(data) - n

    def _loop(self) -> None:
        next_t = self.sim_time()
        while not self._stop.is_set():
            with self._lock:
                if self._unplug_until is not None and time.monotonic() >= self._unplug_until:
                    self._unplug_until = None
                    if self._master is None:
                        self._plug()
                fd = self._master
            now_t = self.sim_time()
            if fd is None:
                self._stop.wait(0.02)
                next_t = max(next_t, now_t)
                continue
            if now_t >= next_t:
                burst = 0
                chunks = []
                while next_t <= now_t and burst < self.max_burst:
                    try:
                        if not self.device_silent(next_t):
                            chunks.append(self.produce(next_t))
                    except Exception:  # noqa: BLE001 - an emulator bug must not hang the test
                        log.exception("%s emulator failed to produce output", self.protocol)
                    next_t += self.interval
                    burst += 1
                if burst == self.max_burst:
                    next_t = max(next_t, now_t)
                data = b"".join(chunks)
                if data:
                    self.units_written += len(chunks)
                    self._write(data)
            wait = max(0.0, min((next_t - self.sim_time()) / self.speed, 0.05))
            # the lock keeps unplug() from closing the fd (and its number being reused by some
            # other file) between the select and the read
            with self._lock:
                if self._master != fd:
                    continue
                try:
                    ready, _, _ = select.select([fd], [], [], wait)
                    data = os.read(fd, 4096) if ready else b""
                except (BlockingIOError, InterruptedError):
                    continue
                except (OSError, ValueError):
                    continue
            if data:
                self.commands_received += data
                try:
                    self.handle_input(data)
                except Exception:  # noqa: BLE001
                    log.exception("%s emulator failed to handle %r", self.protocol, data)
