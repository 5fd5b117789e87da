"""The review screen: one session on one timeline, every entry in a list, the signatures with printed
name, local date and time and meaning (21 CFR 11.50), signing the record of an ended session (its
author, or a physician taking responsibility), and co-signing / addenda for physicians.

Opening the window loads the session through ``ketmonitor.review.load_timeline``, which writes the
view to the audit trail. Signing asks for the password again in a ``SignDialog``; the key derivation
(deliberately slow) runs on a worker thread as a plain future, polled by a QTimer, and the signature
is written on the main thread through the signing service. A wrong password signs nothing, is
audited, and is said plainly in the dialog.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from html import escape

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel,
                               QMainWindow, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from ketmonitor import review
from ketmonitor.errors import AuthError, KetmonitorError
from ketmonitor.signing import load_key, record_auth_failure, rules

from . import style
from .dialogs import SignDialog
from .timeline import TimelinePlot, elapsed

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
    signed = Signal(object)   # a SignatureInfo or SignedRecord, after it is stored
    closing = Signal()

    def __init__(self, db, session_id: str, user, parent=None):
        super().__init__(parent)
        self.db = db
        self.user = user
        self.setStyleSheet(style.STYLESHEET)
        self.timeline = review.load_timeline(db, session_id, viewer_id=user.id)  # audited view
        self.session_id = session_id
        self.setWindowTitle(f"ketmonitor review - {self._patient_text()}")
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.sign_dialog: SignDialog | None = None
        self._pending: tuple[Future, str, str, str, object] | None = None
        self._poll = QTimer(self)
        self._poll.setInterval(20)
        self._poll.timeout.connect(self._check_pending)
        self._build()
        self.refresh_signatures(reload=False)  # the timeline has just read and verified them

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
        """Red, above everything, when the rows shown are not what was signed."""
        check = self.timeline.record_check
        self.record_banner = QLabel("")
        self.record_banner.setObjectName("recordBanner")
        self.record_banner.setWordWrap(True)
        self.record_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.record_banner.setStyleSheet(
            f"QLabel#recordBanner {{ color: {style.TEXT}; background: #5c0a14; border: 2px solid "
            f"{style.FAILED}; border-radius: 4px; padding: 6px 10px; font-size: 15px; }}")
        if check is not None and check.flagged:
            self.record_banner.setText(
                f"<b>{check.status}</b> — what this screen shows is the database now, not the "
                f"signed record:<br>" + "<br>".join("• " + escape(p) for p in check.problems[:8])
                + (f"<br>… and {len(check.problems) - 8} more" if len(check.problems) > 8 else ""))
        self.record_banner.setVisible(check is not None and check.flagged)
        return self.record_banner

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

    def refresh_signatures(self, *, reload: bool = True) -> None:
        if reload:
            self.timeline.records = review.signed_records(self.db, self.session_id)
        status = self.db.conn.execute("SELECT status FROM sessions WHERE id = ?",
                                      (self.session_id,)).fetchone()[0]
        self.timeline.session["status"] = status
        has_add = any(r.record.kind == "addendum" for r in self.timeline.records)
        self.status_label.setText(("co-signed" if status == "cosigned" else status) +
                                  (" + addendum" if has_add else ""))
        self.status_label.setStyleSheet(f"color: {style.STATUS_COLOURS.get(status, style.TEXT)};")
        rows = [(rv, s) for rv in self.timeline.records for s in rv.record.signatures]
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
            t.setItem(0, 0, _item("not signed yet", style.DIM))
        addenda = [rv for rv in self.timeline.records if rv.record.kind == "addendum"]
        self.addenda.setText("\n".join(
            f"Addendum by {rv.record.signatures[0].printed_name if rv.record.signatures else '?'}, "
            f"{review.local_time(rv.record.created_utc)}: {(rv.addendum or {}).get('text', rv.addendum)}"
            for rv in addenda))
        self.addenda.setVisible(bool(addenda))
        self._update_buttons()

    def _update_buttons(self) -> None:
        sealed = self.timeline.original_record is not None
        check = self.timeline.record_check
        perm = review.permissions(
            self.user.role, sealed, check, ended=self.timeline.session.get("ended_utc") is not None,
            author=self.user.id in rules.session_authors(self.db, self.session_id))
        self.permissions = perm
        self.sign_button.setVisible(not sealed)  # once signed, co-signatures and addenda follow
        self.sign_button.setEnabled(perm.sign)
        self.cosign_button.setEnabled(perm.cosign)
        self.addendum_button.setEnabled(perm.addendum)
        for b, ok in ((self.sign_button, perm.sign), (self.cosign_button, perm.cosign),
                      (self.addendum_button, perm.addendum)):
            b.setToolTip("" if ok else perm.reason)
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
        p = self.permissions
        allowed = {"sign": p.sign, "cosign": p.cosign, "addendum": p.addendum}[kind]
        if not allowed:
            self.show_message(p.reason, error=True)
            return None
        meanings = p.sign_meanings if kind == "sign" else review.COSIGN_MEANINGS
        dialog = SignDialog(kind, self.user, meanings=meanings, parent=self)
        dialog.submitted.connect(lambda pw, meaning, text: self.sign(kind, pw, meaning, text))
        self.sign_dialog = dialog
        dialog.open()
        return dialog

    def sign(self, kind: str, password: str, meaning: str, text: str) -> None:
        """Unlock the signing key with ``password`` on the worker thread, then sign."""
        try:
            key = load_key(self.db, self.user.id)
        except KetmonitorError as exc:
            self._failed(str(exc))
            return
        purpose = {"sign": "sign the record", "cosign": "co-sign"}.get(kind, "sign an addendum")
        fut = self.executor.submit(key.unlock, password, purpose=purpose)
        self._pending = (fut, kind, meaning, text, key)
        self._poll.start()

    def _check_pending(self) -> None:
        if self._pending is None or not self._pending[0].done():
            return
        self._poll.stop()
        fut, kind, meaning, text, key = self._pending
        self._pending = None
        try:
            unlocked = fut.result()
        except AuthError:
            record_auth_failure(self.db, self.user.id, key.info.kid,
                                f"{kind} session {self.session_id} (review screen)")
            self._failed("Wrong password: nothing was signed. Enter your own password again.")
            return
        except KetmonitorError as exc:
            self._failed(str(exc))
            return
        try:
            if kind == "sign":
                result = rules.sign_record(self.db, self.session_id, self.user.id, unlocked,
                                            meaning)
                first = result.signatures[0]
                done = (f"Signed by {first.printed_name} ({first.meaning}) at "
                        f"{review.local_time(first.signed_at)}")
            elif kind == "cosign":
                result = review.cosign_session(self.db, self.session_id, self.user.id, unlocked,
                                               meaning)
                done = (f"Co-signed by {result.printed_name} ({result.meaning}) at "
                        f"{review.local_time(result.signed_at)}")
            else:
                result = review.addendum_session(self.db, self.session_id, self.user.id, unlocked,
                                                 text)
                done = f"Addendum signed at {review.local_time(result.created_utc)}"
        except KetmonitorError as exc:
            self._failed(str(exc))
            return
        self.refresh_signatures()
        self.fill_entries()  # the entries list the new signature too
        self.show_message(done, error=False)
        self.message.setStyleSheet(f"color: {style.SIGNED};")
        if self.sign_dialog is not None:
            self.sign_dialog.done_ok()
        self.signed.emit(result)

    def _failed(self, message: str) -> None:
        self.show_message(message, error=True)
        if self.sign_dialog is not None and self.sign_dialog.isVisible():
            self.sign_dialog.fail(message)

    def busy(self) -> bool:
        return self._pending is not None

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self._poll.stop()
        self.plot.stop()
        self.executor.shutdown(wait=True)
        self.closing.emit()
        super().closeEvent(event)
