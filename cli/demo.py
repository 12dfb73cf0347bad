"""Demo data written like real Chinese policies, loaded when the database is empty."""

from __future__ import annotations

import random
from datetime import date

import httpx
from rich.progress import track

from db import crypto
from db.models import Enterprise
from db.repositories import budget, enterprises, fund_items
from db.session import transaction
from rules import uscc as uscc_rules
from settings import Settings

DEMO_ITEM = "YC-2026-ZJTX-001"
DISTRICTS = {"420502": "西陵区", "420503": "伍家岗区", "420504": "点军区", "420505": "猇亭区", "420506": "夷陵区"}
WORDS = ["长江", "三峡", "宜化", "楚天", "峡州", "夷陵", "清江", "鄂西", "磨基", "西陵", "葛洲", "兴发"]
TRADES = [
    ("精工科技", "C3484"),
    ("新材料", "C2661"),
    ("生物医药", "C2720"),
    ("智能装备", "C3499"),
    ("电子信息", "C3981"),
    ("食品", "C1499"),
    ("物流", "G5422"),
    ("软件", "I6513"),
]
DEMO_CONFIG = {
    "conditions": {
        "op": "all",
        "items": [
            {"field": "tags", "op": "has_tag", "value": "专精特新"},
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "credit_status", "op": "ne", "value": "dishonest"},
        ],
    },
    "standard": {"kind": "fixed", "amount_fen": 10_000_000},
    "pay_summary_code": "30307",
    "fund_source": "市级财政",
    "officer": "市经信局中小企业科 0717-6222001",
}


def demo_enterprise_uscc() -> str:
    return uscc_rules.generate(random.Random(20260), "420502")


def ensure_demo(settings: Settings) -> bool:
    """Load the demo data into an empty database; returns whether it did."""
    with transaction(settings.db_url) as session:
        if fund_items.count(session=session):
            return False
        load(session=session, fernet_key=settings.fernet_key())
    return True


def load(*, session, fernet_key: str, n_enterprises: int = 40) -> None:
    jxj = fund_items.add_department(session=session, code="YC-JXJ", name="宜昌市经济和信息化局", region_code="420500")
    fund_items.add_department(session=session, code="YC-CZJ", name="宜昌市财政局", region_code="420500", kind="finance")
    fund_items.add_department(session=session, code="YC-RSJ", name="宜昌市人力资源和社会保障局", region_code="420500")
    fund_items.add_department(session=session, code="YC-KJJ", name="宜昌市科学技术局", region_code="420500")
    policy = fund_items.add_policy(
        session=session,
        doc_number="宜经信发〔2026〕12号",
        title="宜昌市支持专精特新中小企业高质量发展若干措施",
        level="city",
        department_id=jxj.id,
        published_on=date(2026, 3, 18),
    )
    item = fund_items.add_listed(
        session=session,
        code=DEMO_ITEM,
        policy_id=policy.id,
        department_id=jxj.id,
        name="宜昌市2026年度专精特新中小企业一次性奖励（即申即享）",
        mode="instant",
        config=DEMO_CONFIG,
    )
    budget.add_line(session=session, fund_item_id=item.id, source="市级财政", budget_year=2026, total_fen=500_000_000)
    rng = random.Random(2026)
    for i in track(range(n_enterprises), description="载入演示企业档案"):
        region = rng.choice(list(DISTRICTS))
        trade, industry = rng.choice(TRADES)
        code = demo_enterprise_uscc() if i == 0 else uscc_rules.generate(rng, region)
        name = "宜昌长江精工科技有限公司" if i == 0 else f"宜昌{rng.choice(WORDS)}{trade}有限公司{i:02d}"
        tags = ["专精特新"] if i == 0 or rng.random() < 0.3 else []
        if rng.random() < 0.2:
            tags.append("高新技术企业")
        phone = f"1380717{rng.randrange(10_000):04d}"
        account = f"4205{rng.randrange(10**14):014d}"
        enterprises.add(
            session=session,
            enterprise=Enterprise(
                uscc=code,
                name=name,
                region_code="420502" if i == 0 else region,
                industry_code=industry,
                size_class=rng.choice(["medium", "small", "small", "micro"]),
                registered_on=date(rng.randrange(2005, 2024), rng.randrange(1, 13), rng.randrange(1, 29)),
                employees=rng.randrange(8, 600),
                revenue_fen=rng.randrange(10**8, 10**11),
                tax_paid_fen=rng.randrange(10**6, 10**9),
                rd_ratio_bp=rng.randrange(0, 1500),
                tags=tags,
                credit_status="good",
                contact_phone_enc=crypto.encrypt(fernet_key, phone),
                contact_phone_masked=crypto.mask_phone(phone),
                bank_account_enc=crypto.encrypt(fernet_key, account),
                bank_account_masked=crypto.mask_account(account),
                bank_account_name=name,
                bank_name="中国工商银行宜昌分行营业部",
                bank_code="102526000011",
            ),
        )


def submit_demo_application(settings: Settings) -> dict:
    """Apply as the demo enterprise through the real API, as an enterprise would."""
    from api.auth import mint

    code = demo_enterprise_uscc()
    token = mint(settings.jwt_key(), role="enterprise", subject=code, name="宜昌长江精工科技有限公司")
    response = httpx.post(
        f"http://{settings.api_host}:{settings.api_port}/api/v1/applications",
        json={"fund_item_code": DEMO_ITEM, "uscc": code},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()
