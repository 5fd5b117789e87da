"""SunTech emulator and driver over real pseudo-terminals, emulator -> driver -> store."""

from __future__ import annotations

import argparse
import threading
import time

import pytest
import serial

from devices.drivers.suntech import SuntechSource
from devices.emulators.suntech import SuntechEmulator
from devices.parsers import suntech as s
from devices.parsers.suntech import (SuntechBadResult, SuntechBpData, SuntechCuffPressure,
                                     SuntechParser, SuntechStatus)
from ketmonitor.dispatch import Dispatcher
from ketmonitor.samples import Condition, DeviceStatus, Numeric
from ketmonitor.sessions import create_session
from ketmonitor.store.writer import StoreWriter
from tests.waiting import wait_for

NIBP = ("nibp_systolic", "nibp_diastolic", "nibp_mean", "nibp_pulse_rate")
ERRORS = {1: "weak or no signal", 2: "erratic signal or artifact", 3: "out of range",
          4: "measurement timeout", 85: "pneumatic blockage", 86: "stopped by user",
          87: "inflate timeout, leak or loose cuff", 88: "safety timeout", 89: "cuff over-pressure",
          90: "power or hardware fault", 97: "transducer out of range",
          99: "calibration memory failure"}
DISCONNECT_T = 1510.0  # the device-disconnect scenario: 20-22 min after the dose at t=300 s


class Collector:
    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def __call__(self, sample):
        with self.lock:
            self.items.append(sample)

    def numerics(self, metric=None):
        with self.lock:
            return [x for x in self.items if isinstance(x, Numeric)
                    and (metric is None or x.metric == metric)]

    def statuses(self):
        with self.lock:
            return [x for x in self.items if isinstance(x, DeviceStatus)]


@pytest.fixture
def nibp():
    """A started emulator (40x: a measurement takes about a second) and a driver on it."""
    started = []

    def make(speed=40.0, source_class=SuntechSource, emulator_kw=None, **source_kw):
        emu = SuntechEmulator(seed=11, speed=speed, **(emulator_kw or {})).start()
        seen = Collector()
        src = source_class("nibp-1", port=emu.path, **source_kw)
        started.append((emu, src))
        src.start(seen)
        wait_for(lambda: src.connected and "get_cuff_pressure" in emu.commands)
        return emu, src, seen

    yield make
    for emu, src in started:
        src.stop()
        emu.stop()


def test_end_to_end_measurement_into_the_store(db_path):
    seen = Collector()
    with SuntechEmulator(seed=11, speed=40) as emu, StoreWriter(db_path) as writer:
        sid = writer.run(lambda db: create_session(db, wall_anchor=time.time(),
                                                   mono_anchor=time.monotonic()))
        dispatcher = Dispatcher()
        dispatcher.add_listener(writer.listener(sid))
        dispatcher.add_listener(seen)
        src = SuntechSource("nibp-1", port=emu.path)
        src.start(dispatcher.publish)
        try:
            src.request_nibp()
            wait_for(lambda: seen.numerics("nibp_mean"), timeout=15)
            wait_for(lambda: not src.measuring)
        finally:
            src.stop()
        writer.flush()
        rows = writer.run(lambda db: list(db.query(
            "SELECT metric, value, t_wall, flags, unit FROM numerics WHERE session_id=? "
            "ORDER BY rowid", [sid])))
        status = writer.run(lambda db: [r["conditions"] for r in db.query(
            "SELECT conditions FROM device_status WHERE session_id=? ORDER BY rowid", [sid])])
    assert dispatcher.errors == {}
    assert emu.commands[:2] == ["get_cuff_pressure", "start_adult"]
    assert "get_bp_data" in emu.commands
    sys_, dia, mean, pr, err = emu.results[-1]
    assert err == 0
    result = {r["metric"]: r for r in rows if r["metric"] in NIBP}
    assert {m: result[m]["value"] for m in NIBP} == dict(zip(NIBP, (sys_, dia, mean, pr)))
    assert len({r["t_wall"] for r in result.values()}) == 1  # one timestamp for the four
    assert result["nibp_systolic"]["unit"] == "mm[Hg]"
    assert result["nibp_pulse_rate"]["unit"] == "/min"
    cuff = [r for r in rows if r["metric"] == "cuff_pressure"]
    assert len(cuff) >= 3 and all(r["flags"] == "nibp_busy" for r in cuff)
    assert max(r["value"] for r in cuff) > 100
    assert max(r["t_wall"] for r in cuff) <= result["nibp_systolic"]["t_wall"]
    assert "nibp_busy" in status and status[-1] == ""


