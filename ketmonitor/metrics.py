"""The metric registry: every quantity ketmonitor measures, with its units and codes.

Codes come from ../shared/reference/clinical.md (LOINC, UCUM, IEEE 11073-10101). Physical ranges are
what a value may possibly be; parsers drop anything outside them rather than show it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str
    unit: str  # UCUM
    loinc: str | None
    ieee: int | None  # IEEE 11073-10101 code
    ieee_unit: int | None
    low: float  # physical range, inclusive
    high: float
    waveform: bool = False
    decimals: int = 0

    def in_range(self, value: float) -> bool:
        return self.low <= value <= self.high


_PERCENT, _BPM, _MMHG = 262688, 264864, 266016

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("spo2", "SpO2", "%", "59408-5", 150456, _PERCENT, 0, 100),
        Metric("pulse_rate", "Pulse", "/min", "8867-4", 149530, _BPM, 0, 350),
        Metric("perfusion_index", "PI", "%", None, None, _PERCENT, 0, 100, decimals=2),
        Metric("pleth", "Pleth", "1", None, 150452, None, -32768, 65535, waveform=True),
        Metric("nibp_systolic", "NIBP sys", "mm[Hg]", "8480-6", 150021, _MMHG, 0, 300),
        Metric("nibp_diastolic", "NIBP dia", "mm[Hg]", "8462-4", 150022, _MMHG, 0, 300),
        Metric("nibp_mean", "NIBP mean", "mm[Hg]", "8478-0", 150023, _MMHG, 0, 300),
        Metric("nibp_pulse_rate", "NIBP pulse", "/min", "8867-4", 149546, _BPM, 0, 350),
        Metric("cuff_pressure", "Cuff", "mm[Hg]", None, None, _MMHG, 0, 350),
        Metric("nibp_error", "NIBP error", "1", None, None, None, 0, 255),
    )
}

NIBP_METRICS = ("nibp_systolic", "nibp_diastolic", "nibp_mean", "nibp_pulse_rate")
VITAL_METRICS = ("spo2", "pulse_rate", "perfusion_index", *NIBP_METRICS)

# LOINC panel codes used by export
LOINC_VITAL_SIGNS_PANEL = "85353-1"
LOINC_BP_PANEL = "85354-9"
LOINC_SPO2_ALT = "2708-6"
IEEE_NIBP = 150020


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
