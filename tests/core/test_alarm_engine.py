"""Alarm engine: delays, hysteresis, missing values, latching, acknowledge versus pause, escalation.

Each scenario is a table of steps on a ManualClock: ``(t, what, value)``. The engine is ticked at
every step and every whole second in between, as the runtime's ticker would.
"""

from __future__ import annotations

import threading

import pytest

from ketmonitor.alarms import AlarmConfig, AlarmEngine, Priority
from ketmonitor.clock import ManualClock
from ketmonitor.dispatch import Dispatcher
from ketmonitor.errors import AuthError, ConfigError
from ketmonitor.samples import Condition, DeviceStatus, Numeric

OX, CUFF = "ox", "cuff"


class Harness:
    def __init__(self, config: dict | None = None):
        self.clock = ManualClock(0.0)
        self.events = []
        self.engine = AlarmEngine(AlarmConfig.from_dict(config), clock=self.clock,
                                  emit=self.events.append)

    def at(self, t: float) -> None:
        """Advance to ``t``, ticking every whole second on the way."""
        now = self.clock.monotonic()
        k = int(now) + 1
        while k < t:
            self.clock.set(k)
            self.engine.tick(k)
            k += 1
        self.clock.set(t)
        self.engine.tick(t)

    def step(self, t: float, what: str, value=None) -> None:
        self.at(t)
        e, w = self.engine, self.clock.wall()
        if what == "tick":
            pass
        elif what in ("spo2", "pulse_rate", "nibp_systolic", "nibp_diastolic", "nibp_mean"):
            src = CUFF if what.startswith("nibp") else OX
            e.feed(Numeric.of(what, value, t_mono=t, t_wall=w, source=src))
        elif what == "nibp_error":
            e.feed(Numeric.of("nibp_error", value, t_mono=t, t_wall=w, source=CUFF,
                              flags={Condition.NIBP_FAILED}, detail="loose cuff"))
        elif what == "status":
            connected, conds = value
            e.feed(DeviceStatus(OX, connected, frozenset(conds), t, w, "msg"))
        elif what == "technical":
            e.set_technical(value[0], value[1], "why", now=t)
        elif what == "ack":
            e.acknowledge("nurse1", "nurse", now=t)
        elif what == "pause":
            e.pause_audio("nurse1", "nurse", duration_s=value, now=t)
        elif what == "resume":
            e.resume_audio("nurse1", "nurse", now=t)
        else:  # pragma: no cover - a typo in a table
            raise ValueError(what)
        self.engine.tick(t)

    def run(self, steps) -> "Harness":
        for s in steps:
            self.step(*s)
        return self

    def kinds(self, kind: str) -> list[tuple[str, float]]:
        return [(ev.data["condition"], ev.t_mono) for ev in self.events if ev.kind == kind]

    @property
    def shown(self) -> list[str]:
        return [a.condition for a in self.engine.snapshot().alarms]

    @property
    def audio(self):
        return self.engine.snapshot().audio_priority


def series(what: str, values, start: float = 0.0, every: float = 1.0):
    return [(start + i * every, what, v) for i, v in enumerate(values)]


