"""Dialogs of the review screens, and the one signing dialog of the application: signing (asks for the
password again, 21 CFR 11.200) and login.

``SignDialog`` is used wherever a signature is made: the bedside's "Sign record..." and the review
screen's signing, co-signing and addenda. It does not sign: it collects the password (and the
meaning or the addendum text) and emits ``submitted``; the caller signs (``signing.SigningFlow``)
and answers with ``fail(message)`` (the dialog stays open, the password field is cleared),
``signing_now()`` once the password was right, or ``done_ok()``.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QVBoxLayout)

from . import style

MEANING_TEXT = {
    "review": "I have reviewed this session record.",
    "approval": "I approve this session record.",
    "responsibility": "I take responsibility for this session record.",
    "authorship": "I am the author of this addendum.",
}
# Signing the session's own record (kind "sign"): the author vouches for the whole record.
RECORD_MEANING_TEXT = dict(MEANING_TEXT, authorship="I am the author of this session record: it "
                                                    "is complete and correct.")
TITLES = {"cosign": "Co-sign the session record", "addendum": "Add an addendum",
          "sign": "Sign the session record"}


class SignDialog(QDialog):
    """``kind`` is "cosign" or "sign" (choose a meaning among ``meanings``) or "addendum" (write
    the text)."""

    submitted = Signal(str, str, str)  # password, meaning, text

    def __init__(self, kind: str, user, *, meanings=("review", "approval", "responsibility"),
                 session_text: str = "", parent=None):
        super().__init__(parent)
        self.kind = kind
        self.setObjectName("reviewRoot")
        self.setStyleSheet(style.STYLESHEET)
        self.setWindowTitle(TITLES[kind])
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        head = QLabel(self.windowTitle())
        head.setObjectName("title")
        layout.addWidget(head)
        if session_text:  # which record is signed: the session and its patient
            layout.addWidget(QLabel(session_text))
        self.who = QLabel(f"Signing as {user.full_name} ({user.id}), {user.role}")
        layout.addWidget(self.who)
        form = QFormLayout()
        self.meaning = QComboBox()
        self.text = QPlainTextEdit()
        if kind in ("cosign", "sign"):
            for m in meanings:
                self.meaning.addItem(m, m)
            form.addRow("Meaning", self.meaning)
        else:
            self.meaning.addItem("authorship", "authorship")
            self.text.setPlaceholderText("What this addendum adds or corrects")
            self.text.setMinimumHeight(110)
            form.addRow("Addendum", self.text)
        self.statement = QLabel("")
        self.statement.setObjectName("dim")
        self.statement.setWordWrap(True)
        form.addRow("", self.statement)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("your password, again")
        form.addRow("Password", self.password)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.sign_button = self.buttons.addButton("Sign", QDialogButtonBox.ButtonRole.AcceptRole)
        # Return signs (while Sign is enabled) and never cancels, wherever the focus went
        self.sign_button.setDefault(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAutoDefault(False)
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.meaning.currentIndexChanged.connect(self._statement)
        self._statement()
        self.password.setFocus()

    def _statement(self) -> None:
        m = self.meaning.currentData()
        texts = RECORD_MEANING_TEXT if self.kind == "sign" else MEANING_TEXT
        after = (" Once signed, the session's data never change: corrections become addenda."
                 if self.kind == "sign" else "")
        self.statement.setText(f"Meaning of this signature: {m}. {texts.get(m, '')} It is "
                               f"recorded with your printed name, the date and the time.{after}")

    def _submit(self) -> None:
        if not self.sign_button.isEnabled():
            return  # already checking (Return pressed again)
        password = self.password.text()
        if not password:
            self.fail("Enter your password to sign.")
            return
        text = self.text.toPlainText().strip()
        if self.kind == "addendum" and not text:
            self.fail("Write the addendum before signing it.")
            return
        self._show_error("")
        self.set_busy(True)
        self.submitted.emit(password, self.meaning.currentData(), text)

    def set_busy(self, busy: bool, text: str = "Checking password...") -> None:
        self.sign_button.setEnabled(not busy)
        self.sign_button.setText(text if busy else "Sign")
        for w in (self.meaning, self.text):
            w.setEnabled(not busy)  # what is being signed does not change under the signature

    def signing_now(self) -> None:
        """The password was right; the record is being signed."""
        self.set_busy(True, "Signing...")

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def fail(self, message: str) -> None:
        self.set_busy(False)
        self._show_error(message)
        self.password.clear()
        self.password.setFocus()
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow to the height the wrapped texts need at the current width: room for the message
        without squeezing the statement (adjustSize would measure at the size hint's width)."""
        layout = self.layout()
        layout.activate()
        need = layout.totalHeightForWidth(self.width())
        if need > self.height():
            self.resize(self.width(), need)

    def done_ok(self) -> None:
        self.set_busy(False)
        self.password.clear()
        self.accept()


class LoginDialog(QDialog):
    """User id and password for the review tools (``ketmonitor review``); ``login`` is a function
    (user_id, password) -> User raising KetmonitorError with a message for people."""

    def __init__(self, login, *, user_id: str = "", title: str = "ketmonitor review - log in",
                 parent=None):
        super().__init__(parent)
        self._login = login
        self.user = None
        self.setObjectName("reviewRoot")
        self.setStyleSheet(style.STYLESHEET)
        self.setWindowTitle(title)
        self.setMinimumWidth(380)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.user_id = QLineEdit(user_id)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("User id", self.user_id)
        form.addRow("Password", self.password)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                   QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._try)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        (self.password if user_id else self.user_id).setFocus()

    def _try(self) -> None:
        from ketmonitor.errors import KetmonitorError

        try:
            self.user = self._login(self.user_id.text().strip(), self.password.text())
        except KetmonitorError as exc:
            self.error.setText(str(exc))
            self.password.clear()
            return
        self.password.clear()
        self.accept()
