"""``compat scan``: finds every old (v1) name in Python and SQL, and nothing else.

The fixture tree ``scan_fixture/`` holds code with known old uses
(``app/old_models.py``, ``app/queries.py``, ``sql/v1_reports.sql``) and
look-alikes that must not be reported (``app/look_alikes.py``,
``sql/v2_reports.sql``, the ``CLEAN`` list in ``app/queries.py``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

import catalog
from catalog.phase3.declaration import PHASE3
from compat.renames import TableRename
from compat.scan import (
    PYTHON_ATTR,
    PYTHON_IMPORT,
    PYTHON_NAME,
    SQL_COLUMN,
    SQL_INDEX,
    SQL_TABLE,
    Finding,
    exit_code,
    format_findings,
)
from compat.scan import scan_paths as _scan_paths
from compat.scan import scan_python as _scan_python
from compat.scan import scan_sql as _scan_sql

# The scanner is generic: every scan here is for the catalog's declaration.
scan_paths = partial(_scan_paths, decl=PHASE3)
scan_python = partial(_scan_python, decl=PHASE3)
scan_sql = partial(_scan_sql, decl=PHASE3)

FIXTURE = Path(__file__).parent / "scan_fixture"

# (file, line, old, new): every old use in the fixture tree, and nothing more.
EXPECTED = {
    # app/old_models.py: imports, names, class and instance attributes, keywords
    ("app/old_models.py", 6, "Session", "ImagingSession"),
    ("app/old_models.py", 12, "FitsFile.x", "FitsFile.width_pixels"),  # select(...).where(FitsFile.x > 100)
    ("app/old_models.py", 13, "FitsFile.x", "FitsFile.width_pixels"),  # f in scalars(select(FitsFile)).all()
    (
        "app/old_models.py",
        17,
        "FitsFile.session_id",
        "FitsFile.imaging_session_id",
    ),  # param annotated FitsFile
    ("app/old_models.py", 21, "Session", "ImagingSession"),  # s.get(Session, …)
    ("app/old_models.py", 22, "ImagingSession.session_date", "ImagingSession.date"),  # bound from s.get
    ("app/old_models.py", 26, "FitsFile.x", "FitsFile.width_pixels"),  # constructor keywords
    ("app/old_models.py", 26, "FitsFile.y", "FitsFile.height_pixels"),
    ("app/old_models.py", 26, "FitsFile.session_id", "FitsFile.imaging_session_id"),
    ("app/old_models.py", 27, "FitsFile.y", "FitsFile.height_pixels"),  # frame = FitsFile(...)
    ("app/old_models.py", 32, "Session", "ImagingSession"),  # m.Session
    ("app/old_models.py", 32, "ImagingSession.session_date", "ImagingSession.date"),  # filter_by keyword
    ("app/old_models.py", 33, "ImagingSession.session_id", "ImagingSession.id"),  # loop over query(m.Session)
    ("app/old_models.py", 33, "FitsFile.session_id", "FitsFile.imaging_session_id"),  # m.FitsFile.session_id
    ("app/old_models.py", 37, "FitsFile.x", "FitsFile.width_pixels"),  # getattr(frame, "x")
    # app/queries.py: SQL in plain, triple-quoted, concatenated and f-string literals
    ("app/queries.py", 7, "sessions.session_id", "imaging_sessions.id"),
    ("app/queries.py", 7, "sessions.session_date", "imaging_sessions.date"),
    ("app/queries.py", 7, "sessions", "imaging_sessions"),
    ("app/queries.py", 10, "sessions.session_date", "imaging_sessions.date"),  # s.session_date
    ("app/queries.py", 12, "sessions", "imaging_sessions"),
    ("app/queries.py", 12, "fits_files.session_id", "fits_files.imaging_session_id"),
    ("app/queries.py", 12, "sessions.session_id", "imaging_sessions.id"),
    ("app/queries.py", 13, "fits_files.x", "fits_files.width_pixels"),  # f.x
    ("app/queries.py", 16, "sessions", "imaging_sessions"),
    ("app/queries.py", 16, "sessions.session_id", "imaging_sessions.id"),
    ("app/queries.py", 16, "sessions.session_date", "imaging_sessions.date"),
    ("app/queries.py", 17, "sessions.session_id", "imaging_sessions.id"),  # ON CONFLICT (session_id)
    ("app/queries.py", 17, "sessions.session_date", "imaging_sessions.date"),  # excluded.session_date
    ("app/queries.py", 21, "fits_files.x", "fits_files.width_pixels"),  # f-string
    ("app/queries.py", 21, "fits_files.y", "fits_files.height_pixels"),
    ("app/queries.py", 21, "fits_files.session_id", "fits_files.imaging_session_id"),
    # sql/v1_reports.sql: a view, an index, triggers (NEW./OLD.), DDL, DML
    ("sql/v1_reports.sql", 4, "sessions.session_date", "imaging_sessions.date"),
    ("sql/v1_reports.sql", 5, "sessions", "imaging_sessions"),
    ("sql/v1_reports.sql", 6, "fits_files.session_id", "fits_files.imaging_session_id"),
    ("sql/v1_reports.sql", 6, "sessions.session_id", "imaging_sessions.id"),
    ("sql/v1_reports.sql", 7, "sessions.session_date", "imaging_sessions.date"),
    ("sql/v1_reports.sql", 9, "idx_session", "idx_fits_imaging_session"),
    ("sql/v1_reports.sql", 9, "fits_files.session_id", "fits_files.imaging_session_id"),
    ("sql/v1_reports.sql", 11, "sessions.session_date", "imaging_sessions.date"),  # UPDATE OF
    ("sql/v1_reports.sql", 11, "sessions", "imaging_sessions"),  # ON sessions
    ("sql/v1_reports.sql", 12, "sessions.session_date", "imaging_sessions.date"),  # WHEN NEW.…
    ("sql/v1_reports.sql", 14, "sessions.session_date", "imaging_sessions.date"),  # NEW.session_date
    ("sql/v1_reports.sql", 15, "fits_files.session_id", "fits_files.imaging_session_id"),
    ("sql/v1_reports.sql", 15, "sessions.session_id", "imaging_sessions.id"),
    ("sql/v1_reports.sql", 20, "fits_files.x", "fits_files.width_pixels"),  # NEW.x, trigger ON fits_files
    ("sql/v1_reports.sql", 25, "sessions", "imaging_sessions"),  # REFERENCES sessions
    ("sql/v1_reports.sql", 25, "sessions.session_id", "imaging_sessions.id"),
    ("sql/v1_reports.sql", 29, "sessions", "imaging_sessions"),
    ("sql/v1_reports.sql", 29, "sessions.session_date", "imaging_sessions.date"),
    ("sql/v1_reports.sql", 29, "sessions.session_id", "imaging_sessions.id"),
    ("sql/v1_reports.sql", 31, "fits_files.x", "fits_files.width_pixels"),
    ("sql/v1_reports.sql", 31, "fits_files.y", "fits_files.height_pixels"),
}


@pytest.fixture(scope="module")
def fixture_findings() -> list[Finding]:
    return scan_paths([FIXTURE])


def _key(f: Finding) -> tuple[str, int, str, str]:
    return (f.path.relative_to(FIXTURE).as_posix(), f.line, f.old, f.new)


def test_fixture_tree_findings_are_exactly_the_known_old_uses(fixture_findings: list[Finding]) -> None:
    found = [_key(f) for f in fixture_findings]
    assert set(found) == EXPECTED
    counts = {k: found.count(k) for k in found}
    repeated = {k for k, n in counts.items() if n > 1}
    # the only repeats are two uses of one name on one line
    assert repeated == {
        ("app/queries.py", 7, "sessions.session_date", "imaging_sessions.date"),
        ("app/queries.py", 17, "sessions.session_date", "imaging_sessions.date"),
        ("sql/v1_reports.sql", 12, "sessions.session_date", "imaging_sessions.date"),
    }


def test_every_finding_points_at_the_old_name(fixture_findings: list[Finding]) -> None:
    for f in fixture_findings:
        line = f.path.read_text(encoding="utf-8").splitlines()[f.line - 1]
        at = line[f.col - 1 :].lstrip('"').lower()
        assert at.startswith(f.old.rsplit(".", 1)[-1].lower()), f.format()


@pytest.mark.parametrize(
    ("file", "line", "what"),
    [
        ("app/look_alikes.py", None, "sqlalchemy Session, point.x, self.session_id, prose, v2 names"),
        ("sql/v2_reports.sql", None, "CTEs named sessions and sessions_summary, alias sessions, comments"),
        ("app/old_models.py", 5, "import catalog.models as m is not itself an old name"),
        ("app/old_models.py", 20, "a parameter named session_id"),
        ("app/queries.py", 1, "a docstring that starts with 'Select the sessions'"),
        ("app/queries.py", 22, "SELECT x FROM {table}: the table is unknown"),
        *[("app/queries.py", n, "v2 and look-alike SQL in CLEAN") for n in range(26, 39)],
        ("sql/v1_reports.sql", 24, "frame_notes.session_id is another table's column"),
    ],
)
def test_look_alikes_are_not_reported(
    fixture_findings: list[Finding], file: str, line: int | None, what: str
) -> None:
    hits = [
        f.format()
        for f in fixture_findings
        if f.path.relative_to(FIXTURE).as_posix() == file and line in (None, f.line)
    ]
    assert hits == [], what


def test_kinds(fixture_findings: list[Finding]) -> None:
    kinds = {(_key(f)[0], f.line, f.col): f.kind for f in fixture_findings}
    assert kinds[("app/old_models.py", 6, 38)] == PYTHON_IMPORT
    assert kinds[("app/old_models.py", 21, 19)] == PYTHON_NAME
    assert kinds[("app/old_models.py", 32, 28)] == PYTHON_ATTR  # m.Session
    assert kinds[("app/old_models.py", 26, 52)] == PYTHON_ATTR  # x= keyword
    assert kinds[("app/queries.py", 7, 48)] == SQL_TABLE
    assert kinds[("app/queries.py", 7, 18)] == SQL_COLUMN
    assert kinds[("sql/v1_reports.sql", 9, 14)] == SQL_INDEX


def test_nothing_outside_py_and_sql_files_is_read(fixture_findings: list[Finding]) -> None:
    assert (FIXTURE / "NOTES.txt").exists()
    assert {f.path.suffix for f in fixture_findings} == {".py", ".sql"}


# -- every rename in compat.renames is found (no second copy of the names) ----
@pytest.mark.parametrize("table", PHASE3.tables, ids=lambda t: t.old)
def test_every_renamed_column_is_found_in_sql_and_python(table: TableRename) -> None:
    for column in table.columns:
        sql = scan_sql(f"SELECT {column.old} FROM {table.old} WHERE {table.old}.{column.old} = 1;")
        olds = [(f.old, f.new) for f in sql if f.kind == SQL_COLUMN]
        assert olds == [(f"{table.old}.{column.old}", f"{table.new}.{column.new}")] * 2
        py = scan_python(f"from catalog.models import {table.model}\n{table.model}.{column.old}\n")
        assert [(f.old, f.new) for f in py] == [
            (f"{table.model}.{column.old}", f"{table.model}.{column.new}")
        ]
    if table.old != table.new:
        assert [f.old for f in scan_sql(f"DELETE FROM {table.old}")] == [table.old]
    if table.model_alias:
        py = scan_python(f"from catalog.models import {table.model_alias}\n")
        assert [(f.old, f.new, f.kind) for f in py] == [(table.model_alias, table.model, PYTHON_IMPORT)]


# -- SQL resolution rules --------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "olds"),
    [
        # fits_files.id is not confused with sessions.session_id
        (
            "SELECT fits_files.id, sessions.session_id FROM fits_files "
            "JOIN sessions ON sessions.session_id = fits_files.session_id",
            [
                "sessions",
                "sessions.session_id",
                "sessions",
                "sessions",
                "sessions.session_id",
                "fits_files.session_id",
            ],
        ),
        ("SELECT x FROM fits_files", ["fits_files.x"]),
        ("SELECT x FROM cameras", []),
        ("SELECT x FROM fits_files JOIN cameras ON 1", []),  # x may be cameras'
        ("SELECT session_date FROM fits_files JOIN sessions ON 1", ["sessions.session_date", "sessions"]),
        ("SELECT session_id FROM fits_files AS f JOIN sessions AS s ON 1", ["sessions"]),  # ambiguous
        ("WITH sessions AS (SELECT 1 AS session_id) SELECT session_id FROM sessions", []),
        ("SELECT s.session_id FROM imaging_sessions AS s", []),
        ("SELECT processing_sessions.id FROM processing_sessions", []),
        ("SELECT 1 FROM main.sessions", ["sessions"]),
        ("SELECT 1 FROM aux.sessions", []),  # another attached database
        ('SELECT "Session_Date" FROM Sessions', ["sessions.session_date", "sessions"]),
        (
            "SELECT s.id FROM imaging_sessions AS s WHERE EXISTS "
            "(SELECT 1 FROM fits_files AS f WHERE f.session_id = s.id)",
            ["fits_files.session_id"],
        ),
        (
            "SELECT * FROM (SELECT session_id FROM sessions) AS t WHERE t.session_id = 1",
            ["sessions.session_id", "sessions"],
        ),  # t.session_id: a derived table's column
        ("UPDATE fits_files SET x = 1 FROM imaging_sessions AS s WHERE s.id = y", ["fits_files.x"]),
        ("UPDATE fits_files AS f SET x = s.date FROM cameras AS s", ["fits_files.x"]),  # SET target
        ("UPDATE fits_files SET x = 1", ["fits_files.x"]),
        ("ALTER TABLE fits_files ADD COLUMN y INTEGER", ["fits_files.y"]),
        ("ALTER TABLE sessions RENAME TO imaging_sessions", ["sessions"]),
        ("DROP INDEX idx_session", ["idx_session"]),
        ("SELECT sessions.* FROM sessions", ["sessions", "sessions"]),
    ],
)
def test_sql_resolution(sql: str, olds: list[str]) -> None:
    assert sorted(f.old for f in scan_sql(sql)) == sorted(olds)


def test_sql_positions_in_a_file() -> None:
    text = "-- sessions\nSELECT 1;\n\n  SELECT\n    x FROM fits_files;\n"
    assert [(f.line, f.col, f.old) for f in scan_sql(text)] == [(5, 5, "fits_files.x")]


def test_unparseable_sql_file_statements_fall_back_to_tokens() -> None:
    # sqlglot cannot read this; the token scan still resolves s.session_id
    found = scan_sql("SELECT s.session_id FROM sessions s WHERE s.session_date MATCHES ~~;")
    assert [f.old for f in found] == ["sessions.session_id", "sessions", "sessions.session_date"]


# -- Python inference rules --------------------------------------------------------
HEADER = "from catalog.models import FitsFile, ImagingSession, Session\n"


@pytest.mark.parametrize(
    ("body", "olds"),
    [
        ("FitsFile.x", ["FitsFile.x"]),
        ("Session.session_id", ["Session", "ImagingSession.session_id"]),
        ("ImagingSession.session_date", ["ImagingSession.session_date"]),
        ("point.x", []),
        ("f = FitsFile()\nf.x", ["FitsFile.x"]),
        ("f = FitsFile()\nf = object()\nf.x", []),
        ("def g(f: FitsFile | None):\n    f.session_id", ["FitsFile.session_id"]),
        ("def g(f: 'list[FitsFile]'):\n    f[0].y", ["FitsFile.y"]),
        ("def g(s):\n    return [f.x for f in s.query(FitsFile).all()]", ["FitsFile.x"]),
        ("def g(s):\n    return s.execute(select(FitsFile)).scalars().first().y", ["FitsFile.y"]),
        (
            "def g(s):\n    for i, n in enumerate(s.query(ImagingSession)):\n        n.session_date",
            ["ImagingSession.session_date"],
        ),
        ("def g(FitsFile):\n    FitsFile.x", []),  # a parameter shadows the import
        ("f = FitsFile()\ndef g():\n    return f.x", ["FitsFile.x"]),  # module global, read later
        ("class C:\n    f = FitsFile()\n    def m(self):\n        return f.x", []),  # class scope
        (
            "ImagingSession(session_id='a', session_date='b', telescope='c')",
            ["ImagingSession.session_id", "ImagingSession.session_date"],
        ),
        ("update(FitsFile).values(x=1)", ["FitsFile.x"]),
        ("x: Session", ["Session"]),
        ("def g(s: 'Session'): pass", ["Session"]),
        ("from catalog.models import Session as S\nS.session_id", ["Session", "ImagingSession.session_id"]),
    ],
)
def test_python_inference(body: str, olds: list[str]) -> None:
    found = [f for f in scan_python(HEADER + body) if f.line > 1]
    assert sorted(f.old for f in found) == sorted(olds)


def test_session_from_elsewhere_is_not_reported() -> None:
    src = (
        "from sqlalchemy.orm import Session\n"
        "def g(engine):\n"
        "    with Session(engine) as s:\n"
        "        return Session, s.session_id\n"
    )
    assert scan_python(src) == []


def test_relative_import_inside_the_models_package() -> None:
    src = "from . import Session\nfrom .imaging import FitsFile\nFitsFile.y\n"
    found = scan_python(src, package="catalog.models")
    assert [f.old for f in found] == ["Session", "FitsFile.y"]
    assert scan_python(src, package="elsewhere") == []


def test_python_string_positions_survive_escapes_and_non_ascii() -> None:
    src = 'é = 1; q = ("SELECT\\tx "  # note\n     f"FROM fits_files WHERE {é} = session_id")\n'
    assert [(f.line, f.col, f.old) for f in scan_python(src)] == [
        (1, 22, "fits_files.x"),
        (2, 36, "fits_files.session_id"),
    ]


# -- walking, output and exit code -----------------------------------------------
def test_walk_skips_tool_and_hidden_directories(tmp_path: Path) -> None:
    old = "SELECT session_id FROM sessions;\n"
    for folder in (".git", ".venv", "venv", "node_modules", "__pycache__", ".hidden", "src"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "q.sql").write_text(old)
    found = scan_paths([tmp_path])
    assert {f.path.parent.name for f in found} == {"src"}
    # a file given by name is read wherever it is
    assert scan_paths([tmp_path / ".hidden" / "q.sql"]) != []


def test_unreadable_files_are_reported_to_on_skip_and_missing_paths_raise(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def (:\n    'SELECT 1 FROM sessions'\n")
    # a file that names neither the models package nor a v1 table or index
    # cannot hold an old use, so it is not even parsed
    (tmp_path / "unrelated.py").write_text("def (:\n")
    (tmp_path / "notes.md").write_text("FitsFile.x\n")
    skipped: list[tuple[Path, str]] = []
    assert (
        scan_paths([tmp_path, tmp_path / "notes.md"], on_skip=lambda p, why: skipped.append((p, why))) == []
    )
    assert [p.name for p, _ in skipped] == ["broken.py", "notes.md"]
    with pytest.raises(FileNotFoundError):
        scan_paths([tmp_path / "no-such-dir"])


def test_format_and_exit_code() -> None:
    findings = scan_sql("SELECT x FROM fits_files;\nSELECT 1 FROM sessions;", "q.sql")
    assert format_findings(findings).splitlines() == [
        "q.sql:1:8  fits_files.x → fits_files.width_pixels",
        "q.sql:2:15  sessions → imaging_sessions",
        "2 old names in 1 file.",
    ]
    assert exit_code(findings) == 1
    assert format_findings([]) == "No old (v1) names found."
    assert exit_code([]) == 0


# -- this repository --------------------------------------------------------------
def test_the_catalog_package_uses_no_old_names() -> None:
    """``catalog`` never spells an old name: the synonyms (``old_name_synonyms``)
    and the ``Session`` alias (``_DeprecatedAlias``) in compat/synonyms.py are
    generated from ``compat.renames`` at import time, and ``catalog.schema`` reads
    table names from it too. So the expected result is empty, and a finding here
    is new code that still uses a v1 name. The one exception is the v1 schema
    itself: the upstream's DDL that the Phase 3 migration starts from."""
    found = scan_paths([Path(catalog.__file__).parent])
    assert {f.path.name for f in found} <= {"upstream_v1.sql"}
    assert [f for f in found if f.path.name != "upstream_v1.sql"] == []
