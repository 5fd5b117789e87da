"""The review screen: one session on one timeline, every entry in a list, the signatures with printed
name, local date and time and meaning (21 CFR 11.50), signing the record of an ended session (its
author, or a physician taking responsibility), and co-signing / addenda for physicians.

Nothing that reads or signs the whole record runs on the Qt thread (which may be the bedside
monitor's): the window opens at once saying it is loading and checking, and its executor, on a
database connection of its own, loads the session (``review.load_timeline``: the record check, and
the view written to the audit trail) before the content is built. Signing asks for the password
again in the application's ``SignDialog``; ``SigningFlow`` decrypts the key and signs on the same
executor, which then reads the signatures again (``review.signing_state``: a first signature's
record checked once; after a co-signature or an addendum only the signatures, since the core has
just compared the rows). Until that is done the buttons are disabled and the screen says it is
checking the record. A wrong password signs nothing, is audited, and is said plainly in the dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from html import escape

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel,
                               QMainWindow, QPushButton, QSizePolicy, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ketmonitor import review
from ketmonitor.errors import KetmonitorError, StoreError
from ketmonitor.signing import load_key, record_auth_failure, rules
from ketmonitor.signing.matching import recheck_signatures

from . import style
from .dialogs import SignDialog
from .signing import SigningFlow, unexpected
from .timeline import TimelinePlot, elapsed

log = logging.getLogger(__name__)
CHECKING = "Checking the record against its signatures..."

ENTRY_COLUMNS = ("Time", "Elapsed", "Kind", "What", "User")
SIGNATURE_COLUMNS = ("Record", "Printed name", "Role", "Meaning", "Signed (local)", "Verified")
KIND_COLOURS = {"dose": style.DOSE, "event": style.EVENT, "amendment": style.AMENDMENT,
                "signature": style.SIGNED, "nibp": style.PARAMETER_COLOURS["nibp"],
                "scale": style.SCALE_COLOURS[0]}


def _item(text: str, colour: str | None = None, tip: str | None = None) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if colour:
        it.setForeground(QColor(colour))
    if tip:
        it.setToolTip(tip)
    return it


def _table(columns) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.verticalHeader().hide()
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setAlternatingRowColors(True)
    t.setShowGrid(False)
    t.setWordWrap(False)
    return t


class ReviewWindow(QMainWindow):
    signed = Signal(object)   # a SignatureInfo or SignedRecord, once stored and shown
    closing = Signal()
    loaded = Signal()         # the session is shown with its record check (or why it cannot be)

    def __init__(self, db, session_id: str, user, parent=None):
        super().__init__(parent)
        self.db = db  # the Qt thread's connection: the pleth as the view moves, quick reads
        self.user = user
        self.session_id = session_id
        self.setStyleSheet(style.STYLESHEET)
        self.setWindowTitle(f"ketmonitor review - session {session_id[:8]}")
        self.timeline: review.Timeline | None = None
        self.load_error: str | None = None
        self.authors: frozenset[str] = frozenset()
        self.permissions = review.Permissions(False, False, CHECKING)
        self.sign_dialog: SignDialog | None = None
        self.plot: TimelinePlot | None = None
        # Work on the whole record (load and check, sign, check again) runs here, on a connection
        # of this thread's own, so the Qt thread (perhaps the bedside monitor's) never waits on it.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review")
        self._path = _database_file(db)
        self._worker_db = None  # opened and used on the executor's thread only
        self._task: tuple[Future, Callable, str] | None = None  # (future, on result, what)
        self._poll = QTimer(self)
        self._poll.setInterval(20)
        self._poll.timeout.connect(self._check_task)
        self.flow = SigningFlow(lambda: self.executor, self)
        self.flow.unlocked.connect(lambda: self.sign_dialog and self.sign_dialog.signing_now())
        self.flow.succeeded.connect(self._stored)
        self.flow.failed.connect(self._failed)
        self._signing: str | None = None  # the kind of signature under way
        self._waiting = QLabel(f"Loading session {session_id[:8]} and checking it against its "
                               "signed record...")
        self._waiting.setObjectName("title")
        self._waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._waiting.setWordWrap(True)
        self.setCentralWidget(self._waiting)
        viewer = user.id
        self._run("load the session", lambda wdb: (
            review.load_timeline(wdb, session_id, viewer_id=viewer),  # audited view
            frozenset(rules.session_authors(wdb, session_id))), self._loaded)

    def ready(self) -> bool:
        """Loaded (or failed to load: ``load_error``) and nothing under way."""
        return (self.timeline is not None or self.load_error is not None) and not self.busy()

    # -- work off the Qt thread ----------------------------------------------------------------
    def _worker(self):
        """The executor thread's connection (called on that thread only)."""
        if self._worker_db is None:
            from ketmonitor.store import open_db

            self._worker_db = open_db(self._path, migrate=False)
        return self._worker_db

    def _submit(self, fn: Callable) -> Future:
        """``fn(db)`` on the executor with its connection."""
        return self.executor.submit(lambda: fn(self._worker()))

    def _run(self, what: str, fn: Callable, done: Callable) -> None:
        self._task = (self._submit(fn), done, what)
        self._poll.start()

    def _check_task(self) -> None:
        if self._task is None or not self._task[0].done():
            return
        fut, done, what = self._task
        self._task = None
        self._poll.stop()
        try:
            done(fut.result())
        except KetmonitorError as exc:
            self._task_failed(what, str(exc))
        except Exception as exc:  # noqa: BLE001 - a slot must not raise: log, say, re-enable
            log.exception("review window: %s failed", what)
            self._task_failed(what, unexpected(what.capitalize(), exc))

    def _task_failed(self, what: str, message: str) -> None:
        if self.timeline is None:  # nothing shown yet: say why in the window
            self.load_error = message
            self._waiting.setText(f"Cannot show session {self.session_id[:8]}: {message}")
            self._waiting.setStyleSheet(f"color: {style.FAILED};")
            self.loaded.emit()
            return
        self._update_buttons()
        self.show_message(f"Could not {what}: {message}", error=True)

    def _loaded(self, result) -> None:
        self.timeline, self.authors = result
        self.setWindowTitle(f"ketmonitor review - {self._patient_text()}")
        self._build()
        self.centralWidget().show()  # now, not at the next turn of the event loop
        self._show_state()
        self.loaded.emit()

    # -- layout --------------------------------------------------------------------------------
    def _patient_text(self) -> str:
        p = self.timeline.patient
        return f"{p['name']} ({p['mrn']})" if p else "no patient checked in"

    def _build(self) -> None:
        root = QWidget()
        root.setObjectName("reviewRoot")
        self.setCentralWidget(root)
        outer = QVBoxLayout(root)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.addWidget(self._header())
        outer.addWidget(self._record_banner())

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        nav = QHBoxLayout()
        self.all_button = QPushButton("Whole session")
        self.all_button.clicked.connect(lambda: self.plot.show_all())
        self.dose_button = QPushButton("Around the dose")
        self.dose_button.setEnabled(bool(self.timeline.doses))
        self.dose_button.clicked.connect(self._zoom_dose)
        hint = QLabel("Scroll or drag to zoom and pan in time; zoom in to see single pleth samples."
                      " Double-click an entry to go there.")
        hint.setObjectName("dim")
        nav.addWidget(self.all_button)
        nav.addWidget(self.dose_button)
        nav.addWidget(hint, 1)
        lv.addLayout(nav)
        self.plot = TimelinePlot(self.db, self.timeline)
        lv.addWidget(self.plot, 1)
        split.addWidget(left)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        sig_title = QLabel("Signatures")
        sig_title.setObjectName("title")
        rv.addWidget(sig_title)
        self.signatures = _table(SIGNATURE_COLUMNS)
        self.signatures.setMinimumHeight(120)
        self.signatures.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.signatures.horizontalHeader().setStretchLastSection(True)
        rv.addWidget(self.signatures)
        self.addenda = QLabel("")
        self.addenda.setWordWrap(True)
        self.addenda.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rv.addWidget(self.addenda)
        buttons = QHBoxLayout()
        self.sign_button = QPushButton("Sign record...")
        self.sign_button.clicked.connect(lambda: self.ask_signature("sign"))
        buttons.addWidget(self.sign_button)
        self.cosign_button = QPushButton("Co-sign...")
        self.cosign_button.clicked.connect(lambda: self.ask_signature("cosign"))
        self.addendum_button = QPushButton("Add addendum...")
        self.addendum_button.clicked.connect(lambda: self.ask_signature("addendum"))
        buttons.addWidget(self.cosign_button)
        buttons.addWidget(self.addendum_button)
        buttons.addStretch(1)
        rv.addLayout(buttons)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        # every line of it shown: the entries below give way, not the message
        self.message.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        rv.addWidget(self.message)
        entries_title = QLabel("Timeline")
        entries_title.setObjectName("title")
        rv.addWidget(entries_title)
        self.entries = _table(ENTRY_COLUMNS)
        header = self.entries.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.entries.cellDoubleClicked.connect(self._go_to_entry)
        rv.addWidget(self.entries, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([1000, 700])
        self.splitter = split
        outer.addWidget(split, 1)
        self.fill_entries()

    def _header(self) -> QFrame:
        tl, s = self.timeline, self.timeline.session
        box = QFrame()
        box.setObjectName("panel")
        h = QHBoxLayout(box)
        p = tl.patient or {}
        name = QLabel(self._patient_text())
        name.setObjectName("title")
        h.addWidget(name)
        facts = []
        if p.get("birth_date"):
            facts.append(f"born {p['birth_date']}")
        facts += [f"protocol {s.get('protocol') or '-'}",
                  f"started {review.local_time(s['started_utc'])}",
                  f"ended {review.local_time(s['ended_utc'])}" if s["ended_utc"] else "still open",
                  f"length {elapsed(tl.duration_s)}"]
        info = QLabel("   |   ".join(facts))
        info.setWordWrap(True)  # never widens the window; wraps on a narrow screen
        info.setMinimumWidth(200)
        h.addSpacing(16)
        h.addWidget(info, 1)
        self.status_label = QLabel("")
        self.status_label.setObjectName("title")
        h.addWidget(self.status_label)
        sid = QLabel(f"session {self.session_id[:8]}")
        sid.setObjectName("dim")
        sid.setToolTip(self.session_id)
        h.addWidget(sid)
        return box

    def _record_banner(self) -> QLabel:
        """Red, above everything, when the rows shown are not what was signed (``_show_state``)."""
        self.record_banner = QLabel("")
        self.record_banner.setObjectName("recordBanner")
        self.record_banner.setWordWrap(True)
        self.record_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.record_banner.setStyleSheet(
            f"QLabel#recordBanner {{ color: {style.TEXT}; background: #5c0a14; border: 2px solid "
            f"{style.FAILED}; border-radius: 4px; padding: 6px 10px; font-size: 15px; }}")
        self.record_banner.hide()
        return self.record_banner

    def _show_banner(self, check) -> None:
        flagged = check is not None and check.flagged
        if flagged:
            self.record_banner.setText(
                f"<b>{check.status}</b> — what this screen shows is the database now, not the "
                f"signed record:<br>" + "<br>".join("• " + escape(p) for p in check.problems[:8])
                + (f"<br>… and {len(check.problems) - 8} more" if len(check.problems) > 8 else ""))
        self.record_banner.setVisible(flagged)

    # -- content -------------------------------------------------------------------------------
    def fill_entries(self) -> None:
        self.entry_rows = self.timeline.entries()
        t = self.entries
        t.setRowCount(len(self.entry_rows))
        for i, e in enumerate(self.entry_rows):
            colour = (style.ALARM_COLOURS.get(e.priority) if e.priority else
                      KIND_COLOURS.get(e.kind, style.TEXT))
            text = e.text + ("  (amended)" if e.amended else "")
            t.setItem(i, 0, _item(review.local_time(e.t_utc).split(" ")[1], tip=review.local_time(e.t_utc)))
            t.setItem(i, 1, _item(elapsed(e.t), style.DIM))
            t.setItem(i, 2, _item(e.kind, colour))
            t.setItem(i, 3, _item(text, colour if e.kind in ("alarm", "alarm action") else None,
                                  tip=text))
            t.setItem(i, 4, _item(e.user or "", style.DIM))

    def _show_state(self) -> None:
        """The banner, status, signatures and buttons from ``self.timeline`` (its records, its
        record check and the session's status, as the executor last read them)."""
        tl = self.timeline
        self._show_banner(tl.record_check)
        status = tl.session["status"]
        has_add = any(r.record.kind == "addendum" for r in tl.records)
        self.status_label.setText(("co-signed" if status == "cosigned" else status) +
                                  (" + addendum" if has_add else ""))
        self.status_label.setStyleSheet(f"color: {style.STATUS_COLOURS.get(status, style.TEXT)};")
        rows = [(rv, s) for rv in tl.records for s in rv.record.signatures]
        t = self.signatures
        t.setRowCount(len(rows))
        for i, (rv, s) in enumerate(rows):
            what = "record" if rv.record.kind == "original" else "addendum"
            ok = rv.label  # verified only when the signatures and the rows both check out
            t.setItem(i, 0, _item(what, tip=f"record {rv.record.record_id}\nSHA-256 "
                                            f"{rv.record.payload_sha256}"))
            t.setItem(i, 1, _item(s.printed_name, style.TEXT, tip=s.signer_id))
            t.setItem(i, 2, _item(s.role))
            t.setItem(i, 3, _item(s.meaning, style.TEXT))
            t.setItem(i, 4, _item(review.local_time(s.signed_at), tip=f"{s.signed_at} (UTC)"))
            t.setItem(i, 5, _item(ok, style.SIGNED if rv.verified else style.FAILED,
                                  tip=rv.problem or "signature and record digest verify"))
        if not rows:
            t.setRowCount(1)
            if tl.record_check is not None and tl.record_check.flagged:  # signed, then deleted
                t.setItem(0, 0, _item("signed record missing: see above", style.FAILED))
            else:
                t.setItem(0, 0, _item("not signed yet", style.DIM))
        addenda = [rv for rv in tl.records if rv.record.kind == "addendum"]
        self.addenda.setText("\n".join(
            f"Addendum by {rv.record.signatures[0].printed_name if rv.record.signatures else '?'}, "
            f"{review.local_time(rv.record.created_utc)}: {(rv.addendum or {}).get('text', rv.addendum)}"
            for rv in addenda))
        self.addenda.setVisible(bool(addenda))
        self._update_buttons()

    def _update_buttons(self) -> None:
        if self.timeline is None:
            return
        sealed = self.timeline.original_record is not None
        check = self.timeline.record_check
        perm = review.permissions(
            self.user.role, sealed, check, ended=self.timeline.session.get("ended_utc") is not None,
            author=self.user.id in self.authors)
        self.permissions = perm
        busy = self.busy()
        self.sign_button.setVisible(not sealed)  # once signed, co-signatures and addenda follow
        for b, ok in ((self.sign_button, perm.sign), (self.cosign_button, perm.cosign),
                      (self.addendum_button, perm.addendum)):
            b.setEnabled(ok and not busy)
            b.setToolTip(CHECKING if busy else ("" if ok else perm.reason))
        if busy:
            return
        if not (perm.cosign and perm.addendum) and perm.reason:
            self.show_message(perm.reason, error=check is not None and check.flagged)

    def show_message(self, text: str, *, error: bool) -> None:
        self.message.setText(text)
        self.message.setObjectName("error" if error else "dim")
        self.message.setStyleSheet(f"color: {style.FAILED if error else style.DIM};")

    # -- navigation ----------------------------------------------------------------------------
    def _zoom_dose(self) -> None:
        t = self.timeline.rel(self.timeline.doses[0]["t_wall"])
        self.plot.show_range(t - 300, t + 3600)

    def _go_to_entry(self, row: int, _col: int = 0) -> None:
        self.plot.center_on(self.entry_rows[row].t)

    # -- signing -------------------------------------------------------------------------------
    def ask_signature(self, kind: str) -> SignDialog | None:
        """``kind``: "sign" (the record of an ended session), "cosign" or "addendum"."""
        if self.busy() or self.timeline is None:
            self.show_message(CHECKING, error=False)
            return None
        p = self.permissions
        allowed = {"sign": p.sign, "cosign": p.cosign, "addendum": p.addendum}[kind]
        if not allowed:
            self.show_message(p.reason, error=True)
            return None
        meanings = p.sign_meanings if kind == "sign" else review.COSIGN_MEANINGS
        dialog = SignDialog(kind, self.user, meanings=meanings, parent=self,
                            session_text=f"Session {self.session_id[:8]} - {self._patient_text()}")
        dialog.submitted.connect(lambda pw, meaning, text: self.sign(kind, pw, meaning, text))
        self.sign_dialog = dialog
        dialog.open()
        return dialog

    def sign(self, kind: str, password: str, meaning: str, text: str) -> None:
        """Unlock the signing key with ``password``, then sign, then check the record again, all
        on the executor (``SigningFlow``); the core applies every rule again."""
        try:
            key = load_key(self.db, self.user.id)
        except KetmonitorError as exc:
            self._failed(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - called from a slot: log, say, stay usable
            log.exception("review window: loading the signing key failed")
            self._failed(unexpected("Signing", exc))
            return
        sid, uid = self.session_id, self.user.id
        signers = {
            "sign": lambda db, k: rules.sign_record(db, sid, uid, k, meaning),
            "cosign": lambda db, k: review.cosign_session(db, sid, uid, k, meaning),
            "addendum": lambda db, k: review.addendum_session(db, sid, uid, k, text),
        }
        purpose = {"sign": "sign the record", "cosign": "co-sign"}.get(kind, "sign an addendum")
        started = self.flow.start(
            key, password, purpose=purpose,
            sign=lambda unlocked: self._submit(lambda db: signers[kind](db, unlocked)),
            wrong_password=lambda k: self._submit(lambda db: record_auth_failure(
                db, uid, k.info.kid, f"{kind} session {sid} (review screen)")))
        if started:
            self._signing = kind
            self._update_buttons()

    def _stored(self, result) -> None:
        """The signature is stored: close the dialog, then read the signatures again on the
        executor. A first signature sealed rows the record was just built from: the check is made
        once, now. A co-signature or an addendum changed no row and was allowed only after the
        core compared them: the rows are not compared again, the signatures are."""
        kind, self._signing = self._signing, None
        try:
            self._read_again(kind, result)
        except Exception as exc:  # noqa: BLE001 - a slot must not raise; the signature is stored
            log.exception("review window: showing a new signature failed")
            self._task_failed("check the record again", unexpected("Showing the signature", exc))

    def _read_again(self, kind: str | None, result) -> None:
        if kind == "sign":
            first = result.signatures[0]
            done = (f"Signed by {first.printed_name} ({first.meaning}) at "
                    f"{review.local_time(first.signed_at)}")
        elif kind == "cosign":
            done = (f"Co-signed by {result.printed_name} ({result.meaning}) at "
                    f"{review.local_time(result.signed_at)}")
        else:
            done = f"Addendum signed at {review.local_time(result.created_utc)}"
        if self.sign_dialog is not None:
            self.sign_dialog.done_ok()
        previous = self.timeline.record_check if kind != "sign" else None
        sid = self.session_id

        def read(db):
            check = (recheck_signatures(db, previous) if previous is not None and previous.signed
                     else None)
            return review.signing_state(db, sid, check)
        self.show_message(f"{done}. {CHECKING}", error=False)
        self._run("check the record again", read, lambda state: self._refreshed(state, done, result))
        self._update_buttons()

    def _refreshed(self, state, done: str, result) -> None:
        tl = self.timeline
        tl.records, tl.record_check, self.authors = state.records, state.check, state.authors
        tl.session["status"] = state.status
        self._show_state()
        self.fill_entries()  # the entries list the new signature too
        self.show_message(done, error=False)
        self.message.setStyleSheet(f"color: {style.SIGNED};")
        self.signed.emit(result)

    def _failed(self, message: str) -> None:
        self._signing = None
        self._update_buttons()
        self.show_message(message, error=True)
        if self.sign_dialog is not None and self.sign_dialog.isVisible():
            self.sign_dialog.fail(message)

    def busy(self) -> bool:
        return self.flow.busy() or self._task is not None

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self._poll.stop()
        self.flow.stop()
        if self.plot is not None:
            self.plot.stop()
        self.executor.submit(self._close_worker)
        self.executor.shutdown(wait=True)  # a signature under way is finished, not cut off
        self.closing.emit()
        super().closeEvent(event)

    def _close_worker(self) -> None:
        if self._worker_db is not None:
            self._worker_db.conn.close()
            self._worker_db = None


def _database_file(db) -> str:
    path = next((r[2] for r in db.conn.execute("PRAGMA database_list") if r[1] == "main"), "")
    if not path:
        raise StoreError("the review screen reads a database file, not an in-memory database")
    return path
