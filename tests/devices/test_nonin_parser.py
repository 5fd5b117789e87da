"""Nonin formats #2, #7, #8 against the reference tables (device-protocols.md section 1)."""

from __future__ import annotations

import pytest

from devices.parsers.nonin import (ACK, NAK, NoninFrame, NoninParser, NoninRecord, NoninReply,
                                   hr9, set_format_command)
from ketmonitor.samples import Condition


def frame2(index: int, float_byte: int, *, pleth: int = 100, status_bits: int = 0) -> bytes:
    status = 0x80 | status_bits | (0x01 if index == 0 else 0)
    body = bytes((0x01, status, pleth, float_byte))
    return body + bytes((sum(body) & 0xFF,))


def frame7(index: int, float_byte: int, *, pleth: int = 0x9000, status_bits: int = 0) -> bytes:
    status = 0x80 | status_bits | (0x01 if index == 0 else 0)
    body = bytes((status, pleth >> 8, pleth & 0xFF, float_byte))
    return body + bytes((sum(body) & 0xFF,))


def packet(fmt: int, floats: dict[int, int], **kw) -> bytes:
    make = frame2 if fmt == 2 else frame7
    return b"".join(make(i, floats.get(i, 0), **kw) for i in range(25))


def hr_floats(hr: int, spo2: int) -> dict[int, int]:
    return {0: (hr >> 7) & 0x03, 1: hr & 0x7F, 2: spo2}


def values(frames) -> list[tuple[str, float | None]]:
    return [(m.metric, m.value) for f in frames for m in f.measurements()]


def test_checksum_is_sum_of_first_four_bytes():
    # worked by hand: 01 + 81 + 64 + 00 = E6
    assert frame2(0, 0) == bytes.fromhex("01816400e6")


def test_set_format_command_bytes():
    assert set_format_command(2) == bytes.fromhex("027002020203")
    assert set_format_command(7) == bytes.fromhex("027002020703")
    assert set_format_command(8) == bytes.fromhex("027002020803")
    with pytest.raises(ValueError):
        set_format_command(1)  # format #1 is not documented: never guess it


@pytest.mark.parametrize("fmt", [2, 7])
@pytest.mark.parametrize("hr", [0, 61, 127, 128, 200, 255, 300, 350])
def test_nine_bit_heart_rate(fmt, hr):
    p = NoninParser(fmt)
    frames = p.feed(packet(fmt, hr_floats(hr, 97)))
    assert values(frames) == [("pulse_rate", hr), ("spo2", 97)]
    assert p.summary() == {"frames": 25, "bad_frames": 0, "skipped_bytes": 0}


def test_hr_above_127_is_not_shifted_by_eight():
    # MSB=1, LSB=0x48: correct 9-bit value 200; the known bug ((msb << 8) | lsb) would give 328
    assert hr9(0x01, 0x48) == 200
    frames = NoninParser(2).feed(packet(2, {0: 0x01, 1: 0x48, 2: 95}))
    assert values(frames)[0] == ("pulse_rate", 200)


@pytest.mark.parametrize("fmt", [2, 7])
def test_missing_hr_511_and_spo2_127(fmt):
    frames = NoninParser(fmt).feed(packet(fmt, hr_floats(511, 127), status_bits=0x08))
    got = [m for f in frames for m in f.measurements()]
    assert [(m.metric, m.value) for m in got] == [("pulse_rate", None), ("spo2", None)]
    assert all(Condition.SENSOR_OFF in m.flags for m in got)


def test_pulse_rate_outside_physical_range_is_dropped_as_bad_frame():
    p = NoninParser(2)
    frames = p.feed(packet(2, hr_floats(400, 97)))  # 400 bpm: encodable, impossible
    assert values(frames) == []
    assert p.bad_frames == 1 and p.frames == 24


def test_format2_pleth_byte_equal_to_01_does_not_confuse_sync():
    # frames whose pleth byte is 0x01 look like frame starts; sync needs checksum+bit7+SYNC
    data = packet(2, hr_floats(72, 98), pleth=0x01) * 2
    p = NoninParser(2)
    frames = p.feed(b"\x01\x01\x01" + data)
    assert [f.pleth for f in frames] == [1] * 50
    assert values(frames) == [("pulse_rate", 72), ("spo2", 98)] * 2
    assert p.skipped_bytes == 3 and p.bad_frames == 0


def test_format7_pleth_msb_above_127_is_not_taken_for_status():
    # pleth MSB 0x81 has bit 7 and bit 0 set, like a STATUS with SYNC; the checksum decides
    data = packet(7, hr_floats(80, 99), pleth=0x8181)
    p = NoninParser(7)
    frames = p.feed(data[2:] + data)  # start mid-frame
    assert [f.pleth for f in frames] == [0x8181] * 25
    assert values(frames) == [("pulse_rate", 80), ("spo2", 99)]
    assert p.bad_frames == 0 and p.skipped_bytes == len(data) - 2


def test_no_sync_on_bit7_alone():
    # a packet missing its SYNC frame is never decoded: frames 2..25 alone are skipped
    data = packet(2, hr_floats(70, 97))
    p = NoninParser(2)
    assert p.feed(data[5:]) == []
    assert p.skipped_bytes + p.buffered == len(data) - 5 and p.buffered < 5


def test_checksum_failure_counts_bad_frame_and_resyncs_at_next_packet():
    good = packet(2, hr_floats(70, 97))
    broken = bytearray(good)
    broken[5 * 4 + 4] ^= 0xFF  # checksum of frame 5
    p = NoninParser(2)
    frames = p.feed(bytes(broken) + good)
    assert p.bad_frames == 1
    assert values(frames) == [("pulse_rate", 70), ("spo2", 97)] * 2
    assert len(frames) == 4 + 25  # frames 1-4 of the broken packet, then the whole good one


