"""Which processes have a database file open, and since when (Linux ``/proc``).

A process that opened a database before a schema change may still hold the old
names in memory (a web app started last month, a cron job that never exits). Read
from ``/proc/<pid>/fd``: only the processes this user may inspect are seen; where
there is no ``/proc`` (macOS, Windows) the answer is "unknown" (``None``), never
"nobody".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class OpenBy:
    pid: int
    command: str  # its command line, shortened
    started: datetime | None  # UTC, naive; to about a second

    def describe(self) -> str:
        when = f"started {self.started:%Y-%m-%d %H:%M:%S} UTC" if self.started else "start time unknown"
        return f"pid {self.pid} ({self.command}), {when}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch, to about a second),
    or None where this cannot be read (not Linux, no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # fields after "(comm)": state is field 3, starttime (clock ticks after boot) field 22
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = " ".join(" ".join(part.decode(errors="replace").split()) for part in raw.split(b"\0") if part)
    return text if len(text) <= 120 else text[:117] + "…"


def processes_with_open(path: str | os.PathLike[str]) -> list[OpenBy] | None:
    """Other processes that have the database ``path`` (or its ``-wal``/``-shm``) open,
    by pid; None where this cannot be known (no ``/proc``)."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    base = os.path.realpath(path)
    targets = {base, base + "-wal", base + "-shm"}
    me = os.getpid()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:  # gone, or not ours to inspect
            continue
        for fd in fds:
            try:
                target = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            if target in targets:
                pid = int(entry.name)
                started = process_started(pid)
                found.append(
                    OpenBy(
                        pid,
                        _command(pid),
                        datetime.fromtimestamp(started, UTC).replace(tzinfo=None) if started else None,
                    )
                )
                break
    return sorted(found, key=lambda p: p.pid)
