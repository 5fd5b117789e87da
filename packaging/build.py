"""Build the self-contained application folder and its tarball (``make package``).

    python packaging/build.py [--skip-tarball]

1. PyInstaller builds ``dist/ketmonitor/`` from packaging/ketmonitor.spec (onedir: the executable
   ``dist/ketmonitor/ketmonitor`` with its libraries in ``dist/ketmonitor/_internal/``).
2. BUILD-INFO.json (version, commit, commands, migrations), the desktop entry, the icons, the desktop-entry installer, the install notes and the example
   database are copied beside the executable.
3. The frozen program is run once (``--version``, ``--help``) so a broken bundle fails the build.
4. ``dist/ketmonitor-<version>-<os>-<arch>.tar.gz`` is written, its top folder ``ketmonitor-<version>``,
   with a ``.sha256`` beside it (``sha256sum -c`` checks it).

Prints the build time and the sizes (folder, tarball).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
BUNDLE = DIST / "ketmonitor"
EXTRAS = {  # bundle path -> source
    "ketmonitor.desktop": PACKAGING / "ketmonitor.desktop",
    "ketmonitor.svg": PACKAGING / "ketmonitor.svg",
    "ketmonitor.png": PACKAGING / "ketmonitor.png",
    "install-desktop-entry.sh": PACKAGING / "install-desktop-entry.sh",
    "INSTALL.md": ROOT / "docs" / "install.md",
    "examples/sessions.db.example": ROOT / "sessions.db.example",
    "examples/example-db.md": ROOT / "docs" / "example-db.md",
}


def version() -> str:
    sys.path.insert(0, str(ROOT))
    from ketmonitor import __version__

    return __version__


def platform_tag() -> str:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{system}-{machine}"


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def run_pyinstaller() -> None:
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(DIST), "--workpath", str(WORK), str(PACKAGING / "ketmonitor.spec")]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def add_extras() -> None:
    for name, src in EXTRAS.items():
        if not src.exists():
            print(f"note: {src.relative_to(ROOT)} not found, not in the bundle")
            continue
        dest = BUNDLE / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    installer = BUNDLE / "install-desktop-entry.sh"
    if installer.exists():
        installer.chmod(0o755)


def write_build_info(ver: str) -> dict:
    """BUILD-INFO.json beside the executable: what the source held when the bundle was built (the
    smoke test compares the frozen program against it, so a stale bundle is not mistaken for a
    broken one)."""
    import json
    import tempfile

    from ketmonitor.cli import command_modules
    from ketmonitor.store import open_db

    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "probe.db")
        migrations = [r[0] for r in db.conn.execute(
            "SELECT name FROM _sqlite_migrations ORDER BY id")]
        db.conn.close()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    info = {"version": ver, "platform": platform_tag(), "git_commit": commit,
            "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "commands": sorted(m.NAME for m in command_modules()), "migrations": migrations}
    (BUNDLE / "BUILD-INFO.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def missing_libraries() -> dict[str, set[str]]:
    """Linux: libraries that ELF files in the bundle link to but neither the bundle nor this
    machine has (``ldd``); {library: {files needing it}}."""
    if sys.platform != "linux" or shutil.which("ldd") is None:
        return {}
    internal = BUNDLE / "_internal"
    env = dict(os.environ, LD_LIBRARY_PATH=f"{internal}:{internal / 'PySide6' / 'Qt' / 'lib'}")
    missing: dict[str, set[str]] = {}
    for path in internal.rglob("*.so*"):
        if not path.is_file() or path.is_symlink():
            continue
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env)
        for line in out.stdout.splitlines():
            if "not found" in line:
                missing.setdefault(line.split()[0], set()).add(str(path.relative_to(internal)))
    return missing


def check_bundle(exe: Path, expected_version: str) -> None:
    missing = missing_libraries()
    qt = {lib: files for lib, files in missing.items() if lib.startswith("libQt6")}
    if qt:
        raise SystemExit(f"Qt libraries missing from the bundle (see DROP in the spec): {qt}")
    if missing:
        print("note: libraries the bundle expects from the workstation (not on this build machine):"
              f" {', '.join(sorted(missing))}")
    dangling = [str(p.relative_to(BUNDLE)) for p in BUNDLE.rglob("*")
                if p.is_symlink() and not p.exists()]
    if dangling:
        raise SystemExit(f"dangling links in the bundle (see DROP in the spec): {dangling}")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env,
                         timeout=60)
    if out.returncode != 0 or expected_version not in out.stdout:
        raise SystemExit(f"the frozen program does not start: {out.stdout}{out.stderr}")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=env, timeout=60)
    if out.returncode != 0 or "verify" not in out.stdout or "demo" not in out.stdout:
        raise SystemExit(f"the frozen program lists no commands: {out.stdout}{out.stderr}")


def make_tarball(ver: str) -> Path:
    tarball = DIST / f"ketmonitor-{ver}-{platform_tag()}.tar.gz"
    tmp = tarball.with_name(tarball.name + ".tmp")

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(BUNDLE, arcname=f"ketmonitor-{ver}", filter=reset)
    os.replace(tmp, tarball)
    import hashlib

    digest = hashlib.sha256()
    with open(tarball, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    tarball.with_name(tarball.name + ".sha256").write_text(f"{digest.hexdigest()}  {tarball.name}\n")
    return tarball


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-tarball", action="store_true", help="only the folder")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        print("note: this script is tested on Linux; see packaging/README.md for Windows and macOS")
    ver = version()
    t0 = time.monotonic()
    run_pyinstaller()
    add_extras()
    write_build_info(ver)
    exe = BUNDLE / ("ketmonitor.exe" if sys.platform == "win32" else "ketmonitor")
    check_bundle(exe, ver)
    built = time.monotonic() - t0
    print(f"bundle {BUNDLE.relative_to(ROOT)}/: {tree_size(BUNDLE) / 2**20:.0f} MiB, "
          f"built in {built:.0f} s")
    if not args.skip_tarball:
        t1 = time.monotonic()
        tarball = make_tarball(ver)
        print(f"tarball {tarball.relative_to(ROOT)}: {tarball.stat().st_size / 2**20:.0f} MiB "
              f"({time.monotonic() - t1:.0f} s)")
    print(f"total {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
