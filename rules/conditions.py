"""Eligibility conditions at work: explain them for one enterprise (db.sql.conditions compiles them to SQL for many).

Both paths use three-valued (Kleene) logic, exactly as SQL treats NULL, so they always agree:
a leaf whose field has no value is unknown; not(unknown) is unknown; `all` is false when an item is
false, else unknown when an item is unknown; `any` is true when an item is true, else unknown when an
item is unknown. An enterprise is eligible only when the whole tree is definitely true, which is what a
WHERE clause selects. Tags are never unknown: a NULL (or JSON null) tag list counts as an empty list.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

from schemas.conditions import (
    AllOf,
    AnyOf,
    ConditionResult,
    Evaluation,
    Leaf,
    Node,
    NotOf,
    parse_condition,
)
from schemas.fields import FIELDS, TYPE_LABELS, FieldSpec, FieldType, format_bp, format_fen
from schemas.regions import industry_label, region_area_name

__all__ = ["ConditionResult", "Evaluation", "evaluate", "facts_of", "parse_condition"]

Truth = bool | None  # None is SQL's UNKNOWN

# --------------------------------------------------------------------------- facts


def _fact(spec: FieldSpec, value: Any) -> Any:
    """One archive value normalised to the field's Python type (None means no data)."""
    bad = f"企业数据字段 {spec.name}（{spec.label}）的值 {value!r} 不是{TYPE_LABELS[spec.type]}"
    if spec.type is FieldType.TAGS:
        if value is None:
            return []
        if not isinstance(value, list | tuple) or not all(isinstance(tag, str) for tag in value):
            raise ValueError(bad)
        return list(value)
    if value is None:
        return None
    match spec.type:
        case FieldType.INT | FieldType.MONEY_FEN | FieldType.RATIO_BP:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(bad)
        case FieldType.DATE:
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    raise ValueError(bad) from None
            if not isinstance(value, date):
                raise ValueError(bad)
        case FieldType.STRING | FieldType.ENUM:
            if not isinstance(value, str):
                raise ValueError(bad)
    return value


def facts_of(source: Any) -> dict[str, Any]:
    """The condition facts of an enterprise row (an object with the fields' columns as attributes), or of a dict
    with the same keys (missing keys = no data)."""
    if isinstance(source, Mapping):
        return {name: _fact(spec, source.get(name)) for name, spec in FIELDS.items()}
    return {name: _fact(spec, getattr(source, spec.column, None)) for name, spec in FIELDS.items()}


# --------------------------------------------------------------------------- formatting


def _fmt_gap(spec: FieldSpec, gap: int) -> str:
    match spec.type:
        case FieldType.MONEY_FEN:
            return format_fen(gap)
        case FieldType.RATIO_BP:
            return f"{format_bp(gap)} 个百分点"
        case FieldType.DATE:
            return f"{gap} 天"
    return f"{gap:,} {spec.unit}".rstrip()


_SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
_INVERSE = {"eq": "ne", "ne": "eq", "gt": "le", "le": "gt", "ge": "lt", "lt": "ge", "in": "not_in", "not_in": "in"}


def _requirement(spec: FieldSpec, op: str, negated: bool, value: Any) -> str:
    """The rule in words; `negated` is set only for operators without an inverse operator."""
    no = "不" if negated else ""
    if op in _SYMBOLS:
        return f"{_SYMBOLS[op]} {spec.format(value)}"
    match op:
        case "between":
            return f"{no}介于 {spec.format(value[0])} 至 {spec.format(value[1])}（含）"
        case "in" | "not_in":
            verb = "属于" if op == "in" else "不属于"
            return f"{verb} {'、'.join(spec.format(v) for v in value)}"
        case "prefix" if spec.name == "region_code":
            return f"{no}位于 {region_area_name(value)}"
        case "prefix" if spec.name == "industry_code":
            return f"{no}属于 {industry_label(value)}"
        case "prefix":
            return f"{no}以 {value} 开头"
        case "has_tag":
            return f"{no}具有“{value}”"
        case "has_any_tags":
            return ("不具有以下任何一个：" if negated else "具有以下任一：") + "、".join(value)
        case "has_all_tags":
            return ("不同时具有：" if negated else "同时具有：") + "、".join(value)
    raise AssertionError(op)  # pragma: no cover