def test_every_error_code_becomes_a_failed_measurement_and_a_condition(nibp):
    emu, src, seen = nibp(speed=200)
    for k, (code, meaning) in enumerate(sorted(ERRORS.items()), start=1):
        emu.inject_error(code)
        src.request_nibp()
        wait_for(lambda: len(seen.numerics("nibp_error")) == k, timeout=10)
        err = seen.numerics("nibp_error")[-1]
        assert (err.value, err.detail, err.flags) == (code, meaning, {Condition.NIBP_FAILED})
        wait_for(lambda: Condition.NIBP_FAILED in src.conditions)
        assert meaning in seen.statuses()[-1].message
    assert seen.numerics("nibp_systolic") == [] and src.failures == len(ERRORS)
    # the next good measurement clears the condition
    src.request_nibp()
    wait_for(lambda: seen.numerics("nibp_systolic"), timeout=10)
    wait_for(lambda: src.conditions == frozenset())


def test_abort_on_request(nibp):
    emu, src, seen = nibp(speed=1.0)  # a 25-45 s measurement in real time, aborted early
    src.request_nibp()
    wait_for(lambda: any((c.value or 0) > 20 for c in seen.numerics("cuff_pressure")), timeout=10)
    assert Condition.NIBP_BUSY in src.conditions and src.measuring
    src.abort_nibp()
    wait_for(lambda: seen.numerics("nibp_error"), timeout=10)
    [err] = seen.numerics("nibp_error")
    assert (err.value, err.detail) == (86, "stopped by user")
    assert "abort" in emu.commands and emu.state == "idle" and not src.measuring


def test_measurements_on_an_interval(nibp):
    emu, src, seen = nibp(speed=200, interval_s=0.6)
    wait_for(lambda: len(seen.numerics("nibp_systolic")) >= 2, timeout=15)
    assert emu.commands.count("start_adult") >= 2
    src.set_interval(None)
    n = emu.commands.count("start_adult")
    src.request_nibp()  # on demand still works with the interval off
    wait_for(lambda: emu.commands.count("start_adult") == n + 1)


@pytest.mark.parametrize("mode, name", [("pediatric", "start_pediatric"),
                                        ("neonate", "start_neonate")])
def test_start_command_follows_the_mode(nibp, mode, name):
    emu, src, seen = nibp(speed=200, mode=mode)
    src.request_nibp()
    wait_for(lambda: seen.numerics("nibp_systolic"), timeout=10)
    assert name in emu.commands


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="neonatal"):
        SuntechSource("x", port="loop://", mode="neonatal")


class QuickHeartbeat(SuntechSource):
    idle_poll = 0.1
    expected_interval = 0.1
    reply_timeout = 0.5


def test_silent_module_fails_the_start_and_raises_no_data():
    seen = Collector()
    with SuntechEmulator("device-disconnect", seed=3, t0=DISCONNECT_T) as emu:
        src = QuickHeartbeat("dead", port=emu.path)
        src.start(seen)
        try:
            wait_for(lambda: Condition.NO_DATA in src.conditions, timeout=10)
            src.request_nibp()
            wait_for(lambda: Condition.NIBP_FAILED in src.conditions, timeout=10)
        finally:
            src.stop()
    assert "did not answer" in src.last_error
    assert seen.numerics() == []


