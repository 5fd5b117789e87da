"""The review screens offscreen with real widgets over real sessions from the pipeline: browse,
filter with the widgets, open a session (double-click and Enter), the timeline shows its data, zoom
the pleth to single samples, sign an ended session's record and co-sign through the password dialog
(right and wrong password), roles."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtCore import QDate, Qt

from ketmonitor import review
from ketmonitor.signing import verify_db
from ketmonitor.store import open_db
from tests.review_factories import PASSWORDS, world  # noqa: F401 - fixtures
from tests.ui.conftest import shot
from ui.review import ReviewWindow, SessionBrowserWidget, SignDialog
from ui.review.app import ReviewBrowserWindow
from ui.review.window import CHECKING


@pytest.fixture
def db(world, tmp_path):
    from PySide6.QtWidgets import QApplication

    d = open_db(world.copy(tmp_path / "review.db"))
    yield d
    for w in QApplication.topLevelWidgets():  # windows on this database close before it does
        if isinstance(w, (ReviewWindow, ReviewBrowserWindow)):
            w.close()
    d.conn.close()


def shown(browser) -> set[str]:
    return set(browser.visible_ids())


def audit_count(db, action) -> int:
    return db.conn.execute("SELECT count(*) FROM audit_log WHERE action = ?", (action,)).fetchone()[0]


def sig_rows(db) -> int:
    return db.conn.execute("SELECT count(*) FROM record_signatures").fetchone()[0]


def window(qtbot, db, session_id, user) -> ReviewWindow:
    w = ReviewWindow(db, session_id, user)
    qtbot.addWidget(w)
    w.resize(1700, 1000)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(w.ready, timeout=20000)  # loaded and checked on its executor
    return w


# -- browsing --------------------------------------------------------------------------------------

def test_browser_lists_sessions_and_each_filter_narrows(qtbot, db, world, tmp_path):
    b = SessionBrowserWidget(db, world.staff.doctor)
    qtbot.addWidget(b)
    b.resize(1400, 600)
    b.show()
    w = world
    assert b.model.rowCount() == 4 and b.count_label.text() == "4 sessions"
    assert b.model.data(b.model.index(0, 5)) == "open"
    assert shown(b) == {w.desat, w.cosigned, w.ended, w.open}
    assert b.grab().save(str(tmp_path / "browser.png"))

    b.protocol.setCurrentIndex(b.protocol.findData("sublingual-oral"))
    assert shown(b) == {w.cosigned}
    b.protocol.setCurrentIndex(b.protocol.findData("im-injection"))
    assert shown(b) == {w.desat, w.ended, w.open}
    b.high_alarms.setChecked(True)
    assert shown(b) == {w.desat}
    b.clear_filters()
    assert shown(b) == {w.desat, w.cosigned, w.ended, w.open}

    b.status.setCurrentIndex(b.status.findData("co-signed"))
    assert shown(b) == {w.cosigned}
    b.status.setCurrentIndex(b.status.findData("ended"))
    assert shown(b) == {w.ended}
    b.status.setCurrentIndex(b.status.findData("addendum"))
    assert shown(b) == {w.cosigned}
    b.clear_filters()

    b.clinician.setCurrentIndex(b.clinician.findData("doc2"))
    assert shown(b) == {w.cosigned}
    b.clinician.setCurrentIndex(b.clinician.findData("demo-nurse"))
    assert shown(b) == {w.desat, w.cosigned, w.ended}
    b.clear_filters()

    qtbot.keyClicks(b.patient, "DEMO-0004")
    qtbot.keyClick(b.patient, Qt.Key.Key_Return)
    assert shown(b) == {w.ended}
    b.clear_filters()

    b.use_dates.setChecked(True)
    b.date_from.setDate(QDate(2026, 3, 5))
    b.date_to.setDate(QDate(2026, 3, 9))  # the whole last day counts
    qtbot.mouseClick(b.apply_button, Qt.MouseButton.LeftButton)
    assert shown(b) == {w.cosigned, w.ended}
    assert b.count_label.text() == "2 sessions"
    b.date_to.setDate(QDate(2026, 3, 1))  # end before start: said plainly, list unchanged
    b.apply_filters()
    assert "end of the date range" in b.message.text()
    assert shown(b) == {w.cosigned, w.ended}
    assert audit_count(db, "sessions.searched") >= 10


def test_double_click_and_enter_open_a_session(qtbot, db, world):
    b = SessionBrowserWidget(db, world.staff.doctor)
    qtbot.addWidget(b)
    b.resize(1400, 600)
    b.show()
    qtbot.waitExposed(b)
    row = b.visible_ids().index(world.desat)
    rect = b.table.visualRect(b.model.index(row, 2))
    with qtbot.waitSignal(b.session_opened, timeout=2000) as sig:
        # QTest's double click alone lacks the press a real one starts with
        qtbot.mouseClick(b.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(b.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sig.args == [world.desat]
    b.table.setFocus()
    b.table.selectRow(b.visible_ids().index(world.ended))
    with qtbot.waitSignal(b.session_opened, timeout=2000) as sig:
        qtbot.keyClick(b.table, Qt.Key.Key_Return)
    assert sig.args == [world.ended]


def test_browser_window_opens_the_review_screen(qtbot, db, world):
    win = ReviewBrowserWindow(db, world.staff.auditor)
    qtbot.addWidget(win)
    win.show()
    before = audit_count(db, "session.viewed")
    rw = win.open_session(world.cosigned)
    qtbot.addWidget(rw)
    assert rw.isVisible() and rw.session_id == world.cosigned
    qtbot.waitUntil(rw.ready, timeout=20000)
    assert win.open_session(world.cosigned) is rw  # one window per session
    assert audit_count(db, "session.viewed") == before + 1
    row = db.conn.execute("SELECT user_id, session_id FROM audit_log WHERE action ="
                          " 'session.viewed' ORDER BY seq DESC").fetchone()
    assert row == ("aud1", world.cosigned)
    win.close()
    assert not rw.isVisible()


def test_a_signature_refreshes_the_browser(qtbot, db, world):
    win = ReviewBrowserWindow(db, world.staff.doctor)
    qtbot.addWidget(win)
    win.show()
    row = win.browser.visible_ids().index(world.desat)
    assert win.browser.model.data(win.browser.model.index(row, 5)) == "signed"
    rw = win.open_session(world.desat)
    qtbot.addWidget(rw)
    qtbot.waitUntil(rw.ready, timeout=20000)
    with qtbot.waitSignal(rw.signed, timeout=10000):
        _sign(qtbot, rw, "cosign", PASSWORDS["doc1"], meaning="responsibility")
    row = win.browser.visible_ids().index(world.desat)
    assert win.browser.model.data(win.browser.model.index(row, 5)) == "co-signed"
    assert win.browser.model.data(win.browser.model.index(row, 7)) == "2"
    win.close()
    assert not rw.isVisible()


# -- the review screen -----------------------------------------------------------------------------

def test_timeline_shows_the_session(qtbot, db, world, tmp_path):
    w = window(qtbot, db, world.desat, world.staff.doctor)
    tl = w.timeline
    q = db.conn.execute
    # trends, NIBP, scales, lanes: every stored item is on the plot
    n_spo2 = q("SELECT count(*) FROM numerics WHERE session_id = ? AND metric = 'spo2'",
               (world.desat,)).fetchone()[0]
    x, _y = w.plot.spo2_curve.getOriginalDataset()
    assert len(x) == n_spo2
    assert w.plot.nibp_points == q("SELECT count(*) FROM numerics WHERE session_id = ? AND metric ="
                                   " 'nibp_systolic'", (world.desat,)).fetchone()[0]
    assert len(w.plot.scale_labels) == len(tl.scales)
    assert len(w.plot.lane_items["doses"]) == len(tl.doses)
    assert len(w.plot.lane_items["alarms"]) == len(tl.alarms)
    assert len(w.plot.lane_items["amend."]) == 1
    assert len(w.plot.alarm_regions) == len(tl.alarms)
    # the chronological list
    assert w.entries.rowCount() == len(tl.entries())
    texts = [w.entries.item(i, 3).text() for i in range(w.entries.rowCount())]
    assert any(t.startswith("HIGH alarm: SpO2") for t in texts)
    assert any("(amended)" in t for t in texts)
    # the signature with printed name, local date and time, and meaning
    sig = tl.original_record.record.signatures[0]
    row = [w.signatures.item(0, c).text() for c in range(w.signatures.columnCount())]
    assert row == ["record", "Nora Nurse, RN", "nurse", "authorship",
                   review.local_time(sig.signed_at), "verified"]
    assert w.status_label.text() == "signed"
    assert "Demo Patient (simulated) (DEMO-0002)" in w.windowTitle()
    assert w.grab().save(str(tmp_path / "review.png"))


def test_acknowledgements_are_marked_in_their_lane(qtbot, db, world):
    from ketmonitor.alarms.log import record_alarm_event
    from ketmonitor.samples import SessionEvent

    alarm_id, start = db.conn.execute(
        "SELECT alarm_id, start_wall FROM alarm_log WHERE session_id = ? AND priority = 'high'",
        (world.desat,)).fetchone()
    db.conn.execute("BEGIN IMMEDIATE")
    record_alarm_event(db, world.desat, SessionEvent("alarm.acknowledged", 0.0, start + 5,
                                                     {"alarm_ids": [alarm_id]}, "demo-nurse"))
    db.conn.execute("COMMIT")
    w = window(qtbot, db, world.desat, world.staff.doctor)
    (dot,) = w.plot.lane_items["acks"]
    assert "acknowledged (demo-nurse)" in dot.toolTip()
    texts = [w.entries.item(i, 3).text() for i in range(w.entries.rowCount())]
    assert any(t.startswith("acknowledged: SpO2") for t in texts)


def test_pleth_loads_the_visible_range_and_zooms_to_single_samples(qtbot, db, world):
    w = window(qtbot, db, world.desat, world.staff.doctor)
    p = w.plot
    qtbot.waitUntil(lambda: "zoom in" in p.pleth_hint.toPlainText(), timeout=3000)
    assert p.pleth_t.size == 0 and p.pleth_loads == 0  # whole session: nothing loaded
    p.show_range(900.0, 960.0)
    qtbot.waitUntil(lambda: p.pleth_loads == 1 and p.visible_samples() > 0, timeout=3000)
    assert 60 * 75 - 3 <= p.visible_samples() <= 60 * 75 + 3
    assert p.pleth_t.min() >= 870.0 - 1 and p.pleth_t.max() <= 990.0 + 1  # the range, with margin
    assert p.pleth_curve.opts["symbol"] is None
    p.show_range(930.0, 931.0)  # inside what is loaded: no new read, single samples drawn as dots
    qtbot.waitUntil(lambda: p.pleth_curve.opts["symbol"] == "o", timeout=3000)
    assert p.pleth_loads == 1 and 74 <= p.visible_samples() <= 77
    p.show_range(1500.0, 1500.5)  # elsewhere: loaded afresh
    qtbot.waitUntil(lambda: p.pleth_loads == 2, timeout=3000)
    assert 36 <= p.visible_samples() <= 39
    p.show_all()
    qtbot.waitUntil(lambda: "zoom in" in p.pleth_hint.toPlainText(), timeout=3000)
    # double-clicking an entry centres the plot on it
    row = next(i for i, e in enumerate(w.entry_rows) if e.kind == "alarm" and e.priority == "high")
    w._go_to_entry(row)
    x0, x1 = p.view_range()
    assert x0 < w.entry_rows[row].t < x1 and x1 - x0 < 600


def _sign(qtbot, w, kind, password, *, meaning=None, text=None) -> SignDialog:
    d = w.ask_signature(kind)
    assert d is not None and d.isVisible()
    if meaning:
        d.meaning.setCurrentIndex(d.meaning.findData(meaning))
    if text:
        d.text.setPlainText(text)
    qtbot.keyClicks(d.password, password)
    qtbot.mouseClick(d.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.busy(), timeout=10000)
    return d


def test_physician_cosigns_with_the_right_password(qtbot, db, world, tmp_path):
    w = window(qtbot, db, world.desat, world.staff.doctor)
    assert w.cosign_button.isEnabled() and w.addendum_button.isEnabled()
    before = sig_rows(db)
    with qtbot.waitSignal(w.signed, timeout=10000):
        d = _sign(qtbot, w, "cosign", PASSWORDS["doc1"], meaning="review")
    assert not d.isVisible()
    assert sig_rows(db) == before + 1
    report = verify_db(db, world.desat)
    assert [(s.signer_id, s.meaning) for s in report.records[0].signatures] == [
        ("demo-nurse", "authorship"), ("doc1", "review")]
    signed_at = db.conn.execute("SELECT signed_utc FROM record_signatures WHERE signer_id = 'doc1'"
                                ).fetchone()[0]
    rows = [[w.signatures.item(r, c).text() for c in range(6)] for r in range(w.signatures.rowCount())]
    assert ["record", "Dana Doctor, MD", "physician", "review", review.local_time(signed_at),
            "verified"] in rows
    assert w.status_label.text() == "co-signed"
    assert "Co-signed by Dana Doctor, MD (review)" in w.message.text()
    assert any("Dana Doctor, MD" in w.entries.item(i, 3).text() for i in range(w.entries.rowCount()))
    assert w.grab().save(str(tmp_path / "cosigned.png"))


def test_wrong_password_is_refused_and_signs_nothing(qtbot, db, world):
    w = window(qtbot, db, world.desat, world.staff.doctor)
    before, failed = sig_rows(db), audit_count(db, "signing.auth_failed")
    d = _sign(qtbot, w, "cosign", "Not-my-password-9", meaning="approval")
    assert d.isVisible()  # still open, to try again
    assert "Wrong password: nothing was signed" in d.error.text()
    assert d.password.text() == ""
    assert sig_rows(db) == before
    assert audit_count(db, "signing.auth_failed") == failed + 1
    assert w.status_label.text() == "signed"
    # an empty password never reaches the signing service
    qtbot.mouseClick(d.sign_button, Qt.MouseButton.LeftButton)
    assert "Enter your password" in d.error.text() and not w.busy()
    # and the right one then works from the same dialog
    qtbot.keyClicks(d.password, PASSWORDS["doc1"])
    qtbot.mouseClick(d.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=10000)
    assert sig_rows(db) == before + 1


def test_physician_adds_an_addendum(qtbot, db, world):
    w = window(qtbot, db, world.desat, world.staff.doctor)
    with qtbot.waitSignal(w.signed, timeout=10000):
        _sign(qtbot, w, "addendum", PASSWORDS["doc1"], text="Desaturation reviewed: brief, "
              "self-resolving, probe position.")
    assert w.status_label.text() == "signed + addendum"
    assert "Desaturation reviewed" in w.addenda.text() and "Dana Doctor, MD" in w.addenda.text()
    assert db.conn.execute("SELECT count(*) FROM session_records WHERE session_id = ? AND kind ="
                           " 'addendum'", (world.desat,)).fetchone()[0] == 1
    verify_db(db, world.desat)


@pytest.mark.parametrize("who", ["nurse", "auditor"])
def test_nurse_and_auditor_cannot_cosign(qtbot, db, world, who):
    user = getattr(world.staff, who)
    w = window(qtbot, db, world.desat, user)
    assert not w.cosign_button.isEnabled()
    assert w.addendum_button.isEnabled() is (who == "nurse")
    assert w.ask_signature("cosign") is None and w.sign_dialog is None
    assert ("only a physician" if who == "nurse" else "read-only") in w.message.text()
    before = sig_rows(db)
    w.sign("cosign", PASSWORDS["demo-nurse" if who == "nurse" else "aud1"], "review", "")
    qtbot.waitUntil(lambda: not w.busy(), timeout=10000)
    assert sig_rows(db) == before  # the core refuses too, whatever the buttons say
    assert w.message.text()


def test_unsigned_and_open_sessions_show_but_cannot_be_cosigned(qtbot, db, world):
    for sid in (world.ended, world.open):
        w = window(qtbot, db, sid, world.staff.doctor)
        assert not w.cosign_button.isEnabled() and not w.addendum_button.isEnabled()
        assert "not signed yet" in w.message.text()
        assert w.signatures.item(0, 0).text() == "not signed yet"
        w.close()
    w = window(qtbot, db, world.open, world.staff.doctor)
    assert w.timeline.patient is None and "no patient" in w.windowTitle()
    assert len(w.timeline.series["spo2"][0]) > 10


def test_the_author_signs_an_ended_session_from_the_review_screen(qtbot, db, world, tmp_path):
    w = window(qtbot, db, world.ended, world.staff.nurse)
    assert w.sign_button.isVisible() and w.sign_button.isEnabled()
    assert not w.cosign_button.isEnabled() and not w.addendum_button.isEnabled()
    d = w.ask_signature("sign")
    assert d.windowTitle() == "Sign the session record"
    assert [d.meaning.itemData(i) for i in range(d.meaning.count())] == ["authorship"]
    assert "author of this session record" in d.statement.text()
    assert d.grab().save(str(tmp_path / "sign-dialog.png"))
    d.close()
    before = sig_rows(db)
    with qtbot.waitSignal(w.signed, timeout=10000) as sig:
        d = _sign(qtbot, w, "sign", PASSWORDS["demo-nurse"])
    assert not d.isVisible() and sig_rows(db) == before + 1
    assert sig.args[0].signatures[0].meaning == "authorship"
    signed_at = db.conn.execute("SELECT signed_utc FROM record_signatures g JOIN session_records r"
                                " ON r.record_id = g.record_id WHERE r.session_id = ?",
                                (world.ended,)).fetchone()[0]
    row = [w.signatures.item(0, c).text() for c in range(6)]
    assert row == ["record", "Nora Nurse, RN", "nurse", "authorship", review.local_time(signed_at),
                   "verified"]
    assert w.status_label.text() == "signed" and "Signed by Nora Nurse, RN (authorship)" in \
        w.message.text()
    assert not w.sign_button.isVisible()  # signed: now an addendum, or a physician's co-signature
    assert w.addendum_button.isEnabled() and not w.cosign_button.isEnabled()
    assert [(s.signer_id, s.meaning) for s in verify_db(db, world.ended).records[0].signatures] == [
        ("demo-nurse", "authorship")]
    check = w.timeline.record_check  # the record just signed, checked: not the 'not signed' of before
    assert check.matches and check.record_id == sig.args[0].record_id and check.rows > 1000


def test_a_physician_signs_for_responsibility_after_a_wrong_password(qtbot, db, world):
    w = window(qtbot, db, world.ended, world.staff.doctor)
    assert w.sign_button.isEnabled()
    failed = audit_count(db, "signing.auth_failed")
    d = _sign(qtbot, w, "sign", "Not-my-password-9")
    assert [d.meaning.itemData(i) for i in range(d.meaning.count())] == ["responsibility"]
    assert d.isVisible() and "Wrong password: nothing was signed" in d.error.text()
    assert audit_count(db, "signing.auth_failed") == failed + 1
    assert db.conn.execute("SELECT count(*) FROM session_records WHERE session_id = ?",
                           (world.ended,)).fetchone()[0] == 0
    qtbot.keyClicks(d.password, PASSWORDS["doc1"])
    with qtbot.waitSignal(w.signed, timeout=10000):
        qtbot.mouseClick(d.sign_button, Qt.MouseButton.LeftButton)
    assert w.status_label.text() == "signed" and w.cosign_button.isEnabled()
    assert verify_db(db, world.ended).records[0].signatures[0].meaning == "responsibility"


def test_the_auditor_cannot_sign_and_an_open_session_cannot_be_signed(qtbot, db, world):
    w = window(qtbot, db, world.ended, world.staff.auditor)
    assert w.sign_button.isVisible() and not w.sign_button.isEnabled()
    assert w.ask_signature("sign") is None and "read-only" in w.message.text()
    w.close()
    w = window(qtbot, db, world.open, world.staff.nurse)
    assert not w.sign_button.isEnabled() and "still open" in w.sign_button.toolTip()
    before = sig_rows(db)
    w.sign("sign", PASSWORDS["demo-nurse"], "authorship", "")  # past the button: the core refuses
    qtbot.waitUntil(lambda: not w.busy(), timeout=10000)
    assert sig_rows(db) == before and "has not ended" in w.message.text()


# -- reaching the review from the app --------------------------------------------------------------

def test_login_dialog_checks_the_password(qtbot, db):
    from ui.review.app import login_dialog

    d = login_dialog(db, user_id="doc1")
    qtbot.addWidget(d)
    d.password.setText("wrong-Password-1")
    d._try()
    assert d.user is None and "wrong" in d.error.text()
    d.password.setText(PASSWORDS["doc1"])
    d._try()
    assert d.user is not None and d.user.role == "physician" and d.result() == d.DialogCode.Accepted


def test_monitor_menu_opens_the_browser_after_login(qtbot, db, world, tmp_path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ketmonitor.clock import ManualClock
    from ketmonitor.runtime import MonitorRuntime
    from ui.monitor_window import MonitorWindow
    from ui.review.app import add_review_menu

    path = world.copy(tmp_path / "clinic.db")
    rt = MonitorRuntime(tmp_path / "monitor.db", [], clock=ManualClock(0.0), t0=0.0)
    mw = MonitorWindow(rt)
    qtbot.addWidget(mw)
    action = add_review_menu(mw, path)
    assert [a.text() for a in mw.menuBar().actions()] == ["&Review"]

    def log_in():
        dlg = QApplication.activeModalWidget()
        dlg.user_id.setText("aud1")
        dlg.password.setText(PASSWORDS["aud1"])
        dlg._try()

    QTimer.singleShot(0, log_in)
    action.trigger()
    browser = mw._review_browser
    qtbot.addWidget(browser)
    assert browser.isVisible() and browser.user.id == "aud1"
    assert len(browser.browser.visible_ids()) == 4
    browser.close()
    browser.db.conn.close()


def test_a_tampered_record_shows_failed_and_cannot_be_cosigned(qtbot, db, world):
    rid, sig = db.conn.execute(
        "SELECT g.record_id, g.signature FROM record_signatures g JOIN session_records r"
        " ON r.record_id = g.record_id WHERE r.session_id = ?", (world.desat,)).fetchone()
    forged = ("A" if sig[0] != "A" else "B") + sig[1:]
    db.conn.execute("DROP TRIGGER record_signatures_no_update")  # what an attacker does first
    db.conn.execute("UPDATE record_signatures SET signature = ? WHERE record_id = ?", (forged, rid))
    w = window(qtbot, db, world.desat, world.staff.doctor)
    assert w.signatures.item(0, 5).text() == "FAILED"
    assert "signature" in w.signatures.item(0, 5).toolTip().lower()
    assert w.record_banner.isVisible()
    assert "SIGNED RECORD DOES NOT VERIFY" in w.record_banner.text()
    assert not w.cosign_button.isEnabled() and w.ask_signature("cosign") is None
    before = sig_rows(db)
    w.sign("cosign", PASSWORDS["doc1"], "review", "")  # past the buttons: the core refuses too
    qtbot.waitUntil(lambda: not w.busy(), timeout=10000)
    assert sig_rows(db) == before and "refused" in w.message.text()


def test_altered_rows_are_shown_prominently_and_block_signing(qtbot, db, world, tmp_path):
    """A dose changed behind the triggers' back: the review screen says so above everything,
    never calls the record verified, and the physician cannot co-sign or add an addendum."""
    for trigger in ("doses_no_update", "doses_sealed_no_update"):
        db.conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    db.conn.execute("UPDATE doses SET amount = 84, lot_number = 'FAKE-LOT' WHERE id = (SELECT"
                    " min(id) FROM doses WHERE session_id = ?)", (world.desat,))
    w = window(qtbot, db, world.desat, world.staff.doctor)
    assert w.record_banner.isVisible()
    text = w.record_banner.text()
    assert "DOES NOT MATCH ITS SIGNED RECORD" in text and "FAKE-LOT" in text
    assert w.record_banner.geometry().top() < w.splitter.geometry().top()  # above the content
    assert w.signatures.item(0, 5).text() == "DATA DIFFERS"
    assert not any(w.signatures.item(r, 5).text() == "verified"
                   for r in range(w.signatures.rowCount()))
    assert not w.cosign_button.isEnabled() and not w.addendum_button.isEnabled()
    assert "refused" in w.cosign_button.toolTip() and "refused" in w.message.text()
    assert w.ask_signature("addendum") is None and w.sign_dialog is None
    before = sig_rows(db)
    w.sign("addendum", PASSWORDS["doc1"], "", "the dose was 84 mg")
    qtbot.waitUntil(lambda: not w.busy(), timeout=10000)
    assert sig_rows(db) == before
    assert db.conn.execute("SELECT count(*) FROM session_records WHERE session_id = ?",
                           (world.desat,)).fetchone()[0] == 1
    assert w.grab().save(str(tmp_path / "altered.png"))


def test_a_matching_session_has_no_banner(qtbot, db, world):
    w = window(qtbot, db, world.desat, world.staff.doctor)
    assert not w.record_banner.isVisible() and w.timeline.record_check.matches
    assert w.signatures.item(0, 5).text() == "verified"


# -- nothing slow on the Qt thread, and nothing escaping its slots ---------------------------------

def test_the_window_opens_at_once_and_checks_the_record_on_its_executor(qtbot, db, world):
    w = ReviewWindow(db, world.desat, world.staff.doctor)
    qtbot.addWidget(w)
    # the constructor only asked the executor: nothing is loaded or checked yet on this thread
    assert w.timeline is None and not w.ready()
    assert "checking it against its signed record" in w.centralWidget().text()
    w.resize(1700, 1000)
    w.show()
    with qtbot.waitSignal(w.loaded, timeout=20000):
        pass
    assert w.ready() and w.timeline.record_check.matches and w.cosign_button.isEnabled()


def test_a_cosignature_compares_the_rows_once_and_the_buttons_wait_for_the_check(qtbot, db, world,
                                                                                monkeypatch):
    from ketmonitor.signing import matching

    w = window(qtbot, db, world.desat, world.staff.doctor)
    compared = []
    real = matching._check_tables
    monkeypatch.setattr(matching, "_check_tables", lambda *a: compared.append(a[2]) or real(*a))
    seen = []  # the window just after the signature was stored, before it is checked again
    w.flow.succeeded.connect(lambda _r: seen.append(
        (w.cosign_button.isEnabled(), w.addendum_button.toolTip(), w.message.text())))
    with qtbot.waitSignal(w.signed, timeout=20000):
        _sign(qtbot, w, "cosign", PASSWORDS["doc1"], meaning="review")
    assert seen == [(False, CHECKING, seen[0][2])] and seen[0][2].endswith(CHECKING)
    assert compared == [world.desat]  # the core's comparison before signing, and no other
    (rv,) = w.timeline.records
    assert [s.signer_id for s in rv.record.signatures] == ["demo-nurse", "doc1"] and rv.verified
    assert w.cosign_button.isEnabled() and w.status_label.text() == "co-signed"


def test_a_database_error_while_cosigning_is_said_and_the_dialog_stays_usable(qtbot, db, world,
                                                                              caplog):
    w = window(qtbot, db, world.desat, world.staff.doctor)
    d = w.ask_signature("cosign")
    db.conn.execute("ALTER TABLE record_signatures RENAME TO gone")
    qtbot.keyClicks(d.password, PASSWORDS["doc1"])
    with caplog.at_level(logging.ERROR):
        qtbot.mouseClick(d.sign_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not w.busy(), timeout=20000)
    assert d.isVisible() and d.sign_button.isEnabled() and d.password.text() == ""
    assert d.error.text().startswith(
        "Signing failed unexpectedly (OperationalError: no such table: record_signatures)")
    assert w.message.text() == d.error.text() and "Traceback" in caplog.text
    db.conn.execute("ALTER TABLE gone RENAME TO record_signatures")
    with qtbot.waitSignal(w.signed, timeout=20000):  # the same dialog works again
        qtbot.keyClicks(d.password, PASSWORDS["doc1"])
        qtbot.mouseClick(d.sign_button, Qt.MouseButton.LeftButton)
    assert not d.isVisible()


def test_a_deleted_record_is_shown_in_red_and_cannot_be_signed_again(qtbot, db, world, tmp_path):
    from ketmonitor.signing.matching import SIGNATURE_FAILED
    from tests.core.test_signing_support import delete_signed_record

    (record_id,) = delete_signed_record(db, world.desat)
    w = window(qtbot, db, world.desat, world.staff.nurse)  # the author, who could sign it anew
    assert w.record_banner.isVisible() and SIGNATURE_FAILED in w.record_banner.text()
    assert record_id in w.record_banner.text() and "missing from the database" in \
        w.record_banner.text()
    assert w.sign_button.isVisible() and not w.sign_button.isEnabled()
    assert "refused" in w.sign_button.toolTip() and w.ask_signature("sign") is None
    shot(w, "review-deleted-record")
    w.sign("sign", PASSWORDS["demo-nurse"], "authorship", "")  # past the button: the core refuses
    qtbot.waitUntil(lambda: not w.busy(), timeout=20000)
    assert "it was signed before" in w.message.text()
    assert db.conn.execute("SELECT count(*) FROM session_records WHERE session_id = ?",
                           (world.desat,)).fetchone()[0] == 0
