"""The design card's story on PostgreSQL, end to end, with real processes: a v1 catalog of
real FITS files in a PostgreSQL database; the web app, the file monitor (files arriving
every ~300 ms), a script using catalog.models with old names, a raw-SQL client with old
names and HTTP pollers all running; `migration run --yes` in the middle; then retire."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.support.live import LiveSystem, run_cli


@pytest.mark.timeout(600)
def test_live_migration_on_postgresql_with_everything_running(tmp_path: Path, pg_url: str) -> None:
    live = LiveSystem(tmp_path, sample_files=40, pg_url=pg_url)
    live.build_v1_catalog()
    with psycopg.connect(pg_url) as conn:
        before = conn.execute("SELECT count(*), sum(x) FROM fits_files").fetchone()
    live.start_services()
    live.start_clients()
    clients = ("producer", "legacy-models", "legacy-sql", "poller-0", "poller-1")
    try:
        live.wait_for_work(
            {"producer": 4, "legacy-models": 5, "legacy-sql": 5, "poller-0": 20, "poller-1": 20}
        )
        run = run_cli("migration", "run", "--yes", "--json", env=live.env)
        report = json.loads(run.stdout)
        assert report["verification"]["ok"], report["verification"]
        assert Path(report["backup"]).exists()
        after_cutover = live.acked(clients)
        live.wait_for_work({n: after_cutover[n] + (20 if n.startswith("poller") else 4) for n in clients})
        with urllib.request.urlopen(live.url + "/healthz", timeout=30) as resp:
            health = json.loads(resp.read())
        assert (health["schema_version"], health["phase"]) == (2, "window")
    finally:
        live.stop(*clients)
    produced = live.procs["producer"].acks()
    missing = live.wait_for_monitor({a["md5sum"] for a in produced})
    live.stop("monitor", "web")

    for name, proc in live.procs.items():
        assert proc.errors() == [], (name, proc.errors()[:5])
    for name in ("web", "monitor"):
        bad = [e for e in live.procs[name].log_events() if e.get("level") in ("error", "critical")]
        assert bad == [], (name, bad[:3])
    assert len(produced) >= 4 and not missing

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for client in ("legacy-models", "legacy-sql"):
            acks = live.procs[client].acks()
            assert len(acks) > 8, client
            for ack in acks:
                row = conn.execute(
                    "SELECT width_pixels, height_pixels, imaging_session_id FROM fits_files "
                    "WHERE md5sum = %s",
                    (ack["md5sum"],),
                ).fetchone()
                assert row == (ack["width_pixels"], ack["height_pixels"], ack["imaging_session_id"]), ack
        for ack in produced:  # every FITS file that arrived, cataloged exactly once
            assert conn.execute(
                "SELECT count(*) FROM fits_files WHERE md5sum = %s", (ack["md5sum"],)
            ).fetchone() == (1,)
        # the files that were there before are as they were, under the new names
        first = conn.execute(
            "SELECT count(*), sum(width_pixels) FROM fits_files WHERE md5sum NOT LIKE 'legacy-%%' "
            "AND md5sum <> ALL(%s)",
            ([a["md5sum"] for a in produced],),
        ).fetchone()
        assert first == before

        refused = run_cli("compat", "retire", "--yes", env=live.env, check=False)
        assert refused.returncode == 11 and "window ends" in refused.stderr
        # allowed once the cut-over is 31 days old and nothing used the shims for a week
        shift = "to_char({c}::timestamp - interval '31 days', 'YYYY-MM-DD HH24:MI:SS')"
        conn.execute(f"UPDATE _compat_shims SET cutover_at = {shift.format(c='cutover_at')}")
        for table in ("_compat_usage", "_compat_usage_backends"):  # the programs', the triggers'
            conn.execute(
                f"UPDATE {table} SET last_seen = {shift.format(c='last_seen')}, "
                f"first_seen = {shift.format(c='first_seen')}, day = left({shift.format(c='day')}, 10)"
            )
        conn.execute(
            f"UPDATE _compat_usage_programs SET last_seen = {shift.format(c='last_seen')}, "
            f"first_seen = {shift.format(c='first_seen')}"
        )
    run_cli("compat", "retire", "--yes", env=live.env)
    with psycopg.connect(pg_url) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT session_id FROM sessions")
    assert json.loads(run_cli("migration", "verify", "--json", env=live.env).stdout)["ok"]
