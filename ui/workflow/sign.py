"""The last step at the bedside: the ended session's record signed, then the next patient.

``SessionEndForm`` is the panel's step once the session has ended. "Sign record..." opens the
application's one signing dialog (``ui.review.dialogs.SignDialog``) with the meanings the signer may
sign for (``workflow_signing.prepare``: the rules of ``ketmonitor.signing.rules``, as everywhere),
and asks for the password again (21 CFR 11.200). ``ui.review.signing.SigningFlow`` decrypts the key
on a worker thread (the key derivation is deliberately slow) and the record is sealed on the store
writer's thread through ``workflow_signing.seal``; the monitor never stops. The result shows the
record id, the signer's printed name, the local time and the meaning (11.50). A wrong password
signs nothing, is audited, and is said plainly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ketmonitor import workflow_signing
from ketmonitor.errors import KetmonitorError
from ketmonitor.review import local_time

from .. import theme
from ..review.dialogs import SignDialog
from ..review.signing import SigningFlow, unexpected
from .common import ErrorLabel, heading

log = logging.getLogger(__name__)


class SessionEndForm(QWidget):
    """Session ended: sign its record; then the next patient (``next_patient``)."""

    signed = Signal(object)  # the SignedRecord

    def __init__(self, workflow, *, next_patient: Callable[[], None] | None = None, parent=None):
        super().__init__(parent)
        self.workflow = workflow
        self.executor: ThreadPoolExecutor | None = None
        self.dialog: SignDialog | None = None
        self.flow = SigningFlow(self._executor, self)
        self.flow.unlocked.connect(lambda: self.dialog and self.dialog.signing_now())
        self.flow.succeeded.connect(self._signed)
        self.flow.failed.connect(self._failed)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Session ended"))
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.sign_button = QPushButton("Sign record...")
        self.sign_button.setMinimumHeight(40)
        self.sign_button.clicked.connect(self.ask)
        layout.addWidget(self.sign_button)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setStyleSheet(f"color: {theme.PARAMETER_COLOURS['pulse_rate']};"
                                  " font-size: 15px;")
        layout.addWidget(self.result)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.next_button = QPushButton("Next patient")
        self.next_button.setToolTip("Start the next session on this monitor (monitoring goes on)")
        self.next_button.setVisible(next_patient is not None)
        if next_patient is not None:
            self.next_button.clicked.connect(next_patient)
        layout.addWidget(self.next_button)
        layout.addStretch(1)
        self.refresh()

    def _executor(self) -> ThreadPoolExecutor:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bedside-sign")
        return self.executor

    def refresh(self) -> None:
        snap = self.workflow.snapshot
        signed = snap.status in ("signed", "cosigned")
        if signed:
            self.status.setText("The record is signed.")
        elif snap.status == "abandoned":
            self.status.setText("Session ended early. Sign its record as its author.")
        else:
            self.status.setText("Sign the record as its author. The monitor keeps monitoring.")
        self.sign_button.setEnabled(snap.state == "ended" and not signed and not self.busy())
        self.next_button.setEnabled(snap.state == "ended" and not self.busy())

    def busy(self) -> bool:
        return self.flow.busy()

    # -- signing ---------------------------------------------------------------------------------
    def ask(self) -> SignDialog | None:
        """The signing dialog, or None (and the reason shown) when this user cannot sign now."""
        try:
            key, meanings = workflow_signing.prepare(self.workflow)  # fail early, before a password
        except KetmonitorError as exc:
            self.error.show_error(str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a button's slot: log, say, the monitor goes on
            log.exception("preparing the bedside signature failed")
            self.error.show_error(unexpected("Signing", exc))
            return None
        self.error.clear_error()
        patient = self.workflow.patient()
        text = f"Session {self.workflow.session_id[:8]}" + (
            f" - {patient.name} ({patient.mrn})" if patient else "")
        self.dialog = SignDialog("sign", self.workflow.user, meanings=meanings, session_text=text,
                                 parent=self)
        self.dialog.submitted.connect(
            lambda pw, meaning, _text, key=key: self.sign(pw, key, meaning))
        self.dialog.open()
        return self.dialog

    def sign(self, password: str, key, meaning: str | None = None) -> None:
        """Unlock ``key`` with ``password`` on a worker thread, then seal on the store writer."""
        wf = self.workflow
        started = self.flow.start(
            key, password, purpose=workflow_signing.purpose(wf),
            sign=lambda unlocked: workflow_signing.seal(wf, unlocked, meaning),
            wrong_password=lambda k: workflow_signing.wrong_password(wf, k))
        if started:
            self.sign_button.setEnabled(False)
            self.next_button.setEnabled(False)

    def _signed(self, record) -> None:
        try:
            self.workflow.refresh()
            sig = record.signatures[0]
            self.result.setText(f"Signed: record {record.record_id}\n{sig.printed_name} ({sig.role},"
                                f" {sig.signer_id})\n{local_time(sig.signed_at)}\n"
                                f"Meaning: {sig.meaning}")
            self.error.clear_error()
            if self.dialog is not None:
                self.dialog.done_ok()
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - a slot must not raise; the record is signed
            log.exception("showing the bedside signature failed")
            self.error.show_error(unexpected("Showing the signature", exc))
            self.refresh()
            return
        self.signed.emit(record)

    def _failed(self, message: str) -> None:
        self.refresh()
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.fail(message)
        else:
            self.error.show_error(message)

    def close_down(self) -> None:
        """Wait for a key derivation under way (the window is closing)."""
        self.flow.stop()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None
