"""Benchmark: cataloging speed — FITS headers read per second by the catalog
(header mapping + md5 of the file) against a bare astropy ``getheader`` loop
over the same files, and files cataloged per second end to end."""

from __future__ import annotations

import shutil
import sys
import time
import warnings

from astropy.io import fits
from common import DATA, machine, table

from catalog.cataloger import catalog_files, iter_fits
from catalog.fits import read_header
from catalog.manager import DatabaseManager
from catalog.sample import write_sample
from catalog.service import DatabaseService
from migration.logs import configure

FILES = 400


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    raw = DATA / "bench_raw"
    shutil.rmtree(raw, ignore_errors=True)
    write_sample(raw, FILES, seed=1)
    paths = list(iter_fits(raw))
    for p in paths:  # warm the page cache for both loops
        p.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for p in paths:
            fits.getheader(p)
        bare = len(paths) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for p in paths:
        read_header(p)
    ours = len(paths) / (time.perf_counter() - t0)
    db_path = DATA / "bench_catalog.db"
    for suffix in ("", "-wal", "-shm"):
        (DATA / f"bench_catalog.db{suffix}").unlink(missing_ok=True)
    db = DatabaseManager(db_path)
    db.create_tables()
    t0 = time.perf_counter()
    result = catalog_files(DatabaseService(db), paths)
    end_to_end = result.added / (time.perf_counter() - t0)
    db.close()
    print(
        table(
            [
                ["headers/s: bare astropy getheader", f"{bare:.0f}", "1.00x"],
                [
                    "headers/s: catalog.fits.read_header (+ md5, mapping)",
                    f"{ours:.0f}",
                    f"{ours / bare:.2f}x",
                ],
                [
                    "files/s: catalog end to end (read + write, batches of 50)",
                    f"{end_to_end:.0f}",
                    f"{end_to_end / bare:.2f}x",
                ],
            ],
            ["measure", "per second", "vs bare astropy"],
        )
    )
    shutil.rmtree(raw, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
