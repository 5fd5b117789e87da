"""Asking for the password and signing, with the Qt main thread free: the one flow behind every
signature of the application (the bedside's "Sign record...", and the review screen's signing,
co-signing and addenda).

``SigningFlow.start(key, password, ...)`` decrypts the signing key on a worker thread (the Argon2id
derivation is deliberately slow), then calls ``sign(unlocked_key)``, which returns a Future doing the
signing where the caller's database connection lives (the bedside: the store writer; the review
screen: its own worker). A QTimer polls the futures, so no Qt object is touched off the main thread.
The outcome is a signal: ``succeeded(result)``, or ``failed(message)`` for a wrong password
(said once ``wrong_password(key)``, a Future, has written it to the audit trail), a refusal (a KetmonitorError, said as it is) or a bug
(logged with its traceback, said plainly; nothing escapes the timer's slot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future

from PySide6.QtCore import QObject, QTimer, Signal

from ketmonitor.errors import AuthError, KetmonitorError

log = logging.getLogger(__name__)
WRONG_PASSWORD = "Wrong password: nothing was signed. Enter your own password again."


def unexpected(what: str, exc: BaseException) -> str:
    """The message for an error that is a bug, not a refusal (the traceback is in the log)."""
    return (f"{what} failed unexpectedly ({type(exc).__name__}: {exc}). The details are in the "
            "log; check the signatures before trying again.")


class SigningFlow(QObject):
    unlocked = Signal()            # the password was right: signing now
    succeeded = Signal(object)     # what ``sign``'s Future returned
    failed = Signal(str)           # a message for people; nothing more will come of this attempt

    def __init__(self, executor: Callable[[], Executor], parent=None, *, poll_ms: int = 20):
        """``executor``: returns the executor that decrypts keys (made when first needed)."""
        super().__init__(parent)
        self._executor = executor
        self._pending: tuple | None = None  # (step, future, key, sign, wrong_password)
        self._poll = QTimer(self)
        self._poll.setInterval(poll_ms)
        self._poll.timeout.connect(self._check)

    def busy(self) -> bool:
        return self._pending is not None

    def start(self, key, password: str, *, purpose: str,
              sign: Callable[[object], Future],
              wrong_password: Callable[[object], Future | None]) -> bool:
        """Unlock ``key`` (an ``EncryptedKey``) with ``password``, then ``sign`` with it. False (and
        nothing started) while an earlier attempt is still under way."""
        if self.busy():
            return False
        try:
            fut = self._executor().submit(key.unlock, password, purpose=purpose)
        except Exception as exc:  # noqa: BLE001 - e.g. the executor shut down: said, not raised
            log.exception("could not start unlocking the signing key")
            self.failed.emit(unexpected("Signing", exc))
            return False
        self._pending = ("unlock", fut, key, sign, wrong_password)
        self._poll.start()
        return True

    def stop(self) -> None:
        """Stop polling (the window is closing); a future under way is left to its executor."""
        self._poll.stop()
        self._pending = None

    def _check(self) -> None:
        pending = self._pending
        if pending is None or not pending[1].done():
            return
        try:
            self._advance(*pending)
        except Exception as exc:  # noqa: BLE001 - a slot must not raise: log, say, re-enable
            log.exception("signing failed")
            self._fail(unexpected("Signing", exc))

    def _advance(self, step, fut, key, sign, wrong_password) -> None:
        if step == "unlock":
            try:
                unlocked = fut.result()
            except AuthError:
                try:
                    audit = wrong_password(key)
                except Exception:  # noqa: BLE001 - the signer is told all the same
                    log.exception("could not audit a wrong signing password")
                    audit = None
                if isinstance(audit, Future):  # said once it is in the audit trail
                    self._pending = ("audit", audit, key, sign, wrong_password)
                else:
                    self._fail(WRONG_PASSWORD)
                return
            except KetmonitorError as exc:
                self._fail(str(exc))
                return
            self._pending = ("sign", sign(unlocked), key, sign, wrong_password)
            self.unlocked.emit()
            return
        self._poll.stop()
        self._pending = None
        if step == "audit":
            if fut.exception() is not None:
                log.error("could not audit a wrong signing password", exc_info=fut.exception())
            self.failed.emit(WRONG_PASSWORD)
            return
        try:
            result = fut.result()
        except KetmonitorError as exc:
            self.failed.emit(str(exc))
            return
        self.succeeded.emit(result)

    def _fail(self, message: str) -> None:
        self._poll.stop()
        self._pending = None
        self.failed.emit(message)
