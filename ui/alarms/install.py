"""Putting the alarm parts into the MonitorWindow: the banner on top of its banner area, tile
colours on its tiles, sound, and the list and limits dialogs behind the banner's buttons."""

from __future__ import annotations

from dataclasses import dataclass

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

    def open_list(self, parent=None) -> QDialog:
        dlg = QDialog(parent or self.banner.window())
        dlg.setWindowTitle("Alarms")
        lay = QVBoxLayout(dlg)
        lay.addWidget(AlarmListWidget(self.controller, dlg))
        dlg.resize(800, 400)
        dlg.show()
        return dlg

    def open_limits(self, parent=None) -> AlarmLimitsDialog:
        user, role = self.controller.user()
        dlg = AlarmLimitsDialog(self.controller.engine, user, role, parent or self.banner.window())
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
