"""Building a simulated bedside (oximeter + NIBP on one patient model) through the source registry."""

from __future__ import annotations

from .clock import Clock
from .sources import VitalsSource, create_source

DEFAULT_NIBP_INTERVAL_S = 300.0  # a measurement every 5 minutes unless the protocol schedules more


def simulated_sources(*, scenario: str = "uneventful", seed: int = 0, clock: Clock,
                      dose_at: float = 300.0, nibp_interval_s: float | None = DEFAULT_NIBP_INTERVAL_S,
                      t0: float | None = None, until: float | None = None) -> list[VitalsSource]:
    """``until``: simulated seconds after which the devices stop by themselves (batch runs)."""
    opts = dict(scenario=scenario, seed=seed, dose_at=dose_at, clock=clock, t0=t0, until=until)
    return [create_source("sim-oximeter", "oximeter", **opts),
            create_source("sim-nibp", "nibp", interval_s=nibp_interval_s, **opts)]
