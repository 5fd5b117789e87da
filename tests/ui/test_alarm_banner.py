"""The alarm banner, tile colours and sound on real widgets (offscreen), driven by a real engine."""

from __future__ import annotations

import pytest

from ketmonitor.alarms import AlarmConfig, AlarmEngine
from ketmonitor.clock import ManualClock
from ketmonitor.samples import Condition, DeviceStatus, Numeric
from ui import theme
from ui.alarms import AlarmAudio, AlarmBannerWidget, AlarmController, TileAlarmColours
from ui.alarms.banner import countdown
from ui.tiles import NibpTile, NumericTile


class Rig:
    def __init__(self, qtbot, config=None):
        self.clock = ManualClock(0.0)
        self.events = []
        self.engine = AlarmEngine(AlarmConfig.from_dict(config), clock=self.clock,
                                  emit=self.events.append)
        self.user = ("nurse1", "nurse")
        self.controller = AlarmController(self.engine, user=lambda: self.user)
        self.banner = AlarmBannerWidget(self.controller)
        qtbot.addWidget(self.banner)
        self.banner.show()

    def feed(self, metric, values, start=None):
        t = self.clock.monotonic() if start is None else start
        for v in values:
            self.clock.set(t)
            src = "cuff" if metric.startswith("nibp") else "ox"
            self.engine.feed(Numeric.of(metric, v, t_mono=t, t_wall=self.clock.wall(), source=src))
            self.engine.tick(t)
            t += 1
        self.controller.refresh()

    def advance(self, dt):
        self.clock.advance(dt)
        self.engine.tick(self.clock.monotonic())
        self.controller.refresh()


@pytest.fixture
def rig(qtbot):
    return Rig(qtbot)


def test_idle_banner_says_so(rig):
    assert rig.banner.text.text() == "No active alarms"
    assert rig.banner.priority is None and rig.banner.colours() == (theme.PANEL, theme.DIM)
    assert not rig.banner.ack_button.isEnabled()


@pytest.mark.parametrize("metric, values, priority, hz, duty, text", [
    ("spo2", [82] * 11, "high", 2.0, 0.5, "SpO2 desaturation 82 (< 85)"),
    ("spo2", [88] * 11, "medium", 0.6, 0.4, "SpO2 low 88 (< 90)"),
])
def test_flashing_alarm_colours_and_rates(rig, qtbot, metric, values, priority, hz, duty, text):
    rig.feed(metric, values)
    b = rig.banner
    assert b.priority == priority and b.text.text() == text
    assert 1.4 <= hz <= 2.8 if priority == "high" else 0.4 <= hz <= 0.8
    assert (b.flash_hz, b.duty) == (hz, duty) and 0.2 <= duty <= 0.6
    period = 1000 / hz
    assert b._phase_ms(True) == round(period * duty) and b._phase_ms(False) == round(period * (1 - duty))
    colour = theme.ALARM_COLOURS[priority]
    assert b.lit and b.colours() == (colour, theme.ALARM_TEXT[priority])
    qtbot.waitUntil(lambda: not b.lit, timeout=3000)
    assert b.colours() == (theme.PANEL, colour)  # off phase: text stays in the priority colour
    assert f"background: {theme.PANEL}" in b.styleSheet() and f"solid {colour}" in b.styleSheet()
    qtbot.waitUntil(lambda: b.lit, timeout=3000)
    assert b.colours()[0] == colour and f"background: {colour}" in b.styleSheet()


def test_low_priority_is_steady_cyan(rig):
    rig.engine.feed(Numeric.of("nibp_error", 87, t_mono=0, t_wall=0, source="cuff",
                               flags={Condition.NIBP_FAILED}, detail="loose cuff"))
    rig.controller.refresh()
    b = rig.banner
    assert b.priority == "low" and b.flash_hz is None and not b._flash.isActive()
    assert b.colours() == (theme.ALARM_COLOURS["low"], theme.ALARM_TEXT["low"])
    assert b.text.text() == "NIBP measurement failed: loose cuff" and b.mark.text() == "!"


def test_escalation_shows_the_high_alarm_and_counts_the_rest(rig):
    rig.feed("spo2", [88] * 11)
    assert rig.banner.priority == "medium" and rig.banner.more.text() == ""
    rig.feed("spo2", [82] * 6)
    assert rig.banner.priority == "high" and rig.banner.mark.text() == "!!!"
    assert rig.banner.more.text() == "+1 more alarm"


