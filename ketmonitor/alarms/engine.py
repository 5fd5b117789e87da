"""The alarm engine: samples and a clock in, alarm conditions and SessionEvents out. No Qt, no I/O.

Feed it every sample (``feed``, a dispatcher listener) and call ``tick(now_mono)`` often (the runtime
ticker, every 50 ms): delays run on monotonic time only. Operators act through ``acknowledge``,
``pause_audio``, ``resume_audio`` and ``set_limit``; the UI reads ``snapshot()``.

Semantics (docs/alarms.md is the disclosed version):
- A limit condition exists while the value is beyond its limit; it is raised once it has existed for
  its delay and ends when a value is back inside the limit by the hysteresis. A missing value (None)
  never raises an alarm, never ends one, and cancels a pending (not yet raised) onset. NIBP limits are
  judged on each completed reading, with no delay.
- Technical conditions come from DeviceStatus (disconnected, sensor off, searching, no data, NIBP
  failed), the ``nibp_error`` metric, and ``set_technical`` (audio unavailable, storage failing).
- Acknowledge silences every condition shown now; a latched condition that has ended is cleared.
  Audio pause silences the conditions shown now for a countdown; any condition raised later (so
  certainly one of higher priority) sounds at once. Neither hides an active condition. Both may be
  done at a locked screen (``locked=True``): anyone answering an alarm may silence it, and the action
  is recorded as done at the locked screen, by no user.
- Re-annunciation (clinic setting, on by default): a silenced high-priority limit alarm sounds again
  when its value worsens by the clinic's margin beyond the value it was silenced at.
- Latching (clinic setting) keeps an ended physiological alarm visible and audible until acknowledged.

Events are queued under the engine lock and emitted after it is released, in order, so a callback
that publishes through the dispatcher (whose lock a reader thread may hold while feeding us) can
never deadlock with us.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..clock import Clock
from ..errors import AuthError, ConfigError
from ..samples import Condition, DeviceStatus, Numeric, SessionEvent, WaveformChunk
from .conditions import LIMIT, TECHNICAL, AlarmConfig, ConditionSpec, Priority, with_field

log = logging.getLogger(__name__)

EPS = 1e-9
SENSOR_CONDITIONS = frozenset({Condition.SENSOR_OFF, Condition.SENSOR_DISCONNECTED,
                               Condition.SENSOR_FAULT})
SYSTEM = ""  # source of alarms raised by the application itself (audio, storage)
_CHANGEABLE = ("limit", "priority", "delay_s", "hysteresis")  # what set_limit may change


@dataclass
class _Episode:
    uid: str
    key: str
    source: str
    spec: ConditionSpec  # as in force when raised
    value: float | None
    message: str
    start_mono: float
    start_wall: float
    extreme: float | None = None
    end_mono: float | None = None
    acknowledged: bool = False
    latched: bool = False
    silenced_value: float | None = None  # the value when it was acknowledged or paused
    raised: dict | None = None  # the alarm.raised event's data, for a new session's log


@dataclass
class _Track:
    """One condition on one source: is it present now, since when, and its raised episode."""

    key: str
    source: str
    raw: bool = False
    onset: float | None = None
    immediate: bool = False
    value: float | None = None  # latest value seen (limit alarms)
    message: str = ""
    episode: _Episode | None = None


@dataclass(frozen=True, slots=True)
class AlarmView:
    alarm_id: str
    condition: str
    label: str
    kind: str
    priority: Priority
    source: str
    metric: str | None
    direction: str | None
    limit: float | None
    value: float | None  # triggering value
    current: float | None  # latest value of the metric
    message: str
    started_mono: float
    started_wall: float
    ended_mono: float | None
    acknowledged: bool
    paused: bool
    sounding: bool
    latched: bool
    metrics: tuple[str, ...]  # metrics whose tiles this alarm concerns
    hysteresis: float = 0.0
    episodic: bool = False
    default_limit: float | None = None  # the limit before any bedside change

    @property
    def active(self) -> bool:
        return self.ended_mono is None

    @property
    def limit_changed(self) -> bool:
        return self.default_limit is not None and self.limit != self.default_limit

    @property
    def text(self) -> str:
        """The banner line: condition, value and limit, readable at a glance. A value back inside
        the limit but not yet by the hysteresis says when the alarm will end instead of showing a
        limit the value no longer crosses."""
        if self.kind == LIMIT and self.value is not None:
            shown = self.current if self.active and self.current is not None else self.value
            low = self.direction == "low"
            limit = f"{self.limit:g}" + (f", default {self.default_limit:g}" if self.limit_changed
                                         else "")
            beyond = shown < self.limit if low else shown > self.limit
            if self.active and not beyond:
                end = self.limit + self.hysteresis if low else self.limit - self.hysteresis
                what = "last reading" if self.episodic else "now"
                return (f"{self.label}: {what} {shown:g}, alarm ends at {end:g} or "
                        f"{'above' if low else 'below'}")
            return f"{self.label} {shown:g} ({'<' if low else '>'} {limit})"
        return self.label if not self.message else f"{self.label}: {self.message}"


@dataclass(frozen=True, slots=True)
class LimitChange:
    """A limit that differs from its default (the clinic's, with the protocol's laid over)."""

    condition: str
    label: str
    metric: str
    direction: str
    limit: float
    default: float

    @property
    def text(self) -> str:
        sign = "<" if self.direction == "low" else ">"
        return f"{self.label} {sign} {self.limit:g} (default {self.default:g})"


@dataclass(frozen=True, slots=True)
class AlarmSnapshot:
    now: float
    alarms: tuple[AlarmView, ...]  # shown now, most important first
    past: tuple[AlarmView, ...]  # ended, most recent first
    audio_priority: Priority | None  # what the speaker should play, None for silence
    pause_remaining_s: float | None  # audio pause countdown, None when not paused
    changed_limits: tuple[LimitChange, ...] = ()  # limits differing from their defaults

    @property
    def top(self) -> AlarmView | None:
        return self.alarms[0] if self.alarms else None

    def tile_priorities(self) -> dict[str, Priority]:
        """Highest priority per metric among the alarms shown."""
        out: dict[str, Priority] = {}
        for a in self.alarms:
            for m in a.metrics:
                if m not in out or a.priority.rank > out[m].rank:
                    out[m] = a.priority
        return out


EventSink = Callable[[SessionEvent], None]


class AlarmEngine:
    def __init__(self, config: AlarmConfig | None = None, *, clock: Clock | None = None,
                 emit: EventSink | None = None, history: int = 500):
        self.config = config or AlarmConfig()
        self.clock = clock or Clock()
        self.emit = emit
        self._lock = threading.RLock()
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._visible: dict[str, _Episode] = {}
        self._past: deque[_Episode] = deque(maxlen=history)
        self._paused_ids: set[str] = set()
        self._paused_until: float | None = None
        self._now = float("-inf")
        self._nibp_failed: dict[str, bool] = {}
        self._source_metrics: dict[str, set[str]] = {}
        self._last_value: dict[str, float | None] = {}
        self._outbox: deque[SessionEvent] = deque()
        self._drain_lock = threading.Lock()
        # the limits bedside changes are compared with: the configuration's, then the protocol's
        self._defaults = {k: s.limit for k, s in self.config.specs.items() if s.kind == LIMIT}

    # -- inputs --------------------------------------------------------------------------------
    def feed(self, sample) -> None:
        """Dispatcher listener: take one sample (SessionEvents and waveforms are ignored)."""
        if isinstance(sample, (SessionEvent, WaveformChunk)):
            return
        with self._lock:
            now = self._advance(sample.t_mono)
            if isinstance(sample, Numeric):
                self._numeric(sample, now)
            elif isinstance(sample, DeviceStatus):
                self._status(sample, now)
            self._pass_time(now)  # a sample's time is news too: between ticks in a fast simulation
        self._drain()

    __call__ = feed

    def tick(self, now_mono: float | None = None) -> None:
        """Let time pass: raise conditions whose delay has run out, end an expired audio pause."""
        with self._lock:
            self._pass_time(self._advance(self._mono(now_mono)))
        self._drain()

    def _pass_time(self, now: float) -> None:
        for track in self._tracks.values():
            if track.raw and track.episode is None:
                self._evaluate(track, now)
        if self._paused_until is not None and now >= self._paused_until - EPS:
            self._end_pause(now, "expired", None, None)

    def set_technical(self, key: str, active: bool, message: str = "", *, source: str = SYSTEM,
                      now: float | None = None) -> None:
        """Raise or end a technical condition the application detects itself (e.g.
        ``set_technical("storage_failing", True, "disk full")``, ``"audio_unavailable"``)."""
        spec = self._spec(key)
        if spec.kind != TECHNICAL:
            raise ConfigError(f"{key} is not a technical alarm")
        with self._lock:
            now = self._advance(self._mono(now))
            self._set_raw(key, source, active, now, message)
        self._drain()

    # -- operator actions ----------------------------------------------------------------------
    @staticmethod
    def _who(user_id, role, locked: bool) -> tuple[str | None, str | None]:
        # at a locked screen the person acting is not the user whose controls are locked
        return (None, None) if locked else (user_id, role)

    def acknowledge(self, user_id: str | None = None, role: str | None = None,
                    now: float | None = None, *, locked: bool = False) -> list[str]:
        """Silence every condition shown now; clear latched ones that have ended. Returns ids.

        ``locked``: done at a locked screen; recorded with no user and ``locked: true``."""
        user_id, role = self._who(user_id, role, locked)
        with self._lock:
            now = self._advance(self._mono(now))
            acked, cleared = [], []
            for ep in list(self._visible.values()):
                if ep.end_mono is not None:  # latched and over: acknowledging clears it
                    cleared.append(ep)
                    del self._visible[ep.uid]
                elif not ep.acknowledged:
                    ep.acknowledged = True
                    ep.silenced_value = self._current(ep)
                    acked.append(ep)
            if acked or cleared:
                self._event("alarm.acknowledged", now, {
                    "alarm_ids": [e.uid for e in acked + cleared],
                    "conditions": [e.key for e in acked + cleared],
                    "cleared": [e.uid for e in cleared],
                    "user": user_id, "role": role, "locked": locked}, user_id)
            result = [e.uid for e in acked + cleared]
        self._drain()
        return result

    def pause_audio(self, user_id: str | None = None, role: str | None = None,
                    duration_s: float | None = None, now: float | None = None, *,
                    locked: bool = False) -> float:
        """Start (or restart) the audio-pause countdown for the conditions shown now.

        Returns the duration granted: the clinic default, or ``duration_s`` capped at the clinic's
        maximum. ``locked`` as for ``acknowledge``."""
        user_id, role = self._who(user_id, role, locked)
        s = self.config.settings
        duration = s.pause_default_s if duration_s is None else float(duration_s)
        if duration <= 0:
            raise ConfigError("audio pause must last a positive number of seconds")
        duration = min(duration, s.pause_max_s)
        with self._lock:
            now = self._advance(self._mono(now))
            for uid in set(self._visible) - self._paused_ids:
                ep = self._visible[uid]
                if ep.silenced_value is None:
                    ep.silenced_value = self._current(ep)
            self._paused_ids |= set(self._visible)
            self._paused_until = now + duration
            self._event("alarm.audio_paused", now, {
                "alarm_ids": sorted(self._paused_ids),
                "conditions": sorted({self._visible[u].key for u in self._paused_ids
                                      if u in self._visible}),
                "duration_s": duration, "until_mono": self._paused_until,
                "user": user_id, "role": role, "locked": locked}, user_id)
        self._drain()
        return duration

    def resume_audio(self, user_id: str | None = None, role: str | None = None,
                     now: float | None = None, *, locked: bool = False) -> None:
        """End the audio pause before its countdown runs out."""
        user_id, role = self._who(user_id, role, locked)
        with self._lock:
            now = self._advance(self._mono(now))
            if self._paused_until is not None:
                self._end_pause(now, "operator", user_id, role, locked)
        self._drain()

    def set_limit(self, key: str, *, user_id: str, role: str, now: float | None = None,
                  **changes) -> dict[str, tuple]:
        """Change ``limit`` (limit roles) or ``priority``/``delay_s``/``hysteresis`` (clinic setting
        roles) of one condition. A limit must stay within the clinic's range for it
        (``limit_min``-``limit_max``). Every change is emitted as ``alarm.limits_changed`` with who,
        old and new; the store listener audits it. Returns {field: (old, new)} for what changed."""
        return self.set_limits({key: changes}, user_id=user_id, role=role, now=now).get(key, {})

    def set_limits(self, changes: dict[str, dict], *, user_id: str, role: str,
                   now: float | None = None) -> dict[str, dict[str, tuple]]:
        """``set_limit`` for several conditions at once, validated as one set (a low and a high
        limit may move past each other) and applied all or nothing."""
        if not user_id:
            raise AuthError("changing alarm limits needs a signed-in user")
        s = self.config.settings
        for key, fields in changes.items():
            self._spec(key)
            for name in fields:
                allowed = s.limit_roles if name == "limit" else s.setting_roles
                if name not in _CHANGEABLE:
                    raise ConfigError(f"{key}: cannot change {name!r}")
                if role not in allowed:
                    what = "alarm limits" if name == "limit" else f"the alarm {name}"
                    raise AuthError(f"role {role!r} may not change {what} "
                                    f"(allowed: {', '.join(sorted(allowed))})")
        return self._change(changes, user_id=user_id, role=role, now=now)

    def check_limits(self, limits: dict[str, float]) -> None:
        """Raise ConfigError if ``{condition: limit}`` cannot be applied to the limits in force
        (outside the clinic's range, a low limit not below its high limit)."""
        with self._lock:
            self._changed_config({k: {"limit": v} for k, v in limits.items()})

    def apply_limits(self, limits: dict[str, float], *, user_id: str | None, role: str | None,
                     reason: str, now: float | None = None) -> dict[str, tuple]:
        """Apply a protocol's limits (``{condition: limit}``): not a bedside choice, so no role is
        checked, but every change is recorded like one, with ``reason`` (e.g. 'protocol NAME').
        The applied limits become the defaults bedside changes are compared with."""
        changed = self._change({k: {"limit": v} for k, v in limits.items()}, user_id=user_id,
                               role=role, now=now, reason=reason)
        with self._lock:
            for key, value in limits.items():
                self._defaults[key] = float(value)
        return {k: v["limit"] for k, v in changed.items()}

    def _changed_config(self, changes: dict[str, dict]) -> AlarmConfig:
        specs = dict(self.config.specs)
        for key, fields in changes.items():
            new = self._spec(key)
            for name, value in fields.items():
                new = with_field(new, name, value)
            specs[key] = new
        config = replace(self.config, specs=specs)
        config.check()
        return config

    def _change(self, changes: dict[str, dict], *, user_id, role, now, reason=None) -> dict:
        """Validate all of ``{key: {field: value}}`` together, then apply and record each change."""
        with self._lock:
            config = self._changed_config(changes)
            diff = self._install(config, {k: tuple(f) for k, f in changes.items()},
                                 user_id=user_id, role=role, now=now, reason=reason)
        self._drain()
        return diff

    def _install(self, config: AlarmConfig, fields: dict[str, tuple[str, ...]], *, user_id, role,
                 now, reason) -> dict:
        """Put ``config`` in force (engine lock held) and record an ``alarm.limits_changed`` for
        each of ``fields`` that differs; the last value of a changed limit is judged again at once.
        Returns {key: {field: (old, new)}}."""
        diff = {}
        for key, names in fields.items():
            old, new = self.config.specs[key], config.specs[key]
            d = {n: (getattr(old, n), getattr(new, n)) for n in names
                 if getattr(old, n) != getattr(new, n)}
            if d:
                diff[key] = d
        self.config = config
        if not diff:
            return {}
        now = self._advance(self._mono(now))
        for key, d in diff.items():
            new = config.specs[key]
            for name, (old, value) in d.items():
                data = {"condition": key, "label": new.label, "field": name,
                        "old": getattr(old, "value", old), "new": getattr(value, "value", value),
                        "user": user_id, "role": role}
                if reason:
                    data["reason"] = reason
                self._event("alarm.limits_changed", now, data, user_id)
            if new.kind == LIMIT:  # judge the last value against the new limit now
                track = self._track(key, SYSTEM)
                v = self._last_value.get(new.metric)
                if v is not None:
                    self._judge(track, new, v, now)
        return {k: {n: (getattr(o, "value", o), getattr(v, "value", v)) for n, (o, v) in d.items()}
                for k, d in diff.items()}

    def restore(self, config: AlarmConfig, *, user_id: str | None, reason: str,
                now: float | None = None) -> dict[str, dict[str, tuple]]:
        """Put a whole configuration back in force (the clinic's, for the next patient: what the
        previous patient's protocol and bedside changes set goes). Every limit, priority, delay and
        hysteresis that changes is recorded like a bedside change, with ``reason``; the clinic's
        ranges and settings come with it, and its limits become the defaults again. Alarms active
        now stay, judged against the restored limits. Returns {key: {field: (old, new)}}."""
        config.check()
        if set(config.specs) != set(self.config.specs):
            raise ConfigError("the configuration to restore has other alarm conditions")
        with self._lock:
            diff = self._install(config, {k: _CHANGEABLE for k in config.specs}, user_id=user_id,
                                 role=None, now=now, reason=reason)
            self._defaults = {k: s.limit for k, s in config.specs.items() if s.kind == LIMIT}
        self._drain()
        return diff

    def replay_active(self) -> int:
        """Emit ``alarm.raised`` again (with ``carried_over: true`` and the original start) for
        every alarm active now: when the monitor starts recording a new session, its alarm log
        then holds the alarms already on, and their ends. Returns how many."""
        n = 0
        with self._lock:
            for ep in self._visible.values():
                if ep.end_mono is None and ep.raised is not None:
                    self._outbox.append(SessionEvent(
                        "alarm.raised", ep.start_mono, ep.start_wall,
                        {**ep.raised, "carried_over": True, "acknowledged": ep.acknowledged}))
                    n += 1  # not len(outbox): other events may be queued beside them
        self._drain()
        return n

    def limit_defaults(self) -> dict[str, float]:
        with self._lock:
            return dict(self._defaults)

    def changed_limits(self) -> tuple[LimitChange, ...]:
        with self._lock:
            out = []
            for key, spec in self.config.specs.items():
                default = self._defaults.get(key)
                if spec.kind == LIMIT and default is not None and spec.limit != default:
                    out.append(LimitChange(key, spec.label, spec.metric, spec.direction, spec.limit,
                                           default))
            return tuple(out)

    # -- outputs -------------------------------------------------------------------------------
    def snapshot(self, now: float | None = None) -> AlarmSnapshot:
        with self._lock:
            now = max(self._now, self._mono(now))
            pausing = self._paused_until is not None and now < self._paused_until
            views = [self._view(e, pausing) for e in self._visible.values()]
            views.sort(key=lambda v: (-v.priority.rank, v.acknowledged, not v.active,
                                      -v.started_mono))
            sounding = [v.priority for v in views if v.sounding]
            audio = max(sounding, key=lambda p: p.rank) if sounding else None
            past = tuple(self._view(e, False) for e in reversed(self._past))
            remaining = self._paused_until - now if pausing else None
            return AlarmSnapshot(now, tuple(views), past, audio, remaining, self.changed_limits())

    def spec(self, key: str) -> ConditionSpec:
        return self._spec(key)

    # -- internals -----------------------------------------------------------------------------
    def _mono(self, now: float | None) -> float:
        return self.clock.monotonic() if now is None else float(now)

    def _advance(self, t: float) -> float:
        self._now = max(self._now, t)
        return self._now

    def _wall(self, t_mono: float) -> float:
        return self.clock.wall() + (t_mono - self.clock.monotonic())

    def _spec(self, key: str) -> ConditionSpec:
        try:
            return self.config.specs[key]
        except KeyError:
            raise ConfigError(f"unknown alarm condition {key!r}; known: "
                              f"{', '.join(self.config.specs)}") from None

    def _track(self, key: str, source: str) -> _Track:
        t = self._tracks.get((key, source))
        if t is None:
            t = self._tracks[(key, source)] = _Track(key, source)
        return t

    def _numeric(self, s: Numeric, now: float) -> None:
        self._source_metrics.setdefault(s.source, set()).add(s.metric)
        if s.metric == "nibp_error":
            failed = s.value is not None and s.value != 0
            if failed:
                self._nibp_failed[s.source] = True
                msg = s.detail or f"error code {s.value:g}"
                self._set_raw("nibp_failed", s.source, True, now, msg)
            return
        if s.metric == "nibp_systolic" and s.value is not None and self._nibp_failed.get(s.source):
            self._nibp_failed[s.source] = False
            self._set_raw("nibp_failed", s.source, False, now)
        self._last_value[s.metric] = s.value
        for spec in self.config.specs.values():
            if spec.metric == s.metric:
                track = self._track(spec.key, SYSTEM)
                if s.value is None:  # missing: neither raises nor ends; cancels a pending onset
                    if track.episode is None:
                        track.raw, track.onset = False, None
                    continue
                self._judge(track, spec, s.value, now, onset=s.t_mono)

    def _judge(self, track: _Track, spec: ConditionSpec, value: float, now: float,
               onset: float | None = None) -> None:
        track.value = value
        if spec.beyond(value, hysteresis=track.episode is not None):
            if not track.raw:
                track.raw, track.onset = True, min(now, onset) if onset is not None else now
            track.immediate = spec.episodic
            if track.episode is not None:
                ep = track.episode
                worse = value < ep.extreme if spec.direction == "low" else value > ep.extreme
                ep.extreme = value if worse else ep.extreme
                self._reannunciate(ep, spec, value, now)
        else:
            track.raw, track.onset = False, None
        self._evaluate(track, now)

    def _current(self, ep: _Episode) -> float | None:
        """The latest value of a limit alarm's metric (None for technical alarms)."""
        if ep.spec.kind != LIMIT:
            return None
        track = self._tracks.get((ep.key, ep.source))
        return track.value if track is not None and track.value is not None else ep.extreme

    def _reannunciate(self, ep: _Episode, spec: ConditionSpec, value: float, now: float) -> None:
        """A silenced high-priority limit alarm whose value has worsened by the clinic's margin
        since it was silenced sounds again (and is recorded): the nurse silenced that value."""
        s = self.config.settings
        silenced = ep.acknowledged or ep.uid in self._paused_ids
        if not (s.reannunciate and silenced and ep.silenced_value is not None
                and self.config.specs[ep.key].priority is Priority.HIGH):
            return
        margin = s.reannunciate_margins.get(spec.metric)
        if margin is None:
            return
        worse_by = ep.silenced_value - value if spec.direction == "low" else value - ep.silenced_value
        if worse_by < margin - EPS:
            return
        was = "acknowledged" if ep.acknowledged else "audio paused"
        reference, ep.silenced_value = ep.silenced_value, None
        ep.acknowledged = False
        self._paused_ids.discard(ep.uid)
        self._event("alarm.reannunciated", now, {
            "alarm_id": ep.uid, "condition": ep.key, "priority": Priority.HIGH.value,
            "value": value, "silenced_value": reference, "margin": margin, "was": was})

    def _status(self, st: DeviceStatus, now: float) -> None:
        conds = st.conditions
        msg = st.message
        gone = not st.connected or Condition.DISCONNECTED in conds
        self._set_raw("device_disconnected", st.source, gone, now, msg)
        self._set_raw("sensor_off", st.source, not gone and bool(conds & SENSOR_CONDITIONS), now,
                      msg)
        searching = not gone and bool(conds & {Condition.SEARCHING, Condition.SEARCHING_TOO_LONG})
        self._set_raw("searching_too_long", st.source, searching, now, msg,
                      immediate=Condition.SEARCHING_TOO_LONG in conds)
        self._set_raw("no_data", st.source, not gone and Condition.NO_DATA in conds, now, msg)
        if Condition.NIBP_FAILED in conds:
            self._nibp_failed[st.source] = True
            self._set_raw("nibp_failed", st.source, True, now, msg)

    def _set_raw(self, key: str, source: str, active: bool, now: float, message: str = "",
                 immediate: bool = False) -> None:
        track = self._track(key, source)
        if active:
            if not track.raw:
                track.raw, track.onset = True, now
            track.immediate = immediate
            track.message = message or track.message
            if track.episode is not None and message:
                track.episode.message = message
        else:
            track.raw, track.onset = False, None
        self._evaluate(track, now)

    def _evaluate(self, track: _Track, now: float) -> None:
        spec = self.config.specs[track.key]
        if track.raw and track.episode is None:
            if track.immediate or now - track.onset >= spec.delay_s - EPS:
                self._raise(track, spec, now)
        elif not track.raw and track.episode is not None:
            self._end(track, now)

    def _raise(self, track: _Track, spec: ConditionSpec, now: float) -> None:
        for uid, ep in list(self._visible.items()):  # a latched earlier episode is superseded
            if ep.key == track.key and ep.source == track.source and ep.end_mono is not None:
                del self._visible[uid]
        ep = _Episode(uuid.uuid4().hex, track.key, track.source, spec, track.value, track.message,
                      now, self._wall(now), extreme=track.value)
        track.episode = ep
        self._visible[ep.uid] = ep
        limits = {s.key: s.limit for s in self.config.specs.values()
                  if spec.metric and s.metric == spec.metric}
        ep.raised = {
            "alarm_id": ep.uid, "condition": spec.key, "label": spec.label, "kind": spec.kind,
            "priority": spec.priority.value, "source": track.source or None, "metric": spec.metric,
            "direction": spec.direction, "limit": spec.limit, "hysteresis": spec.hysteresis,
            "delay_s": spec.delay_s, "value": track.value, "limits": limits,
            "message": track.message, "onset_mono": track.onset}
        self._event("alarm.raised", now, dict(ep.raised))

    def _end(self, track: _Track, now: float) -> None:
        ep, track.episode = track.episode, None
        ep.end_mono = now
        latch = (self.config.settings.latching and ep.spec.kind == LIMIT and not ep.acknowledged)
        if latch:
            ep.latched = True
        else:
            self._visible.pop(ep.uid, None)
        self._past.append(ep)
        self._event("alarm.ended", now, {
            "alarm_id": ep.uid, "condition": ep.key, "priority": ep.spec.priority.value,
            "source": ep.source or None, "value": track.value if ep.spec.kind == LIMIT else None,
            "extreme": ep.extreme, "latched": latch, "duration_s": now - ep.start_mono})

    def _end_pause(self, now: float, reason: str, user_id, role, locked: bool = False) -> None:
        ids = sorted(self._paused_ids)
        self._paused_until = None
        self._paused_ids.clear()
        for ep in self._visible.values():
            if not ep.acknowledged:
                ep.silenced_value = None  # sounding again: nothing silenced to compare with
        data = {"reason": reason, "alarm_ids": ids, "user": user_id, "role": role}
        if reason == "operator":
            data["locked"] = locked
        self._event("alarm.audio_resumed", now, data, user_id)

    def _view(self, ep: _Episode, pausing: bool) -> AlarmView:
        spec = ep.spec
        paused = pausing and ep.uid in self._paused_ids
        shown = ep.uid in self._visible
        if spec.metric:
            metrics: tuple[str, ...] = (spec.metric,)
        else:
            metrics = tuple(sorted(self._source_metrics.get(ep.source, ())))
        # a priority changed while the alarm is on applies at once (the log keeps the raised one)
        priority = self.config.specs[ep.key].priority if ep.end_mono is None else spec.priority
        return AlarmView(
            ep.uid, ep.key, spec.label, spec.kind, priority, ep.source, spec.metric,
            spec.direction, spec.limit, ep.value,
            self._last_value.get(spec.metric) if spec.metric else None, ep.message,
            ep.start_mono, ep.start_wall, ep.end_mono, ep.acknowledged, paused,
            shown and not ep.acknowledged and not paused, ep.latched, metrics, spec.hysteresis,
            spec.episodic, self._defaults.get(ep.key))

    def _event(self, kind: str, now: float, data: dict, user_id: str | None = None) -> None:
        self._outbox.append(SessionEvent(kind, now, self._wall(now), data, user_id))

    def _drain(self) -> None:
        """Emit queued events in order, outside the engine lock; one thread drains at a time."""
        while self._outbox:
            if not self._drain_lock.acquire(blocking=False):
                return  # another thread is draining and will pick ours up
            try:
                while True:
                    try:
                        event = self._outbox.popleft()
                    except IndexError:
                        break
                    if self.emit is not None:
                        try:
                            self.emit(event)
                        except Exception:  # noqa: BLE001 - alarms go on whatever a listener does
                            log.exception("alarm event listener failed on %s", event.kind)
            finally:
                self._drain_lock.release()
