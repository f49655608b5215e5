"""The ``catalog`` commands through the real console script, on v2 and v1 catalogs.

The sample (60 FITS files, three nights, three rigs and three spellings of
IMAGETYP) is cataloged into a v2 database (schema as ``catalog init`` makes
it) and a v1 database (the migration's baseline). Every answer is checked
against the FITS headers as astropy reads them, never against the project's
own reading of them. Read-only commands must leave the catalog's rows and
bytes exactly as they were.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import click
import pytest
from astropy.io import fits as afits
from click.testing import CliRunner

from catalog.sample import write_sample
from tests.cli.conftest import (
    SAMPLE_FILES,
    SCHEMAS,
    Run,
    Sample,
    Workspace,
    assert_clean,
    base_env,
    copy_db,
    counts,
    file_digest,
    make_v1_db,
    make_workspace,
    query,
    read_expected,
    run_all,
    run_catalog,
    run_command,
    snapshot,
)


@pytest.fixture(params=SCHEMAS)
def schema(request: pytest.FixtureRequest) -> str:
    return request.param


def _tables(db: Path) -> set[str]:
    return {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(db: Path, table: str) -> set[str]:
    return {row[1] for row in query(db, f'PRAGMA table_info("{table}")')}


def _session_to_ask_about(sample: Sample, schema: str) -> str:
    # v2: the N.I.N.A. night (filters L/R/G/B); v1: the SGP night ("Light Frame",
    # sexagesimal site), so the two schemas are asked about different rigs.
    nights = sample.nights
    return sample.session_ids()[nights[0] if schema == "v2" else nights[-1]]


def read_only(db: Path, env: dict[str, str], args: tuple, *, text: bool) -> dict[str, Run]:
    """Run a read-only command as JSON (and as text if asked), in parallel, and check
    that the catalog's rows and bytes did not change."""
    before = (snapshot(db), file_digest(db))
    jobs = {"json": lambda: run_catalog(*args, "--db", db, "--json", env=env)}
    if text:
        jobs["text"] = lambda: run_catalog(*args, "--db", db, env=env)
    runs = run_all(jobs)
    for run in runs.values():
        assert_clean(run)
    assert snapshot(db) == before[0], f"'catalog {' '.join(map(str, args))}' changed the catalog"
    assert file_digest(db) == before[1], f"'catalog {' '.join(map(str, args))}' rewrote the file"
    return runs


# --- catalog sample -----------------------------------------------------------------------------


def test_sample_command(sample: Sample, cli_env: dict[str, str], tmp_path: Path) -> None:
    """``catalog sample --files N --raw-dir D`` writes N realistic FITS files (the
    same bytes as the generator the other tests use, for the same seed)."""
    raw_dir = tmp_path / "raw"
    run = run_catalog("sample", "--files", str(SAMPLE_FILES), "--raw-dir", raw_dir, env=cli_env)
    assert_clean(run)
    assert f"Wrote {SAMPLE_FILES} FITS files" in run.stdout
    written = sorted(p.relative_to(raw_dir) for p in raw_dir.rglob("*.fits"))
    assert written == sorted(f.path.relative_to(sample.raw_dir) for f in sample.facts)
    assert all(file_digest(raw_dir / p) == file_digest(sample.raw_dir / p) for p in written)
    facts = read_expected(raw_dir)  # readable by astropy, realistic enough to catalog
    assert len({f.night for f in facts}) >= 3
    assert {f.frame_type for f in facts} == {"LIGHT", "DARK", "FLAT", "BIAS"}
    assert len({f.camera for f in facts}) == 3
    assert len({f.md5 for f in facts}) == SAMPLE_FILES


# --- catalog init + catalog raw (writes), on fresh databases -----------------------------------


def _check_cataloged(db: Path, schema: str, sample: Sample) -> None:
    if schema == "v1":  # the v1 names: sessions.session_id, fits_files.x/y/session_id
        rows = query(db, "SELECT folder, file, md5sum, x, y, session_id FROM fits_files")
        sessions = query(db, "SELECT session_id, session_date FROM sessions")
    else:
        rows = query(
            db, "SELECT folder, file, md5sum, width_pixels, height_pixels, imaging_session_id FROM fits_files"
        )
        sessions = query(db, "SELECT id, date FROM imaging_sessions")
    assert set(rows) == {
        (str(f.path.parent), f.path.name, f.md5, f.width, f.height, f.session_id) for f in sample.facts
    }
    assert set(sessions) == {(sid, night) for night, sid in sample.session_ids().items()}


