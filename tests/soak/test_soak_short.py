"""The short versions of the soak and fault-injection suite (``make soak`` runs the long ones).

Everything is real: pseudo-terminals with device emulators, driver threads, SQLite files, child
processes killed with SIGKILL, ``ketmonitor verify`` run as a command. The scenarios live in
benchmarks/soak.py; each raises SoakFailure naming the fault it found, and waits on conditions only.
"""

from __future__ import annotations

import pytest

from benchmarks import soak
from devices.protocols import PROTOCOLS

pytestmark = pytest.mark.slow


def test_unplug_and_replug_every_device_mid_session(tmp_path):
    result = soak.unplug_replug(tmp_path, cycles=1)
    assert set(result) == set(PROTOCOLS)
    for name, r in result.items():
        assert r["cycles"] == 1
        assert r["alarm_text"].startswith("Device disconnected") and name in r["alarm_text"]


def test_one_percent_byte_corruption_of_every_protocol(tmp_path):
    result = soak.corruption(tmp_path, sim_seconds=60.0, rate=0.01, speed=15.0)
    assert set(result) == set(PROTOCOLS)
    for name, r in result.items():
        assert r["frames"] > 0, name  # decoding went on
        assert r["bad_frames"] + r["skipped_bytes"] > 0, name  # and the noise was caught


def test_corrupted_values_are_never_accepted_even_at_heavy_noise(tmp_path):
    """10% noise on the fast binary streams: more garbage, still no impossible value."""
    result = soak.corruption(tmp_path, protocols=("nonin2", "contec-legacy"), sim_seconds=30.0,
                             rate=0.10, speed=10.0)
    assert all(r["bad_frames"] > 0 for r in result.values())


def test_sigkill_at_random_moments_recovers_and_resumes(tmp_path):
    result = soak.sigkill(tmp_path, kills=3, seed=3)
    assert result["kills"] == 3 and result["during_start_up"] == 1
    assert result["max_lost_s"] is not None and result["max_lost_s"] <= 1.0
    assert result["resumed_events"] >= 2  # the children after the first resumed the same session


def test_disk_full_while_recording(tmp_path):
    result = soak.disk_full(tmp_path)
    assert "full" in result["alarm"]
    assert result["numerics_stored"] >= result["numerics_published"] > 0


def test_tampered_database_verify_names_each_damage(tmp_path):
    result = soak.tamper(tmp_path)
    assert set(result) == set(soak.DAMAGES)
    assert "audit row 2" in result["audit row deleted"]
    assert "chunk" in result["waveform samples altered"]


def test_the_tamper_check_fails_when_verify_finds_nothing(tmp_path, monkeypatch):
    """The scenario can fail: a "damage" that changes no value (verify rightly passes it) is
    reported as verify not naming the damage, never counted as detected."""
    monkeypatch.setitem(soak.DAMAGES, "harmless", (
        "numerics", "UPDATE numerics SET value = value WHERE rowid = 1", ["numerics"]))
    with pytest.raises(soak.SoakFailure, match="harmless: verify exited 0"):
        soak.tamper(tmp_path, damages=["harmless"])
