"""The cross-version restore report: what restoring a backup into the live
database would lose and bring back, per table, matching names across the
profile's two layouts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migration.backup.files import uri
from migration.backup.profile import SchemaProfile
from migration.backup.verify import check_backup_file
from migration.connect import busy_timeout_ms
from migration.logs import get_logger
from migration.snapshot import Renames

log = get_logger(__package__)


@dataclass
class TableDiff:
    """What restoring would do to one table (live name and its name in the backup)."""

    table: str  # name in live (or in the backup when live lacks it)
    backup_table: str | None  # None: the backup has no such table
    key: tuple[str, ...]  # live's primary-key columns, or ("rowid",)
    live_rows: int
    backup_rows: int
    only_in_live: int  # rows the restore would lose
    changed: int  # rows present in both whose values differ (live values lost)
    only_in_backup: int  # rows the restore would bring back
    sample_only_in_live: list[Any] = field(default_factory=list)
    sample_changed: list[Any] = field(default_factory=list)
    columns_only_in_live: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.only_in_live + self.changed


@dataclass
class RestoreReport:
    backup: Path
    live: Path
    backup_layout: str | None
    backup_version: int | None
    live_layout: str | None
    live_version: int | None
    tables: list[TableDiff]
    objects_only_in_live: list[str]  # "view v_x", "trigger t_y", "index i_z", "table t"

    @property
    def rows_lost(self) -> int:
        return sum(t.lost for t in self.tables)

    @property
    def nothing_lost(self) -> bool:
        return (
            self.rows_lost == 0
            and not self.objects_only_in_live
            and not any(t.columns_only_in_live for t in self.tables)
        )

    def lines(self) -> list[str]:
        """Human-readable report, one line each (what the CLI prints before asking)."""
        out = [
            f"Backup {self.backup} (schema v{self.backup_version}, layout {self.backup_layout})",
            f"Live   {self.live} (schema v{self.live_version}, layout {self.live_layout})",
        ]
        lossy = [t for t in self.tables if t.lost or t.columns_only_in_live]
        if not lossy and not self.objects_only_in_live:
            out.append("Nothing written since the backup would be lost.")
        for t in lossy:
            name = t.table
            if t.backup_table not in (None, t.table):
                name = f"{t.table} (backup: {t.backup_table})"
            parts = []
            if t.only_in_live:
                sample = ", ".join(map(str, t.sample_only_in_live))
                parts.append(f"{t.only_in_live} rows not in the backup (e.g. {'/'.join(t.key)} {sample})")
            if t.changed:
                sample = ", ".join(map(str, t.sample_changed))
                parts.append(f"{t.changed} rows changed since (e.g. {sample})")
            if t.columns_only_in_live:
                parts.append("columns not in the backup: " + ", ".join(t.columns_only_in_live))
            out.append(f"  {name}: " + "; ".join(parts))
        for obj in self.objects_only_in_live:
            out.append(f"  {obj}: not in the backup, would be removed")
        back = [t for t in self.tables if t.only_in_backup]
        for t in back:
            out.append(f"  {t.backup_table or t.table}: {t.only_in_backup} rows would come back")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["backup"], d["live"] = str(self.backup), str(self.live)
        d["rows_lost"] = self.rows_lost
        return d


def restore_report(backup: Path, live: Path, *, profile: SchemaProfile, sample: int = 5) -> RestoreReport:
    """What restoring ``backup`` into ``live`` would lose (and bring back), per table.

    Reads both in one consistent snapshot; changes nothing. When their layouts are
    the profile's two, tables, columns and indexes are matched across the renames.
    Rows are compared by primary key (rowid for tables without one): a primary key
    that changed value shows as one row lost and one brought back.
    """
    backup, live = Path(backup).expanduser(), Path(live).expanduser()
    check_backup_file(backup, profile)
    profile.check_file(live)
    conn = sqlite3.connect(uri(live, "rw"), uri=True, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
        conn.execute("ATTACH DATABASE ? AS bk", (uri(backup, "ro"),))
        conn.execute("BEGIN")  # one read snapshot of both files
        l_layout, l_version = profile.describe(conn)
        b_layout, b_version = _file_state(backup, profile)
        live_tables, backup_tables = _tables(conn, "main"), _tables(conn, "bk")
        diffs: list[TableDiff] = []
        matched_backup: set[str] = set()
        for table in sorted(live_tables):
            other, columns = _counterpart(table, l_layout, b_layout, backup_tables, profile)
            diffs.append(_diff_table(conn, table, other, columns, sample))
            if other:
                matched_backup.add(other)
        for table in sorted(set(backup_tables) - matched_backup):
            n = conn.execute(f"SELECT count(*) FROM bk.{_q(table)}").fetchone()[0]
            diffs.append(
                TableDiff(
                    table=table,
                    backup_table=table,
                    key=(),
                    live_rows=0,
                    backup_rows=n,
                    only_in_live=0,
                    changed=0,
                    only_in_backup=n,
                )
            )
        backup_objects = _objects(conn, "bk")
        backup_names = {n for _, n in backup_objects}
        lost_objects = []
        for kind, name in sorted(_objects(conn, "main")):
            if kind == "table":
                continue  # reported per table above
            mapped = _map_object(kind, name, l_layout, b_layout, profile)
            if (kind, mapped) in backup_objects:
                continue
            if kind == "view" and mapped in backup_names:
                continue  # e.g. a compatibility view named like the backup's table
            lost_objects.append(f"{kind} {name}")
        for d in diffs:
            if d.backup_table is None and d.live_rows == 0:
                lost_objects.append(f"table {d.table}")
        conn.execute("COMMIT")
    finally:
        conn.close()
    report = RestoreReport(
        backup=backup,
        live=live,
        backup_layout=b_layout,
        backup_version=b_version,
        live_layout=l_layout,
        live_version=l_version,
        tables=diffs,
        objects_only_in_live=lost_objects,
    )
    log.info(
        "restore.report",
        path=str(live),
        backup=str(backup),
        rows_lost=report.rows_lost,
        tables_losing=[t.table for t in diffs if t.lost],
    )
    return report


def _file_state(path: Path, profile: SchemaProfile) -> tuple[str | None, int | None]:
    """Layout and version of a database file, read-only (it is not written meanwhile)."""
    conn = sqlite3.connect(uri(path, "ro"), uri=True)
    try:
        return profile.describe(conn)
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection, schema: str) -> dict[str, str]:
    rows = conn.execute(
        f"SELECT name, sql FROM {schema}.sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    )
    return {name: sql or "" for name, sql in rows}


def _objects(conn: sqlite3.Connection, schema: str) -> set[tuple[str, str]]:
    rows = conn.execute(f"SELECT type, name FROM {schema}.sqlite_master WHERE name NOT LIKE 'sqlite_%'")
    return {(t, n) for t, n in rows}


def _table_info(conn: sqlite3.Connection, schema: str, table: str) -> list[tuple[str, int]]:
    """(column, pk position) of the real (not generated/hidden) columns."""
    return [(r[1], r[5]) for r in conn.execute(f'PRAGMA {schema}.table_info("{table}")')]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- names across the two layouts (Renames: old -> new; columns keyed by the new table)


def _old_table(r: Renames, new: str) -> str | None:
    """The old name of a table the renames cover, by its new name; None if not covered."""
    for old, renamed in r.tables.items():
        if renamed == new:
            return old
    return new if new in r.columns else None


def _new_table(r: Renames, old: str) -> str | None:
    """The new name of a table the renames cover, by its old name; None if not covered."""
    if old in r.tables:
        return r.tables[old]
    if old in r.columns and old not in r.tables.values():
        return old
    return None


def _counterpart(
    name: str,
    live_layout: str | None,
    backup_layout: str | None,
    backup_tables: Iterable[str],
    profile: SchemaProfile,
) -> tuple[str | None, dict[str, str] | None]:
    """The backup's name for a live table, and its columns' names in the backup
    (live name -> backup name; None: the same names)."""
    tables = set(backup_tables)
    if profile.layouts is not None:
        old_layout, new_layout = profile.layouts
        r = profile.renames
        if live_layout == new_layout and backup_layout == old_layout:
            old = _old_table(r, name)
            if old is not None:
                to_old: dict[str, str] = {}
                for o, n in r.columns.get(name, {}).items():
                    to_old.setdefault(n, o)
                return (old if old in tables else None), to_old
        if live_layout == old_layout and backup_layout == new_layout:
            new = _new_table(r, name)
            if new is not None:
                return (new if new in tables else None), dict(r.columns.get(new, {}))
    return (name if name in tables else None), None


def _map_object(
    kind: str, name: str, live_layout: str | None, backup_layout: str | None, profile: SchemaProfile
) -> str:
    """The backup's name for a live view or index (tables: :func:`_counterpart`)."""
    if live_layout == backup_layout or profile.layouts is None:
        return name
    old_layout, new_layout = profile.layouts
    r = profile.renames
    if kind in ("table", "view"):
        mapped = _old_table(r, name) if live_layout == new_layout else _new_table(r, name)
        if mapped is not None:
            return mapped
    if kind == "index":
        for old, new in r.indexes.items():
            if live_layout == new_layout and name == new:
                return old
            if live_layout == old_layout and name == old:
                return new
    return name