def _check_catalog_result(run: Run, sample: Sample) -> None:
    assert_clean(run)
    result = run.json()
    assert result["added"] == SAMPLE_FILES
    assert result["duplicates"] == 0
    assert result["failed"] == []
    assert result["sessions_created"] == len(sample.nights)


def _again(db: Path, raw_dir: Path, env: dict[str, str], where: Path) -> tuple[Run, Run, Path, Path]:
    """``init --json`` and ``catalog raw --json`` once more, each on its own copy."""
    init_db = copy_db(db, where / "again-init.db")
    catalog_db = copy_db(db, where / "again-catalog.db")
    runs = run_all(
        {
            "init": lambda: run_catalog("init", "--db", init_db, "--json", env=env),
            "catalog": lambda: run_catalog(
                "catalog", "raw", "--db", catalog_db, "--raw-dir", raw_dir, "--json", env=env
            ),
        }
    )
    return runs["init"], runs["catalog"], init_db, catalog_db


def _check_again(init: Run, catalog: Run, init_db: Path, catalog_db: Path, before: Any, schema: str) -> None:
    assert_clean(init)
    data = init.json()
    assert (data["layout"], data["schema_version"]) == (schema, 1 if schema == "v1" else 2)
    assert snapshot(init_db) == before, "init again changed the catalog"
    assert_clean(catalog)
    result = catalog.json()
    assert (result["added"], result["sessions_created"], result["failed"]) == (0, 0, [])
    assert snapshot(catalog_db) == before, "catalog raw again changed the catalog"


def test_init_then_catalog_raw_v2(sample: Sample, cli_env: dict[str, str], tmp_path: Path) -> None:
    """``catalog init`` makes schema v2 (schema_version rows 1 and 2), ``catalog raw``
    catalogs every file; running either again changes nothing."""
    db = tmp_path / "catalogs" / "fits_catalog.db"
    init = run_catalog("init", "--db", db, env=cli_env)
    assert_clean(init)
    assert "schema version 2" in init.stdout
    tables = _tables(db)
    assert {"imaging_sessions", "fits_files", "schema_version", "system_settings"} <= tables
    assert "sessions" not in tables
    assert {"width_pixels", "height_pixels", "imaging_session_id"} <= _columns(db, "fits_files")
    versions = query(db, "SELECT version, description FROM schema_version ORDER BY version")
    assert [v for v, _ in versions] == [1, 2]
    assert "Phase 3" in versions[1][1]
    assert query(db, "PRAGMA journal_mode") == [("wal",)]

    run = run_catalog("catalog", "raw", "--db", db, "--raw-dir", sample.raw_dir, "--json", env=cli_env)
    _check_catalog_result(run, sample)
    _check_cataloged(db, "v2", sample)
    _check_again(*_again(db, sample.raw_dir, cli_env, tmp_path), snapshot(db), "v2")


def test_catalog_raw_v1(sample: Sample, cli_env: dict[str, str], tmp_path: Path) -> None:
    """``catalog raw`` on a v1 database writes the v1 tables and columns; ``init`` on it
    keeps it v1 (no ``imaging_sessions`` beside ``sessions``); both again change nothing."""
    db = make_v1_db(tmp_path / "fits_catalog.db")
    run = run_catalog("catalog", "raw", "--db", db, "--raw-dir", sample.raw_dir, "--json", env=cli_env)
    _check_catalog_result(run, sample)
    _check_cataloged(db, "v1", sample)
    assert "imaging_sessions" not in _tables(db)
    _check_again(*_again(db, sample.raw_dir, cli_env, tmp_path), snapshot(db), "v1")


# --- scan ------------------------------------------------------------------------------------


