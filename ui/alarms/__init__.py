"""The alarm screen parts: banner, list, limits dialog, tones through QtMultimedia, tile colours.

``install_alarm_ui(window, engine)`` puts them into a MonitorWindow; each part also stands alone.
"""

from .audio import AlarmAudio, probe_audio
from .banner import AlarmBannerWidget
from .controller import AlarmController, TileAlarmColours, tile_key
from .install import AlarmUi, install_alarm_ui
from .limits_dialog import AlarmLimitsDialog
from .list_widget import AlarmListWidget

__all__ = ["AlarmAudio", "AlarmBannerWidget", "AlarmController", "AlarmLimitsDialog",
           "AlarmListWidget", "AlarmUi", "TileAlarmColours", "install_alarm_ui", "probe_audio",
           "tile_key"]
