"""The scheduled-check task list: which checks are waiting, upcoming, due, overdue, done or skipped.

Pure functions of the protocol, the session's workflow state, the monotonic time of the first dose
and the recorded check results, so the UI can recompute the list every second without touching the
database. Timed checks count from the first dose (first device, bolus or infusion start) on the
session's monotonic clock; wall-clock changes never move a reminder.
"""

from __future__ import annotations

from dataclasses import dataclass

from .protocols import Check, Protocol

# Task states, in the order the banner cares about them
WAITING = "waiting"  # timed check, nothing dosed yet
UPCOMING = "upcoming"
DUE = "due"
OVERDUE = "overdue"
DONE = "done"
SKIPPED = "skipped"
OPEN_STATES = (UPCOMING, DUE, OVERDUE, WAITING)


@dataclass(frozen=True)
class Task:
    check: Check
    state: str
    due_mono: float | None  # None for before-dose and before-discharge checks
    result: dict | None = None  # the check_results row (as a dict) once done or skipped

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def label(self) -> str:
        return self.check.label

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    def seconds_to_due(self, now: float) -> float | None:
        return None if self.due_mono is None else self.due_mono - now


def compute_tasks(protocol: Protocol, workflow_state: str, first_dose_mono: float | None,
                  results: dict[str, dict], now: float) -> list[Task]:
    """``results``: check id -> its check_results row. ``now``: session monotonic seconds."""
    lead = protocol.check_lead_min * 60
    tolerance = protocol.check_tolerance_min * 60
    dosed = first_dose_mono is not None
    tasks = []
    for check in protocol.checks:
        result = results.get(check.id)
        due = None
        if check.phase == "post" and dosed:
            due = first_dose_mono + check.offset_s
        if result is not None:
            state = DONE if result["status"] == "done" else SKIPPED
        elif check.phase == "pre":
            # before the dose it is due; once dosed it was missed
            state = OVERDUE if dosed else DUE
        elif check.phase == "discharge":
            state = DUE if workflow_state in ("discharge", "ended") else UPCOMING
        elif not dosed:
            state = WAITING
        elif now < due - lead:
            state = UPCOMING
        elif now <= due + tolerance:
            state = DUE
        else:
            state = OVERDUE
        tasks.append(Task(check, state, due, result))
    return tasks


def match_check(tasks: list[Task], kind: str, scale: str | None, workflow_state: str,
                now: float) -> Task | None:
    """The open check a new entry of ``kind``/``scale`` fulfils, or None (an extra entry).

    Before the dose: the before-dose check. In discharge: the before-discharge check. Otherwise a
    timed check that is due (nearest due time first), else the most recent overdue one; an upcoming
    check is fulfilled only within its lead time, so an extra reading never uses up a later check.
    """
    candidates = [t for t in tasks if t.open and t.check.kind == kind
                  and (kind != "scale" or t.check.scale == scale)]
    if workflow_state in ("check_in", "pre_dose"):
        phase = [t for t in candidates if t.check.phase == "pre"]
        return phase[0] if phase else None
    if workflow_state == "discharge":
        phase = [t for t in candidates if t.check.phase == "discharge"]
        if phase:
            return phase[0]
    due = [t for t in candidates if t.state == DUE and t.check.phase == "post"]
    if due:
        return min(due, key=lambda t: abs(t.due_mono - now))
    overdue = [t for t in candidates if t.state == OVERDUE and t.check.phase == "post"]
    if overdue:
        return max(overdue, key=lambda t: t.due_mono)
    return None
