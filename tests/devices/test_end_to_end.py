"""Emulator -> driver -> Dispatcher -> StoreWriter on a real SQLite file, over real pseudo-terminals."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from devices.drivers.nonin import NoninSource
from devices.emulators.nonin import NoninEmulator
from devices.protocols import protocol
from devices.simulators.patient import PatientModel, Vitals
from ketmonitor.clock import utc_iso
from ketmonitor.dispatch import Dispatcher
from ketmonitor.sources import create_source
from ketmonitor.store.writer import StoreWriter, unpack_samples
from tests.waiting import wait_for


def _session(db, sid: str) -> None:
    import time

    now = time.time()
    db["sessions"].insert({"id": sid, "created_utc": utc_iso(now), "started_utc": utc_iso(now),
                           "wall_anchor": now, "mono_anchor": 0.0})


@pytest.mark.parametrize("name, speed", [("nonin2", 1.0), ("nonin7", 1.0), ("nonin8", 4.0),
                                         ("masimo", 4.0)])
def test_emulator_to_store(name, speed, emulator, sources, db_path):
    proto = protocol(name)
    emu = emulator(name, seed=11, t0=120.0, speed=speed)
    writer = StoreWriter(db_path, commit_interval=0.1).start()
    try:
        sid = uuid.uuid4().hex
        writer.run(lambda db: _session(db, sid))
        dispatcher = Dispatcher()
        dispatcher.add_listener(writer.listener(sid))
        src = sources(create_source(proto.source, "ox1", port=emu.path, **proto.options))
        src.start(dispatcher.publish)

        def rows(table, where=""):
            writer.flush()
            return writer.run(lambda db: list(db.query(
                f"select * from {table} where session_id=? {where}", [sid])))

        wait_for(lambda: len(rows("numerics", "and metric='spo2'")) >= 3, timeout=15)
        if proto.parser_class()(**proto.options).waveform_rate:
            wait_for(lambda: len(rows("waveform_chunks")) >= 2, timeout=15)
        src.stop()
        writer.flush()
        numerics = rows("numerics")
        expected = emu.patient.vitals(120.0 + 1.0)
        spo2 = [r["value"] for r in numerics if r["metric"] == "spo2"]
        pulse = [r["value"] for r in numerics if r["metric"] == "pulse_rate"]
        assert all(v is not None and abs(v - expected.spo2) <= 2 for v in spo2)
        assert all(v is not None and abs(v - expected.pulse_rate) <= 8 for v in pulse)
        assert {r["unit"] for r in numerics if r["metric"] == "spo2"} == {"%"}
        assert all(r["source"] == "ox1" for r in numerics)
        t = [r["t_mono"] for r in numerics if r["metric"] == "spo2"]
        assert t == sorted(t)
        for chunk in rows("waveform_chunks"):
            samples = unpack_samples(chunk["samples"])
            assert len(samples) == chunk["n"] and chunk["rate_hz"] == 75.0
            if len(samples) >= 30:  # (the last chunk, flushed at stop, may be short)
                assert max(samples) > min(samples)  # a real pulse wave, not a flat line
        statuses = rows("device_status")
        assert statuses[0]["connected"] == 1 and statuses[0]["conditions"] == ""
        assert src.parser.bad_frames == 0
        if name.startswith("nonin"):
            assert src.format_reply == "ack" and emu.replies == [0x06]
    finally:
        writer.stop()


class TachycardicPatient(PatientModel):
    """A patient with a pulse above 127/min, where an 8-bit shift bug would show."""

    def vitals(self, t: float) -> Vitals:
        return dataclasses.replace(super().vitals(t), pulse_rate=185.0)


@pytest.mark.parametrize("fmt", [2, 8])
def test_nonin_pulse_above_127_over_a_pty(fmt, tmp_path, sources, collector):
    emu = NoninEmulator(patient=TachycardicPatient("uneventful", 1), format=fmt, speed=4.0,
                        link=tmp_path / "tty").start()
    try:
        src = sources(NoninSource("n", port=emu.path, format=fmt))
        src.start(collector)
        wait_for(lambda: len(collector.numerics("pulse_rate")) >= 2, timeout=10)
        assert {n.value for n in collector.numerics("pulse_rate")} == {185.0}
    finally:
        emu.stop()
