"""The step forms: check-in, pre-dose (baseline, checklist, high-BP reason), dose, discharge.

Each form calls the SessionWorkflow and shows its WorkflowError in place; the panel switches forms
when the workflow's state changes."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from ketmonitor.errors import DoseDeviationError, KetmonitorError
from ketmonitor.patients import REMS_FLAGS, SEXES, Patient
from ketmonitor.workflow import DOSE_UNITS, RATE_UNITS, ROUTES, SessionWorkflow

from .. import theme
from .common import ErrorLabel, attempt, heading, parse_number

REMS_CHOICES = ("not asked", "no", "yes")


class CheckInForm(QWidget):
    def __init__(self, workflow: SessionWorkflow, protocols: dict, parent=None):
        super().__init__(parent)
        self.workflow, self.protocols = workflow, protocols
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Check-in"))
        form = QFormLayout()
        self.mrn = QLineEdit()
        self.name = QLineEdit()
        self.birth_date = QLineEdit()
        self.birth_date.setPlaceholderText("YYYY-MM-DD")
        self.sex = QComboBox()
        self.sex.addItems(["", *SEXES])
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0, 400)
        self.weight.setDecimals(1)
        self.weight.setSuffix(" kg")
        self.weight.setSpecialValueText("unknown")
        self.notes = QPlainTextEdit()
        self.notes.setFixedHeight(48)
        self.protocol = QComboBox()
        for name, p in sorted(protocols.items()):
            self.protocol.addItem(p.title, name)
        if workflow.protocol is not None:
            self.protocol.setCurrentIndex(max(0, self.protocol.findData(workflow.protocol.name)))
        for label, field in (("Identifier / MRN", self.mrn), ("Name", self.name),
                             ("Birth date", self.birth_date), ("Sex", self.sex),
                             ("Weight", self.weight), ("Notes", self.notes),
                             ("Protocol", self.protocol)):
            form.addRow(label, field)
        self.rems: dict[str, QComboBox] = {}
        for key, label in REMS_FLAGS.items():
            box = QComboBox()
            box.addItems(REMS_CHOICES)
            self.rems[key] = box
            form.addRow(label, box)
        layout.addLayout(form)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.button = QPushButton("Check in")
        self.button.clicked.connect(self.submit)
        layout.addWidget(self.button)
        layout.addStretch(1)

    def patient(self) -> Patient:
        flags = {k: (None if b.currentIndex() == 0 else b.currentIndex() == 2)
                 for k, b in self.rems.items()}
        return Patient(mrn=self.mrn.text().strip(), name=self.name.text().strip(),
                       birth_date=self.birth_date.text().strip() or None,
                       sex=self.sex.currentText() or None,
                       weight_kg=self.weight.value() or None,
                       notes=self.notes.toPlainText().strip(), **flags)

    def submit(self) -> None:
        protocol = self.protocols[self.protocol.currentData()]
        attempt(self.error, lambda: self.workflow.check_in(self.patient(), protocol))


class PreDoseForm(QWidget):
    """Baseline vitals (typed, or taken from the monitor), the checklist, and the reason to go on
    when the baseline BP is above the protocol's threshold."""

    def __init__(self, workflow: SessionWorkflow, latest: Callable[[], dict], parent=None):
        super().__init__(parent)
        self.workflow, self.latest = workflow, latest
        self.filled: dict[str, str] = {}  # values taken from the monitor, as shown
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Before the dose"))
        grid = QGridLayout()
        self.fields = {}
        for i, (key, label) in enumerate((("nibp_systolic", "Systolic"),
                                          ("nibp_diastolic", "Diastolic"), ("spo2", "SpO2"),
                                          ("pulse_rate", "Pulse"))):
            field = QLineEdit()
            field.setMaximumWidth(70)
            self.fields[key] = field
            grid.addWidget(QLabel(label), 0, i)
            grid.addWidget(field, 1, i)
        layout.addLayout(grid)
        row = QHBoxLayout()
        self.from_monitor = QPushButton("Use monitor values")
        self.from_monitor.clicked.connect(self.fill_from_monitor)
        self.baseline_button = QPushButton("Record baseline")
        self.baseline_button.clicked.connect(self.record_baseline)
        row.addWidget(self.from_monitor)
        row.addWidget(self.baseline_button)
        layout.addLayout(row)
        self.baseline_status = QLabel("")
        layout.addWidget(self.baseline_status)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(f"color: {theme.ALARM_COLOURS['medium']}; font-weight: bold;")
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason to proceed (required)")
        self.reason_button = QPushButton("Record reason and proceed")
        self.reason_button.clicked.connect(self.proceed)
        for w in (self.warning, self.reason, self.reason_button):
            layout.addWidget(w)
            w.hide()
        layout.addWidget(heading("Checklist"))
        self.checks: dict[str, QCheckBox] = {}
        for item in workflow.protocol.pre_dose_checklist:
            box = QCheckBox(item.label)
            self.checks[item.id] = box
            layout.addWidget(box)
        self.checklist_button = QPushButton("Confirm checklist")
        self.checklist_button.clicked.connect(self.confirm)
        layout.addWidget(self.checklist_button)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.refresh()

    def fill_from_monitor(self) -> None:
        values = self.latest()
        for key, field in self.fields.items():
            if values.get(key) is not None:
                field.setText(f"{values[key]:.0f}")
                self.filled[key] = field.text()

    def record_baseline(self) -> None:
        def go():
            v = {k: parse_number(f.text(), k.replace("nibp_", "").replace("_", " "),
                                 required=k.startswith("nibp")) for k, f in self.fields.items()}
            typed = {k for k, f in self.fields.items() if self.filled.get(k) != f.text()}
            return self.workflow.record_baseline(**v, typed=typed)
        attempt(self.error, go)
        self.refresh()

    def proceed(self) -> None:
        attempt(self.error, self.workflow.proceed_despite_baseline, self.reason.text())
        self.refresh()

    def confirm(self) -> None:
        attempt(self.error, self.workflow.confirm_checklist,
                {k: b.isChecked() for k, b in self.checks.items()})
        self.refresh()

    def refresh(self) -> None:
        snap = self.workflow.snapshot
        if snap.baseline:
            b = snap.baseline
            self.baseline_status.setText(f"Baseline recorded: {b['nibp_systolic']:.0f}/"
                                         f"{b['nibp_diastolic']:.0f} mmHg")
        high = snap.baseline_bp_high and not snap.baseline_reason
        if snap.baseline_bp_high:
            t = self.workflow.protocol.baseline_bp
            self.warning.setText(f"Baseline BP above the protocol threshold "
                                 f"({t.get('systolic', 0):.0f}/{t.get('diastolic', 0):.0f}):"
                                 + (" proceeding needs a recorded reason." if high else
                                    f" reason recorded: {snap.baseline_reason}"))
        self.warning.setVisible(snap.baseline_bp_high)
        self.reason.setVisible(high)
        self.reason_button.setVisible(high)
        self.checklist_button.setText("Checklist confirmed" if snap.checklist else
                                      "Confirm checklist")


