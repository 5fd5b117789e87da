"""Connecting an alarm engine to a running monitor (ketmonitor.runtime.MonitorRuntime).

``attach_alarms(runtime)`` is all a runtime needs: the engine hears every sample, is ticked every
50 ms of session time, publishes its events through the runtime's dispatcher (so the store records
them in ``events`` and the UI sees them), its events reach the alarm log, and a failing disk raises
the "storage failing" technical alarm.
"""

from __future__ import annotations

from .conditions import AlarmConfig
from .engine import AlarmEngine
from .log import alarm_log_listener

TICK_S = 0.05


def attach_alarms(runtime, config: AlarmConfig | None = None) -> AlarmEngine:
    engine = AlarmEngine(config, clock=runtime.clock, emit=runtime.publish)
    runtime.add_listener(engine.feed)
    runtime.add_listener(alarm_log_listener(runtime.writer, lambda: runtime.session_id))
    runtime.add_ticker(engine.tick, TICK_S)

    def storage(message: str | None) -> None:
        engine.set_technical("storage_failing", message is not None, message or "")

    runtime.storage_listeners.append(storage)
    return engine
