"""Bad input to ``migration run``: each case fails before changing anything.

Every case runs the real console script and asserts: a non-zero exit (the
documented code where there is one), stderr is one paragraph starting with
"Error:", no traceback, and the database untouched — the file's bytes
(sha256, taken on a closed, checkpointed file) and nothing new beside it (no
backup, no left-over -wal content). The one input that is *not* an error, a v1
catalog without ``schema_version``, gets its baseline recorded and migrates.

The runs use the default path, with a backup: the prerequisites come before
the backup, so a failing run must not leave one behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from compat.lifecycle import checks
from tests.support import fill_v1, make_v1, migrate
from tests.support.checks import checkpoint, file_sha256, fingerprint
from tests.support.cli import MIGRATION, assert_error_paragraph, cli_env, one_json, run_migration

RUN = ["run", "--yes"]  # the default path, backup included


# -- helpers ----------------------------------------------------------------------------
def v1_catalog(path: Path, files: int = 300) -> Path:
    make_v1(path)
    fill_v1(path, files)
    checkpoint(path)
    return path


class Untouched:
    """The file's bytes and its folder's entries before a command, compared after."""

    def __init__(self, db: Path, *, sqlite: bool = True, may_create: tuple[str, ...] = ()):
        self.db, self.sqlite, self.may_create = db, sqlite, set(may_create)
        assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
        self.sha = file_sha256(db)
        self.logical = fingerprint(db) if sqlite else None
        self.entries = self._entries()

    def _entries(self) -> set[str]:
        return {p.name for p in self.db.parent.iterdir()} - {f"{self.db.name}-wal", f"{self.db.name}-shm"}

    def check(self) -> None:
        wal = Path(f"{self.db}-wal")
        leftover = wal.stat().st_size if wal.exists() else 0
        assert leftover == 0, f"the command left {leftover} bytes of uncheckpointed WAL"
        new = self._entries() - self.entries - self.may_create
        assert not new, f"the failed command created {sorted(new)} beside the database"
        if self.sqlite:
            assert fingerprint(self.db) == self.logical, "schema or rows changed"
        assert file_sha256(self.db) == self.sha, "the database file's bytes changed"


def run_bad(
    db: Path, *extra: str, env: dict[str, str] | None = None, **kw
) -> subprocess.CompletedProcess[str]:
    return run_migration(*RUN, *extra, "--db", str(db), env=env, **kw)


# -- not a catalog at all ---------------------------------------------------------------
def test_not_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "fits_catalog.db"
    db.write_text("SIMPLE  =                    T / this is a FITS header, not a database\n" * 80)
    guard = Untouched(db, sqlite=False)
    proc = run_bad(db)
    assert_error_paragraph(proc, code=3, contains=["not a SQLite database"])
    guard.check()


def test_corrupt_file_fails_integrity_check(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db", files=3000)
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    leaves = [
        r[0]
        for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'fits_files' AND pagetype = 'leaf' ORDER BY pageno"
        )
    ]
    conn.close()
    assert len(leaves) > 10
    victim = leaves[len(leaves) // 2]  # a table b-tree leaf page in the middle of the file
    data = bytearray(db.read_bytes())
    offset = (victim - 1) * page_size
    assert data[offset] == 0x0D, "not a table b-tree leaf page"
    data[offset + 8 : offset + 8 + 64] = b"\xff\xee" * 32  # its cell pointer array
    db.write_bytes(bytes(data))
    conn = sqlite3.connect(db)
    problems = conn.execute("PRAGMA integrity_check").fetchall()
    conn.close()
    assert problems != [("ok",)] and f"page {victim}" in problems[0][0]

    guard = Untouched(db, sqlite=False)
    proc = run_bad(db)
    text = assert_error_paragraph(proc, code=3, contains=["integrity check", "nothing was changed"])
    assert f"page {victim}" in text  # says what SQLite found
    guard.check()


def test_already_at_version_2(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    migrate(db)
    checkpoint(db)
    guard = Untouched(db)
    proc = run_bad(db)
    assert_error_paragraph(proc, code=4, contains=["already at schema version 2", "nothing was changed"])
    guard.check()


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_some_other_sqlite_database(tmp_path: Path, journal: str) -> None:
    """No schema_version, no v1 tables: not a catalog. Most SQLite files in the
    wild use the default rollback journal; the failed run must not switch them
    to WAL (that rewrites the file header) while saying nothing changed."""
    db = tmp_path / "fits_catalog.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO notes (body) VALUES (?)", [(f"n{i}",) for i in range(50)])
    conn.commit()
    conn.close()
    guard = Untouched(db)
    header = db.read_bytes()[18:20]  # file format write/read versions: 1 = rollback journal, 2 = WAL
    proc = run_bad(db)
    assert_error_paragraph(proc, code=4, contains=["neither the v1 tables", "nothing was changed"])
    assert db.read_bytes()[18:20] == header, (
        f"the failed run switched the database to journal_mode=WAL (header bytes 18-19 "
        f"{header.hex()} -> {db.read_bytes()[18:20].hex()}) while saying nothing was changed"
    )
    guard.check()


# -- a v1 catalog without schema_version is not an error -----------------------------------
def test_v1_without_schema_version_gets_its_baseline_then_migrates(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE schema_version")
    conn.commit()
    conn.close()
    plan = one_json(run_migration("plan", "--json", "--db", str(db)).stdout)
    assert [s["name"] for s in plan["stages"]][:1] == ["baseline"]
    proc = run_migration("run", "--yes", "--no-backup", "--db", str(db))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "baseline" in proc.stdout
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()
    conn.close()
    assert [v for v, _ in rows] == [1, 2], rows
    assert run_migration("verify", "--db", str(db)).returncode == 0


def test_v1_without_planner_statistics_migrates_and_verifies(tmp_path: Path) -> None:
    """SQLAlchemy never runs ANALYZE, so a real v1 catalog usually has no
    sqlite_stat1. 'migration verify' wants statistics from 1,000 rows on and the
    issue says they are "kept or refreshed": the run must leave a database that
    passes its own verification (exit 0), not report success and exit 1."""
    db = v1_catalog(tmp_path / "fits_catalog.db", files=2000)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() == (0,)
    conn.close()
    proc = run_migration("run", "--yes", "--no-backup", "--json", "--db", str(db))
    failed = [c for c in one_json(proc.stdout)["verification"]["checks"] if not c["ok"]]
    assert proc.returncode == 0 and not failed, f"exit {proc.returncode}, failed checks {failed}"
    assert run_migration("verify", "--db", str(db)).returncode == 0


# -- data the migration must not carry over silently ---------------------------------------
def test_duplicate_md5sum_is_listed(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX ix_fits_files_md5sum")
    for md5 in ("md5-00000007", "md5-00000011", "md5-00000011"):
        conn.execute(
            "INSERT INTO fits_files (file, folder, x, y, session_id, md5sum) "
            "VALUES ('dup.fits', '/raw', 1, 1, '20240312_ASI2600MM_RC8', ?)",
            (md5,),
        )
    conn.commit()
    conn.close()
    checkpoint(db)
    guard = Untouched(db)
    proc = run_bad(db)
    text = assert_error_paragraph(proc, code=9, contains=["duplicate md5sum", "nothing was changed"])
    assert "md5-00000007 (2×)" in text and "md5-00000011 (3×)" in text, text
    guard.check()


def test_orphaned_foreign_keys_are_listed(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    conn = sqlite3.connect(db)  # foreign_keys is off by default in a plain connection
    ids = []
    for n in range(2):
        cur = conn.execute(
            "INSERT INTO fits_files (file, folder, x, y, session_id, md5sum) "
            "VALUES ('orphan.fits', '/raw', 1, 1, 'NO_SUCH_SESSION', ?)",
            (f"orphan-{n}",),
        )
        ids.append(cur.lastrowid)
    conn.commit()
    conn.close()
    checkpoint(db)
    guard = Untouched(db)
    proc = run_bad(db)
    text = assert_error_paragraph(
        proc, code=9, contains=["2 rows reference rows that do not exist", "nothing was changed"]
    )
    for rowid in ids:
        assert f"fits_files rowid {rowid} -> sessions" in text, text
    guard.check()


def test_broken_user_view_is_named(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE scratch (a INTEGER)")
    conn.execute("CREATE VIEW v_my_broken_view AS SELECT a FROM scratch")
    conn.execute("DROP TABLE scratch")  # the view stays, referencing a missing table
    conn.commit()
    conn.close()
    checkpoint(db)
    guard = Untouched(db)
    proc = run_bad(db)
    assert_error_paragraph(proc, code=9, contains=["v_my_broken_view", "nothing was changed"])
    guard.check()


def test_broken_user_trigger_is_named(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE scratch (a INTEGER)")
    conn.execute(
        "CREATE TRIGGER t_my_broken_trigger AFTER INSERT ON fits_files "
        "BEGIN INSERT INTO scratch (a) VALUES (NEW.id); END"
    )
    conn.execute("DROP TABLE scratch")
    conn.commit()
    conn.close()
    checkpoint(db)
    guard = Untouched(db)
    proc = run_bad(db)
    text = assert_error_paragraph(proc, code=9, contains=["t_my_broken_trigger"])
    assert re.search(r"nothing (was )?changed", text, re.I), text
    guard.check()


# -- the environment ----------------------------------------------------------------------
def test_locked_by_another_writer_longer_than_the_timeout(tmp_path: Path) -> None:
    """Reads do not wait in WAL mode, so the run gets as far as its first write
    (after the backup, on the default path: the backup may stay, the database
    must not change)."""
    db = v1_catalog(tmp_path / "fits_catalog.db")
    guard = Untouched(db, may_create=("backups",))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
            "c.execute('ROLLBACK')\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        # the holder keeps the lock until we close its stdin below: a command that
        # waited for it instead of giving up after its busy timeout would never return
        proc = run_bad(db, env=cli_env(CATALOG_BUSY_TIMEOUT_MS="500"))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    text = assert_error_paragraph(proc, code=5, contains=["waited to", "nothing"])
    assert "was changed" in text.lower(), text
    checkpoint(db)
    guard.check()


def test_no_terminal_and_no_yes_refuses_before_changing_anything(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    guard = Untouched(db)
    proc = run_migration("run", "--db", str(db), stdin=subprocess.DEVNULL)
    assert_error_paragraph(proc, code=2, contains=["no terminal", "--yes"])
    guard.check()


# -- read-only file or folder ----------------------------------------------------------------
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def _without_dac_override() -> list[str]:
    """How to run the CLI so that file modes apply.

    Root bypasses permission bits through CAP_DAC_OVERRIDE (os.access(W_OK) is
    True for root whatever the mode), so chmod alone proves nothing in a root test
    run; and 'nobody' cannot reach this interpreter (it lives under /root). Dropping
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set keeps uid 0 but
    makes the kernel — and os.access, which the checks use — honour the modes.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip(
            "running as root and util-linux setpriv is missing: root ignores "
            "permission bits, so a read-only file cannot be simulated"
        )
    probe = subprocess.run([*DROP_DAC, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(
            f"cannot drop CAP_DAC_OVERRIDE here ({probe.stderr.strip()}); root "
            f"ignores permission bits, so a read-only file cannot be simulated"
        )
    return DROP_DAC


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_file_or_folder(tmp_path: Path, what: str) -> None:
    prefix = _without_dac_override()
    folder = tmp_path / "catalog"
    folder.mkdir()
    db = v1_catalog(folder / "fits_catalog.db")
    guard = Untouched(db)
    if what == "file":
        db.chmod(0o444)  # the folder stays writable
    else:
        folder.chmod(0o555)  # the file stays writable; -wal/-shm/backups cannot be created
    try:
        proc = subprocess.run(
            [*prefix, MIGRATION, *RUN, "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env=cli_env(),
        )
        assert_error_paragraph(proc, code=6, contains=["read-only", what])
        assert re.search(r"nothing (was )?changed", proc.stderr, re.I), proc.stderr
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
    guard.check()


def _unshare_available() -> str | None:
    if shutil.which("unshare") is None:
        return "util-linux unshare is not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "true"] if os.geteuid() else ["unshare", "--mount", "true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot create a private mount namespace here ({probe.stderr.strip()})"
    return None


def _in_private_mount_ns(script: str, *, timeout: float = 120) -> dict:
    """Run a shell script in a private mount namespace (mounts vanish with it); the
    script's last stdout line is JSON."""
    why = _unshare_available()
    if why:
        pytest.skip(why)
    cmd = ["unshare", "--mount"] + (["--map-root-user"] if os.geteuid() else [])
    proc = subprocess.run(
        [*cmd, "sh", "-ec", script], capture_output=True, text=True, timeout=timeout, env=cli_env()
    )
    if proc.returncode != 0 and "mount:" in proc.stderr:
        pytest.skip(f"mount refused in the namespace: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


DRIVER = """
import hashlib, json, subprocess, sys
db = sys.argv[1]
def sha():
    return hashlib.sha256(open(db, 'rb').read()).hexdigest()
before = sha()
p = subprocess.run(sys.argv[2:] + ['--db', db], capture_output=True, text=True, timeout=120,
                   stdin=subprocess.DEVNULL)
print(json.dumps({'rc': p.returncode, 'stdout': p.stdout, 'stderr': p.stderr,
                  'before': before, 'after': sha()}))
"""


def _as_completed(result: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], result["rc"], result["stdout"], result["stderr"])


def test_read_only_filesystem_as_root(tmp_path: Path) -> None:
    """A folder bind-mounted read-only: even root cannot write (EROFS, and
    os.access reports it), which is the situation of a catalog on a read-only
    share or snapshot."""
    folder = tmp_path / "share"
    folder.mkdir()
    db = v1_catalog(folder / "fits_catalog.db")
    guard = Untouched(db)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    result = _in_private_mount_ns(
        f"mount --bind {folder} {folder}\n"
        f"mount -o remount,bind,ro {folder}\n"
        f"{sys.executable} {driver} {db} {MIGRATION} {' '.join(RUN)}\n"
    )
    assert_error_paragraph(_as_completed(result), code=6, contains=["read-only", "nothing was changed"])
    assert result["before"] == result["after"]
    guard.check()


# -- free disk ---------------------------------------------------------------------------
def test_check_disk_refuses_an_absurd_requirement(tmp_path: Path) -> None:
    db = v1_catalog(tmp_path / "fits_catalog.db")
    assert checks.check_disk(db) > db.stat().st_size  # the default requirement passes here
    with pytest.raises(checks.DiskSpaceError) as caught:
        checks.check_disk(db, min_free_bytes=2**62)
    message = caught.value.message
    assert message.startswith("Too little free disk") and "Nothing was changed" in message
    assert "\n" not in message
    assert caught.value.exit_code == 8


def test_too_little_free_disk_through_the_cli(tmp_path: Path) -> None:
    """The CLI has no option or variable for the free-space requirement, so the
    catalog is put on a 4 MiB tmpfs (in a private mount namespace): the check
    wants about 1.3x the database + 32 MiB free before the backup and the WAL."""
    folder = tmp_path / "small"
    folder.mkdir()
    src = v1_catalog(tmp_path / "src.db")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    db = folder / "fits_catalog.db"
    result = _in_private_mount_ns(
        f"mount -t tmpfs -o size=4m tmpfs {folder}\n"
        f"cp {src} {db}\n"
        f"{sys.executable} {driver} {db} {MIGRATION} {' '.join(RUN)}\n"
    )
    assert_error_paragraph(
        _as_completed(result), code=8, contains=["too little free disk", "nothing was changed"]
    )
    assert result["before"] == result["after"]
