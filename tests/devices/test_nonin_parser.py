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


def closed(fmt: int, *packets: bytes) -> bytes:
    """``packets`` followed by the next packet's SYNC frame, which confirms the last of them
    (a packet's values go out only once the frame after its 25th proves none was lost)."""
    return b"".join(packets) + (frame2 if fmt == 2 else frame7)(0, 0)


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
    frames = p.feed(closed(fmt, packet(fmt, hr_floats(hr, 97))))
    assert values(frames) == [("pulse_rate", hr), ("spo2", 97)]
    assert p.summary() == {"frames": 26, "bad_frames": 0, "skipped_bytes": 0}


def test_hr_above_127_is_not_shifted_by_eight():
    # MSB=1, LSB=0x48: correct 9-bit value 200; the known bug ((msb << 8) | lsb) would give 328
    assert hr9(0x01, 0x48) == 200
    frames = NoninParser(2).feed(closed(2, packet(2, {0: 0x01, 1: 0x48, 2: 95})))
    assert values(frames)[0] == ("pulse_rate", 200)


@pytest.mark.parametrize("fmt", [2, 7])
def test_missing_hr_511_and_spo2_127(fmt):
    frames = NoninParser(fmt).feed(closed(fmt, packet(fmt, hr_floats(511, 127), status_bits=0x08)))
    got = [m for f in frames for m in f.measurements()]
    assert [(m.metric, m.value) for m in got] == [("pulse_rate", None), ("spo2", None)]
    assert all(Condition.SENSOR_OFF in m.flags for m in got)


@pytest.mark.parametrize("hr, spo2", [(400, 97), (510, 97), (351, 97), (80, 101), (80, 126)])
def test_values_outside_physical_range_are_dropped_but_not_the_pleth(hr, spo2):
    # 351..510 bpm and SpO2 101..126 are encodable and impossible: the packet's values are
    # counted as one bad frame and dropped; its 25 pleth samples (each frame checksummed) stay
    p = NoninParser(2)
    frames = p.feed(closed(2, packet(2, hr_floats(hr, spo2), pleth=77)))
    assert values(frames) == []
    assert [f.pleth for f in frames] == [77] * 25 + [100]
    assert p.bad_frames == 1 and p.frames == 26


def test_format2_pleth_byte_equal_to_01_does_not_confuse_sync():
    # frames whose pleth byte is 0x01 look like frame starts; sync needs checksum+bit7+SYNC
    data = closed(2, packet(2, hr_floats(72, 98), pleth=0x01) * 2)
    p = NoninParser(2)
    frames = p.feed(b"\x01\x01\x01" + data)
    assert [f.pleth for f in frames] == [1] * 50 + [100]
    assert values(frames) == [("pulse_rate", 72), ("spo2", 98)] * 2
    assert p.skipped_bytes == 3 and p.bad_frames == 0


def test_format7_pleth_msb_above_127_is_not_taken_for_status():
    # pleth MSB 0x81 has bit 7 and bit 0 set, like a STATUS with SYNC; the checksum decides
    data = packet(7, hr_floats(80, 99), pleth=0x8181)
    p = NoninParser(7)
    frames = p.feed(closed(7, data[2:] + data))  # start mid-frame
    assert [f.pleth for f in frames] == [0x8181] * 25 + [0x9000]
    assert values(frames) == [("pulse_rate", 80), ("spo2", 99)]
    assert p.bad_frames == 0 and p.skipped_bytes == len(data) - 2


def test_no_sync_on_bit7_alone():
    # a packet missing its SYNC frame is never decoded: frames 2..25 alone are skipped
    data = packet(2, hr_floats(70, 97))
    p = NoninParser(2)
    assert p.feed(data[5:]) == []
    assert p.skipped_bytes + p.buffered == len(data) - 5 and p.buffered < 5


def test_checksum_failure_counts_bad_frame_and_resyncs_at_next_packet():
    good = packet(2, hr_floats(71, 98))
    broken = bytearray(packet(2, {**hr_floats(70, 97), 7: 0x01, 8: 96}))
    broken[5 * 4 + 4] ^= 0xFF  # checksum of frame 5: a byte replaced, as line noise does
    p = NoninParser(2)
    frames = p.feed(closed(2, bytes(broken) + good))
    assert p.bad_frames == 1
    assert len(frames) == 4 + 25 + 1  # frames 1-4 of the broken packet, the good one, its closer
    # the next packet starts exactly 125 bytes after the broken one: no byte was lost or added,
    # so frames 1-4 sat at their places and their values hold; STAT2 (frame 8) and the display
    # values came after the damage and are not known
    assert values(frames) == [("pulse_rate", 70), ("spo2", 97), ("pulse_rate", 71), ("spo2", 98)]
    # found by hunting, that start must be followed by two more frames before it is believed
    # (five bytes can pass for a SYNC frame by chance): the values ride on its frame 3
    carrier = next(f for f in frames if f.measurements())
    assert carrier is frames[4 + 2] and carrier.index == 2
    assert Condition.LOW_BATTERY not in carrier.conditions() and carrier.display_spo2 is None


