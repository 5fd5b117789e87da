"""The last step at the bedside: the author signs the ended session's record, then the next patient.

``SessionEndForm`` is the panel's step once the session has ended. "Sign record..." opens a
``SignRecordDialog`` that asks for the nurse's password again (21 CFR 11.200). The signing key is
decrypted on a worker thread (the key derivation is deliberately slow) as a plain future polled by
a QTimer, and the record is sealed on the store writer's thread through ``workflow_signing.seal``;
the monitor never stops. The result shows the record id, the signer's printed name, the local time
and the meaning (11.50). A wrong password signs nothing, is audited, and is said plainly.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                               QPushButton, QVBoxLayout, QWidget)

from ketmonitor import workflow_signing
from ketmonitor.errors import AuthError, KetmonitorError
from ketmonitor.review import local_time

from .. import theme
from .common import FORM_STYLE, ErrorLabel, heading

STATEMENT = ("Meaning of this signature: authorship. I am the author of this session record. It is"
             " recorded with my printed name, the date and the time, and the record cannot be"
             " changed afterwards (corrections become signed addenda).")


class SignRecordDialog(QDialog):
    """Asks for the password; emits ``submitted(password)`` and waits for ``fail`` or ``done_ok``."""

    submitted = Signal(str)

    def __init__(self, user, session_text: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sign the session record")
        self.setStyleSheet(FORM_STYLE)
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Sign the session record"))
        layout.addWidget(QLabel(session_text))
        self.who = QLabel(f"Signing as {user.full_name} ({user.id}), {user.role}")
        layout.addWidget(self.who)
        statement = QLabel(STATEMENT)
        statement.setWordWrap(True)
        statement.setStyleSheet(f"color: {theme.DIM};")
        layout.addWidget(statement)
        form = QFormLayout()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("your password, again")
        form.addRow("Password", self.password)
        layout.addLayout(form)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.sign_button = self.buttons.addButton("Sign", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        self.password.returnPressed.connect(self._submit)
        layout.addWidget(self.buttons)
        self.password.setFocus()

    def _submit(self) -> None:
        if not self.sign_button.isEnabled():
            return  # already checking
        if not self.password.text():
            self.fail("Enter your password to sign.")
            return
        self.error.clear_error()
        self.set_busy(True)
        self.submitted.emit(self.password.text())

    def set_busy(self, busy: bool) -> None:
        self.sign_button.setEnabled(not busy)
        self.sign_button.setText("Checking password..." if busy else "Sign")

    def fail(self, message: str) -> None:
        self.set_busy(False)
        self.error.show_error(message)
        self.password.clear()
        self.password.setFocus()
        self.adjustSize()  # room for the message without squeezing the statement

    def done_ok(self) -> None:
        self.set_busy(False)
        self.password.clear()
        self.accept()


class SessionEndForm(QWidget):
    """Session ended: sign the record as its author; then the next patient (``next_patient``)."""

    signed = Signal(object)  # the SignedRecord

    def __init__(self, workflow, *, next_patient: Callable[[], None] | None = None, parent=None):
        super().__init__(parent)
        self.workflow = workflow
        self.executor: ThreadPoolExecutor | None = None
        self.dialog: SignRecordDialog | None = None
        self._pending: tuple[str, Future, object] | None = None  # (step, future, key)
        self._poll = QTimer(self)
        self._poll.setInterval(20)
        self._poll.timeout.connect(self._check)
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
        return self._pending is not None

    # -- signing ---------------------------------------------------------------------------------
    def ask(self) -> SignRecordDialog | None:
        try:
            key, _meanings = workflow_signing.prepare(self.workflow)  # fail early: no key...
        except KetmonitorError as exc:
            self.error.show_error(str(exc))
            return None
        self.error.clear_error()
        patient = self.workflow.patient()
        text = f"Session {self.workflow.session_id[:8]}" + (
            f" - {patient.name} ({patient.mrn})" if patient else "")
        self.dialog = SignRecordDialog(self.workflow.user, text, self)
        self.dialog.submitted.connect(lambda pw, key=key: self.sign(pw, key))
        self.dialog.open()
        return self.dialog

    def sign(self, password: str, key=None) -> None:
        """Unlock the key with ``password`` on a worker thread; sealing follows in ``_check``."""
        try:
            key = key or workflow_signing.prepare(self.workflow)[0]
        except KetmonitorError as exc:
            self._failed(str(exc))
            return
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1)
        fut = self.executor.submit(key.unlock, password,
                                   purpose=workflow_signing.purpose(self.workflow))
        self._pending = ("unlock", fut, key)
        self.sign_button.setEnabled(False)
        self._poll.start()

    def _check(self) -> None:
        if self._pending is None or not self._pending[1].done():
            return
        step, fut, key = self._pending
        self._pending = None
        if step == "unlock":
            try:
                unlocked = fut.result()
            except AuthError:
                workflow_signing.wrong_password(self.workflow, key)
                self._failed("Wrong password: nothing was signed. Enter your own password again.")
                return
            except KetmonitorError as exc:
                self._failed(str(exc))
                return
            self._pending = ("seal", workflow_signing.seal(self.workflow, unlocked), key)
            return
        self._poll.stop()
        try:
            record = fut.result()
        except KetmonitorError as exc:
            self._failed(str(exc))
            return
        self.workflow.refresh()
        sig = record.signatures[0]
        self.result.setText(f"Signed: record {record.record_id}\n{sig.printed_name} ({sig.role},"
                            f" {sig.signer_id})\n{local_time(sig.signed_at)}\nMeaning: {sig.meaning}")
        self.error.clear_error()
        if self.dialog is not None:
            self.dialog.done_ok()
        self.refresh()
        self.signed.emit(record)

    def _failed(self, message: str) -> None:
        self._poll.stop()
        self._pending = None
        self.refresh()
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.fail(message)
        else:
            self.error.show_error(message)

    def close_down(self) -> None:
        """Wait for a key derivation under way (the window is closing)."""
        self._poll.stop()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None