def test_scan_of_a_cataloged_folder(
    catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str], schema: str
) -> None:
    """Nothing new, missing or changed; writes nothing. (v2 as text here; the
    precedence test below runs it as JSON on v2.)"""
    db = catalogs[schema]
    args = ("scan", "raw", "--raw-dir", sample.raw_dir)
    if schema == "v1":
        report = read_only(db, cli_env, args, text=False)["json"].json()
        assert report["raw_dir"] == str(sample.raw_dir)
        assert (report["new"], report["missing"], report["changed"]) == ([], [], [])
        assert report["unchanged"] == SAMPLE_FILES
    else:
        before = (snapshot(db), file_digest(db))
        run = run_catalog(*args, "--db", db, env=cli_env)
        assert_clean(run)
        assert (snapshot(db), file_digest(db)) == before
        for label, n in (("new", 0), ("missing", 0), ("changed", 0), ("unchanged", SAMPLE_FILES)):
            assert re.search(rf"^\s*{label}:\s+{n}\b", run.stdout, re.M), str(run)


@pytest.fixture
def workspace(catalogs: dict[str, Path], sample: Sample, schema: str, tmp_path: Path) -> Workspace:
    return make_workspace(schema, catalogs[schema], sample, tmp_path)


def test_scan_finds_new_missing_and_changed(workspace: Workspace, cli_env: dict[str, str]) -> None:
    files = sorted(workspace.raw_dir.rglob("*.fits"))
    deleted, rewritten = files[3], files[10]
    deleted.unlink()
    before_md5 = file_digest(rewritten)
    with afits.open(rewritten, mode="update") as hdul:  # same path, same size, new bytes
        hdul[0].header["OBJECT"] = "CHANGED"
    assert file_digest(rewritten) != before_md5
    (added,) = write_sample(workspace.raw_dir / "later", 1, seed=11, start=date(2024, 6, 1))

    snap, digest = snapshot(workspace.db), file_digest(workspace.db)
    base = ("scan", "raw", "--db", workspace.db, "--raw-dir", workspace.raw_dir, "--json")
    runs = run_all(
        {
            "plain": lambda: run_catalog(*base, env=cli_env),
            "verify": lambda: run_catalog(*base, "--verify", env=cli_env),
        }
    )
    for run in runs.values():
        assert_clean(run)
    plain, verify = runs["plain"].json(), runs["verify"].json()
    for report in (plain, verify):
        assert report["new"] == [str(added)]
        assert report["missing"] == [str(deleted)]
    assert str(rewritten) not in plain["new"] + plain["missing"]
    assert plain["unchanged"] + len(plain["changed"]) == SAMPLE_FILES - 1
    assert verify["changed"] == [str(rewritten)]
    assert verify["unchanged"] == SAMPLE_FILES - 2
    # a scan writes nothing
    assert snapshot(workspace.db) == snap
    assert file_digest(workspace.db) == digest


# --- catalog raw: duplicates and unreadable files ----------------------------------------------


def test_catalog_skips_duplicates_and_unreadable_files(workspace: Workspace, cli_env: dict[str, str]) -> None:
    files = sorted(workspace.raw_dir.rglob("*.fits"))
    duplicate = files[0].parent / "zz_copy_of_first.fits"  # same bytes, new name
    shutil.copyfile(files[0], duplicate)
    # sorted before the good new file, so the run must go on past them
    garbage = workspace.raw_dir / "00_garbage.fits"
    garbage.write_bytes(os.urandom(4000))
    truncated = workspace.raw_dir / "00_truncated.fits"
    truncated.write_bytes(files[1].read_bytes()[:1000])  # cut inside the header
    (good,) = write_sample(workspace.raw_dir / "zz_later", 1, seed=5, start=date(2024, 6, 1))

    base = ("catalog", "raw", "--db", workspace.db, "--raw-dir", workspace.raw_dir)
    run = run_catalog(*base, "--json", env=cli_env)
    assert_clean(run)
    result = run.json()
    assert result["added"] == 1
    assert result["duplicates"] == 1
    assert result["sessions_created"] == 1
    failed = {item["path"]: item["error"] for item in result["failed"]}
    assert set(failed) == {str(garbage), str(truncated)}
    for path, error in failed.items():
        assert Path(path).name in error
    assert garbage.name in run.stderr and truncated.name in run.stderr, f"not logged:\n{run}"

    names = {name for (name,) in query(workspace.db, "SELECT file FROM fits_files")}
    assert len(names) == SAMPLE_FILES + 1
    assert good.name in names
    assert not {duplicate.name, garbage.name, truncated.name} & names
    # (the text report of skipped files: tests/catalog/test_bad_input.py)


