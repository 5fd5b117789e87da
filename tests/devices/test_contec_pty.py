"""Contec emulators and drivers over real pseudo-terminals, emulator -> driver -> store."""

from __future__ import annotations

import threading
import time

import pytest
import serial

from devices.drivers.contec import ContecLegacySource, ContecSource
from devices.emulators.contec import DEVICE_ID, MODEL, VENDOR, ContecEmulator, ContecLegacyEmulator
from devices.parsers import contec as proto
from devices.parsers.contec import ContecFeedback, ContecParser, ContecRealtime, ContecText
from ketmonitor.dispatch import Dispatcher
from ketmonitor.samples import Condition, DeviceStatus, Numeric, WaveformChunk
from ketmonitor.sessions import create_session
from ketmonitor.store.writer import StoreWriter, unpack_samples
from tests.waiting import wait_for

PROBE_OFF_T = 905.0  # the probe-off scenario takes the probe off 10 min after the dose (t=300 s)


class Collector:
    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def __call__(self, sample):
        with self.lock:
            self.items.append(sample)

    def numerics(self, metric=None):
        with self.lock:
            return [s for s in self.items if isinstance(s, Numeric)
                    and (metric is None or s.metric == metric)]

    def statuses(self):
        with self.lock:
            return [s for s in self.items if isinstance(s, DeviceStatus)]


def _run_into_store(db_path, emulator, make_source, until):
    """Emulator -> driver -> Dispatcher -> StoreWriter; returns (samples seen, rows by table)."""
    seen = Collector()
    with emulator, StoreWriter(db_path) as writer:
        source = make_source(emulator.path)
        sid = writer.run(lambda db: create_session(db, wall_anchor=time.time(),
                                                   mono_anchor=time.monotonic()))
        dispatcher = Dispatcher()
        dispatcher.add_listener(writer.listener(sid))
        dispatcher.add_listener(seen)
        source.start(dispatcher.publish)
        try:
            wait_for(lambda: until(seen), timeout=15)
        finally:
            source.stop()
        writer.flush()
        rows = writer.run(lambda db: {
            "numerics": list(db.query("SELECT * FROM numerics WHERE session_id=?", [sid])),
            "waves": list(db.query("SELECT * FROM waveform_chunks WHERE session_id=?", [sid])),
            "status": list(db.query("SELECT * FROM device_status WHERE session_id=?", [sid])),
        })
    assert dispatcher.errors == {}
    return seen, rows, source


def test_v7_end_to_end_into_the_store(db_path):
    emu = ContecEmulator(seed=3)
    seen, rows, src = _run_into_store(db_path, emu, lambda p: ContecSource("contec-1", port=p),
                                      lambda s: len(s.numerics("spo2")) >= 3)
    assert emu.commands[:4] == [proto.CMD_START_REALTIME, proto.CMD_DEVICE_ID, proto.CMD_MODEL,
                                proto.CMD_VENDOR]
    assert src.device_info == {"device id": DEVICE_ID, "model": MODEL, "vendor": VENDOR}
    assert src.parser.bad_frames == 0 and src.parser.skipped_bytes == 0
    base = emu.patient.baseline
    by_metric = {}
    for r in rows["numerics"]:
        by_metric.setdefault(r["metric"], []).append(r)
    assert set(by_metric) == {"spo2", "pulse_rate", "perfusion_index"}
    assert all(abs(r["value"] - base.spo2) <= 2 for r in by_metric["spo2"])
    assert all(abs(r["value"] - base.pulse_rate) <= 6 for r in by_metric["pulse_rate"])
    assert all(r["unit"] == "%" and r["flags"] == "" for r in by_metric["spo2"])
    # numerics once a second, the three of one packet sharing one timestamp
    t = sorted({r["t_mono"] for r in rows["numerics"]})
    assert all(b - a >= 0.9 for a, b in zip(t, t[1:]))
    assert rows["waves"] and all(w["rate_hz"] == 60.0 for w in rows["waves"])
    samples = [x for w in rows["waves"] for x in unpack_samples(w["samples"])]
    assert len(samples) >= 60 and all(0 <= x <= 127 for x in samples) and len(set(samples)) > 10
    assert rows["status"][0]["connected"] == 1



