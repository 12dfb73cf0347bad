"""Bulk matching in SQL: which enterprises of the archive (企档) a fund item's conditions select, and for how much.

The dry run (政策预匹配, as Qingdao's pre-evaluation) answers for a draft item: how many enterprises match,
the total amount, how far the budget reaches when enterprises are taken in a stated order (the "stop when
exhausted" policy), and the distribution by district and by size class. It is one SQL statement over the
`enterprise` table: the condition tree compiles with `db.sql.conditions.compile_where`, the support standard
with `db.sql.amounts.amount_expr`, a window function keeps the running total in the stated order, and the
result is grouped by district × size class (a few hundred rows at most); the totals are sums of those
groups. No enterprise row ever comes to Python.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import Enterprise
from db.sql.amounts import amount_expr, unquantified_expr
from db.sql.conditions import compile_where
from rules.amounts import AnyStandard, parse_standard
from schemas.archive_sources import industry_sections
from schemas.conditions import AllOf, AnyOf, Leaf, NotOf, parse_condition
from schemas.fields import FIELDS, FieldType

__all__ = [
    "DEFAULT_ORDER",
    "SORT_AMOUNT",
    "BudgetCoverage",
    "DryRunResult",
    "GroupCount",
    "OrderKey",
    "dry_run",
    "matched_ids",
]

DISTRICT_DIGITS = 6  # 行政区划码前 6 位：区县
SORT_AMOUNT = "amount_fen"  # order by the computed amount (as schemas.fund_items.SortKey calls it)


class OrderKey(BaseModel):
    """One key of the stated order in which a short budget is used up; ties always go by USCC."""

    key: str = Field(description=f"{SORT_AMOUNT}（核定金额）或数值、日期类条件字段，如 registered_on、employees")
    direction: Literal["asc", "desc"] = "asc"

    @field_validator("key")
    @classmethod
    def _known(cls, key: str) -> str:
        if key not in SORTABLE:
            raise ValueError(f"order_by 的排序依据 key={key!r} 无效；可用：{'、'.join(SORTABLE)}")
        return key


SORTABLE: dict[str, str] = {
    SORT_AMOUNT: "核定金额",
    **{name: spec.label for name, spec in FIELDS.items() if spec.is_numeric or spec.type is FieldType.DATE},
}
DEFAULT_ORDER: tuple[OrderKey, ...] = (OrderKey(key="registered_on"),)


def order_text(order_by: Sequence[OrderKey]) -> str:
    """The stated order in words, e.g. 按成立日期从早到晚，并列时按统一社会信用代码排序；无数据的排在最后."""
    parts = []
    for item in order_by:
        dated = item.key in FIELDS and FIELDS[item.key].type is FieldType.DATE
        words = ("从早到晚", "从晚到早") if dated else ("从小到大", "从大到小")
        parts.append(f"{SORTABLE[item.key]}{words[item.direction == 'desc']}")
    lead = f"按{'、'.join(parts)}，并列时" if parts else ""
    return f"{lead}按统一社会信用代码排序；无数据的排在最后"


class GroupCount(BaseModel):
    """Matched enterprises of one district or size class, their amount and how many the budget covers."""

    key: str = Field(description="区县行政区划码（前 6 位）、企业规模代码或国民经济行业门类字母")
    label: str = Field("", description="中文名称（企业规模、行业门类）")
    matched: int
    amount_fen: int
    covered: int = Field(description="按既定顺序预算可全额兑付的企业数")


class BudgetCoverage(BaseModel):
    """How far the budget reaches (stop when exhausted, in the stated order)."""

    budget_total_fen: int
    order_by: list[OrderKey] = Field(description="兑付顺序（并列时按统一社会信用代码）")
    order_text: str
    covered: int = Field(description="预算按既定顺序可全额兑付的企业数（第一家放不下即止）")
    covered_amount_fen: int = Field(description="这些企业的金额合计（分）")
    uncovered: int = Field(description="预算用尽后无法兑付的企业数")
    shortfall_fen: int = Field(description="预算缺口（分）：总金额超出预算的部分，不足时为 0")
    remaining_fen: int = Field(description="全额兑付已覆盖企业后剩余的预算（分）")
    ratio: str | None = Field(description="预算覆盖率 = 预算 ÷ 总金额，保留 4 位小数；总金额为 0 时为空")
    fully_covered: bool = Field(description="预算是否足以全额兑付全部匹配企业")
    pro_rata_ratio: str = Field(description="按比例压减时各企业可得的比例（不超过 1，保留 4 位小数）")


class DryRunResult(BaseModel):
    """The dry run of one fund item's conditions and standard over the enterprise archive."""

    enterprises: int = Field(description="企档中的企业总数")
    matched: int = Field(description="符合申报条件的企业数")
    total_amount_fen: int = Field(description="匹配企业的金额合计（分）")
    unquantified: int = Field(description="金额无法完全由数据算出的匹配企业数（缺少基数数据按 0 计，或人工确定）")
    budget: BudgetCoverage
    by_region: list[GroupCount] = Field(description="按区县（行政区划码前 6 位）分布，按匹配数从多到少")
    by_size: list[GroupCount] = Field(description="按企业规模分布（大、中、小、微）")
    by_industry: list[GroupCount] = Field(
        default_factory=list, description="按国民经济行业门类（GB/T 4754-2017）分布，按匹配数从多到少；无行业代码为空键"
    )
    elapsed_ms: int = Field(description="数据库计算用时（毫秒）")


