"""Putting the alarm parts into the MonitorWindow: the banner on top of its banner area, tile
colours on its tiles, sound, and the list and limits dialogs behind the banner's buttons.

While the screen is locked (``set_locked``) the limits cannot be opened and an open limits dialog is
closed: changing limits needs an unlocked, authorised user. Acknowledge and audio pause stay
available and are recorded as done at the locked screen."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtWidgets import QDialog, QVBoxLayout

from ketmonitor.alarms import AlarmEngine

from .audio import AlarmAudio
from .banner import AlarmBannerWidget
from .controller import AlarmController, TileAlarmColours, UserProvider
from .limits_dialog import AlarmLimitsDialog
from .list_widget import AlarmListWidget


@dataclass
class AlarmUi:
    controller: AlarmController
    banner: AlarmBannerWidget
    tiles: TileAlarmColours
    audio: AlarmAudio
    limits_dialog: AlarmLimitsDialog | None = field(default=None, repr=False)

    def open_list(self, parent=None) -> QDialog:
        dlg = QDialog(parent or self.banner.window())
        dlg.setWindowTitle("Alarms")
        lay = QVBoxLayout(dlg)
        lay.addWidget(AlarmListWidget(self.controller, dlg))
        dlg.resize(800, 400)
        dlg.show()
        return dlg

    @property
    def locked(self) -> bool:
        return self.controller.locked

    def set_locked(self, locked: bool) -> None:
        self.controller.locked = locked
        self.banner.limits_button.setEnabled(not locked)
        self.banner.limits_button.setToolTip("Unlock the controls to change alarm limits"
                                             if locked else "")
        if locked and self.limits_dialog is not None:
            self.limits_dialog.reject()  # nothing typed into it is applied
            self.limits_dialog = None

    def open_limits(self, parent=None) -> AlarmLimitsDialog | None:
        """The limits dialog for the signed-in user; None while the screen is locked."""
        if self.locked:
            return None
        user, role = self.controller.user()
        dlg = AlarmLimitsDialog(self.controller.engine, user, role, parent or self.banner.window())
        self.limits_dialog = dlg
        dlg.show()
        return dlg


def install_alarm_ui(window, engine: AlarmEngine, *, user: UserProvider | None = None) -> AlarmUi:
    """``window`` offers ``banner_layout`` (QVBoxLayout) and ``tiles`` ({metric key: tile with
    set_alarm_priority}). Returns the parts; the controller is started."""
    controller = AlarmController(engine, user=user, parent=window)
    banner = AlarmBannerWidget(controller)
    window.banner_layout.insertWidget(0, banner)
    ui = AlarmUi(controller, banner, TileAlarmColours(controller, window.tiles),
                 AlarmAudio(controller))
    banner.list_requested.connect(lambda: ui.open_list())
    banner.limits_requested.connect(lambda: ui.open_limits())
    controller.start()
    return ui
