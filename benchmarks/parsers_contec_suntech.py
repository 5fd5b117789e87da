"""Decode rates of the Contec V7.0, Contec legacy and SunTech parsers (frames per second).

    .venv/bin/python benchmarks/parsers_contec_suntech.py [--seconds 2] [--read 64]

Clean device output comes from each protocol's emulator (``render``, no pty) and is fed to a fresh
parser in reads of ``--read`` bytes, repeated until ``--seconds`` of CPU time have passed. Also
prints how many times faster than the device's own frame rate that is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.protocols import PROTOCOLS  # noqa: E402

DEVICE_RATE = {"contec": 60.0, "contec-legacy": 60.0}  # frames per second on the wire


def measure(name: str, seconds: float, read: int) -> dict:
    proto = PROTOCOLS[name]
    sample_s = 300.0 if name == "suntech" else 60.0
    data = proto.make_emulator(seed=1, t0=600.0).render(sample_s)
    chunks = [data[i:i + read] for i in range(0, len(data), read)]
    frames = passes = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        parser = proto.make_parser()
        for c in chunks:
            parser.feed(c)
        frames += parser.frames
        passes += 1
        assert parser.bad_frames == 0 and parser.skipped_bytes == 0
    elapsed = time.process_time() - t0
    per_pass = frames / passes
    device_rate = DEVICE_RATE.get(name, per_pass / sample_s)
    return {"protocol": name, "frames_per_s": frames / elapsed,
            "bytes_per_s": passes * len(data) / elapsed,
            "x_real_time": frames / elapsed / device_rate}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per protocol")
    ap.add_argument("--read", type=int, default=64, help="bytes per read")
    args = ap.parse_args(argv)
    print(f"{'protocol':<15}{'frames/s':>12}{'MB/s':>8}{'x real time':>13}")
    for name in ("contec", "contec-legacy", "suntech"):
        r = measure(name, args.seconds, args.read)
        print(f"{name:<15}{r['frames_per_s']:>12,.0f}{r['bytes_per_s'] / 1e6:>8.2f}"
              f"{r['x_real_time']:>13,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