# --- list imaging-sessions -------------------------------------------------------------------


def test_list_recent_imaging_sessions(
    catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str], schema: str
) -> None:
    runs = read_only(
        catalogs[schema], cli_env, ("list", "imaging-sessions", "--recent", "2"), text=schema == "v2"
    )
    rows = runs["json"].json()
    ids = sample.session_ids()
    newest = sorted(sample.nights, reverse=True)
    assert [r["date"] for r in rows] == newest[:2]
    assert [r["id"] for r in rows] == [ids[n] for n in newest[:2]]
    for row in rows:
        files = sample.of_session(row["id"])
        assert row["files"] == len(files)
        assert (row["camera"], row["telescope"]) == (files[0].camera, files[0].telescope)
    if "text" in runs:
        text = runs["text"].stdout
        assert "Imaging sessions (2)" in text
        positions = [text.index(ids[n]) for n in newest[:2]]
        assert positions == sorted(positions), "newest first"
        assert ids[newest[-1]] not in text


# --- imaging-session info ----------------------------------------------------------------------


def _groups(files: list[Any]) -> dict[tuple[str, str | None], tuple[int, float]]:
    groups: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    for f in files:
        groups[(f.frame_type, f.filter)].append(f.exposure)
    return {k: (len(v), round(sum(v), 3)) for k, v in groups.items()}


def test_imaging_session_info(
    catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str], schema: str
) -> None:
    sid = _session_to_ask_about(sample, schema)
    runs = read_only(catalogs[schema], cli_env, ("imaging-session", "info", sid), text=schema == "v2")
    data = runs["json"].json()
    files = sample.of_session(sid)
    assert data["id"] == sid
    assert data["date"] == files[0].night
    assert (data["camera"], data["telescope"]) == (files[0].camera, files[0].telescope)
    assert data["summary"]["files"] == len(files)
    got = {
        (g["frame_type"], g["filter"]): (g["files"], round(g["exposure_seconds"], 3))
        for g in data["summary"]["groups"]
    }
    assert got == _groups(files)
    if "text" in runs:
        text = runs["text"].stdout
        assert f"Imaging session {sid}" in text
        assert re.search(rf"^\s*files\s+{len(files)}\s*$", text, re.M), str(runs["text"])


# --- list raw ------------------------------------------------------------------------------------


def test_list_raw_of_one_imaging_session(
    catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str], schema: str
) -> None:
    sid = _session_to_ask_about(sample, schema)
    runs = read_only(
        catalogs[schema], cli_env, ("list", "raw", "--imaging-session", sid), text=schema == "v2"
    )
    rows = runs["json"].json()
    expected = {str(f.path): f for f in sample.of_session(sid)}
    got = {str(Path(r["folder"]) / r["file"]): r for r in rows}
    assert set(got) == set(expected)
    for key, row in got.items():
        facts = expected[key]
        assert row["md5sum"] == facts.md5
        assert (row["width_pixels"], row["height_pixels"]) == (facts.width, facts.height)
        assert row["frame_type"] == facts.frame_type
        assert row["imaging_session_id"] == sid
    stamps = [r["obs_timestamp"] for r in rows]
    assert stamps == sorted(stamps)
    if "text" in runs:
        text = runs["text"].stdout
        assert f"Raw files ({len(expected)})" in text
        for facts in expected.values():
            assert facts.path.name in text


# --- stats ---------------------------------------------------------------------------------------------