def _holds(op: str, actual: Any, value: Any) -> bool:
    match op:
        case "eq":
            return actual == value
        case "ne":
            return actual != value
        case "gt":
            return actual > value
        case "ge":
            return actual >= value
        case "lt":
            return actual < value
        case "le":
            return actual <= value
        case "between":
            return value[0] <= actual <= value[1]
        case "in":
            return actual in value
        case "not_in":
            return actual not in value
        case "prefix":
            return actual.startswith(value)
        case "has_tag":
            return value in actual
        case "has_any_tags":
            return any(tag in actual for tag in value)
        case "has_all_tags":
            return all(tag in actual for tag in value)
    raise AssertionError(op)  # pragma: no cover


def _diff(a: Any, b: Any) -> int:
    return (a - b).days if isinstance(a, date) else a - b


def _gap(op: str, actual: Any, value: Any) -> tuple[int, Literal["below", "above"]] | None:
    """How far an unmet ordered value is from the nearest passing value (values are integers or days)."""
    match op:
        case "ge":
            return _diff(value, actual), "below"
        case "gt":
            return _diff(value, actual) + 1, "below"
        case "le":
            return _diff(actual, value), "above"
        case "lt":
            return _diff(actual, value) + 1, "above"
        case "eq":
            return (_diff(value, actual), "below") if actual < value else (_diff(actual, value), "above")
        case "between":
            if actual < value[0]:
                return _diff(value[0], actual), "below"
            return _diff(actual, value[1]), "above"
    return None


def _leaf_result(leaf: Leaf, facts: Mapping[str, Any], negated: bool) -> ConditionResult:
    spec = FIELDS[leaf.field]
    op, flag = leaf.op, negated
    if negated and op in _INVERSE:
        op, flag = _INVERSE[op], False
    actual = facts.get(spec.name)
    requirement = f"{spec.label} {_requirement(spec, op, flag, leaf.value)}"
    common = {"field": spec.name, "label": spec.label, "op": leaf.op, "negated": negated, "expected": leaf.value}
    if actual is None:
        return ConditionResult(**common, status="missing", actual=None, text=f"{requirement}：暂无数据，无法判断")
    ok = _holds(op, actual, leaf.value) != flag
    shown = f"{requirement}：实际 {spec.format(actual)}"
    if ok:
        return ConditionResult(**common, status="met", actual=actual, text=f"{shown}，符合")
    shortfall, verdict = None, "不符合"
    gap = (
        None
        if flag or spec.type in (FieldType.STRING, FieldType.ENUM, FieldType.TAGS)
        else _gap(op, actual, leaf.value)
    )
    if gap is not None:
        shortfall, side = gap
        if spec.type is FieldType.DATE:
            verdict = f"{'早' if side == 'below' else '晚'} {_fmt_gap(spec, shortfall)}"
        else:
            verdict = f"{'不足' if side == 'below' else '超出'} {_fmt_gap(spec, shortfall)}"
    elif op == "has_all_tags" and not flag:
        verdict = "缺少 " + "、".join(tag for tag in leaf.value if tag not in actual)
    return ConditionResult(**common, status="unmet", actual=actual, text=f"{shown}，{verdict}", shortfall=shortfall)


def _and(truths: Sequence[Truth]) -> Truth:
    if any(t is False for t in truths):
        return False
    return None if any(t is None for t in truths) else True


def _or(truths: Sequence[Truth]) -> Truth:
    if any(t is True for t in truths):
        return True
    return None if any(t is None for t in truths) else False


_TRUTH: dict[str, Truth] = {"met": True, "unmet": False, "missing": None}


def _walk(node: Node, facts: Mapping[str, Any], negated: bool, out: list[ConditionResult]) -> tuple[Truth, list[int]]:
    """Truth of `node` (negated if asked) and the indexes of the leaves that keep it from being true.

    Negation is pushed down to the leaves (De Morgan holds in Kleene logic), so each leaf can explain
    itself as the requirement the enterprise actually has to meet.
    """
    if isinstance(node, NotOf):
        return _walk(node.item, facts, not negated, out)
    if isinstance(node, AllOf | AnyOf):
        conjunction = isinstance(node, AllOf) != negated
        results = [_walk(item, facts, negated, out) for item in node.items]
        truth = (_and if conjunction else _or)([t for t, _ in results])
        if truth is True:
            return True, []
        return truth, [i for t, blockers in results if t is not True for i in blockers]
    out.append(_leaf_result(node, facts, negated))
    truth = _TRUTH[out[-1].status]
    return truth, ([] if truth is True else [len(out) - 1])