# name, steps, expected raised [(condition, t)], expected ended [(condition, t)]
LIMIT_CASES = [
    ("spo2 low raised after its 10 s delay",
     series("spo2", [88] * 15), [("spo2_low", 10)], []),
    ("spo2 low shorter than the delay never raised",
     series("spo2", [88] * 9 + [95] * 5), [], []),
    ("spo2 exactly at the limit is not beyond it",
     series("spo2", [90] * 20), [], []),
    ("hysteresis: back at 90 is not enough, 91 ends it",
     series("spo2", [88] * 11 + [90] * 5 + [91]), [("spo2_low", 10)], [("spo2_low", 16)]),
    ("missing value cancels a pending onset; the delay restarts",
     series("spo2", [88] * 5 + [None] + [88] * 12), [("spo2_low", 16)], []),
    ("missing values never end a raised alarm",
     series("spo2", [88] * 11 + [None] * 30), [("spo2_low", 10)], []),
    ("missing values alone never raise anything",
     series("spo2", [None] * 60), [], []),
    ("desaturation (high, 5 s) and SpO2 low (medium, 10 s) both raised",
     series("spo2", [82] * 12), [("spo2_desat", 5), ("spo2_low", 10)], []),
    ("pulse rate high after 10 s, ends below 118 (hysteresis 2)",
     series("pulse_rate", [130] * 11 + [119, 117]),
     [("pulse_rate_high", 10)], [("pulse_rate_high", 12)]),
    ("pulse rate low",
     series("pulse_rate", [45] * 11), [("pulse_rate_low", 10)], []),
    ("the delay runs out on the ticker between samples",
     [(0, "spo2", 88), (12, "tick")], [("spo2_low", 10)], []),
    ("NIBP judged on each reading, no delay; 158 stays inside hysteresis, 150 ends it",
     [(0, "nibp_systolic", 170), (300, "nibp_systolic", 158), (600, "nibp_systolic", 150)],
     [("nibp_systolic_high", 0)], [("nibp_systolic_high", 600)]),
    ("NIBP missing reading changes nothing",
     [(0, "nibp_diastolic", 45), (300, "nibp_diastolic", None)],
     [("nibp_diastolic_low", 0)], []),
    ("NIBP mean high and low",
     [(0, "nibp_mean", 120), (300, "nibp_mean", 55)],
     [("nibp_mean_high", 0), ("nibp_mean_low", 300)], [("nibp_mean_high", 300)]),
]


