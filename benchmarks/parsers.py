"""Decode rate of each wire-protocol parser, in frames per second of CPU time.

    .venv/bin/python benchmarks/parsers.py [--seconds N] [--read BYTES] [--min-frames N] [PROTOCOL ...]

For each protocol the emulator renders N simulated seconds of clean device output (no pty), then the
parser decodes it fed in reads of ``--read`` bytes (a serial read is typically small), best of 5
runs. A protocol whose emulator sends nothing without host commands needs a stream maker in
``STREAMS``. Prints one line per protocol and, with --json, the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.protocols import PROTOCOLS  # noqa: E402


def _render(name: str) -> Callable[[float], bytes]:
    def make(seconds: float) -> bytes:
        return PROTOCOLS[name].make_emulator(seed=1, t0=60.0).render(seconds)
    return make


# protocol -> (simulated seconds -> clean device bytes); extend for protocols needing commands
STREAMS: dict[str, Callable[[float], bytes]] = {name: _render(name) for name in PROTOCOLS}


def measure(name: str, data: bytes, read: int, repeat: int = 5) -> dict:
    best = float("inf")
    frames = 0
    for _ in range(repeat):
        parser = PROTOCOLS[name].make_parser()
        t0 = time.perf_counter()
        n = 0
        for i in range(0, len(data), read):
            n += len(parser.feed(data[i:i + read]))
        dt = time.perf_counter() - t0
        best, frames = min(best, dt), n
        assert parser.bad_frames == 0, f"{name}: clean stream gave bad frames"
    return {"protocol": name, "bytes": len(data), "frames": frames, "seconds": best,
            "frames_per_s": frames / best if best else float("inf"),
            "mbytes_per_s": len(data) / best / 1e6 if best else float("inf")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("protocols", nargs="*", default=list(STREAMS))
    ap.add_argument("--seconds", type=float, default=120.0, help="simulated seconds to decode")
    ap.add_argument("--read", type=int, default=64, help="bytes per feed() call")
    ap.add_argument("--min-frames", type=int, default=5000,
                    help="render more simulated time for protocols with fewer frames")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = []
    for name in args.protocols:
        try:
            data = STREAMS[name](args.seconds)
        except Exception as exc:  # noqa: BLE001 - a missing module skips its protocol only
            print(f"{name:14s} skipped: {exc}", file=sys.stderr)
            continue
        if not data:
            print(f"{name:14s} skipped: the emulator sends nothing without host commands "
                  "(add a stream maker to STREAMS)", file=sys.stderr)
            continue
        n = len(PROTOCOLS[name].make_parser().feed(data))
        if 0 < n < args.min_frames:  # slow protocols (1 record/s): decode more of them
            data = STREAMS[name](args.seconds * args.min_frames / n)
        r = measure(name, data, args.read)
        results.append(r)
        print(f"{name:14s} {r['frames']:8d} frames {r['bytes']:9d} bytes "
              f"{r['frames_per_s']:12,.0f} frames/s {r['mbytes_per_s']:7.2f} MB/s")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
