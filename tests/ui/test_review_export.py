"""Exporting from the session browser, offscreen with real widgets over the review world's real
sessions: select sessions, export them with the dialog into tmp_path on its worker thread, and
check the files are those ``ketmonitor export`` writes for the same sessions; the filtered range;
cancel; a clear error; the warning for a session whose rows no longer match its signed record;
the audit entries."""

from __future__ import annotations

import json
import re
import threading

import pypdf
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from ketmonitor.cli import main
from ketmonitor.store import open_db
from tests.review_factories import review_db_path, world  # noqa: F401 - fixtures
from tests.ui.conftest import shot
from ui.review import SessionBrowserWidget

FILE_TIME = re.compile(rb'"(timestamp|generated_utc|created_utc)": ?"[^"]*"')


@pytest.fixture
def browser(qtbot, review_db_path, world):
    db = open_db(review_db_path)
    b = SessionBrowserWidget(db, world.staff.doctor)
    qtbot.addWidget(b)
    b.resize(1400, 600)
    b.show()
    qtbot.waitExposed(b)
    yield b
    b.close_export()
    db.conn.close()


def select(browser, session_ids) -> None:
    sm = browser.table.selectionModel()
    sm.clearSelection()
    for row, r in enumerate(browser.model.rows):
        if r.id in session_ids:
            sm.select(browser.model.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                      | QItemSelectionModel.SelectionFlag.Rows)


def run_dialog(qtbot, browser, fmt, folder, *, filtered=False):
    qtbot.mouseClick(browser.export_button, Qt.MouseButton.LeftButton)
    d = browser._export
    qtbot.waitExposed(d)
    (d.use_filtered if filtered else d.use_selected).setChecked(True)
    d.format.setCurrentIndex(d.format.findData(fmt))
    d.folder.setText(str(folder))  # what "Choose..." fills in
    qtbot.mouseClick(d.export_button, Qt.MouseButton.LeftButton)
    assert d.running() or d.future.done()
    qtbot.waitUntil(lambda: not d.running() and not d._poll.isActive(), timeout=60000)
    return d


def cli(db_path, fmt, out, sessions, user) -> int:
    argv = ["export", "--db", str(db_path), "--format", fmt, "--out", str(out), "--user", user,
            "--quiet"]
    for s in sessions:
        argv += ["--session", s]
    return main(argv)


def comparable(path) -> bytes:
    """A file's bytes without the moment it was made (bundle timestamp, REMS generated_utc; PDF:
    the text without the 'report made' time)."""
    data = path.read_bytes()
    if path.suffix == ".pdf":
        text = "\n".join(p.extract_text() for p in pypdf.PdfReader(path).pages)
        return re.sub(r"(report made|filled by ketmonitor from the session record on)[^\n]*\n"
                      r"?[^\n]*UTC", "", text).encode()
    return FILE_TIME.sub(b"", data)


