"""Clocks. Monotonic time orders samples and times alarms; wall time (UTC) is only for the record.

A ScaledClock runs simulated time faster than real time (``speed``) for accelerated demos and tests;
a ManualClock is advanced by hand in tests of the alarm engine and scheduler.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone


class Clock:
    """Real time. ``monotonic()`` never goes backwards; ``wall()`` is epoch seconds, UTC."""

    speed = 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def reachable(self, t_mono: float) -> bool:
        """False when this clock will never reach ``t_mono`` (a batch simulation that has ended)."""
        stop_at = getattr(self, "stop_at", None)
        return stop_at is None or t_mono <= stop_at

    def sleep_until(self, t_mono: float, stop: threading.Event | None = None) -> bool:
        """Wait until monotonic time reaches ``t_mono``; return False if ``stop`` was set first."""
        delay = (t_mono - self.monotonic()) / self.speed
        if delay <= 0:
            return not (stop and stop.is_set())
        if stop is None:
            time.sleep(delay)
            return True
        return not stop.wait(delay)


class ScaledClock(Clock):
    """Simulated time running ``speed`` times faster than real time, from a wall-clock anchor.

    ``monotonic()`` starts at 0 when the clock is made, so simulated sessions start at t = 0.
    """

    def __init__(self, speed: float = 1.0, wall_anchor: float | None = None,
                 stop_at: float | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._real0 = time.monotonic()
        self._wall0 = time.time() if wall_anchor is None else wall_anchor
        # A batch simulation's time ends at ``stop_at``: once the simulated devices have sent their
        # last sample, no more simulated time passes, so nothing (no-data checks, alarm delays) can
        # happen "after" the session while the program is shutting down.
        self.stop_at = stop_at

    def monotonic(self) -> float:
        t = (time.monotonic() - self._real0) * self.speed
        return t if self.stop_at is None else min(t, self.stop_at)

    def wall(self) -> float:
        return self._wall0 + self.monotonic()


class ManualClock(Clock):
    """Time that moves only when told to: for deterministic tests and batch simulation."""

    def __init__(self, t_mono: float = 0.0, wall_anchor: float = 1_767_225_600.0):  # 2026-01-01Z
        self._t = t_mono
        self._wall0 = wall_anchor - t_mono
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        return self._t

    def wall(self) -> float:
        return self._wall0 + self._t

    def advance(self, dt: float) -> None:
        with self._cond:
            self._t += dt
            self._cond.notify_all()

    def set(self, t_mono: float) -> None:
        with self._cond:
            self._t = max(self._t, t_mono)
            self._cond.notify_all()

    def sleep_until(self, t_mono: float, stop: threading.Event | None = None) -> bool:
        with self._cond:
            while self._t < t_mono:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(0.05)
        return not (stop and stop.is_set())


def utc_iso(t_wall: float) -> str:
    """Epoch seconds → ISO 8601 UTC with milliseconds and a Z, the on-disk form of every time."""
    return datetime.fromtimestamp(t_wall, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def parse_utc(text: str) -> float:
    """ISO 8601 with a zone (``Z`` or an offset) → epoch seconds; ValueError otherwise.

    A time without a zone is refused, never read as local time: every time ketmonitor writes (on
    disk, in signed headers, in a keyring) is UTC with ``Z``, so a zone-less one was written by
    something else, and reading it in the zone of whichever machine verifies it would move it by
    hours (and could move a signature across a key's revocation).
    """
    if not isinstance(text, str):
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"time {text!r} has no zone: write it in UTC with a Z")
    return t.timestamp()
