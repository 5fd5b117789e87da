"""Review screens: the session browser and the session review (timeline, signatures, co-signing)."""

from .browser import SessionBrowserWidget, SessionTableModel
from .dialogs import LoginDialog, SignDialog
from .window import ReviewWindow

__all__ = ["SessionBrowserWidget", "SessionTableModel", "ReviewWindow", "SignDialog", "LoginDialog"]