class DoseForm(QWidget):
    """Drug, dose, unit, route, lot number; several devices or boluses; infusion start/rate/stop.
    A dose outside the protocol (too soon after the last device, too many, too much) is refused
    with what departs from it, and can then be given with a recorded reason."""

    def __init__(self, workflow: SessionWorkflow, parent=None):
        super().__init__(parent)
        self.workflow = workflow
        p = workflow.protocol
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Dose"))
        form = QFormLayout()
        self.drug = QLineEdit(p.drug)
        self.amount = QLineEdit()
        self.unit = QComboBox()
        self.unit.addItems(DOSE_UNITS)
        self.route = QComboBox()
        self.route.addItems(ROUTES)
        self.route.setCurrentText(p.route)
        self.lot = QLineEdit()
        self.rate = QLineEdit()
        self.rate_unit = QComboBox()
        self.rate_unit.addItems(RATE_UNITS)
        for label, field in (("Drug", self.drug), ("Dose", self.amount), ("Unit", self.unit),
                             ("Route", self.route), ("Lot number", self.lot)):
            form.addRow(label, field)
        self.infusion = bool(p.dose.get("infusion_min"))
        if self.infusion:
            form.addRow("Rate", self.rate)
            form.addRow("Rate unit", self.rate_unit)
        layout.addLayout(form)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet(f"color: {theme.DIM};")
        layout.addWidget(self.hint)
        buttons = QGridLayout()
        self.give_button = QPushButton("Give dose" if p.route != "intranasal" else "Give device")
        self.give_button.clicked.connect(lambda: self.give())
        self.start_button = QPushButton("Start infusion")
        self.start_button.clicked.connect(self.start_infusion)
        self.rate_button = QPushButton("Change rate")
        self.rate_button.clicked.connect(self.change_rate)
        self.stop_button = QPushButton("Stop infusion")
        self.stop_button.clicked.connect(self.stop_infusion)
        self.finish_button = QPushButton("Dosing finished")
        self.finish_button.clicked.connect(self.finish)
        if self.infusion:
            buttons.addWidget(self.start_button, 0, 0)
            buttons.addWidget(self.rate_button, 0, 1)
            buttons.addWidget(self.stop_button, 1, 0)
        else:
            buttons.addWidget(self.give_button, 0, 0)
        buttons.addWidget(self.finish_button, 2, 0, 1, 2)
        layout.addLayout(buttons)
        self.given = QLabel("")
        layout.addWidget(self.given)
        self.deviation = QLabel("")
        self.deviation.setWordWrap(True)
        self.deviation.setStyleSheet(f"color: {theme.ALARM_COLOURS['medium']}; font-weight: bold;")
        self.deviation_reason = QLineEdit()
        self.deviation_reason.setPlaceholderText("Reason to give it outside the protocol (required)")
        self.deviation_button = QPushButton("Give with this reason")
        self.deviation_button.clicked.connect(self.give_with_reason)
        for w in (self.deviation, self.deviation_reason, self.deviation_button):
            layout.addWidget(w)
            w.hide()
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.prefill()

    def prefill(self) -> None:
        d = self.workflow.protocol.dose
        amount, unit = d.get("amount"), d.get("unit", "mg")
        patient = self.workflow.patient()
        weight = patient.weight_kg if patient else None
        if amount and unit == "mg/kg" and weight:
            total = round(amount * weight, 1)
            self.hint.setText(f"{amount:g} mg/kg x {weight:g} kg = {total:g} mg")
            amount, unit = total, "mg"
            if d.get("infusion_min"):
                self.rate.setText(f"{round(total * 60 / d['infusion_min'], 1):g}")
                self.rate_unit.setCurrentText("mg/h")
        if amount:
            self.amount.setText(f"{amount:g}")
        self.unit.setCurrentText(unit if unit in DOSE_UNITS else "mg")

    def _dose_args(self) -> dict:
        return dict(drug=self.drug.text(), amount=parse_number(self.amount.text(), "dose"),
                    unit=self.unit.currentText())

    def give(self, reason: str | None = None) -> None:
        try:
            self.workflow.give_dose(**self._dose_args(), route=self.route.currentText(),
                                    lot_number=self.lot.text(), deviation_reason=reason)
        except DoseDeviationError as exc:
            self._show_deviation(exc.deviations)
            self.error.clear_error()
            return
        except KetmonitorError as exc:
            self.error.show_error(str(exc))
            return
        self.error.clear_error()
        self._show_deviation([])
        self.refresh()

    def give_with_reason(self) -> None:
        reason = self.deviation_reason.text().strip()
        if not reason:
            self.error.show_error("giving a dose outside the protocol needs a reason")
            return
        self.give(reason)

    def _show_deviation(self, deviations: list[str]) -> None:
        self.deviation.setText("Outside the protocol: " + "; ".join(deviations) + "."
                               if deviations else "")
        for w in (self.deviation, self.deviation_reason, self.deviation_button):
            w.setVisible(bool(deviations))
        if not deviations:
            self.deviation_reason.clear()
        else:
            self.deviation_reason.setFocus()

    def start_infusion(self) -> None:
        attempt(self.error, lambda: self.workflow.start_infusion(
            **self._dose_args(), rate=parse_number(self.rate.text(), "rate"),
            rate_unit=self.rate_unit.currentText(), lot_number=self.lot.text()))
        self.refresh()

    def change_rate(self) -> None:
        attempt(self.error, lambda: self.workflow.change_infusion_rate(
            parse_number(self.rate.text(), "rate"), self.rate_unit.currentText()))
        self.refresh()

    def stop_infusion(self) -> None:
        attempt(self.error, self.workflow.stop_infusion)
        self.refresh()

    def finish(self) -> None:
        attempt(self.error, self.workflow.finish_dosing)

    def refresh(self) -> None:
        snap = self.workflow.snapshot
        running = " - infusion running" if snap.infusion_running else ""
        text = f"Doses recorded: {snap.doses}{running}"
        interval = self.workflow.protocol.dose.get("interval_min")
        if interval and snap.last_dose_mono is not None and snap.state == "dosing":
            wait = snap.last_dose_mono + interval * 60 - self.workflow.clock.monotonic()
            text += (f" - next device in {int(wait) // 60}:{int(wait) % 60:02d}" if wait > 0
                     else f" - next device may be given ({interval:g} min passed)")
        self.given.setText(text)


