"""An old client of a PostgreSQL catalog that writes continuously, run as a subprocess:
plain psycopg with the v1 names (client C of compat-matrix.md), before, during and
after the cut-over.

    python tests/support/pg_writer_client.py URL STOP_FILE

Each write is its own transaction: an INSERT into ``fits_files`` with ``x, y,
session_id``, an UPDATE of ``x``, an INSERT into ``sessions``, an UPDATE of a session.
After each COMMIT one JSON line is printed (``{"op": …, "key": …, "x": …}``); a failed
write prints ``{"op": "error", …}`` and the client carries on. It stops when the
stop file appears and prints ``{"op": "done"}``.
"""

from __future__ import annotations

import json
import os
import sys

import psycopg


def say(**item: object) -> None:
    print(json.dumps(item), flush=True)


def main(url: str, stop_file: str) -> None:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET statement_timeout = '120s'")
    i = 0
    while not os.path.exists(stop_file):
        i += 1
        sid = f"w{i}"
        try:
            kind = i % 4
            if kind == 0:
                conn.execute(
                    "INSERT INTO sessions (session_id, session_date) VALUES (%s, '2025-06-01')", (sid,)
                )
                say(op="sess_insert", key=sid)
            elif kind == 1:
                conn.execute(
                    "INSERT INTO fits_files (file, folder, x, y, session_id) VALUES (%s, '/w', %s, %s, 's1')",
                    (f"w{i}.fits", 10_000 + i, 20_000 + i),
                )
                say(op="fits_insert", key=f"w{i}.fits", x=10_000 + i)
            elif kind == 2:
                cur = conn.execute("UPDATE fits_files SET x = %s WHERE id = %s", (1_000_000 + i, i % 50 + 1))
                say(op="fits_update", key=i % 50 + 1, x=1_000_000 + i, rows=cur.rowcount)
            else:
                cur = conn.execute("UPDATE sessions SET observer = %s WHERE session_id = 's2'", (sid,))
                say(op="sess_update", rows=cur.rowcount)
        except psycopg.Error as exc:
            say(op="error", type=type(exc).__name__, message=str(exc).strip())
    say(op="done", writes=i)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