def test_unplug_during_a_measurement_aborts_and_reports_it(nibp):
    emu, src, seen = nibp(speed=1.0)
    src.request_nibp()
    wait_for(lambda: src.state == "measuring" and seen.numerics("cuff_pressure"), timeout=10)
    emu.unplug(0.3)
    wait_for(lambda: any(not st.connected for st in seen.statuses()), timeout=10)
    wait_for(lambda: src.connections >= 2 and Condition.NIBP_FAILED in src.conditions, timeout=15)
    assert "connection lost" in src.last_error
    wait_for(lambda: "abort" in emu.commands and emu.state == "idle")  # the cuff was let go


# -- the module's answers, from the host's side of a raw port -------------------------------------
@pytest.fixture
def raw():
    emu = SuntechEmulator(seed=5, speed=1.0).start()
    port = serial.serial_for_url(emu.path, baudrate=9600, timeout=0.05)
    parser = SuntechParser()

    def ask(frame_bytes, timeout=5.0):
        port.write(frame_bytes)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = parser.feed(port.read(64))
            if got:
                return got[0]
        raise AssertionError("no answer")

    yield emu, ask
    port.close()
    emu.stop()


def test_command_answers(raw):
    emu, ask = raw
    assert ask(s.command_frame(0x55, 0x01)) == SuntechStatus("D")
    bad = bytearray(s.START_ADULT)
    bad[-1] ^= 0xFF
    assert ask(bytes(bad)) == SuntechStatus("N")
    assert ask(s.set_initial_inflate(50)) == SuntechStatus("N")
    assert ask(s.set_initial_inflate(160)) == SuntechStatus("O")
    assert ask(s.GET_CUFF_PRESSURE) == SuntechCuffPressure(0)
    assert ask(s.START_ADULT) == SuntechStatus("O")
    assert emu.peak == 160  # inflates to the pressure set
    assert ask(s.START_ADULT) == SuntechStatus("B")
    assert ask(s.GET_BP_DATA) == SuntechStatus("B")
    wait_for(lambda: ask(s.GET_CUFF_PRESSURE).mmhg > 0)
    assert ask(s.ABORT) == SuntechStatus("A")
    data = ask(s.GET_BP_DATA)
    assert isinstance(data, SuntechBpData) and data.error_code == 86
    assert ask(s.RESET) == SuntechStatus("R")
    after_reset = ask(s.GET_BP_DATA)  # no result held: the all-zero frame, which is no reading
    assert isinstance(after_reset, SuntechBadResult) and after_reset.systolic == 0


def test_complete_measurement_sends_k_by_itself():
    with SuntechEmulator(seed=9, speed=100) as emu:
        port = serial.serial_for_url(emu.path, baudrate=9600, timeout=0.05)
        try:
            parser = SuntechParser()
            port.write(s.START_NEONATE)
            got = []
            deadline = time.monotonic() + 10
            while SuntechStatus("K") not in got and time.monotonic() < deadline:
                got += parser.feed(port.read(64))
            assert got == [SuntechStatus("O"), SuntechStatus("K")]
            port.write(s.GET_BP_DATA)
            while len(got) < 3 and time.monotonic() < deadline:
                got += parser.feed(port.read(64))
        finally:
            port.close()
    data = got[2]
    v = emu.patient.vitals(emu.start_t + emu.duration)
    assert abs(data.systolic - v.systolic) <= 2 and abs(data.diastolic - v.diastolic) <= 2
    assert data.mean == emu.results[-1][2] and data.error_code == 0


class LosesK(SuntechEmulator):
    """A line that loses the module's 'K'."""

    def produce(self, t):
        out = super().produce(t)
        return b"" if out == s.status_frame("K") else out


class QuickLostK(SuntechSource):
    lost_k_after = 0.4


