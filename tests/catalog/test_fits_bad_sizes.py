"""A header whose data size cannot be computed (NAXISn or BITPIX not a whole number)
is an unreadable file, skipped with one line, never an exception out of cataloging."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from catalog.errors import FitsReadError
from catalog.fits import read_header
from tests.support.procs import BIN


def with_card(path: Path, keyword: str, value: str) -> Path:
    fits.PrimaryHDU(np.zeros((4, 4), dtype=np.int16)).writeto(path)
    data = bytearray(path.read_bytes())
    at = data.find(keyword.ljust(8).encode() + b"=")
    data[at : at + 80] = f"{keyword.ljust(8)}= {value}".ljust(80).encode()
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("keyword", "value"), [("NAXIS1", "'abc'"), ("BITPIX", "'x'")])
def test_a_size_that_is_not_a_number_is_a_read_error(tmp_path: Path, keyword: str, value: str) -> None:
    path = with_card(tmp_path / "bad.fits", keyword, value)
    with pytest.raises(FitsReadError, match=f"{keyword} is .*not a whole number"):
        read_header(path)


def test_cataloging_skips_it_with_one_line(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    with_card(raw / "bad.fits", "NAXIS1", "'abc'")
    db = tmp_path / "c.db"
    subprocess.run([str(BIN / "catalog"), "init", "--db", str(db)], check=True, capture_output=True)
    argv = [str(BIN / "catalog"), "catalog", str(raw), "--db", str(db)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 unreadable" in proc.stdout and "NAXIS1 is 'abc'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
