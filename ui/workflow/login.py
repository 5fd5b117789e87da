"""Login (with the forced password change) and the first start that creates the clinic and its
admin. Both are non-blocking dialogs: open() them and listen to ``accepted``."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QFormLayout, QLineEdit, QPushButton, QVBoxLayout

from ketmonitor.errors import KetmonitorError
from ketmonitor.users import Authenticator, Clinic, PasswordExpiredError

from .common import FORM_STYLE, ErrorLabel, attempt, heading


def _password() -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.Password)
    return field


class LoginDialog(QDialog):
    """User id + password. An expired or temporary password asks for a new one first."""

    def __init__(self, auth: Authenticator, *, title: str = "Log in", parent=None):
        super().__init__(parent)
        self.auth = auth
        self.user = None
        self.setWindowTitle(title)
        self.setStyleSheet(FORM_STYLE)
        layout = QVBoxLayout(self)
        layout.addWidget(heading(title))
        form = QFormLayout()
        self.user_id = QLineEdit()
        self.password = _password()
        self.new_password = _password()
        self.confirm = _password()
        form.addRow("User id", self.user_id)
        form.addRow("Password", self.password)
        form.addRow("New password", self.new_password)
        form.addRow("Repeat new password", self.confirm)
        layout.addLayout(form)
        self._change_rows = [self.new_password, self.confirm]
        for w in self._change_rows:
            form.labelForField(w).hide()
            w.hide()
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.button = QPushButton("Log in")
        self.button.setDefault(True)
        self.button.clicked.connect(self.submit)
        layout.addWidget(self.button)
        self.password.returnPressed.connect(self.submit)
        self.confirm.returnPressed.connect(self.submit)
        self._form = form

    def _show_change(self, message: str) -> None:
        for w in self._change_rows:
            self._form.labelForField(w).show()
            w.show()
        self.error.show_error(f"{message}: enter a new password twice")
        self.button.setText("Change password and log in")
        self.new_password.setFocus()

    def submit(self) -> None:
        uid, pw = self.user_id.text().strip(), self.password.text()
        if self.new_password.isVisible():
            if self.new_password.text() != self.confirm.text():
                self.error.show_error("the two new passwords differ")
                return
            if attempt(self.error, self.auth.change_password, uid, pw,
                       self.new_password.text()) is None:
                return
            pw = self.new_password.text()
        try:
            self.user = self.auth.login(uid, pw)
        except PasswordExpiredError as exc:
            self._show_change(str(exc))
            return
        except KetmonitorError as exc:
            self.error.show_error(str(exc))
            self.password.clear()
            self.password.setFocus()
            return
        self.password.clear()
        self.accept()


class FirstStartDialog(QDialog):
    """The first start of an empty database: the clinic and its administrator."""

    def __init__(self, auth: Authenticator, parent=None):
        super().__init__(parent)
        self.auth = auth
        self.user = None
        self.setWindowTitle("First start")
        self.setStyleSheet(FORM_STYLE)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("First start: the clinic and its administrator"))
        form = QFormLayout()
        self.clinic_name = QLineEdit()
        self.address = QLineEdit()
        self.phone = QLineEdit()
        self.admin_id = QLineEdit()
        self.admin_name = QLineEdit()
        self.password = _password()
        self.confirm = _password()
        for label, field in (("Clinic name", self.clinic_name), ("Address", self.address),
                             ("Phone", self.phone), ("Admin user id", self.admin_id),
                             ("Admin full name", self.admin_name), ("Password", self.password),
                             ("Repeat password", self.confirm)):
            form.addRow(label, field)
        layout.addLayout(form)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.button = QPushButton("Create clinic and administrator")
        self.button.clicked.connect(self.submit)
        layout.addWidget(self.button)

    def submit(self) -> None:
        if self.password.text() != self.confirm.text():
            self.error.show_error("the two passwords differ")
            return
        user = attempt(self.error, self.auth.first_start,
                       Clinic(self.clinic_name.text().strip(), self.address.text().strip(),
                              self.phone.text().strip()),
                       self.admin_id.text().strip(), self.admin_name.text().strip(),
                       self.password.text())
        if user is not None:
            self.user = user
            self.accept()
