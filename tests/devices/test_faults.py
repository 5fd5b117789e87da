"""What a cable and a silent device do: unplug and replug over a pty, NO_DATA, a port that is not
there yet, line noise on a live link — and the other device carries on undisturbed."""

from __future__ import annotations

import time

import pytest

from devices.drivers.masimo import MasimoSource
from devices.protocols import PROTOCOLS
from ketmonitor.sources import create_source
from devices.drivers.nonin import NoninSource
from ketmonitor.dispatch import Dispatcher
from ketmonitor.samples import Condition
from tests.waiting import wait_for


def test_unplug_and_replug_while_another_device_runs(emulator, sources, collector):
    nonin_emu = emulator("nonin2", seed=1)
    masimo_emu = emulator("masimo", seed=2, speed=4.0)
    dispatcher = Dispatcher()
    dispatcher.add_listener(collector)
    nonin = sources(NoninSource("nonin", port=nonin_emu.path, format=2))
    masimo = sources(MasimoSource("masimo", port=masimo_emu.path))
    nonin.reconnect_delay = 0.2
    nonin.start(dispatcher.publish)
    masimo.start(dispatcher.publish)
    wait_for(lambda: collector.numerics("spo2") and {s.source for s in collector.numerics()}
             == {"nonin", "masimo"}, timeout=10)

    nonin_emu.unplug()  # the cable is pulled: the port path disappears
    down = wait_for(lambda: [s for s in collector.statuses("nonin")
                             if not s.connected and Condition.DISCONNECTED in s.conditions],
                    timeout=5)[0]
    assert "nonin" in down.message and nonin_emu.path in down.message
    masimo_before = len(collector.numerics("spo2"))
    wait_for(lambda: len([n for n in collector.numerics("spo2") if n.source == "masimo"
                          and n.t_mono > down.t_mono]) >= 2, timeout=10,
             message="the other device stopped while the Nonin was unplugged")
    assert nonin.running and masimo.running

    nonin_emu.plug()  # plugged back in: a new /dev/pts/N behind the same path
    up = wait_for(lambda: [s for s in collector.statuses("nonin")
                           if s.connected and s.t_mono > down.t_mono], timeout=10)[0]
    assert Condition.DISCONNECTED not in up.conditions
    wait_for(lambda: [n for n in collector.numerics("spo2")
                      if n.source == "nonin" and n.t_mono > up.t_mono], timeout=10)
    assert nonin.connections == 2 and nonin_emu.plug_count == 2
    assert len(collector.numerics("spo2")) > masimo_before
    assert dispatcher.errors == {}


def test_unplug_for_a_while_returns_by_itself(emulator, sources, collector):
    emu = emulator("masimo", seed=3, speed=4.0)
    src = sources(MasimoSource("m", port=emu.path))
    src.reconnect_delay = 0.2
    src.start(collector)
    wait_for(lambda: collector.numerics("spo2"), timeout=10)
    emu.unplug(seconds=0.5)
    wait_for(lambda: not src.connected, timeout=5)
    wait_for(lambda: src.connected and src.connections == 2, timeout=10)
    n = len(collector.numerics("spo2"))
    wait_for(lambda: len(collector.numerics("spo2")) > n, timeout=10)


def test_port_absent_at_start_then_appears(tmp_path, emulator, sources, collector):
    link = tmp_path / "ttyUSB0"
    src = sources(NoninSource("n", port=str(link), format=8))
    src.reconnect_delay = 0.2
    src.start(collector)
    first = wait_for(lambda: collector.statuses(), timeout=5)[0]
    assert not first.connected and Condition.DISCONNECTED in first.conditions
    emulator("nonin8", link=link, speed=4.0)
    wait_for(lambda: collector.numerics("spo2"), timeout=10)
    assert src.connected


def test_silent_device_raises_no_data_within_two_intervals(emulator, sources, collector):
    emu = emulator("masimo", seed=4)
    src = sources(MasimoSource("m", port=emu.path))
    src.start(collector)
    wait_for(lambda: len(collector.numerics("spo2")) >= 1, timeout=10)
    emu.ascii_mode = 2  # the device stops sending live lines
    status = wait_for(lambda: [s for s in collector.statuses()
                               if Condition.NO_DATA in s.conditions], timeout=10)[0]
    last = collector.numerics("spo2")[-1]
    # stamped on the same monotonic clock: raised after two intervals, and not much later
    assert 2 * src.expected_interval <= status.t_mono - last.t_mono <= 2 * src.expected_interval + 1.0
    assert status.connected
    emu.ascii_mode = 1
    wait_for(lambda: Condition.NO_DATA not in src.conditions, timeout=10)


