"""The author signs the ended session's record at the bedside (21 CFR 11.50, 11.200).

Three steps, so that no slow or secret work runs on the store writer's thread and nothing blocks
the screen: ``author_key`` loads the user's encrypted signing key (a quick read through the
workflow's runner); the caller decrypts it with the password on a thread of its own
(``EncryptedKey.unlock``: the deliberately slow key derivation); ``seal`` then builds, signs and
stores the record on the runner (``ketmonitor.signing.seal_session`` with the unlocked key) and
returns a Future. A wrong password signs nothing and is audited with ``wrong_password``.
"""

from __future__ import annotations

from concurrent.futures import Future

from .errors import AuthError, WorkflowError
from .signing import (EncryptedKey, SignedRecord, UnlockedKey, load_key, record_auth_failure,
                      seal_session)

MEANING = "authorship"  # the nurse who ran the session signs as its author


def _signer(workflow):
    user = workflow.user
    if user is None:
        raise WorkflowError("nobody is logged in: log in to sign the record")
    if not user.clinical:
        raise WorkflowError(f"{user.id} is {user.role}: the record is signed by the nurse or"
                            " physician who ran the session")
    return user


def author_key(workflow) -> EncryptedKey:
    """The logged-in user's signing key, still encrypted, once the session can be signed."""
    user = _signer(workflow)
    snap = workflow.refresh()
    if snap.state != "ended":
        raise WorkflowError("end the session before signing its record")
    if snap.status in ("signed", "cosigned"):
        raise WorkflowError("the record of this session is already signed")
    try:
        return workflow.runner.run(lambda db: load_key(db, user.id))
    except AuthError as exc:
        raise WorkflowError(f"{exc}: ask an administrator to enrol a signing key for {user.id}"
                            f" ('ketmonitor keys enrol {user.id}')") from None


def purpose(workflow) -> str:
    return f"sign the record of session {workflow.session_id}"


def seal(workflow, key: UnlockedKey) -> "Future[SignedRecord]":
    """Seal the session's record with the unlocked key on the runner; the Future's result is the
    SignedRecord (record id, and the signature with printed name, time and meaning)."""
    user = _signer(workflow)
    raw = workflow.protocol.raw if workflow.protocol is not None else None
    sid = workflow.session_id

    def fn(db):
        return seal_session(db, sid, user.id, key, meaning=MEANING, protocol=raw)
    return workflow.runner.call(fn)


def wrong_password(workflow, key: EncryptedKey) -> "Future[None]":
    """Audit a failed unlock of the signing key (attempted misuse is detected and reported)."""
    uid, kid = key.info.user_id, key.info.kid
    return workflow.runner.call(lambda db: record_auth_failure(
        db, uid, kid, f"{purpose(workflow)} (bedside)"))