def test_stats(catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str], schema: str) -> None:
    runs = read_only(catalogs[schema], cli_env, ("stats", "raw"), text=schema == "v2")
    data = runs["json"].json()
    facts = sample.facts
    by_type = counts([f.frame_type for f in facts])
    assert data["total_files"] == SAMPLE_FILES
    assert data["total_imaging_sessions"] == len(sample.nights)
    assert data["by_frame_type"] == by_type
    assert data["by_camera"] == counts([f.camera for f in facts])
    assert data["by_telescope"] == counts([f.telescope for f in facts])
    assert data["by_filter"] == counts([f.filter or "unknown" for f in facts])
    assert data["by_object"] == counts([f.object or "unknown" for f in facts])
    light = sum(f.exposure for f in facts if f.frame_type == "LIGHT")
    assert data["light_exposure_hours"] == pytest.approx(light / 3600, abs=0.006)
    assert (data["first_night"], data["last_night"]) == (sample.nights[0], sample.nights[-1])
    if "text" in runs:
        text = runs["text"].stdout
        assert f"Files: {SAMPLE_FILES}" in text
        assert f"Imaging sessions: {len(sample.nights)}" in text
        for kind, n in by_type.items():
            assert f"{kind}: {n}" in text


# --- help ---------------------------------------------------------------------------------------------------


def test_python_m_catalog_help(cli_env: dict[str, str]) -> None:
    run = run_command([sys.executable, "-m", "catalog", "--help"], env=cli_env)
    assert_clean(run)
    assert "Usage:" in run.stdout
    for name in ("init", "sample", "scan", "catalog", "list", "imaging-session", "stats"):
        assert re.search(rf"^\s+{re.escape(name)}\b", run.stdout, re.M), name


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += _command_paths(command, (*prefix, name))
    return paths


def _all_command_paths() -> list[tuple[str, ...]]:
    from catalog.cli import main

    return [(), *_command_paths(main)]


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "catalog")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    """Every command and group of the click tree (run in-process: one subprocess
    each would cost a second apiece)."""
    from catalog.cli import main

    result = CliRunner().invoke(main, [*path, "--help"], prog_name="catalog")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Example" in result.output, f"'catalog {' '.join(path)} --help' shows no example:\n{result.output}"


# --- configuration precedence ------------------------------------------------------------------------------


def _write_config(path: Path, database: Path, raw_dir: Path) -> Path:
    path.write_text(f'database = "{database}"\nraw_dir = "{raw_dir}"\n')
    return path


def test_db_and_raw_dir_precedence(
    catalogs: dict[str, Path], sample: Sample, tmp_path: Path, cli_home: Path
) -> None:
    """--db beats CATALOG_DB beats the config file (CATALOG_CONFIG); --raw-dir beats
    CATALOG_RAW_DIR beats the config file. (The default ~/Astro/fits_catalog.db is
    in tests/catalog/test_bad_input.py.)

    The source that must win names the real catalog and raw folder; every source
    below it names paths that do not exist, so any other choice fails.
    """
    good_db, good_raw = catalogs["v2"], sample.raw_dir
    nowhere = tmp_path / "nowhere"
    bad_config = _write_config(tmp_path / "bad.toml", nowhere / "cfg.db", nowhere / "cfg_raw")
    good_config = _write_config(tmp_path / "good.toml", good_db, good_raw)
    scan = ("scan", "raw", "--json")
    cases = {
        "option": (
            scan + ("--db", str(good_db), "--raw-dir", str(good_raw)),
            base_env(
                cli_home,
                CATALOG_DB=nowhere / "env.db",
                CATALOG_RAW_DIR=nowhere / "env_raw",
                CATALOG_CONFIG=bad_config,
            ),
        ),
        "env": (
            scan,
            base_env(cli_home, CATALOG_DB=good_db, CATALOG_RAW_DIR=good_raw, CATALOG_CONFIG=bad_config),
        ),
        "config": (scan, base_env(cli_home, CATALOG_CONFIG=good_config)),
    }
    runs = run_all({k: (lambda a=a, e=e: run_catalog(*a, env=e)) for k, (a, e) in cases.items()})
    for key, run in runs.items():
        assert_clean(run)
        report = run.json()
        assert report["raw_dir"] == str(good_raw), f"{key}: {run}"
        assert (report["new"], report["missing"]) == ([], []), f"{key}: {run}"
        assert report["unchanged"] == SAMPLE_FILES, f"{key}: {run}"
    assert not nowhere.exists()