def test_masimo_in_ascii2_says_ascii1_may_not_be_selected(emulator, sources, collector):
    emu = emulator("masimo", ascii_mode=2)
    src = sources(MasimoSource("m", port=emu.path))
    src.start(collector)
    status = wait_for(lambda: [s for s in collector.statuses()
                               if Condition.NO_DATA in s.conditions], timeout=10)[0]
    assert "ASCII 1" in status.message


def test_wrong_protocol_says_bytes_do_not_decode(emulator, sources, collector):
    emu = emulator("nonin2")
    src = sources(MasimoSource("m", port=emu.path))
    src.start(collector)
    status = wait_for(lambda: [s for s in collector.statuses()
                               if Condition.NO_DATA in s.conditions], timeout=10)[0]
    assert "none decode" in status.message


def test_nonin_format_refused_after_window(emulator, sources, collector):
    emu = emulator("nonin2")
    emu.format_window = 0.0  # the 9560 only takes a format in its first 5 s
    src = sources(NoninSource("n", port=emu.path, format=8))
    src.start(collector)
    wait_for(lambda: src.format_reply == "nak", timeout=5)
    status = wait_for(lambda: [s for s in collector.statuses()
                               if Condition.NO_DATA in s.conditions], timeout=10)[0]
    assert "refused format #8" in status.message


def test_live_line_noise_is_counted_and_values_stay_true(emulator, sources, collector):
    emu = emulator("nonin2", seed=5, noise_rate=0.002, drop_rate=0.001)
    src = sources(NoninSource("n", port=emu.path, format=2))
    src.start(collector)
    wait_for(lambda: src.parser.bad_frames + src.parser.skipped_bytes > 0
             and len(collector.numerics("spo2")) >= 6, timeout=20)
    truth = emu.patient.vitals(1.0)
    for n in collector.numerics("pulse_rate"):
        assert n.value is None or abs(n.value - truth.pulse_rate) <= 8
    assert time.monotonic() > 0  # (the test waited on conditions only)


def test_second_source_on_the_same_port_is_refused_not_split(emulator, sources, collector):
    emu = emulator("masimo", speed=4.0)
    first = sources(MasimoSource("a", port=emu.path))
    first.start(collector)
    wait_for(lambda: collector.numerics("spo2"), timeout=10)
    second = sources(MasimoSource("b", port=emu.path))
    second.start(collector)
    refused = wait_for(lambda: collector.statuses("b"), timeout=5)[0]
    assert not refused.connected and "lock" in refused.message.lower()
    n = len(collector.numerics("spo2"))
    wait_for(lambda: len(collector.numerics("spo2")) >= n + 2, timeout=10)
    assert {s.source for s in collector.numerics()} == {"a"}


def test_port_option_takes_any_pyserial_url(sources, collector):
    """loop:// echoes what is written: a Masimo line sent through the driver comes back decoded."""
    src = sources(MasimoSource("loop", port="loop://"))
    src.start(collector)
    wait_for(lambda: src.connected, timeout=5)
    assert src.write(b"03/14/26 09:00:01 SPO2=093% BPM=131 PI=01.10% ALARM=0000 EXC=000800\r\n")
    wait_for(lambda: collector.numerics("perfusion_index"), timeout=5)
    assert [(n.metric, n.value, n.device_time) for n in collector.numerics()] == [
        ("spo2", 93, "2026-03-14T09:00:01"), ("pulse_rate", 131, "2026-03-14T09:00:01"),
        ("perfusion_index", 1.1, "2026-03-14T09:00:01")]


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_every_driver_reports_a_missing_port_and_keeps_trying(name, tmp_path, sources, collector):
    proto = PROTOCOLS[name]
    src = sources(create_source(proto.source, f"x-{name}", port=str(tmp_path / "ttyUSB9"),
                                **proto.options))
    src.reconnect_delay = 0.05
    src.start(collector)
    status = wait_for(lambda: collector.statuses(), timeout=5)[0]
    assert not status.connected and status.conditions == {Condition.DISCONNECTED}
    assert "ttyUSB9" in status.message
    wait_for(lambda: src.open_attempts >= 3, timeout=5)  # it keeps trying...
    assert src.running and len(collector.statuses()) == 1  # ...and says so once, not every time


def test_nonin8_first_value_comes_before_any_no_data(emulator, sources, collector):
    # one record a second, and the first sync needs two records and a third STATUS byte: the
    # first value comes 2-3 s after connecting, which the silence watch must allow for
    emu = emulator("nonin8", seed=3)  # real time
    src = sources(NoninSource("n8", port=emu.path, format=8))
    src.start(collector)
    first = wait_for(lambda: collector.numerics("spo2"), timeout=10)[0]
    early = [s for s in collector.statuses() if s.t_mono <= first.t_mono]
    assert early and not any(Condition.NO_DATA in s.conditions for s in early)
    assert first.t_mono - src.connected_mono < 3.5
    assert src.format_reply == "ack"
