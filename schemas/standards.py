"""Support standards (扶持标准) as data: how much a fund item pays an eligible enterprise.

Kinds: `fixed` (定额), `rate` (基数 × 比例, with optional floor 保底 and cap 封顶), `tiers` (阶梯: the
highest tier whose threshold the base reaches gives an amount or a rate), `sum` (several parts added,
optionally capped) and `manual` (amount set by reviewers, hence not fully quantified).
Amounts and money thresholds are integer fen; rates are a decimal string ("0.05" = 5%) or basis points
(`rate_bp`: 500 = 5%). `rules.amounts.compute_amount` applies a standard to an enterprise's facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema, field_validator, model_validator

from schemas.fields import FIELDS, FieldSpec, FieldType

MAX_FEN = 2**63 - 1

# A rate travels as a decimal string; the schema says so (floats are refused by the validator).
RateText = Annotated[Decimal, WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?$"})]

Fen = Annotated[int, Field(ge=0, le=MAX_FEN, strict=True, description="金额，整数分")]


def _base_spec(kind: str, name: str, *, money_only: bool) -> FieldSpec:
    spec = FIELDS.get(name)
    if spec is None or not spec.is_numeric:
        numeric = "、".join(f"{s.name}（{s.label}）" for s in FIELDS.values() if s.is_numeric)
        raise ValueError(f"扶持标准 {kind} 的基数字段 base={name!r} 不是可计算的数值字段；可用：{numeric}")
    if money_only and spec.type is not FieldType.MONEY_FEN:
        raise ValueError(f"扶持标准 {kind} 的基数字段 base={name!r}（{spec.label}）不是金额字段，不能按比例计算金额")
    return spec


MAX_RATE = Decimal(10**17)


def _parse_rate(where: str, value: Any) -> Decimal | None:
    """A rate from a decimal string; floats are refused because 0.1 is not exact in binary."""
    if value is None or isinstance(value, Decimal):
        rate = value
    elif isinstance(value, str):
        try:
            rate = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f'{where} 的比例 rate={value!r} 不是小数，应写成如 "0.05"（即 5%）') from None
    elif isinstance(value, int) and not isinstance(value, bool):
        rate = Decimal(value)
    else:
        raise ValueError(f'{where} 的比例 rate 必须写成字符串小数，如 "0.05"（即 5%），不接受 {value!r}')
    if rate is not None and (not rate.is_finite() or rate < 0):
        raise ValueError(f"{where} 的比例 rate={value!r} 必须是不小于 0 的有限小数")
    # A rate with thousands of digits (or an exponent of a million) only costs time in every calculation; the SQL
    # compiler (db/sql) is exact within these bounds.
    if rate is not None and (rate > MAX_RATE or rate.as_tuple().exponent < -40 or len(rate.as_tuple().digits) > 40):
        raise ValueError(f"{where} 的比例 rate={value!r} 超出范围：不大于 {MAX_RATE:,}，最多 40 位小数、40 位有效数字")
    return rate


class _Rated(BaseModel):
    """Mixin: exactly one of `rate` (decimal string) and `rate_bp` (basis points)."""

    rate: RateText | None = Field(None, description='比例，字符串小数，"0.05" 即 5%', examples=["0.05"])
    rate_bp: int | None = Field(None, ge=0, le=10**9, strict=True, description="比例，基点，500 即 5%")

    RATE_WHERE: ClassVar[str] = "扶持标准"

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Decimal | None:
        return _parse_rate(cls.RATE_WHERE, value)

    def rate_value(self) -> Decimal | None:
        """The rate as an exact Decimal fraction (5% → Decimal('0.05'))."""
        if self.rate is not None:
            return self.rate
        return None if self.rate_bp is None else Decimal(self.rate_bp) / 10000


class FixedAmount(BaseModel):
    """定额：every eligible enterprise gets the same amount."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"kind": "fixed", "amount_fen": 10000000}]}
    )

    kind: Literal["fixed"]
    amount_fen: Fen


