"""The session record: everything a session produced, as one JSON value, built from the database.

Shape (format ``ketmonitor.session-record`` version 1)::

    {"format": "ketmonitor.session-record", "format_version": 1, "kind": "original",
     "record_id": ..., "session_id": ..., "created_utc": ...,
     "session": {sessions row, minus the workflow's mutable status columns},
     "clinic": {clinic row} | null, "patient": {patients row} | null,
     "protocol": {"name": sessions.protocol, "definition": {the protocol file} | null},
     "tables": {"numerics": {"columns": [...], "rows": [[...], ...]},
                "waveform_chunks": {... "sha256" per chunk, samples stay in the database},
                "device_status": ..., "events": ..., <every other session table>: ...},
     "audit_head": {"seq": N, "hash": "..."},
     "software": {"name": "ketmonitor", "version": ...}}

Tables are found from the schema (see scope.py), so doses, NIBP readings, scale entries and their
item scores, amendments and the alarm log enter the record as their features add their tables.
Rows are ordered by their columns, so the same database always gives the same record. Values are
JSON-safe: BLOBs become ``"sha256:<hex>"``, non-finite floats and integers beyond 2**53 become
strings (RFC 8785 cannot carry them as numbers). rows.py reads the rows, and canonical.py writes
each table's RFC 8785 text as the record is built.
"""

from __future__ import annotations

import sqlite3

from .. import __version__
from ..audit import audit_head
from ..errors import WorkflowError
from ._db import read_snapshot
from .rows import json_value, record_rows
from .scope import _SECRET, _q, session_columns, session_tables, table_columns

FORMAT = "ketmonitor.session-record"
FORMAT_VERSION = 1


def session_row(conn: sqlite3.Connection, session_id: str) -> dict:
    cols = session_columns(conn)
    row = conn.execute(f"SELECT {', '.join(_q(c) for c in cols)} FROM sessions WHERE id = ?",
                       (session_id,)).fetchone()
    if row is None:
        raise WorkflowError(f"no session {session_id}")
    return {c: json_value(v) for c, v in zip(cols, row)}


def _row_by_id(conn, table: str, key) -> dict | None:
    """The row of ``table`` whose id (or code, or name) is ``key``, without secret columns."""
    cols = [c for c, _t, _pk in table_columns(conn, table) if not _SECRET.search(c)]
    if key is None or not cols:
        return None
    for id_col in ("id", "code", "name"):
        if id_col in cols:
            row = conn.execute(f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(table)}"
                               f" WHERE {_q(id_col)} = ?", (key,)).fetchone()
            if row is not None:
                return {c: json_value(v) for c, v in zip(cols, row)}
    return None


def build_session_record(db, session_id: str, *, record_id: str, created_utc: str,
                         protocol: dict | None = None) -> dict:
    """The original record of ``session_id`` as it stands now (call inside the sealing transaction).

    ``protocol`` is the protocol definition in force (``Protocol.raw``); the record then carries it,
    since protocol files may change after the session.
    """
    conn = db.conn
    with read_snapshot(conn):
        session = session_row(conn, session_id)
        tables = {}
        for scope in session_tables(conn):
            tables[scope.name] = {"columns": list(scope.columns),
                                  "rows": record_rows(conn, scope, session_id)}
        seq, head = audit_head(db)
        protocol_key = session.get("protocol")
        definition = protocol if protocol is not None else _row_by_id(conn, "protocols",
                                                                      protocol_key)
        clinic = _row_by_id(conn, "clinic", 1)
        patient = _row_by_id(conn, "patients", session.get("patient_id"))
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "original",
        "record_id": record_id, "session_id": session_id, "created_utc": created_utc,
        "session": session,
        "clinic": clinic,
        "patient": patient,
        "protocol": {"name": protocol_key, "definition": definition},
        "tables": tables,
        "audit_head": {"seq": seq, "hash": head},
        "software": {"name": "ketmonitor", "version": __version__},
    }


def build_addendum(*, record_id: str, session_id: str, created_utc: str, amends_record_id: str,
                   amends_sha256: str, content, audit_seq: int, audit_hash: str) -> dict:
    if isinstance(content, str):
        content = {"text": content}
    if not isinstance(content, dict) or not content:
        raise WorkflowError("an addendum needs text or data")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "addendum",
        "record_id": record_id, "session_id": session_id, "created_utc": created_utc,
        "amends": {"record_id": amends_record_id, "payload_sha256": amends_sha256},
        "addendum": content,
        "audit_head": {"seq": audit_seq, "hash": audit_hash},
        "software": {"name": "ketmonitor", "version": __version__},
    }
