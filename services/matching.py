"""Dry run (政策预匹配): before listing, how many enterprises of the archive a fund item reaches, for how much,
how far its budget goes, and where they are (district, size class). Computed in SQL over the whole archive.

A department runs it inline (conditions, standard and budget given) or on one of its own fund items.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session

from db.repositories import fund_items
from db.repositories.matching import DryRunResult, OrderKey, dry_run
from rules.amounts import parse_standard
from schemas.conditions import EXAMPLE_CONDITION, Condition, parse_condition
from schemas.principal import Principal
from schemas.standards import Fen, Standard
from services import scope
from services.errors import Conflict, Invalid, NotFound

EXAMPLE_STANDARD = {
    "kind": "sum",
    "cap_fen": 50_000_000,
    "parts": [
        {"kind": "fixed", "amount_fen": 2_000_000},
        {"kind": "rate", "base": "tax_paid_fen", "rate": "0.1", "floor_fen": 1_000_000},
    ],
}


class DryRunIn(BaseModel):
    """Either a fund item (its latest version's configuration), or conditions + standard + budget inline.

    With a fund item, the inline fields given override its configuration ("what if the budget were …").
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "conditions": EXAMPLE_CONDITION,
                    "standard": EXAMPLE_STANDARD,
                    "budget_total_fen": 30_000_000_000,
                    "order_by": [{"key": "registered_on", "direction": "asc"}],
                },
                {"fund_item_code": "YC-2026-ZJTX-001"},
                {"fund_item_code": "YC-2026-ZJTX-001", "budget_total_fen": 1_000_000_000},
            ]
        },
    )

    fund_item_code: str | None = Field(None, max_length=40, description="资金事项编码：取其最新版本的配置")
    version: int | None = Field(None, ge=1, description="配置版本号；不填取最新版本")
    conditions: Condition | None = Field(None, description="申报条件（条件树）")
    standard: Standard | None = Field(None, description="扶持标准")
    budget_total_fen: Fen | None = Field(None, description="预算总额（分）")
    order_by: list[OrderKey] | None = Field(
        None, description="预算不足时的兑付顺序；不填按事项配置，再不然按成立日期从早到晚（并列按统一社会信用代码）"
    )

    @model_validator(mode="after")
    def _complete(self) -> DryRunIn:
        if self.version is not None and self.fund_item_code is None:
            raise ValueError("version 只能与 fund_item_code 一起使用")
        if self.fund_item_code is None:
            missing = [name for name in ("conditions", "standard", "budget_total_fen") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"未给出资金事项编码 fund_item_code 时，须同时给出 conditions、standard、budget_total_fen；缺少：{'、'.join(missing)}"
                )
        return self


class DryRunOut(DryRunResult):
    fund_item_code: str | None = Field(None, description="资金事项编码（按事项预匹配时）")
    version: int | None = Field(None, description="所用配置版本")
    shortfall_policy: str | None = Field(
        None, description="事项配置的预算不足处理：stop_in_order 按顺序兑付至用完 / pro_rata 按比例核减"
    )


def _from_item(session: Session, caller: scope.Scope, body: DryRunIn) -> dict[str, Any]:
    """Conditions, standard, budget and order from a fund item's stored configuration (raw JSON, read only)."""
    code = body.fund_item_code
    assert code is not None
    item = fund_items.get_by_code(session=session, code=code)
    if item is None:
        raise NotFound(f"fund_item_code：资金事项 {code} 不存在", field="fund_item_code")
    try:
        scope.require_item(session=session, scope=caller, fund_item_id=item.id, code=code)
    except NotFound as exc:  # another department's item reads as unknown
        raise NotFound(f"fund_item_code：资金事项 {code} 不存在", field="fund_item_code") from exc
    number = body.version or item.current_version
    stored = fund_items.version(session=session, fund_item_id=item.id, number=number)
    if stored is None:
        raise NotFound(f"version：资金事项 {code} 没有第 {number} 版配置", field="version")
    config = stored.config if isinstance(stored.config, dict) else {}
    found: dict[str, Any] = {"fund_item_code": code, "version": number}
    try:
        if body.conditions is None:
            found["conditions"] = parse_condition(config.get("conditions"))
        if body.standard is None:
            found["standard"] = parse_standard(config.get("standard"))
    except ValidationError as exc:
        raise Conflict(
            f"资金事项 {code} 第 {number} 版的申报条件或扶持标准无法解析，请先修改草稿：{exc.errors()[0]['msg']}",
            field="fund_item_code",
        ) from exc
    budget = config.get("budget") if isinstance(config.get("budget"), dict) else {}
    if body.budget_total_fen is None:
        total = budget.get("total_fen")
        if not isinstance(total, int) or isinstance(total, bool):
            total = fund_items.budget_total(session=session, fund_item_id=item.id)
        if total is None:
            raise Invalid(
                f"budget_total_fen：资金事项 {code} 的配置没有预算总额，请在请求中给出 budget_total_fen",
                field="budget_total_fen",
            )
        found["budget_total_fen"] = total
    options = config.get("no_application") if isinstance(config.get("no_application"), dict) else {}
    shortfall = options.get("shortfall") if isinstance(options.get("shortfall"), dict) else {}
    if shortfall.get("policy"):
        found["shortfall_policy"] = shortfall["policy"]
    if body.order_by is None and shortfall.get("order_by"):
        try:
            found["order_by"] = [OrderKey.model_validate(key) for key in shortfall["order_by"]]
        except ValidationError as exc:
            raise Conflict(
                f"资金事项 {code} 的兑付顺序无法使用：{exc.errors()[0]['msg']}", field="fund_item_code"
            ) from exc
    return found


def run(*, session: Session, principal: Principal, body: DryRunIn) -> DryRunOut:
    """Match the conditions against the whole enterprise archive and size the result against the budget."""
    caller = scope.resolve(session=session, principal=principal)
    given: dict[str, Any] = {
        "conditions": body.conditions,
        "standard": body.standard,
        "budget_total_fen": body.budget_total_fen,
        "order_by": body.order_by,
    }
    chosen = {key: value for key, value in given.items() if value is not None}
    if body.fund_item_code is not None:
        chosen = {**_from_item(session, caller, body), **chosen}
    source = {key: chosen.pop(key, None) for key in ("fund_item_code", "version", "shortfall_policy")}
    try:
        result = dry_run(session=session, **chosen)
    except ValueError as exc:
        message = str(exc)
        field = message.split("：", 1)[0] if "：" in message else "body"
        raise Invalid(message, field=field if field.isidentifier() else "body") from exc
    return DryRunOut(**result.model_dump(), **source)
