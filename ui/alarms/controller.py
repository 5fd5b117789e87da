"""The alarm UI's model side: polls the engine on the main thread and hands every part the same
snapshot; operator actions go back to the engine with the signed-in user, or, while the screen is
locked, as actions done at the locked screen (anyone answering an alarm may silence it, but it is
not recorded in the name of the user whose controls are locked)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from ketmonitor.alarms import AlarmEngine, AlarmSnapshot

UserProvider = Callable[[], tuple[str | None, str | None]]  # (user id, role) or (None, None)

_TILE_OF = {"spo2": "spo2", "pulse_rate": "pulse_rate", "perfusion_index": "perfusion_index",
            "pleth": "spo2", "cuff_pressure": "nibp", "nibp_error": "nibp"}


def tile_key(metric: str) -> str | None:
    """The MonitorWindow tile showing ``metric`` ('nibp' for every blood-pressure metric)."""
    if metric.startswith("nibp_"):
        return "nibp"
    return _TILE_OF.get(metric)


class AlarmController(QObject):
    updated = Signal(object)  # AlarmSnapshot

    def __init__(self, engine: AlarmEngine, *, user: UserProvider | None = None,
                 interval_ms: int = 50, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.user = user or (lambda: (None, None))
        self.locked = False  # set by the screen lock (AlarmUi.set_locked)
        self.snapshot: AlarmSnapshot = engine.snapshot()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.refresh)

    def start(self) -> None:
        self.refresh()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def refresh(self) -> None:
        self.snapshot = self.engine.snapshot()
        self.updated.emit(self.snapshot)

    def acting_user(self) -> tuple[str | None, str | None]:
        return (None, None) if self.locked else self.user()

    def acknowledge(self) -> None:
        self.engine.acknowledge(*self.acting_user(), locked=self.locked)
        self.refresh()

    def pause_audio(self, duration_s: float | None = None) -> None:
        user, role = self.acting_user()
        self.engine.pause_audio(user, role, duration_s, locked=self.locked)
        self.refresh()

    def resume_audio(self) -> None:
        self.engine.resume_audio(*self.acting_user(), locked=self.locked)
        self.refresh()


class TileAlarmColours(QObject):
    """Colours each tile with the highest priority of the alarms shown on its metrics, and says on
    the tile when one of its alarm limits differs from its default."""

    def __init__(self, controller: AlarmController, tiles: dict, parent=None):
        super().__init__(parent or controller)
        self.tiles = tiles
        controller.updated.connect(self.apply)
        self.apply(controller.snapshot)

    def apply(self, snapshot: AlarmSnapshot) -> None:
        best: dict[str, object] = {}
        for metric, priority in snapshot.tile_priorities().items():
            key = tile_key(metric)
            if key in self.tiles and (key not in best or priority.rank > best[key].rank):
                best[key] = priority
        notes: dict[str, list[str]] = {}
        for change in snapshot.changed_limits:
            key = tile_key(change.metric)
            if key in self.tiles:
                notes.setdefault(key, []).append(change.text)
        for key, tile in self.tiles.items():
            p = best.get(key)
            tile.set_alarm_priority(p.value if p is not None else None)
            if hasattr(tile, "set_limit_note"):
                tile.set_limit_note("; ".join(notes.get(key, ())))
