"""The guide's 申报条件 text generated from the condition tree, so the published wording and the rule that decides
can never disagree.

Each leaf is worded as the calculator words it (rules.conditions: "从业人数 ≥ 50 人"); a `not` over one leaf is the
requirement to meet ("信用状态 ≠ 严重失信"), a `not` over a group lists what must not be the case. Levels are
numbered as Chinese official documents number them: （一） / 1. / (1) / ①.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.conditions import _INVERSE, _requirement
from schemas.conditions import AllOf, AnyOf, Leaf, Node, NotOf, parse_condition
from schemas.fields import FIELDS

__all__ = ["conditions_text", "leaf_text"]

_CN = "一二三四五六七八九十"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def _chinese(n: int) -> str:
    if n <= 10:
        return _CN[n - 1]
    if n < 20:
        return "十" + _CN[n - 11]
    tens, ones = divmod(n, 10)
    return _CN[tens - 1] + "十" + (_CN[ones - 1] if ones else "")


def _number(depth: int, n: int) -> str:
    match depth:
        case 0:
            return f"（{_chinese(n)}）"
        case 1:
            return f"{n}. "
        case 2:
            return f"({n})"
    return _CIRCLED[n - 1] if n <= len(_CIRCLED) else f"{n})"


def leaf_text(leaf: Leaf, *, negated: bool = False) -> str:
    """One comparison as the requirement an enterprise has to meet, worded as the calculator explains it."""
    spec = FIELDS[leaf.field]
    op, flag = leaf.op, negated
    if negated and op in _INVERSE:
        op, flag = _INVERSE[op], False
    return f"{spec.label} {_requirement(spec, op, flag, leaf.value)}"


def _heading(node: AllOf | AnyOf | NotOf) -> str:
    if isinstance(node, AllOf):
        return "同时满足以下条件："
    if isinstance(node, AnyOf):
        return "满足以下条件之一："
    inner = node.item
    return "不得同时存在以下情形：" if isinstance(inner, AllOf) else "不得存在以下任一情形："


def _children(node: AllOf | AnyOf | NotOf) -> list[Node]:
    if isinstance(node, NotOf):
        inner = node.item
        return list(inner.items) if isinstance(inner, AllOf | AnyOf) else [inner]
    return list(node.items)


def _line(node: Node, depth: int) -> str:
    """A child's text: a leaf in a sentence, a group as its heading and its numbered items."""
    if isinstance(node, Leaf):
        return leaf_text(node)
    if isinstance(node, NotOf) and isinstance(node.item, Leaf):
        return leaf_text(node.item, negated=True)
    items = _children(node)
    parts = [f"{_number(depth + 1, i)}{_line(child, depth + 1)}" for i, child in enumerate(items, start=1)]
    return _heading(node) + "；".join(parts)


def conditions_text(cond: Node | Mapping[str, Any]) -> str:
    """The 申报条件 paragraph of the guide for a condition tree, one numbered line per top-level item."""
    tree = cond if isinstance(cond, AllOf | AnyOf | NotOf | Leaf) else parse_condition(cond)
    if isinstance(tree, Leaf) or (isinstance(tree, NotOf) and isinstance(tree.item, Leaf)):
        return f"申报单位须符合以下条件：{_line(tree, 0)}。"
    items = _children(tree)
    lines = [f"{_number(0, i)}{_line(child, 0)}" for i, child in enumerate(items, start=1)]
    body = "；\n".join(lines) + "。"
    lead = "申报单位" if isinstance(tree, NotOf) else "申报单位须"
    return f"{lead}{_heading(tree)}\n{body}"
