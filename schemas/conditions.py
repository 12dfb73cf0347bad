"""Eligibility conditions (申报条件) as data: a typed condition tree over registered enterprise fields.

A tree is made of groups `{"op": "all"|"any", "items": [...]}`, `{"op": "not", "item": {...}}` and
leaves `{"field": ..., "op": ..., "value": ...}`. Fields come from `schemas.fields.FIELDS`; values are
checked against the field's type when the tree is parsed, so a stored tree is always evaluable.
Nothing here is ever executed as code: `rules.conditions` interprets the tree and `db.sql.conditions` compiles it
to SQL.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from schemas.fields import FIELDS, LEAF_OPERATORS, OPERATOR_LABELS, TYPE_LABELS, FieldSpec, FieldType, LeafOp

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # BigInteger columns; larger literals cannot bind on SQLite


EXAMPLE_CONDITION: dict[str, Any] = {
    "op": "all",
    "items": [
        {"field": "region_code", "op": "prefix", "value": "4205"},
        {"field": "size_class", "op": "in", "value": ["small", "micro"]},
        {"field": "employees", "op": "ge", "value": 50},
        {"field": "revenue_fen", "op": "between", "value": [1000000000, 50000000000]},
        {"field": "registered_on", "op": "le", "value": "2023-12-31"},
        {
            "op": "any",
            "items": [
                {"field": "tags", "op": "has_tag", "value": "高新技术企业"},
                {"field": "rd_ratio_bp", "op": "ge", "value": 300},
            ],
        },
        {"op": "not", "item": {"field": "credit_status", "op": "eq", "value": "dishonest"}},
    ],
}


def _where(spec: FieldSpec, op: str) -> str:
    return f"字段 {spec.name}（{spec.label}）运算符 {op}（{OPERATOR_LABELS[op]}）"


def _expect(spec: FieldSpec) -> str:
    if spec.type is FieldType.ENUM:
        return "允许值之一：" + "、".join(f"{v}（{lbl}）" for v, lbl in spec.choices)
    if spec.type is FieldType.DATE:
        return "YYYY-MM-DD 格式的日期"
    if spec.type is FieldType.TAGS:
        return "非空的标签文本"
    if spec.type is FieldType.STRING:
        return "文本"
    return f"整数（单位：{spec.unit}）"


def _scalar(spec: FieldSpec, op: str, raw: Any) -> Any:
    """One value of the field's type, or a ValueError naming the field, the operator and the rule."""
    bad = f"{_where(spec, op)} 的取值必须是{_expect(spec)}，实际为 {raw!r}（{type(raw).__name__}）"
    match spec.type:
        case FieldType.INT | FieldType.MONEY_FEN | FieldType.RATIO_BP:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ValueError(bad)
            if not INT64_MIN <= raw <= INT64_MAX:
                raise ValueError(f"{_where(spec, op)} 的取值 {raw} 超出 64 位整数范围")
            return raw
        case FieldType.DATE:
            if isinstance(raw, datetime):
                raise ValueError(bad)
            if isinstance(raw, date):
                return raw
            if isinstance(raw, str) and _ISO_DATE.fullmatch(raw):
                try:
                    return date.fromisoformat(raw)
                except ValueError:
                    pass
            raise ValueError(bad)
        case FieldType.ENUM:
            if not isinstance(raw, str):
                raise ValueError(bad)
            if raw not in spec.choice_values:
                raise ValueError(f"{_where(spec, op)} 的取值 {raw!r} 不在{_expect(spec)}之内")
            return raw
        case FieldType.STRING | FieldType.TAGS:
            if not isinstance(raw, str):
                raise ValueError(bad)
            if op in ("prefix", "has_tag", "has_any_tags", "has_all_tags") and not raw:
                raise ValueError(f"{_where(spec, op)} 的取值不能为空文本")
            return raw
    raise AssertionError(spec.type)  # pragma: no cover


def _values(spec: FieldSpec, op: str, raw: Any) -> list[Any]:
    if not isinstance(raw, list | tuple):
        raise ValueError(f"{_where(spec, op)} 的取值必须是列表（每项为{_expect(spec)}），实际为 {raw!r}")
    if not raw:
        raise ValueError(f"{_where(spec, op)} 的取值列表不能为空")
    return [_scalar(spec, op, item) for item in raw]


def _coerce_value(spec: FieldSpec, op: str, raw: Any) -> Any:
    if op == "between":
        if not isinstance(raw, list | tuple) or len(raw) != 2:
            raise ValueError(f"{_where(spec, op)} 的取值必须是 [下限, 上限] 两个值（含两端），实际为 {raw!r}")
        lo, hi = (_scalar(spec, op, item) for item in raw)
        if lo > hi:
            raise ValueError(f"{_where(spec, op)} 要求下限不大于上限，实际下限 {lo} > 上限 {hi}")
        return [lo, hi]
    if op in ("in", "not_in", "has_any_tags", "has_all_tags"):
        return _values(spec, op, raw)
    return _scalar(spec, op, raw)


