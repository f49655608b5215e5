"""``migration verify`` where it matters most: on a read-only copy (nothing written or
created beside it), and on a damaged catalog (what is damaged, and which backup to
restore — not "run 'migration verify'" said back)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

from catalog.phase3.backup_profile import backup_catalog
from tests.support import build_phase
from tests.support.procs import BIN


def verify(db: Path, *, unprivileged: bool = False) -> subprocess.CompletedProcess:
    command = [str(BIN / "migration"), "verify", "--db", str(db)]
    if unprivileged and os.geteuid() == 0:
        # root writes through any permission bits; without CAP_DAC_OVERRIDE it cannot
        command = ["setpriv", "--bounding-set=-dac_override", "--inh-caps=-dac_override", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage(db: Path) -> None:
    """Overwrite one page in the middle of the file (a disk fault, a bad copy)."""
    size = db.stat().st_size
    page = 4096
    with db.open("r+b") as fh:
        fh.seek((size // page // 2) * page)
        fh.write(b"\xde\xad\xbe\xef" * (page // 4))


def test_verify_works_on_a_read_only_copy_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    source = build_phase(tmp_path / "src" / "fits_catalog.db", "window", files=200)
    folder = tmp_path / "readonly"
    folder.mkdir()
    db = folder / "fits_catalog.db"
    shutil.copyfile(source, db)
    before = digest(db)
    db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        proc = verify(db, unprivileged=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "All verification checks passed" in proc.stdout
        assert sorted(p.name for p in folder.iterdir()) == ["fits_catalog.db"]  # no -wal, -shm
        assert digest(db) == before
    finally:
        folder.chmod(stat.S_IRWXU)
        db.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_verify_explains_a_damaged_catalog_and_names_the_backup_to_restore(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "fits_catalog.db", "window", files=3000)
    info = backup_catalog(db, label="nightly")
    assert info.verified
    damage(db)
    proc = verify(db)
    assert proc.returncode == 1
    assert "✗" in proc.stdout and ("integrity_check" in proc.stdout or "the file can be read" in proc.stdout)
    assert f"migration restore {info.path} --db {db}" in proc.stdout.replace("\n", " ")
    assert "run 'migration verify'" not in proc.stdout + proc.stderr


def test_verify_of_a_damaged_catalog_without_a_backup_says_how_to_save_what_is_left(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "fits_catalog.db", "window", files=3000)
    damage(db)
    proc = verify(db)
    assert proc.returncode == 1
    assert "no verified backup" in proc.stdout and ".recover" in proc.stdout
