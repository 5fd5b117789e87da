"""Whole-session trends: SpO2 and pulse as lines, NIBP as points with a bar from diastolic to
systolic. Time is minutes since the session start (keeps float32 drawing exact). Buffers grow by
doubling so appending is cheap; curves are persistent and clipped to view with peak downsampling."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from . import theme


class _Series:
    def __init__(self, capacity: int = 4096):
        self.t = np.empty(capacity, dtype=np.float64)
        self.v = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def append(self, t: float, v: float | None) -> None:
        if self.n == len(self.t):
            self.t = np.resize(self.t, 2 * self.n)
            self.v = np.resize(self.v, 2 * self.n)
        self.t[self.n] = t
        self.v[self.n] = np.nan if v is None else v
        self.n += 1

    def view(self):
        return self.t[: self.n], self.v[: self.n]


class TrendWidget(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setBackground(theme.BACKGROUND)
        self.series = {k: _Series() for k in ("spo2", "pulse_rate", "nibp_systolic",
                                               "nibp_diastolic", "nibp_mean")}
        self._dirty = False
        axis_pen = pg.mkPen(theme.DIM)
        self.vitals = self.addPlot(row=0, col=0)
        self.bp = self.addPlot(row=1, col=0)
        self.bp.setXLink(self.vitals)
        for plot, label in ((self.vitals, "SpO2 % / pulse /min"), (self.bp, "NIBP mmHg")):
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.getAxis("left").setPen(axis_pen)
            plot.getAxis("bottom").setPen(axis_pen)
            plot.getAxis("left").setTextPen(axis_pen)
            plot.getAxis("bottom").setTextPen(axis_pen)
            plot.setLabel("left", label, color=theme.DIM)
        self.bp.setLabel("bottom", "minutes since start", color=theme.DIM)
        self.vitals.setYRange(40, 130)
        self.bp.setYRange(40, 200)
        self.spo2_curve = self.vitals.plot(pen=pg.mkPen(theme.PARAMETER_COLOURS["spo2"], width=2),
                                           connect="finite")
        self.pulse_curve = self.vitals.plot(
            pen=pg.mkPen(theme.PARAMETER_COLOURS["pulse_rate"], width=2), connect="finite")
        colour = theme.PARAMETER_COLOURS["nibp"]
        self.bp_bars = pg.ErrorBarItem(x=np.array([]), y=np.array([]), top=np.array([]),
                                       bottom=np.array([]), pen=pg.mkPen(colour, width=2), beam=0.6)
        self.bp.addItem(self.bp_bars)
        self.mean_points = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(colour), pen=None, symbol="o")
        self.bp.addItem(self.mean_points)
        self.event_lines: list[pg.InfiniteLine] = []
        self.span_minutes = 30.0

    def add(self, metric: str, t_minutes: float, value: float | None) -> None:
        s = self.series.get(metric)
        if s is not None:
            s.append(t_minutes, value)
            self._dirty = True

    def add_marker(self, t_minutes: float, label: str) -> None:
        # labels step down in four rows so markers close in time stay readable
        position = 0.93 - 0.12 * (len(self.event_lines) % 4)
        line = pg.InfiniteLine(pos=t_minutes, angle=90,
                               pen=pg.mkPen(theme.DIM, style=Qt.PenStyle.DashLine), label=label,
                               labelOpts={"color": theme.TEXT, "position": position,
                                          "fill": pg.mkBrush(0, 0, 0, 170)})
        self.vitals.addItem(line)
        self.event_lines.append(line)

    def redraw(self, now_minutes: float) -> bool:
        if not self._dirty:
            return False
        self.spo2_curve.setData(*self.series["spo2"].view(), connect="finite")
        self.pulse_curve.setData(*self.series["pulse_rate"].view(), connect="finite")
        ts, sys_ = self.series["nibp_systolic"].view()
        _, dia = self.series["nibp_diastolic"].view()
        n = min(len(ts), len(dia))
        if n:
            x, top, bottom = ts[:n], sys_[:n], dia[:n]
            mid = (top + bottom) / 2
            self.bp_bars.setData(x=x, y=mid, top=top - mid, bottom=mid - bottom)
        tm, mean = self.series["nibp_mean"].view()
        self.mean_points.setData(tm, mean)
        # whole session, never less than 30 minutes wide
        self.vitals.setXRange(0, max(self.span_minutes, now_minutes * 1.05), padding=0)
        self._dirty = False
        return True
