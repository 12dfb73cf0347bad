"""rules/ is pure and schemas/ is the bottom layer: rules import only schemas (no ORM, no I/O, no settings), and
schemas import neither rules nor db, so the two never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"activities", "api", "cli", "db", "gateways", "rules", "schemas", "services", "settings", "standins",
           "workflows"}  # fmt: skip
# Engines, frameworks and I/O a pure rule never needs.
IMPURE = {"fastapi", "httpx", "os", "pathlib", "psycopg", "requests", "socket", "sqlalchemy", "sqlite3", "subprocess",
          "temporalio"}  # fmt: skip


def imports(package: str) -> list[tuple[str, str]]:
    """(module file, imported top-level name) for every import in the package, lazy ones included."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out += [(path.name, alias.name.split(".")[0]) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((path.name, node.module.split(".")[0]))
    return out


@pytest.mark.parametrize("package", ["rules"])
def test_rules_import_only_schemas(package: str) -> None:
    found = imports(package)
    assert found, "no imports found: wrong path?"
    wrong = [(f, name) for f, name in found if (name in PROJECT and name not in {"rules", "schemas"}) or name in IMPURE]
    assert wrong == []


def test_schemas_import_neither_rules_nor_db() -> None:
    wrong = [(f, name) for f, name in imports("schemas") if name in PROJECT - {"schemas"} or name in IMPURE - {"os"}]
    assert wrong == []
