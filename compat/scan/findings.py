"""What a scan reports: :class:`Finding`, its kinds, the report and the exit status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PYTHON_ATTR = "python-attr"
PYTHON_IMPORT = "python-import"
PYTHON_NAME = "python-name"
SQL_TABLE = "sql-table"
SQL_COLUMN = "sql-column"
SQL_INDEX = "sql-index"


@dataclass(frozen=True, order=True)
class Finding:
    """One use of an old (v1) name: where, which name, and its v2 replacement."""

    path: Path
    line: int  # 1-based
    col: int  # 1-based, in characters
    old: str  # e.g. "FitsFile.x", "Session", "sessions", "sessions.session_id"
    new: str  # e.g. "FitsFile.width_pixels", "ImagingSession", "imaging_sessions"
    kind: str  # python-attr | python-import | python-name | sql-table | sql-column | sql-index

    def format(self) -> str:
        """``path:line:col  old → new``, as a linter prints it."""
        return f"{self.path}:{self.line}:{self.col}  {self.old} → {self.new}"


def format_findings(findings: Sequence[Finding]) -> str:
    """The report the CLI prints: one line per finding and a summary line."""
    if not findings:
        return "No old (v1) names found."
    lines = [f.format() for f in findings]
    files = len({f.path for f in findings})
    noun = "name" if len(findings) == 1 else "names"
    lines.append(f"{len(findings)} old {noun} in {files} file{'s' if files != 1 else ''}.")
    return "\n".join(lines)


def exit_code(findings: Sequence[Finding]) -> int:
    """The CLI's exit status: 1 when anything was found, 0 otherwise."""
    return 1 if findings else 0
