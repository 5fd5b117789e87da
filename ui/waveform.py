"""A sweeping pleth waveform, drawn as bedside monitors do: a fixed window that is overwritten from
left to right, with a small erase gap ahead of the newest sample. One persistent curve fed from a
ring buffer; nothing is allocated per frame beyond the numpy view."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from . import theme


class PlethSweepWidget(pg.PlotWidget):
    def __init__(self, rate_hz: float = 75.0, window_s: float = 6.0, parent=None):
        super().__init__(parent=parent, background=theme.BACKGROUND)
        self.rate_hz = rate_hz
        self.n = int(rate_hz * window_s)
        self.y = np.full(self.n, np.nan, dtype=np.float32)
        self.x = np.arange(self.n, dtype=np.float32) / rate_hz
        self.pos = 0
        self.gap = max(1, int(rate_hz * 0.25))
        self.samples_seen = 0
        item = self.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.setMouseEnabled(False, False)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setXRange(0, window_s, padding=0)
        item.setYRange(0, 255, padding=0.05)
        self.curve = item.plot(self.x, self.y, pen=pg.mkPen(theme.PARAMETER_COLOURS["pleth"], width=2),
                               connect="finite")
        self._dirty = False

    def add_samples(self, samples) -> None:
        a = np.asarray(samples, dtype=np.float32)
        if len(a) >= self.n:
            a = a[-self.n:]
        end = self.pos + len(a)
        if end <= self.n:
            self.y[self.pos:end] = a
        else:
            k = self.n - self.pos
            self.y[self.pos:] = a[:k]
            self.y[: end - self.n] = a[k:]
        self.pos = end % self.n
        gap_end = self.pos + self.gap
        if gap_end <= self.n:
            self.y[self.pos:gap_end] = np.nan
        else:
            self.y[self.pos:] = np.nan
            self.y[: gap_end - self.n] = np.nan
        self.samples_seen += len(samples)
        self._dirty = True

    def set_range(self, low: float, high: float) -> None:
        self.getPlotItem().setYRange(low, high, padding=0.05)

    def clear_trace(self) -> None:
        self.y[:] = np.nan
        self._dirty = True

    def redraw(self) -> bool:
        if not self._dirty:
            return False
        self.curve.setData(self.x, self.y, connect="finite")
        self._dirty = False
        return True
