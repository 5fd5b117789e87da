"""Alarms: conditions and defaults, the engine, the alarm log and the tones. No Qt here."""

from .conditions import (DEFAULT_SPECS, LIMIT, TECHNICAL, AlarmConfig, ClinicSettings,
                         ConditionSpec, Priority)
from .engine import AlarmEngine, AlarmSnapshot, AlarmView
from .log import (alarm_log, alarm_log_listener, load_alarm_config, record_alarm_event,
                  summarise_alarms)
from .wiring import attach_alarms

__all__ = ["DEFAULT_SPECS", "LIMIT", "TECHNICAL", "AlarmConfig", "ClinicSettings", "ConditionSpec",
           "Priority", "AlarmEngine", "AlarmSnapshot", "AlarmView", "alarm_log",
           "alarm_log_listener", "attach_alarms", "load_alarm_config", "record_alarm_event",
           "summarise_alarms"]
