"""The house rules: the core imports neither Qt, pyqtgraph, pyserial, devices nor ui; devices import
no Qt. Checked by import-linter (static, includes function-level imports) and at run time."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout


def test_core_and_cli_import_without_qt_or_serial():
    code = (
        "import sys, pkgutil, importlib, ketmonitor\n"
        "for m in pkgutil.walk_packages(ketmonitor.__path__, 'ketmonitor.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "from ketmonitor.cli import build_parser; build_parser()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','serial','ui','devices')]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
