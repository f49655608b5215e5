"""Noticing that the catalog went back in time under the monitor.

``migration restore`` copies a backup INTO the live file with SQLite's backup
API while the monitor runs: same file, same inode, and the monitor's
connections see the backup's rows at their next statement. The monitor keeps
in memory the files it knows to be cataloged (so that an event or a rescan
does not read them again); after such a restore, the files cataloged since the
backup are in that set but no longer in the catalog, and would never be
cataloged again. :class:`CatalogWatch` notices, and
:meth:`catalog.monitor_sync.CatalogSync.resync` re-reads the catalog and
queues the files of the raw folder it lacks.

What tells, cheaply, each pass:

* ``PRAGMA data_version`` on the watch's own long-lived connection: unchanged
  means no other connection committed since the last look, and nothing more is
  read. It changes all the time (the monitor's own writes go through other
  connections), so alone it proves nothing.
* When it changed, *probes*: rows the monitor knows were in the catalog (the
  newest row, by id, at the last look, and the rows the monitor wrote since)
  are looked up by primary key. A restore to an older state takes the newest
  rows away first, so a probe that is gone, or whose id now holds another file
  (the restored ``sqlite_sequence`` hands out the same ids again), means rows
  were lost: re-sync. Each probe is one primary-key lookup, whatever the
  catalog's size; ``count(*)`` would read a whole index each time.
* The schema cookie (``PRAGMA schema_version``) is recorded for the log line
  only: the backup API bumps it, but so does every DDL statement (a
  migration, ``compat install``), and a rollback (v2 to v1 in place) keeps
  every row, so a schema change alone is no reason to re-read the catalog.

The file's identity (inode) does not help: a restore keeps it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from migration.connect import connect


@dataclass(frozen=True)
class Probe:
    """A ``fits_files`` row known to have been in the catalog."""

    id: int
    key: str  # folder/file
    md5: str | None

    def matches(self, folder: str, file: str, md5: str | None) -> bool:
        if self.md5 is not None or md5 is not None:
            return md5 == self.md5
        return f"{folder}/{file}" == self.key


class CatalogWatch:
    """Tells whether rows the monitor knew of left the catalog (a restore).

    Not thread-safe: the monitor's loop alone uses it. ``path`` None (an
    in-memory database) watches nothing.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.data_version: int | None = None
        self.schema_version: int | None = None
        self.tip: Probe | None = None  # the newest row at the last look
        self.written: list[Probe] = []  # the monitor's own rows since the last look
        self._marked: tuple[int, int] | None = None  # versions noted by mark(), for known()

    def _connection(self) -> sqlite3.Connection | None:
        if self.conn is None and self.path is not None:
            self.conn = connect(self.path)
        return self.conn

    def mark(self) -> None:
        """Note the database's versions; call *before* reading the catalog, then
        :meth:`known` with what was read (a commit in between is seen at the next
        look; if the read fails, nothing changes and the next look says so again)."""
        conn = self._connection()
        if conn is None:
            return
        data = conn.execute("PRAGMA data_version").fetchone()[0]
        self._marked = (data, conn.execute("PRAGMA schema_version").fetchone()[0])

    def known(self, files: Mapping[str, tuple[int, str | None]]) -> None:
        """The catalog as just read (path -> (id, md5)): its newest row is the probe."""
        if self._marked is not None:
            self.data_version, self.schema_version = self._marked
            self._marked = None
        self.written.clear()
        self.tip = None
        if files:
            key, (fid, md5) = max(files.items(), key=lambda item: item[1][0])
            self.tip = Probe(fid, key, md5)

    def note_written(self, fid: int, key: str, md5: str | None) -> None:
        """A row the monitor just wrote (checked at the next look)."""
        if self.path is not None:
            self.written.append(Probe(fid, key, md5))

    def check(self) -> str | None:
        """Why the catalog must be read again, or None. Raises ``sqlite3.Error``
        (the caller tries again later; nothing is recorded then)."""
        conn = self._connection()
        if conn is None:
            return None
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self.data_version:
            return None
        schema = conn.execute("PRAGMA schema_version").fetchone()[0]
        schema_note = "; the schema changed too" if schema != self.schema_version else ""
        for probe in ([self.tip] if self.tip else []) + self.written:
            row = conn.execute(
                "SELECT folder, file, md5sum FROM fits_files WHERE id = ?", (probe.id,)
            ).fetchone()
            if row is None:
                return f"row {probe.id} ({probe.key}) is no longer in the catalog{schema_note}"
            if not probe.matches(*row):
                return f"row {probe.id} ({probe.key}) now holds another file, {row[0]}/{row[1]}{schema_note}"
        newest = conn.execute(
            "SELECT id, folder, file, md5sum FROM fits_files ORDER BY id DESC LIMIT 1"
        ).fetchone()
        # nothing lost: the newest row now is the probe for next time
        self.tip = Probe(newest[0], f"{newest[1]}/{newest[2]}", newest[3]) if newest else None
        self.written.clear()
        self.data_version, self.schema_version = version, schema
        return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
