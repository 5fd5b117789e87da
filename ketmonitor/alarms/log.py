"""The store side of alarms: write alarm events into the alarm log, read it back, summarise it.

The engine's SessionEvents already reach the ``events`` table through the StoreWriter's own
listener; ``alarm_log_listener`` adds the structured alarm log (migration 0004) and an entry in the
hash-chained audit trail for every operator action (acknowledge, audio pause, resume) and every
limit change, written on the writer thread in the same transaction as the samples. An action done at
a locked screen is recorded with no user and ``locked: true`` in its detail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from ..audit import append_audit
from ..clock import utc_iso
from ..samples import SessionEvent
from .conditions import AlarmConfig

log = logging.getLogger(__name__)

ALARM_EVENT_KINDS = ("alarm.raised", "alarm.ended", "alarm.acknowledged", "alarm.audio_paused",
                     "alarm.audio_resumed", "alarm.limits_changed", "alarm.reannunciated")


def alarm_log_listener(writer, session_id: str | Callable[[], str | None]) -> Callable:
    """A dispatcher listener that records alarm events of ``session_id`` through ``writer``.

    ``session_id`` may be a function returning it, for a listener added before the session exists
    (events arriving while it returns None are not logged: there is no session to log them in)."""

    def record(sample) -> None:
        if isinstance(sample, SessionEvent) and sample.kind in ALARM_EVENT_KINDS:
            sid = session_id() if callable(session_id) else session_id
            if sid is not None:
                writer.call(lambda db: record_alarm_event(db, sid, sample))

    record.__qualname__ = "alarm_log_listener.record"
    return record


def record_alarm_event(db, session_id: str, ev: SessionEvent) -> None:
    """Write one alarm event. ``db`` is a sqlite_utils.Database inside a write transaction."""
    d, conn = ev.data, db.conn
    t_utc = utc_iso(ev.t_wall)
    if ev.kind == "alarm.raised":
        conn.execute(
            "INSERT OR IGNORE INTO alarm_log (session_id, alarm_id, condition, label, kind, priority,"
            " source, metric, direction, limit_value, hysteresis, delay_s, limits, trigger_value,"
            " extreme_value, message, start_mono, start_wall, start_utc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (session_id, d["alarm_id"], d["condition"], d.get("label", ""), d["kind"], d["priority"],
             d.get("source"), d.get("metric"), d.get("direction"), d.get("limit"),
             d.get("hysteresis"), d.get("delay_s"), json.dumps(d.get("limits") or {}, sort_keys=True),
             d.get("value"), d.get("value"), d.get("message") or "", ev.t_mono, ev.t_wall, t_utc))
    elif ev.kind == "alarm.ended":
        cur = conn.execute(
            "UPDATE alarm_log SET end_mono=?, end_wall=?, end_utc=?, end_value=?, extreme_value=?,"
            " latched=? WHERE session_id=? AND alarm_id=?",
            (ev.t_mono, ev.t_wall, t_utc, d.get("value"), d.get("extreme"), int(bool(d.get("latched"))),
             session_id, d["alarm_id"]))
        if cur.rowcount == 0:
            log.warning("alarm.ended for unknown alarm %s", d["alarm_id"])
    elif ev.kind in ("alarm.acknowledged", "alarm.audio_paused", "alarm.audio_resumed"):
        action = ev.kind.split(".", 1)[1]
        cleared = set(d.get("cleared") or ())
        detail = {k: d[k] for k in ("duration_s", "reason") if k in d}
        if d.get("locked"):
            detail["locked"] = True
        ids = list(d.get("alarm_ids") or ()) or [None]
        user = ev.user_id or d.get("user")
        conn.executemany(
            "INSERT INTO alarm_actions (session_id, action, alarm_id, t_mono, t_wall, t_utc, user_id,"
            " role, detail) VALUES (?,?,?,?,?,?,?,?,?)",
            [(session_id, "cleared" if a in cleared else action, a, ev.t_mono, ev.t_wall, t_utc,
              user, d.get("role"), json.dumps(detail, sort_keys=True))
             for a in ids])
        # the audit trail too: who silenced which alarms, and when, must be tamper-evident
        append_audit(db, ev.kind, user_id=user, session_id=session_id, entity="alarm_action",
                     detail={**detail, "alarm_ids": [a for a in ids if a],
                             "conditions": list(d.get("conditions") or ()),
                             "cleared": sorted(cleared), "role": d.get("role"),
                             "locked": bool(d.get("locked")), "t_mono": ev.t_mono},
                     t_wall=ev.t_wall)
    elif ev.kind == "alarm.reannunciated":
        conn.execute(
            "INSERT INTO alarm_actions (session_id, action, alarm_id, t_mono, t_wall, t_utc, user_id,"
            " role, detail) VALUES (?,?,?,?,?,?,NULL,NULL,?)",
            (session_id, "reannunciated", d["alarm_id"], ev.t_mono, ev.t_wall, t_utc,
             json.dumps({k: d.get(k) for k in ("value", "silenced_value", "margin", "was")},
                        sort_keys=True)))
    elif ev.kind == "alarm.limits_changed":
        detail = {"field": d["field"], "old": d["old"], "new": d["new"], "role": d.get("role")}
        if d.get("reason"):
            detail["reason"] = d["reason"]
        append_audit(db, "alarm.limits_changed", user_id=ev.user_id or d.get("user"),
                     session_id=session_id, entity="alarm_condition", entity_id=d["condition"],
                     detail=detail, t_wall=ev.t_wall)


def alarm_log(db, session_id: str) -> list[dict]:
    """Every alarm of a session in start order, each with its limits and its operator actions."""
    conn = db.conn
    cols = [c[1] for c in conn.execute("PRAGMA table_info(alarm_log)")]
    rows = [dict(zip(cols, r)) for r in conn.execute(
        "SELECT * FROM alarm_log WHERE session_id=? ORDER BY start_wall, id", (session_id,))]
    acols = [c[1] for c in conn.execute("PRAGMA table_info(alarm_actions)")]
    actions: dict[str | None, list[dict]] = {}
    for r in conn.execute("SELECT * FROM alarm_actions WHERE session_id=? ORDER BY t_wall, id",
                          (session_id,)):
        a = dict(zip(acols, r))
        a["detail"] = json.loads(a["detail"])
        actions.setdefault(a["alarm_id"], []).append(a)
    for r in rows:
        r["limits"] = json.loads(r["limits"])
        r["latched"] = bool(r["latched"])
        r["actions"] = actions.get(r["alarm_id"], [])
    return rows


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def summarise_alarms(db, session_id: str) -> list[str]:
    """One line per alarm for the demo summary and the session record."""
    lines = []
    row = db.conn.execute("SELECT mono_anchor FROM sessions WHERE id=?", (session_id,)).fetchone()
    anchor = row[0] if row else None
    for r in alarm_log(db, session_id):
        what = r["label"] or r["condition"]
        if r["kind"] == "limit" and r["trigger_value"] is not None:
            sign = "<" if r["direction"] == "low" else ">"
            worst = r["extreme_value"]
            what += f" {r['trigger_value']:g} ({sign} {r['limit_value']:g}"
            what += f", worst {worst:g})" if worst is not None and worst != r["trigger_value"] else ")"
        elif r["message"]:
            what += f": {r['message']}"
        if r["source"]:
            what += f" [{r['source']}]"
        lasted = (f"lasted {_duration(r['end_wall'] - r['start_wall'])}" if r["end_wall"] is not None
                  else "still active")
        acks = [a for a in r["actions"] if a["action"] in ("acknowledged", "cleared")]
        if acks:
            lasted += f", acknowledged by {acks[0]['user_id'] or 'unknown user'}"
        at = f"  +{_duration(r['start_mono'] - anchor)}" if anchor is not None else ""
        lines.append(f"{r['start_utc']}{at}  {r['priority'].upper():6}  {what}  {lasted}")
    return lines


SETTINGS_KEY = "alarms"


def load_alarm_config(db, protocol: dict | None = None) -> AlarmConfig:
    """The clinic's alarm settings (``settings`` table, key ``alarms``) with a protocol's alarm
    section laid over them; defaults where neither says anything."""
    row = None
    if "settings" in db.table_names():
        row = db.conn.execute("SELECT value FROM settings WHERE key=?", (SETTINGS_KEY,)).fetchone()
    merged: dict = json.loads(row[0]) if row else {}
    for section, values in (protocol or {}).items():
        if isinstance(values, dict):
            base = dict(merged.get(section) or {})
            for k, v in values.items():
                base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) and \
                    isinstance(base.get(k), dict) else v
            merged[section] = base
        else:
            merged[section] = values
    return AlarmConfig.from_dict(merged)