def _diff_table(
    conn: sqlite3.Connection, table: str, other: str | None, columns: dict[str, str] | None, sample: int
) -> TableDiff:
    """Compare ``main.table`` with ``bk.other`` by primary key (rowid for a table
    without one: the backup API keeps rowids); ``columns`` maps live column names
    to the backup's (None: the same names)."""
    lt = f"main.{_q(table)}"
    live_rows = conn.execute(f"SELECT count(*) FROM {lt}").fetchone()[0]
    if other is None:
        return TableDiff(
            table=table,
            backup_table=None,
            key=(),
            live_rows=live_rows,
            backup_rows=0,
            only_in_live=live_rows,
            changed=0,
            only_in_backup=0,
        )
    bt = f"bk.{_q(other)}"
    backup_rows = conn.execute(f"SELECT count(*) FROM {bt}").fetchone()[0]
    info = _table_info(conn, "main", table)
    backup_cols = {c for c, _ in _table_info(conn, "bk", other)}
    pairs = []  # (live column, backup column)
    only_live = []
    for col, _ in info:
        mapped = columns.get(col, col) if columns else col
        if mapped in backup_cols:
            pairs.append((col, mapped))
        else:
            only_live.append(col)
    pk = [c for c, n in sorted((x for x in info if x[1]), key=lambda x: x[1])]
    mapping = dict(pairs)
    if pk and all(c in mapping for c in pk):
        key = tuple(pk)
        key_pairs = [(c, mapping[c]) for c in pk]
    else:
        key = ("rowid",)
        key_pairs = [("rowid", "rowid")]
    on = " AND ".join(f"b.{_q(bc)} = l.{_q(lc)}" for lc, bc in key_pairs)
    on_rev = " AND ".join(f"l.{_q(lc)} = b.{_q(bc)}" for lc, bc in key_pairs)
    lkey = ", ".join(f"l.{_q(lc)}" for lc, _ in key_pairs)
    missing_sql = f"FROM {lt} AS l WHERE NOT EXISTS (SELECT 1 FROM {bt} AS b WHERE {on})"
    only_in_live = conn.execute(f"SELECT count(*) {missing_sql}").fetchone()[0]
    sample_missing = [
        _key_value(r)
        for r in conn.execute(f"SELECT {lkey} {missing_sql} ORDER BY {lkey} LIMIT {int(sample)}")
    ]
    back_sql = f"FROM {bt} AS b WHERE NOT EXISTS (SELECT 1 FROM {lt} AS l WHERE {on_rev})"
    only_in_backup = conn.execute(f"SELECT count(*) {back_sql}").fetchone()[0]
    value_pairs = [(lc, bc) for lc, bc in pairs if lc not in key]
    changed, sample_changed = 0, []
    if value_pairs:
        same = " AND ".join(f"l.{_q(lc)} IS b.{_q(bc)}" for lc, bc in value_pairs)
        changed_sql = f"FROM {lt} AS l JOIN {bt} AS b ON {on} WHERE NOT ({same})"
        changed = conn.execute(f"SELECT count(*) {changed_sql}").fetchone()[0]
        sample_changed = [
            _key_value(r)
            for r in conn.execute(f"SELECT {lkey} {changed_sql} ORDER BY {lkey} LIMIT {int(sample)}")
        ]
    return TableDiff(
        table=table,
        backup_table=other,
        key=key,
        live_rows=live_rows,
        backup_rows=backup_rows,
        only_in_live=only_in_live,
        changed=changed,
        only_in_backup=only_in_backup,
        sample_only_in_live=sample_missing,
        sample_changed=sample_changed,
        columns_only_in_live=only_live,
    )


def _key_value(row: tuple[Any, ...]) -> Any:
    return row[0] if len(row) == 1 else list(row)
