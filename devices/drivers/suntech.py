"""SunTech Advantage OEM NIBP module on a serial port, 9600 8N1 ("suntech").

A measurement (device-protocols.md section 4): send start -> the module answers 'O' -> poll the cuff
pressure every ``poll_interval`` (0.25 s) while it inflates and deflates -> 'K' -> ask for the BP
data -> result or error code. If 'K' is lost on the line, the cuff back near 0 mmHg for
``lost_k_after`` seconds after inflating makes the driver ask for the result anyway. Measurements
start on demand (``request_nibp()``, from the UI) and, when the ``interval_s`` option is set,
automatically every ``interval_s`` seconds (``set_interval`` changes it).

What goes on:
- ``cuff_pressure`` Numerics while measuring, flagged NIBP_BUSY; the device status carries NIBP_BUSY
  from 'O' until the result.
- The result as ``nibp_systolic``/``nibp_diastolic``/``nibp_mean``/``nibp_pulse_rate`` Numerics with
  one timestamp, or a ``nibp_error`` Numeric (value = the module's error code, flag NIBP_FAILED,
  detail = the code's meaning). A failure also raises NIBP_FAILED on the device status (a technical
  condition) until the next measurement starts; so do a rejected start, a module that does not
  answer, a connection lost mid-measurement, and a result with error code 0 that is no reading
  (all zeros, diastolic above systolic: ``SuntechBadResult``), which ends the measurement at once
  with "NIBP failed: the module's result is not a valid reading (...)" and no values.
- Between measurements the module is silent, so the driver polls the cuff pressure every
  ``idle_poll`` s as a heartbeat (those readings are not sent on): a dead module or cable raises
  NO_DATA after two of them.

Every step runs on the reader thread (``periodic`` and ``handle_frames``); the UI's calls only set
flags.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from ketmonitor.samples import Condition, Numeric
from devices.parsers.base import Frame
from devices.parsers.suntech import (ABORT, GET_BP_DATA, GET_CUFF_PRESSURE, START_COMMANDS,
                                     STATUS_MEANINGS, SuntechBadResult, SuntechBpData,
                                     SuntechCuffPressure, SuntechParser, SuntechStatus)
from devices.serial_source import SerialSource

log = logging.getLogger(__name__)

IDLE, STARTING, MEASURING, RETRIEVING = "idle", "starting", "measuring", "retrieving"


class SuntechSource(SerialSource):
    kind = "nibp"
    capabilities = frozenset({"nibp"})
    parser_class = SuntechParser
    baudrate = 9600
    protocol_label = "SunTech Advantage"
    poll_interval = 0.25  # cuff polling: the reference polls every 200-500 ms while inflating
    idle_poll: ClassVar[float] = 5.0  # heartbeat between measurements
    expected_interval = 5.0  # NO_DATA after two missed heartbeats
    reply_timeout: ClassVar[float] = 2.0  # for 'O' after start and for the BP data
    max_measure: ClassVar[float] = 150.0  # a measurement longer than this is aborted
    lost_k_after: ClassVar[float] = 3.0  # cuff back near 0 this long after inflating: 'K' was lost
    no_data_hint = "Check the NIBP module's power and cable."

    def __init__(self, source_id: str, *, interval_s: float | None = None,
                 mode: str = "adult", **options: Any):
        super().__init__(source_id, **options)
        if mode not in START_COMMANDS:
            raise ValueError(f"unknown NIBP mode {mode!r}; known: {', '.join(START_COMMANDS)}")
        self.mode = mode
        self.interval_s = float(interval_s) if interval_s else None
        self.state = IDLE
        self.measurements_done = 0
        self.failures = 0
        self.last_error: str = ""
        self._want_start = threading.Event()
        self._want_abort = threading.Event()
        self._nibp_conds: frozenset[Condition] = frozenset()
        self._nibp_message = ""
        self._sent_at = 0.0  # when the command we wait on was sent
        self._started_at = 0.0
        self._retries = 0
        self._next_auto: float | None = None
        self._next_idle_poll = 0.0
        self._cuff_peak = 0  # highest cuff pressure of this measurement
        self._deflated_since: float | None = None

    # -- commands (any thread) ---------------------------------------------------------------
    def request_nibp(self) -> None:
        """Start a measurement as soon as the module is idle (a request during one is dropped)."""
        self._want_start.set()

    def abort_nibp(self) -> None:
        self._want_abort.set()

    def set_interval(self, seconds: float | None) -> None:
        """Automatic measurements every ``seconds`` from now on; None or 0 turns them off."""
        self.interval_s = float(seconds) if seconds else None
        self._next_auto = (None if self.interval_s is None
                           else self.clock.monotonic() + self.interval_s)

    @property
    def measuring(self) -> bool:
        return self.state != IDLE

    # -- status: the NIBP state rides on every status report -------------------------------------
    def set_status(self, connected: bool, conditions=frozenset(), message: str = "") -> None:
        if connected:
            conditions = frozenset(conditions) | self._nibp_conds
            message = message or self._nibp_message
        super().set_status(connected, conditions, message)

    def _nibp_state(self, state: str, conds=frozenset(), message: str = "") -> None:
        self.state = state
        self._nibp_conds = frozenset(conds)
        self._nibp_message = message
        self.update_status(self.clock.monotonic())

    # -- serial hooks ------------------------------------------------------------------------------
    def on_open(self, now: float) -> None:
        if self.state != IDLE:  # the link dropped mid-measurement: make the module let the cuff go
            self.write(ABORT)
            self._fail(now, "connection lost during the measurement")
        if self.interval_s and self._next_auto is None:
            self._next_auto = now + self.interval_s
        self._next_idle_poll = now + self.idle_poll
        self.write(GET_CUFF_PRESSURE)  # proves the module answers

    def periodic(self, now: float) -> None:
        if self._want_abort.is_set():
            self._want_abort.clear()
            if self.state != IDLE:
                self.write(ABORT)
                self._sent_at = now
        if self.state != IDLE and self._want_start.is_set():
            self._want_start.clear()  # already measuring: a second press changes nothing
        if self.state == IDLE:
            auto = self._next_auto is not None and now >= self._next_auto
            if self._want_start.is_set() or auto:
                self._want_start.clear()
                self._start(now)
            elif now >= self._next_idle_poll:
                self._next_idle_poll = now + self.idle_poll
                self.write(GET_CUFF_PRESSURE)
        elif self.state == STARTING:
            if now - self._sent_at > self.reply_timeout:
                self._fail(now, "the NIBP module did not answer the start command")
        elif self.state == MEASURING:
            if self._deflated_since is not None and now - self._deflated_since > self.lost_k_after:
                self._retries = 0
                self._ask_result(now)  # the cuff is down and no 'K' came (lost on the line)
            elif now - self._started_at > self.max_measure:
                self.write(ABORT)  # 'A' follows, then the BP data with the module's code
                self._started_at = now  # one abort per max_measure
                self._nibp_message = "measurement took too long; aborted"
            else:
                self.write(GET_CUFF_PRESSURE)
        elif self.state == RETRIEVING:
            if now - self._sent_at > self.reply_timeout:
                if self._retries >= 3:
                    self._fail(now, "the NIBP module did not send the result")
                else:
                    self._ask_result(now)

    def _start(self, now: float) -> None:
        self._started_at = self._sent_at = now
        self._cuff_peak, self._deflated_since = 0, None
        if self.interval_s:
            self._next_auto = now + self.interval_s
        self.write(START_COMMANDS[self.mode])
        self._nibp_state(STARTING, {Condition.NIBP_BUSY}, "NIBP starting")

    def _ask_result(self, now: float) -> None:
        self._retries += 1
        self._sent_at = now
        self.state = RETRIEVING
        self.write(GET_BP_DATA)

    def _fail(self, now: float, message: str) -> None:
        self.failures += 1
        self.last_error = message
        log.warning("%s: %s", self.source_id, message)
        self._nibp_state(IDLE, {Condition.NIBP_FAILED}, f"NIBP failed: {message}")

    # -- frames ------------------------------------------------------------------------------------
    def handle_frames(self, frames: list[Frame], t_mono: float, t_wall: float) -> None:
        for frame in frames:
            if isinstance(frame, SuntechCuffPressure):
                if self.state == MEASURING:
                    self._cuff_peak = max(self._cuff_peak, frame.mmhg)
                    if self._cuff_peak >= 40 and frame.mmhg < 5:
                        if self._deflated_since is None:
                            self._deflated_since = t_mono
                    else:
                        self._deflated_since = None
                if self.state in (STARTING, MEASURING):
                    self.emit(Numeric.of("cuff_pressure", frame.mmhg, t_mono=t_mono, t_wall=t_wall,
                                         source=self.source_id, flags={Condition.NIBP_BUSY}))
            elif isinstance(frame, SuntechBpData):
                if self.state == RETRIEVING:
                    self._result(frame, t_mono, t_wall)
            elif isinstance(frame, SuntechBadResult):
                if self.state == RETRIEVING:  # asking again would fetch the same stored result
                    self._fail(t_mono, "the module's result is not a valid reading "
                                       f"({frame.describe()})")
            elif isinstance(frame, SuntechStatus):
                self._status(frame, t_mono)

    def _status(self, frame: SuntechStatus, now: float) -> None:
        code = frame.code
        if code == "O" and self.state == STARTING:
            self._nibp_state(MEASURING, {Condition.NIBP_BUSY}, "NIBP measuring")
        elif code == "B" and self.state == STARTING:  # already measuring (started elsewhere)
            self._nibp_state(MEASURING, {Condition.NIBP_BUSY}, "NIBP measuring")
        elif code in "KAET" and self.state in (STARTING, MEASURING):
            self._retries = 0
            self._ask_result(now)  # the BP data says how it ended
        elif code in "ND" and self.state == STARTING:
            self._fail(now, f"the module refused the start ({STATUS_MEANINGS[code]})")
        elif code == "R" and self.state != IDLE:
            self._fail(now, "the module was reset during the measurement")

    def _result(self, frame: SuntechBpData, t_mono: float, t_wall: float) -> None:
        for m in frame.measurements():
            self.emit(Numeric.of(m.metric, m.value, t_mono=t_mono, t_wall=t_wall,
                                 source=self.source_id, flags=m.flags, detail=m.detail))
        self.measurements_done += 1
        if frame.failed:
            self.failures += 1
            self.last_error = f"{frame.error_meaning} (code {frame.error_code})"
            self._nibp_state(IDLE, {Condition.NIBP_FAILED}, f"NIBP failed: {self.last_error}")
        else:
            self._nibp_state(IDLE)
