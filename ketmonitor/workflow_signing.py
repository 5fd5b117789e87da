"""The ended session's record signed at the bedside (21 CFR 11.50, 11.200).

The bedside signs through ``signing.rules.sign_record``, the function the review screen and
``ketmonitor sign`` use too, so who may sign and for what is decided in one place. Three steps, so
that no slow or secret work runs on the store writer's thread and nothing blocks the screen:
``prepare`` loads the logged-in user's encrypted signing key and the meanings they may sign for (a
quick read through the workflow's runner, refused at once when they may not sign); the caller
decrypts the key with the password on a thread of its own (``EncryptedKey.unlock``: the
deliberately slow key derivation); ``seal`` then builds, signs and stores the record on the runner
and returns a Future. The record carries the protocol definition the bedside ran the session under
(``signing.rules.protocol_in_force``). A wrong password signs nothing and is audited with
``wrong_password``.
"""

from __future__ import annotations

from concurrent.futures import Future

from .errors import AuthError, WorkflowError
from .signing import EncryptedKey, SignedRecord, UnlockedKey, load_key, record_auth_failure
from .signing.rules import sign_check, sign_record


def _user(workflow):
    if workflow.user is None:
        raise WorkflowError("nobody is logged in: log in to sign the record")
    return workflow.user


def prepare(workflow) -> tuple[EncryptedKey, tuple[str, ...]]:
    """(the logged-in user's signing key, still encrypted; the meanings they may sign the session's
    record for, the default first), or a KetmonitorError saying why they cannot sign it."""
    user = _user(workflow)
    sid = workflow.session_id

    def read(db):
        _role, meanings = sign_check(db, sid, user.id)
        try:
            return load_key(db, user.id), meanings
        except AuthError as exc:
            raise WorkflowError(f"{exc}: ask an administrator to enrol a signing key for {user.id}"
                                f" ('ketmonitor keys enrol {user.id}')") from None
    return workflow.runner.run(read)


def purpose(workflow) -> str:
    return f"sign the record of session {workflow.session_id}"


def seal(workflow, key: UnlockedKey, meaning: str | None = None) -> "Future[SignedRecord]":
    """Sign the session's record with the unlocked key on the runner; the Future's result is the
    SignedRecord (record id, and the signature with printed name, time and meaning)."""
    user = _user(workflow)
    raw = workflow.protocol.raw if workflow.protocol is not None else None
    sid = workflow.session_id
    return workflow.runner.call(
        lambda db: sign_record(db, sid, user.id, key, meaning, protocol=raw))


def wrong_password(workflow, key: EncryptedKey) -> "Future[None]":
    """Audit a failed unlock of the signing key (attempted misuse is detected and reported)."""
    uid, kid = key.info.user_id, key.info.kid
    return workflow.runner.call(lambda db: record_auth_failure(
        db, uid, kid, f"{purpose(workflow)} (bedside)"))