def test_the_driver_notes_a_command_the_device_rejects():
    with ContecEmulator(seed=3) as emu:
        src = ContecSource("contec-1", port=emu.path)
        src.start(lambda s: None)
        try:
            wait_for(lambda: len(src.device_info) == 3)  # connected, identification answered
            assert src.write(proto.command(0xB5))  # no such command: feedback, reason 5
            wait_for(lambda: src.rejected_commands == [0xB5])
        finally:
            src.stop()

def test_legacy_end_to_end_into_the_store(db_path):
    emu = ContecLegacyEmulator(seed=5)
    seen, rows, src = _run_into_store(db_path, emu, lambda p: ContecLegacySource("old", port=p),
                                      lambda s: len(s.numerics("spo2")) >= 2)
    assert (src.port_baudrate, src.port_parity) == (19200, serial.PARITY_ODD)
    assert {r["metric"] for r in rows["numerics"]} == {"spo2", "pulse_rate"}
    assert all(abs(r["value"] - emu.patient.baseline.spo2) <= 2
               for r in rows["numerics"] if r["metric"] == "spo2")
    assert rows["waves"] and src.parser.bad_frames == 0
    assert emu.commands_received == b""  # the legacy stream needs no command


@pytest.mark.parametrize("emulator_class, source_class", [
    (ContecEmulator, ContecSource), (ContecLegacyEmulator, ContecLegacySource)])
def test_probe_off_gives_missing_values_and_the_condition(emulator_class, source_class):
    seen = Collector()
    with emulator_class("probe-off", seed=1, t0=PROBE_OFF_T) as emu:
        src = source_class("ox", port=emu.path)
        src.start(seen)
        try:
            wait_for(lambda: len(seen.numerics("spo2")) >= 2)
            wait_for(lambda: any(Condition.SENSOR_OFF in s.conditions for s in seen.statuses()))
        finally:
            src.stop()
    for n in seen.numerics():
        assert n.value is None and Condition.SENSOR_OFF in n.flags


# -- the V7.0 command set, from the host's side of a raw port -------------------------------------
@pytest.fixture
def raw_v7():
    emu = ContecEmulator(seed=2, keepalive_timeout=0.4).start()
    port = serial.serial_for_url(emu.path, baudrate=115200, timeout=0.05)
    parser = ContecParser()

    def read_until(predicate, timeout=5.0):
        got, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            got += parser.feed(port.read(256))
            if predicate(got):
                return got
        raise AssertionError(f"no matching reply: {got[-5:]}")

    yield emu, port, read_until
    port.close()
    emu.stop()


def test_silent_until_started_and_answers_identification(raw_v7):
    emu, port, read_until = raw_v7
    for cmd in (proto.CMD_MODEL, proto.CMD_VENDOR, proto.CMD_DEVICE_ID):
        port.write(proto.command(cmd))
    got = read_until(lambda g: len(g) >= 3)
    assert [(f.kind, f.text) for f in got] == [("model", MODEL), ("vendor", VENDOR),
                                               ("device id", DEVICE_ID)]
    assert emu.units_written == 0 and not emu.streaming


@pytest.mark.parametrize("cmd", [0xA3, 0xB5, 0xFF, 0x10])
def test_unknown_command_gets_feedback_reason_5(raw_v7, cmd):
    emu, port, read_until = raw_v7
    port.write(proto.command(cmd))
    [fb] = read_until(lambda g: g)
    assert isinstance(fb, ContecFeedback) and fb.command == cmd and fb.reason == 0x05


def test_pi_support_and_storage_identifier_replies(raw_v7):
    emu, port, read_until = raw_v7
    port.write(proto.command(proto.CMD_PI_SUPPORT) + proto.command(proto.CMD_STORAGE_IDS))
    a, b = read_until(lambda g: len(g) >= 2)
    assert (a.ptype, a.data) == (0x0E, (1,))
    assert b.ptype == 0x15 and len(b.data) == 7


