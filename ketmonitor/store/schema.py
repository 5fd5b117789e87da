"""Numbered migrations. Each ``m0NNN_*.py`` module in this package registers its migrations on
``MIGRATIONS``; they are applied in file-name order, each atomically with its record.

Numbers are owned by feature: 0001 core, 0002 audit, 0003 devices, 0004 alarms, 0005 workflow,
0006 signing, 0007 review and export. A released migration is never edited: add a new one.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("ketmonitor")
_loaded = False


def load_migrations() -> Migrations:
    global _loaded
    if not _loaded:
        from . import __path__ as pkg_path

        names = sorted(m.name for m in pkgutil.iter_modules(pkg_path) if m.name[:1] == "m"
                       and m.name[1:5].isdigit())
        for name in names:
            importlib.import_module(f"{__package__}.{name}")
        _loaded = True
    return MIGRATIONS
