"""Exporting from the session browser: the selected sessions or every session the filters find, in
any format of ``ketmonitor export``, into a chosen folder.

The export is ``ketmonitor.export.export_database`` — the very function behind ``ketmonitor
export`` — so it writes the same files and the same audit entries (``session.exported`` per
session, ``export.completed``; ``origin`` "review browser", the logged-in user as ``user_id``). It
runs on a worker thread as a plain future with a connection of its own; a QTimer polls its progress
(a tuple the worker replaces, never a Qt call off the main thread). Cancel stops it before the next
session; what was already written stays, complete, and the run is audited as cancelled. Closing the
dialog while it runs (Close, Esc, the window's X) cancels it the same way: the dialog stays until the
worker has stopped and then closes itself, so no export goes on behind a hidden dialog. The browser
keeps one dialog: "Export..." while one is open brings it back.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QFileDialog,
                               QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton, QRadioButton, QVBoxLayout)

from ketmonitor import review
from ketmonitor.errors import KetmonitorError
from ketmonitor.export import ExportCancelled, ExportResult, export_database, select_sessions

from . import style

log = logging.getLogger(__name__)
FORMATS = (("pdf", "PDF session report"), ("fhir", "FHIR R4 bundle per session"),
           ("csv", "CSV tables (numerics, NIBP, doses, scales, events, alarms)"),
           ("rems", "REMS patient monitoring form (esketamine)"),
           ("json", "signed record, exactly as stored"))


DIALOG_STYLE = f"""
QRadioButton {{ color: {style.TEXT}; }}
QRadioButton:disabled, QCheckBox:disabled {{ color: {style.DIM}; }}
QProgressBar {{ background: {style.PANEL}; color: {style.TEXT}; border: 1px solid {style.GRID};
    border-radius: 4px; text-align: center; min-height: 20px; }}
