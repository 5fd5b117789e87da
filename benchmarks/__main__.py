"""Run every benchmark suite, several runs each, and write docs/benchmarks.md and
docs/benchmarks.json (the published figures, both committed).

    python -m benchmarks [--quick] [SUITE ...]

A suite is a module in this package with ``figures(quick: bool) -> list[Figure]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import write_report  # noqa: E402

SUITES = ["parsers", "ingest", "ui", "alarms", "signing", "review", "export", "soak"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--json", default=str(ROOT / "docs" / "benchmarks.json"))
    p.add_argument("suites", nargs="*", default=SUITES)
    args = p.parse_args(argv)
    figures, failed = [], []
    for name in args.suites:
        t = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            if not hasattr(module, "figures"):
                print(f"{name}: no figures() yet, skipped", file=sys.stderr)
                continue
            got = module.figures(quick=args.quick)
        except Exception:  # noqa: BLE001 - report the suite, go on with the others
            failed.append(name)
            traceback.print_exc()
            continue
        figures += got
        print(f"{name}: {len(got)} figures in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        for f in got:
            ok = {True: "ok", False: "MISSED", None: ""}[f.ok]
            print(f"  {f.label}: {f.median:.4g} {f.unit} (goal {f.goal or '-'}) {ok}")
    command = "make bench" if not argv else "python -m benchmarks " + " ".join(argv)
    write_report(figures, Path(args.json), Path(args.out), command)
    print(f"wrote {args.out} and {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
