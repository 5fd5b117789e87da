"""Figures with their runs, spread and goal, the machine they were measured on, and the report."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    runs: list[float]
    goal: str = ""  # e.g. "< 10", ">= 250000"
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.runs), max(self.runs)

    @property
    def ok(self) -> bool | None:
        if not self.goal:
            return None
        op, _, num = self.goal.partition(" ")
        limit = float(num)
        return {"<": self.median < limit, "<=": self.median <= limit, ">": self.median > limit,
                ">=": self.median >= limit}[op]

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(median=self.median, min=self.spread[0], max=self.spread[1], ok=self.ok)
        return d


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for mod in ("PySide6", "pyqtgraph", "numpy", "sqlite3", "cryptography"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", getattr(m, "sqlite_version", ""))
        except ImportError:
            versions[mod] = "absent"
    return {"when_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "python": sys.version.split()[0], "versions": versions}


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def write_report(figures: list[Figure], json_path: Path, md_path: Path, command: str) -> None:
    m = machine()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"machine": m, "command": command,
                                     "figures": [f.as_dict() for f in figures]}, indent=2))
    lines = ["# ketmonitor benchmarks", "",
             f"Measured with `{command}` on {m['when_utc']}.", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['platform']}; Python "
             f"{m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".", "",
             "Each figure is the median of several runs, with the smallest and largest run beside it.",
             "", "| figure | median | min - max | unit | goal | met | runs |",
             "| --- | ---: | --- | --- | --- | --- | ---: |"]
    for f in figures:
        ok = {True: "yes", False: "**no**", None: ""}[f.ok]
        lo, hi = f.spread
        lines.append(f"| {f.label} | {fmt(f.median)} | {fmt(lo)} - {fmt(hi)} | {f.unit} | "
                     f"{f.goal} | {ok} | {len(f.runs)} |")
    notes = [f"- **{f.label}**: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "## How each figure is measured", ""] + notes
    md_path.write_text("\n".join(lines) + "\n")
