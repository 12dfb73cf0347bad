"""The layering rules that import-linter cannot express: no SQL outside db/, no vocabulary literal outside
schemas/vocabulary.py (statuses, event kinds and the like are spelled once)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from schemas import vocabulary

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ["api", "services", "activities", "workflows", "db", "rules", "schemas", "gateways", "cli", "bench"]
# Benchmarks time the database itself (a bulk INSERT is their baseline), so they may hold SQL.
SQL_HOME = {"db", "migrations", "bench"}
# Values that only look like vocabulary: the readiness of the process is not a case's `ready`.
NOT_VOCABULARY = {("api/routers/health.py", "ready")}
# Names of attributes, keywords and variables that hold a vocabulary value.
VALUE_NAMES = re.compile(
    r"^(status|to_status|from_status|new_status|kind|consent_status|finance_status|outcome|"
    r"our_status|their_status|category|actor|return_kind)$"
)
# The statuses and event kinds: the values whose copies drifted apart before they were spelled once.
STATUS_VOCABULARIES = (
    vocabulary.CaseStatus, vocabulary.EventKind, vocabulary.PaymentStatus, vocabulary.NoticeStatus,
    vocabulary.TaskStatus, vocabulary.ObjectionStatus, vocabulary.ConsentStatus, vocabulary.FundItemStatus,
    vocabulary.AlertStatus, vocabulary.ReconRunStatus, vocabulary.FinanceStatus, vocabulary.PushKind,
    vocabulary.BudgetEntryKind, vocabulary.FundItemMode, vocabulary.NoticeCategory, vocabulary.SystemActor,
)  # fmt: skip
VOCABULARY_VALUES = {m.value for v in STATUS_VOCABULARIES for m in v}


def _modules() -> list[Path]:
    files = []
    for package in PRODUCTION:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript):  # row["status"]
        s = node.slice
        return s.value if isinstance(s, ast.Constant) and isinstance(s.value, str) else ""
    return ""


def _literals(node: ast.AST) -> list[str]:
    """String constants directly in a value position (a constant, a tuple/list/set of them, either branch of an if)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [x for e in node.elts for x in _literals(e)]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


def vocabulary_literals(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.AST]] = []
        if isinstance(node, ast.Compare):
            left = _name(node.left)
            pairs += [(left, c) for c in node.comparators]
            pairs += [(_name(c), node.left) for c in node.comparators]
        elif isinstance(node, ast.keyword) and node.arg:
            pairs.append((node.arg, node.value))
        elif isinstance(node, ast.Assign):
            pairs += [(_name(t), node.value) for t in node.targets]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "in_":
            pairs += [(_name(node.func.value), a) for a in node.args]
        elif isinstance(node, ast.Dict):
            pairs += [
                (k.value, v)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            ]
        for name, value in pairs:
            if VALUE_NAMES.match(name or ""):
                found += [
                    f"{path.relative_to(ROOT)}:{getattr(value, 'lineno', '?')}: {name} = {lit!r}"
                    for lit in _literals(value)
                    if lit in VOCABULARY_VALUES
                ]
    return found


def test_no_vocabulary_literal_outside_the_vocabulary_module() -> None:
    found = [
        hit
        for path in _modules()
        if path != ROOT / "schemas" / "vocabulary.py"
        for hit in vocabulary_literals(path)
        if (str(path.relative_to(ROOT)), hit.rsplit("'", 2)[-2]) not in NOT_VOCABULARY
    ]
    assert found == [], "use the enums of schemas/vocabulary.py:\n" + "\n".join(found)


def test_templates_compare_no_vocabulary_literal() -> None:
    pattern = re.compile(r"(status|kind|outcome|mode)\s*(==|!=|in)\s*\(?['\"]([a-z_]+)['\"]")
    found = []
    for template in sorted((ROOT / "api" / "templates").rglob("*.html")):
        for lineno, line in enumerate(template.read_text(encoding="utf-8").splitlines(), 1):
            found += [
                f"{template.name}:{lineno}: {m.group(0)}"
                for m in pattern.finditer(line)
                if m.group(3) in VOCABULARY_VALUES
            ]
    assert found == [], (
        "templates compare with values the page is given (e.g. a `final` flag), not literals:\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if p.relative_to(ROOT).parts[0] not in SQL_HOME],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_sql_outside_db(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sqlalchemy":
            # a Session type hint is allowed: services receive the unit of work; everything else is SQL
            extra = [
                a.name
                for a in node.names
                if not (node.module == "sqlalchemy.orm" and a.name == "Session")
                and not node.module.startswith("sqlalchemy.exc")
            ]
            problems += [f"line {node.lineno}: from {node.module} import {n}" for n in extra]
        elif isinstance(node, ast.Import):
            problems += [
                f"line {node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] == "sqlalchemy"
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "scalar", "scalars")
            and _name(node.func.value) in ("session", "s", "conn", "connection", "db")
        ):
            problems.append(f"line {node.lineno}: {_name(node.func.value)}.{node.func.attr}(…)")
    assert problems == [], "SQL belongs in db/ (repositories):\n" + "\n".join(problems)
