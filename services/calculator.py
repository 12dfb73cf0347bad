"""The policy calculator (政策计算器) and 政策找企业: for one enterprise, every listed fund item matched or not, the
expected amount, and each unmet condition with by how much it falls short (不足之处); the application calendar (申报日历).

It evaluates the same condition tree the dry run compiles to SQL (rules/conditions.py and db/sql/conditions.py share
three-valued logic), so the two agree for the same enterprise. A listed version is frozen, so its configuration is
parsed once per process and kept (`_parsed`); a page then costs one query for the list and pure-Python evaluation.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Enterprise
from db.repositories import fund_items
from rules.amounts import AmountResult, AnyStandard, amount_for_facts, parse_standard
from rules.compiled import Blocking, Compiled, compile_conditions
from rules.conditions import facts_of, parse_condition
from schemas.conditions import Node
from schemas.fields import FIELDS, FieldType
from schemas.localtime import local_date
from schemas.portal import CalculatorOut, CalculatorRow, Shortfall
from schemas.vocabulary import FundItemMode, Role
from services import notices as notice_service
from services.errors import Forbidden
from services.scope import Scope


@dataclass(frozen=True)
class ParsedItem:
    """What the calculator needs of one frozen version, parsed once."""

    conditions: Node
    compiled: Compiled  # the conditions compiled once: the truth alone, and the 不足之处 with cached leaf texts
    standard: AnyStandard
    standard_key: str  # the standard's canonical JSON: items with the same standard share its amounts
    bases: tuple[str, ...]  # the fields the standard reads (its amount depends on nothing else)
    window: tuple[date, date] | None
    guide: dict[str, Any]
    officer: dict[str, Any]
    policy: dict[str, Any]
    serial: int = field(default_factory=lambda: next(_serials))  # names this parse in the row cache


_serials = itertools.count(1)
# (database, fund item id, version) → the parsed frozen version; ids repeat across databases (tests, benches).
_parsed: dict[tuple[str, int, int], ParsedItem] = {}


def _bases(standard: Any) -> set[str]:
    found = {standard.base} if isinstance(getattr(standard, "base", None), str) else set()
    for part in getattr(standard, "parts", None) or []:
        found |= _bases(part)
    return found


# (standard's JSON, its base facts) → the amount: a pure function of the two, computed once (bounded).
_amounts: dict[tuple[str, tuple], AmountResult] = {}


def _amount(parsed: ParsedItem, facts: dict[str, Any]) -> AmountResult:
    key = (parsed.standard_key, tuple(facts.get(name) for name in parsed.bases))
    found = _amounts.get(key)
    if found is None:
        if len(_amounts) >= 100_000:
            _amounts.clear()
        found = _amounts[key] = amount_for_facts(parsed.standard, facts)
    return found


def _parse(config: dict[str, Any]) -> ParsedItem:
    window = config.get("window")
    conditions = parse_condition(config["conditions"])
    standard = parse_standard(config["standard"])
    return ParsedItem(
        conditions=conditions,
        compiled=compile_conditions(conditions),
        standard=standard,
        standard_key=json.dumps(config["standard"], sort_keys=True, ensure_ascii=False),
        bases=tuple(sorted(_bases(standard))),
        window=(date.fromisoformat(window["start"]), date.fromisoformat(window["end"])) if window else None,
        guide=config.get("guide") or {},
        officer=config.get("service_officer") or {},
        policy=config.get("policy") or {},
    )


def parsed_items(*, session: Session) -> list[tuple[Any, str, ParsedItem]]:
    """The listed items (light rows) with their department's name and parsed configuration (only new versions are
    read)."""
    listed = fund_items.listed_items(session=session)
    database = fund_items.database_key(session=session)
    keys = [(database, item.id, item.listed_version or item.current_version) for item in listed]
    missing = [key[1:] for key in keys if key not in _parsed]
    for (item_id, version), config in fund_items.configs_of(session=session, keys=missing).items():
        _parsed[(database, item_id, version)] = _parse(config)
    return [(item, item.department_name, _parsed[key]) for item, key in zip(listed, keys, strict=True) if key in _parsed]


def today_local() -> date:
    return local_date(datetime.now(UTC))


# One pydantic Shortfall per distinct explained leaf, shared by every row that shows it (rows are read, never changed).
_shortfalls: dict[Blocking, Shortfall] = {}


def _shortfall(b: Blocking) -> Shortfall:
    found = _shortfalls.get(b)
    if found is None:
        if len(_shortfalls) >= 100_000:
            _shortfalls.clear()
        found = _shortfalls[b] = Shortfall.model_construct(field=b.field, label=b.label, text=b.text, missing=b.missing)
    return found


def row_for(item: Any, department: str, parsed: ParsedItem, facts: dict[str, Any], today: date) -> CalculatorRow:
    """One item for one enterprise's facts."""
    # Most items are decided by the truth alone; only an item that is not met is explained (不足之处).
    matched = parsed.compiled.truth(facts) is True
    blocking = () if matched else parsed.compiled.explain(facts)[1]
    amount = _amount(parsed, facts) if matched else None
    # Rows are read, never changed: one row per distinct outcome of an item on a day, shared by every answer with it.
    key = (parsed.serial, item.code, item.name, item.mode, department, today, matched, blocking,
           None if amount is None else (amount.amount_fen, amount.quantified, amount.explanation))  # fmt: skip
    found = _rows.get(key)
    if found is None:
        if len(_rows) >= 100_000:
            _rows.clear()
        found = _rows[key] = _row(item, department, parsed, today, matched, blocking, amount)
    return found


