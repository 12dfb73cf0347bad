"""Registry of the enterprise fields (企档字段) that eligibility conditions and support standards may use.

A condition names a field here, never a column or an expression: the registry says which
`db.models.Enterprise` column holds it, how its value is typed and which operators make sense.
Values are stored in the field's storage unit (`unit`): fen for money, basis points for ratios.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel


class FieldType(StrEnum):
    STRING = "string"
    ENUM = "enum"
    INT = "int"
    MONEY_FEN = "money_fen"
    RATIO_BP = "ratio_bp"
    DATE = "date"
    TAGS = "tags"


TYPE_LABELS: dict[FieldType, str] = {
    FieldType.STRING: "文本",
    FieldType.ENUM: "枚举",
    FieldType.INT: "整数",
    FieldType.MONEY_FEN: "金额（分）",
    FieldType.RATIO_BP: "比例（基点，1% = 100）",
    FieldType.DATE: "日期",
    FieldType.TAGS: "标签",
}

GROUP_OPERATORS: tuple[str, ...] = ("all", "any", "not")
LeafOp = Literal[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "between",
    "in",
    "not_in",
    "prefix",
    "has_tag",
    "has_any_tags",
    "has_all_tags",
]
LEAF_OPERATORS: tuple[str, ...] = get_args(LeafOp)

OPERATOR_LABELS: dict[str, str] = {
    "all": "全部满足",
    "any": "满足其一",
    "not": "不满足",
    "eq": "等于",
    "ne": "不等于",
    "gt": "大于",
    "ge": "大于等于",
    "lt": "小于",
    "le": "小于等于",
    "between": "介于",
    "in": "属于",
    "not_in": "不属于",
    "prefix": "以…开头",
    "has_tag": "具有标签",
    "has_any_tags": "具有任一标签",
    "has_all_tags": "同时具有标签",
}

_ORDERED = ("eq", "ne", "gt", "ge", "lt", "le", "between")
OPERATORS_BY_TYPE: dict[FieldType, tuple[str, ...]] = {
    FieldType.STRING: ("eq", "ne", "in", "not_in", "prefix"),
    FieldType.ENUM: ("eq", "ne", "in", "not_in"),
    FieldType.INT: _ORDERED,
    FieldType.MONEY_FEN: _ORDERED,
    FieldType.RATIO_BP: _ORDERED,
    FieldType.DATE: _ORDERED,
    FieldType.TAGS: ("has_tag", "has_any_tags", "has_all_tags"),
}

NUMERIC_TYPES = frozenset({FieldType.INT, FieldType.MONEY_FEN, FieldType.RATIO_BP})


def format_fen(fen: int) -> str:
    """Fen as 元 with two decimals and thousands separators, e.g. 123456 → '1,234.56 元' (exact, no float)."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d} 元"


def format_bp(bp: int) -> str:
    """Basis points as a percentage number with two decimals, e.g. 350 → '3.50'."""
    sign = "-" if bp < 0 else ""
    whole, frac = divmod(abs(bp), 100)
    return f"{sign}{whole}.{frac:02d}"


@dataclass(frozen=True)
class FieldSpec:
    """One condition field: its name in condition data, type, Chinese label and Enterprise column."""

    name: str
    type: FieldType
    label: str
    column: str
    unit: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # enum: (value, Chinese label)

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS_BY_TYPE[self.type]

    @property
    def choice_values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    def choice_label(self, value: str) -> str:
        return dict(self.choices).get(value, value)

    def format(self, value: Any) -> str:
        """A value as users read it: money in 元 with two decimals, ratios in %, dates as YYYY年MM月DD日."""
        match self.type:
            case FieldType.MONEY_FEN:
                return format_fen(value)
            case FieldType.RATIO_BP:
                return f"{format_bp(value)}%"
            case FieldType.INT:
                return f"{value:,} {self.unit}".rstrip()
            case FieldType.DATE:
                return f"{value.year:04d}年{value.month:02d}月{value.day:02d}日"
            case FieldType.ENUM:
                return self.choice_label(value)
            case FieldType.TAGS:
                return "、".join(value) if value else "无"
        if value and self.name in ("region_code", "industry_code"):
            # imported here: the code lists' module imports this one
            from schemas.regions import industry_label, region_name

            return region_name(value) if self.name == "region_code" else industry_label(value)
        return value if value else "（空）"

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description for configuration screens (field catalogue)."""
        return {
            "name": self.name,
            "type": self.type.value,
            "type_label": TYPE_LABELS[self.type],
            "label": self.label,
            "unit": self.unit,
            "operators": [{"op": op, "label": OPERATOR_LABELS[op]} for op in self.operators],
            "choices": [{"value": v, "label": lbl} for v, lbl in self.choices],
        }


SIZE_CLASSES = (("large", "大型"), ("medium", "中型"), ("small", "小型"), ("micro", "微型"))
CREDIT_STATUSES = (("good", "良好"), ("warning", "警示"), ("dishonest", "失信"))

FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("region_code", FieldType.STRING, "注册地行政区划", "region_code"),
        FieldSpec("industry_code", FieldType.STRING, "所属行业", "industry_code"),
        FieldSpec("size_class", FieldType.ENUM, "企业规模", "size_class", choices=SIZE_CLASSES),
        FieldSpec("registered_on", FieldType.DATE, "成立日期", "registered_on"),
        FieldSpec("employees", FieldType.INT, "从业人数", "employees", unit="人"),
        FieldSpec("revenue_fen", FieldType.MONEY_FEN, "营业收入", "revenue_fen", unit="分"),
        FieldSpec("tax_paid_fen", FieldType.MONEY_FEN, "纳税额", "tax_paid_fen", unit="分"),
        FieldSpec("rd_ratio_bp", FieldType.RATIO_BP, "研发投入占比", "rd_ratio_bp", unit="基点"),
        FieldSpec("tags", FieldType.TAGS, "资质标签", "tags"),
        FieldSpec("credit_status", FieldType.ENUM, "信用状态", "credit_status", choices=CREDIT_STATUSES),
        FieldSpec("rule_tags", FieldType.TAGS, "规则标签", "rule_tags"),  # kept by the departments' tag rules
    )
}


def field_catalogue() -> list[dict[str, Any]]:
    """All fields with their allowed operators, for the configuration UI and the API."""
    return [spec.describe() for spec in FIELDS.values()]


class OperatorOut(BaseModel):
    op: str
    label: str


class ChoiceOut(BaseModel):
    value: str
    label: str


class ConditionFieldOut(BaseModel):
    """One enterprise field conditions may use, as `FieldSpec.describe` gives it."""

    name: str
    type: str
    type_label: str
    label: str
    unit: str
    operators: list[OperatorOut]
    choices: list[ChoiceOut]