def evaluate(cond: Node | Mapping[str, Any], facts: Any) -> Evaluation:
    """Evaluate a condition tree for one enterprise, with a Chinese explanation per leaf (不足之处)."""
    tree = cond if isinstance(cond, AllOf | AnyOf | NotOf | Leaf) else parse_condition(cond)
    items: list[ConditionResult] = []
    truth, blockers = _walk(tree, facts_of(facts), False, items)
    for i in blockers:
        items[i] = items[i].model_copy(update={"blocking": True})
    outcome = {True: "true", False: "false", None: "unknown"}[truth]
    return Evaluation(eligible=truth is True, outcome=outcome, items=items)


def truth(cond: Node, facts: Mapping[str, Any]) -> Truth:
    """The tree's three-valued truth alone, for facts already normalised by `facts_of` (no explanations): the
    calculator's fast path over many items; `evaluate` explains the ones that are not true (same logic)."""
    if isinstance(cond, NotOf):
        inner = truth(cond.item, facts)
        return None if inner is None else not inner
    if isinstance(cond, AllOf):
        return _and([truth(item, facts) for item in cond.items])
    if isinstance(cond, AnyOf):
        return _or([truth(item, facts) for item in cond.items])
    actual = facts.get(FIELDS[cond.field].name)
    return None if actual is None else _holds(cond.op, actual, cond.value)


def _negated_truth(node: Node, facts: Mapping[str, Any], negated: bool) -> Truth:
    value = truth(node, facts)
    return (None if value is None else not value) if negated else value


def _blocking(node: Node, facts: Mapping[str, Any], negated: bool, out: list[ConditionResult]) -> Truth:
    """Like `_walk`, but explains only the leaves that keep the tree from being true (the others are not needed)."""
    if isinstance(node, NotOf):
        return _blocking(node.item, facts, not negated, out)
    if isinstance(node, AllOf | AnyOf):
        conjunction = isinstance(node, AllOf) != negated
        truths = [_negated_truth(item, facts, negated) for item in node.items]
        value = (_and if conjunction else _or)(truths)
        if value is not True:
            for item, item_truth in zip(node.items, truths, strict=True):
                if item_truth is not True:
                    _blocking(item, facts, negated, out)
        return value
    result = _leaf_result(node, facts, negated)
    if result.status != "met":
        out.append(result.model_copy(update={"blocking": True}))
    return _TRUTH[result.status]


def shortfalls(cond: Node, facts: Mapping[str, Any]) -> list[ConditionResult]:
    """The 不足之处 alone: the blocking leaves `evaluate` would mark, for facts already normalised by `facts_of`
    (empty when the tree is true)."""
    out: list[ConditionResult] = []
    _blocking(cond, facts, False, out)
    return out


Test = Callable[[Mapping[str, Any]], Truth]


def _leaf_test(leaf: Leaf) -> Test:
    name, op, value = FIELDS[leaf.field].name, leaf.op, leaf.value
    if op in ("ge", "gt", "le", "lt", "eq", "ne"):
        compare = getattr(operator, op)

        def ordered(facts: Mapping[str, Any]) -> Truth:
            actual = facts.get(name)
            return None if actual is None else compare(actual, value)

        return ordered

    def other(facts: Mapping[str, Any]) -> Truth:
        actual = facts.get(name)
        return None if actual is None else _holds(op, actual, value)

    return other


def compile_truth(cond: Node) -> Test:
    """`truth` compiled once into nested closures (the calculator keeps one per frozen version): same Kleene logic,
    with the short cuts it allows (`all` stops at a false item, `any` at a true one)."""
    if isinstance(cond, NotOf):
        inner = compile_truth(cond.item)

        def negation(facts: Mapping[str, Any]) -> Truth:
            value = inner(facts)
            return None if value is None else not value

        return negation
    if isinstance(cond, AllOf | AnyOf):
        tests = [compile_truth(item) for item in cond.items]
        stop = isinstance(cond, AnyOf)  # the value that decides the group at once

        def group(facts: Mapping[str, Any]) -> Truth:
            unknown = False
            for test in tests:
                value = test(facts)
                if value is stop:
                    return stop
                if value is None:
                    unknown = True
            return None if unknown else not stop

        return group
    return _leaf_test(cond)
