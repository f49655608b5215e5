"""``docs/examples/second_migration.py``: the engine and the compat layer run a
migration that is not the catalog's, end to end, while a client writes old names.

The example checks itself as it goes (and exits non-zero on the first failure);
this test runs it as a user would and then reads the file it left with plain
``sqlite3``, against the schema the example's docstring promises — not through
the project's code.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "second_migration.py"


def test_the_second_migration_runs_every_step(tmp_path: Path) -> None:
    db = tmp_path / "library.db"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--db", str(db)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = re.findall(r"^(\d)\. ", done.stdout, re.MULTILINE)
    assert steps == [str(n) for n in range(1, 9)]  # create, plan, run, window, rollback, run, retire, verify
    assert "FAILED" not in done.stdout and "Traceback" not in done.stderr
    assert "is deprecated; use Book.year" in done.stdout  # the synonyms warned

    conn = sqlite3.connect(db)
    try:
        tables = {
            n: t
            for n, t in conn.execute("SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        }
        assert tables.get("writers") == "table" and "authors" not in tables
        assert [r[1] for r in conn.execute("PRAGMA table_info(writers)")] == ["id", "name"]
        assert [r[1] for r in conn.execute("PRAGMA table_info(books)")] == [
            "book_id",
            "title",
            "writer_id",
            "year",
        ]
        assert [r[2] for r in conn.execute("PRAGMA index_info(idx_books_writer)")] == ["writer_id"]
        assert "idx_books_author" not in tables
        fks = conn.execute("PRAGMA foreign_key_list(books)").fetchall()
        assert [(f[2], f[3], f[4]) for f in fks] == [("writers", "writer_id", "id")]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert not [
            n for n in tables if n.startswith(("_mig_", "_rebuild_")) and n != "_mig_restricted_triggers"
        ]
        assert conn.execute("SELECT max(version) FROM library_version").fetchone() == (2,)
        # the 5000 books of the start, plus what the old client wrote, every one with its writer
        books, orphans = conn.execute(
            "SELECT count(*), sum(w.id IS NULL) FROM books b LEFT JOIN writers w ON w.id = b.writer_id"
        ).fetchone()
        assert books > 5000 and orphans == 0
    finally:
        conn.close()