def test_a_damaged_packet_is_not_believed_if_the_start_after_it_is_not_followed():
    broken = bytearray(packet(2, hr_floats(70, 97)))
    broken[5 * 4 + 4] ^= 0xFF  # frame 5 damaged
    after = bytearray(packet(2, hr_floats(71, 98)))
    after[5 * 1 + 4] ^= 0xFF  # and frame 2 of the next packet
    p = NoninParser(2)
    frames = p.feed(closed(2, bytes(broken) + bytes(after) + packet(2, hr_floats(72, 99))))
    assert values(frames) == [("pulse_rate", 72), ("spo2", 99)]
    assert p.bad_frames == 2


def test_damage_in_frames_1_to_3_costs_the_packets_values():
    broken = bytearray(packet(2, hr_floats(70, 97)))
    broken[5 * 1 + 2] ^= 0x40  # the pleth byte of frame 2
    p = NoninParser(2)
    frames = p.feed(closed(2, bytes(broken) + packet(2, hr_floats(71, 98))))
    assert values(frames) == [("pulse_rate", 71), ("spo2", 98)] and p.bad_frames == 1


@pytest.mark.parametrize("damage", ["byte lost", "byte added", "frame lost too"])
def test_damage_that_moves_the_next_packet_start_costs_the_packets_values(damage):
    broken = bytearray(packet(2, hr_floats(70, 97)))
    if damage == "byte lost":
        del broken[5 * 6 + 1]
    elif damage == "byte added":
        broken.insert(5 * 6 + 1, 0x33)
    else:
        broken[5 * 6 + 4] ^= 0xFF
        del broken[5 * 12:5 * 13]
    p = NoninParser(2)
    frames = p.feed(closed(2, bytes(broken) + packet(2, hr_floats(71, 98))))
    assert values(frames) == [("pulse_rate", 71), ("spo2", 98)]
    assert p.bad_frames >= 1


def test_status_bits_become_named_conditions():
    p = NoninParser(2)
    bits = {0x40: Condition.SENSOR_DISCONNECTED, 0x20: Condition.ARTIFACT,
            0x10: Condition.OUT_OF_TRACK, 0x08: Condition.SENSOR_OFF,
            0x04: Condition.LOW_PERFUSION, 0x06: Condition.MARGINAL_PERFUSION}
    for bit, cond in bits.items():
        frames = p.feed(packet(2, hr_floats(70, 97), status_bits=bit))
        assert all(cond in f.conditions() for f in frames), hex(bit)
    frames = p.feed(packet(2, hr_floats(70, 97), status_bits=0x02))  # green: good perfusion
    # (the first frame carries the previous packet's values and their flags)
    assert not any(f.conditions() for f in frames[1:])
    assert all(cond in m.flags for m in frames[0].measurements())


def test_stat2_low_battery_smartpoint_and_display_values():
    floats = {**hr_floats(70, 97), 7: 0x01 | 0x20, 8: 96, 19: 0x01, 20: 0x05}
    frames = NoninParser(7).feed(closed(7, packet(7, floats)))
    # all of them once the packet is known whole, on the frame that closes it
    assert not any(f.conditions() or f.display_spo2 or f.display_hr for f in frames[:25])
    last = frames[25]
    assert {Condition.LOW_BATTERY, Condition.SMARTPOINT} <= last.conditions()
    assert all({Condition.LOW_BATTERY, Condition.SMARTPOINT} <= m.flags
               for m in last.measurements())
    assert last.display_spo2 == 96
    assert last.display_hr == 133  # display HR is 9-bit too
    frames = NoninParser(7).feed(closed(7, packet(7, {**floats, 7: 0})))
    assert not frames[25].conditions()