class DischargeForm(QWidget):
    def __init__(self, workflow: SessionWorkflow, parent=None):
        super().__init__(parent)
        self.workflow = workflow
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Discharge"))
        self.elapsed = QLabel("")
        layout.addWidget(self.elapsed)
        self.early_reason = QLineEdit()
        self.early_reason.setPlaceholderText("Reason, if before the minimum monitoring time")
        layout.addWidget(self.early_reason)
        self.begin_button = QPushButton("Begin discharge")
        self.begin_button.clicked.connect(self.begin)
        layout.addWidget(self.begin_button)
        self.criteria: dict[str, QCheckBox] = {}
        for item in workflow.protocol.discharge_criteria:
            box = QCheckBox(item.label)
            self.criteria[item.id] = box
            layout.addWidget(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Ready to leave"))
        self.ready_minutes_ago = QSpinBox()
        self.ready_minutes_ago.setRange(0, 240)
        self.ready_minutes_ago.setSuffix(" min ago")
        self.ready_minutes_ago.setSpecialValueText("now")
        row.addWidget(self.ready_minutes_ago)
        layout.addLayout(row)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason, if a criterion is not met")
        layout.addWidget(self.reason)
        self.discharge_button = QPushButton("Record discharge")
        self.discharge_button.clicked.connect(self.discharge)
        self.end_button = QPushButton("End session")
        self.end_button.clicked.connect(self.end)
        layout.addWidget(self.discharge_button)
        layout.addWidget(self.end_button)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.refresh()

    def begin(self) -> None:
        attempt(self.error, self.workflow.begin_discharge, self.early_reason.text() or None)
        self.refresh()

    def discharge(self) -> None:
        clock = self.workflow.clock
        ready = clock.monotonic() - self.ready_minutes_ago.value() * 60
        attempt(self.error, lambda: self.workflow.discharge(
            {k: b.isChecked() for k, b in self.criteria.items()}, ready_at_mono=ready,
            reason=self.reason.text() or None))
        self.refresh()

    def end(self) -> None:
        attempt(self.error, self.workflow.end)

    def refresh(self) -> None:
        snap = self.workflow.snapshot
        protocol = self.workflow.protocol
        minutes = self.workflow.minutes_monitored()
        since = "first" if protocol.min_monitoring_from == "first_dose" else "last"
        if minutes is not None:
            self.elapsed.setText(f"{minutes:.0f} of at least {protocol.min_monitoring_min:g}"
                                 f" minutes since the {since} dose")
        in_discharge = snap.state == "discharge"
        self.begin_button.setEnabled(snap.state == "monitoring")
        self.early_reason.setVisible(snap.state == "monitoring")
        for w in (*self.criteria.values(), self.ready_minutes_ago, self.reason):
            w.setEnabled(in_discharge and not snap.discharged)
        self.discharge_button.setEnabled(in_discharge and not snap.discharged)
        self.end_button.setEnabled(in_discharge and snap.discharged)

