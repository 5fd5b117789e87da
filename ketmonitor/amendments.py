"""What a correction (``SessionWorkflow.amend``) may change, and the checks the corrected entry must
pass: the same as the original entry's.

A correction says what was meant when the entry was made: the amount, the lot number, a score, the
text of a note. It never changes who made the entry, when, in which session, or any id: those are
the record's facts (21 CFR 11.10(e): an audit trail that never obscures earlier values), and a wrong
time or author is explained in a note or an addendum instead. Each table (and each kind of event)
has its own list of correctable fields; anything else is refused with the list.
"""

from __future__ import annotations

import json

from .entry_rules import check_discharge, check_dose, check_lot, check_rate, check_vitals
from .errors import WorkflowError

AMENDABLE = ("events", "doses", "scale_entries", "check_results", "discharges", "amendments")

_BP = ("nibp_systolic", "nibp_diastolic", "nibp_mean", "nibp_pulse_rate")
EVENT_FIELDS = {  # events: fields of the event's data, by kind
    "note": ("text",),
    "event": ("text", "detail"),
    "bp.manual": _BP,
    "baseline": ("nibp_systolic", "nibp_diastolic", "nibp_mean", "spo2", "pulse_rate"),
}
DOSE_FIELDS = {  # doses: by action
    "dose": ("drug", "amount", "unit", "lot_number"),
    "infusion_start": ("drug", "amount", "unit", "lot_number", "rate", "rate_unit"),
    "infusion_rate": ("rate", "rate_unit"),
    "infusion_stop": ("amount",),
}
TABLE_FIELDS = {
    "scale_entries": ("items", "variant"),
    "check_results": ("reason",),  # the reason a check was skipped
    "discharges": ("criteria", "reason"),
    "amendments": ("reason",),
}


def correctable(table: str, row: dict) -> tuple[str, ...]:
    """The fields of this entry a correction may change (empty: the entry cannot be corrected)."""
    if table == "events":
        return EVENT_FIELDS.get(row.get("kind"), ())
    if table == "doses":
        return DOSE_FIELDS.get(row.get("action"), ())
    if table == "check_results":
        return TABLE_FIELDS[table] if row.get("status") == "skipped" else ()
    return TABLE_FIELDS.get(table, ())


def _what(table: str, row: dict) -> str:
    if table == "events":
        return f"a {row.get('kind')} event"
    if table == "doses":
        return f"a dose entry ({row.get('action')})"
    return f"a {table} entry"


def corrected(table: str, row: dict, changes: dict, *, scales: dict, protocol=None) -> dict:
    """``changes`` checked against the allow-list and the entry's own rules, normalised (a scale
    entry is re-scored: items, total, subscales, complete; a discharge gets ``all_met``).
    Raises WorkflowError saying what is wrong."""
    if not isinstance(changes, dict) or not changes:
        raise WorkflowError("an amendment needs the corrected values")
    allowed = correctable(table, row)
    if not allowed:
        raise WorkflowError(f"{_what(table, row)} cannot be corrected; add a note instead")
    bad = sorted(set(changes) - set(allowed))
    if bad:
        raise WorkflowError(f"{', '.join(bad)} cannot be corrected in {_what(table, row)}"
                            f" (correctable: {', '.join(allowed)})")
    fixed = dict(changes)
    if table == "events":
        _event(row, fixed)
    elif table == "doses":
        _dose(row, fixed)
    elif table == "scale_entries":
        fixed = _scale(row, fixed, scales)
    elif table == "discharges":
        fixed = _discharge(row, fixed, protocol)
    else:  # check_results, amendments: a reason
        if not isinstance(fixed["reason"], str) or not fixed["reason"].strip():
            raise WorkflowError("the corrected reason cannot be empty")
        fixed["reason"] = fixed["reason"].strip()
    return fixed


def _event(row: dict, fixed: dict) -> None:
    kind, data = row["kind"], json.loads(row["data"])
    if kind == "note":
        if not isinstance(fixed["text"], str) or not fixed["text"].strip():
            raise WorkflowError("a note cannot be empty")
        fixed["text"] = fixed["text"].strip()
    elif kind == "event":
        if "text" in fixed:
            if not isinstance(fixed["text"], str):
                raise WorkflowError("the event's text must be text")
            fixed["text"] = fixed["text"].strip()
        if "detail" in fixed and not isinstance(fixed["detail"], dict):
            raise WorkflowError("the event's detail must be an object")
        merged = {**data, **fixed}
        if merged.get("type") == "medication" and not (merged.get("text") or merged.get("detail")):
            raise WorkflowError("'medication given' needs the medication (text or detail)")
    else:  # bp.manual, baseline: numbers, in range, diastolic below systolic
        merged = {k: data.get(k) for k in EVENT_FIELDS[kind]} | fixed
        if merged.get("nibp_systolic") is None or merged.get("nibp_diastolic") is None:
            raise WorkflowError("a blood pressure needs the systolic and the diastolic")
        check_vitals(merged, "corrected")
        for k, v in fixed.items():
            fixed[k] = None if v is None else float(v)


def _dose(row: dict, fixed: dict) -> None:
    merged = {**row, **fixed}
    action = row["action"]
    if "drug" in fixed and isinstance(fixed["drug"], str):
        fixed["drug"] = fixed["drug"].strip()
    if "lot_number" in fixed:
        lot = fixed["lot_number"]
        if lot is not None and not isinstance(lot, str):
            raise WorkflowError("the lot number must be text")
        fixed["lot_number"] = (lot or "").strip() or None
        merged["lot_number"] = fixed["lot_number"]
    if action in ("dose", "infusion_start"):
        check_dose(merged["drug"], merged["amount"], merged["unit"], merged["route"])
        check_lot(merged["route"], merged["lot_number"] or "")
    if action in ("infusion_start", "infusion_rate"):
        check_rate(merged["rate"], merged["rate_unit"], allow_zero=action == "infusion_rate")
    if action == "infusion_stop":
        amount = merged["amount"]
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, (int, float))
                                   or amount <= 0):
            raise WorkflowError(f"the amount given {amount!r} must be a number above 0")
    for k in ("amount", "rate"):
        if fixed.get(k) is not None:
            fixed[k] = float(fixed[k])


def _scale(row: dict, fixed: dict, scales: dict) -> dict:
    scale = scales.get(row["scale"])
    if scale is None:
        raise WorkflowError(f"scale {row['scale']!r} is not loaded: its entry cannot be re-scored")
    items = fixed.get("items", {})
    if not isinstance(items, dict):
        raise WorkflowError("corrected items must be {item number: score}")
    score = scale.score({**json.loads(row["items"]), **items}, fixed.get("variant", row["variant"]))
    return {**fixed, "items": score.items, "variant": score.variant, "total": score.total,
            "subscales": score.subscales, "complete": score.complete}


def _discharge(row: dict, fixed: dict, protocol) -> dict:
    criteria = fixed.get("criteria", json.loads(row["criteria"]))
    reason = fixed.get("reason", row.get("reason"))
    out = {**fixed, "all_met": check_discharge(criteria, reason, protocol)}
    if "reason" in out:
        out["reason"] = (reason or "").strip() or None
    return out
