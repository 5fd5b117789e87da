"""The workflow side panel (current step, scales, events and notes, task list) and the due-task
banner. A timer on the main thread refreshes them from the workflow's snapshot; the workflow may be
written from other threads (device NIBP results), so its change callback only sets a flag."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QStackedWidget, QTabWidget,
                               QVBoxLayout, QWidget)

from ketmonitor.errors import WorkflowError
from ketmonitor.workflow import QUICK_EVENTS, SessionWorkflow
from ketmonitor.workflow_tasks import DONE, DUE, OVERDUE, SKIPPED, Task

from .. import theme
from .common import FORM_STYLE, ErrorLabel, attempt, heading, parse_number
from .forms import CheckInForm, DischargeForm, DoseForm, PreDoseForm
from .scale_entry import ScaleEntryWidget
from .sign import SessionEndForm

STATE_TITLES = {"check_in": "Awaiting check-in", "pre_dose": "Before the dose", "dosing": "Dosing",
                "monitoring": "Monitoring", "discharge": "Discharge", "ended": "Session ended"}
TASK_COLOURS = {OVERDUE: theme.ALARM_COLOURS["medium"], DUE: theme.ALARM_COLOURS["low"],
                DONE: theme.DIM, SKIPPED: theme.DIM}


def mmss(seconds: float) -> str:
    seconds = int(abs(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def task_text(task: Task, now: float) -> str:
    if task.state == DONE:
        return f"{task.label}: done"
    if task.state == SKIPPED:
        return f"{task.label}: skipped ({task.result.get('reason', '')})"
    if task.due_mono is None:
        return f"{task.label}: {task.state}"
    delta = task.due_mono - now
    if task.state == OVERDUE:
        return f"{task.label}: OVERDUE {mmss(delta)}"
    if task.state == DUE:
        return f"{task.label}: DUE" + (f" in {mmss(delta)}" if delta > 0 else "")
    return f"{task.label}: in {mmss(delta)}"


class TaskListWidget(QListWidget):
    def show_tasks(self, tasks: list[Task], now: float) -> None:
        self.clear()
        for task in tasks:
            item = QListWidgetItem(task_text(task, now))
            item.setForeground(QColor(TASK_COLOURS.get(task.state, theme.TEXT)))
            item.setData(256, task.id)
            self.addItem(item)


class TaskBanner(QLabel):
    """Reminders and overdue warnings in the monitor's banner area."""

    def __init__(self, parent=None):
        super().__init__("", parent)
        self.setWordWrap(True)
        self.hide()

    def show_tasks(self, tasks: list[Task], now: float) -> None:
        overdue = [t for t in tasks if t.state == OVERDUE]
        due = [t for t in tasks if t.state == DUE]
        if overdue:
            colour, text = theme.ALARM_COLOURS["medium"], "OVERDUE: " + "; ".join(
                task_text(t, now).split(":")[0] for t in overdue)
            if due:
                text += "   DUE: " + "; ".join(t.label for t in due)
        elif due:
            colour, text = theme.ALARM_COLOURS["low"], "DUE: " + "; ".join(t.label for t in due)
        else:
            self.hide()
            return
        self.setText(text)
        self.setStyleSheet(f"background: {colour}; color: #000000; font-size: 18px;"
                           " font-weight: bold; padding: 4px 8px; border-radius: 4px;")
        self.show()


