"""The CLI as a user meets it: one-line errors, no tracebacks, every command documented."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ketmonitor.cli import build_parser, command_modules, main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, env=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ketmonitor", *args], cwd=ROOT, capture_output=True,
                          text=True, env=e, timeout=120)


def test_unknown_option_is_one_line_without_traceback():
    r = run_cli("demo", "--no-such-option")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "unrecognized arguments" in r.stderr


@pytest.mark.parametrize("path", ["/nonexistent-folder/x.db", "/proc/version"])
def test_bad_database_paths_are_one_line_errors(path):
    r = run_cli("demo", "--headless", "--minutes", "0.1", "--db", path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ketmonitor: "), r.stderr


def test_gui_demo_without_display_points_to_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                             "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "ketmonitor", "demo", "--db", str(tmp_path / "x.db")],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert "--headless" in r.stderr and "Traceback" not in r.stderr


def test_headless_demo_prints_a_summary_and_stores_the_session(tmp_path, capsys):
    db = tmp_path / "demo.db"
    assert main(["demo", "--headless", "--minutes", "6", "--speed", "1200", "--seed", "4",
                 "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^session [0-9a-f-]{36}$", out, re.M)
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split() and line.split()[0] in ("spo2", "pulse_rate", "perfusion_index")}
    assert set(rows) == {"spo2", "pulse_rate", "perfusion_index"}
    n, missing, lo, med, hi = rows["spo2"][1:6]
    assert int(n) == 360 and int(missing) == 0
    assert 85 <= float(lo) <= float(med) <= float(hi) <= 100


def test_every_command_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    names = [m.NAME for m in command_modules()]
    assert {"demo", "gui", "sessions"} <= set(names)
    for name in names:
        assert f"ketmonitor {name}" in readme, f"README does not document 'ketmonitor {name}'"
        sub = parser._subparsers._group_actions[0].choices[name]
        assert sub.format_help().strip()
