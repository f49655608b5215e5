"""The design card's story, end to end, with real processes: a v1 catalog of real
FITS files; the web app, the file monitor (files arriving every ~300 ms), a
script using catalog.models with old names, a raw-SQL client with old names and
HTTP pollers all running; `migration run --yes` in the middle; then retire."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.support.live import LiveSystem, rowids, run_cli, table_checksums


@pytest.mark.timeout(600)
def test_live_migration_with_everything_running(tmp_path: Path) -> None:
    live = LiveSystem(tmp_path, sample_files=60)
    live.build_v1_catalog()
    before_keys = rowids(live.db)
    before = table_checksums(live.db, before_keys)
    live.start_services()
    live.start_clients()
    clients = ("producer", "legacy-models", "legacy-sql", "poller-0", "poller-1")
    try:
        # every client working in phase "before" (waits on their progress, not on time)
        live.wait_for_work(
            {"producer": 5, "legacy-models": 6, "legacy-sql": 6, "poller-0": 26, "poller-1": 26}
        )
        run = run_cli("migration", "run", "--yes", "--json", env=live.env)
        report = json.loads(run.stdout)
        assert report["verification"]["ok"], report["verification"]
        # and on, in the window, with no restart: each does more work after the cut-over
        after_cutover = live.acked(clients)
        live.wait_for_work({n: after_cutover[n] + (25 if n.startswith("poller") else 5) for n in clients})
        health = json.loads(__import__("urllib.request").request.urlopen(live.url + "/healthz").read())
        assert (health["schema_version"], health["phase"]) == (2, "window")
    finally:
        live.stop("producer", "legacy-models", "legacy-sql", "poller-0", "poller-1")
    produced = live.procs["producer"].acks()
    missing = live.wait_for_monitor({a["md5sum"] for a in produced})
    live.stop("monitor", "web")

    # zero failed requests or client errors, in every phase
    for name, proc in live.procs.items():
        assert proc.errors() == [], (name, proc.errors()[:5])
    polls = sum(len(live.procs[f"poller-{i}"].acks()) for i in range(2))
    assert polls > 50
    for name in ("web", "monitor"):
        bad = [e for e in live.procs[name].log_events() if e.get("level") in ("error", "critical")]
        assert bad == [], (name, bad[:3])

    conn = sqlite3.connect(live.db)
    # every acknowledged write is there with its values (read through v2 names)
    for client in ("legacy-models", "legacy-sql"):
        acks = live.procs[client].acks()
        assert len(acks) > 10, client
        for ack in acks:
            row = conn.execute(
                "SELECT width_pixels, height_pixels, imaging_session_id FROM fits_files WHERE md5sum = ?",
                (ack["md5sum"],),
            ).fetchone()
            assert row == (ack["width_pixels"], ack["height_pixels"], ack["imaging_session_id"]), ack
    # every FITS file that arrived is cataloged exactly once
    assert len(produced) >= 10 and not missing
    for ack in produced:
        assert conn.execute(
            "SELECT count(*) FROM fits_files WHERE md5sum = ?", (ack["md5sum"],)
        ).fetchone() == (1,)
    # the data that existed before is unchanged apart from the names
    assert table_checksums(live.db, before_keys) == before
    assert json.loads(run_cli("migration", "verify", "--json", env=live.env).stdout)["ok"]

    # retire: refused inside the window ...
    refused = run_cli("compat", "retire", "--yes", env=live.env, check=False)
    assert refused.returncode != 0 and "window ends" in refused.stderr
    # ... allowed once the cut-over is 31 days old and nothing used the shims for a week
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime(cutover_at, '-31 days')")
    conn.execute(
        "UPDATE _compat_usage SET last_seen = datetime(last_seen, '-31 days'), "
        "first_seen = datetime(first_seen, '-31 days'), day = date(day, '-31 days')"
    )
    conn.commit()
    run_cli("compat", "retire", "--yes", env=live.env)
    with pytest.raises(sqlite3.OperationalError, match="no such table: sessions"):
        conn.execute("SELECT session_id FROM sessions")
    with pytest.raises(sqlite3.OperationalError, match="no such column: x"):
        conn.execute("SELECT x FROM fits_files")
    assert conn.execute("SELECT count(*) FROM imaging_sessions").fetchone()[0] >= len(
        before_keys["imaging_sessions"]
    )
    assert table_checksums(live.db, before_keys) == before
    assert json.loads(run_cli("migration", "verify", "--json", env=live.env).stdout)["ok"]
