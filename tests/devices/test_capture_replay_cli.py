"""Raw capture (file format, recording from a live driver), replay as a source, and the decode and
emulate commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import serial

from devices.capture import MAGIC, CaptureWriter, read_capture
from devices.drivers.masimo import MasimoSource
from devices.drivers.nonin import NoninSource
from devices.emulators.masimo import MasimoEmulator
from devices.emulators.nonin import NoninEmulator
from devices.ports import PortInfo, list_ports
from devices.replay import ReplaySource
from ketmonitor.cli import main
from ketmonitor.errors import ConfigError
from ketmonitor.samples import Condition
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_capture_format_round_trip(tmp_path):
    path = tmp_path / "c.cap"
    with CaptureWriter(path, t0_mono=100.0, t0_wall=1.8e9, protocol="nonin2", port="/dev/x") as w:
        w.record(100.0, 1.8e9, b"\x01\x81")
        w.record(100.25, 1.8e9 + 0.25, b"\x02\x70", direction=">")
        w.record(100.5, 1.8e9 + 0.5, b"")  # nothing read: no record
    lines = path.read_text().splitlines()
    assert lines[0] == MAGIC
    assert lines[2] == "0.000000 1800000000.000000 < 0181"
    assert lines[3] == "0.250000 1800000000.250000 > 0270"
    cap = read_capture(path)
    assert cap.meta["protocol"] == "nonin2" and cap.meta["port"] == "/dev/x"
    assert cap.timed and [r.data for r in cap.records] == [b"\x01\x81", b"\x02\x70"]
    assert cap.device_bytes() == b"\x01\x81"


def test_binary_dump_is_one_untimed_record(tmp_path):
    path = tmp_path / "dump.bin"
    path.write_bytes(b"\x01\x81\x64\x00\xe6")
    cap = read_capture(path)
    assert not cap.timed and cap.device_bytes() == b"\x01\x81\x64\x00\xe6"


def test_bad_capture_line_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.cap"
    path.write_text(MAGIC + "\n0.0 1.0 < 01zz\n")
    with pytest.raises(ConfigError, match="bad.cap:2"):
        read_capture(path)


def test_live_driver_capture_replays_to_the_same_values(tmp_path, emulator, sources, collector):
    emu = emulator("nonin2", seed=8)
    cap_path = tmp_path / "live.cap"
    src = sources(NoninSource("n", port=emu.path, format=2, capture=str(cap_path)))
    src.start(collector)
    wait_for(lambda: len(collector.numerics("spo2")) >= 4, timeout=10)
    src.stop()
    live = [(n.metric, n.value) for n in collector.numerics()]
    cap = read_capture(cap_path)
    assert cap.meta["protocol"] == "nonin2" and cap.meta["baudrate"] == "9600"
    tx = [r for r in cap.records if r.direction == ">"]
    assert tx[0].data == bytes.fromhex("027002020203")  # the set-format command, recorded too
    times = [r.t for r in cap.records]
    assert times == sorted(times)

    replayed = []
    rep = sources(ReplaySource("r", file=str(cap_path), protocol="nonin2", speed=20.0))
    rep.start(replayed.append)
    wait_for(lambda: not rep.running, timeout=10)
    got = [(s.metric, s.value) for s in replayed if hasattr(s, "value")]
    assert got == live
    end = [s for s in replayed if getattr(s, "conditions", None) is not None][-1]
    assert not end.connected and Condition.DISCONNECTED in end.conditions
    assert "finished" in end.message


def test_replay_keeps_original_timing(tmp_path, sources):
    path = tmp_path / "m.cap"
    emu = MasimoEmulator(seed=1)
    with CaptureWriter(path, t0_mono=0.0) as w:
        for k in range(4):  # one line a second, as captured
            w.record(float(k), 1.8e9 + k, emu.line(float(k)))
    got = []
    rep = sources(ReplaySource("r", file=str(path), protocol="masimo", speed=4.0))
    rep.start(got.append)
    wait_for(lambda: not rep.running, timeout=10)
    t = [s.t_mono for s in got if getattr(s, "metric", None) == "spo2"]
    assert len(t) == 4
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert all(0.2 <= g for g in gaps)  # 1 s apart at 4x: never faster than the capture
    assert rep.passes == 1


def test_replay_source_is_registered(tmp_path):
    from ketmonitor.sources import source_class

    assert source_class("replay") is ReplaySource
    assert source_class("nonin") is NoninSource and source_class("masimo") is MasimoSource


# -- decode ---------------------------------------------------------------------------------------
def _decode(capsys, protocol, path):
    rc = main(["decode", "--protocol", protocol, str(path)])
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def test_decode_nonin2_json_lines(tmp_path, capsys):
    path = tmp_path / "n2.bin"
    path.write_bytes(NoninEmulator(seed=2, format=2, t0=60).render(1.0))
    rc, lines, err = _decode(capsys, "nonin2", path)
    assert rc == 0
    assert all(list(line) == ["metric", "value", "unit", "flags"] for line in lines)
    assert sum(1 for line in lines if line["metric"] == "pleth") == 75
    spo2 = [line for line in lines if line["metric"] == "spo2"]
    # three packets; the last one's values would need the next packet's SYNC frame to confirm it
    assert len(spo2) == 2 and spo2[0]["unit"] == "%" and isinstance(spo2[0]["value"], int)
    assert "frames=75 bad_frames=0 skipped_bytes=0" in err


def test_decode_masimo_missing_and_held(tmp_path, capsys):
    path = tmp_path / "m.txt"
    path.write_bytes(b"03/14/26 09:00:01 SPO2=---% BPM=--- PI=--.--% ALARM=0000 EXC=000020\r\n"
                     b"03/14/26 09:00:02 SPO2=097% BPM=071 PI=02.00% ALARM=0000 EXC=000020\r\n"
                     b"garbage\r\n")
    rc, lines, err = _decode(capsys, "masimo", path)
    assert lines[:3] == [{"metric": "spo2", "value": None, "unit": "%", "flags": ["sensor_off"]},
                         {"metric": "pulse_rate", "value": None, "unit": "/min",
                          "flags": ["sensor_off"]},
                         {"metric": "perfusion_index", "value": None, "unit": "%",
                          "flags": ["sensor_off"]}]
    assert lines[3] == {"metric": "spo2", "value": 97, "unit": "%", "flags": ["held", "sensor_off"]}
    assert lines[5]["value"] == 2
    assert "frames=2 bad_frames=1" in err


def test_decode_reads_a_capture_file_too(tmp_path, capsys):
    path = tmp_path / "n8.cap"
    emu = NoninEmulator(seed=2, format=8)
    with CaptureWriter(path, t0_mono=0.0) as w:
        for k in range(5):
            w.record(float(k), 1.8e9 + k, emu.render(1.0, float(k)))
        w.record(5.0, 1.8e9 + 5, b"\x02\x70\x02\x02\x08\x03", direction=">")  # host bytes: ignored
    rc, lines, err = _decode(capsys, "nonin8", path)
    # the first two records confirm the sync (and are dropped: stale by then); the rest decode
    assert [line["metric"] for line in lines] == ["pulse_rate", "spo2"] * 3
    assert "skipped_bytes=8" in err


def test_decode_missing_file_is_one_line_error(tmp_path, capsys):
    rc = main(["decode", "--protocol", "masimo", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ketmonitor: ") and "nope" in err and "Traceback" not in err


# -- emulate --------------------------------------------------------------------------------------
def test_emulate_command_prints_path_serves_and_exits_on_sigterm(tmp_path):
    link = tmp_path / "ttyEMU"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "ketmonitor", "emulate", "--device", "masimo",
                             "--speed", "5", "--link", str(link), "--set", "model=radical7"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path == str(link) and os.path.islink(path)
        with serial.serial_for_url(path, baudrate=9600, timeout=5) as port:
            port.readline()  # possibly a partial line from before we opened
            line = port.readline()
        assert b" PVI=" in line and line.endswith(b"\r\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not os.path.lexists(path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_emulate_bad_setting_is_one_line_error(capsys):
    rc = main(["emulate", "--device", "masimo", "--set", "model=rad99"])
    err = capsys.readouterr().err
    assert rc == 2 and "rad99" in err


# -- ports ----------------------------------------------------------------------------------------
def test_list_ports_returns_plain_dataclasses():
    ports = list_ports()
    assert all(isinstance(p, PortInfo) and p.device for p in ports)
    info = PortInfo("/dev/ttyUSB0", "CP2102 USB to UART", vid=0x10C4, pid=0xEA60)
    assert info.usb and info.label == "/dev/ttyUSB0 — CP2102 USB to UART"


def test_emulate_never_replaces_a_real_file(tmp_path, capsys):
    target = tmp_path / "ttyUSB0"
    target.write_text("not a port")
    rc = main(["emulate", "--device", "nonin2", "--link", str(target)])
    assert rc == 2 and "not a symlink" in capsys.readouterr().err
    assert target.read_text() == "not a port"