def _ratio(numerator: int, denominator: int) -> str:
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _order_by(session: Session, order_by: Sequence[OrderKey], amount: ColumnElement[int]) -> list[Any]:
    """A total order that is the same on every database: the keys (NULLs last), then USCC compared bytewise."""
    terms: list[Any] = []
    for item in order_by:
        column = amount if item.key == SORT_AMOUNT else Enterprise.__table__.c[FIELDS[item.key].column]
        terms.append((column.desc() if item.direction == "desc" else column.asc()).nulls_last())
    uscc: ColumnElement[Any] = Enterprise.uscc
    if session.get_bind().dialect.name == "postgresql":
        uscc = uscc.collate("C")  # the database's collation must not reorder codes
    return [*terms, uscc.asc()]


def _order_keys(order_by: Sequence[OrderKey | Mapping[str, Any]] | None) -> list[OrderKey]:
    if order_by is None:
        return list(DEFAULT_ORDER)
    return [item if isinstance(item, OrderKey) else OrderKey.model_validate(item) for item in order_by]


def _tree(cond: Any) -> AllOf | AnyOf | NotOf | Leaf:
    return cond if isinstance(cond, AllOf | AnyOf | NotOf | Leaf) else parse_condition(cond)


def _standard(standard: Any) -> AnyStandard:
    return standard if isinstance(standard, AnyStandard) else parse_standard(standard)


