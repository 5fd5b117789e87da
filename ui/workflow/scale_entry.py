"""Fast, keyboard-only scale entry on one screen: pick the scale, type one digit per item (focus
moves on by itself when the value cannot grow), Enter saves. The total and subscales update as
you type."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from ketmonitor.errors import KetmonitorError
from ketmonitor.workflow import SessionWorkflow

from .. import theme
from .common import ErrorLabel, heading


def value_complete(text: str, lo: int, hi: int) -> bool:
    """True when ``text`` is a valid score that no further digit could extend."""
    try:
        value = int(text)
    except ValueError:
        return False
    if not lo <= value <= hi:
        return False
    return not any(lo <= int(text + d) <= hi for d in "0123456789")


class ItemEdit(QLineEdit):
    completed = Signal()

    def __init__(self, lo: int, hi: int, parent=None):
        super().__init__(parent)
        self.lo, self.hi = lo, hi
        self.setValidator(QIntValidator(lo, hi, self))
        self.setMaximumWidth(44)
        self.setAlignment(Qt.AlignCenter)
        self.textEdited.connect(self._edited)

    def _edited(self, text: str) -> None:
        if value_complete(text, self.lo, self.hi):
            self.completed.emit()

    def value(self) -> int | None:
        try:
            v = int(self.text())
        except ValueError:
            return None
        return v if self.lo <= v <= self.hi else None


class ScaleEntryWidget(QWidget):
    saved = Signal(int)  # scale entry id

    def __init__(self, workflow: SessionWorkflow, parent=None):
        super().__init__(parent)
        self.workflow = workflow
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Rating scales"))
        top = QHBoxLayout()
        self.scale_box = QComboBox()
        for sid, scale in sorted(workflow.scales.items(), key=lambda kv: kv[1].short):
            self.scale_box.addItem(f"{scale.short} - {scale.title}", sid)
        self.variant_box = QComboBox()
        top.addWidget(self.scale_box, 1)
        top.addWidget(self.variant_box)
        layout.addLayout(top)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        layout.addWidget(self.scroll, 1)
        self.total_label = QLabel("")
        self.total_label.setStyleSheet(f"color: {theme.TEXT}; font-size: 16px; font-weight: bold;")
        layout.addWidget(self.total_label)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.save_button = QPushButton("Save (Enter)")
        self.save_button.clicked.connect(self.save)
        layout.addWidget(self.save_button)
        self.items: dict[int, ItemEdit] = {}
        self.scale_box.currentIndexChanged.connect(self._build_items)
        self.variant_box.currentIndexChanged.connect(self._variant_changed)
        self._build_items()

    @property
    def scale(self):
        return self.workflow.scales[self.scale_box.currentData()]

    def select(self, scale_id: str) -> None:
        self.scale_box.setCurrentIndex(self.scale_box.findData(scale_id))
        self.focus_first()

    def focus_first(self) -> None:
        if self.items:
            next(iter(self.items.values())).setFocus()

    def _build_items(self) -> None:
        scale = self.scale
        self.variant_box.blockSignals(True)
        self.variant_box.clear()
        self.variant_box.addItems(list(scale.variants))
        self.variant_box.setCurrentText(scale.default_variant)
        self.variant_box.setVisible(len(scale.variants) > 1)
        self.variant_box.blockSignals(False)
        body = QWidget()
        grid = QGridLayout(body)
        grid.setVerticalSpacing(2)
        v = scale.variant(self.variant_box.currentText())
        self.items = {}
        previous = None
        for row, item in enumerate(scale.items):
            edit = ItemEdit(v.min, v.max)
            edit.textChanged.connect(self._update_total)
            edit.returnPressed.connect(self.save)
            label = QLabel(f"{item.n}. {item.label}")
            label.setWordWrap(True)
            grid.addWidget(edit, row, 0)
            grid.addWidget(label, row, 1)
            if previous is not None:
                previous.completed.connect(edit.setFocus)
                QWidget.setTabOrder(previous, edit)
            previous = edit
            self.items[item.n] = edit
        # the last item keeps the focus: Enter saves
        anchors = ", ".join(f"{k} {t}" for k, t in sorted(v.anchors.items(), reverse=True))
        hint = QLabel(f"{v.min}..{v.max}" + (f": {anchors}" if anchors else ""))
        hint.setWordWrap(True)
        hint.setStyleSheet(f"color: {theme.DIM};")
        grid.addWidget(hint, len(scale.items), 0, 1, 2)
        self.scroll.setWidget(body)
        self._update_total()

    def _variant_changed(self) -> None:
        v = self.scale.variant(self.variant_box.currentText())
        for edit in self.items.values():
            edit.lo, edit.hi = v.min, v.max
            edit.setValidator(QIntValidator(v.min, v.max, edit))
        self._update_total()

    def values(self) -> dict[int, int]:
        return {n: e.value() for n, e in self.items.items() if e.value() is not None}

    def _update_total(self) -> None:
        try:
            score = self.scale.score(self.values(), self.variant_box.currentText())
        except KetmonitorError as exc:
            self.total_label.setText(str(exc))
            return
        entered = len(score.items)
        total = f"total {score.total:g}" if score.total is not None else \
            f"{entered} of {len(self.items)} items"
        subs = ", ".join(f"{k} {v:g}" for k, v in score.subscales.items())
        self.total_label.setText(f"{self.scale.short}: {total}" + (f" ({subs})" if subs else ""))

    def save(self) -> None:
        try:
            entry_id, score = self.workflow.record_scale(self.scale.id, self.values(),
                                                         variant=self.variant_box.currentText())
        except KetmonitorError as exc:
            self.error.show_error(str(exc))
            return
        self.error.clear_error()
        for edit in self.items.values():
            edit.clear()
        self.total_label.setText(f"Saved {self.scale.short}"
                                 + (f": total {score.total:g}" if score.total is not None else ""))
        self.saved.emit(entry_id)
