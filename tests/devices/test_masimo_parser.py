"""Masimo ASCII 1 lines for each model, by key (device-protocols.md section 2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.emulators.masimo import MODELS, MasimoEmulator
from devices.parsers.base import Frame
from devices.parsers.masimo import BadLine, MasimoParser, parse_line, vital_value
from ketmonitor.samples import Condition

RAD8 = (b"01/22/13 10:31:48 SN=0000071642 SPO2=097% BPM=069 PI=01.86% SPCO=--.-% SPMET=--.-% "
        b"DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800\r\n")
RADICAL7 = (b"03/14/26 09:00:01 SN=0000123456 SPO2=100% BPM=142 PI=10.50% SPCO=--.-% SPMET=--.-% "
            b"DESAT=-- PIDELTA=+-- PVI=--- ALARM=000000 EXC=000800\r\n")
RAINBOW = (b"03/14/26 09:00:01 SN=0000123456 SPO2=094% BPM=088 PI=02.20% SPCO=01.0% SPMET=00.8% "
           b"SPHB=13.4 SPOC=19.0 RESVD=--- DESAT=-- PIDELTA=+-- PVI=014 ALARM=00000000 "
           b"EXC=000800 EXC1=00000000\r\n")
RADICAL5 = b"03/14/26 09:00:01 SPO2=088% BPM=055 PI=00.40% ALARM=0000 EXC=000804\r\n"


def decode(data: bytes, parser: MasimoParser | None = None):
    p = parser or MasimoParser()
    frames = p.feed(data)
    return p, frames, [(m.metric, m.value) for f in frames for m in f.measurements()]


@pytest.mark.parametrize("line, expected", [
    (RAD8, [("spo2", 97), ("pulse_rate", 69), ("perfusion_index", 1.86)]),
    (RADICAL7, [("spo2", 100), ("pulse_rate", 142), ("perfusion_index", 10.5)]),
    (RAINBOW, [("spo2", 94), ("pulse_rate", 88), ("perfusion_index", 2.2)]),
    (RADICAL5, [("spo2", 88), ("pulse_rate", 55), ("perfusion_index", 0.4)]),
])
def test_each_model_line(line, expected):
    p, frames, got = decode(line)
    assert got == expected
    assert p.summary() == {"frames": 1, "bad_frames": 0, "skipped_bytes": 0}


def test_device_time_kept_and_extra_keys():
    _, frames, _ = decode(RAINBOW)
    assert frames[0].device_time == "2026-03-14T09:00:01"
    assert frames[0].extra["SPHB"] == "13.4" and frames[0].extra["PVI"] == "014"


def test_tokens_are_read_by_key_not_position():
    shuffled = b"01/22/13 10:31:48 EXC=000800 PI=01.86% BPM=069 ALARM=0000 SPO2=097%\r\n"
    assert decode(shuffled)[2] == decode(RAD8)[2]


@pytest.mark.parametrize("text", ["---%", "---", "--.--%", "--.--", "+--", "----", "--.-%"])
def test_every_dash_form_is_missing(text):
    assert vital_value(text) is None


@pytest.mark.parametrize("text, value", [("098%", 98), ("98", 98), ("03.60%", 3.6), ("3.6", 3.6),
                                         ("100%", 100), ("000", 0)])
def test_values_with_and_without_percent(text, value):
    assert vital_value(text) == value


def test_missing_line_from_each_model_gives_none_values():
    line = b"03/14/26 09:00:01 SPO2=---% BPM=--- PI=--.--% ALARM=0000 EXC=000001\r\n"
    _, frames, got = decode(line)
    assert got == [("spo2", None), ("pulse_rate", None), ("perfusion_index", None)]
    assert Condition.SENSOR_DISCONNECTED in frames[0].conditions()
    no_percent = b"03/14/26 09:00:01 SPO2=--- BPM=---- PI=--.-- ALARM=0000 EXC=000020\r\n"
    assert [v for _m, v in decode(no_percent)[2]] == [None, None, None]


def test_sensor_off_line_with_held_values_is_flagged_held():
    line = b"03/14/26 09:00:01 SPO2=097% BPM=071 PI=02.00% ALARM=0000 EXC=000020\r\n"
    _, frames, got = decode(line)
    assert got == [("spo2", 97), ("pulse_rate", 71), ("perfusion_index", 2.0)]
    for m in frames[0].measurements():
        assert {Condition.HELD, Condition.SENSOR_OFF} <= m.flags
        assert "sensor off" in m.detail


def test_held_only_on_values_present():
    line = b"03/14/26 09:00:01 SPO2=097% BPM=--- PI=--.--% ALARM=0000 EXC=000020\r\n"
    ms = decode(line)[1][0].measurements()
    assert Condition.HELD in ms[0].flags and Condition.HELD not in ms[1].flags


@pytest.mark.parametrize("bit, cond", [
    (0x001, Condition.SENSOR_DISCONNECTED), (0x002, Condition.SENSOR_FAULT),
    (0x004, Condition.LOW_PERFUSION), (0x008, Condition.SEARCHING),
    (0x010, Condition.INTERFERENCE), (0x020, Condition.SENSOR_OFF),
    (0x040, Condition.AMBIENT_LIGHT), (0x080, Condition.SENSOR_FAULT),
    (0x400, Condition.LOW_SIGNAL_QUALITY), (0x1000, Condition.SENSOR_DISCONNECTED),
    (0x2000, Condition.SENSOR_FAULT), (0x4000, Condition.SENSOR_FAULT),
    (0x8000, Condition.SENSOR_FAULT), (0x10000, Condition.SENSOR_FAULT),
    (0x20000, Condition.SENSOR_CALIBRATING), (0x40000, Condition.SENSOR_FAULT),
])
def test_exc_bits(bit, cond):
    line = f"03/14/26 09:00:01 SPO2=097% BPM=071 ALARM=0000 EXC={bit:06X}\r\n".encode()
    assert decode(line)[1][0].conditions() == {cond}


def test_full_set_mode_is_normal():
    assert decode(RAD8)[1][0].conditions() == frozenset()


@pytest.mark.parametrize("bit, cond", [
    (0x01, Condition.DEVICE_SPO2_HIGH), (0x02, Condition.DEVICE_SPO2_LOW),
    (0x04, Condition.DEVICE_PR_HIGH), (0x08, Condition.DEVICE_PR_LOW),
    (0x10, Condition.DEVICE_ALARM), (0x20, Condition.DEVICE_ALARM_SILENCED),
    (0x40, Condition.LOW_BATTERY),
])
def test_alarm_bits(bit, cond):
    line = f"03/14/26 09:00:01 SPO2=097% BPM=071 ALARM={bit:04X} EXC=000800\r\n".encode()
    assert decode(line)[1][0].conditions() == {cond}


@pytest.mark.parametrize("bad", [
    b"03/14/26 09:00:01 SPO2=09x% BPM=071\r\n",  # unreadable value
    b"03/14/26 09:00:01 SPO2=097% SPO2=098%\r\n",  # repeated key
    b"03/14/26 09:00:01 SPO2 097%\r\n",  # not KEY=VALUE
    b"13/45/26 09:00:01 SPO2=097%\r\n",  # impossible date
    b"03/14/26 09:00:01 SN=1 ALARM=0000 EXC=000800\r\n",  # no vital at all
    b"03/14/26 09:00:01 SPO2=097% EXC=0G0800\r\n",  # bad hex
    b"03/14/26 09:00:01 SPO2=\x8197%\r\n",  # non-ASCII
    b"03/14/26 09:00:01 SPO2=101% BPM=071\r\n",  # SpO2 above 100 %: out of range
])
def test_bad_lines_are_counted_and_dropped(bad):
    p, frames, got = decode(bad + RAD8)
    assert got == decode(RAD8)[2]
    assert p.bad_frames == 1 and p.frames == 1


def test_line_split_across_reads_and_lf_only_terminators():
    p = MasimoParser()
    frames = p.feed(RAD8[:20]) + p.feed(RAD8[20:60]) + p.feed(RAD8[60:])
    assert len(frames) == 1
    assert len(p.feed(RAD8.replace(b"\r\n", b"\n") * 2)) == 2


def test_runaway_garbage_without_terminator_is_skipped_then_resync():
    p = MasimoParser()
    assert p.feed(b"x" * 2000) == []
    assert p.skipped_bytes >= 2000 - 512 and p.buffered <= 513
    frames = p.feed(b"\r\n" + RAD8)
    assert len(frames) == 1


def test_empty_lines_are_not_errors():
    assert parse_line("   ") is None


@pytest.mark.parametrize("model", MODELS)
def test_emulator_lines_decode(model):
    emu = MasimoEmulator("probe-off", seed=3, model=model, t0=300 + 600 - 3, hold=2.0)
    data = emu.render(8.0)  # across the probe-off moment at 10 min after the dose
    p, frames, _ = decode(data)
    assert p.bad_frames == 0 and len(frames) == 8
    held = [f for f in frames if f.sensor_absent and f.values["spo2"] is not None]
    dashes = [f for f in frames if f.sensor_absent and f.values["spo2"] is None]
    assert held and dashes  # the display hold first, then dashes
    assert all(Condition.HELD in m.flags for f in held for m in f.measurements())


def general(text: str):
    """What the general path (every rule, token by token) makes of one line, with the parser
    base's range check as the base class does it (through measurements())."""
    try:
        line = parse_line(text)
    except BadLine:
        return "bad"
    if line is not None and not Frame.values_in_range(line):
        return "bad"
    return line


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.floats(0, 0.999), st.sampled_from(
    list("0123456789 =%-.+:/ABEXZ\x01\x7f") + ["", "  "])), max_size=4))
def test_the_learned_layout_reads_every_line_as_the_general_path_does(model, edits):
    clean = MasimoEmulator(seed=5, model=model, t0=400).render(3.0).decode().split("\r\n")[:3]
    text = clean[2]
    for where, char in edits:  # damage the third line: replace a character, or drop it
        k = int(where * len(text))
        text = text[:k] + char + text[k + 1:]
    p = MasimoParser()
    assert len(p.feed(f"{clean[0]}\r\n{clean[1]}\r\n".encode())) == 2  # the layout is learned
    assert p._layout is not None
    got = p.feed(text.encode("latin-1") + b"\r\n")
    expected = general(text)
    if expected == "bad":
        assert got == [] and p.bad_frames == 1
    elif expected is None:
        assert got == [] and p.bad_frames == 0
    else:
        assert got == [expected] and p.bad_frames == 0