def test_stream_stops_without_keep_alive_and_stop_command_stops_it(raw_v7):
    emu, port, read_until = raw_v7
    port.write(proto.START_REALTIME)
    read_until(lambda g: sum(isinstance(f, ContecRealtime) for f in g) >= 5)
    wait_for(lambda: emu.stopped_for_keepalive == 1, timeout=5)
    n = emu.units_written
    port.write(proto.command(proto.CMD_DEVICE_ID))  # the reply comes after anything in flight
    read_until(lambda g: any(isinstance(f, ContecText) for f in g))
    assert emu.units_written == n and not emu.streaming
    # start again, keep it alive past the timeout, then stop it by command
    port.write(proto.START_REALTIME)
    last_ka, frames = time.monotonic(), 0
    while frames < 60:  # one second of packets, 2.5 x the keep-alive timeout
        frames += sum(isinstance(f, ContecRealtime) for f in read_until(lambda g: g))
        if time.monotonic() - last_ka > 0.15:
            port.write(proto.KEEP_ALIVE)
            last_ka = time.monotonic()
    assert emu.stopped_for_keepalive == 1 and emu.streaming
    port.write(proto.STOP_REALTIME)
    wait_for(lambda: not emu.streaming)
    assert emu.stopped_for_keepalive == 1


def test_garbage_between_commands_is_ignored(raw_v7):
    emu, port, read_until = raw_v7
    port.write(b"\x00\xff\x7d\x81" + proto.command(proto.CMD_DEVICE_ID))
    [reply] = read_until(lambda g: g)
    assert reply.text == DEVICE_ID and emu.commands == [proto.CMD_DEVICE_ID]


# -- the driver's keep-alive and restart ---------------------------------------------------------
class FastKeepAlive(ContecSource):
    poll_interval = 0.05
    keepalive_interval = 0.15


class SlowKeepAlive(ContecSource):
    poll_interval = 0.1
    keepalive_interval = 0.8
    restart_after = 0.3


def test_the_emulator_stops_streaming_after_exactly_5_s_without_a_command(raw_v7):
    emu, port, read_until = raw_v7
    emu.keepalive_timeout = 5.0  # the device's own timeout (the fixture shortens it)
    port.write(proto.START_REALTIME)
    read_until(lambda g: sum(isinstance(f, ContecRealtime) for f in g) >= 5)
    wait_for(lambda: emu.stopped_for_keepalive == 1, timeout=10)
    # stopped at its first packet due after 5 s (one every 1/60 s), not a second of grace later
    assert 5.0 < emu.stopped_at - emu.last_command_real < 5.0 + 0.5
    assert ContecEmulator().keepalive_timeout == 5.0


def test_the_drivers_keep_alive_leaves_margin_before_the_devices_5_s(emulator, sources):
    emu = emulator("contec", seed=4)  # the device's own 5 s timeout
    src = sources(ContecSource("ka5", port=emu.path))
    src.start(lambda s: None)
    wait_for(lambda: src.keepalives_sent >= 3, timeout=15)
    assert emu.stopped_for_keepalive == 0 and emu.streaming
    times = [t for t, _cmd in emu.command_log]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # every 2.5 s, late by at most one tick (0.5 s) and a read: never near the device's 5 s
    assert gaps and max(gaps) < 3.5, gaps
    assert emu.commands.count(proto.CMD_KEEP_ALIVE) == src.keepalives_sent


def test_a_stream_that_stops_is_started_again_within_a_tick_of_restart_after(emulator, sources):
    emu = emulator("contec", seed=5)
    src = sources(ContecSource("re", port=emu.path))
    src.start(lambda s: None)
    wait_for(lambda: proto.CMD_KEEP_ALIVE in emu.commands, timeout=10)  # just after a tick
    stopped = time.monotonic()
    emu.streaming = False  # the device stops by itself (a button, a glitch)
    wait_for(lambda: emu.commands.count(proto.CMD_START_REALTIME) >= 2, timeout=15)
    [restart] = [t for t, cmd in emu.command_log if cmd == proto.CMD_START_REALTIME][1:]
    # silent for restart_after (2 s) from the last packet, noticed at the next 0.5 s tick
    assert (src.restart_after, src.poll_interval) == (2.0, 0.5)
    assert restart - stopped < 2.0 + 0.5 + 1.0
    wait_for(lambda: emu.streaming and src.parser.frames > 120, timeout=10)


def test_driver_keep_alive_keeps_the_stream_going():
    with ContecEmulator(seed=4, keepalive_timeout=0.5) as emu:
        src = FastKeepAlive("ka", port=emu.path)
        src.start(lambda s: None)
        try:
            wait_for(lambda: src.parser.frames >= 120, timeout=10)  # 2 s, 4 x the timeout
        finally:
            src.stop()
    assert emu.stopped_for_keepalive == 0
    assert emu.commands.count(proto.CMD_KEEP_ALIVE) >= 5 and src.keepalives_sent >= 5


