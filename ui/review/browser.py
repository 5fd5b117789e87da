"""The session browser: filters over a paged table of sessions, newest first.

The model reads one page at a time (Qt's canFetchMore/fetchMore), so a database with thousands of
sessions opens at once; every query is ``ketmonitor.review.list_sessions`` (indexed SQL). Double-click
or Enter on a row emits ``session_opened(session_id)``. "Export..." exports the selected rows (Ctrl-
or Shift-click for several) or everything the filters find, through the same runner as
``ketmonitor export`` (export_dialog.py).
"""

from __future__ import annotations

from datetime import datetime, time

from PySide6.QtCore import QAbstractTableModel, QDate, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDateEdit,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableView,
                               QVBoxLayout, QWidget)

from ketmonitor import review
from ketmonitor.errors import KetmonitorError

from . import style

PAGE = 200
COLUMNS = ("Started", "Duration", "Patient", "MRN", "Protocol", "Status", "High alarms",
           "Signatures")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "open"
    m = int(round(seconds / 60))
    return f"{m // 60}:{m % 60:02d} h" if m >= 60 else f"{m} min"


class SessionTableModel(QAbstractTableModel):
    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.filters = review.SessionFilter()
        self.rows: list[review.SessionRow] = []
        self.total = 0

    # -- loading -------------------------------------------------------------------------------
    def set_filters(self, filters: review.SessionFilter) -> None:
        self.beginResetModel()
        self.filters = filters
        self.total = review.count_sessions(self.db, filters)
        self.rows = review.list_sessions(self.db, filters, limit=PAGE)
        self.endResetModel()

    def canFetchMore(self, parent=QModelIndex()) -> bool:  # noqa: N802 - Qt name
        return not parent.isValid() and len(self.rows) < self.total

    def fetchMore(self, parent=QModelIndex()) -> None:  # noqa: N802
        more = review.list_sessions(self.db, self.filters, limit=PAGE, offset=len(self.rows))
        if more:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(more) - 1)
            self.rows.extend(more)
            self.endInsertRows()

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (review.local_time(r.started_utc, seconds=False), _duration(r.duration_s),
                    r.patient_name or "-", r.mrn or "-", r.protocol or "-", r.status_text,
                    str(r.high_alarms) if r.high_alarms else "", str(r.signatures))[col]
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 6 and r.high_alarms:
                return QColor(style.ALARM_COLOURS["high"])
            if col == 5:
                return QColor(style.STATUS_COLOURS.get(r.status, style.TEXT))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (6, 7):
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"session {r.id}"
        if role == Qt.ItemDataRole.UserRole:
            return r.id
        return None

    def session_id(self, row: int) -> str:
        return self.rows[row].id