class RateOfBase(_Rated):
    """按比例：base field × rate, rounded half-up to the fen, then raised to the floor and held to the cap."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"kind": "rate", "base": "tax_paid_fen", "rate": "0.05", "cap_fen": 50000000}]},
    )

    RATE_WHERE: ClassVar[str] = "扶持标准 rate"

    kind: Literal["rate"]
    base: str = Field(description="基数字段（金额字段），如 tax_paid_fen、revenue_fen")
    floor_fen: Fen | None = Field(None, description="保底金额（分）")
    cap_fen: Fen | None = Field(None, description="封顶金额（分）")

    @field_validator("base")
    @classmethod
    def _base(cls, name: str) -> str:
        return _base_spec("rate", name, money_only=True).name

    @model_validator(mode="after")
    def _check(self) -> RateOfBase:
        if (self.rate is None) == (self.rate_bp is None):
            raise ValueError("扶持标准 rate 必须且只能给出 rate（字符串小数）或 rate_bp（基点）之一")
        if self.floor_fen is not None and self.cap_fen is not None and self.floor_fen > self.cap_fen:
            raise ValueError(f"扶持标准 rate 的保底金额 floor_fen={self.floor_fen} 大于封顶金额 cap_fen={self.cap_fen}")
        return self


class Tier(_Rated):
    """One tier: applies when the base reaches `at_least` (in the base field's unit); pays an amount or a rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    RATE_WHERE: ClassVar[str] = "扶持标准 tiers 的档位"

    at_least: int = Field(strict=True, description="门槛（含），与基数字段同单位：分、人或基点")
    amount_fen: Fen | None = Field(None, description="该档奖补金额（分）")
    label: str = Field("", max_length=40, description="档位名称，如“第一档”")

    @model_validator(mode="after")
    def _check(self) -> Tier:
        given = [x is not None for x in (self.amount_fen, self.rate, self.rate_bp)]
        if sum(given) != 1:
            raise ValueError(
                f"扶持标准 tiers 的档位（门槛 at_least={self.at_least}）必须且只能给出 amount_fen、rate、rate_bp 之一"
            )
        return self


class Tiered(BaseModel):
    """阶梯：the highest tier whose threshold the base reaches decides; below the first tier pays nothing."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "kind": "tiers",
                    "base": "revenue_fen",
                    "tiers": [
                        {"at_least": 10000000000, "amount_fen": 20000000, "label": "营收首次突破1亿元"},
                        {"at_least": 50000000000, "amount_fen": 50000000, "label": "营收首次突破5亿元"},
                    ],
                }
            ]
        },
    )

    kind: Literal["tiers"]
    base: str = Field(description="基数字段（数值字段）")
    tiers: list[Tier] = Field(description="按门槛从低到高排列的档位")
    cap_fen: Fen | None = Field(None, description="封顶金额（分）")

    @model_validator(mode="after")
    def _check(self) -> Tiered:
        spec = _base_spec("tiers", self.base, money_only=False)
        if not self.tiers:
            raise ValueError("扶持标准 tiers 的档位 tiers 不能为空：至少需要一档")
        for low, high in zip(self.tiers, self.tiers[1:], strict=False):
            if high.at_least <= low.at_least:
                raise ValueError(
                    f"扶持标准 tiers 的档位门槛 at_least 必须严格递增，实际 {low.at_least} 之后是 {high.at_least}"
                )
        if spec.type is not FieldType.MONEY_FEN and any(t.amount_fen is None for t in self.tiers):
            raise ValueError(
                f"扶持标准 tiers 的基数字段 base={self.base!r}（{spec.label}）不是金额字段，档位只能给出固定金额 amount_fen"
            )
        return self


class ManualAmount(BaseModel):
    """按评审确定：the amount is set by people (e.g. expert review), so the standard is not fully quantified."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{"kind": "manual", "max_fen": 50000000, "note": "按专家评审结果确定，最高不超过50万元"}]
        },
    )

    kind: Literal["manual"]
    max_fen: Fen | None = Field(None, description="最高金额（分）")
    note: str = Field("", max_length=200, description="确定方式说明")


class SumOfParts(BaseModel):
    """合计：several standards added (e.g. 定额 + 按比例), optionally capped."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "kind": "sum",
                    "cap_fen": 100000000,
                    "parts": [
                        {"kind": "fixed", "amount_fen": 10000000},
                        {"kind": "rate", "base": "tax_paid_fen", "rate_bp": 300},
                    ],
                }
            ]
        },
    )

    kind: Literal["sum"]
    parts: list[Standard]
    cap_fen: Fen | None = Field(None, description="封顶金额（分）")

    @field_validator("parts")
    @classmethod
    def _parts(cls, parts: list[Any]) -> list[Any]:
        if not parts:
            raise ValueError("扶持标准 sum 的组成部分 parts 不能为空：至少需要一项")
        return parts


Standard = Annotated[
    FixedAmount | RateOfBase | Tiered | SumOfParts | ManualAmount,
    Field(discriminator="kind"),
]
"""A support standard: use it as a pydantic field type or a FastAPI body."""

SumOfParts.model_rebuild()

AnyStandard = FixedAmount | RateOfBase | Tiered | SumOfParts | ManualAmount
STANDARD_ADAPTER: TypeAdapter[Standard] = TypeAdapter(Standard)


def parse_standard(data: Any) -> AnyStandard:
    """A validated support standard from JSON-like data (raises pydantic.ValidationError)."""
    return STANDARD_ADAPTER.validate_python(data)


def is_fully_quantified(standard: AnyStandard | Mapping[str, Any]) -> bool:
    """True when data alone fixes the amount (no reviewer-set part), so finance may approve automatically."""
    parsed = standard if isinstance(standard, AnyStandard) else parse_standard(standard)
    if isinstance(parsed, ManualAmount):
        return False
    if isinstance(parsed, SumOfParts):
        return all(is_fully_quantified(part) for part in parsed.parts)
    return True


class AmountResult(BaseModel):
    """The amount one enterprise gets under a standard, with the working shown (核定依据)."""

    amount_fen: int = Field(description="核定金额（分）；缺少数据或人工确定的部分按 0 计")
    explanation: str = Field(description="中文计算说明")
    quantified: bool = Field(description="金额是否完全由数据算出（无缺失数据、无人工确定部分）")
    missing_fields: list[str] = Field(default_factory=list, description="缺少数据的基数字段")
