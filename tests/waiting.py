"""Waiting on conditions instead of sleeping."""

from __future__ import annotations

import threading
import time


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01, message: str = ""):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s: {predicate}")
        threading.Event().wait(interval)
