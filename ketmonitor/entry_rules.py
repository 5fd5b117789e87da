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
