"""Alarm sound: the IEC burst patterns of ketmonitor.alarms.tones played in a loop by QSoundEffect.

Where there is no way to make a sound (QtMultimedia cannot load, e.g. libpulse is missing; no
default audio output; a tone fails to load) the engine gets the technical alarm "audio unavailable"
and monitoring goes on: the visual signals are unaffected.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QUrl

from ketmonitor.alarms import AlarmSnapshot
from ketmonitor.alarms.tones import PATTERNS, wav_bytes

from .controller import AlarmController


def probe_audio() -> tuple[bool, str]:
    """(True, "") when an audio output is there to play alarms on, else (False, why)."""
    try:
        from PySide6.QtMultimedia import QMediaDevices
    except ImportError as exc:
        return False, f"QtMultimedia cannot load ({exc})"
    if QMediaDevices.defaultAudioOutput().isNull():
        return False, "no audio output device"
    return True, ""


class AlarmAudio(QObject):
    def __init__(self, controller: AlarmController, *, folder: str | Path | None = None,
                 parent=None):
        super().__init__(parent or controller)
        self.engine = controller.engine
        self.playing: str | None = None  # priority whose tone is looping
        self.effects: dict = {}
        self.available, self.reason = probe_audio()
        if not self.available:
            self._unavailable(self.reason)
            return
        from PySide6.QtMultimedia import QMediaDevices, QSoundEffect

        self._folder = Path(folder or tempfile.mkdtemp(prefix="ketmonitor-tones-"))
        for priority in PATTERNS:
            path = self._folder / f"alarm-{priority}.wav"
            path.write_bytes(wav_bytes(priority))
            effect = QSoundEffect(self)
            effect.setSource(QUrl.fromLocalFile(str(path)))
            effect.setLoopCount(QSoundEffect.Loop.Infinite.value)
            effect.setVolume(1.0)
            effect.statusChanged.connect(self._check)
            self.effects[priority] = effect
        self._devices = QMediaDevices(self)
        self._devices.audioOutputsChanged.connect(self._outputs_changed)
        controller.updated.connect(self.update)

    def update(self, snapshot: AlarmSnapshot) -> None:
        want = snapshot.audio_priority.value if snapshot.audio_priority else None
        if want == self.playing or not self.available:
            return
        if self.playing:
            self.effects[self.playing].stop()
        self.playing = want
        if want:
            self.effects[want].play()

    def _check(self) -> None:
        from PySide6.QtMultimedia import QSoundEffect

        bad = [p for p, e in self.effects.items() if e.status() == QSoundEffect.Status.Error]
        if bad:
            self._unavailable(f"cannot play the {', '.join(bad)} priority tone")

    def _outputs_changed(self) -> None:
        ok, why = probe_audio()
        if ok and not self.available:
            self.available, self.reason = True, ""
            self.engine.set_technical("audio_unavailable", False)
        elif not ok:
            self._unavailable(why)

    def _unavailable(self, why: str) -> None:
        self.available, self.reason = False, why
        self.playing = None
        self.engine.set_technical("audio_unavailable", True, why)