@pytest.mark.parametrize("name, steps, raised, ended", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_limit_alarms(name, steps, raised, ended):
    h = Harness().run(steps)
    assert h.kinds("alarm.raised") == raised
    assert h.kinds("alarm.ended") == ended


TECHNICAL_CASES = [
    ("disconnect raised at once, reconnect ends it",
     [(0, "status", (False, {Condition.DISCONNECTED})), (4, "status", (True, set()))],
     [("device_disconnected", 0)], [("device_disconnected", 4)]),
    ("sensor off after 5 s",
     [(0, "status", (True, {Condition.SENSOR_OFF})), (7, "tick")], [("sensor_off", 5)], []),
    ("sensor off for 3 s is not raised",
     [(0, "status", (True, {Condition.SENSOR_OFF})), (3, "status", (True, set())), (30, "tick")],
     [], []),
    ("searching raised after 20 s",
     [(0, "status", (True, {Condition.SEARCHING})), (25, "tick")], [("searching_too_long", 20)], []),
    ("device says searching too long: raised at once",
     [(0, "status", (True, {Condition.SEARCHING})), (3, "status", (True, {Condition.SEARCHING_TOO_LONG}))],
     [("searching_too_long", 3)], []),
    ("no data after its 10 s delay",
     [(0, "status", (True, {Condition.NO_DATA})), (12, "tick")], [("no_data", 10)], []),
    ("disconnect replaces sensor off",
     [(0, "status", (True, {Condition.SENSOR_OFF})), (6, "status", (False, {Condition.DISCONNECTED}))],
     [("sensor_off", 5), ("device_disconnected", 6)], [("sensor_off", 6)]),
    ("NIBP failure raised on the error reading, ended by the next good reading",
     [(0, "nibp_error", 87), (60, "nibp_systolic", 120)], [("nibp_failed", 0)], [("nibp_failed", 60)]),
    ("audio unavailable and storage failing raised through the API",
     [(1, "technical", ("audio_unavailable", True)), (2, "technical", ("storage_failing", True)),
      (3, "technical", ("storage_failing", False))],
     [("audio_unavailable", 1), ("storage_failing", 2)], [("storage_failing", 3)]),
]


@pytest.mark.parametrize("name, steps, raised, ended", TECHNICAL_CASES,
                         ids=[c[0] for c in TECHNICAL_CASES])
def test_technical_alarms(name, steps, raised, ended):
    h = Harness().run(steps)
    assert h.kinds("alarm.raised") == raised
    assert h.kinds("alarm.ended") == ended


SPO2_EPISODE = series("spo2", [88] * 11) + [(11, "spo2", 95)]  # raised at 10, ended at 11


@pytest.mark.parametrize("latching, shown_after_end, audio_after_end", [
    (False, [], None),
    (True, ["spo2_low"], Priority.MEDIUM),
])
def test_latching_keeps_an_ended_alarm_until_acknowledged(latching, shown_after_end,
                                                          audio_after_end):
    h = Harness({"settings": {"latching": latching}}).run(SPO2_EPISODE)
    assert h.kinds("alarm.ended") == [("spo2_low", 11)]
    assert h.shown == shown_after_end
    assert h.audio == audio_after_end
    h.step(12, "ack")
    assert h.shown == [] and h.audio is None
    if latching:
        ack = [e for e in h.events if e.kind == "alarm.acknowledged"][0]
        assert ack.data["cleared"] == ack.data["alarm_ids"] and ack.user_id == "nurse1"


def test_latched_alarm_that_recurs_is_replaced_by_the_new_episode():
    h = Harness({"settings": {"latching": True}}).run(SPO2_EPISODE + series("spo2", [87] * 12, 20))
    assert h.kinds("alarm.raised") == [("spo2_low", 10), ("spo2_low", 30)]
    assert h.shown == ["spo2_low"] and h.engine.snapshot().top.active


def test_technical_alarms_never_latch():
    h = Harness({"settings": {"latching": True}}).run(
        [(0, "status", (False, {Condition.DISCONNECTED})), (4, "status", (True, set()))])
    assert h.shown == []


# acknowledge versus pause: steps after an SpO2 low alarm is raised at t=10
ACTION_CASES = [
    # name, steps, shown, audio
    ("raised alarm sounds", [], ["spo2_low"], Priority.MEDIUM),
    ("acknowledge silences but keeps it shown", [(12, "ack")], ["spo2_low"], None),
    ("acknowledged stays silent for good", [(12, "ack"), (500, "spo2", 88)], ["spo2_low"], None),
    ("pause silences it", [(12, "pause", None)], ["spo2_low"], None),
    ("pause runs out after 120 s and it sounds again",
     [(12, "pause", None), (132, "tick")], ["spo2_low"], Priority.MEDIUM),
    ("still paused 1 s before the end", [(12, "pause", None), (131, "tick")], ["spo2_low"], None),
    ("operator resumes audio", [(12, "pause", None), (20, "resume")], ["spo2_low"], Priority.MEDIUM),
    ("a pause longer than the clinic maximum is cut to it",
     [(12, "pause", 600), (133, "tick")], ["spo2_low"], Priority.MEDIUM),
    ("a higher priority condition sounds during a pause",
     [(12, "pause", None)] + series("spo2", [82] * 7, 13), ["spo2_desat", "spo2_low"], Priority.HIGH),
    ("a new condition of the same priority sounds during a pause",
     [(12, "pause", None)] + series("pulse_rate", [130] * 12, 13),
     ["pulse_rate_high", "spo2_low"], Priority.MEDIUM),
    ("acknowledge during a pause stays silent after the pause",
     [(12, "pause", None), (13, "ack"), (200, "tick")], ["spo2_low"], None),
    ("an ended then recurring condition is new and sounds after an acknowledge",
     [(12, "ack"), (13, "spo2", 95)] + series("spo2", [88] * 12, 20), ["spo2_low"],
     Priority.MEDIUM),
]


@pytest.mark.parametrize("name, steps, shown, audio", ACTION_CASES, ids=[c[0] for c in ACTION_CASES])
def test_acknowledge_and_pause(name, steps, shown, audio):
    h = Harness().run(series("spo2", [88] * 11))
    assert h.kinds("alarm.raised") == [("spo2_low", 10)]
    h.run(steps)
    assert h.shown == shown
    assert h.audio == audio


def test_pause_countdown_and_events():
    h = Harness({"settings": {"pause_max_s": 300}}).run(series("spo2", [88] * 11))
    assert h.engine.pause_audio("nurse1", "nurse", duration_s=600, now=12) == 300
    h.at(42)
    assert h.engine.snapshot().pause_remaining_s == pytest.approx(270)
    h.at(313)
    assert h.engine.snapshot().pause_remaining_s is None
    paused = [e for e in h.events if e.kind == "alarm.audio_paused"][0]
    resumed = [e for e in h.events if e.kind == "alarm.audio_resumed"][0]
    assert paused.data["duration_s"] == 300 and paused.data["conditions"] == ["spo2_low"]
    assert paused.user_id == "nurse1"
    assert resumed.data["reason"] == "expired" and resumed.t_mono == 312


def test_priority_escalation_puts_the_high_alarm_on_top():
    h = Harness().run(series("spo2", [88] * 11))
    assert h.engine.snapshot().top.priority is Priority.MEDIUM
    h.run(series("spo2", [82] * 6, 11))
    top = h.engine.snapshot().top
    assert (top.condition, top.priority, top.value) == ("spo2_desat", Priority.HIGH, 82)
    assert "SpO2 desaturation 82" in top.text


def test_acknowledge_with_nothing_shown_records_nothing():
    h = Harness()
    assert h.engine.acknowledge("nurse1", "nurse", now=1) == []
    assert h.events == []


def test_raised_event_carries_limits_in_force_and_value():
    h = Harness({"conditions": {"spo2_low": {"limit": 92}}}).run(series("spo2", [91] * 11))
    ev = [e for e in h.events if e.kind == "alarm.raised"][0]
    assert ev.data["limit"] == 92 and ev.data["value"] == 91 and ev.data["priority"] == "medium"
    assert ev.data["limits"] == {"spo2_low": 92, "spo2_desat": 85}
    assert ev.data["delay_s"] == 10 and ev.data["onset_mono"] == 0


def test_extreme_value_is_reported_when_it_ends():
    h = Harness().run(series("spo2", [88] * 11 + [86, 84, 87, 95]))
    ended = [e for e in h.events if e.kind == "alarm.ended" and e.data["condition"] == "spo2_low"]
    assert ended[0].data["extreme"] == 84 and ended[0].data["value"] == 95


# -- limit changes ------------------------------------------------------------------------------
def test_nurse_changes_a_limit_and_it_is_recorded():
    h = Harness().run(series("spo2", [91] * 3))
    assert h.engine.set_limit("spo2_low", user_id="nurse1", role="nurse", limit=92, now=3) == \
        {"limit": (90, 92)}
    ev = [e for e in h.events if e.kind == "alarm.limits_changed"][0]
    assert ev.data == {"condition": "spo2_low", "label": "SpO2 low", "field": "limit", "old": 90,
                       "new": 92, "user": "nurse1", "role": "nurse"}
    assert ev.user_id == "nurse1"
    h.at(14)  # the last value (91) is judged against the new limit at once: raised 10 s later
    assert h.kinds("alarm.raised") == [("spo2_low", 13)]


def test_lowering_a_limit_below_the_value_ends_the_alarm():
    h = Harness().run(series("spo2", [88] * 11))
    h.engine.set_limit("spo2_low", user_id="nurse1", role="nurse", limit=86, now=12)
    assert h.kinds("alarm.ended") == [("spo2_low", 12)]


@pytest.mark.parametrize("role, changes, error", [
    ("auditor", {"limit": 92}, AuthError),
    (None, {"limit": 92}, AuthError),
    ("nurse", {"priority": "high"}, AuthError),
    ("nurse", {"delay_s": 0}, AuthError),
    ("admin", {"limit": 101}, ConfigError),
    ("admin", {"limit": 80, "delay_s": 61}, ConfigError),
    ("admin", {"colour": "red"}, ConfigError),
])
def test_limit_changes_refused(role, changes, error):
    h = Harness()
    with pytest.raises(error):
        h.engine.set_limit("spo2_low", user_id="u1", role=role, **changes)
    assert h.engine.spec("spo2_low").limit == 90 and h.events == []


def test_limit_ordering_is_kept():
    h = Harness()
    with pytest.raises(ConfigError, match="desaturation"):
        h.engine.set_limit("spo2_desat", user_id="n", role="nurse", limit=91)
    h.engine.set_limit("pulse_rate_high", user_id="n", role="nurse", limit=90)
    with pytest.raises(ConfigError, match="below"):
        h.engine.set_limit("pulse_rate_low", user_id="n", role="nurse", limit=95)


def test_admin_changes_priority_and_delay():
    h = Harness()
    changed = h.engine.set_limit("pulse_rate_high", user_id="a1", role="admin", priority="high",
                                 delay_s=4)
    assert changed == {"priority": ("medium", "high"), "delay_s": (10, 4)}
    h.run(series("pulse_rate", [140] * 6))
    assert h.kinds("alarm.raised") == [("pulse_rate_high", 4)]
    assert h.engine.snapshot().top.priority is Priority.HIGH


def test_a_priority_raised_while_the_alarm_is_on_applies_at_once():
    h = Harness().run(series("pulse_rate", [130] * 11))
    assert h.audio is Priority.MEDIUM
    h.engine.set_limit("pulse_rate_high", user_id="a1", role="admin", priority="high", now=11)
    assert h.engine.snapshot().top.priority is Priority.HIGH and h.audio is Priority.HIGH


def test_roles_are_a_clinic_setting():
    h = Harness({"settings": {"limit_roles": ["physician"]}})
    with pytest.raises(AuthError, match="nurse"):
        h.engine.set_limit("spo2_low", user_id="n", role="nurse", limit=92)
    h.engine.set_limit("spo2_low", user_id="p", role="physician", limit=92)


@pytest.mark.parametrize("config, match", [
    ({"conditions": {"spo2_lo": {"limit": 91}}}, "unknown condition"),
    ({"conditions": {"spo2_low": {"limit": "ninety"}}}, "expected a number"),
    ({"conditions": {"nibp_mean_high": {"delay_s": 30}}}, "no delay"),
    ({"settings": {"pause_default_s": 300}}, "pause_default_s"),
    ({"settings": {"volume": 3}}, "unknown setting"),
    ({"alarms": {}}, "unknown section"),
])
def test_bad_config_is_a_clear_error(config, match):
    with pytest.raises(ConfigError, match=match):
        AlarmConfig.from_dict(config)


def test_protocol_alarm_limits_form_is_accepted():
    c = AlarmConfig.from_dict({"limits": {"spo2": {"low": 92}, "pulse_rate": {"low": 45, "high": 130}},
                               "conditions": {"pulse_rate_high": {"limit": 125}}})
    assert c.specs["spo2_low"].limit == 92 and c.specs["pulse_rate_low"].limit == 45
    assert c.specs["pulse_rate_high"].limit == 125  # an explicit condition wins
    with pytest.raises(ConfigError, match="no high limit alarm on 'spo2'"):
        AlarmConfig.from_dict({"limits": {"spo2": {"high": 99}}})


def test_config_round_trips():
    c = AlarmConfig.from_dict({"settings": {"latching": True}, "conditions": {
        "spo2_low": {"limit": 92, "priority": "high"}}})
    again = AlarmConfig.from_dict({"settings": c.to_dict()["settings"], "conditions": {
        k: {f: v[f] for f in ("limit", "priority", "delay_s", "hysteresis") if f in v}
        for k, v in c.to_dict()["conditions"].items()}})
    assert again == c


# -- tiles and threads ------------------------------------------------------------------------
def test_tile_priorities_follow_the_metrics():
    h = Harness().run(series("spo2", [82] * 11) + [(11, "nibp_systolic", 170),
                                                    (12, "status", (False, {Condition.DISCONNECTED}))])
    tiles = h.engine.snapshot().tile_priorities()
    assert tiles["spo2"] is Priority.HIGH
    assert tiles["nibp_systolic"] is Priority.MEDIUM
    assert "pulse_rate" not in tiles


def test_emitting_through_the_dispatcher_does_not_deadlock():
    """A reader thread feeds through the dispatcher while another thread ticks and acks: the
    engine publishes its events through the same dispatcher."""
    clock = ManualClock(0.0)
    d = Dispatcher()
    seen = []
    engine = AlarmEngine(clock=clock, emit=d.publish)
    d.add_listener(engine.feed)
    d.add_listener(lambda s: seen.append(s.kind) if hasattr(s, "kind") else None)
    stop = threading.Event()

    def reader():
        i = 0
        while not stop.is_set() and i < 4400:
            clock.advance(0.01)
            v = 80 if (i // 1500) % 2 == 0 else 97
            d.publish(Numeric.of("spo2", v, t_mono=clock.monotonic(), t_wall=0, source=OX))
            i += 1

    t = threading.Thread(target=reader)
    t.start()
    while t.is_alive():
        engine.tick()
        engine.acknowledge("n", "nurse")
        t.join(0.001)
    stop.set()
    t.join(10)
    assert not t.is_alive()
    engine.acknowledge("n", "nurse")  # the last episode (80 %) is still on
    assert seen.count("alarm.raised") == 4 and seen.count("alarm.ended") == 2
    assert "alarm.acknowledged" in seen
    assert d.errors == {}


def test_sample_times_let_delays_run_out_between_ticks():
    """In a fast simulation ticks are far apart in session time; samples carry time too."""
    clock, events = ManualClock(0.0), []
    engine = AlarmEngine(clock=clock, emit=events.append)
    engine.feed(DeviceStatus(OX, True, frozenset({Condition.SENSOR_OFF}), 0, 0, "probe off"))
    for t in range(1, 8):
        engine.feed(Numeric.of("perfusion_index", None, t_mono=t, t_wall=t, source=OX))
    assert [(e.data["condition"], e.t_mono) for e in events] == [("sensor_off", 5)]


# -- acting at a locked screen ------------------------------------------------------------------
def test_acknowledge_and_pause_at_a_locked_screen_name_no_user():
    h = Harness().run(series("spo2", [88] * 11))
    h.engine.pause_audio("nurse1", "nurse", now=11, locked=True)
    h.engine.acknowledge("nurse1", "nurse", now=12, locked=True)
    acted = [e for e in h.events if e.kind in ("alarm.audio_paused", "alarm.acknowledged")]
    assert [(e.kind, e.user_id, e.data["user"], e.data["role"], e.data["locked"]) for e in acted] \
        == [("alarm.audio_paused", None, None, None, True),
            ("alarm.acknowledged", None, None, None, True)]
    assert h.audio is None and h.shown == ["spo2_low"]


# -- the range a limit may be set to ------------------------------------------------------------
@pytest.mark.parametrize("key, limit, match", [
    ("spo2_desat", 50, "below the lowest this clinic allows \\(70 %\\)"),
    ("spo2_low", 0, "below the lowest this clinic allows \\(80 %\\)"),
    ("nibp_systolic_high", 260, "above the highest this clinic allows \\(230 mmHg\\)"),
    ("pulse_rate_low", 20, "below the lowest"),
])
def test_limits_stay_within_the_clinic_range(key, limit, match):
    h = Harness()
    before = h.engine.spec(key).limit
    with pytest.raises(ConfigError, match=match):
        h.engine.set_limit(key, user_id="n", role="nurse", limit=limit)
    assert h.engine.spec(key).limit == before and h.events == []


def test_the_range_is_a_clinic_setting():
    h = Harness({"conditions": {"spo2_desat": {"limit_min": 75}}})
    with pytest.raises(ConfigError, match="75 %"):
        h.engine.set_limit("spo2_desat", user_id="n", role="nurse", limit=72)
    wide = Harness({"conditions": {"spo2_desat": {"limit_min": 60, "limit": 65}}})
    assert wide.engine.spec("spo2_desat").limit == 65
    with pytest.raises(ConfigError, match="below the lowest"):
        AlarmConfig.from_dict({"conditions": {"spo2_low": {"limit_min": 92}}})  # default 90 out
    with pytest.raises(ConfigError, match="limit_min 95 is above limit_max 90"):
        AlarmConfig.from_dict({"conditions": {"spo2_low": {"limit_min": 95, "limit_max": 90,
                                                           "limit": 92}}})
    with pytest.raises(ConfigError, match="cannot change"):  # never at the bedside
        h.engine.set_limit("spo2_desat", user_id="a", role="admin", limit_min=50)


def test_protocol_limits_are_applied_with_a_reason_and_become_the_defaults():
    h = Harness({"settings": {"limit_roles": ["physician"]}})
    changed = h.engine.apply_limits({"spo2_desat": 88, "spo2_low": 92, "pulse_rate_high": 120},
                                    user_id="nurse1", role="nurse", reason="protocol p1", now=1)
    assert changed == {"spo2_desat": (85, 88), "spo2_low": (90, 92)}  # 120 already in force
    ev = [e.data for e in h.events if e.kind == "alarm.limits_changed"]
    assert [(d["condition"], d["old"], d["new"], d["user"], d["reason"]) for d in ev] == [
        ("spo2_desat", 85, 88, "nurse1", "protocol p1"), ("spo2_low", 90, 92, "nurse1",
                                                           "protocol p1")]
    assert h.engine.limit_defaults()["spo2_low"] == 92 and h.engine.changed_limits() == ()
    h.engine.set_limit("spo2_low", user_id="doc", role="physician", limit=90)
    (change,) = h.engine.changed_limits()
    assert (change.condition, change.limit, change.default) == ("spo2_low", 90, 92)
    assert change.text == "SpO2 low < 90 (default 92)"
    assert h.engine.snapshot().changed_limits == (change,)
    with pytest.raises(ConfigError, match="lowest"):
        h.engine.check_limits({"spo2_desat": 50})
    with pytest.raises(ConfigError, match="lowest"):  # all or nothing
        h.engine.apply_limits({"spo2_low": 91, "spo2_desat": 50}, user_id="n", role="nurse",
                              reason="protocol p2")
    assert h.engine.spec("spo2_low").limit == 90


def test_banner_text_shows_a_changed_limit_and_its_default():
    h = Harness()
    h.engine.set_limit("spo2_low", user_id="n", role="nurse", limit=92)
    h.run(series("spo2", [91] * 11))
    assert h.engine.snapshot().top.text == "SpO2 low 91 (< 92, default 90)"


def test_a_value_inside_the_hysteresis_is_not_shown_as_beyond_the_limit():
    h = Harness().run([(0, "nibp_systolic", 170)])
    assert h.engine.snapshot().top.text == "NIBP systolic high 170 (> 160)"
    h.run([(300, "nibp_systolic", 158)])
    assert h.engine.snapshot().top.text == \
        "NIBP systolic high: last reading 158, alarm ends at 155 or below"
    h2 = Harness().run(series("spo2", [88] * 11 + [90]))
    assert h2.engine.snapshot().top.text == "SpO2 low: now 90, alarm ends at 91 or above"


# -- re-annunciation of a silenced high-priority alarm that worsens -------------------------------
def desat_acknowledged_at_84(config=None) -> Harness:
    h = Harness(config).run(series("spo2", [84] * 6))
    assert h.kinds("alarm.raised") == [("spo2_desat", 5)]
    h.step(6, "ack")
    assert h.audio is None
    return h


def test_acknowledged_desaturation_sounds_again_when_it_worsens_by_the_margin():
    h = desat_acknowledged_at_84()
    h.run(series("spo2", [82, 80, 79.5], 7))  # 4.5 % further: still silent
    assert h.audio is None
    h.run([(10, "spo2", 79)])  # 5 % below 84: sounds again
    assert h.audio is Priority.HIGH and h.engine.snapshot().top.condition == "spo2_desat"
    (ev,) = [e for e in h.events if e.kind == "alarm.reannunciated"]
    assert ev.data == {"alarm_id": ev.data["alarm_id"], "condition": "spo2_desat",
                       "priority": "high", "value": 79, "silenced_value": 84, "margin": 5.0,
                       "was": "acknowledged"}
    h.step(11, "ack")  # acknowledged at 79: the next re-annunciation needs 74
    h.run(series("spo2", [76, 75], 12))
    assert h.audio is None
    h.run([(14, "spo2", 74)])
    assert h.audio is Priority.HIGH
    assert len([e for e in h.events if e.kind == "alarm.reannunciated"]) == 2


def test_a_paused_desaturation_sounds_again_when_it_worsens():
    h = Harness().run(series("spo2", [84] * 6))
    h.step(6, "pause", None)
    h.run([(7, "spo2", 78)])
    assert h.audio is Priority.HIGH
    assert [e.data["was"] for e in h.events if e.kind == "alarm.reannunciated"] == ["audio paused"]


@pytest.mark.parametrize("config, steps", [
    ({"settings": {"reannunciate": False}}, [(7, "spo2", 60)]),  # the clinic switched it off
    ({"settings": {"reannunciate_margins": {"spo2": 10}}}, [(7, "spo2", 75)]),  # 9 % < 10 %
    (None, [(7, "spo2", 88), (8, "spo2", 80)]),  # improving then back: 4 % below 84
])
def test_no_reannunciation(config, steps):
    h = desat_acknowledged_at_84(config).run(steps)
    assert h.audio is None and not [e for e in h.events if e.kind == "alarm.reannunciated"]


def test_medium_priority_alarms_are_not_reannunciated():
    h = Harness().run(series("spo2", [88] * 11))
    h.step(11, "ack")
    h.run([(12, "spo2", 86)])  # SpO2 low (medium) worse by 2 %, no desat yet (delay)
    h.run([(13, "spo2", 70)])  # 18 % worse: SpO2 low stays silent; desaturation is new
    low = [a for a in h.engine.snapshot().alarms if a.condition == "spo2_low"][0]
    assert low.acknowledged and not [e for e in h.events if e.kind == "alarm.reannunciated"]


@pytest.mark.parametrize("settings, match", [
    ({"reannunciate_margins": {"spo2": 0}}, "more than 0"),
    ({"reannunciate_margins": {"perfusion_index": 1}}, "no limit alarm"),
    ({"reannunciate": "yes"}, "true or false"),
])
def test_bad_reannunciation_settings(settings, match):
    with pytest.raises(ConfigError, match=match):
        AlarmConfig.from_dict({"settings": settings})


def test_replay_active_counts_the_alarms_it_replays_not_the_queue():
    h = Harness().run(series("spo2", [82] * 12))  # desaturation and SpO2 low on
    counts = []

    def emit(ev):  # replaying while the second limit change still waits to be emitted
        h.events.append(ev)
        if ev.kind == "alarm.limits_changed" and not counts:
            counts.append(h.engine.replay_active())

    h.engine.emit = emit
    h.engine.set_limits({"pulse_rate_low": {"limit": 45}, "pulse_rate_high": {"limit": 130}},
                        user_id="n", role="nurse")
    assert counts == [2]
    replayed = [e.data["condition"] for e in h.events if e.data.get("carried_over")]
    assert sorted(replayed) == ["spo2_desat", "spo2_low"]
    assert [e.kind for e in h.events[-3:]].count("alarm.limits_changed") == 1  # nothing lost
    h.engine.emit = h.events.append
    h.run(series("spo2", [97] * 2, start=13))
    assert h.engine.replay_active() == 0


def test_restore_puts_a_whole_configuration_back_as_recorded_changes():
    clinic = AlarmConfig.from_dict({"conditions": {"spo2_low": {"limit": 91}}})
    h = Harness({"conditions": {"spo2_low": {"limit": 91}}})
    h.engine.apply_limits({"spo2_low": 94, "nibp_mean_low": 70}, user_id="n", role="nurse",
                          reason="protocol p")
    h.engine.set_limit("spo2_desat", user_id="a", role="admin", priority="medium", limit=87)
    h.events.clear()
    diff = h.engine.restore(clinic, user_id="n", reason="next patient", now=3)
    assert diff == {"spo2_low": {"limit": (94, 91)}, "nibp_mean_low": {"limit": (70, 60)},
                    "spo2_desat": {"limit": (87, 85), "priority": ("medium", "high")}}
    assert [(e.data["condition"], e.data["field"], e.data["reason"], e.data["role"], e.t_mono)
            for e in h.events] == [
        ("spo2_desat", "limit", "next patient", None, 3),
        ("spo2_desat", "priority", "next patient", None, 3),
        ("spo2_low", "limit", "next patient", None, 3),
        ("nibp_mean_low", "limit", "next patient", None, 3)]
    assert h.engine.limit_defaults()["spo2_low"] == 91 and h.engine.changed_limits() == ()
    assert h.engine.restore(clinic, user_id="n", reason="again") == {}  # nothing to record
    assert len(h.events) == 4
