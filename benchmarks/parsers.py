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


def device_rate(name: str, seconds: float = 600.0) -> float:
    """Frames per second the real device sends (from a rendered stretch of its output)."""
    return len(PROTOCOLS[name].make_parser().feed(STREAMS[name](seconds))) / seconds


def figures(quick: bool = False) -> list:
    """For ``python -m benchmarks``: each protocol's decode rate over several runs (each run one
    pass over the stream, wall clock) and its ratio to the device's own frame rate."""
    from benchmarks.harness import Figure

    runs, out = (3 if quick else 7), []
    for name in STREAMS:
        data = STREAMS[name](30.0 if quick else 120.0)
        n = len(PROTOCOLS[name].make_parser().feed(data))
        if 0 < n < 5000:  # slow protocols (1 record/s): decode more of them
            data = STREAMS[name]((30.0 if quick else 120.0) * 5000 / n)
        results = [measure(name, data, 64, repeat=1) for _ in range(runs)]
        rate = device_rate(name)
        rates = [r["frames_per_s"] for r in results]
        note = (f"{results[0]['frames']:,} frames ({results[0]['bytes'] / 1e6:.2f} MB of clean "
                f"emulator output) fed in 64-byte reads; the device sends {rate:.3g} frames/s")
        if name == "suntech":
            note += " (cuff polls 4/s while measuring back to back)"
        out.append(Figure(f"parser.{name}", f"Parser decode rate, {name}", "frames/s", rates,
                          ">= 250000", note))
        out.append(Figure(f"parser.{name}.x_real_time", f"Parser {name}: times the device's rate",
                          "x", [r / rate for r in rates]))
    return out


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
