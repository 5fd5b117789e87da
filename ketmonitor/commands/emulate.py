"""``ketmonitor emulate``: run a device emulator on a pseudo-terminal until interrupted.

Prints the port path (a stable symlink to the current /dev/pts/N) on stdout; point the app (or
``ketmonitor decode``'s capture) at it exactly as at /dev/ttyUSB0. SIGINT or SIGTERM stops it
cleanly. The emulators live in devices/ and are reached through importlib only.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading

from ..errors import ConfigError

NAME = "emulate"
HELP = "emulate a bedside device on a pseudo-terminal (prints its path; Ctrl-C stops)"
PROTOCOL_NAMES = ("nonin2", "nonin7", "nonin8", "masimo", "contec", "contec-legacy", "suntech")


def add_arguments(parser) -> None:
    parser.add_argument("--device", required=True, choices=PROTOCOL_NAMES,
                        help="device and wire protocol to emulate")
    parser.add_argument("--scenario", default="uneventful",
                        help="patient scenario (uneventful, hypertensive-surge, desaturation, "
                             "probe-off, device-disconnect)")
    parser.add_argument("--seed", type=int, default=0, help="patient model seed")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="run the patient and the output this many times faster")
    parser.add_argument("--start", type=float, default=0.0, metavar="SECONDS",
                        help="patient time to start at (the dose is at 300 s)")
    parser.add_argument("--link", help="path of the port symlink (default: a temporary directory)")
    parser.add_argument("--noise", type=float, default=0.0, metavar="RATE",
                        help="line noise: probability that a byte is corrupted")
    parser.add_argument("--drop", type=float, default=0.0, metavar="RATE",
                        help="probability that a byte is lost")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="device-specific setting, e.g. model=radical7 (repeatable)")


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def make_emulator(args):
    protocols = importlib.import_module("devices.protocols")
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--set needs KEY=VALUE, not {item!r}")
        extra[key] = _value(value)
    try:
        return protocols.protocol(args.device).make_emulator(
            scenario=args.scenario, seed=args.seed, speed=args.speed, t0=args.start,
            link=args.link, noise_rate=args.noise, drop_rate=args.drop, **extra)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot emulate {args.device}: {exc}") from exc


def run(args, stop: threading.Event | None = None) -> int:
    emulator = make_emulator(args)
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            emulator.start()
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        except OSError as exc:
            raise ConfigError(f"cannot open a pseudo-terminal at {args.link or 'a temporary path'}:"
                              f" {exc.strerror or exc}") from exc
        print(emulator.path, flush=True)
        print(f"emulating {args.device} on {emulator.pts} (scenario {args.scenario}, seed "
              f"{args.seed}); Ctrl-C stops", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