def test_result_is_fetched_when_k_is_lost():
    seen = Collector()
    with LosesK(seed=12, speed=20) as emu:  # slow enough for the polls to see the cuff up
        src = QuickLostK("nibp-k", port=emu.path)
        src.start(seen)
        try:
            src.request_nibp()
            wait_for(lambda: seen.numerics("nibp_systolic"), timeout=15)
        finally:
            src.stop()
    assert seen.numerics("nibp_systolic")[0].value == emu.results[-1][0]
    assert src.conditions == frozenset()



def test_emulate_command_injects_an_error_code(tmp_path):
    """``ketmonitor emulate --device suntech --set error_code=89``, driven by the real driver."""
    from ketmonitor.commands import emulate

    link = tmp_path / "ttyNIBP"
    ap = argparse.ArgumentParser()
    emulate.add_arguments(ap)
    args = ap.parse_args(["--device", "suntech", "--speed", "200", "--link", str(link),
                          "--set", "error_code=89"])
    stop = threading.Event()
    runner = threading.Thread(target=emulate.run, args=(args, stop), name="emulate-cli")
    runner.start()
    seen = Collector()
    try:
        wait_for(link.exists)
        src = SuntechSource("cli-nibp", port=str(link))
        src.start(seen)
        try:
            src.request_nibp()
            wait_for(lambda: seen.numerics("nibp_error"), timeout=15)
        finally:
            src.stop()
    finally:
        stop.set()
        runner.join(5)
    [err] = seen.numerics("nibp_error")
    assert (err.value, err.detail) == (89, "cuff over-pressure")


def test_emulator_settings_are_checked():
    with pytest.raises(ValueError, match="error_code"):
        SuntechEmulator(error_code=300)
    with pytest.raises(ValueError, match="failure_rate"):
        SuntechEmulator(failure_rate=2)


class FastIdlePoll(SuntechSource):
    idle_poll = 0.3


def test_a_request_during_a_measurement_starts_no_second_one(nibp):
    emu, src, seen = nibp(speed=20, source_class=FastIdlePoll)
    src.request_nibp()
    wait_for(lambda: src.state == "measuring")
    src.request_nibp()  # pressed again while the cuff inflates
    wait_for(lambda: seen.numerics("nibp_systolic"), timeout=15)
    wait_for(lambda: emu.commands.count("get_cuff_pressure") > 2 and not src.measuring)
    n = emu.commands.count("get_cuff_pressure")
    wait_for(lambda: emu.commands.count("get_cuff_pressure") > n)  # an idle heartbeat went by
    assert emu.commands.count("start_adult") == 1


class ForgetsResults(SuntechEmulator):
    """A module whose result buffer is empty when asked (as after a reset): it answers get BP
    data with its all-zero frame."""

    def _finish(self, t, error=None):
        super()._finish(t, error)
        self.result = None


class SwapsPressures(SuntechEmulator):
    """A module whose error-0 result is no reading: systolic 60, diastolic 140."""

    def _finish(self, t, error=None):
        super()._finish(t, error)
        self.result = s.bp_data_frame(60, 140, 100, 70)


@pytest.mark.parametrize("emulator_class, shown", [
    (ForgetsResults, "0/0 mmHg, mean 0, pulse 0: a value of 0"),
    (SwapsPressures, "60/140 mmHg, mean 100, pulse 70: diastolic not below systolic")])
def test_a_result_that_is_no_reading_fails_the_measurement_at_once(emulator_class, shown):
    seen = Collector()
    with emulator_class(seed=13, speed=40) as emu:
        src = SuntechSource("nibp-bad", port=emu.path)
        src.start(seen)
        try:
            src.request_nibp()
            status = wait_for(lambda: [st for st in seen.statuses()
                                       if Condition.NIBP_FAILED in st.conditions], timeout=15)[0]
            assert not src.measuring
        finally:
            src.stop()
    assert status.message == f"NIBP failed: the module's result is not a valid reading ({shown})"
    assert src.last_error in status.message and src.failures == 1
    assert emu.commands.count("get_bp_data") == 1  # no retries: the module holds no other result
    assert not [n for n in seen.numerics() if n.metric != "cuff_pressure"]  # never values
    assert src.parser.bad_frames == 1
