"""A SunTech Advantage NIBP module on a pseudo-terminal, answering as devices.parsers.suntech reads.

State machine (times are simulated seconds, so ``speed`` shortens a measurement):
- idle: start (adult, pediatric, neonate) -> 'O'; the cuff inflates to the initial inflate pressure
  (``3A 17``, default systolic + 30) over the first quarter of the measurement, then deflates. A
  measurement takes ``PatientModel.nibp_duration`` (25-45 s).
- measuring: cuff pressure requests -> ``3E 05`` with the current pressure; start -> 'B'; BP data
  request -> 'B'; abort -> 'A' (the result becomes error 86, stopped by user).
- at the end the module sends 'K' by itself; the BP data then holds systolic, diastolic, mean and
  pulse rate from the patient model at that moment, or the injected error code.
- reset -> 'R' (forgets the result); unknown command -> 'D'; a frame with a bad checksum or an
  initial inflate pressure outside 100..280 mmHg -> 'N'.
- BP data request while no result is held (after plug-in or reset) -> ``NO_RESULT``, an all-zero
  BP-data frame with error code 0, as a module answering from an empty result buffer would. No
  public document says what the module sends then; of the plausible answers ('E', 'N', zeros)
  this is the one a host can least tell from a reading, so the emulator sends it and the parser
  must (and does) reject it as no reading (devices/parsers/suntech.py).

Errors are injected with ``inject_error(code)`` (the next measurement fails with ``code``), with
``error_code`` (every measurement fails with it: ``ketmonitor emulate --device suntech --set
error_code=87``) or at random with ``failure_rate``. In the patient's device-disconnect episode the module answers nothing.
"""

from __future__ import annotations

from devices.parsers import suntech as proto

from .base import Emulator

RANDOM_FAILURES = (1, 2, 87)
NO_RESULT = proto.bp_data_frame(0, 0, 0, 0)  # get BP data with no result held (see above)


class SuntechEmulator(Emulator):
    protocol = "suntech"
    baudrate = proto.BAUD
    interval = 0.05  # state machine tick (simulated seconds)

    def __init__(self, *args, failure_rate: float = 0.0, error_code: int | None = None, **kw):
        super().__init__(*args, **kw)
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within 0..1, got {failure_rate}")
        if error_code is not None and not 1 <= int(error_code) <= 255:
            raise ValueError(f"error_code must be 1..255, got {error_code}")
        self.failure_rate = float(failure_rate)
        self.error_code = None if error_code is None else int(error_code)
        self.parser = proto.SuntechCommandParser()
        self.state = "idle"
        self.initial_inflate: int | None = None
        self.start_t = 0.0
        self.duration = 0.0
        self.peak = 0.0
        self.result: bytes | None = None  # the BP data frame of the last measurement
        self.results: list[tuple[int, int, int, int, int]] = []  # sys, dia, mean, pr, error
        self.commands: list[str] = []
        self._injected: list[int] = []

    def inject_error(self, code: int) -> None:
        """The next measurement ends with this error code (e.g. 87 loose cuff)."""
        self._injected.append(int(code))

    def on_plug(self) -> None:
        self.parser.reset()

    # -- host -> module --------------------------------------------------------------------------
    def handle_input(self, data: bytes) -> None:
        t = self.sim_time()
        frames = self.parser.feed(data)
        if self.device_silent(t):
            return
        for cmd in frames:
            self.commands.append(cmd.name)
            self._command(cmd, t)

    def _command(self, cmd: proto.SuntechCommand, t: float) -> None:
        name = cmd.name
        measuring = self.state == "measuring"
        if name == "bad":
            self.reply(proto.status_frame("N"))
        elif name == "unknown":
            self.reply(proto.status_frame("D"))
        elif name.startswith("start_"):
            if measuring:
                self.reply(proto.status_frame("B"))
            else:
                self._begin(t)
                self.reply(proto.status_frame("O"))
        elif name == "get_cuff_pressure":
            self.reply(proto.cuff_pressure_frame(round(self.cuff_pressure(t))))
        elif name == "get_bp_data":
            if measuring:
                self.reply(proto.status_frame("B"))
            else:
                self.reply(self.result or NO_RESULT)
        elif name == "abort":
            if measuring:
                self._finish(t, error=86)
            self.reply(proto.status_frame("A"))
        elif name == "reset":
            self.state, self.result = "idle", None
            self.reply(proto.status_frame("R"))
        elif name == "set_initial_inflate":
            if 100 <= (cmd.value or 0) <= 280:
                self.initial_inflate = cmd.value
                self.reply(proto.status_frame("O"))
            else:
                self.reply(proto.status_frame("N"))

    # -- the measurement -------------------------------------------------------------------------
    def _begin(self, t: float) -> None:
        self.state = "measuring"
        self.start_t = t
        self.duration = self.patient.nibp_duration(self.rng)
        v = self.patient.vitals(t)
        self.peak = float(self.initial_inflate or round(v.systolic + 30))

    def cuff_pressure(self, t: float) -> float:
        if self.state != "measuring":
            return 0.0
        x = (t - self.start_t) / self.duration
        if x < 0.25:
            return self.peak * x / 0.25
        # deflation in steps of about 8 mmHg, as a step-deflation module does
        p = self.peak * max(0.0, 1 - (x - 0.25) / 0.75)
        return max(0.0, p - p % 8)

    def _finish(self, t: float, error: int | None = None) -> None:
        self.state = "idle"
        if error is None and self._injected:
            error = self._injected.pop(0)
        if error is None:
            error = self.error_code
        if error is None and self.failure_rate and self.rng.random() < self.failure_rate:
            error = self.rng.choice(RANDOM_FAILURES)
        v = self.patient.vitals(t)
        if error:
            sys_ = dia = mean = pr = 0
        else:
            sys_, dia = round(v.systolic), round(v.diastolic)
            mean, pr = round(v.mean), round(v.pulse_rate or 0)
        self.result = proto.bp_data_frame(sys_, dia, mean, pr, error_code=error or 0)
        self.results.append((sys_, dia, mean, pr, error or 0))

    def render(self, seconds: float, t_start: float | None = None) -> bytes:
        """What the module sends over ``seconds`` to a host that measures back to back and polls
        the cuff every 0.25 s: 'O', cuff pressures, 'K', the BP data, and again (for captures,
        tests and benchmarks; the live state machine is not touched)."""
        saved = (self.state, self.start_t, self.duration, self.peak, self.result,
                 list(self.results))
        t = self.t0 if t_start is None else t_start
        end = t + seconds
        out = []
        try:
            while t < end:
                self._begin(t)
                out.append(proto.status_frame("O"))
                while t < end and t - self.start_t < self.duration:
                    t += 0.25
                    out.append(proto.cuff_pressure_frame(round(self.cuff_pressure(t))))
                if t >= end:
                    break
                self._finish(t)
                out += [proto.status_frame("K"), self.result]
                t += 0.5
        finally:
            (self.state, self.start_t, self.duration, self.peak, self.result,
             self.results) = saved
        return self._faulty(b"".join(out))

    def produce(self, t: float) -> bytes:
        if self.state == "measuring" and t - self.start_t >= self.duration:
            self._finish(t)
            return proto.status_frame("K")
        return b""
