"""The ``ketmonitor`` command: a thin layer over the library.

Each subcommand is a module in ``ketmonitor/commands/`` defining ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; they are found by listing that package, so a
feature adds a command without touching this file. Errors meant for people (KetmonitorError) print
as one line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__
from .errors import KetmonitorError

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like argparse, but without the usage dump
        self.exit(EXIT_ERROR, f"ketmonitor: error: {message} (see '{self.prog} --help')\n")


def command_modules():
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ketmonitor",
                     description="Monitoring for ketamine and esketamine dosing rooms.")
    parser.add_argument("--version", action="version", version=f"ketmonitor {__version__}")
    parser.add_argument("--db", help="session database (default: the platform data directory)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "_run", None) is None:
            from .commands.gui import run as run_gui  # bare `ketmonitor` opens the GUI

            return run_gui(args)
        return int(args._run(args) or 0)
    except KetmonitorError as exc:
        print(f"ketmonitor: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
