"""Fan samples out from reader threads to listeners (store, alarm engine, UI queue, recorders).

Listeners are called one at a time under a lock, so a listener sees samples in arrival order and
need not be thread-safe against other listeners. A listener that raises is reported (once per
listener and error type) and counted; the other listeners and the acquisition go on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .samples import Sample

log = logging.getLogger(__name__)

Listener = Callable[[Sample], None]


class Dispatcher:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()
        self.errors: dict[str, int] = {}
        self.on_listener_error: Callable[[Listener, BaseException], None] | None = None
        self.published = 0

    def add_listener(self, listener: Listener) -> Listener:
        with self._lock:
            self._listeners.append(listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, sample: Sample) -> None:
        with self._lock:
            self.published += 1
            for listener in self._listeners:
                try:
                    listener(sample)
                except Exception as exc:  # noqa: BLE001 - isolate a failing listener
                    name = getattr(listener, "__qualname__", None) or type(listener).__name__
                    key = f"{name}: {type(exc).__name__}"
                    first = key not in self.errors
                    self.errors[key] = self.errors.get(key, 0) + 1
                    if first:
                        log.exception("listener %s failed", name)
                        if self.on_listener_error is not None:
                            try:
                                self.on_listener_error(listener, exc)
                            except Exception:  # noqa: BLE001
                                log.exception("on_listener_error failed")

    __call__ = publish
