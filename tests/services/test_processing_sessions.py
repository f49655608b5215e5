"""``catalog processing-session create/list/info`` on v1 and v2 catalogs."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from catalog.cli import main
from catalog.cli.services import COMMANDS
from catalog.sample import write_sample
from migration.errors import NotFoundError
from tests.support.services import (
    LAYOUTS,
    catalog_command,
    catalog_folder,
    make_db,
    service_env,
)

ID_PATTERN = re.compile(r"^PS_\d{8}_\d{6}_[0-9a-f]{4}$")


@pytest.fixture(scope="module", params=LAYOUTS)
def small_catalog(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(f"ps_{request.param}")
    write_sample(folder / "raw", 50, seed=11)
    db = make_db(folder / "fits_catalog.db", request.param)
    assert catalog_folder(db, folder / "raw").added == 50
    return db


def _query(db: Path, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _session_key(db: Path) -> str:
    """The fits_files column naming the imaging session, in this database's layout."""
    v2 = _query(db, "SELECT 1 FROM sqlite_master WHERE name = 'imaging_sessions'")
    return "imaging_session_id" if v2 else "session_id"


def _first_session(db: Path) -> str:
    return _query(
        db, f"SELECT {_session_key(db)} FROM fits_files WHERE frame_type = 'LIGHT' ORDER BY id LIMIT 1"
    )[0][0]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_stages_the_sessions_lights(small_catalog: Path) -> None:
    db = small_catalog
    session = _first_session(db)
    code, out, err = run(
        "processing-session",
        "create",
        "--db",
        str(db),
        "--name",
        "M31 LRGB",
        "--imaging-session",
        session,
        "--json",
    )
    assert code == 0, err
    info = json.loads(out)
    assert ID_PATTERN.match(info["id"]) and len(info["id"]) <= 50
    key = _session_key(db)
    lights = _query(
        db,
        f"SELECT id, folder, file, exposure FROM fits_files WHERE {key} = ? "
        f"AND frame_type = 'LIGHT' ORDER BY id",
        session,
    )
    assert info["files"] == len(lights) == len(info["file_list"]) > 0
    assert info["by_subfolder"] == {"lights": len(lights)}
    assert info["status"] == "not_started"
    assert info["total_integration_seconds"] == round(sum(r[3] for r in lights))
    rows = _query(
        db,
        "SELECT fits_file_id, original_path, original_filename, subfolder, file_size, "
        "frame_type FROM processing_session_files WHERE processing_session_id = ? "
        "ORDER BY fits_file_id",
        info["id"],
    )
    assert [r[0] for r in rows] == [r[0] for r in lights]
    for (_fid, path, name, sub, size, ft), (_, folder, file, _) in zip(rows, lights):
        assert (path, name, sub, ft) == (os.path.join(folder, file), file, "lights", "LIGHT")
        assert size == os.path.getsize(path)
    assert _query(db, "PRAGMA foreign_key_check") == []


@pytest.mark.parametrize(
    "frame_type,subfolder", [("FLAT", "flats"), ("dark", "darks"), ("Bias Frame", "bias")]
)
def test_create_other_frame_types(small_catalog: Path, frame_type: str, subfolder: str) -> None:
    db = small_catalog
    session = _first_session(db)
    code, out, err = run(
        "processing-session",
        "create",
        "--db",
        str(db),
        "--name",
        f"{frame_type} set",
        "--imaging-session",
        session,
        "--frame-type",
        frame_type,
    )
    assert code == 0, err
    assert f"in {subfolder}/" in out and session in out
    ps_id = re.search(r"processing session (\S+)", out).group(1)
    subs = _query(
        db, "SELECT DISTINCT subfolder FROM processing_session_files WHERE processing_session_id = ?", ps_id
    )
    assert subs == [(subfolder,)]


