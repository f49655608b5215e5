"""`make demo`: a sample catalog of real FITS files, cataloged into a v1 database.

Runs the project's own console scripts, as a user would, and prints each
command before running it. DEMO_DIR (default .demo) holds the data.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
DEMO_DIR = Path(os.environ.get("DEMO_DIR", ".demo")).absolute()
DB = DEMO_DIR / "fits_catalog.db"
RAW = DEMO_DIR / "raw"


def run(*args: str) -> None:
    print(f"\n$ {' '.join(shlex.quote(a) for a in args)}", flush=True)
    subprocess.run([str(BIN / args[0]), *args[1:]], check=True)


def main() -> int:
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    os.environ["CATALOG_DB"] = str(DB)
    os.environ["CATALOG_RAW_DIR"] = str(RAW)
    run("catalog", "sample", "--files", "120")
    run("migration", "baseline")
    run("catalog", "scan", "raw")
    run("catalog", "catalog", "raw")
    run("catalog", "list", "imaging-sessions", "--recent", "10")
    run("catalog", "stats", "raw")
    print(f"\nDemo catalog (schema v1): {DB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