class _SessionTable(QTableView):
    """Enter or Return opens the current row (a key event, so it works without window focus)."""

    enter_pressed = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.enter_pressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class SessionBrowserWidget(QWidget):
    """Filters and the session table. Takes an open database and the logged-in user."""

    session_opened = Signal(str)

    def __init__(self, db, user, parent=None):
        super().__init__(parent)
        self.db = db
        self.user = user
        self.setObjectName("reviewRoot")
        self.setStyleSheet(style.STYLESHEET)
        self.model = SessionTableModel(db, self)
        self._build()
        self.apply_filters()

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        title = QLabel("Review sessions")
        title.setObjectName("title")
        who = QLabel(f"{self.user.full_name} ({self.user.role})")
        who.setObjectName("dim")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(who)
        outer.addLayout(head)

        choices = review.filter_choices(self.db)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for row in (row1, row2):
            row.setSpacing(8)

        def label(text: str) -> QLabel:
            lab = QLabel(text)
            lab.setObjectName("dim")
            return lab

        self.use_dates = QCheckBox("Started from")
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addDays(-30))
        self.date_to = QDateEdit(today)
        for d in (self.date_from, self.date_to):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
            d.setEnabled(False)
            d.setMinimumWidth(130)
        self.use_dates.toggled.connect(self.date_from.setEnabled)
        self.use_dates.toggled.connect(self.date_to.setEnabled)
        row1.addWidget(self.use_dates)
        row1.addWidget(self.date_from)
        row1.addWidget(label("to"))
        row1.addWidget(self.date_to)
        row1.addSpacing(24)
        self.patient = QLineEdit()
        self.patient.setPlaceholderText("name or MRN")
        self.patient.setClearButtonEnabled(True)
        self.patient.setMinimumWidth(220)
        row1.addWidget(label("Patient"))
        row1.addWidget(self.patient, 1)
        row1.addSpacing(24)
        self.clinician = QComboBox()
        self.clinician.addItem("any clinician", None)
        for uid, name in choices["clinicians"]:
            self.clinician.addItem(f"{name} ({uid})", uid)
        self.clinician.setMinimumWidth(240)
        row1.addWidget(label("Clinician"))
        row1.addWidget(self.clinician)
        self.protocol = QComboBox()
        self.protocol.addItem("any protocol", None)
        for p in choices["protocols"]:
            self.protocol.addItem(p, p)
        self.protocol.setMinimumWidth(220)
        row2.addWidget(label("Protocol"))
        row2.addWidget(self.protocol)
        row2.addSpacing(24)
        self.status = QComboBox()
        self.status.addItem("any status", None)
        for s in review.STATUSES:
            self.status.addItem(s, s)
        self.status.setMinimumWidth(140)
        row2.addWidget(label("Status"))
        row2.addWidget(self.status)
        row2.addSpacing(24)
        self.high_alarms = QCheckBox("had high-priority alarms")
        row2.addWidget(self.high_alarms)
        row2.addStretch(1)
        self.apply_button = QPushButton("Search")
        self.apply_button.setDefault(True)
        self.apply_button.clicked.connect(self.apply_filters)
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.clicked.connect(self.clear_filters)
        row2.addWidget(self.clear_button)
        row2.addWidget(self.apply_button)
        outer.addLayout(row1)
        outer.addLayout(row2)
        self.patient.returnPressed.connect(self.apply_filters)
        self.high_alarms.toggled.connect(self.apply_filters)
        for combo in (self.clinician, self.protocol, self.status):
            combo.currentIndexChanged.connect(self.apply_filters)

        self.table = _SessionTable()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda idx: self.open_row(idx.row()))
        self.table.enter_pressed.connect(self.open_current)
        outer.addWidget(self.table, 1)
        foot = QHBoxLayout()
        self.count_label = QLabel("")
        self.count_label.setObjectName("dim")
        self.message = QLabel("")
        self.message.setObjectName("error")
        self.open_button = QPushButton("Open session")
        self.open_button.clicked.connect(self.open_current)
        self.export_button = QPushButton("Export...")
        self.export_button.setToolTip("export the selected sessions, or all the filters find, as "
                                      "json, csv, fhir, pdf or the REMS form")
        self.export_button.clicked.connect(self.export_dialog)
        foot.addWidget(self.count_label)
        foot.addWidget(self.message, 1)
        foot.addWidget(self.export_button)
        foot.addWidget(self.open_button)
        outer.addLayout(foot)

    # -- filters -------------------------------------------------------------------------------
    def filters(self) -> review.SessionFilter:
        since = until = None
        if self.use_dates.isChecked():
            since = datetime.combine(self.date_from.date().toPython(), time()).timestamp()
            end = self.date_to.date().addDays(1).toPython()  # the whole last day, local time
            until = datetime.combine(end, time()).timestamp()
        return review.SessionFilter(
            since=since, until=until, patient=self.patient.text().strip() or None,
            clinician=self.clinician.currentData(), protocol=self.protocol.currentData(),
            status=self.status.currentData(), high_alarms=self.high_alarms.isChecked())

    def apply_filters(self) -> None:
        try:
            f = self.filters()
            self.model.set_filters(f)
            review.audit_search(self.db, self.user.id, f, self.model.total)
        except KetmonitorError as exc:
            self.message.setText(str(exc))
            return
        self.message.setText("")
        shown = self.model.total
        self.count_label.setText(f"{shown} session{'s' if shown != 1 else ''}")
        if self.model.rows:
            self.table.selectRow(0)

    def refresh(self) -> None:
        """Re-read the current page (after a signature changed a status); the same search, so not
        audited again."""
        self.model.set_filters(self.model.filters)

    def clear_filters(self) -> None:
        widgets = (self.use_dates, self.patient, self.clinician, self.protocol, self.status,
                   self.high_alarms)
        for w in widgets:
            w.blockSignals(True)
        self.use_dates.setChecked(False)
        self.date_from.setEnabled(False)
        self.date_to.setEnabled(False)
        self.patient.clear()
        for combo in (self.clinician, self.protocol, self.status):
            combo.setCurrentIndex(0)
        self.high_alarms.setChecked(False)
        for w in widgets:
            w.blockSignals(False)
        self.apply_filters()

    # -- opening -------------------------------------------------------------------------------
    def visible_ids(self) -> list[str]:
        return [r.id for r in self.model.rows]

    def open_current(self) -> None:
        idx = self.table.currentIndex()
        if idx.isValid():
            self.open_row(idx.row())

    def open_row(self, row: int) -> None:
        self.session_opened.emit(self.model.session_id(row))

    # -- exporting -----------------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        """The selected sessions, oldest first (the order ``ketmonitor export`` writes them in)."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        picked = [self.model.rows[r] for r in rows]
        return [r.id for r in sorted(picked, key=lambda r: (r.started_utc, r.id))]

    def db_path(self) -> str:
        return next(r[2] for r in self.db.conn.execute("PRAGMA database_list") if r[1] == "main")

    def export_dialog(self):
        """The export dialog on the current selection and filters (not modal: the browser stays
        usable while a long export runs). One at a time: while one is open (exporting, or showing
        what it wrote) it is brought back, never replaced by a second dialog the first would then
        go on exporting behind."""
        from .export_dialog import ExportDialog

        current = getattr(self, "_export", None)
        if current is not None and (current.isVisible() or current.running()):
            current.show()
            current.raise_()
            current.activateWindow()
            return current
        dialog = ExportDialog(self.db_path(), self.user, selected=self.selected_ids(),
                              filters=self.model.filters, matching=self.model.total, parent=self)
        self._export = dialog
        dialog.show()
        return dialog

    def close_export(self) -> None:
        """Stop an export under way (waits for the session being written) and close its dialog:
        the browser is closing."""
        current = getattr(self, "_export", None)
        if current is not None:
            current.shutdown()