def test_values_go_out_one_frame_after_the_packet_ends():
    # latency: the packet's last frame arrives 24/75 s after its first; the values follow with
    # the next frame (1/75 s later), i.e. 1/3 s after frame 1, 23 frames later than frame 3 was
    p = NoninParser(2)
    got = [p.feed(f) for f in (frame2(i, hr_floats(70, 97).get(i, 0)) for i in range(25))]
    assert [len(g) for g in got] == [1] * 25 and values(sum(got, [])) == []
    [closer] = p.feed(frame2(0, 0))
    assert values([closer]) == [("pulse_rate", 70), ("spo2", 97)] and closer.index == 0


def test_lost_frames_never_shift_the_float_bytes():
    # frame 2 (HR LSB) is lost whole: by the running count the firmware revision (0x33 = 51)
    # would land where SpO2 belongs. The next SYNC arrives early, which shows the loss.
    first = packet(2, {**hr_floats(70, 97), 3: 0x33})
    p = NoninParser(2)
    frames = p.feed(closed(2, first[:5] + first[10:], packet(2, hr_floats(71, 98))))
    assert values(frames) == [("pulse_rate", 71), ("spo2", 98)]
    assert p.bad_frames == 1
    assert len(frames) == 24 + 25 + 1  # every checksummed frame's pleth still goes out


def test_a_lost_frame_and_a_lost_sync_are_both_caught():
    # frame 6 of one packet and the SYNC frame of the next are lost: 25 frames then end without
    # a SYNC where one is due, and positions 6..25 of the first packet are wrong (STAT2 would
    # read the display SpO2 97 = 0x61: low battery). Nothing of that packet may go out.
    floats = {**hr_floats(70, 97), 7: 0x20, 8: 97}
    first, second = packet(2, floats), packet(2, hr_floats(71, 98))
    p = NoninParser(2)
    frames = p.feed(first[:25] + first[30:] + second[5:] + closed(2, packet(2, floats)))
    assert values(frames) == [("pulse_rate", 70), ("spo2", 97)]  # the last packet only
    assert not any(Condition.LOW_BATTERY in f.conditions() for f in frames)
    assert p.bad_frames == 1


def test_byte_by_byte_equals_bulk():
    data = closed(2, packet(2, hr_floats(150, 93)) * 3)
    bulk = NoninParser(2).feed(data)
    p = NoninParser(2)
    one = [f for b in data for f in p.feed(bytes((b,)))]
    assert one == bulk


def test_ack_and_nak_after_set_format():
    p = NoninParser(2)
    p.expect_reply()
    frames = p.feed(bytes((ACK,)) + closed(2, packet(2, hr_floats(70, 97))))
    assert isinstance(frames[0], NoninReply) and frames[0].ack
    assert isinstance(frames[1], NoninFrame)
    assert p.bad_frames == 0 and p.skipped_bytes == 0
    p8 = NoninParser(8)
    p8.expect_reply()
    assert p8.feed(bytes((NAK,)) + record8(60, 98)) == [NoninReply(False)]
    assert NoninParser(8).feed(bytes((NAK,)) + record8(60, 98)) == []  # no command: skipped


def test_a_reply_between_frames_keeps_sync():
    data = closed(2, packet(2, hr_floats(70, 97)))
    p = NoninParser(2)
    p.expect_reply()
    frames = p.feed(data[:50] + bytes((NAK,)) + data[50:])
    assert [type(f).__name__ for f in frames].count("NoninReply") == 1
    assert not [f for f in frames if isinstance(f, NoninReply)][0].ack
    assert values(frames) == [("pulse_rate", 70), ("spo2", 97)] and p.bad_frames == 0


@pytest.mark.parametrize("fmt", [2, 7, 8])
def test_a_data_byte_equal_to_ack_is_not_the_reply(fmt):
    # HR 134 puts 0x06 in a FLOAT (or #8 HR) byte, and these pleth values make most checksums
    # (and a #7 pleth byte) 0x06: met while hunting, right after the command, none of them is
    # the device's answer; the real NAK that follows is
    if fmt == 8:
        data = (record8(134, 97)[1:] + record8(60, 98) + record8(134, 97)  # from mid-record
                + record8(134, 97, status2=0x06))
    else:
        data = packet(fmt, hr_floats(134, 97), pleth=0x85 if fmt == 2 else 0x8006)
        assert data.count(ACK) > 20
        data = data[3:] + data  # hunting from mid-frame
    p = NoninParser(fmt)
    p.expect_reply()
    assert not [f for f in p.feed(data) if isinstance(f, NoninReply)]
    tail = record8(61, 97) if fmt == 8 else closed(fmt, packet(fmt, hr_floats(70, 97)))
    got = [f for f in p.feed(bytes((NAK,)) + tail) if isinstance(f, NoninReply)]
    assert got == [NoninReply(False)]


