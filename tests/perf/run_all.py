"""`make bench`: every benchmark under tests/perf, one after the other.

Sizes come from BENCH_SIZES (default 100000,1000000 fits_files rows); the
catalogs are built once under .bench/ and reused. Paste the output into
docs/performance.md with the machine line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "bench_catalog.py",
    "bench_shims.py",
    "bench_backup.py",
    "bench_migration.py",
    "bench_run_cli.py",
    "bench_retire.py",
    "bench_full_writer.py",
    "bench_compact.py",
    "bench_copy_pg.py",
    "bench_pg_migration.py",
    "bench_web.py",
]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        script = HERE / name
        if not script.exists():
            continue
        print(f"\n## {name}\n", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
