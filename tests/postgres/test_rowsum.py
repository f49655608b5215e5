"""The copy's proof: a checksum that is equal for the same data read from SQLite and
from PostgreSQL (different Python types), whatever the order, and different for any
changed, missing or extra value. No server needed."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from migration.postgres.rowsum import RowSum, canonical

KINDS = ["i", "s", "b", "t", "f", "d", "x", "n"]
SQLITE_ROWS = [
    (1, "M31", 1, "2024-03-12 21:00:00.500000", 300.0, "2024-03-12", b"\x00\x01", 0.1),
    (2, "NGC 7000", 0, "2024-03-13 01:02:03", 2.5, "2024-03-13", None, 3),
    (3, None, None, None, None, None, b"", None),
]
POSTGRES_ROWS = [
    (
        1,
        "M31",
        True,
        datetime(2024, 3, 12, 21, 0, 0, 500000),
        300.0,
        date(2024, 3, 12),
        b"\x00\x01",
        Decimal("0.1"),
    ),
    (2, "NGC 7000", False, datetime(2024, 3, 13, 1, 2, 3), 2.5, date(2024, 3, 13), None, Decimal("3")),
    (3, None, None, None, None, None, b"", None),
]


def total(rows: list[tuple]) -> tuple[int, str]:
    s = RowSum(KINDS)
    for row in rows:
        s.add(row)
    return s.count, s.hexdigest()


def test_the_same_data_from_both_backends_sums_the_same() -> None:
    assert total(SQLITE_ROWS) == total(POSTGRES_ROWS)


def test_the_order_rows_come_in_does_not_matter() -> None:
    assert total(SQLITE_ROWS) == total(list(reversed(POSTGRES_ROWS)))


def test_any_change_changes_the_sum() -> None:
    base = total(SQLITE_ROWS)
    changed = [SQLITE_ROWS[0][:4] + (300.5,) + SQLITE_ROWS[0][5:], *SQLITE_ROWS[1:]]
    assert total(changed) != base
    assert total(SQLITE_ROWS[:2]) != base
    assert total([*SQLITE_ROWS, SQLITE_ROWS[0]]) != base
    # NULL is not the empty string, nor 0
    assert canonical("s", None) != canonical("s", "") and canonical("i", None) != canonical("i", 0)


def test_booleans_are_handed_to_copy_as_booleans() -> None:
    s = RowSum(["i", "b"])
    assert list(s.add((1, 1))) == [1, True]
    assert list(s.add((2, "false"))) == [2, False]
    assert list(s.add((3, None))) == [3, None]
