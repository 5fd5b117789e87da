"""Connecting an alarm engine to a running monitor (ketmonitor.runtime.MonitorRuntime).

``attach_alarms(runtime)`` is all a runtime needs: the engine hears every sample, is ticked every
50 ms of session time, publishes its events through the runtime's dispatcher (so the store records
them in ``events`` and the UI sees them), its events reach the alarm log, and a failing disk raises
the "storage failing" technical alarm.

Configuration, later layers winning: the defaults, the clinic's settings in the database (settings
key ``alarms``), the protocol's ``alarm_limits`` when the runtime is started for a protocol (the
demo). At the bedside the protocol is chosen at check-in, and ``SessionWorkflow.check_in`` applies
its limits once the check-in has committed, as a recorded limit change; ``next_session`` of the
runtime puts the clinic's configuration back for the next patient (``AlarmEngine.restore``). A
protocol that cannot be loaded, or whose limits do not fit the clinic's settings, is a ConfigError:
monitoring on limits nobody chose is not an option.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .conditions import AlarmConfig
from .engine import AlarmEngine
from .log import alarm_log_listener, load_alarm_config

log = logging.getLogger(__name__)
TICK_S = 0.05


def alarm_config_for(db_path=None, protocol: str | None = None) -> AlarmConfig:
    overrides = None
    if protocol:
        from ..protocols import load_protocol

        overrides = {"limits": load_protocol(protocol).alarm_limits}
    if db_path is not None and Path(db_path).exists():
        from ..store import open_db

        db = open_db(db_path, readonly=True)
        try:
            return load_alarm_config(db, overrides)
        finally:
            db.conn.close()
    return AlarmConfig.from_dict(overrides)


def attach_alarms(runtime, config: AlarmConfig | None = None, *, protocol: str | None = None,
                  db_path=None) -> AlarmEngine:
    if config is None:
        config = alarm_config_for(db_path, protocol)
    engine = AlarmEngine(config, clock=runtime.clock, emit=runtime.publish)
    runtime.add_listener(engine.feed)
    runtime.add_listener(alarm_log_listener(runtime.writer, lambda: runtime.session_id))
    runtime.add_ticker(engine.tick, TICK_S)

    def storage(message: str | None) -> None:
        engine.set_technical("storage_failing", message is not None, message or "")

    runtime.storage_listeners.append(storage)
    return engine
