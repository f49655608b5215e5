"""Benchmark: cataloging speed — FITS headers read per second by the catalog
(completeness check, header mapping, md5 of the file) against two baselines over
the same files in the same run: a bare astropy ``getheader`` loop, and that loop
plus the md5 of each file (work the catalog must do too: it finds duplicates by
md5). Then files cataloged per second end to end.

Each loop runs ``ROUNDS`` times, the loops taking turns, and the best round of
each is kept: the machine may be doing other work, and taking turns exposes
every loop to it alike."""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from astropy.io import fits
from common import DATA, machine, table

from catalog.cataloger import catalog_files, iter_fits
from catalog.fits import read_header
from catalog.manager import DatabaseManager
from catalog.sample import write_sample
from catalog.service import DatabaseService
from migration.logs import configure

FILES = 400
ROUNDS = 3


def bare_getheader(path: Path) -> None:
    fits.getheader(path)


def getheader_and_md5(path: Path) -> None:
    fits.getheader(path)
    with open(path, "rb") as fh:
        hashlib.file_digest(fh, "md5").hexdigest()


def per_second(loops: dict[str, Callable[[Path], object]], paths: list[Path]) -> dict[str, float]:
    best = dict.fromkeys(loops, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as a bare loop would: no warning is shown
        for _ in range(ROUNDS):
            for name, read in loops.items():
                t0 = time.perf_counter()
                for p in paths:
                    read(p)
                best[name] = max(best[name], len(paths) / (time.perf_counter() - t0))
    return best


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    raw = DATA / "bench_raw"
    shutil.rmtree(raw, ignore_errors=True)
    write_sample(raw, FILES, seed=1)
    paths = list(iter_fits(raw))
    for p in paths:  # warm the page cache for every loop
        p.read_bytes()
    rate = per_second(
        {"bare": bare_getheader, "md5": getheader_and_md5, "ours": read_header},
        paths,
    )
    db_path = DATA / "bench_catalog.db"
    for suffix in ("", "-wal", "-shm"):
        (DATA / f"bench_catalog.db{suffix}").unlink(missing_ok=True)
    db = DatabaseManager(db_path)
    db.create_tables()
    t0 = time.perf_counter()
    result = catalog_files(DatabaseService(db), paths)
    end_to_end = result.added / (time.perf_counter() - t0)
    db.close()
    bare, md5 = rate["bare"], rate["md5"]

    def row(name: str, value: float) -> list[str]:
        return [name, f"{value:,.0f}", f"{value / bare:.2f}x", f"{value / md5:.2f}x"]

    print(
        table(
            [
                row("headers/s: bare astropy getheader", bare),
                row("headers/s: astropy getheader + md5 of the file", md5),
                row("headers/s: catalog.fits.read_header (completeness, mapping, md5)", rate["ours"]),
                row("files/s: catalog end to end (read + write, batches of 50)", end_to_end),
            ],
            ["measure", "per second", "vs bare getheader", "vs getheader + md5"],
        )
    )
    print(f"\n{len(paths)} files, best of {ROUNDS} rounds each, the loops taking turns.")
    shutil.rmtree(raw, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