class EventsWidget(QWidget):
    """Quick event buttons, free-text notes and skipping a check with a reason."""

    def __init__(self, workflow: SessionWorkflow, parent=None):
        super().__init__(parent)
        self.workflow = workflow
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Events"))
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        kinds = [k for k in QUICK_EVENTS if k != "restroom_end"]
        for i, kind in enumerate(kinds):
            button = QPushButton(QUICK_EVENTS[kind].split(" (")[0])
            button.clicked.connect(lambda _=False, k=kind: self.quick(k))
            grid.addWidget(button, i // 2, i % 2)
            self.buttons[kind] = button
        layout.addLayout(grid)
        self.detail = QLineEdit()
        self.detail.setPlaceholderText("Detail (medication and dose, treatment given...)")
        layout.addWidget(self.detail)
        layout.addWidget(heading("Note"))
        row = QHBoxLayout()
        self.note = QLineEdit()
        self.note.returnPressed.connect(self.add_note)
        self.note_button = QPushButton("Add note")
        self.note_button.clicked.connect(self.add_note)
        row.addWidget(self.note, 1)
        row.addWidget(self.note_button)
        layout.addLayout(row)
        layout.addWidget(heading("Correct an entry"))
        self._fields: tuple[str, ...] = ()  # correctable fields of the selected entry
        self.entries = QComboBox()
        self.entries.currentIndexChanged.connect(self._entry_selected)
        self.changes = QLineEdit()
        self.amend_reason = QLineEdit()
        self.amend_reason.setPlaceholderText("Reason for the correction (required)")
        self.amend_button = QPushButton("Add correction")
        self.amend_button.clicked.connect(self.amend)
        for w in (self.entries, self.changes, self.amend_reason, self.amend_button):
            layout.addWidget(w)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.last = QLabel("")
        self.last.setStyleSheet(f"color: {theme.DIM};")
        layout.addWidget(self.last)
        layout.addStretch(1)

    def quick(self, kind: str) -> None:
        if kind == "restroom" and self.workflow.snapshot.nibp_paused:
            kind = "restroom_end"
        if attempt(self.error, self.workflow.add_event, kind, text=self.detail.text()) is not None:
            self.last.setText(f"Recorded: {QUICK_EVENTS[kind]}")
            self.detail.clear()
        self.refresh()

    def add_note(self) -> None:
        if attempt(self.error, self.workflow.add_note, self.note.text()) is not None:
            self.last.setText("Note recorded")
            self.note.clear()

    def refresh(self) -> None:
        paused = self.workflow.snapshot.nibp_paused
        self.buttons["restroom"].setText("Back from restroom" if paused else "Restroom break")
        if self.workflow.snapshot.checked_in:
            self.reload_entries()

    def reload_entries(self) -> None:
        current = self.entries.currentData()
        self.entries.blockSignals(True)
        self.entries.clear()
        for table, rid, text in self.workflow.recent_entries():
            self.entries.addItem(text, (table, rid))
        index = self.entries.findData(current) if current else 0
        self.entries.setCurrentIndex(max(index, 0))
        self.entries.blockSignals(False)
        self._entry_selected()

    def _entry_selected(self) -> None:
        data = self.entries.currentData()
        fields = self.workflow.correctable(*data) if data else ()
        self._fields = fields
        if data and data[0] == "scale_entries":
            hint = "corrected items, e.g. 3=4, 7=0"
        elif fields in (("text",), ("text", "detail")):
            hint = "corrected text"
        elif fields:
            example = {"lot_number": "lot_number=AB12", "amount": "amount=56",
                       "nibp_systolic": "nibp_systolic=138", "rate": "rate=30"}
            hint = "field=value: " + ", ".join(example.get(f, f) for f in fields)
        else:
            hint = "this entry cannot be corrected: add a note"
        self.changes.setPlaceholderText(hint)
        self.changes.setToolTip("Correctable: " + ", ".join(fields) if fields else hint)

    def parse_changes(self, table: str) -> dict:
        """The typed correction as the changes ``amend`` takes; only the entry's correctable
        fields (the core checks again, with the original entry's rules)."""
        text = self.changes.text().strip()
        if not text:
            raise WorkflowError("enter the corrected values")
        fields = self._fields
        if table == "events" and fields in (("text",), ("text", "detail")):
            return {"text": text}
        pairs = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise WorkflowError(f"{part.strip()!r}: write field=value")
            pairs[key.strip()] = value.strip()
        if table == "scale_entries":
            try:
                return {"items": {k: int(v) for k, v in pairs.items()}}
            except ValueError:
                raise WorkflowError("item scores must be whole numbers") from None
        bad = sorted(set(pairs) - set(fields))
        if bad:
            raise WorkflowError(f"{', '.join(bad)} cannot be corrected here"
                                f" (correctable: {', '.join(fields) or 'nothing'})")
        numeric = {"amount", "rate", "nibp_systolic", "nibp_diastolic", "nibp_mean",
                   "nibp_pulse_rate", "spo2", "pulse_rate"}
        return {k: (parse_number(v, k) if k in numeric else v) for k, v in pairs.items()}

    def amend(self) -> None:
        data = self.entries.currentData()
        if not data:
            self.error.show_error("no entry to correct")
            return
        table, rid = data
        if attempt(self.error, lambda: self.workflow.amend(
                table, rid, self.amend_reason.text(), self.parse_changes(table))) is not None:
            self.last.setText(f"Correction recorded for {self.entries.currentText()}")
            self.changes.clear()
            self.amend_reason.clear()


class WorkflowPanel(QWidget):
    """Tabs: the current step's form, the scales, events and notes, the task list."""

    def __init__(self, workflow: SessionWorkflow, protocols: dict, *,
                 latest: Callable[[], dict] = dict,
                 next_patient: Callable[[], None] | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("workflowPanel")
        self.setStyleSheet(FORM_STYLE)
        self.setMinimumWidth(420)
        self.setMaximumWidth(560)  # the vitals keep most of the screen
        self.workflow, self.protocols, self.latest = workflow, protocols, latest
        self.next_patient = next_patient
        self._dirty = True
        self._shown_state: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.header = QLabel("")
        self.header.setWordWrap(True)
        self.header.setStyleSheet(f"color: {theme.TEXT}; font-size: 16px; font-weight: bold;")
        self.lock_button = QPushButton("Lock")
        self.lock_button.setToolTip("Lock the controls now (vitals and alarms stay live)")
        top.addWidget(self.header, 1)
        top.addWidget(self.lock_button)
        layout.addLayout(top)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)
        self.step = QStackedWidget()
        self.tabs.addTab(self.step, "Step")
        self.scales = ScaleEntryWidget(workflow)
        self.tabs.addTab(self.scales, "Scales")
        self.events = EventsWidget(workflow)
        self.tabs.addTab(self.events, "Events && notes")
        tasks_page = QWidget()
        tl = QVBoxLayout(tasks_page)
        self.task_list = TaskListWidget()
        tl.addWidget(self.task_list, 1)
        row = QHBoxLayout()
        self.skip_reason = QLineEdit()
        self.skip_reason.setPlaceholderText("Reason to skip the selected check")
        self.skip_button = QPushButton("Skip check")
        self.skip_button.clicked.connect(self.skip_selected)
        row.addWidget(self.skip_reason, 1)
        row.addWidget(self.skip_button)
        tl.addLayout(row)
        bp_row = QHBoxLayout()
        self.bp_sys, self.bp_dia = QLineEdit(), QLineEdit()
        self.bp_sys.setPlaceholderText("sys")
        self.bp_dia.setPlaceholderText("dia")
        self.bp_dia.returnPressed.connect(self.record_bp)
        self.bp_button = QPushButton("Record BP by hand")
        self.bp_button.clicked.connect(self.record_bp)
        for w in (self.bp_sys, self.bp_dia, self.bp_button):
            bp_row.addWidget(w)
        tl.addLayout(bp_row)
        self.task_error = ErrorLabel()
        tl.addWidget(self.task_error)
        self.tabs.addTab(tasks_page, "Tasks")
        self.banner = TaskBanner()
        self.forms: dict[str, QWidget] = {}
        self.task_list.itemActivated.connect(self._task_activated)
        workflow.on_change = self.mark_dirty
        self.timer = QTimer(self)
        self.timer.setInterval(250)  # also keeps the dose form's next-device countdown moving
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.refresh()

    def mark_dirty(self) -> None:  # any thread
        self._dirty = True

    def tick(self) -> None:
        """Timer: refresh after changes; every tick the task list and banner (times move)."""
        if self._dirty:
            self._dirty = False
            self.refresh()
        now = self.workflow.clock.monotonic()
        tasks = self.workflow.poll(now)  # asks the NIBP device when a scheduled BP is due
        self.task_list.show_tasks(tasks, now)
        self.banner.show_tasks(tasks, now)
        dose_form = self.forms.get("dose")
        if dose_form is not None and self.step.currentWidget() is dose_form:
            dose_form.refresh()

    def _form_for(self, state: str) -> QWidget:
        key = {"dosing": "dose", "pre_dose": "pre_dose", "check_in": "check_in",
               "monitoring": "discharge", "discharge": "discharge"}.get(state, "ended")
        if key not in self.forms:
            wf = self.workflow
            make = {"check_in": lambda: CheckInForm(wf, self.protocols),
                    "pre_dose": lambda: PreDoseForm(wf, self.latest),
                    "dose": lambda: DoseForm(wf),
                    "discharge": lambda: DischargeForm(wf),
                    "ended": lambda: SessionEndForm(wf, next_patient=self.next_patient)}[key]
            self.forms[key] = make()
            self.step.addWidget(self.forms[key])
        return self.forms[key]

    def refresh(self) -> None:
        snap = self.workflow.snapshot
        patient = ""
        if snap.patient_id:
            p = self.workflow.patient()
            patient = f" - {p.name} ({p.mrn})" if p else ""
        user = self.workflow.user.full_name if self.workflow.user else "nobody logged in"
        self.header.setText(f"{STATE_TITLES.get(snap.state, snap.state)}{patient} - {user}")
        if snap.checked_in and snap.state == "monitoring" and snap.state != self._shown_state:
            self.tabs.setCurrentWidget(self.scales)
        step = snap.state if snap.checked_in else "check_in"
        ready = snap.baseline and snap.checklist and (snap.baseline_reason
                                                      or not snap.baseline_bp_high)
        if step == "pre_dose" and ready:
            step = "dosing"  # baseline and checklist done: the dose form, the first dose moves on
        form = self._form_for(step)
        self.step.setCurrentWidget(form)
        self._shown_state = snap.state
        for w in self.forms.values():
            if hasattr(w, "refresh"):
                w.refresh()
        self.events.refresh()
        self.tabs.setTabEnabled(1, snap.checked_in)
        self.tabs.setTabEnabled(2, snap.checked_in)

    def _task_activated(self, item) -> None:
        task_id = item.data(256)
        check = self.workflow.protocol.check(task_id)
        if check.kind == "scale":
            self.tabs.setCurrentWidget(self.scales)
            self.scales.select(check.scale)

    def record_bp(self) -> None:
        def go():
            return self.workflow.record_bp(parse_number(self.bp_sys.text(), "systolic"),
                                           parse_number(self.bp_dia.text(), "diastolic"))
        if attempt(self.task_error, go) is not None:
            self.bp_sys.clear()
            self.bp_dia.clear()

    def skip_selected(self) -> None:
        item = self.task_list.currentItem()
        if item is None:
            self.task_error.show_error("select a check in the list first")
            return
        attempt(self.task_error, self.workflow.skip_check, item.data(256),
                self.skip_reason.text())
        self.skip_reason.clear()
