"""The files a scan reads: paths walked, each file decoded and handed to its scanner."""

from __future__ import annotations

import io
import os
import tokenize
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import sqlglot

from compat.renames import RenameDeclaration
from compat.scan.findings import Finding
from compat.scan.names import UPSTREAM_MODELS_MODULES
from compat.scan.python import scan_python
from compat.scan.sql import scan_sql

SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__"})
SUFFIXES = (".py", ".sql")

SkipHandler = Callable[[Path, str], None]


def scan_paths(
    paths: Iterable[Path | str],
    *,
    decl: RenameDeclaration,
    on_skip: SkipHandler | None = None,
    models_modules: tuple[str, ...] = UPSTREAM_MODELS_MODULES,
) -> list[Finding]:
    """Scan files and directory trees for the old names of ``decl``; findings
    sorted by position.

    Directories are walked for ``.py`` and ``.sql`` files, skipping
    :data:`SKIP_DIRS` and hidden directories below the given root. A path that
    does not exist raises :class:`FileNotFoundError` (a typo must not read as a
    clean scan). Files that cannot be read, decoded or parsed are passed to
    ``on_skip(path, reason)`` and otherwise ignored.
    """
    findings: list[Finding] = []
    for path in iter_files(paths):
        findings.extend(scan_file(path, decl=decl, on_skip=on_skip, models_modules=models_modules))
    return sorted(set(findings))


def iter_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """The files :func:`scan_paths` reads, each once, in a stable order."""
    seen: set[Path] = set()
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"no such file or directory: {root}")
        if root.is_file():
            candidates: Iterable[Path] = [root]
        else:
            candidates = _walk(root)
        for path in candidates:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                yield path


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(SUFFIXES):
                yield Path(dirpath, name)


def scan_file(
    path: Path,
    *,
    decl: RenameDeclaration,
    on_skip: SkipHandler | None = None,
    models_modules: tuple[str, ...] = UPSTREAM_MODELS_MODULES,
) -> list[Finding]:
    """Scan one ``.py`` or ``.sql`` file (other files are skipped)."""
    skip = on_skip or (lambda _path, _reason: None)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        skip(path, "not a .py or .sql file")
        return []
    try:
        data = path.read_bytes()
        if suffix == ".py":
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            text = data.decode(encoding)
        else:
            text = data.decode("utf-8-sig")
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as error:
        skip(path, f"cannot read: {error}")
        return []
    try:
        if suffix == ".py":
            return scan_python(
                text, path, decl=decl, package=_package_of(path), models_modules=models_modules
            )
        return scan_sql(text, path, decl=decl)
    except (SyntaxError, ValueError) as error:
        skip(path, f"cannot parse: {error}")
    except sqlglot.errors.TokenError as error:
        skip(path, f"cannot tokenize SQL: {error}")
    except Exception as error:  # noqa: BLE001 - one odd file must not end a whole scan
        skip(path, f"scanner error ({type(error).__name__}: {error}); please report it")
    return []


def _package_of(path: Path) -> str | None:
    """The dotted package a file is in, from the ``__init__.py`` files above it."""
    parts: list[str] = []
    folder = path.resolve().parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts) or None
