"""The checks a clinical entry must pass, shared by the entry itself (``SessionWorkflow``) and by
a correction of it (``amendments``): a corrected value is held to the same rules as the original."""

from __future__ import annotations

from .errors import WorkflowError
from .metrics import METRICS

ROUTES = ("iv", "im", "intranasal", "sublingual", "oral")
DOSE_UNITS = ("mg", "mg/kg", "mcg", "mcg/kg", "ml")
RATE_UNITS = ("mg/h", "mg/kg/h", "mg/min", "ml/h")


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def check_dose(drug, amount, unit, route) -> None:
    if not isinstance(drug, str) or not drug.strip():
        raise WorkflowError("the dose needs a drug name")
    if not _number(amount) or not amount > 0:
        raise WorkflowError(f"dose {amount!r} must be a number above 0")
    if unit not in DOSE_UNITS:
        raise WorkflowError(f"dose unit must be one of {', '.join(DOSE_UNITS)}")
    if route not in ROUTES:
        raise WorkflowError(f"route must be one of {', '.join(ROUTES)}")


def check_rate(rate, rate_unit, allow_zero: bool = False) -> None:
    if not _number(rate) or rate < 0 or (rate == 0 and not allow_zero):
        raise WorkflowError(f"infusion rate {rate!r} must be a number above 0")
    if rate_unit not in RATE_UNITS:
        raise WorkflowError(f"rate unit must be one of {', '.join(RATE_UNITS)}")


def check_lot(route, lot_number) -> None:
    if route == "intranasal" and not (isinstance(lot_number, str) and lot_number.strip()):
        raise WorkflowError("an intranasal device needs its lot number")


def check_vitals(values: dict, what: str = "") -> None:
    """Every value a number within its metric's physical range; a diastolic below its systolic."""
    prefix = f"{what} " if what else ""
    for name, value in values.items():
        if value is None:
            continue
        if not _number(value) or not METRICS[name].in_range(value):
            raise WorkflowError(f"{prefix}{METRICS[name].label} {value} is not possible")
    sys_, dia = values.get("nibp_systolic"), values.get("nibp_diastolic")
    if sys_ is not None and dia is not None and dia >= sys_:
        raise WorkflowError(f"{prefix}diastolic must be below systolic")


def check_discharge(criteria, reason, protocol=None) -> bool:
    """The discharge criteria: ``{criterion id: true or false}``, every one of the protocol's
    answered and no other, and a reason when any is not met. Returns whether all are met."""
    if not isinstance(criteria, dict) or not all(isinstance(v, bool) for v in criteria.values()):
        raise WorkflowError("discharge criteria must be {criterion id: true or false}")
    if protocol is not None:
        ids = {c.id for c in protocol.discharge_criteria}
        unknown, missing = set(criteria) - ids, ids - set(criteria)
        if unknown:
            raise WorkflowError(f"not a discharge criterion: {', '.join(sorted(unknown))}")
        if missing:
            raise WorkflowError(f"discharge criteria not answered: {', '.join(sorted(missing))}")
    if reason is not None and not isinstance(reason, str):
        raise WorkflowError("the reason must be text")
    all_met = all(criteria.values())
    if not all_met and not (reason or "").strip():
        raise WorkflowError("not every discharge criterion is met: give a reason")
    return all_met


# -- doses against the protocol ------------------------------------------------------------------
_TO_MG = {"mg": 1.0, "mcg": 0.001}


def _in_unit(amount: float, unit: str, want: str, weight_kg: float | None) -> float | None:
    """``amount unit`` in ``want`` (mg, mcg, mg/kg, mcg/kg); None when it cannot be converted."""
    if unit == want:
        return amount
    per_kg = unit.endswith("/kg"), want.endswith("/kg")
    base, want_base = unit.removesuffix("/kg"), want.removesuffix("/kg")
    if base not in _TO_MG or want_base not in _TO_MG:
        return None
    mg = amount * _TO_MG[base]
    if per_kg[0] and not per_kg[1]:
        if not weight_kg:
            return None
        mg *= weight_kg
    elif per_kg[1] and not per_kg[0]:
        if not weight_kg:
            return None
        mg /= weight_kg
    return mg / _TO_MG[want_base]


def dose_deviations(protocol, previous: list[tuple[float, str, float]], amount: float, unit: str,
                    t_mono: float, weight_kg: float | None) -> list[str]:
    """How a dose (bolus, injection, intranasal device) departs from the protocol's ``dose``:
    ``per: "device"`` with its ``amount`` and ``unit``, ``interval_min`` between doses,
    ``max_doses``, ``max_total`` (in ``dose.unit``). ``previous``: (amount, unit, t_mono) of the
    doses already given. Empty when it is within the protocol."""
    d = protocol.dose
    what = "device" if d.get("per") == "device" or protocol.route == "intranasal" else "dose"
    n = len(previous) + 1
    out = []
    p_amount, p_unit = d.get("amount"), d.get("unit") or "mg"
    if d.get("per") == "device" and p_amount and _in_unit(amount, unit, p_unit, weight_kg) != \
            float(p_amount):
        out.append(f"{what} {n} is {amount:g} {unit}; the protocol's devices are {p_amount:g}"
                   f" {p_unit}")
    interval = d.get("interval_min")
    if interval and previous:
        gap = t_mono - max(t for _a, _u, t in previous)
        if gap < interval * 60 - 1e-6:
            s = max(0, int(gap))
            out.append(f"{what} {n} comes {s // 60}:{s % 60:02d} after the previous one; the"
                       f" protocol asks for at least {interval:g} min between {what}s")
    max_doses = d.get("max_doses")
    if max_doses and n > max_doses:
        out.append(f"{what} {n}: the protocol allows at most {max_doses} {what}"
                   f"{'s' if max_doses > 1 else ''}")
    max_total = d.get("max_total")
    if max_total:
        amounts = [_in_unit(a, u, p_unit, weight_kg) for a, u, _t in previous]
        amounts.append(_in_unit(amount, unit, p_unit, weight_kg))
        if any(a is None for a in amounts):
            out.append(f"the total cannot be compared with the protocol's maximum of"
                       f" {max_total:g} {p_unit} (a dose in another unit, or no weight)")
        elif sum(amounts) > max_total + 1e-9:
            out.append(f"the total would be {sum(amounts):g} {p_unit}; the protocol's maximum is"
                       f" {max_total:g} {p_unit}")
    return out
