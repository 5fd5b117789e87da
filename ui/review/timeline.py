"""The whole session on one time axis: SpO2 and pulse trends with alarm periods, NIBP readings,
scale scores, a lane of doses / events / alarms / acknowledgements / amendments, and the pleth.

Time is seconds since the session start (float32-safe for drawing: an 8-hour session still resolves
a 75 Hz sample). All plots share the x axis; the mouse zooms and pans in time only. The pleth is
loaded for the visible range only (``waveform_window``), after the view has settled, and only once
the view is at most ``MAX_WAVEFORM_SPAN_S`` wide; zoomed in far enough each sample is drawn as a dot.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer

from ketmonitor.review import MAX_WAVEFORM_SPAN_S, Timeline, waveform_window

from . import style

LANES = ("doses", "events", "alarms", "acks", "amend.")
SAMPLE_DOTS_BELOW = 240  # draw single samples as dots when fewer than this many are visible


def elapsed(seconds: float, *, fraction: bool = False) -> str:
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    h, rem = divmod(int(s), 3600)
    m, sec = divmod(rem, 60)
    text = f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
    if fraction:
        text += f".{int(round((s - int(s)) * 1000)) % 1000:03d}"
    return sign + text


class ElapsedAxis(pg.AxisItem):
    """Elapsed session time (h:mm:ss), with milliseconds when zoomed to single samples."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph name
        return [elapsed(v, fraction=spacing < 1) for v in values]


class LaneAxis(pg.AxisItem):
    def tickStrings(self, values, scale, spacing):  # noqa: N802
        return [LANES[int(round(v))] if 0 <= round(v) < len(LANES) else "" for v in values]


def _style_plot(plot: pg.PlotItem, label: str) -> None:
    pen = pg.mkPen(style.DIM)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=True, y=False)
    plot.setClipToView(True)
    plot.setDownsampling(auto=True, mode="peak")
    for name in ("left", "bottom"):
        ax = plot.getAxis(name)
        ax.setPen(pen)
        ax.setTextPen(pen)
    plot.getAxis("left").setWidth(70)
    plot.setLabel("left", label, color=style.DIM)