@pytest.mark.parametrize("fmt", ["json", "csv", "fhir", "pdf", "rems"])
def test_browse_select_export_writes_what_the_cli_writes(qtbot, browser, world, review_db_path,
                                                         tmp_path, fmt):
    sessions = [world.desat, world.cosigned]
    select(browser, sessions)
    assert browser.selected_ids() == sessions  # oldest first, as the CLI writes them
    if fmt == "rems":  # no REMS form for these protocols: the dialog says so plainly
        d = run_dialog(qtbot, browser, fmt, tmp_path / "gui")
        assert "Export failed: nothing exported" in d.status.text()
        assert "not an esketamine session" in d.status.text()
        assert cli(review_db_path, fmt, tmp_path / "cli", sessions, world.staff.doctor.id) == 2
        assert not list((tmp_path / "gui").glob("*.rems.*"))
        return
    d = run_dialog(qtbot, browser, fmt, tmp_path / "gui")
    assert d.error is None and d.result is not None, d.status.text()
    assert d.result.sessions == sessions and not d.result.flagged
    assert f"Exported 2 sessions as {fmt}" in d.summary.toPlainText()
    assert d.bar.value() == d.bar.maximum() == 2
    assert cli(review_db_path, fmt, tmp_path / "cli", sessions, world.staff.doctor.id) == 0
    gui = {p.name: p for p in (tmp_path / "gui").iterdir()}
    made = {p.name: p for p in (tmp_path / "cli").iterdir()}
    assert set(gui) == set(made) and len(gui) > 1
    for name in gui:
        if name == "export-manifest.json":
            continue
        if fmt in ("json", "csv"):  # no time of making in these: byte for byte
            assert gui[name].read_bytes() == made[name].read_bytes(), name
        else:
            assert comparable(gui[name]) == comparable(made[name]), name
    a, b = (json.loads(x["export-manifest.json"].read_text()) for x in (gui, made))
    assert a["origin"] == "review browser" and b["origin"] == "cli"
    for key in ("sessions", "selection", "user_id", "database", "skipped", "warnings"):
        assert a[key] == b[key], key
    if fmt in ("json", "csv"):
        assert {k: v for k, v in a["files"].items() if k != "export-manifest.json"} == \
            {k: v for k, v in b["files"].items() if k != "export-manifest.json"}
    # audited the same way: one entry per session and one for the run, by the logged-in user
    rows = browser.db.conn.execute(
        "SELECT action, session_id, user_id, detail FROM audit_log WHERE action IN"
        " ('session.exported', 'export.completed') ORDER BY seq").fetchall()
    by_origin = {}
    for action, sid, user, detail in rows:
        by_origin.setdefault(json.loads(detail)["origin"], []).append((action, sid, user))
    assert by_origin["review browser"] == by_origin["cli"] == [
        ("session.exported", world.desat, "doc1"), ("session.exported", world.cosigned, "doc1"),
        ("export.completed", None, "doc1")]


def test_the_filtered_range_exports_every_session_the_filters_find(qtbot, browser, world,
                                                                   tmp_path):
    browser.status.setCurrentIndex(browser.status.findData("signed"))  # applies the filter
    assert set(browser.visible_ids()) == {world.desat}
    d = run_dialog(qtbot, browser, "csv", tmp_path / "out", filtered=True)
    assert d.result.sessions == [world.desat]
    manifest = json.loads((tmp_path / "out" / "export-manifest.json").read_text())
    assert manifest["selection"] == "sessions matching the review browser's filters (status signed)"


def gate(d, monkeypatch, until_cancelled=False) -> tuple[threading.Event, threading.Event]:
    """(first session written, let the worker go on): the export's worker waits inside its
    progress callback after the first session until the test lets it go (or, ``until_cancelled``,
    until the export is cancelled), so what the test does meanwhile (cancel, close) happens while
    it runs, deterministically."""
    written, go_on = threading.Event(), threading.Event()
    real = d._on_progress

    def on_progress(done, total, sid):
        real(done, total, sid)
        written.set()
        released = d.cancel_event.wait(60) if until_cancelled else go_on.wait(60)
        assert released, "the test never let the export go on"
    monkeypatch.setattr(d, "_on_progress", on_progress)
    return written, go_on


def start_all_sessions(qtbot, browser, tmp_path, monkeypatch, until_cancelled=False):
    qtbot.mouseClick(browser.export_button, Qt.MouseButton.LeftButton)
    d = browser._export
    d.use_filtered.setChecked(True)  # all four sessions, oldest first
    d.format.setCurrentIndex(d.format.findData("pdf"))
    d.folder.setText(str(tmp_path / "out"))
    written, go_on = gate(d, monkeypatch, until_cancelled)
    qtbot.mouseClick(d.export_button, Qt.MouseButton.LeftButton)
    assert written.wait(60)  # one session written; the worker waits
    return d, go_on


def test_cancel_stops_before_the_next_session(qtbot, browser, world, tmp_path, monkeypatch):
    d, go_on = start_all_sessions(qtbot, browser, tmp_path, monkeypatch)
    assert d.running() and d.cancel_button.text() == "Cancel export"
    qtbot.mouseClick(d.cancel_button, Qt.MouseButton.LeftButton)
    go_on.set()
    qtbot.waitUntil(lambda: not d.running() and not d._poll.isActive(), timeout=60000)
    assert d.result.cancelled and len(d.result.sessions) == 1
    assert d.summary.toPlainText().startswith("Cancelled.")
    written = sorted(p.stem for p in (tmp_path / "out").glob("*.pdf"))
    assert written == sorted(d.result.sessions)
    manifest = json.loads((tmp_path / "out" / "export-manifest.json").read_text())
    assert manifest["cancelled"] == "cancelled after 1 of 4 sessions; the others were not exported"
    assert browser.db.conn.execute("SELECT count(*) FROM audit_log WHERE action ="
                                   " 'export.cancelled'").fetchone()[0] == 1
    assert d.cancel_button.text() == "Close" and d.export_button.isEnabled()


