"""SunTech Advantage NIBP frames against device-protocols.md section 4."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.parsers import suntech as s
from devices.parsers.suntech import (SuntechBadResult, SuntechBpData, SuntechCommandParser,
                                     SuntechCuffPressure, SuntechParser, SuntechStatus)
from ketmonitor.samples import Condition


def frame(*body: int) -> bytes:
    """A module frame built by hand: 3E, LEN, data, checksum (independent of the module code)."""
    f = [0x3E, len(body) + 3, *body]
    return bytes(f + [(256 - sum(f) % 256) % 256])


# -- host commands -------------------------------------------------------------------------------
@pytest.mark.parametrize("built, wire", [
    (s.START_ADULT, "3A 20 A6"),
    (s.START_PEDIATRIC, "3A 87 3F"),
    (s.START_NEONATE, "3A 28 9E"),
    (s.ABORT, "3A 79 01 00 4C"),
    (s.GET_BP_DATA, "3A 79 03 00 4A"),
    (s.GET_CUFF_PRESSURE, "3A 79 05 00 48"),
    (s.RESET, "3A 8A 3C"),
])
def test_command_frames_are_the_documented_bytes(built, wire):
    assert built == bytes.fromhex(wire)
    assert sum(built) % 256 == 0


def test_set_initial_inflate_is_little_endian_with_checksum():
    f = s.set_initial_inflate(300)  # 0x012C
    assert f[:4] == bytes((0x3A, 0x17, 0x2C, 0x01)) and sum(f) % 256 == 0 and len(f) == 5
    with pytest.raises(ValueError):
        s.set_initial_inflate(-1)


def test_command_parser_reads_every_command():
    stream = (s.START_ADULT + s.START_PEDIATRIC + s.START_NEONATE + s.ABORT + s.GET_BP_DATA
              + s.GET_CUFF_PRESSURE + s.RESET + s.set_initial_inflate(160))
    p = SuntechCommandParser()
    cmds = [p.feed(bytes((b,))) for b in stream]  # one byte at a time
    names = [c.name for got in cmds for c in got]
    assert names == ["start_adult", "start_pediatric", "start_neonate", "abort", "get_bp_data",
                     "get_cuff_pressure", "reset", "set_initial_inflate"]
    assert [c for got in cmds for c in got][-1].value == 160


def test_command_parser_bad_checksum_and_unknown_command():
    p = SuntechCommandParser()
    bad = bytearray(s.GET_BP_DATA)
    bad[-1] ^= 0x01
    unknown = s.command_frame(0x55, 0x01)  # not documented
    other79 = s.command_frame(0x79, 0x09, 0x00)
    got = p.feed(b"\x00\xff" + bytes(bad) + unknown + other79 + s.START_ADULT)
    assert [c.name for c in got] == ["bad", "unknown", "unknown", "start_adult"]
    assert p.bad_frames == 1 and p.skipped_bytes == 2


# -- module replies ------------------------------------------------------------------------------
STATUS = {"O": "command received", "K": "measurement complete", "A": "abort acknowledged",
          "B": "busy", "E": "error", "N": "bad packet or parameter", "D": "unknown command",
          "T": "timeout", "R": "reset"}


@pytest.mark.parametrize("code, meaning", sorted(STATUS.items()))
def test_every_status_code(code, meaning):
    wire = frame(ord(code))
    assert s.status_frame(code) == wire and len(wire) == 4
    [f] = SuntechParser().feed(wire)
    assert isinstance(f, SuntechStatus) and f.code == code and f.meaning == meaning
    assert f.measurements() == []


def test_undocumented_status_letter_is_a_bad_frame():
    p = SuntechParser()
    assert p.feed(frame(ord("X"))) == []
    assert p.bad_frames == 1


def test_cuff_pressure():
    wire = frame(0x23, 0x01)  # 0x0123 = 291 mmHg
    assert s.cuff_pressure_frame(291) == wire
    [f] = SuntechParser().feed(wire)
    assert isinstance(f, SuntechCuffPressure) and f.mmhg == 291
    [m] = f.measurements()
    assert (m.metric, m.value) == ("cuff_pressure", 291)
    p = SuntechParser()
    assert p.feed(frame(0x5F, 0x01)) == [] and p.bad_frames == 1  # 351 mmHg: impossible


def bp_wire(sys_=(0x7B, 0), dia=(0x50, 0), status=0x00, pr=(0x48, 0), mean=(0x5E, 0), err=0):
    data = [0] * 21  # offsets 2..22 from the 3E byte
    data[0:2], data[2:4], data[5] = sys_, dia, status
    data[14:16], data[16:18], data[18] = pr, mean, err
    return frame(*data)


def test_bp_data_offsets():
    wire = bp_wire(sys_=(0x2C, 0x01), dia=(0x50, 0x00), status=0x11, pr=(0x48, 0), mean=(0x5E, 0))
    assert len(wire) == 24 and wire[1] == 0x18
    [f] = SuntechParser().feed(wire)
    assert isinstance(f, SuntechBpData)
    assert (f.systolic, f.diastolic, f.mean, f.pulse_rate) == (300, 80, 94, 72)
    assert f.result_status == 0x11 and f.error_code == 0 and not f.failed
    assert [(m.metric, m.value, m.flags) for m in f.measurements()] == [
        ("nibp_systolic", 300, frozenset()), ("nibp_diastolic", 80, frozenset()),
        ("nibp_mean", 94, frozenset()), ("nibp_pulse_rate", 72, frozenset())]
    assert s.bp_data_frame(300, 80, 94, 72, result_status=0x11) == wire


ERRORS = {1: "weak or no signal", 2: "erratic signal or artifact", 3: "out of range",
          4: "measurement timeout", 85: "pneumatic blockage", 86: "stopped by user",
          87: "inflate timeout, leak or loose cuff", 88: "safety timeout", 89: "cuff over-pressure",
          90: "power or hardware fault", 97: "transducer out of range",
          99: "calibration memory failure"}


@pytest.mark.parametrize("code, meaning", sorted(ERRORS.items()))
def test_every_error_code_is_a_failed_measurement(code, meaning):
    [f] = SuntechParser().feed(bp_wire(err=code))
    assert f.failed and f.error_meaning == meaning
    [m] = f.measurements()
    assert (m.metric, m.value, m.flags, m.detail) == ("nibp_error", code,
                                                      {Condition.NIBP_FAILED}, meaning)


def test_error_codes_are_decimal():
    [f] = SuntechParser().feed(bp_wire(err=0x55))  # 0x55 = 85 decimal
    assert f.error_code == 85 and f.error_meaning == "pneumatic blockage"
    [g] = SuntechParser().feed(bp_wire(err=0x85))  # 133: no such code
    assert g.failed and g.error_meaning == "unknown error code 133"


def test_impossible_pressures_are_bad_frames():
    p = SuntechParser()
    [f] = p.feed(bp_wire(sys_=(0x2D, 0x01)))  # 301 mmHg: handed on without values
    assert isinstance(f, SuntechBadResult) and f.measurements() == []
    assert "out of range" in f.describe()
    assert p.bad_frames == 1 and p.frames == 0


@pytest.mark.parametrize("sys_, dia, mean, pr, why", [
    (0, 0, 0, 0, "a value of 0"),  # what a module with no result sends (the emulator's NO_RESULT)
    (60, 140, 100, 70, "diastolic not below systolic"),
    (120, 120, 120, 70, "diastolic not below systolic"),
    (120, 80, 130, 70, "mean not between"),
    (120, 80, 75, 70, "mean not between"),
    (120, 80, 93, 0, "a value of 0"),
    (120, 0, 60, 70, "a value of 0"),
    (120, 80, 93, 351, "out of range"),
])
def test_an_error_0_result_that_is_no_reading_is_a_bad_frame(sys_, dia, mean, pr, why):
    p = SuntechParser()
    [f] = p.feed(s.bp_data_frame(sys_, dia, mean, pr) + s.status_frame("O"))[:1]
    assert isinstance(f, SuntechBadResult) and why in f.reason
    assert f.measurements() == [] and f.waveform() == []
    assert p.bad_frames == 1 and p.frames == 1  # the 'O' after it decodes as usual


@pytest.mark.parametrize("sys_, dia, mean, pr", [(118, 76, 90, 66), (81, 80, 80, 30),
                                                 (300, 40, 300, 350), (61, 40, 40, 200)])
def test_a_consistent_result_is_a_reading(sys_, dia, mean, pr):
    [f] = SuntechParser().feed(s.bp_data_frame(sys_, dia, mean, pr))
    assert isinstance(f, SuntechBpData)
    assert [m.value for m in f.measurements()] == [sys_, dia, mean, pr]


def test_the_emulators_no_result_answer_is_rejected():
    from devices.emulators.suntech import NO_RESULT

    assert NO_RESULT == bytes.fromhex("3e18" + "00" * 21 + "aa")  # 3E+18 = 0x56: cs 0xAA
    p = SuntechParser()
    [f] = p.feed(NO_RESULT)
    assert isinstance(f, SuntechBadResult) and p.bad_frames == 1


def test_checksum_failure_is_counted_and_dropped_and_the_next_frame_decodes():
    bad = bytearray(s.cuff_pressure_frame(120))
    bad[2] ^= 0x10  # one flipped bit
    p = SuntechParser()
    got = p.feed(bytes(bad) + s.status_frame("K"))
    assert [type(f) for f in got] == [SuntechStatus] and got[0].code == "K"
    assert p.bad_frames == 1 and p.frames == 1


def test_resync_after_garbage_with_false_starts():
    good = s.bp_data_frame(118, 76, 90, 66)
    p = SuntechParser()
    got = p.feed(b"\x00\x3e\x3e\x07\x3e" + good[:10])
    got += p.feed(good[10:] + b"\xff\x3e" + s.status_frame("O"))
    assert [type(f) for f in got] == [SuntechBpData, SuntechStatus]
    assert got[0].systolic == 118
    assert p.skipped_bytes == 7  # 00, 3E(len 3E), 3E(len 07), 07, 3E(len 3E); FF, 3E(len 3E)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_nor_give_impossible_values(data):
    p = SuntechParser()
    for f in p.feed(data):
        for m in f.measurements():
            hi = {"cuff_pressure": 350, "nibp_systolic": 300, "nibp_diastolic": 300,
                  "nibp_mean": 300, "nibp_pulse_rate": 350, "nibp_error": 255}[m.metric]
            assert m.value is not None and 0 <= m.value <= hi
    # a stale 3E 18 header may hold the next 24 bytes; two frames later the parser is back in step
    k = s.status_frame("K")
    tail = p.feed(k * 10)
    assert tail and tail[-1] == SuntechStatus("K")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([s.status_frame("O"), s.cuff_pressure_frame(140),
                                 s.bp_data_frame(120, 80, 93, 70), s.bp_data_frame(0, 0, 0, 0,
                                                                                   error_code=87)]),
                max_size=20), st.data())
def test_valid_streams_in_any_read_sizes_decode_completely(frames_, data):
    stream = b"".join(frames_)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    p = SuntechParser()
    got, last = [], 0
    for c in cuts + [len(stream)]:
        got += p.feed(stream[last:c])
        last = c
    assert len(got) == len(frames_) and p.bad_frames == 0 and p.skipped_bytes == 0