class TimelinePlot(pg.GraphicsLayoutWidget):
    def __init__(self, db, timeline: Timeline, parent=None):
        super().__init__(parent=parent)
        self.db = db
        self.tl = timeline
        self.setBackground(style.BACKGROUND)
        self.loaded_range: tuple[float, float] | None = None  # pleth samples currently held
        self.pleth_t = np.empty(0)
        self.pleth_y = np.empty(0)
        self.pleth_loads = 0
        self._build()
        self._wave_timer = QTimer(self)
        self._wave_timer.setSingleShot(True)
        self._wave_timer.setInterval(60)
        self._wave_timer.timeout.connect(self.update_waveform)
        self._stopped = False
        self.vitals.sigXRangeChanged.connect(self._range_changed)
        self.show_all()

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        axis = {"bottom": ElapsedAxis("bottom")}
        self.vitals = self.addPlot(row=0, col=0, axisItems=dict(axis))
        self.bp = self.addPlot(row=1, col=0, axisItems={"bottom": ElapsedAxis("bottom")})
        self.scales = self.addPlot(row=2, col=0, axisItems={"bottom": ElapsedAxis("bottom")})
        self.lanes = self.addPlot(row=3, col=0, axisItems={"bottom": ElapsedAxis("bottom"),
                                                           "left": LaneAxis("left")})
        self.pleth = self.addPlot(row=4, col=0, axisItems={"bottom": ElapsedAxis("bottom")})
        plots = (self.vitals, self.bp, self.scales, self.lanes, self.pleth)
        for plot, label in zip(plots, ("SpO2 % / pulse", "NIBP mmHg", "scales", "", "pleth")):
            _style_plot(plot, label)
            if plot is not self.vitals:
                plot.setXLink(self.vitals)
            if plot is not self.pleth:
                plot.getAxis("bottom").setStyle(showValues=False)
        self.pleth.setLabel("bottom", "time since session start", color=style.DIM)
        layout = self.ci.layout
        for row, factor in enumerate((4, 3, 2, 4, 3)):
            layout.setRowStretchFactor(row, factor)
        span = max(self.tl.duration_s, 60.0)
        self.vitals.setLimits(xMin=-0.02 * span, xMax=span * 1.02, minXRange=0.5)
        self._vitals()
        self._nibp()
        self._scales()
        self._lanes()
        self._pleth()

    def _vitals(self) -> None:
        p = self.vitals
        p.setYRange(40, 130)
        p.addLegend(offset=(8, 4), labelTextColor=style.TEXT, brush=pg.mkBrush(0, 0, 0, 160))
        self.alarm_regions = []
        for a in self.tl.alarms:
            start = self.tl.rel(a["start_wall"])
            end = self.tl.rel(a["end_wall"]) if a["end_wall"] is not None else self.tl.duration_s
            colour = pg.mkColor(style.ALARM_COLOURS.get(a["priority"], style.DIM))
            fill = pg.mkColor(colour)
            fill.setAlpha(70 if a["priority"] == "high" else 40)
            region = pg.LinearRegionItem((start, max(end, start + 1)), movable=False,
                                         brush=pg.mkBrush(fill), pen=pg.mkPen(colour, width=1))
            region.setZValue(-10)
            p.addItem(region)
            self.alarm_regions.append(region)
        c = style.PARAMETER_COLOURS
        t, v = self.tl.series["spo2"]
        self.spo2_curve = p.plot(t, v, pen=pg.mkPen(c["spo2"], width=2), connect="finite",
                                 name="SpO2 %")
        t, v = self.tl.series["pulse_rate"]
        self.pulse_curve = p.plot(t, v, pen=pg.mkPen(c["pulse_rate"], width=2), connect="finite",
                                  name="pulse /min")
        self.dose_lines = []
        for d in self.tl.doses:
            t = self.tl.rel(d["t_wall"])
            for plot in (self.vitals, self.bp, self.scales, self.lanes, self.pleth):
                line = pg.InfiniteLine(t, angle=90, movable=False,
                                       pen=pg.mkPen(style.DOSE, width=1, style=Qt.PenStyle.DashLine))
                plot.addItem(line)
                self.dose_lines.append(line)

    def _nibp(self) -> None:
        rows = [r for r in self.tl.nibp if r.systolic is not None and r.diastolic is not None]
        colour = style.PARAMETER_COLOURS["nibp"]
        self.bp.setYRange(40, 200)
        if rows:
            x = np.array([r.t for r in rows])
            top = np.array([r.systolic for r in rows], dtype=float)
            bottom = np.array([r.diastolic for r in rows], dtype=float)
            mid = (top + bottom) / 2
            self.bp_bars = pg.ErrorBarItem(x=x, y=mid, top=top - mid, bottom=mid - bottom,
                                           pen=pg.mkPen(colour, width=2), beam=0.0)
            self.bp.addItem(self.bp_bars)
            self.bp.addItem(pg.ScatterPlotItem(x, top, symbol="t1", size=9, brush=colour, pen=None))
            self.bp.addItem(pg.ScatterPlotItem(x, bottom, symbol="t", size=9, brush=colour, pen=None))
            manual = [r for r in rows if r.source == "manual"]
            if manual:
                self.bp.addItem(pg.ScatterPlotItem(
                    [r.t for r in manual], [r.systolic for r in manual], symbol="o", size=13,
                    brush=None, pen=pg.mkPen(style.TEXT, width=1.5)))
        means = [r for r in self.tl.nibp if r.mean is not None]
        self.bp_mean = pg.ScatterPlotItem([r.t for r in means], [r.mean for r in means], size=7,
                                          brush=pg.mkBrush(colour), pen=None)
        self.bp.addItem(self.bp_mean)
        failed = [r for r in self.tl.nibp if r.failed]
        if failed:
            self.bp.addItem(pg.ScatterPlotItem([r.t for r in failed], [50] * len(failed),
                                               symbol="x", size=12,
                                               brush=pg.mkBrush(style.ALARM_COLOURS["low"]),
                                               pen=pg.mkPen(style.ALARM_COLOURS["low"])))
        self.nibp_points = len(rows)

    def _scales(self) -> None:
        p = self.scales
        by_scale: dict[str, list] = {}
        for s in self.tl.scales:
            e = s["effective"]
            if e["total"] is not None:
                by_scale.setdefault(e["scale"], []).append((self.tl.rel(s["t_wall"]), e["total"]))
        self.scale_labels = []
        top = max((v for pts in by_scale.values() for _t, v in pts), default=5)
        p.setYRange(-1, top * 1.35 + 1)
        for i, (name, pts) in enumerate(sorted(by_scale.items())):
            colour = style.SCALE_COLOURS[i % len(style.SCALE_COLOURS)]
            x, y = zip(*pts)
            p.plot(x, y, pen=pg.mkPen(colour, width=1), symbol="o", symbolSize=8,
                   symbolBrush=colour, symbolPen=None)
            for t, v in pts:
                label = pg.TextItem(f"{name.upper()} {v:g}", color=colour, anchor=(0.5, 1.2))
                label.setPos(t, v)
                p.addItem(label)
                self.scale_labels.append(label)

    def _lanes(self) -> None:
        p = self.lanes
        p.setYRange(-0.6, len(LANES) - 0.4)
        p.getAxis("left").setTicks([[(i, name) for i, name in enumerate(LANES)]])
        p.showGrid(x=True, y=False)
        tl = self.tl
        self.lane_items: dict[str, list] = {name: [] for name in LANES}

        near = max(tl.duration_s, 60.0) * 0.06  # labels closer than this alternate up and down
        last: dict[int, tuple[float, int]] = {}

        def mark(lane: int, t: float, text: str, colour: str, symbol: str = "o",
                 label: bool = True) -> None:
            dot = pg.ScatterPlotItem([t], [lane], symbol=symbol, size=11, brush=pg.mkBrush(colour),
                                     pen=None)
            dot.setToolTip(text.strip())
            p.addItem(dot)
            self.lane_items[LANES[lane]].append(dot)
            if not label:
                return
            prev = last.get(lane)
            flip = 1 - prev[1] if prev is not None and t - prev[0] < near else 0
            last[lane] = (t, flip)
            item = pg.TextItem(text, color=colour, anchor=(0, 0.95 if flip == 0 else 0.05))
            item.setPos(t, lane)
            p.addItem(item)

        for d in tl.doses:
            e = d["effective"]
            amount = f" {e['amount']:g} {e.get('unit') or ''}" if e.get("amount") is not None else ""
            mark(0, tl.rel(d["t_wall"]), f" {e['action'].replace('_', ' ')}{amount}", style.DOSE, "d")
        for e in tl.events:
            data = e["effective"]["data"]
            if e["kind"] == "workflow.state":
                text = data.get("to", "")
            elif e["kind"] in ("event",):
                text = data.get("label") or data.get("type") or "event"
            else:
                text = e["kind"].replace(".", " ")
            mark(1, tl.rel(e["t_wall"]), f" {text}", style.EVENT,
                 label=e["kind"] in ("event", "note", "discharge", "checkin"))
        for a in tl.alarms:
            colour = style.ALARM_COLOURS.get(a["priority"], style.DIM)
            mark(2, tl.rel(a["start_wall"]), f" {a['priority'][0].upper()}: {a['label'] or a['condition']}",
                 colour, "s")
            for act in a["actions"]:
                mark(3, tl.rel(act["t_wall"]), f" {act['action'].replace('_', ' ')}"
                     f" ({act['user_id'] or '?'})", colour, "t1")
        for am in tl.amendments:
            what = am["target_table"].rstrip("s").replace("_", " ")
            mark(4, tl.rel(am["t_wall"]), f" {what} {am['target_id']} amended: {am['reason']}",
                 style.AMENDMENT, "star")

    def _pleth(self) -> None:
        p = self.pleth
        # a 1-pixel pen: Qt strokes wider antialiased paths ten times slower (10 minutes of pleth)
        self.pleth_curve = p.plot([], [], pen=pg.mkPen(style.PARAMETER_COLOURS["pleth"], width=1),
                                  connect="finite")
        self.pleth_hint = pg.TextItem("", color=style.DIM, anchor=(0.5, 0.5))
        p.addItem(self.pleth_hint, ignoreBounds=True)
        if not self.tl.waveforms:
            self.pleth_hint.setText("no waveform recorded")

    def _range_changed(self, *_):
        if not self._stopped:
            self._wave_timer.start()  # load the pleth once the view settles

    def stop(self) -> None:
        """No more waveform reads (the window is closing; its database may close next)."""
        self._stopped = True
        self._wave_timer.stop()

    # -- navigation ----------------------------------------------------------------------------
    def show_all(self) -> None:
        span = max(self.tl.duration_s, 60.0)
        self.vitals.setXRange(0, span, padding=0.01)

    def show_range(self, t_from: float, t_to: float) -> None:
        self.vitals.setXRange(t_from, t_to, padding=0)

    def center_on(self, t: float, half_width: float = 120.0) -> None:
        self.show_range(t - half_width, t + half_width)

    def view_range(self) -> tuple[float, float]:
        x0, x1 = self.vitals.viewRange()[0]
        return float(x0), float(x1)

    # -- the pleth, by visible range -----------------------------------------------------------
    def update_waveform(self) -> None:
        if self._stopped or not self.tl.waveforms:
            return
        x0, x1 = self.view_range()
        width = x1 - x0
        if width > MAX_WAVEFORM_SPAN_S:
            self.pleth_curve.setData([], [])
            self.pleth_t = self.pleth_y = np.empty(0)
            self.loaded_range = None
            self.pleth_hint.setText(f"zoom in to {MAX_WAVEFORM_SPAN_S / 60:g} minutes or less to "
                                    "see the pleth")
            self.pleth.setYRange(0, 1)
            self.pleth_hint.setPos((x0 + x1) / 2, 0.5)
            return
        self.pleth_hint.setText("")
        if self.loaded_range is None or x0 < self.loaded_range[0] or x1 > self.loaded_range[1]:
            lo, hi = max(0.0, x0 - width / 2), x1 + width / 2  # a margin for panning
            self.pleth_t, self.pleth_y = waveform_window(self.db, self.tl.session_id,
                                                         self.tl.t0_wall, lo, hi)
            self.loaded_range = (lo, hi)
            self.pleth_loads += 1
        visible = (self.pleth_t >= x0) & (self.pleth_t <= x1)
        n = int(visible.sum())
        if n < SAMPLE_DOTS_BELOW:
            self.pleth_curve.setData(self.pleth_t, self.pleth_y, connect="finite", symbol="o",
                                     symbolSize=5, symbolBrush=style.PARAMETER_COLOURS["pleth"],
                                     symbolPen=None)
        else:
            self.pleth_curve.setData(self.pleth_t, self.pleth_y, connect="finite", symbol=None)
        if n:
            y = self.pleth_y[visible]
            y = y[np.isfinite(y)]
            if len(y):
                lo, hi = float(y.min()), float(y.max())
                pad = max(1.0, (hi - lo) * 0.08)
                self.pleth.setYRange(lo - pad, hi + pad, padding=0)

    def visible_samples(self) -> int:
        x0, x1 = self.view_range()
        return int(((self.pleth_t >= x0) & (self.pleth_t <= x1) & np.isfinite(self.pleth_y)).sum())
