"""Backups of a PostgreSQL catalog: ``pg_dump`` (custom format), proven by a restore.

The dump is taken from an exported snapshot, and every table's count and checksum
(:mod:`.rowsum`) are computed in that same snapshot while it runs, so they describe
exactly what the dump holds, whatever the services commit meanwhile. The dump is
then restored into a scratch database on the same server and the same sums are
computed there; only a dump whose restore gives the same rows is published, under
its final name with a manifest (sizes, sha256, the sums), crash-safely as the SQLite
backups are. ``restore_dump`` puts a verified dump into an empty database and checks
the sums again.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

from migration.backup.files import (
    ensure_writable_dir,
    fsync_dir,
    fsync_file,
    link_exclusive,
    sha256,
    unlink_quietly,
)
from migration.errors import CatalogError, DatabaseCorruptError, UsageError
from migration.logs import get_logger
from migration.postgres.connect import connect, require_empty
from migration.postgres.rowsum import RowSum, kind_of_postgres_type
from migration.postgres.url import psycopg_url, redacted

log = get_logger(__name__)
SUFFIX = ".dump"


@dataclass
class DumpInfo:
    path: Path
    source: str
    bytes: int
    sha256: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> rows, checksum
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(int(t["rows"]) for t in self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": self.source,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "rows": self.rows,
            "tables": self.tables,
            "verified": True,
            "seconds": round(self.seconds, 3),
        }


def tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: on PATH, else in the newest ``/usr/lib/postgresql/N/bin``."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: (
            float(p.parent.parent.name) if p.parent.parent.name.replace(".", "", 1).isdigit() else 0.0
        ),
    )
    if versions:
        return str(versions[-1])
    raise UsageError(
        f"{name} was not found. Install PostgreSQL's client programs (Debian: apt install "
        f"postgresql-client) and run again; nothing was changed."
    )


def _run(args: list[str], doing: str, env: dict[str, str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise CatalogError(f"{doing} failed: {redacted(proc.stderr.strip() or proc.stdout.strip())}")


def _without_password(conninfo: str) -> tuple[str, dict[str, str]]:
    """The connection string without its password, and an environment carrying it
    (``PGPASSWORD``): a command line is readable by every local user (``ps``)."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def table_sums(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """Every table of the current schema: its rows and checksum, in the connection's snapshot."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
    ]
    out = {}
    for table in tables:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        kinds = [kind_of_postgres_type(t) for _c, t in columns]
        rowsum = RowSum(kinds)
        select = pgsql.SQL("SELECT {} FROM {}").format(
            pgsql.SQL(", ").join(pgsql.Identifier(c) for c, _t in columns), pgsql.Identifier(table)
        )
        with conn.cursor(name=f"sum_{secrets.token_hex(4)}") as cur:
            cur.itersize = 5_000
            cur.execute(select)
            for row in cur:
                rowsum.add(row)
        out[table] = {"rows": rowsum.count, "checksum": rowsum.hexdigest()}
    return out


