"""Campaign test data: a no-application item with a chosen budget and options, and enterprises that match it."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli.demo import DEPARTMENTS, NO_APPLICATION_CONFIG, add_listed_item
from db import crypto
from db.models import Case, Enterprise, FundItem
from db.repositories import campaigns as repo
from db.repositories import fund_items
from db.session import transaction
from schemas import uscc as uscc_rules

AMOUNT_FEN = 1_000_000  # 1 万元 each with the fixed standard


def item_config(
    *,
    budget_fen: int,
    shortfall: dict[str, Any] | None = None,
    consent: dict[str, Any] | None = None,
    publicity: bool = False,
    finance_auto: bool = True,
    standard: dict[str, Any] | None = None,
    region: str = "4205",
) -> dict[str, Any]:
    config = copy.deepcopy(NO_APPLICATION_CONFIG)
    config["conditions"] = {
        "op": "all",
        "items": [
            {"field": "region_code", "op": "prefix", "value": region},
            {"field": "employees", "op": "ge", "value": 10},
            {"field": "credit_status", "op": "eq", "value": "good"},
        ],
    }
    config["standard"] = standard or {"kind": "fixed", "amount_fen": AMOUNT_FEN}
    config["budget"] = {"year": 2026, "total_fen": budget_fen, "sources": [{"name": "市级财政", "share_bp": 10000}]}
    config["approval"] = {"finance": {"department": "YC-CZJ", "auto_when_quantified": finance_auto}}
    if publicity:
        config["approval"]["publicity"] = {"working_days": 5, "objections_allowed": True}
    config["no_application"] = {
        "consent": consent,
        "shortfall": shortfall or {"policy": "stop_in_order", "order_by": [{"key": "employees", "direction": "desc"}]},
    }
    return config


def ensure_departments(session: Session) -> None:
    for code, name, kind in DEPARTMENTS:
        if fund_items.department_by_code(session=session, code=code) is None:
            fund_items.add_department(session=session, code=code, name=name, region_code="420500", kind=kind)


def add_item(session: Session, code: str, config: dict[str, Any]) -> FundItem:
    ensure_departments(session)
    return add_listed_item(session=session, code=code, department_code="YC-RSJ", config=config)


def add_enterprises(
    session: Session,
    fernet_key: str,
    n: int,
    *,
    seed: int = 7,
    region: str = "420502",
    employees_from: int = 20,
    fault_names: int = 0,
) -> list[Enterprise]:
    """n matching enterprises with distinct head counts (employees_from + i), phones and accounts; the first
    `fault_names` carry the stand-in's fault mark in their account name, so their payment fails."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        account = f"6222{rng.randrange(10**14):014d}"
        name = f"宜昌测试{seed}企业{i:04d}有限公司"
        phone = f"1380717{rng.randrange(10_000):04d}"
        enterprise = Enterprise(
            uscc=uscc_rules.generate(rng, region),
            name=name,
            region_code=region,
            industry_code="C3484",
            size_class="small",
            registered_on=date(2015, 1, 1),
            employees=employees_from + i,
            revenue_fen=10**9,
            tax_paid_fen=10**7,
            rd_ratio_bp=100,
            tags=[],
            credit_status="good",
            contact_phone_enc=crypto.encrypt(fernet_key, phone),
            contact_phone_masked=crypto.mask_phone(phone),
            bank_account_enc=crypto.encrypt(fernet_key, account),
            bank_account_masked=crypto.mask_account(account),
            bank_account_name=("错误" + name) if i < fault_names else name,
            bank_name="中国工商银行宜昌分行营业部",
            bank_code="102526000011",
        )
        session.add(enterprise)
        out.append(enterprise)
    session.flush()
    return out


def listing(session: Session, item: FundItem) -> repo.Context:
    campaign = repo.register_listing(session=session, item=item, version=item.listed_version or 1)
    return repo.context(session=session, campaign_id=campaign.id)


def case_counter(db_url: str, item_id: int) -> Callable[[str], int]:
    """count(status): how many of the item's cases have that status now (each call reads the database afresh)."""

    def count(status: str) -> int:
        with transaction(db_url) as session:
            return session.scalar(
                select(func.count()).select_from(Case).where(Case.fund_item_id == item_id, Case.status == status)
            )

    return count