def test_acknowledge_button_silences_but_keeps_the_alarm_visible(rig, qtbot):
    rig.feed("spo2", [88] * 11)
    assert rig.controller.snapshot.audio_priority is not None
    qtbot.mouseClick(rig.banner.ack_button, qtbot_left())
    assert rig.controller.snapshot.audio_priority is None
    assert rig.banner.text.text() == "SpO2 low 88 (< 90)" and rig.banner.priority == "medium"
    assert rig.banner.state.text() == "acknowledged"
    assert not rig.banner.ack_button.isEnabled()
    ack = [e for e in rig.events if e.kind == "alarm.acknowledged"][0]
    assert ack.user_id == "nurse1" and ack.data["role"] == "nurse"


def test_audio_pause_countdown_is_visible_and_resumable(rig, qtbot):
    rig.feed("spo2", [88] * 11)
    b = rig.banner
    assert not b.pause_label.isVisibleTo(b) and b.pause_button.text() == "Pause audio 2:00"
    qtbot.mouseClick(b.pause_button, qtbot_left())
    assert b.pause_label.isVisibleTo(b) and b.pause_label.text() == "AUDIO PAUSED 2:00"
    assert b.state.text() == "audio paused" and b.priority == "medium"  # still shown, flashing
    rig.advance(30.5)
    assert b.pause_label.text() == "AUDIO PAUSED 1:30"
    assert b.pause_button.text() == "Resume audio"
    qtbot.mouseClick(b.pause_button, qtbot_left())
    assert not b.pause_label.isVisibleTo(b) and rig.controller.snapshot.audio_priority is not None
    qtbot.mouseClick(b.pause_button, qtbot_left())
    rig.advance(120)
    assert not b.pause_label.isVisibleTo(b)  # the countdown ran out: sound is back
    assert rig.controller.snapshot.audio_priority is not None


def test_countdown_format():
    assert [countdown(s) for s in (120, 119.2, 61, 0.2, 0)] == ["2:00", "2:00", "1:01", "0:01", "0:00"]


def test_controller_timer_keeps_the_banner_current(rig, qtbot):
    rig.controller.start()
    rig.clock.set(1)
    rig.engine.feed(DeviceStatus("ox", False, frozenset({Condition.DISCONNECTED}), 1, 1, "gone"))
    qtbot.waitUntil(lambda: rig.banner.text.text() == "Device disconnected: gone", timeout=2000)
    rig.controller.stop()


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.LeftButton


# -- tiles ------------------------------------------------------------------------------------
def test_tiles_take_the_colour_of_their_highest_alarm(rig, qtbot):
    tiles = {"spo2": NumericTile("spo2", "SpO2", "%", colour=theme.PARAMETER_COLOURS["spo2"]),
             "pulse_rate": NumericTile("pulse_rate", "Pulse", "/min", colour="#3ee05a"),
             "nibp": NibpTile()}
    for t in tiles.values():
        qtbot.addWidget(t)
    TileAlarmColours(rig.controller, tiles)
    rig.feed("spo2", [88] * 11)
    assert tiles["spo2"].alarm_priority == "medium" and tiles["pulse_rate"].alarm_priority is None
    rig.feed("spo2", [82] * 6)
    assert tiles["spo2"].alarm_priority == "high"
    assert theme.ALARM_COLOURS["high"] in tiles["spo2"].styleSheet()
    rig.feed("nibp_systolic", [172])
    assert tiles["nibp"].alarm_priority == "medium"
    rig.feed("spo2", [97])  # both SpO2 alarms end (not latching)
    assert tiles["spo2"].alarm_priority is None
    assert theme.ALARM_COLOURS["high"] not in tiles["spo2"].styleSheet()


# -- sound ------------------------------------------------------------------------------------
def test_audio_plays_the_priority_or_raises_audio_unavailable(rig):
    audio = AlarmAudio(rig.controller)
    rig.feed("spo2", [88] * 11)
    if audio.available:
        assert audio.playing == "medium"
        rig.controller.acknowledge()
        assert audio.playing is None
    else:  # this machine: QtMultimedia cannot load libpulse, or there is no output device
        shown = {a.condition for a in rig.controller.snapshot.alarms}
        assert shown == {"audio_unavailable", "spo2_low"}  # and monitoring goes on
        assert audio.reason and audio.playing is None
        gone = [a for a in rig.controller.snapshot.alarms if a.condition == "audio_unavailable"]
        assert gone[0].message == audio.reason and gone[0].kind == "technical"
