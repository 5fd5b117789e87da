"""The patient and clinic rows a signed record carries, compared with the database's.

A patient legitimately changes after a session: the next check-in updates the weight or the
concomitant-medication answers, audited as ``patient.update``. Such a change, made after the record
was signed, is a note; any other difference is a problem. Used by ``matching.check_session``
(exports, review) and ``verification.verify_db`` alike.
"""

from __future__ import annotations

from ..audit import find_audit
from .record import _row_by_id

# record section -> (table, audit action of an audited update of that row)
PARTIES = {"patient": ("patients", "patient.update"), "clinic": ("clinic", "clinic.update")}
BOOKKEEPING = {"updated_utc", "updated_by"}  # set by every audited update


def check_party(db, section: str, signed: dict | None, head_seq, out_problems: list,
                out_notes: list) -> None:
    """Compare the ``section`` row ("patient" or "clinic") the record carries with the database's:
    a column changed by an audited update after the record was signed (``head_seq``: the record's
    audit head) goes to ``out_notes``, any other difference to ``out_problems``."""
    table, action = PARTIES[section]
    if not isinstance(signed, dict):
        return
    key = signed.get("id")
    current = _row_by_id(db.conn, table, key)
    if current is None:
        out_problems.append(f"the {section} row ({key}) of the signed record is missing from the "
                            "database")
        return
    changed = [c for c, v in signed.items() if current.get(c, object()) != v]
    if not changed:
        return
    audited: dict[str, object] = {}  # column -> the value the last audited update set
    seqs = []
    if isinstance(head_seq, int):
        for seq, detail in find_audit(db, action, entity_id=str(key)):
            if seq > head_seq:
                seqs.append(seq)
                for col, change in (detail.get("changes") or {}).items():
                    audited[col] = change.get("now") if isinstance(change, dict) else None
    explained, unexplained = [], []
    for col in changed:
        if col in audited and audited[col] == current.get(col):
            explained.append(col)
        elif col in BOOKKEEPING and seqs:
            continue
        else:
            unexplained.append(col)
    for col in unexplained:
        out_problems.append(f"{section} {key} column {col} is {current.get(col)!r} in the database, "
                            f"{signed[col]!r} in the signed record")
    if explained:
        out_notes.append(f"{section} details changed after signing by audited update(s) (audit "
                         f"row{'s' if len(seqs) > 1 else ''} {', '.join(map(str, seqs))}): "
                         f"{', '.join(explained)}; shown as signed")
