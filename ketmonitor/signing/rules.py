"""Who may sign a session's record and for what, and ``sign_record``: the one function the bedside
(``workflow_signing``), the review screen and ``ketmonitor sign`` all sign through, so every path
has the same rules (docs/signing.md, "Signing a session's record"):

- the session has ended and its record is not signed yet; its audit trail records no record the
  database no longer holds (``evidence.py``: a deleted record is never replaced by a new one);
- the signer is an active nurse or physician (auditors and administrators sign nothing);
- the meaning is *authorship* for a clinician who made entries in the session (its author), or
  *responsibility* for a physician, who need not have made any;
- the signing key's role, which the signature's protected header carries, is the account's role
  today (a nurse promoted to physician signs with a rotated key).

``sign_check`` applies them without a password (cheap: the screens and the command ask it first);
``sign_record`` applies them again under the write lock, then seals (``service.seal_session``).

The protocol definition: check-in keeps a copy of the protocol in force in its event
(``protocol_definition``), so every record of a session checked in that way carries it, whichever
path signs and however the protocol file has changed since. For older sessions (checked in before
the copy was kept) the record carries the definition the caller holds only when it is the protocol
check-in recorded (same name and version): the bedside passes the protocol it ran; the review
screen and ``ketmonitor sign`` hold none, so those records carry ``definition: null`` and the
check-in event says which protocol and version were used.
"""

from __future__ import annotations

import json

from ..errors import AuthError, WorkflowError
from ..users import PermissionDenied
from ._db import write_transaction
from .evidence import refuse_if_deleted
from .keys import Secret, UnlockedKey, current_key, unlock_key
from .service import SignedRecord, original_record_id, seal_session

AUTHORSHIP, RESPONSIBILITY = "authorship", "responsibility"
SIGNING_ROLES = ("nurse", "physician")


def account_role(db, user_id: str) -> str:
    """The role of an active account; PermissionDenied otherwise."""
    row = db.conn.execute("SELECT role, active FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None or not row[1]:
        raise PermissionDenied(f"{user_id} is not an active user of this clinic")
    return row[0]


def session_authors(db, session_id: str) -> set[str]:
    """Users who made entries in the session (its authors)."""
    return {r[0] for r in db.conn.execute("SELECT DISTINCT user_id FROM events WHERE session_id = ?"
                                          " AND user_id IS NOT NULL", (session_id,))}


def sign_meanings(role: str | None, author: bool) -> tuple[str, ...]:
    """What the first signature of a session's record may mean, the default first: authorship by a
    nurse or physician who made its entries; responsibility by a physician."""
    out = [AUTHORSHIP] if author and role in SIGNING_ROLES else []
    return tuple(out + ([RESPONSIBILITY] if role == "physician" else []))


def sign_check(db, session_id: str, user_id: str) -> tuple[str, tuple[str, ...]]:
    """Whether ``user_id`` may sign the record of ``session_id`` now: (role, allowed meanings, the
    default first), or a WorkflowError / PermissionDenied saying why not. No password needed."""
    role = account_role(db, user_id)
    if role not in SIGNING_ROLES:
        raise PermissionDenied(f"{user_id} is {role}: read-only access, signs nothing")
    row = db.conn.execute("SELECT ended_utc FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise WorkflowError(f"no session {session_id}")
    existing = original_record_id(db, session_id)
    if existing:
        raise WorkflowError(f"session {session_id} is already signed (record {existing}): co-sign "
                            "it or add an addendum")
    refuse_if_deleted(db, session_id)
    if row[0] is None:
        raise WorkflowError(f"session {session_id} has not ended: end it at the bedside before "
                            "signing its record")
    meanings = sign_meanings(role, user_id in session_authors(db, session_id))
    if not meanings:
        raise PermissionDenied(f"{user_id} ({role}) made no entries in session {session_id}: its "
                               "author or a physician signs it")
    return role, meanings


def check_key_role(db, user_id: str, key: Secret | UnlockedKey, role: str) -> None:
    """The signature's header carries the key's role: it must be the account's role today."""
    info = key.info if isinstance(key, UnlockedKey) else current_key(db, user_id)
    if info.role != role:
        raise PermissionDenied(f"the signing key of {info.user_id} says {info.role}, the account "
                               f"says {role}: rotate the key to take the new role")


def protocol_in_force(db, session_id: str, definition: dict | None) -> dict | None:
    """The protocol definition a record of ``session_id`` carries: the copy its check-in kept; for a
    session checked in before copies were kept, ``definition`` (a protocol file's content) when it
    is the protocol check-in recorded (same name and version); else None. A record never carries a
    definition that may not be the one the session ran under."""
    row = db.conn.execute("SELECT data FROM events WHERE session_id = ? AND kind = 'checkin'"
                          " ORDER BY id DESC LIMIT 1", (session_id,)).fetchone()
    try:
        checked_in = json.loads(row[0]) if row else {}
    except (TypeError, ValueError):
        checked_in = {}
    kept = checked_in.get("protocol_definition") if isinstance(checked_in, dict) else None
    if isinstance(kept, dict):
        return kept  # the copy check-in kept: the definition in force, whoever signs
    if not isinstance(definition, dict):
        return None
    same = (definition.get("name") == checked_in.get("protocol")
            and str(definition.get("version")) == str(checked_in.get("protocol_version")))
    return definition if same else None


def choose_meaning(user_id: str, role: str, meanings: tuple[str, ...], meaning: str | None) -> str:
    """``meaning`` when ``sign_check`` allowed it (``meanings``), by default the first."""
    meaning = meaning or meanings[0]
    if meaning not in meanings:
        raise PermissionDenied(f"{user_id} ({role}) signs this record for {' or '.join(meanings)}, "
                               f"not {meaning}")
    return meaning


def sign_record(db, session_id: str, user_id: str, password: Secret | UnlockedKey,
                meaning: str | None = None, *, protocol: dict | None = None,
                t_wall: float | None = None) -> SignedRecord:
    """Seal and sign the record of an ended session under the rules above.

    ``meaning``: one ``sign_check`` allows (default: the first). ``password`` asks for the signing
    password again, or is a key the caller unlocked with it (off the writer's thread: the key
    derivation is slow); a wrong one signs nothing and is audited. ``protocol``: the definition the
    caller ran the session under (``Protocol.raw``), carried when ``protocol_in_force`` accepts it.
    Call it in a transaction of the caller's (a StoreWriter call) or none.
    """
    role, meanings = sign_check(db, session_id, user_id)  # refuse before any key derivation
    meaning = choose_meaning(user_id, role, meanings, meaning)
    if isinstance(password, UnlockedKey):
        key = password
        if key.info.user_id != user_id:
            raise AuthError(f"the unlocked key belongs to {key.info.user_id}, not {user_id}")
    else:
        key = unlock_key(db, user_id, password, purpose=f"sign the record of session {session_id}")
    with write_transaction(db):
        role, meanings = sign_check(db, session_id, user_id)  # again, now the write lock is held
        meaning = choose_meaning(user_id, role, meanings, meaning)
        check_key_role(db, user_id, key, role)
        return seal_session(db, session_id, user_id, key, meaning=meaning, t_wall=t_wall,
                            protocol=protocol_in_force(db, session_id, protocol))