def dry_run(
    *,
    session: Session,
    conditions: AllOf | AnyOf | NotOf | Leaf | Mapping[str, Any],
    standard: AnyStandard | Mapping[str, Any],
    budget_total_fen: int,
    order_by: Sequence[OrderKey | Mapping[str, Any]] | None = None,
) -> DryRunResult:
    """Match `conditions` against the whole archive, price it with `standard`, and size it against the budget."""
    if isinstance(budget_total_fen, bool) or not isinstance(budget_total_fen, int) or budget_total_fen < 0:
        raise ValueError(f"budget_total_fen：预算总额必须是不小于 0 的整数分，实际为 {budget_total_fen!r}")
    order = _order_keys(order_by)
    tree, parsed = _tree(conditions), _standard(standard)
    started = time.perf_counter()

    amount = amount_expr(parsed)
    matched = (
        select(
            func.substr(Enterprise.region_code, 1, DISTRICT_DIGITS).label("district"),
            Enterprise.size_class.label("size_class"),
            func.substr(Enterprise.industry_code, 1, 1).label("section"),
            amount.label("amount"),
            case((unquantified_expr(parsed), 1), else_=0).label("unquantified"),
            func.sum(amount).over(order_by=_order_by(session, order, amount), rows=(None, 0)).label("running"),
        )
        .where(compile_where(tree))
        .subquery("matched")
    )
    budget = literal(budget_total_fen)
    covered = matched.c.running <= budget  # amounts are ≥ 0, so this is a prefix of the stated order
    grouped = select(
        matched.c.district,
        matched.c.size_class,
        matched.c.section,
        func.count().label("matched"),
        func.sum(matched.c.amount).label("amount"),
        func.sum(case((covered, 1), else_=0)).label("covered"),
        func.sum(case((covered, matched.c.amount), else_=0)).label("covered_amount"),
        func.sum(matched.c.unquantified).label("unquantified"),
    ).group_by(matched.c.district, matched.c.size_class, matched.c.section)
    try:
        rows = session.execute(grouped).all()
    except OperationalError as exc:  # SQLite's 64-bit sum(); PostgreSQL sums BIGINT in NUMERIC
        if "integer overflow" not in str(exc.orig):
            raise
        raise ValueError(
            "standard：匹配企业的金额合计超出 64 位整数范围（约 9.2×10^16 元），请检查扶持标准的金额"
            " / the total amount exceeds the 64-bit range"
        ) from exc
    enterprises = int(session.scalar(select(func.count()).select_from(Enterprise)) or 0)
    elapsed_ms = round((time.perf_counter() - started) * 1000)

    regions: dict[str, list[int]] = {}
    sizes: dict[str, list[int]] = {}
    sections: dict[str, list[int]] = {}
    totals = [0, 0, 0, 0, 0]  # matched, amount, covered, covered amount, unquantified
    for row in rows:
        figures = [int(row.matched), int(row.amount or 0), int(row.covered or 0)]
        keys = ((regions, row.district or ""), (sizes, row.size_class or ""), (sections, row.section or ""))
        for bucket, key in keys:
            sums = bucket.setdefault(key, [0, 0, 0])
            for i, value in enumerate(figures):
                sums[i] += value
        for i, value in enumerate([*figures, int(row.covered_amount or 0), int(row.unquantified or 0)]):
            totals[i] += value
    matched_count, total, covered_count, covered_amount, unquantified = totals

    size_spec = FIELDS["size_class"]
    size_rank = {value: i for i, value in enumerate(size_spec.choice_values)}
    by_size = [
        GroupCount(key=key, label=size_spec.choice_label(key), matched=m, amount_fen=a, covered=c)
        for key, (m, a, c) in sorted(sizes.items(), key=lambda kv: (size_rank.get(kv[0], len(size_rank)), kv[0]))
    ]
    by_region = [
        GroupCount(key=key, matched=m, amount_fen=a, covered=c)
        for key, (m, a, c) in sorted(regions.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    names = industry_sections()
    by_industry = [
        GroupCount(key=key, label=names[key][2] if key in names else "未登记行业", matched=m, amount_fen=a, covered=c)
        for key, (m, a, c) in sorted(sections.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    coverage = BudgetCoverage(
        budget_total_fen=budget_total_fen,
        order_by=order,
        order_text=order_text(order),
        covered=covered_count,
        covered_amount_fen=covered_amount,
        uncovered=matched_count - covered_count,
        shortfall_fen=max(0, total - budget_total_fen),
        remaining_fen=budget_total_fen - covered_amount,
        ratio=_ratio(budget_total_fen, total) if total else None,
        fully_covered=budget_total_fen >= total,
        pro_rata_ratio=_ratio(min(budget_total_fen, total), total) if total else "1.0000",
    )
    return DryRunResult(
        enterprises=enterprises,
        matched=matched_count,
        total_amount_fen=total,
        unquantified=unquantified,
        budget=coverage,
        by_region=by_region,
        by_size=by_size,
        by_industry=by_industry,
        elapsed_ms=elapsed_ms,
    )


def matched_ids(
    *, session: Session, conditions: AllOf | AnyOf | NotOf | Leaf | Mapping[str, Any], limit: int | None = None
) -> list[int]:
    """IDs of the enterprises the conditions select, in ID order (for campaign batches and tests)."""
    query = select(Enterprise.id).where(compile_where(_tree(conditions))).order_by(Enterprise.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
