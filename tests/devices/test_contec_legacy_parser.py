"""Contec legacy 5-byte stream against device-protocols.md section 3b."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.parsers.contec_legacy import ContecLegacyParser, encode
from ketmonitor.samples import Condition


def values(frame):
    return {m.metric: m.value for m in frame.measurements()}


def test_bytes_by_hand():
    # byte 1: 1 | beep | dropping | too long | signal 7 ; byte 3: pulse bit 7 set, bar 9
    pkt = bytes((0x80 | 0x40 | 0x20 | 0x07, 0x55, 0x40 | 0x09, 0x48, 0x60))
    [f] = ContecLegacyParser().feed(pkt)
    assert (f.signal_strength, f.pulse_beep, f.spo2_dropping) == (7, True, True)
    assert not f.searching_too_long
    assert (f.pleth, f.bar_graph, f.probe_error, f.searching) == (0x55, 9, False, False)
    assert f.pulse_rate == 0x80 | 0x48 == 200  # pulse rate bit 7 rides in byte 3 bit 6
    assert f.spo2 == 96
    assert values(f) == {"spo2": 96, "pulse_rate": 200}
    assert f.waveform() == [0x55]


def test_status_bits_are_named_conditions():
    [f] = ContecLegacyParser().feed(bytes((0x80 | 0x10, 10, 0x40 | 0x10 | 0x20, 0x7F, 0x7F)))
    assert f.conditions() == {Condition.SENSOR_OFF, Condition.SEARCHING,
                              Condition.SEARCHING_TOO_LONG}
    assert values(f) == {"spo2": None, "pulse_rate": None}


@pytest.mark.parametrize("kw, metric", [
    ({"pulse_rate": None, "spo2": 97}, "pulse_rate"),  # 255
    ({"pulse_rate": 70, "spo2": None}, "spo2"),  # 127
    ({"pulse_rate": 0, "spo2": 97, "probe_error": True}, "pulse_rate"),
    ({"pulse_rate": 70, "spo2": 0, "probe_error": True}, "spo2"),
])
def test_missing_forms(kw, metric):
    [f] = ContecLegacyParser().feed(encode(**kw))
    assert values(f)[metric] is None
    assert all(v is not None for k, v in values(f).items() if k != metric)


def test_zero_is_missing_even_without_probe_error_and_held_values_are_flagged():
    # undocumented: no oximeter measures a pulse of 0 or a saturation of 0 %
    [f] = ContecLegacyParser().feed(encode(pulse_rate=0, spo2=0))
    assert values(f) == {"spo2": None, "pulse_rate": None}
    assert {m.detail for m in f.measurements()} == {"the device sent 0"}
    [g] = ContecLegacyParser().feed(encode(pulse_rate=66, spo2=95, probe_error=True))
    assert all(m.flags == {Condition.SENSOR_OFF, Condition.HELD} for m in g.measurements())
    assert all(m.detail is None for m in g.measurements())


def test_spo2_dropping_is_a_condition_on_the_spo2_value():
    [f] = ContecLegacyParser().feed(encode(pulse_rate=70, spo2=91, spo2_dropping=True))
    assert f.conditions() == {Condition.SPO2_DROPPING}
    assert {m.metric: m.flags for m in f.measurements()} == {
        "spo2": {Condition.SPO2_DROPPING}, "pulse_rate": frozenset()}


def test_out_of_range_spo2_is_a_bad_frame():
    p = ContecLegacyParser()
    assert p.feed(bytes((0x80, 0, 0, 60, 101))) == []
    assert p.summary() == {"frames": 0, "bad_frames": 1, "skipped_bytes": 0}


def test_resync_after_garbage_and_cut_packets():
    good = encode(pulse_rate=72, spo2=98, pleth=33)
    p = ContecLegacyParser()
    frames = p.feed(b"\x01\x02\x03" + good[:3] + good + b"\x7f" + good)
    assert [values(f)["pulse_rate"] for f in frames] == [72, 72]
    assert p.bad_frames == 1 and p.skipped_bytes == 4


def test_split_reads():
    stream = b"".join(encode(pulse_rate=60 + i, spo2=90 + i % 10, pleth=i) for i in range(20))
    p = ContecLegacyParser()
    got = []
    for i in range(0, len(stream), 3):
        got += p.feed(stream[i:i + 3])
    assert [f.pulse_rate for f in got] == list(range(60, 80))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_nor_give_impossible_values(data):
    p = ContecLegacyParser()
    for f in p.feed(data):
        assert f.spo2 is None or 0 <= f.spo2 <= 100
        assert f.pulse_rate is None or 0 <= f.pulse_rate <= 254
    good = encode(pulse_rate=61, spo2=99)
    assert values(p.feed(good + good)[-1]) == {"spo2": 99, "pulse_rate": 61}