def test_status_bits_become_named_conditions():
    p = NoninParser(2)
    bits = {0x40: Condition.SENSOR_DISCONNECTED, 0x20: Condition.ARTIFACT,
            0x10: Condition.OUT_OF_TRACK, 0x08: Condition.SENSOR_OFF,
            0x04: Condition.LOW_PERFUSION, 0x06: Condition.MARGINAL_PERFUSION}
    for bit, cond in bits.items():
        frames = p.feed(packet(2, hr_floats(70, 97), status_bits=bit))
        assert all(cond in f.conditions() for f in frames), hex(bit)
    frames = p.feed(packet(2, hr_floats(70, 97), status_bits=0x02))  # green: good perfusion
    assert not any(f.conditions() for f in frames)


def test_stat2_low_battery_and_display_values():
    floats = {**hr_floats(70, 97), 7: 0x01 | 0x20, 8: 96, 19: 0x01, 20: 0x05}
    frames = NoninParser(7).feed(packet(7, floats))
    assert Condition.LOW_BATTERY in frames[7].conditions()
    assert frames[8].display_spo2 == 96
    assert frames[20].display_hr == 133  # display HR is 9-bit too


def test_byte_by_byte_equals_bulk():
    data = packet(2, hr_floats(150, 93)) * 3
    bulk = NoninParser(2).feed(data)
    p = NoninParser(2)
    one = [f for b in data for f in p.feed(bytes((b,)))]
    assert one == bulk


def test_ack_and_nak_after_set_format():
    p = NoninParser(2)
    p.expect_reply()
    frames = p.feed(bytes((ACK,)) + packet(2, hr_floats(70, 97)))
    assert isinstance(frames[0], NoninReply) and frames[0].ack
    assert isinstance(frames[1], NoninFrame)
    p8 = NoninParser(8)
    p8.expect_reply()
    assert p8.feed(bytes((NAK,))) == [NoninReply(False)]
    assert NoninParser(8).feed(bytes((NAK,))) == []  # no command sent: a stray byte is skipped


# -- format #8 --------------------------------------------------------------------------------------
def record8(hr: int, spo2: int, status_bits: int = 0, status2: int = 0x20) -> bytes:
    return bytes((0x80 | status_bits | ((hr >> 7) & 0x03), hr & 0x7F, spo2, status2))


PRE = record8(60, 98)  # #8 syncs on two records followed by a third STATUS byte
NEXT = b"\x80"


def decode8(*records: bytes):
    """Frames for ``records`` in a stream that is in sync."""
    frames = NoninParser(8).feed(PRE + b"".join(records) + NEXT)
    assert values(frames[:1]) == [("pulse_rate", 60), ("spo2", 98)]
    return frames[1:]


def test_format8_sync_needs_two_records_and_a_third_status_byte():
    p = NoninParser(8)
    assert p.feed(record8(70, 97) + record8(71, 98)) == []
    assert values(p.feed(NEXT)) == [("pulse_rate", 70), ("spo2", 97), ("pulse_rate", 71),
                                    ("spo2", 98)]
    # once in sync, each record is decoded as soon as its four bytes are in
    assert values(p.feed(record8(72, 99)[1:])) == [("pulse_rate", 72), ("spo2", 99)]


def test_format8_never_reads_format2_frames_as_records():
    from devices.emulators.nonin import NoninEmulator

    p = NoninParser(8)
    assert p.feed(NoninEmulator(seed=1, format=2).render(10.0)) == []


def test_format8_record_with_hr_above_127():
    frames = decode8(record8(250, 91), record8(61, 99))
    assert values(frames) == [("pulse_rate", 250), ("spo2", 91), ("pulse_rate", 61), ("spo2", 99)]
    assert all(isinstance(f, NoninRecord) for f in frames)


def test_format8_missing_values():
    frames = decode8(record8(511, 127, status2=0x08))
    assert values(frames) == [("pulse_rate", None), ("spo2", None)]


def test_format8_sensor_alarm_with_values_is_held():
    frames = decode8(record8(88, 97, status2=0x08))
    for m in frames[0].measurements():
        assert m.value is not None
        assert {Condition.HELD, Condition.SENSOR_OFF} <= m.flags


def test_format8_status_bits():
    frames = decode8(record8(70, 97, 0x40 | 0x20 | 0x10 | 0x04, 0x01))
    assert frames[0].conditions() == {Condition.SENSOR_DISCONNECTED, Condition.OUT_OF_TRACK,
                                      Condition.LOW_PERFUSION, Condition.ARTIFACT,
                                      Condition.LOW_BATTERY}
    frames = decode8(record8(70, 97, 0x08))
    assert frames[0].conditions() == {Condition.MARGINAL_PERFUSION}


def test_format8_resyncs_after_a_cut_record():
    p = NoninParser(8)
    frames = p.feed(PRE + b"\x12\x34" + record8(70, 97)[:2] + record8(71, 98) + record8(72, 99)
                    + NEXT)
    assert values(frames) == [("pulse_rate", 71), ("spo2", 98), ("pulse_rate", 72), ("spo2", 99)]
    assert p.bad_frames == 1  # the record cut short
    assert p.skipped_bytes == 4 + 2  # the unconfirmed PRE and the two stray bytes


def test_unknown_format_rejected():
    with pytest.raises(ValueError):
        NoninParser(13)