def test_list_and_info(small_catalog: Path) -> None:
    db = small_catalog
    code, out, _ = run(
        "processing-session",
        "create",
        "--db",
        str(db),
        "--name",
        "For info",
        "--imaging-session",
        _first_session(db),
        "--id",
        "m31-lrgb-2024.v1",
        "--notes",
        "first try",
    )
    assert code == 0 and "m31-lrgb-2024.v1" in out
    code, out, _ = run("processing-session", "list", "--db", str(db), "--json")
    listed = {p["id"]: p for p in json.loads(out)}
    assert listed["m31-lrgb-2024.v1"]["name"] == "For info"
    assert all(p["files"] == sum(p["by_subfolder"].values()) for p in listed.values())
    code, out, _ = run("processing-session", "list", "--db", str(db))
    assert code == 0 and "m31-lrgb-2024.v1" in out and "For info" in out
    code, out, _ = run("processing-session", "info", "m31-lrgb-2024.v1", "--db", str(db))
    assert code == 0 and "Processing session m31-lrgb-2024.v1: For info" in out
    assert "first try" in out and "lights" in out
    code, out, _ = run("processing-session", "info", "m31-lrgb-2024.v1", "--db", str(db), "--json")
    info = json.loads(out)
    assert info["notes"] == "first try" and len(info["file_list"]) == info["files"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (
            ["create", "--name", "x", "--imaging-session", "20990101_NOPE_NOPE"],
            NotFoundError.exit_code,  # not click's usage code: the command line was fine
            "There is no imaging session '20990101_NOPE_NOPE'",
        ),
        (
            ["create", "--name", "x", "--imaging-session", "{session}", "--frame-type", "DARKFLAT"],
            2,
            "has no usable DARKFLAT files",
        ),
        (
            ["create", "--name", "x", "--imaging-session", "{session}", "--frame-type", "tricolor"],
            2,
            "Unknown frame type 'tricolor'",
        ),
        (["create", "--name", "x", "--imaging-session", "{session}", "--id", "bad id!"], 2, "is not usable"),
        (["create", "--name", "   ", "--imaging-session", "{session}"], 2, "needs a --name"),
        (["info", "PS_NOPE"], NotFoundError.exit_code, "There is no processing session 'PS_NOPE'"),
    ],
)
def test_errors_are_one_clear_paragraph(
    small_catalog: Path, args: list[str], code: int, message: str
) -> None:
    session = _first_session(small_catalog)
    argv = [a.replace("{session}", session) for a in args]
    exit_code, out, err = run("processing-session", *argv, "--db", str(small_catalog))
    assert exit_code == code, (out, err)
    assert err.startswith("Error: ") and "Traceback" not in err
    assert message in " ".join(err.split())


def test_a_duplicate_id_is_refused(small_catalog: Path) -> None:
    session = _first_session(small_catalog)
    args = [
        "processing-session",
        "create",
        "--db",
        str(small_catalog),
        "--name",
        "once",
        "--imaging-session",
        session,
        "--id",
        "only-once",
    ]
    assert run(*args)[0] == 0
    code, _, err = run(*args)
    assert code == 2 and "already exists" in " ".join(err.split())


def test_a_missing_database_is_refused(tmp_path: Path) -> None:
    code, _, err = run("processing-session", "list", "--db", str(tmp_path / "none.db"))
    assert code == 3 and "does not exist" in " ".join(err.split())


def test_the_real_command_line(small_catalog: Path) -> None:
    """Once through a real process, as a user would run it."""
    proc = subprocess.run(
        catalog_command(
            "processing-session",
            "create",
            "--db",
            str(small_catalog),
            "--name",
            "From the shell",
            "--imaging-session",
            _first_session(small_catalog),
        ),
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Created processing session PS_")
    assert '"event": "processing.session_created"' in proc.stderr


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    """The command and, for a group, every command below it (groups included)."""
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _commands(sub, f"{path} {name}")
    return found


@pytest.mark.parametrize("name,command", [p for c in COMMANDS for p in _commands(c, c.name)])
def test_every_service_command_documents_an_example(name: str, command: click.Command) -> None:
    assert command.help and "Example:" in command.help, name
    example = command.help.split("Example:", 1)[1]
    assert f"catalog {name}" in example
