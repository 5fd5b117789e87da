"""Shared fixtures. With KETMONITOR_BLOCK_QT=1 the Qt, pyqtgraph and pyserial packages cannot be
imported at all, which is how `make test` proves the core runs on a machine without them."""

from __future__ import annotations

import os
import sys
import threading

import pytest

BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "serial")

if os.environ.get("KETMONITOR_BLOCK_QT") == "1":
    class _Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the core must run without it")
            return None

    sys.meta_path.insert(0, _Blocker())
    for mod in list(sys.modules):
        if mod.split(".")[0] in BLOCKED:
            del sys.modules[mod]

from tests.waiting import wait_for  # noqa: E402


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "sessions.db"


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves Python threads running (sources, writers, tickers not stopped)."""
    before = set(threading.enumerate())
    yield
    def leaked():
        return [t for t in threading.enumerate() if t not in before and t.is_alive()
                and not t.name.startswith(("QDBus", "asyncio", "ThreadPoolExecutor"))]
    try:
        wait_for(lambda: not leaked(), timeout=10)
    except AssertionError:
        pytest.fail(f"test leaked threads: {[t.name for t in leaked()]}")
