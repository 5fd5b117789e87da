"""Opening the review tools: from ``ketmonitor review`` (its own application) or from the main
GUI's menu (a window beside the monitor). Both log the user in first: who reviews is part of the
audit trail, and the role decides whether they may co-sign."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QMainWindow

from ketmonitor.store import open_db
from ketmonitor.users import Authenticator, InlineRunner

from . import style
from .browser import SessionBrowserWidget
from .dialogs import LoginDialog
from .window import ReviewWindow


class ReviewBrowserWindow(QMainWindow):
    """The browser in a window; each opened session gets its own ReviewWindow."""

    def __init__(self, db, user, parent=None):
        super().__init__(parent)
        self.db = db
        self.user = user
        self.setWindowTitle(f"ketmonitor - review sessions ({user.full_name})")
        self.setStyleSheet(style.STYLESHEET)
        self.browser = SessionBrowserWidget(db, user)
        self.setCentralWidget(self.browser)
        self.reviews: dict[str, ReviewWindow] = {}
        self.browser.session_opened.connect(self.open_session)
        self.resize(1400, 800)

    def open_session(self, session_id: str) -> ReviewWindow:
        win = self.reviews.get(session_id)
        if win is None or not win.isVisible():
            win = ReviewWindow(self.db, session_id, self.user)
            win.resize(1700, 1000)
            win.closing.connect(lambda sid=session_id: self.reviews.pop(sid, None))
            win.signed.connect(lambda _result: self.browser.refresh())
            self.reviews[session_id] = win
        win.show()
        win.raise_()
        return win

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        for win in list(self.reviews.values()):
            win.close()
        self.browser.close_export()  # cancels a running export and waits for its worker
        super().closeEvent(event)


def login_dialog(db, *, user_id: str = "", parent=None) -> LoginDialog:
    auth = Authenticator(InlineRunner(db))
    return LoginDialog(lambda uid, pw: auth.verify(uid, pw, purpose="login"), user_id=user_id,
                       parent=parent)


def open_browser(db_path: Path, *, parent=None, user_id: str = "") -> ReviewBrowserWindow | None:
    """Log in, then show the browser (None when the login is cancelled)."""
    db = open_db(db_path)
    dialog = login_dialog(db, user_id=user_id, parent=parent)
    if dialog.exec() != QDialog.DialogCode.Accepted or dialog.user is None:
        db.conn.close()
        return None
    win = ReviewBrowserWindow(db, dialog.user, parent=None)
    if parent is not None:
        parent._review_browser = win  # keep it alive beside the monitor
    win.show()
    return win


def run_review(args, db_path: Path, session_id: str | None = None) -> int:
    from ..app import make_app

    app = make_app()
    win = open_browser(db_path, user_id=getattr(args, "user", None) or "")
    if win is None:
        return 1
    if session_id:
        win.open_session(session_id)
    return app.exec()


def add_review_menu(window: QMainWindow, db_path: Path):
    """A "Review > Review sessions..." entry in a main window's menu bar (the monitor's)."""
    menu = window.menuBar().addMenu("&Review")
    action = menu.addAction("Review sessions...")
    def user_at_the_bedside() -> str:
        wui = getattr(window, "workflow_ui", None)  # the monitor's logged-in user, if any
        return (wui.user_provider()[0] or "") if wui is not None else ""

    # records of other patients: the password is asked again, the user id is filled in
    action.triggered.connect(lambda: open_browser(db_path, parent=window,
                                                  user_id=user_at_the_bedside()))
    return action