def test_driver_restarts_a_stream_that_stopped():
    with ContecEmulator(seed=4, keepalive_timeout=0.3) as emu:
        src = SlowKeepAlive("restart", port=emu.path)
        src.start(lambda s: None)
        try:
            wait_for(lambda: emu.stopped_for_keepalive >= 1, timeout=10)
            frames = src.parser.frames
            wait_for(lambda: src.starts_sent >= 2 and src.parser.frames > frames + 10, timeout=10)
        finally:
            src.stop()
    assert emu.commands.count(proto.CMD_START_REALTIME) >= 2


# -- faults ----------------------------------------------------------------------------------------
def test_unplug_and_replug_reconnects_and_nothing_else_is_disturbed():
    seen, other = Collector(), Collector()
    with ContecEmulator(seed=6) as emu, ContecLegacyEmulator(seed=7) as emu2:
        src = ContecSource("unplugged", port=emu.path)
        bystander = ContecLegacySource("bystander", port=emu2.path)
        src.start(seen)
        bystander.start(other)
        try:
            wait_for(lambda: len(seen.numerics("spo2")) >= 1)
            emu.unplug(0.6)
            wait_for(lambda: any(not s.connected and Condition.DISCONNECTED in s.conditions
                                 for s in seen.statuses()), timeout=10)
            before = len(other.numerics("spo2"))
            n = len(seen.numerics("spo2"))
            wait_for(lambda: src.connections >= 2 and len(seen.numerics("spo2")) > n + 1,
                     timeout=15)
            assert len(other.numerics("spo2")) > before  # the other device went on meanwhile
        finally:
            src.stop()
            bystander.stop()
    assert seen.statuses()[-1].connected
    assert all(s.connected for s in other.statuses())
    assert emu.commands.count(proto.CMD_START_REALTIME) >= 2  # started again on the new port


def test_line_noise_never_yields_impossible_values():
    seen = Collector()
    with ContecEmulator(seed=8, noise_rate=0.02, drop_rate=0.005) as emu:
        src = ContecSource("noisy", port=emu.path)
        src.start(seen)
        try:
            wait_for(lambda: src.parser.frames >= 100 and src.parser.bad_frames
                     + src.parser.skipped_bytes > 0, timeout=15)
        finally:
            src.stop()
    for n in seen.numerics():
        assert n.value is None or {"spo2": 0 <= n.value <= 100, "pulse_rate": 0 <= n.value <= 254,
                                   "perfusion_index": 0 <= n.value <= 100}[n.metric]
    assert all(isinstance(c, WaveformChunk) for c in seen.items
               if not isinstance(c, (Numeric, DeviceStatus)))


def test_silent_device_raises_no_data_within_two_intervals():
    seen = Collector()
    # the device-disconnect scenario silences the device 20 min after the dose (t = 1500 s)
    with ContecEmulator("device-disconnect", seed=9, t0=1499.3) as emu:
        src = ContecSource("quiet", port=emu.path)
        src.start(seen)
        try:
            status = wait_for(lambda: [s for s in seen.statuses()
                                       if Condition.NO_DATA in s.conditions], timeout=10)[0]
        finally:
            src.stop()
    last = src.last_frame_mono
    assert last is not None and seen.numerics("spo2")
    assert 2 * src.expected_interval <= status.t_mono - last <= 2 * src.expected_interval + 1.0
    assert status.connected and "no data" in status.message


@pytest.mark.parametrize("emulator_class, source_class, hint", [
    (ContecLegacyEmulator, ContecSource, "contec-legacy"),
    (ContecEmulator, ContecLegacySource, "V7.0")])
def test_the_other_contec_family_says_what_to_try(emulator_class, source_class, hint):
    seen = Collector()
    with emulator_class(seed=1) as emu:
        if isinstance(emu, ContecEmulator):
            emu.streaming, emu.last_command_real = True, time.monotonic() + 3600  # stream unasked
        src = source_class("wrong", port=emu.path)
        src.start(seen)
        try:
            status = wait_for(lambda: [s for s in seen.statuses()
                                       if Condition.NO_DATA in s.conditions], timeout=10)[0]
        finally:
            src.stop()
    assert "none decode" in status.message and hint in status.message
    assert seen.numerics() == []