_rows: dict[tuple, CalculatorRow] = {}


def _row(
    item: Any,
    department: str,
    parsed: ParsedItem,
    today: date,
    matched: bool,
    blocking: tuple[Blocking, ...],
    amount: AmountResult | None,
) -> CalculatorRow:
    start, end = parsed.window if parsed.window else (None, None)
    open_now = parsed.window is None or (start <= today <= end)  # type: ignore[operator]
    mode = FundItemMode(item.mode)
    # Built without re-validation: every value comes from a validated configuration or the archive.
    return CalculatorRow.model_construct(
        code=item.code,
        name=item.name,
        mode=mode,
        mode_label=mode.label,
        department_name=department,
        matched=matched,
        amount_fen=amount.amount_fen if amount and amount.quantified else None,
        amount_text=amount.explanation if amount else "",
        shortfalls=[_shortfall(b) for b in blocking],
        window_start=start,
        window_end=end,
        open_now=open_now,
        days_left=(end - today).days + 1 if end and start <= today <= end else None,  # type: ignore[operator]
    )


def calculate_for(*, session: Session, enterprise: Enterprise, today: date | None = None) -> CalculatorOut:
    """Every listed item for one enterprise: matched ones first (largest amount first), then the near misses."""
    day = today or today_local()
    facts = facts_of(enterprise)
    rows = [row_for(item, name, parsed, facts, day) for item, name, parsed in parsed_items(session=session)]
    rows.sort(key=lambda r: (not r.matched, -(r.amount_fen or 0), len(r.shortfalls), r.code))
    matched = [r for r in rows if r.matched]
    return CalculatorOut(
        uscc=enterprise.uscc,
        enterprise_name=enterprise.name,
        today=day,
        matched=len(matched),
        expected_total_fen=sum(r.amount_fen or 0 for r in matched),
        items=rows,
    )


def calculate(*, session: Session, scope: Scope, uscc: str, today: date | None = None) -> CalculatorOut:
    """The calculator for an enterprise the caller may see (an enterprise: only itself)."""
    if scope.role not in (Role.ENTERPRISE, Role.ADMIN):
        raise Forbidden("政策计算器仅供企业本身使用", rule="role")
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    return calculate_for(session=session, enterprise=enterprise, today=today)


def item_detail(*, session: Session, code: str) -> tuple[Any, str, ParsedItem] | None:
    """One listed item with its guide (宜昌规则第二十三条) and service officer."""
    return next((row for row in parsed_items(session=session) if row[0].code == code), None)


def calendar(rows: list[CalculatorRow], today: date) -> list[CalculatorRow]:
    """The 申报日历: items open now first, the soonest closing first; then the ones still to open, soonest first.
    No-application items have no window and are left out (nothing to apply for)."""
    windowed = [r for r in rows if r.window_start is not None and r.window_end is not None]
    open_now = sorted((r for r in windowed if r.open_now), key=lambda r: (r.window_end, r.code))
    later = sorted((r for r in windowed if r.window_start > today), key=lambda r: (r.window_start, r.code))
    return [*open_now, *later]


# -- 政策自测: the same evaluation over facts typed in by anyone ----------------------------------------------------


@dataclass(frozen=True)
class SelfTest:
    """Every listed item against typed-in facts (nobody's archive): matched first, then the near misses."""

    today: date
    items: list[CalculatorRow]
    matched: int
    expected_total_fen: int


def _tags_in(node: Any, out: dict[str, set[str]]) -> None:
    if getattr(node, "op", None) in ("all", "any"):
        for child in node.items:
            _tags_in(child, out)
    elif getattr(node, "op", None) == "not":
        _tags_in(node.item, out)
    elif FIELDS.get(getattr(node, "field", "")) is not None and FIELDS[node.field].type is FieldType.TAGS:
        values = node.value if isinstance(node.value, list | tuple) else [node.value]
        out.setdefault(node.field, set()).update(str(v) for v in values)


def self_test(*, session: Session, facts: dict[str, Any], today: date | None = None) -> SelfTest:
    """政策自测: the calculator (same evaluator, same rows) over facts typed in by the visitor; nothing is stored."""
    day = today or today_local()
    listed = parsed_items(session=session)
    rows = [row_for(item, name, parsed, facts, day) for item, name, parsed in listed]
    rows.sort(key=lambda r: (not r.matched, -(r.amount_fen or 0), len(r.shortfalls), r.code))
    matched = [r for r in rows if r.matched]
    return SelfTest(day, rows, len(matched), sum(r.amount_fen or 0 for r in matched))


def listed_tags(*, session: Session) -> dict[str, list[str]]:
    """Per tag field, the tags the listed items' conditions ask about (the self-test offers them as choices)."""
    tags: dict[str, set[str]] = {}
    for _, _, parsed in parsed_items(session=session):
        _tags_in(parsed.conditions, tags)
    return {name: sorted(found) for name, found in tags.items()}
