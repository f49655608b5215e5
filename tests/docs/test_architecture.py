"""docs/architecture.md is drawn from the code as it is: its module list names every
module of the three packages and nothing else, and the direction of dependency it
states holds (no module of migration/ imports compat or catalog, none of compat/
imports catalog; CLI modules compose across), function-local imports included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = {"migration": 0, "compat": 1, "catalog": 2}


def modules() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def test_the_module_list_is_the_tree() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:catalog|compat|migration)/[\w/]+\.py)`", doc))
    assert modules() - named == set(), "modules missing from docs/architecture.md"
    assert named - modules() == set(), "docs/architecture.md names modules that do not exist"


def is_cli(path: str) -> bool:
    return path.endswith(("/cli.py", "/__main__.py")) or "/cli/" in path


def test_one_direction_of_dependency() -> None:
    wrong = []
    for path in sorted(modules()):
        if is_cli(path):
            continue
        rank = PACKAGES[path.split("/")[0]]
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and PACKAGES[top] > rank:
                    wrong.append(f"{path}:{node.lineno} imports {name}")
    assert wrong == []


def test_no_module_over_500_lines() -> None:
    big = {p: n for p in modules() if (n := len((ROOT / p).read_text().splitlines())) > 500}
    assert big == {}


def test_the_generic_packages_name_no_catalog_table() -> None:
    """Neither the engine nor the compat layer spells a table or column of the catalog
    in its code (docstrings may use them as examples): the names come from a declaration."""
    tables = (
        "fits_files",
        "imaging_sessions",
        "sessions",
        "session_id",
        "width_pixels",
        "processing_sessions",
        "cameras",
        "telescopes",
    )
    found = []
    lower = [m for m in modules() if m.startswith(("migration/", "compat/")) and not is_cli(m)]
    for path in sorted(lower):
        tree = ast.parse((ROOT / path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if any(re.search(rf"\b{t}\b", node.value) for t in tables) and not _docstring(tree, node):
                    found.append(f"{path}:{node.lineno}")
    assert found == []


def _docstring(tree: ast.AST, node: ast.Constant) -> bool:
    for parent in ast.walk(tree):
        body = getattr(parent, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and body[0].value is node:
            return True
    return False
