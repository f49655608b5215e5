"""The runbook's exit-code table is the code's: every error class of the three packages
is in it with its own exit code, and every code in it is one the code uses."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import catalog
import compat
import migration
from migration.errors import CatalogError

ROOT = Path(__file__).resolve().parents[2]


def error_classes() -> dict[str, int]:
    for package in (migration, compat, catalog):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    found: dict[str, int] = {}
    todo = [CatalogError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls.exit_code
        todo += cls.__subclasses__()
    return found


def documented() -> dict[str, int]:
    text = (ROOT / "docs" / "runbook.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    out: dict[str, int] = {}
    for code, classes in re.findall(r"^\| (\d+) \|[^|]*\|([^|]*)\|$", section, flags=re.M):
        for name in re.findall(r"`(\w+)`", classes):
            out[name] = int(code)
    return out


def test_every_error_is_in_the_table_with_its_code() -> None:
    code, doc = error_classes(), documented()
    # subclasses of a documented error inherit its line (UsageError's kinds, FitsReadError's)
    missing = {n: c for n, c in code.items() if n not in doc and not any(c == doc.get(b) for b in _bases(n))}
    assert missing == {}, "errors not in docs/runbook.md's exit-code table"
    assert {n: c for n, c in doc.items() if code.get(n) != c} == {}, "the table says another code"


def _bases(name: str) -> list[str]:
    todo, seen = [CatalogError], {}
    while todo:
        cls = todo.pop()
        seen[cls.__name__] = cls
        todo += cls.__subclasses__()
    return [b.__name__ for b in seen[name].__mro__[1:] if issubclass(b, CatalogError)]