QProgressBar::chunk {{ background: #2d6fb3; border-radius: 3px; }}
"""


class ExportDialog(QDialog):
    """Choose sessions, format and folder; run, follow, cancel; read what was written."""

    exported = Signal(object)  # the ExportResult, after a run that wrote files

    def __init__(self, db_path, user, *, selected: list[str], filters: review.SessionFilter,
                 matching: int, parent=None):
        super().__init__(parent)
        self.db_path = Path(db_path)
        self.user = user
        self.selected = list(selected)
        self.filters = filters
        self.matching = matching
        self.setWindowTitle("Export sessions")
        self.setStyleSheet(style.STYLESHEET + DIALOG_STYLE)
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.future: Future | None = None
        self.cancel_event = threading.Event()
        self.progress_state: tuple[int, int, str] | None = None  # replaced by the worker
        self.result: ExportResult | None = None
        self.error: str | None = None
        self._poll = QTimer(self)
        self._poll.setInterval(50)
        self._poll.timeout.connect(self._check)
        self._close_after: int | None = None  # closed while running: close with this when stopped
        self._build(matching)

    # -- layout --------------------------------------------------------------------------------
    def _build(self, matching: int) -> None:
        v = QVBoxLayout(self)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        n = len(self.selected)
        self.use_selected = QRadioButton(f"the {n} selected session{'s' if n != 1 else ''}")
        self.use_filtered = QRadioButton(f"all {matching} session{'s' if matching != 1 else ''} "
                                         "the filters find")
        self.scope = QButtonGroup(self)
        for b in (self.use_selected, self.use_filtered):
            self.scope.addButton(b)
        self.use_selected.setEnabled(n > 0)
        self.use_filtered.setEnabled(matching > 0)
        (self.use_selected if n else self.use_filtered).setChecked(True)
        grid.addWidget(self._dim("Sessions"), 0, 0)
        grid.addWidget(self.use_selected, 0, 1)
        grid.addWidget(self.use_filtered, 1, 1)
        self.format = QComboBox()
        for fmt, text in FORMATS:
            self.format.addItem(f"{fmt} — {text}", fmt)
        grid.addWidget(self._dim("Format"), 2, 0)
        grid.addWidget(self.format, 2, 1)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("the folder to write the files into")
        self.folder.setMinimumWidth(420)
        self.folder.textChanged.connect(self._update_buttons)
        self.choose_button = QPushButton("Choose...")
        self.choose_button.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(self.choose_button)
        grid.addWidget(self._dim("Folder"), 3, 0)
        grid.addLayout(row, 3, 1)
        self.overwrite = QCheckBox("replace files already in the folder")
        grid.addWidget(self.overwrite, 4, 1)
        v.addLayout(grid)
        note = self._dim(f"Exported as {self.user.full_name} ({self.user.id}); every session and "
                         "the export are written to the audit trail.")
        note.setWordWrap(True)
        v.addWidget(note)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")
        v.addWidget(self.bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setMinimumHeight(150)
        self.summary.setPlaceholderText("The files written, and any session that does not match "
                                        "its signed record, are listed here after the export.")
        v.addWidget(self.summary, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel export", self)
        self.cancel_button.ensurePolished()  # with the dialog's style sheet: its real padding
        self.cancel_button.setMinimumWidth(self.cancel_button.sizeHint().width())  # fits both texts
        self.cancel_button.setText("Close")
        self.cancel_button.clicked.connect(self.cancel_or_close)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.export_button)
        v.addLayout(buttons)
        self.resize(860, 560)
        self._update_buttons()

    @staticmethod
    def _dim(text: str) -> QLabel:
        lab = QLabel(text)
        lab.setObjectName("dim")
        return lab

    def _say(self, text: str, colour: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {colour}; font-weight: bold;")

    def _update_buttons(self) -> None:
        running = self.running()
        for w in (self.format, self.folder, self.choose_button, self.overwrite):
            w.setEnabled(not running)
        self.use_selected.setEnabled(not running and bool(self.selected))
        self.use_filtered.setEnabled(not running and self.matching > 0)
        self.export_button.setEnabled(not running and bool(self.folder.text().strip()))
        self.cancel_button.setText("Cancel export" if running else "Close")

    def choose_folder(self) -> None:
        start = self.folder.text().strip() or str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Export into folder", start)
        if chosen:
            self.folder.setText(chosen)

    # -- running -------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.future is not None and not self.future.done()

    def start(self) -> None:
        if self.running():
            return
        folder = self.folder.text().strip()
        if not folder:
            self._say("Choose a folder to export into.", style.FAILED)
            return
        fmt = self.format.currentData()
        if self.use_selected.isChecked():
            ids = list(self.selected)
            choose = lambda db: select_sessions(db, session_ids=ids)  # noqa: E731 - as the CLI
        else:
            filters = self.filters
            choose = lambda db: review.export_selection(db, filters)  # noqa: E731
        self.cancel_event = threading.Event()
        self.progress_state = None
        self.result, self.error = None, None
        self.summary.clear()
        self.bar.setRange(0, 0)  # busy until the worker knows how many sessions
        self.bar.setFormat("")
        self._say(f"Exporting as {fmt}...", style.TEXT)
        self.future = self.executor.submit(
            export_database, self.db_path, fmt, folder, choose, user_id=self.user.id,
            overwrite=self.overwrite.isChecked(), progress=False, on_progress=self._on_progress,
            cancel=self.cancel_event, origin="review browser")
        self._update_buttons()
        self._poll.start()

    def _on_progress(self, done: int, total: int, session_id: str) -> None:
        self.progress_state = (done, total, session_id)  # worker thread: one atomic assignment

    def cancel_or_close(self) -> None:
        if self.running():
            self._cancel()
        else:
            self.close()

    def _cancel(self) -> None:
        self.cancel_event.set()
        self._say("Cancelling after the session being written...", style.TEXT)
        self.cancel_button.setEnabled(False)

    def _check(self) -> None:
        state = self.progress_state
        if state is not None:
            done, total, sid = state
            self.bar.setRange(0, total)
            self.bar.setValue(done)
            self.bar.setFormat(f"{done}/{total} sessions")
            if not self.cancel_event.is_set():
                self.status.setText(f"Exported session {sid} ({done} of {total})")
        if self.future is None or not self.future.done():
            return
        self._poll.stop()
        self.cancel_button.setEnabled(True)
        try:
            self._report()
        finally:
            self._update_buttons()
            if self._close_after is not None:  # closed (Esc, the window's X) while it ran
                self.done(self._close_after)

    def _report(self) -> None:
        try:
            result = self.future.result()
        except ExportCancelled as exc:
            self._finished_error(f"Cancelled: {exc}.", cancelled=True)
        except KetmonitorError as exc:
            self._finished_error(f"Export failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug: said plainly, logged, the app goes on
            log.exception("export from the review browser failed")
            self._finished_error(f"Export failed: {type(exc).__name__}: {exc}")
        else:
            self._finished(result)

    def _finished_error(self, text: str, *, cancelled: bool = False) -> None:
        self.error = text
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")
        self._say(text, style.DIM if cancelled else style.FAILED)

    def _finished(self, result: ExportResult) -> None:
        self.result = result
        total = len(result.sessions) + len(result.skipped)
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(total)
        n = len(result.sessions)
        head = (f"Exported {n} session{'s' if n != 1 else ''} as {result.format} to "
                f"{result.folder}: {len(result.files)} files ({result.seconds:.1f} s).")
        if result.cancelled:
            head = "Cancelled. " + head + " The other sessions were not exported."
        lines = [head, ""]
        if result.flagged:
            lines.append(f"WARNING: {len(result.flagged)} session(s) DO NOT MATCH their signed "
                         "record; the files are marked:")
            lines += [f"  {w}" for w in result.warnings]
            lines.append("")
        elif result.warnings:
            lines += [f"WARNING: {w}" for w in result.warnings] + [""]
        if result.skipped:
            lines.append("Skipped:")
            lines += [f"  {sid}: {why}" for sid, why in result.skipped.items()]
            lines.append("")
        lines.append("Files:")
        lines += [f"  {name}" for name in sorted(result.files)]
        self.summary.setPlainText("\n".join(lines))
        if result.flagged:
            self._say(f"Exported, but {len(result.flagged)} session(s) DO NOT MATCH their signed "
                      "record: see below.", style.FAILED)
        else:
            self._say(head, style.DIM if result.cancelled else style.SIGNED)
        self.exported.emit(result)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running export ends (tests, shutting down)."""
        if self.future is not None:
            self.future.exception(timeout=timeout)

    def done(self, result: int) -> None:
        """Every way the dialog ends (Close, Esc, the window's X, accept) comes here. While an
        export runs it is not left running behind a hidden dialog: it is cancelled after the
        session being written, the dialog stays until then, and closes itself after."""
        if self.running():
            self._cancel()
            self._close_after = result
            return
        self._close_after = None
        self._poll.stop()
        self.executor.shutdown(wait=False)  # nothing runs on it now
        super().done(result)

    def shutdown(self) -> None:
        """Cancel a running export, wait for it to stop, close (the application is closing)."""
        if self.running():
            self._cancel()
            self.wait()
            self._check()
        self.done(QDialog.DialogCode.Rejected.value)
