"""A second migration, on a schema that is not the catalog's: the proof that the
engine and the compat layer are generic.

A small library database (``authors``, ``books``) is renamed online while a
writer thread keeps writing with the old names:

* table ``authors`` becomes ``writers``; its columns ``author_id`` and
  ``author_name`` become ``id`` and ``name`` (in the window the old name is a
  view with INSTEAD OF triggers);
* ``books.author_ref`` (a foreign key to the authors) becomes ``writer_id`` and
  ``books.pub_year`` becomes ``year`` (in the window the old names are real
  columns kept in sync by triggers); index ``idx_books_author`` becomes
  ``idx_books_writer``.

It runs plan -> run -> the window (old names read and written through the
shims, the SQLAlchemy synonyms warn) -> rollback -> run -> retire -> verify,
printing each step, and exits 0 when every step did what it should::

    python docs/examples/second_migration.py --db /tmp/library.db

Nothing here is specific to the catalog: the declaration below and the
functions of :mod:`compat.lifecycle`, :mod:`compat.retire` and
:mod:`compat.synonyms` are all it takes.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import warnings
from pathlib import Path

from sqlalchemy import ForeignKey, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from compat.lifecycle import engine, rollback
from compat.lifecycle.spec import RenameMigration
from compat.lifecycle.verify import verify
from compat.phases import read_state
from compat.renames import ColumnRename, IndexRename, RenameDeclaration, TableRename
from compat.retire import plan_retire, retire
from compat.synonyms import CatalogDeprecationWarning, old_name_synonyms
from migration.connect import connect, write_transaction

# -- the schema as the application created it (version 1) --------------------------
V1_DDL = """
CREATE TABLE authors (author_id INTEGER PRIMARY KEY, author_name TEXT NOT NULL);
CREATE TABLE books (
    book_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    author_ref INTEGER REFERENCES authors(author_id),
    pub_year INTEGER
);
CREATE INDEX idx_books_author ON books(author_ref);
"""

# -- the migration, declared -----------------------------------------------------------
LIBRARY_V2 = RenameDeclaration(
    name="Library v2",
    tables=(
        TableRename(
            old="authors",
            new="writers",
            columns=(ColumnRename("author_id", "id"), ColumnRename("author_name", "name")),
            model="Writer",
            model_alias="Author",
        ),
        TableRename(
            old="books",
            new="books",
            columns=(ColumnRename("author_ref", "writer_id"), ColumnRename("pub_year", "year")),
            model="Book",
        ),
    ),
    indexes=(IndexRename("books", "idx_books_author", "idx_books_writer", ("writer_id",)),),
    from_version=1,
    to_version=2,
    from_description="library v1",
    to_description="library v2: writers",
    version_table="library_version",
    models_module="library.models",  # where an application of this schema keeps its models
)
MIGRATION = RenameMigration(LIBRARY_V2)


# -- the application's models, in the new names, with the old ones as synonyms ----------
class Base(DeclarativeBase):
    pass


class Writer(Base):
    __tablename__ = "writers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    locals().update(old_name_synonyms(LIBRARY_V2, "Writer"))


class Book(Base):
    __tablename__ = "books"
    book_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String)
    writer_id: Mapped[int | None] = mapped_column(ForeignKey("writers.id"))
    year: Mapped[int | None] = mapped_column(Integer)
    locals().update(old_name_synonyms(LIBRARY_V2, "Book"))


# -- an old client: raw SQL in the old names, writing the whole time --------------------
class OldWriter(threading.Thread):
    """Adds an author and a book every few milliseconds, in v1 names only."""

    def __init__(self, db: Path) -> None:
        super().__init__(name="old-names-writer", daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.written: list[str] = []
        self.errors: list[str] = []
        self.progress = threading.Condition()

    def run(self) -> None:
        conn = connect(self.db)
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    with write_transaction(conn):
                        conn.execute(
                            "INSERT INTO authors (author_id, author_name) VALUES (?, ?)",
                            (10_000 + n, f"author {n}"),
                        )
                        conn.execute(
                            "INSERT INTO books (title, author_ref, pub_year) VALUES (?, ?, ?)",
                            (f"book {n}", 10_000 + n, 1900 + n % 120),
                        )
                    with self.progress:
                        self.written.append(f"book {n}")
                        self.progress.notify_all()
                except sqlite3.Error as exc:  # must never happen: the test of the example
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    return
                self.stop.wait(0.002)
        finally:
            conn.close()

    def wait_for(self, more: int) -> None:
        """Until ``more`` further books are written (the writer is alive and served)."""
        with self.progress:
            target = len(self.written) + more
            while len(self.written) < target and not self.errors:
                self.progress.wait(1.0)
                if not self.is_alive():
                    break


def say(line: str) -> None:
    print(line, flush=True)


def create(db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V1_DDL)
    conn.executemany("INSERT INTO authors VALUES (?, ?)", [(i, f"writer {i}") for i in range(1, 51)])
    conn.executemany(
        "INSERT INTO books (title, author_ref, pub_year) VALUES (?, ?, ?)",
        [(f"title {i}", 1 + i % 50, 1950 + i % 70) for i in range(5000)],
    )
    conn.commit()
    conn.close()


def phase(db: Path) -> str | None:
    conn = connect(db)
    try:
        return read_state(conn, LIBRARY_V2).phase
    finally:
        conn.close()


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"FAILED: {what}")
    say(f"  ✓ {what}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="the database file to create (replaced)")
    db = parser.parse_args(argv).db.expanduser().absolute()

    say(f"1. create a v1 library at {db}: 50 authors, 5000 books")
    create(db)
    check(phase(db) == "before", "phase before")

    say("2. plan (nothing changes)")
    plan = engine.make_plan(db, MIGRATION)
    for stage in plan.stages:
        statements = [st for a in stage.actions for st in a.statements()]
        say(f"   {stage.name}: {stage.title} — {len(statements)} statements, lock ~{stage.lock_ms:.0f} ms")
    for statement in [st for a in plan.stages[-1].actions for st in a.statements()][:6]:
        say(f"     {statement}")
    check(phase(db) == "before", "the plan changed nothing")

    writer = OldWriter(db)
    writer.start()
    writer.wait_for(20)
    say("3. run online while an old client writes authors and books in v1 names")
    report = engine.run(db, MIGRATION, confirm=lambda _backup: True, say=lambda line: say("   " + line))
    writer.wait_for(20)
    check(phase(db) == "window", f"phase window; longest write lock {report.lock.longest_ms:.1f} ms")

    say("4. the window: old names through the shims, new names natively")
    conn = connect(db)
    try:
        conn.execute("BEGIN")  # one snapshot for both reads: the old client keeps writing
        old = conn.execute(
            "SELECT count(*) FROM authors a JOIN books b ON b.author_ref = a.author_id"
        ).fetchone()
        new = conn.execute("SELECT count(*) FROM writers w JOIN books b ON b.writer_id = w.id").fetchone()
        conn.execute("COMMIT")
        check(old == new, f"the old-name join and the new-name join agree ({old[0]} rows)")
        with write_transaction(conn):
            conn.execute("UPDATE authors SET author_name = 'renamed' WHERE author_id = 1")
            conn.execute("UPDATE books SET pub_year = 2001 WHERE book_id = 1")
        name = conn.execute("SELECT name FROM writers WHERE id = 1").fetchone()[0]
        year = conn.execute("SELECT year FROM books WHERE book_id = 1").fetchone()[0]
        check((name, year) == ("renamed", 2001), "writes through the old names reach the new columns")
    finally:
        conn.close()
    engine_sa = create_engine(f"sqlite:///{db}")
    with Session(engine_sa) as s, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CatalogDeprecationWarning)
        years = s.scalars(select(Book.pub_year).where(Book.author_ref == 1)).all()
    engine_sa.dispose()
    check(bool(years), f"Book.pub_year / Book.author_ref still work ({len(years)} rows)")
    check(
        any(issubclass(w.category, CatalogDeprecationWarning) for w in caught),
        "and warn: "
        + next(str(w.message) for w in caught if issubclass(w.category, CatalogDeprecationWarning)),
    )

    say("5. rollback (every row kept, the old client keeps writing)")
    stats = rollback.rollback(db, LIBRARY_V2, say=lambda line: say("   " + line))
    writer.wait_for(20)
    check(phase(db) == "during", f"phase during (v1 names, prepared); lock {stats.longest_ms:.1f} ms")

    say("6. run again: the cut-over at once, nothing left to copy")
    engine.run(db, MIGRATION, confirm=lambda _backup: True, backup=False, say=lambda line: say("   " + line))
    writer.wait_for(20)
    check(phase(db) == "window", "phase window")

    say("7. retire the shims (the old client is stopped first: old names end here)")
    writer.stop.set()
    writer.join()
    check(not writer.errors, f"the old client wrote {len(writer.written)} books in v1 names, no error")
    conn = connect(db)
    try:
        plan_r = plan_retire(conn, LIBRARY_V2, min_days=0, quiet_days=0)
    finally:
        conn.close()
    check(plan_r.allowed, "retire allowed (window shortened to 0 days for the example)")
    result = retire(db, LIBRARY_V2, plan_r, say=lambda line: say("   " + line), make_backup=MIGRATION.backup)
    check(phase(db) == "retired", f"phase retired; longest write lock {result['lock_ms']:.1f} ms")

    say("8. verify")
    v = verify(db, LIBRARY_V2)
    for c in v.checks:
        if not c.ok:
            say(f"   ✗ {c.group}: {c.name} {c.detail}")
    conn = connect(db)
    try:
        titles = {r[0] for r in conn.execute("SELECT title FROM books")}
    finally:
        conn.close()
    check(set(writer.written) <= titles, f"every book the old client wrote is there ({len(writer.written)})")
    check(v.ok, f"verify: {len(v.checks)} checks pass")
    say("Done: plan, run, window, rollback, run, retire, verify on a schema that is not the catalog's.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
