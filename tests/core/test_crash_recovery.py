"""Kill the process at a random moment of a recording session: the database stays intact, at most
the last second is lost, and the unfinished session is found at the next start."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ketmonitor.sessions import unfinished_sessions
from ketmonitor.store import open_db
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import sys, threading
    from ketmonitor.clock import Clock
    from ketmonitor.runtime import MonitorRuntime
    from ketmonitor.simulation import simulated_sources
    clock = Clock()
    rt = MonitorRuntime(sys.argv[1], simulated_sources(clock=clock, scenario="uneventful", seed=2),
                        clock=clock)
    rt.start()
    print("started", flush=True)
    threading.Event().wait()
""")


def _newest_chunk_end(path):
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT max(t_wall + n / rate_hz) FROM waveform_chunks").fetchone()
        return row[0]
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()


@pytest.mark.parametrize("delay_chunks", [4, 9])
def test_sigkill_loses_at_most_one_second(tmp_path, delay_chunks):
    db = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        # wait until the child has committed a few chunks, then kill it without warning
        wait_for(lambda: (_newest_chunk_end(db) or 0) and
                 sqlite3.connect(db).execute("SELECT count(*) FROM waveform_chunks").fetchone()[0]
                 >= delay_chunks, timeout=30)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    newest = _newest_chunk_end(db)
    # A chunk is complete 1/3 s after its first sample; commits happen every 0.5 s.
    assert killed_at - newest <= 1.0 + 1 / 3, f"lost {killed_at - newest:.2f} s"
    reopened = open_db(db)
    unfinished = unfinished_sessions(reopened)
    assert len(unfinished) == 1 and unfinished[0]["last_seen_utc"]