def test_esc_while_exporting_cancels_and_the_dialog_waits_for_the_worker(qtbot, browser, world,
                                                                         tmp_path, monkeypatch):
    """Esc (reject) used to hide the dialog and leave the export running behind it."""
    d, go_on = start_all_sessions(qtbot, browser, tmp_path, monkeypatch)
    qtbot.keyClick(d, Qt.Key.Key_Escape)
    assert d.isVisible() and d.cancel_event.is_set()  # still there, saying it is cancelling
    assert d.status.text() == "Cancelling after the session being written..."
    shot(d, "export-cancelling-after-esc")
    # "Export..." again brings back this dialog rather than opening a second one
    assert browser.export_dialog() is d and browser._export is d
    go_on.set()
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=60000)  # closed itself once stopped
    assert not d.running() and d.result.cancelled and len(d.result.sessions) == 1
    assert browser.db.conn.execute("SELECT count(*) FROM audit_log WHERE action ="
                                   " 'export.cancelled'").fetchone()[0] == 1
    fresh = browser.export_dialog()  # a closed dialog is replaced by a new one
    qtbot.addWidget(fresh)
    assert fresh is not d and fresh.isVisible() and not fresh.running()


def test_closing_the_browser_window_stops_the_export(qtbot, review_db_path, world, tmp_path,
                                                     monkeypatch):
    from ui.review.app import ReviewBrowserWindow

    db = open_db(review_db_path)
    win = ReviewBrowserWindow(db, world.staff.doctor)
    qtbot.addWidget(win)
    win.show()
    # the worker waits after the first session until closing the window cancels the export
    d, _go_on = start_all_sessions(qtbot, win.browser, tmp_path, monkeypatch, until_cancelled=True)
    win.close()
    assert not d.running() and not d.isVisible()
    assert d.result.cancelled and len(d.result.sessions) == 1
    db.conn.close()


def test_an_unwritable_folder_is_a_clear_error_and_nothing_is_written(qtbot, browser, world,
                                                                     tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    select(browser, [world.desat])
    d = run_dialog(qtbot, browser, "pdf", a_file)
    assert d.status.text() == f"Export failed: cannot export to {a_file}: it is a file, not a folder"
    assert d.result is None and a_file.read_text() == "not a folder"
    assert browser.db.conn.execute("SELECT count(*) FROM audit_log WHERE action ="
                                   " 'session.exported'").fetchone()[0] == 0
    assert d.export_button.isEnabled()  # fix the folder and try again
    d.folder.setText(str(tmp_path / "ok"))
    qtbot.mouseClick(d.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not d.running() and not d._poll.isActive(), timeout=60000)
    assert d.result is not None and (tmp_path / "ok" / f"{world.desat}.pdf").exists()


def test_a_session_that_does_not_match_its_record_is_warned_about(qtbot, browser, world, tmp_path):
    conn = browser.db.conn
    for trigger in ("doses_no_update", "doses_sealed_no_update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute("UPDATE doses SET amount = 84, lot_number = 'FAKE-LOT' WHERE id = (SELECT min(id)"
                 " FROM doses WHERE session_id = ?)", (world.desat,))
    select(browser, [world.desat, world.cosigned])
    d = run_dialog(qtbot, browser, "fhir", tmp_path / "out")
    assert d.result.flagged == [world.desat]
    assert "DO NOT MATCH their signed record" in d.status.text()
    summary = d.summary.toPlainText()
    assert f"session {world.desat}: DOES NOT MATCH ITS SIGNED RECORD: doses row" in summary
    assert "FAKE-LOT" in summary
    bundle = json.loads((tmp_path / "out" / f"{world.desat}.fhir.json").read_text())
    assert bundle["entry"][0]["resource"]["resourceType"] == "OperationOutcome"
    assert d.grab().save(str(tmp_path / "export-warning.png"))