class Leaf(BaseModel):
    """A comparison of one registered enterprise field with a literal value."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {"field": "employees", "op": "ge", "value": 50},
                {"field": "region_code", "op": "prefix", "value": "4205"},
                {"field": "tags", "op": "has_any_tags", "value": ["高新技术企业", "专精特新"]},
            ]
        },
    )

    field: str = Field(description="条件字段名，见字段目录（schemas.fields.FIELDS）")
    op: LeafOp = Field(description="运算符；between 的取值为 [下限, 上限]（含两端）")
    value: Any = Field(description="比较值，按字段类型校验：金额为整数分，比例为整数基点，日期为 YYYY-MM-DD")

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        """Check field, operator and value together so every error names the field and the rule."""
        if not isinstance(data, dict):
            return data
        name = data.get("field")
        if "field" not in data:
            raise ValueError(f"条件节点无效：op={data.get('op')!r} 不是条件组（all、any、not），也没有条件字段 field")
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ValueError(f"未知的条件字段 field={name!r}；可用字段：{'、'.join(FIELDS)}")
        op = data.get("op")
        allowed = "、".join(spec.operators)
        if op not in LEAF_OPERATORS:
            raise ValueError(f"字段 {spec.name}（{spec.label}）的运算符 op={op!r} 无效；允许的运算符：{allowed}")
        if op not in spec.operators:
            raise ValueError(
                f"字段 {spec.name}（{spec.label}，{TYPE_LABELS[spec.type]}）不支持运算符 {op}"
                f"（{OPERATOR_LABELS[op]}）；允许的运算符：{allowed}"
            )
        if "value" not in data:
            raise ValueError(f"{_where(spec, op)} 缺少取值 value")
        return {**data, "value": _coerce_value(spec, op, data["value"])}


def _non_empty(op: str, items: list[Any]) -> list[Any]:
    if not items:
        raise ValueError(f"条件组 {op}（{OPERATOR_LABELS[op]}）的 items 不能为空：至少需要一个条件")
    return items


class AllOf(BaseModel):
    """All items must hold (并且)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["all"]
    items: list[Node]

    @field_validator("items")
    @classmethod
    def _items(cls, items: list[Any]) -> list[Any]:
        return _non_empty("all", items)


class AnyOf(BaseModel):
    """At least one item must hold (或者)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["any"]
    items: list[Node]

    @field_validator("items")
    @classmethod
    def _items(cls, items: list[Any]) -> list[Any]:
        return _non_empty("any", items)


class NotOf(BaseModel):
    """The item must not hold (不得); unknown stays unknown, as in SQL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["not"]
    item: Node


def _tag_of(value: Any) -> str:
    """Route by `op`: groups by their own op, everything else to Leaf (whose errors name the field)."""
    op = value.get("op") if isinstance(value, dict) else getattr(value, "op", None)
    return op if op in ("all", "any", "not") else "leaf"


Node = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[Leaf, Tag("leaf")],
    Discriminator(_tag_of),
]
"""A node inside a tree (no examples, so the OpenAPI document does not repeat them at every level)."""

# Limits of a tree, checked on the raw data before anything else is parsed: a policy's conditions fit in a few
# levels and a few dozen leaves; deeper or larger trees are mistakes or attacks (and cost time in every match).
MAX_DEPTH = 8
MAX_LEAVES = 200
MAX_LIST_VALUES = 500  # values of one `in` leaf


def within_limits(data: Any) -> Any:
    """Refuse a tree deeper than MAX_DEPTH levels or with more than MAX_LEAVES leaves, walking it without
    recursion so a 10,000-deep tree costs no more than its size."""
    leaves, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"条件树层级超过上限：最多 {MAX_DEPTH} 层")
        if not isinstance(node, dict):
            continue
        if node.get("op") in ("all", "any") and isinstance(node.get("items"), list):
            stack.extend((child, depth + 1) for child in node["items"])
        elif node.get("op") == "not":
            stack.append((node.get("item"), depth + 1))
        else:
            leaves += 1
            if leaves > MAX_LEAVES:
                raise ValueError(f"条件数量超过上限：最多 {MAX_LEAVES} 个条件")
            value = node.get("value")
            if isinstance(value, list) and len(value) > MAX_LIST_VALUES:
                raise ValueError(f"条件取值过多：一个条件最多 {MAX_LIST_VALUES} 个取值")
    return data


Condition = Annotated[
    Node,
    BeforeValidator(within_limits),
    Field(
        examples=[EXAMPLE_CONDITION],
        description=f"条件树：最多 {MAX_DEPTH} 层、{MAX_LEAVES} 个条件，每个条件最多 {MAX_LIST_VALUES} 个取值",
    ),
]
"""The condition tree type: use it as a pydantic field type or a FastAPI body."""

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()

CONDITION_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


def parse_condition(data: Any) -> AllOf | AnyOf | NotOf | Leaf:
    """A validated condition tree from JSON-like data (raises pydantic.ValidationError)."""
    return CONDITION_ADAPTER.validate_python(data)


def dump_condition(cond: AllOf | AnyOf | NotOf | Leaf) -> dict[str, Any]:
    """JSON-ready data of a tree (dates as YYYY-MM-DD) that parse_condition reads back."""
    return CONDITION_ADAPTER.dump_python(cond, mode="json")


ConditionStatus = Literal["met", "unmet", "missing"]


class ConditionResult(BaseModel):
    """How one leaf condition fared for one enterprise (政策计算器的逐条结果)."""

    field: str
    label: str
    op: str
    negated: bool = Field(False, description="该条件位于“不满足”(not) 之下，按相反要求判断")
    status: ConditionStatus
    expected: Any
    actual: Any
    text: str = Field(description="中文说明，如“从业人数 ≥ 50 人：实际 32 人，不足 18 人”")
    shortfall: int | None = Field(
        None, description="与达标的差距（字段存储单位：人、分、基点；日期为天数），不适用时为空"
    )
    blocking: bool = Field(False, description="是否为不符合的原因（不足之处）")


class Evaluation(BaseModel):
    """The result of evaluating a condition tree: eligible only when the tree is definitely true."""

    eligible: bool
    outcome: Literal["true", "false", "unknown"]
    items: list[ConditionResult]

    def unmet_texts(self) -> list[str]:
        """The 不足之处: texts of the unmet or unknown leaves that stand between the enterprise and eligibility."""
        return [item.text for item in self.items if item.blocking]
