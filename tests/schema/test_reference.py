"""The schemas the project creates equal the upstream reference DDL, exactly.

The expected schema is read from the reference file itself
(``tests/fixtures/upstream-v1.sql``, a copy of ``shared/reference/upstream-v1.sql``)
parsed by SQLite into an in-memory database, so neither the baseline nor the models
can drift from it: table by table, column by column (name, declared type, NOT NULL,
default, primary key), UNIQUE constraints, foreign keys with their ON DELETE, and
index by index (name, columns, unique). The v2 renames are written out here from
schema.md, independently of ``compat.renames``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from catalog.models import Base
from catalog.phase3.baseline import create_v1_file
from tests.support import make_v2
from tests.upstream_catalogs import REFERENCE_SQL, reference_statements

SHARED_REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "upstream-v1.sql"

# schema.md, "Version 2": the renames and nothing else
TABLE_RENAMES = {"sessions": "imaging_sessions"}
COLUMN_RENAMES = {
    "sessions": {"session_id": "id", "session_date": "date"},
    "fits_files": {"x": "width_pixels", "y": "height_pixels", "session_id": "imaging_session_id"},
}
INDEX_RENAMES = {"idx_session": "idx_fits_imaging_session"}
INTERNAL = ("sqlite_", "_compat_", "_migration_", "_mig_")


def schema(conn: sqlite3.Connection, *, rowid_alias_not_null: bool = False) -> dict[str, Any]:
    """Every table's columns, constraints, foreign keys and indexes, as SQLite reports them.

    ``rowid_alias_not_null``: report an INTEGER PRIMARY KEY as NOT NULL whatever its
    DDL says (SQLite never stores NULL in a rowid alias; SQLAlchemy always writes the
    NOT NULL that the reference's AUTOINCREMENT form leaves out)."""
    out: dict[str, Any] = {}
    tables = [
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        if not r[0].startswith(INTERNAL)
    ]
    for t in sorted(tables):
        cols = []
        for _cid, name, ctype, notnull, default, pk in conn.execute(f'PRAGMA table_info("{t}")'):
            if rowid_alias_not_null and pk == 1 and ctype.upper() == "INTEGER":
                notnull = 1
            cols.append((name, ctype, notnull, default, pk))
        unique, indexes = set(), {}
        for _, iname, is_unique, origin, _partial in conn.execute(f'PRAGMA index_list("{t}")'):
            icols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{iname}")'))
            if origin == "u":
                unique.add(icols)
            elif origin == "c":
                indexes[iname] = (icols, is_unique)
        fks = sorted((r[2], r[3], r[4], r[6]) for r in conn.execute(f'PRAGMA foreign_key_list("{t}")'))
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0]
        out[t] = {
            "columns": cols,
            "unique": unique,
            "foreign_keys": fks,
            "indexes": indexes,
            "autoincrement": "AUTOINCREMENT" in sql.upper(),
        }
    return out


def reference(*, v2: bool = False, rowid_alias_not_null: bool = False) -> dict[str, Any]:
    conn = sqlite3.connect(":memory:")
    for statement in reference_statements():
        conn.execute(statement)
    ref = schema(conn, rowid_alias_not_null=rowid_alias_not_null)
    return renamed(ref) if v2 else ref


def renamed(ref: dict[str, Any]) -> dict[str, Any]:
    """The reference with schema.md's Phase 3 renames applied, written out by hand."""
    out = {}
    for table, facts in ref.items():
        cmap = COLUMN_RENAMES.get(table, {})
        col = lambda c: cmap.get(c, c)
        new_table = TABLE_RENAMES.get(table, table)
        out[new_table] = {
            "columns": [(col(n), *rest) for n, *rest in facts["columns"]],
            "unique": {tuple(col(c) for c in u) for u in facts["unique"]},
            "foreign_keys": sorted(
                (TABLE_RENAMES.get(p, p), col(f), COLUMN_RENAMES.get(p, {}).get(to, to), d)
                for p, f, to, d in facts["foreign_keys"]
            ),
            "indexes": {
                INDEX_RENAMES.get(n, n): (tuple(col(c) for c in cs), u)
                for n, (cs, u) in facts["indexes"].items()
            },
            "autoincrement": facts["autoincrement"],
        }
    return out


def assert_same(have: dict[str, Any], want: dict[str, Any]) -> None:
    assert sorted(have) == sorted(want)
    for table in want:
        for fact in ("columns", "unique", "foreign_keys", "indexes", "autoincrement"):
            assert have[table][fact] == want[table][fact], (table, fact)


# sha256 of the shared reference/upstream-v1.sql this fixture is a copy of: checked in
# every checkout, and against the shared file itself where it is beside the checkout
UPSTREAM_V1_SHA256 = "c69718c90238c6a32adb9715f91a3b375acd83f8bec0e071bacd495967c9f8ce"


def test_the_fixture_copy_is_the_shared_reference() -> None:
    assert hashlib.sha256(REFERENCE_SQL.read_bytes()).hexdigest() == UPSTREAM_V1_SHA256
    if SHARED_REFERENCE.exists():
        assert REFERENCE_SQL.read_bytes() == SHARED_REFERENCE.read_bytes()


def test_the_reference_has_12_tables_and_25_indexes() -> None:
    ref = reference()
    assert len(ref) == 12
    assert sum(len(t["indexes"]) for t in ref.values()) == 25
    assert len(ref["fits_files"]["columns"]) == 74


def test_v1_baseline_equals_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    create_v1_file(path)
    conn = sqlite3.connect(path)
    assert_same(schema(conn), reference())
    assert conn.execute("SELECT version, description FROM schema_version").fetchall() == [
        (1, "Phase 2: models mapped onto legacy names")
    ]


def test_catalog_init_equals_the_reference_with_the_renames(tmp_path: Path) -> None:
    conn = sqlite3.connect(make_v2(tmp_path / "v2.db"))
    assert_same(schema(conn), reference(v2=True))
    assert [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]


def test_models_equal_the_reference_with_the_renames() -> None:
    """What the ORM maps is what the upstream created: a model column the catalog does
    not have fails every query of its class ("no such column")."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with engine.connect() as c:
        have = schema(c.connection.dbapi_connection, rowid_alias_not_null=True)
    assert_same(have, reference(v2=True, rowid_alias_not_null=True))


def test_the_migration_leaves_the_reference_with_the_renames(tmp_path: Path) -> None:
    """After the cut-over and retire, the catalog is catalog init's schema."""
    from tests.support import migrate, retire_now
    from tests.upstream_catalogs import build_upstream_catalog

    path = build_upstream_catalog(tmp_path / "c.db", "bare", files=50)
    migrate(path)
    retire_now(path)
    assert_same(schema(sqlite3.connect(path)), reference(v2=True))


def test_a_table_an_older_catalog_lacks_is_created_as_the_upstream_has_it(tmp_path: Path) -> None:
    from catalog.manager import DatabaseManager
    from tests.upstream_catalogs import create_upstream_v1

    path = create_upstream_v1(tmp_path / "older.db", "older")
    assert "processed_files" not in schema(sqlite3.connect(path))
    with DatabaseManager(path) as db:
        db.create_tables()
    have = schema(sqlite3.connect(path))
    assert have["processed_files"] == reference()["processed_files"]
    assert "imaging_sessions" not in have  # never a v2 table beside the v1 one