def _scratch_url(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(psycopg_url(url), dbname=name)


def dump_database(url: str, dest_dir: Path, *, label: str, now: datetime | None = None) -> DumpInfo:
    """A verified ``pg_dump`` of the database at ``url`` into ``dest_dir``."""
    started = time.perf_counter()
    dest = Path(dest_dir)
    ensure_writable_dir(dest)
    now = now or datetime.now()
    dbname = psycopg.conninfo.conninfo_to_dict(psycopg_url(url)).get("dbname") or "catalog"
    base = f"{dbname}_{label}_{now.strftime('%Y%m%d_%H%M%S')}"
    tmp = dest / f".{base}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    # autocommit, so that psycopg sends no BEGIN of its own: this one sets the snapshot
    snap = connect(url, autocommit=True)
    try:
        snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = snap.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        conninfo, env = _without_password(psycopg_url(url))
        _run(
            [tool("pg_dump"), "--format=custom", f"--snapshot={snapshot[0]}", f"--file={tmp}", conninfo],
            f"pg_dump of {redacted(url)}",
            env,
        )
        sums = table_sums(snap)
    except BaseException:
        unlink_quietly(tmp)
        raise
    finally:
        snap.close()
    try:
        fsync_file(tmp)
        _verify_by_restore(url, tmp, sums)
        digest = sha256(tmp)
        final = dest / f"{base}{SUFFIX}"
        size = tmp.stat().st_size
        manifest = {
            "format": "astro-catalog pg_dump 1",
            "source": redacted(url),
            "created_at": now.astimezone().isoformat(),
            "bytes": size,
            "sha256": digest,
            "tables": sums,
            "verification": {"ok": True, "by": "pg_restore into a scratch database, sums compared"},
        }
        mtmp = dest / f".{final.name}.json.{os.getpid()}.partial"
        mtmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        fsync_file(mtmp)
        link_exclusive(mtmp, manifest_of(final))
        link_exclusive(tmp, final)
        fsync_dir(dest)
    except BaseException:
        unlink_quietly(tmp)
        raise
    info = DumpInfo(final, redacted(url), size, digest, sums, time.perf_counter() - started)
    log.info(
        "postgres.dumped", path=str(final), rows=info.rows, bytes=info.bytes, seconds=round(info.seconds, 2)
    )
    return info


def manifest_of(dump: Path) -> Path:
    return dump.with_name(dump.name + ".json")


def _verify_by_restore(url: str, dump: Path, sums: dict[str, dict[str, Any]]) -> None:
    name = f"catalog_verify_{secrets.token_hex(4)}"
    admin = connect(url, autocommit=True)
    try:
        # template0: nothing an administrator added to template1 in the restored database
        admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(pgsql.Identifier(name)))
        try:
            scratch, env = _without_password(_scratch_url(url, name))
            _run(
                [tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={scratch}", str(dump)],
                "pg_restore",
                env,
            )
            with psycopg.connect(_scratch_url(url, name)) as check:
                got = table_sums(check)
        finally:
            _drop_scratch(admin, name)
    finally:
        admin.close()
    if got != sums:
        bad = sorted(t for t in set(got) | set(sums) if got.get(t) != sums.get(t))
        raise DatabaseCorruptError(
            f"The dump of {redacted(url)} restored with different rows in {', '.join(bad)}; it was "
            f"not kept. Check the server's log and run the backup again."
        )


def _drop_scratch(admin: psycopg.Connection, name: str) -> None:
    """Drop the scratch database; one left behind is logged by name, and never hides
    the error that is on its way."""
    try:
        admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
    except psycopg.Error as exc:
        log.error(
            "postgres.scratch_left", database=name, error=str(exc).strip(), drop=f"DROP DATABASE {name}"
        )


def restore_dump(dump: Path, url: str) -> dict[str, Any]:
    """Restore a verified dump into the empty database at ``url``, then prove it."""
    manifest_file = manifest_of(dump)
    if not dump.is_file() or not manifest_file.is_file():
        raise UsageError(f"{dump} is not a backup of this tool (no {manifest_file.name} beside it).")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    if sha256(dump) != manifest.get("sha256"):
        raise DatabaseCorruptError(
            f"{dump} changed since it was verified (its sha256 differs from the manifest's); it "
            f"cannot be trusted. Restore another backup. Nothing was changed."
        )
    with connect(url) as conn:
        require_empty(conn, url, "A PostgreSQL catalog is restored")
    conninfo, env = _without_password(psycopg_url(url))
    _run(
        [
            tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(dump),
        ],
        f"pg_restore into {redacted(url)}",
        env,
    )
    with connect(url) as conn:
        got = table_sums(conn)
    if got != manifest["tables"]:
        raise DatabaseCorruptError(
            f"The restore into {redacted(url)} gave different rows than the backup recorded. Drop "
            f"that database and restore again."
        )
    return {"backup": str(dump), "target": redacted(url), "tables": got, "ok": True}
