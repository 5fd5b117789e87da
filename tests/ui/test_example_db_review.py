"""sessions.db.example opens in the review screens: the browser lists its five sessions for the
example auditor (logged in with the documented password), and every session's review window shows
its timeline and its signatures, all verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ketmonitor.example_db import SESSIONS, USERS
from ketmonitor.store import open_db
from ketmonitor.users import Authenticator, InlineRunner
from ui.review import ReviewWindow, SessionBrowserWidget

EXAMPLE = Path(__file__).resolve().parents[2] / "sessions.db.example"
STATUS = {"cosigned": "co-signed", "addendum": "signed + addendum"}  # the others: "signed"


@pytest.fixture
def example(tmp_path):
    assert EXAMPLE.is_file(), "sessions.db.example is missing: run 'make example-db'"
    copy = tmp_path / "example.db"
    shutil.copy(EXAMPLE, copy)  # reviewing writes audit rows: never into the committed file
    db = open_db(copy)
    auditor = USERS["auditor"]
    user = Authenticator(InlineRunner(db)).login(auditor.id, auditor.password)
    yield db, user
    db.conn.close()


def kind_of(db, session_id) -> str:
    scenario, protocol = db.conn.execute("SELECT scenario, protocol FROM sessions WHERE id = ?",
                                         (session_id,)).fetchone()
    kinds = [s.kind for s in SESSIONS if (s.scenario, s.protocol) == (scenario, protocol)]
    assert len(kinds) == 1, (scenario, protocol)
    return kinds[0]


def test_the_browser_lists_the_five_example_sessions(qtbot, example, tmp_path):
    db, user = example
    b = SessionBrowserWidget(db, user)
    qtbot.addWidget(b)
    b.resize(1400, 600)
    b.show()
    qtbot.waitExposed(b)
    ids = {r[0] for r in db.conn.execute("SELECT id FROM sessions")}
    assert b.model.rowCount() == len(SESSIONS) == len(ids)
    assert set(b.visible_ids()) == ids
    assert b.grab().save(str(tmp_path / "browser.png"))


def test_every_example_session_opens_in_the_review_screen(qtbot, example, tmp_path):
    db, user = example
    seen = set()
    for (session_id,) in db.conn.execute("SELECT id FROM sessions ORDER BY started_utc").fetchall():
        kind = kind_of(db, session_id)
        w = ReviewWindow(db, session_id, user)
        qtbot.addWidget(w)
        w.resize(1600, 950)
        w.show()
        qtbot.waitExposed(w)
        qtbot.waitUntil(w.ready, timeout=20000)  # loaded and checked on its executor
        assert w.load_error is None
        assert "Example Patient" in w.windowTitle()
        assert w.status_label.text() == STATUS.get(kind, "signed")
        rows = w.signatures.rowCount()
        assert rows >= 1
        assert all(w.signatures.item(i, 5).text() == "verified" for i in range(rows))
        signers = {w.signatures.item(i, 2).text() for i in range(rows)}
        assert signers == ({"nurse", "physician"} if kind in ("cosigned", "addendum") else {"nurse"})
        x, _y = w.plot.spo2_curve.getOriginalDataset()
        assert len(x) > 50 * 60  # the whole session's SpO2 trend is on the timeline
        if kind == "desaturation":
            texts = [w.entries.item(i, 3).text() for i in range(w.entries.rowCount())]
            assert any("alarm: SpO2" in t for t in texts)
            assert w.grab().save(str(tmp_path / "desaturation.png"))
        seen.add(kind)
        w.close()
    assert seen == {s.kind for s in SESSIONS}