def test_a_nak_from_a_device_left_in_another_format_is_seen():
    from devices.emulators.nonin import NoninEmulator

    p = NoninParser(8)  # the host asked for #8; the device refuses and goes on in #2
    p.expect_reply()
    seven = NoninEmulator(seed=1, format=7).render(0.2)
    p.feed(seven[:35])  # seven frames, then the answer between two frames
    assert p.feed(bytes((NAK,)) + seven[35:]) == [NoninReply(False)]


# -- format #8 --------------------------------------------------------------------------------------
def record8(hr: int, spo2: int, status_bits: int = 0, status2: int = 0x20) -> bytes:
    return bytes((0x80 | status_bits | ((hr >> 7) & 0x03), hr & 0x7F, spo2, status2))


# #8 syncs on two records followed by a third STATUS byte, and drops those two as stale
SYNC8 = record8(60, 98) + record8(61, 98)


def decode8(*records: bytes):
    """Frames for ``records`` in a stream that is in sync."""
    p = NoninParser(8)
    frames = p.feed(SYNC8 + b"".join(records))
    assert p.skipped_bytes == 8 and p.bad_frames == 0
    return frames


def test_format8_sync_needs_two_records_and_a_third_status_byte():
    p = NoninParser(8)
    assert p.feed(record8(70, 97) + record8(71, 98)) == []
    assert p.feed(record8(72, 99)[:1]) == []
    # the two confirming records are a second or two old by now: dropped, counted as skipped
    assert p.skipped_bytes == 8
    # the record whose STATUS completed the check goes out as soon as its bytes are in
    assert values(p.feed(record8(72, 99)[1:])) == [("pulse_rate", 72), ("spo2", 99)]
    assert values(p.feed(record8(73, 99))) == [("pulse_rate", 73), ("spo2", 99)]


def test_format8_first_value_is_the_record_just_received():
    # fed a record a second, as from a live device: each decoded value is the one that arrived
    p = NoninParser(8)
    got = [values(p.feed(record8(70 + k, 97))) for k in range(5)]
    assert got == [[], [], [("pulse_rate", 72), ("spo2", 97)], [("pulse_rate", 73), ("spo2", 97)],
                   [("pulse_rate", 74), ("spo2", 97)]]


def test_format8_once_confirmed_a_bad_record_costs_only_itself():
    p = NoninParser(8)
    p.feed(SYNC8)
    broken = bytearray(record8(80, 97))
    broken[2] |= 0x80  # line noise sets bit 7 of the SpO2 byte
    got = [values(p.feed(r)) for r in (record8(79, 97), bytes(broken), record8(81, 97),
                                       record8(82, 97))]
    assert got == [[("pulse_rate", 79), ("spo2", 97)], [], [("pulse_rate", 81), ("spo2", 97)],
                   [("pulse_rate", 82), ("spo2", 97)]]
    assert p.bad_frames >= 1
    p.reset()  # a new connection: the strict first sync again
    assert p.feed(record8(83, 97)) == [] and p.feed(record8(84, 97)) == []


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
    frames = decode8(record8(70, 97, 0x40 | 0x20 | 0x10 | 0x04, 0x01 | 0x20))
    assert frames[0].conditions() == {Condition.SENSOR_DISCONNECTED, Condition.OUT_OF_TRACK,
                                      Condition.LOW_PERFUSION, Condition.ARTIFACT,
                                      Condition.LOW_BATTERY, Condition.SMARTPOINT}
    frames = decode8(record8(70, 97, 0x08, status2=0))
    assert frames[0].conditions() == {Condition.MARGINAL_PERFUSION}


def test_format8_resyncs_after_a_cut_record():
    p = NoninParser(8)
    frames = p.feed(SYNC8 + record8(62, 98) + b"\x12\x34" + record8(70, 97)[:2] + record8(71, 98)
                    + record8(72, 99))
    assert values(frames) == [("pulse_rate", 62), ("spo2", 98), ("pulse_rate", 71), ("spo2", 98),
                              ("pulse_rate", 72), ("spo2", 99)]
    assert p.bad_frames == 1  # the record cut short
    assert p.skipped_bytes == 8 + 2  # the two confirming records and the two stray bytes


def test_unknown_format_rejected():
    with pytest.raises(ValueError):
        NoninParser(13)
