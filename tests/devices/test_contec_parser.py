"""Contec protocol V7.0 parser against device-protocols.md section 3a."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.parsers.contec import (KEEP_ALIVE, PACKET_LENGTHS, START_REALTIME, STOP_REALTIME,
                                    ContecFeedback, ContecPacket, ContecParser, ContecRealtime,
                                    ContecText, command, decode_packet, encode_packet, restore)
from ketmonitor.samples import Condition

FINGER_OUT = bytes.fromhex("01 E9 94 C0 95 FF FF FF FF")
FINGER_IN = bytes.fromhex("01 E0 85 D5 9A BD E3 FF FF")


def realtime(d0=0x05, d1=85, d2=0x0A, pulse=61, spo2=99, pi=250) -> bytes:
    return encode_packet(0x01, [d0, d1, d2, pulse, spo2, pi & 0xFF, pi >> 8])


def values(frame):
    return {m.metric: m.value for m in frame.measurements()}


def test_worked_example_finger_in():
    p = ContecParser()
    [f] = p.feed(FINGER_IN)
    assert isinstance(f, ContecRealtime)
    assert (f.signal_strength, f.pleth, f.bar_graph) == (5, 85, 10)
    assert f.pi_invalid and f.perfusion_index is None
    assert (f.pulse_rate, f.spo2) == (61, 99)
    assert values(f) == {"spo2": 99, "pulse_rate": 61, "perfusion_index": None}
    assert f.waveform() == [85]
    assert f.conditions() == {Condition.PI_INVALID}  # a status bit, named
    flags = {m.metric: m.flags for m in f.measurements()}
    assert flags == {"spo2": frozenset(), "pulse_rate": frozenset(),
                     "perfusion_index": {Condition.PI_INVALID}}  # it is about PI alone
    assert p.summary() == {"frames": 1, "bad_frames": 0, "skipped_bytes": 0}


def test_worked_example_finger_out():
    [f] = ContecParser().feed(FINGER_OUT)
    assert f.probe_error and f.searching_too_long and not f.searching
    assert (f.signal_strength, f.pleth, f.bar_graph) == (4, 64, 5)
    assert values(f) == {"spo2": None, "pulse_rate": None, "perfusion_index": None}
    assert f.conditions() == {Condition.SENSOR_OFF, Condition.SEARCHING_TOO_LONG,
                              Condition.PI_INVALID}
    for m in f.measurements():
        assert Condition.SENSOR_OFF in m.flags and Condition.HELD not in m.flags


def test_high_byte_restores_bit_7_of_each_data_byte():
    raw = realtime(d0=0x83, d1=0xC0, pulse=200, spo2=95, pi=0x0380)
    assert raw[1] == 0x80 | 0b0101011  # d0, d1, pulse, pi low byte carry bit 7
    assert all(b & 0x80 for b in raw[1:])
    assert restore(raw) == [0x83, 0xC0, 0x0A, 200, 95, 0x80, 0x03]
    [f] = ContecParser().feed(raw)
    assert f.pulse_rate == 200 and f.pleth == 0x40 and f.searching and f.probe_error
    assert f.perfusion_index == pytest.approx(8.96)  # 0x0380 = 896, little-endian


@pytest.mark.parametrize("kw, metric", [
    ({"pulse": 0xFF}, "pulse_rate"),
    ({"spo2": 0x7F}, "spo2"),
    ({"pi": 0xFFFF}, "perfusion_index"),
    ({"d2": 0x1A, "pi": 420}, "perfusion_index"),  # PI invalid bit set over a plausible number
])
def test_every_missing_encoding_is_none(kw, metric):
    [f] = ContecParser().feed(realtime(**kw))
    got = values(f)
    assert got[metric] is None
    others = {k: v for k, v in got.items() if k != metric}
    assert all(v is not None for v in others.values())


@pytest.mark.parametrize("d0", [0x05, 0x85])  # probe error clear, and set
def test_pulse_0_and_spo2_0_are_missing_not_numbers(d0):
    # undocumented: no oximeter measures a pulse of 0 or a saturation of 0 %
    [f] = ContecParser().feed(realtime(d0=d0, pulse=0, spo2=0, pi=300))
    m = {x.metric: x for x in f.measurements()}
    assert (m["spo2"].value, m["pulse_rate"].value) == (None, None)
    assert m["spo2"].detail == m["pulse_rate"].detail == "the device sent 0"
    assert m["perfusion_index"].value == 3.0 and m["perfusion_index"].detail is None
    [g] = ContecParser().feed(realtime(pulse=1, spo2=1))
    assert values(g)["spo2"] == 1 and values(g)["pulse_rate"] == 1



@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=7, max_size=7))
def test_a_realtime_packet_decodes_one_way_whole_or_from_the_stream(d):
    # decode_packet and the parser's hot path share one decoder: same frame for any data bytes,
    # read from the data bytes restore() gives back
    raw = encode_packet(0x01, d)
    assert restore(raw) == d
    f = decode_packet(raw)
    assert isinstance(f, ContecRealtime)
    assert (f.signal_strength, f.pleth, f.bar_graph) == (d[0] & 0x0F, d[1] & 0x7F, d[2] & 0x0F)
    assert (f.probe_error, f.searching, f.searching_too_long, f.pulse_beep, f.pi_invalid) == (
        bool(d[0] & 0x80), bool(d[1] & 0x80), bool(d[0] & 0x10), bool(d[0] & 0x40),
        bool(d[2] & 0x10))
    assert f.pulse_rate == (None if d[3] in (0, 0xFF) else d[3])
    assert f.spo2 == (None if d[4] in (0, 0x7F) else d[4])
    pi = d[5] | d[6] << 8
    assert f.perfusion_index == (None if f.pi_invalid or pi == 0xFFFF else pi / 100)
    assert ContecParser().feed(raw) == ([f] if f.values_in_range() else [])

def test_pi_is_hundredths_of_a_percent():
    [f] = ContecParser().feed(realtime(pi=361))
    assert f.perfusion_index == pytest.approx(3.61) and not f.pi_invalid


def test_status_bits_are_named_conditions():
    [f] = ContecParser().feed(realtime(d0=0x15, d1=0x80 | 40))
    assert f.conditions() == {Condition.SEARCHING, Condition.SEARCHING_TOO_LONG}
    assert f.pleth == 40 and f.signal_strength == 5


def test_probe_error_with_values_marks_them_held():
    [f] = ContecParser().feed(realtime(d0=0x80, spo2=97, pulse=70))
    m = {x.metric: x for x in f.measurements()}
    assert m["spo2"].value == 97
    assert m["spo2"].flags == {Condition.SENSOR_OFF, Condition.HELD}


def test_host_commands():
    assert command(0xA1) == bytes.fromhex("7D 81 A1 80 80 80 80 80 80")
    assert START_REALTIME == command(0xA1)
    assert STOP_REALTIME == bytes.fromhex("7D 81 A2 80 80 80 80 80 80")
    assert KEEP_ALIVE == bytes.fromhex("7D 81 AF 80 80 80 80 80 80")
    assert restore(command(0xAA))[0] == 0xAA
    assert command(0x10) == bytes.fromhex("7D 80 90 80 80 80 80 80 80")  # bit 7 clear: high bit 0
    with pytest.raises(ValueError):
        command(0x100)


def test_identification_replies_and_feedback():
    data = (encode_packet(0x02, list(b"CMS50F\0")) + encode_packet(0x03, list(b"CONTEC\0"))
            + encode_packet(0x04, list(b"ABC_123")) + encode_packet(0x0B, [0xB5, 0x05]))
    model, vendor, dev_id, fb = ContecParser().feed(data)
    assert (model.kind, model.text) == ("model", "CMS50F")
    assert (vendor.kind, vendor.text) == ("vendor", "CONTEC")
    assert isinstance(dev_id, ContecText) and (dev_id.kind, dev_id.text) == ("device id", "ABC_123")
    assert isinstance(fb, ContecFeedback) and fb.command == 0xB5 and fb.unknown_command


@pytest.mark.parametrize("ptype", sorted(t for t in PACKET_LENGTHS if t not in (1, 2, 3, 4, 0x0B)))
def test_other_documented_types_are_skipped_by_their_length(ptype):
    length = PACKET_LENGTHS[ptype]
    data = [(0x11 * (i + 1)) & 0xFF for i in range(length - 2)]
    p = ContecParser()
    frames = p.feed(encode_packet(ptype, data) + FINGER_IN)
    assert isinstance(frames[0], ContecPacket) and frames[0].ptype == ptype
    assert list(frames[0].data) == data
    assert values(frames[1])["spo2"] == 99
    assert p.summary() == {"frames": 2, "bad_frames": 0, "skipped_bytes": 0}


def test_the_documented_lengths():
    assert PACKET_LENGTHS == {1: 9, 2: 9, 3: 9, 4: 9, 5: 9, 7: 8, 8: 8, 9: 6, 10: 4, 11: 4, 12: 2,
                              13: 3, 14: 3, 15: 8, 16: 3, 17: 9, 18: 8, 21: 9}


@pytest.mark.parametrize("ptype", [0x00, 0x06, 0x13, 0x14, 0x20, 0x7F])
def test_unknown_types_are_skipped_to_the_next_byte_with_bit_7_clear(ptype):
    unknown = bytes((ptype, 0x80, 0x81, 0xFF, 0xC3))
    p = ContecParser()
    frames = p.feed(unknown + FINGER_IN + unknown + FINGER_OUT)
    assert [values(f)["spo2"] for f in frames] == [99, None]
    assert p.unknown_packets == 2
    assert p.skipped_bytes == 2 * len(unknown) and p.bad_frames == 0


def test_resync_after_garbage_and_a_cut_packet():
    p = ContecParser()
    garbage = bytes((0xFF, 0x80, 0xAB))
    cut = FINGER_IN[:5]  # the next packet's type byte arrives before this one is complete
    frames = p.feed(garbage + cut + FINGER_IN + garbage)
    assert len(frames) == 1 and values(frames[0])["pulse_rate"] == 61
    assert p.bad_frames == 1
    assert p.skipped_bytes == 6


def test_out_of_range_values_are_bad_frames_not_numbers():
    p = ContecParser()
    assert p.feed(realtime(spo2=101)) == []
    assert p.feed(realtime(pi=10001)) == []  # 100.01 %
    assert p.bad_frames == 2 and p.frames == 0
    assert len(p.feed(realtime(spo2=100, pi=10000))) == 1


def test_byte_by_byte_feeding_gives_the_same_frames():
    stream = FINGER_IN + encode_packet(0x0C, []) + FINGER_OUT + encode_packet(0x04, list(b"X" * 7))
    whole = ContecParser().feed(stream)
    p = ContecParser()
    pieces = [f for b in stream for f in p.feed(bytes((b,)))]
    assert pieces == whole and len(whole) == 4


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise_nor_give_impossible_values(data):
    p = ContecParser()
    for f in p.feed(data):
        for m in f.measurements():
            if m.value is not None:
                lo, hi = {"spo2": (0, 100), "pulse_rate": (0, 350),
                          "perfusion_index": (0, 100)}[m.metric]
                assert lo <= m.value <= hi
        assert all(0 <= s <= 127 for s in f.waveform())
    # and it resynchronises: garbage may swallow at most one packet (no sync marker can prevent
    # a garbage type byte from taking the next bytes as its data); the one after is decoded
    frames = p.feed(FINGER_IN + FINGER_IN)
    assert frames and values(frames[-1])["spo2"] == 99
