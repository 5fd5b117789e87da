"""Smoke test of the frozen application built by ``make package`` (packaging/build.py).

Which bundle:
- ``KETMONITOR_BUNDLE`` set: that bundle folder (or its executable). It must exist: a missing
  bundle then fails the tests instead of skipping them (set it in CI after ``make package``).
- otherwise ``dist/ketmonitor/`` of this checkout when it exists;
- otherwise every test here is skipped (a plain ``make test`` does not build the bundle).

The frozen program runs as a child process with a clean environment (no virtualenv, no
PYTHONPATH, a temporary data directory, a working directory outside the checkout), so it can only
use what the bundle carries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXE_NAME = "ketmonitor.exe" if sys.platform == "win32" else "ketmonitor"


def _find_bundle() -> tuple[Path | None, str]:
    given = os.environ.get("KETMONITOR_BUNDLE")
    if given:
        path = Path(given).expanduser().resolve()
        return (path.parent if path.is_file() else path), f"KETMONITOR_BUNDLE={given}"
    default = ROOT / "dist" / "ketmonitor"
    if default.is_dir():
        return default, str(default)
    return None, "no bundle: run 'make package' or set KETMONITOR_BUNDLE"


BUNDLE, WHERE = _find_bundle()
pytestmark = pytest.mark.skipif(BUNDLE is None, reason=WHERE)


@pytest.fixture(scope="module")
def exe() -> Path:
    path = BUNDLE / EXE_NAME
    assert path.is_file() and os.access(path, os.X_OK), f"no executable {path} ({WHERE})"
    return path


@pytest.fixture(scope="module")
def build_info() -> dict:
    path = BUNDLE / "BUILD-INFO.json"
    assert path.is_file(), f"{path} missing: the bundle was not built by packaging/build.py"
    return json.loads(path.read_text())


def run(exe: Path, *args: str, cwd: Path, timeout: float = 90.0, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("KETMONITOR")}
    clean["PATH"] = "/usr/bin:/bin"
    clean["KETMONITOR_HOME"] = str(cwd / "home")
    clean.update(env)
    return subprocess.run([str(exe), *args], cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=timeout)


def test_the_frozen_program_starts_and_finds_every_command(exe, build_info, tmp_path):
    """Commands are found by listing ketmonitor.commands at run time (pkgutil.iter_modules on the
    frozen archive): every command the source had at build time must be there."""
    out = run(exe, "--version", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ketmonitor {build_info['version']}"
    out = run(exe, "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in out.stdout.splitlines()
              if line.startswith("    ") and line.split() and line[4] != " "}
    assert set(build_info["commands"]) <= listed, f"missing: {set(build_info['commands']) - listed}"
    assert {"demo", "verify"} <= listed


def test_frozen_headless_demo_is_stored_and_verifies(exe, build_info, tmp_path):
    db = tmp_path / "demo.db"
    out = run(exe, "demo", "--headless", "--minutes", "8", "--speed", "600", "--scenario",
              "hypertensive-surge", "--seed", "3", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout.startswith("session ") or "\nsession " in out.stdout
    conn = sqlite3.connect(db)
    try:
        applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        spo2 = conn.execute("SELECT count(*) FROM numerics WHERE metric = 'spo2'").fetchone()[0]
        chunks = conn.execute("SELECT count(*) FROM waveform_chunks").fetchone()[0]
    finally:
        conn.close()
    # migrations are found by listing ketmonitor.store inside the bundle: all of them ran
    assert applied == build_info["migrations"]
    assert spo2 >= 8 * 60 - 2 and chunks >= 8 * 60 * 3 - 6  # 1 Hz numerics, 3 pleth chunks a second
    record = re.search(r"^record (\S+\.json)", out.stdout, re.M)  # the demo signs its record
    out = run(exe, "verify", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "OK: everything verifies" in out.stdout
    if record:
        out = run(exe, "verify", record.group(1), "--db", str(db), cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "verified" in out.stdout


def test_frozen_verify_checks_signatures_and_names_tampering(exe, tmp_path):
    example = BUNDLE / "examples" / "sessions.db.example"
    if not example.exists():
        pytest.skip("this bundle carries no example database")
    db = tmp_path / "example.db"
    shutil.copy(example, db)
    out = run(exe, "verify", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "signature 1:" in out.stdout and "OK: everything verifies" in out.stdout
    conn = sqlite3.connect(db)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("UPDATE numerics SET value = value + 20 WHERE rowid = (SELECT min(rowid) FROM"
                 " numerics WHERE metric = 'spo2' AND value IS NOT NULL)")
    conn.commit()
    conn.close()
    out = run(exe, "verify", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 1
    assert "FAILED" in out.stderr and "Traceback" not in out.stderr


def test_frozen_export_writes_every_format(exe, tmp_path):
    """Export pulls in the libraries only it uses (FHIR models looked up by name, reportlab)."""
    example = BUNDLE / "examples" / "sessions.db.example"
    if not example.exists():
        pytest.skip("this bundle carries no example database")
    db = tmp_path / "example.db"
    shutil.copy(example, db)
    conn = sqlite3.connect(db)
    session = conn.execute("SELECT id FROM sessions WHERE protocol = 'esketamine-intranasal'"
                           " ORDER BY started_utc").fetchone()[0]  # REMS: esketamine only
    conn.close()
    out = run(exe, "export", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    formats = re.search(r"--format \{([a-z,]+)\}", out.stdout).group(1).split(",")
    assert {"json", "csv", "pdf"} <= set(formats)
    for fmt in formats:
        folder = tmp_path / fmt
        out = run(exe, "export", "--db", str(db), "--format", fmt, "--session", session, "--out",
                  str(folder), "--quiet", cwd=tmp_path)
        assert out.returncode == 0, f"{fmt}: {out.stderr[-2000:]}"
        files = [f for f in folder.iterdir() if f.name != "export-manifest.json"]
        assert files and all(f.stat().st_size > 0 for f in files), fmt
        for f in files:
            if f.suffix == ".pdf":
                assert f.read_bytes().startswith(b"%PDF-")
            elif f.suffix == ".json":
                data = json.loads(f.read_text())
                if fmt == "fhir":
                    assert data["resourceType"] == "Bundle" and data["entry"]
    signed = tmp_path / "json" / f"{session}.record.json"
    out = run(exe, "verify", str(signed), "--db", str(db), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Nora Nurse" in out.stdout


def test_frozen_gui_starts_offscreen_and_shows_the_monitor(exe, tmp_path):
    from PySide6.QtGui import QImage

    png = tmp_path / "monitor.png"
    out = run(exe, "demo", "--screenshot", str(png), "--minutes", "1", "--db",
              str(tmp_path / "gui.db"), cwd=tmp_path, QT_QPA_PLATFORM="offscreen",
              QT_DEBUG_PLUGINS="1")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    # the Qt plugins it needs load from the bundle: the platform, and the multimedia backend that
    # plays the alarm tones (it links Qt libraries a too eager size trim would drop)
    plugin_lines = [line for line in out.stderr.splitlines() if "/Qt/plugins/" in line]
    assert not [line for line in plugin_lines if "cannot load" in line]
    for plugin in ("platforms/libqoffscreen.so", "multimedia/libffmpegmediaplugin.so"):
        assert any(plugin in line and "loaded library" in line for line in plugin_lines), plugin
        assert all(str(BUNDLE) in line for line in plugin_lines if plugin in line)
    assert png.is_file()
    image = QImage(str(png))
    assert not image.isNull()
    assert image.width() >= 1200 and image.height() >= 700  # the demo window (1600x900 + menu)
    colours = {image.pixel(x, y) for x in range(0, 1600, 16) for y in range(0, 900, 16)}
    assert len(colours) > 8, "the window is blank"


def test_frozen_errors_are_one_line(exe, tmp_path):
    out = run(exe, "verify", "--db", str(tmp_path / "missing" / "x.db"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_the_desktop_entry_installs_and_launches_the_bundle(exe, tmp_path):
    installer = BUNDLE / "install-desktop-entry.sh"
    if sys.platform != "linux" or not installer.exists():
        pytest.skip("Linux desktop entry only")
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run([str(installer)], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    entry = home / ".local" / "share" / "applications" / "ketmonitor.desktop"
    text = entry.read_text()
    assert f'Exec="{exe}"' in text and "Icon=ketmonitor" in text
    assert (home / ".local/share/icons/hicolor/scalable/apps/ketmonitor.svg").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    link = home / ".local" / "bin" / "ketmonitor"
    out = run(link, "--version", cwd=tmp_path)  # through the link: the bundle finds _internal/
    assert out.returncode == 0 and out.stdout.startswith("ketmonitor "), out.stderr


def test_the_tarball_unpacks_to_a_working_bundle(build_info, tmp_path):
    import tarfile

    tarball = BUNDLE.parent / f"ketmonitor-{build_info['version']}-{build_info['platform']}.tar.gz"
    if not tarball.exists():
        pytest.skip(f"no {tarball.name} beside the bundle")
    checksum = tarball.with_name(tarball.name + ".sha256")
    if checksum.exists():
        import hashlib

        expected, name = checksum.read_text().split()
        assert name == tarball.name
        assert hashlib.sha256(tarball.read_bytes()).hexdigest() == expected
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path / "opt", filter="tar")
    top = tmp_path / "opt" / f"ketmonitor-{build_info['version']}"
    assert json.loads((top / "BUILD-INFO.json").read_text()) == build_info
    out = run(top / EXE_NAME, "--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"ketmonitor {build_info['version']}"
    out = run(top / EXE_NAME, "demo", "--headless", "--minutes", "2", "--db", str(tmp_path / "t.db"),
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(not all(shutil.which(t) for t in ("pulseaudio", "parec", "pactl")),
                    reason="needs pulseaudio and parec (Debian: pulseaudio, pulseaudio-utils)")
def test_frozen_alarm_tones_reach_the_sound_server(exe, tmp_path):
    """A private PulseAudio server with a null sink: the frozen GUI, on a desaturation, plays the
    alarm tones through QtMultimedia, and a recording of the sink's monitor hears them."""
    import array
    import math

    from tests.waiting import wait_for

    runtime = tmp_path / "pulse"
    runtime.mkdir()
    socket = runtime / "native"
    env = {"XDG_RUNTIME_DIR": str(runtime), "PULSE_RUNTIME_PATH": str(runtime),
           "HOME": str(runtime), "PULSE_SERVER": f"unix:{socket}", "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no",
         "--load=module-null-sink sink_name=ketsink", f"--load=module-native-protocol-unix "
         f"socket={socket}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recorder = None
    try:
        wait_for(lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode
                 == 0, timeout=20, message="the private PulseAudio server did not start")
        raw = tmp_path / "sink.raw"
        with open(raw, "wb") as fh:
            recorder = subprocess.Popen(["parec", "-d", "ketsink.monitor", "--format=s16le",
                                         "--rate=8000", "--channels=1"], env=env, stdout=fh)
            out = run(exe, "demo", "--screenshot", str(tmp_path / "desat.png"), "--minutes", "26",
                      "--scenario", "desaturation", "--db", str(tmp_path / "desat.db"),
                      cwd=tmp_path, QT_QPA_PLATFORM="offscreen", **env)
            recorder.terminate()
            recorder.wait(10)
        assert out.returncode == 0, out.stderr[-2000:]
    finally:
        for proc in (recorder, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    data = raw.read_bytes()
    pcm = array.array("h", data[: len(data) // 2 * 2])
    window = 800  # 0.1 s
    rms = [math.sqrt(sum(x * x for x in pcm[i:i + window]) / window)
           for i in range(0, len(pcm) - window, window)]
    assert rms, "nothing was recorded"
    assert sum(r > 1000 for r in rms) >= 3, f"no alarm tone heard (loudest {max(rms):.0f})"
