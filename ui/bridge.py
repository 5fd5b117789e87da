"""Crossing from worker threads to the GUI: a dispatcher listener that only enqueues, and a QTimer
on the main thread that drains the queue (psygnal's pattern). No Qt object is touched off the main
thread."""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer


class SampleQueue:
    """The listener half: safe to call from any thread."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()

    def __call__(self, sample) -> None:
        self._q.put(sample)

    def drain(self, limit: int = 100_000) -> list:
        out = []
        try:
            while len(out) < limit:
                out.append(self._q.get_nowait())
        except queue.Empty:
            pass
        return out


class FrameTimer(QObject):
    """Calls ``frame(samples)`` at ``fps`` on the main thread and keeps the last frame times."""

    def __init__(self, source: SampleQueue, frame: Callable[[list], None], fps: float = 30.0,
                 parent=None):
        super().__init__(parent)
        self.source, self.frame = source, frame
        self.frame_times: deque[float] = deque(maxlen=2000)
        self.frames = 0
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / fps))
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        t = time.perf_counter()
        self.frame(self.source.drain())
        self.frame_times.append(time.perf_counter() - t)
        self.frames += 1
