"""`make demo`: the live migration on a sample catalog, with everything running.

1. writes sample FITS files and catalogs them into a schema-v1 database;
2. starts the web app, the file monitor, a script using old model names, a
   raw-SQL client using old table/column names, new FITS files arriving, and
   HTTP pollers — each a real process;
3. runs `migration run --yes` while they keep working;
4. prints a report (rows, files, errors, longest lock, the web app's pages)
   and stops the services cleanly (DEMO_KEEP=1 keeps the web app and monitor).

DEMO_DIR (default .demo) holds the data.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.live import LiveSystem, run_cli  # noqa: E402

DEMO_DIR = Path(os.environ.get("DEMO_DIR", ROOT / ".demo")).absolute()


def say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    live = LiveSystem(DEMO_DIR, sample_files=120)
    say(f"1. Sample catalog: 120 FITS files → schema v1 database {live.db}")
    live.build_v1_catalog()
    say(run_cli("migration", "status", env=live.env).stdout.rstrip())
    say("\n2. Starting the web app, the file monitor, legacy clients and pollers…")
    live.start_services()
    live.start_clients()
    say(f"   web app: {live.url}/")
    time.sleep(4)
    say("\n3. migration run --yes (services keep running)\n")
    run = run_cli("migration", "run", "--yes", env=live.env)
    say(run.stdout.rstrip())
    time.sleep(4)
    keep = os.environ.get("DEMO_KEEP") == "1"
    live.stop("producer", "legacy-models", "legacy-sql", "poller-0", "poller-1")
    produced = live.procs["producer"].acks()
    missing = live.wait_for_monitor({a["md5sum"] for a in produced}, timeout=30)
    if not keep:
        live.stop("monitor", "web")
    conn = sqlite3.connect(live.db)
    files = conn.execute("SELECT count(*) FROM fits_files").fetchone()[0]
    sessions = conn.execute("SELECT count(*) FROM imaging_sessions").fetchone()[0]
    errors = {name: len(p.errors()) for name, p in live.procs.items()}
    polls = sum(len(live.procs[f"poller-{i}"].acks()) for i in range(2))
    lock = json.loads(run_cli("migration", "status", "--json", env=live.env).stdout)
    status = run_cli("compat", "status", env=live.env).stdout
    longest = next((line for line in run.stdout.splitlines() if "Longest write lock" in line), "")
    say("\n4. Report")
    say(f"   schema version {lock['schema_version']}, phase {lock['phase']}")
    say(
        f"   imaging sessions {sessions}, FITS files {files} "
        f"({len(produced)} arrived during the demo, {len(missing)} not cataloged)"
    )
    say(
        f"   legacy writes acknowledged: models {len(live.procs['legacy-models'].acks())}, "
        f"raw SQL {len(live.procs['legacy-sql'].acks())}; HTTP requests {polls}"
    )
    say(f"   errors: {sum(errors.values())} ({', '.join(f'{k} {v}' for k, v in errors.items())})")
    say(f"   {longest.strip()}")
    say("   compat: " + " | ".join(line.strip() for line in status.splitlines()[:3]))
    if keep:
        say(
            f"\n   The web app keeps running: {live.url}/  {live.url}/sessions  {live.url}/raw-files"
            f"  {live.url}/processing  {live.url}/healthz"
        )
        say(f"   Stop it with: kill {live.procs['web'].popen.pid} {live.procs['monitor'].popen.pid}")
    else:
        say(f"\n   (The web app served {live.url}/ during the demo; DEMO_KEEP=1 keeps it running.)")
    return 1 if sum(errors.values()) or missing else 0


if __name__ == "__main__":
    sys.exit(main())
