"""``ketmonitor decode``: decode a raw capture of device-to-host bytes into JSON Lines.

One measurement per line on stdout::

    {"metric": "spo2", "value": 97, "unit": "%", "flags": ["sensor_off"]}

``metric`` is one of spo2, pulse_rate, perfusion_index, pleth (one line per waveform sample),
nibp_systolic, nibp_diastolic, nibp_mean, nibp_pulse_rate, cuff_pressure, or nibp_error (a failed
NIBP measurement: ``value`` is the device's error code and ``flags`` name it). ``value`` is null
whenever the device said "missing"; ``unit`` is UCUM. A summary (frames, bad frames, skipped bytes)
goes to stderr. FILE is a capture written by a source's ``capture`` option or a plain binary dump.

The parsers live in devices/, which the core reaches only through importlib (never an import
statement), so this command runs wherever the devices package is installed.
"""

from __future__ import annotations

import importlib
import json
import sys

from ..errors import ConfigError
from ..metrics import METRICS

NAME = "decode"
HELP = "decode a raw device capture into JSON Lines (one measurement per line)"
PROTOCOL_NAMES = ("nonin2", "nonin7", "nonin8", "masimo", "contec", "contec-legacy", "suntech")


def add_arguments(parser) -> None:
    parser.add_argument("--protocol", required=True, choices=PROTOCOL_NAMES,
                        help="wire protocol of the capture")
    parser.add_argument("file", metavar="FILE", help="capture file or binary dump of device bytes")


def _number(v):
    if v is None:
        return None
    v = float(v)
    return int(v) if v.is_integer() else v


def _line(metric: str, value, flags, detail=None) -> str:
    names = sorted(getattr(f, "value", str(f)) for f in flags)
    if metric == "nibp_error" and detail and detail not in names:
        names.append(detail)
    unit = METRICS[metric].unit if metric in METRICS else None
    return json.dumps({"metric": metric, "value": _number(value), "unit": unit, "flags": names})


def decode(protocol_name: str, path, out) -> dict[str, int]:
    """Decode ``path`` with ``protocol_name``'s parser, writing JSON Lines to ``out``."""
    protocols = importlib.import_module("devices.protocols")
    capture = importlib.import_module("devices.capture")
    parser = protocols.protocol(protocol_name).make_parser()
    cap = capture.read_capture(path)
    for record in cap.device_records():
        for frame in parser.feed(record.data):
            wave = frame.waveform()
            if wave:
                conds = frame.conditions()
                for s in wave:
                    out.write(_line("pleth", s, conds) + "\n")
            for m in frame.measurements():
                out.write(_line(m.metric, m.value, m.flags, m.detail) + "\n")
    summary = parser.summary()
    summary["buffered_bytes"] = parser.buffered
    return summary


def run(args) -> int:
    try:
        summary = decode(args.protocol, args.file, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader is gone, not an error
        sys.stderr.close()
        return 0
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot decode {args.file}: {exc}") from exc
    print(f"decode {args.protocol}: frames={summary['frames']} bad_frames={summary['bad_frames']} "
          f"skipped_bytes={summary['skipped_bytes']} incomplete_bytes={summary['buffered_bytes']}",
          file=sys.stderr)
    return 0
