"""The disclosed alarm defaults (docs/alarms.md) are the ones in the code."""

from pathlib import Path

from ketmonitor.alarms.conditions import defaults_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "alarms.md"


def test_docs_disclose_the_current_defaults():
    text = DOC.read_text(encoding="utf-8")
    start = text.index("-->", text.index("<!-- defaults-table")) + 3
    table = text[start:text.index("<!-- /defaults-table -->")].strip()
    assert table == defaults_table(), "run defaults_table() and paste it into docs/alarms.md"
