"""After a crash: offer to resume or close each session that was left open."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QPushButton, QVBoxLayout

from ketmonitor.clock import parse_utc


def _local(text: str | None) -> str:
    if not text:
        return "?"
    return datetime.fromtimestamp(parse_utc(text)).strftime("%Y-%m-%d %H:%M:%S")


class RecoveryDialog(QDialog):
    """Lists unfinished sessions; the result is ``("resume", id)``, ``("close", id)`` or None."""

    def __init__(self, sessions: list[dict], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Unfinished session found")
        self.sessions = sessions
        self.decision: tuple[str, str] | None = None
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("ketmonitor was stopped while a session was still open (a crash or a "
                             "power cut).\nData up to the last second before the stop is kept. "
                             "Resume the session or close it?"))
        self.list = QListWidget()
        for s in sessions:
            self.list.addItem(f"started {_local(s['started_utc'])}, last data {_local(s['last_seen_utc'])}"
                              f"  protocol {s.get('protocol') or '-'}  patient {s.get('patient_id') or '-'}")
        self.list.setCurrentRow(0)
        lay.addWidget(self.list)
        buttons = QDialogButtonBox()
        self.resume_button = QPushButton("Resume monitoring")
        self.close_button = QPushButton("Close session")
        self.later_button = QPushButton("Decide later")
        buttons.addButton(self.resume_button, QDialogButtonBox.AcceptRole)
        buttons.addButton(self.close_button, QDialogButtonBox.DestructiveRole)
        buttons.addButton(self.later_button, QDialogButtonBox.RejectRole)
        self.resume_button.clicked.connect(lambda: self._decide("resume"))
        self.close_button.clicked.connect(lambda: self._decide("close"))
        self.later_button.clicked.connect(self.reject)
        lay.addWidget(buttons)

    def _decide(self, what: str) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self.decision = (what, self.sessions[row]["id"])
        self.accept()
