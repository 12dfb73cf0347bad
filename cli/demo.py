"""Demo data written like real Chinese policies, loaded when the database is empty."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import httpx
from rich.progress import track

from db import crypto
from db.models import Enterprise, FundItem
from db.repositories import enterprises, fund_items, indicators
from db.session import transaction
from schemas import uscc as uscc_rules
from schemas.fund_items import validate_config
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
CITY = {"code": "420500", "name": "宜昌市"}
FINANCE = {"department": "YC-CZJ", "auto_when_quantified": True, "deadline_working_days": 5}

# 即申即享: 专精特新中小企业一次性奖励 — a fixed 10万元 paid at once after the automatic rule check.
DEMO_CONFIG: dict[str, Any] = {
    "policy": {
        "doc_number": "宜经信发〔2026〕12号",
        "title": "宜昌市支持专精特新中小企业高质量发展若干措施",
        "level": "city",
        "issuer": "宜昌市经济和信息化局",
        "issuer_code": "YC-JXJ",
        "published_on": "2026-03-18",
    },
    "name": "宜昌市2026年度专精特新中小企业一次性奖励（即申即享）",
    "region": CITY,
    "mode": "instant",
    "window": {"start": "2026-04-01", "end": "2027-03-31"},
    "guide": {
        "policy_basis": "《宜昌市支持专精特新中小企业高质量发展若干措施》（宜经信发〔2026〕12号）第三条：对新认定的"
        "省级及以上专精特新中小企业，给予一次性奖励10万元。",
        "conditions_text": "1. 在宜昌市行政区域内依法登记注册、具有独立法人资格；2. 为有效期内的省级及以上专精特新中小企业"
        "（以认定文件为准）；3. 未被列入严重失信主体名单。",
        "standard_text": "一次性奖励10万元。同一企业在本政策有效期内只奖励一次。",
        "materials": [],
        "process": "企业登录惠企服务平台“即申即享”专区在线申报 → 系统自动比对企业档案和认定名单 → 符合条件的即时审批"
        " → 市财政局通过国库集中支付直达企业账户，全程原则上不超过1个工作日。",
        "notes": "1. 无需提交纸质材料；2. 请确认收款账户为企业基本存款账户；3. 已享受省级同类奖励的不重复奖励。",
    },
    "conditions": {
        "op": "all",
        "items": [
            {"field": "tags", "op": "has_tag", "value": "专精特新"},
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "credit_status", "op": "ne", "value": "dishonest"},
        ],
    },
    "standard": {"kind": "fixed", "amount_fen": 10_000_000},
    "budget": {"year": 2026, "total_fen": 500_000_000, "sources": [
            {"name": "市级财政", "share_bp": 10000, "indicator_no": "宜财企指〔2026〕12号", "budget_level": "3", "exp_func_code": "2150806", "gov_eco_code": "50799", "dep_eco_code": "31299", "fund_type_code": "1"},
        ],
    },
    "pay_summary_code": "30307",
    "fund_source": "市级财政",
    "approval": {"finance": FINANCE},
    "service_officer": {"name": "王敏", "phone": "0717-6222001", "office": "市经信局中小企业科"},
    "officer": "市经信局中小企业科 0717-6222001",
}

# 申报审批: 技术改造补贴 — 经信局形式审查、初审 → 财政局、发改委联审 → 公示5个工作日 → 财政审核.
REVIEW_ITEM = "YC-2026-JSGZ-001"
REVIEW_CONFIG: dict[str, Any] = {
    "policy": {
        "doc_number": "宜府办发〔2026〕9号",
        "title": "宜昌市人民政府办公室关于推动工业企业技术改造提质增效的若干措施",
        "level": "city",
        "issuer": "宜昌市人民政府办公室",
        "published_on": "2026-04-20",
    },
    "name": "宜昌市2026年度工业企业技术改造设备投资补贴（申报审批）",
    "region": CITY,
    "mode": "review",
    "window": {"start": "2026-11-02", "end": "2027-01-29"},
    "guide": {
        "policy_basis": "《宜昌市人民政府办公室关于推动工业企业技术改造提质增效的若干措施》（宜府办发〔2026〕9号）"
        "第二条第（一）项",
        "conditions_text": "1. 在宜昌市依法登记注册、具有独立法人资格的工业企业（国民经济行业分类属制造业）；2. 技术改造项目已在"
        "投资主管部门备案，且于2025年1月1日至2026年9月30日期间竣工投产；3. 项目生产性设备（含软件）投资额不低于500万元；"
        "4. 企业信用状况良好，近三年未发生较大及以上安全生产、生态环境事故。",
        "standard_text": "按经审核确认的项目生产性设备（含软件）投资额的8%给予补贴，单个项目最高不超过200万元。同一项目已享受"
        "其他市级财政资金支持的，不重复支持。",
        "materials": [
            {
                "name": "技术改造项目补贴申请表",
                "requirement": "按示范文本如实填写，法定代表人签字并加盖企业公章",
                "sample": "附件1-技术改造项目补贴申请表（示范文本）.docx",
            },
            {
                "name": "项目备案证明",
                "requirement": "投资主管部门出具的项目备案证明扫描件",
                "sample": "附件2-项目备案证明（样例）.pdf",
            },
            {
                "name": "设备投资明细表及发票",
                "requirement": "逐台（套）列明设备名称、数量、金额，附增值税专用发票和银行付款凭证扫描件，合计金额须与申请表一致",
                "sample": "附件3-设备投资明细表（示范文本）.xlsx",
            },
            {
                "name": "项目竣工投产证明及专项审计报告",
                "requirement": "企业竣工投产报告，及会计师事务所出具的设备投资专项审计报告",
                "sample": "附件4-专项审计报告（样例）.pdf",
            },
            {
                "name": "信用承诺书",
                "requirement": "按示范文本签署，加盖企业公章",
                "sample": "附件5-信用承诺书（示范文本）.docx",
            },
        ],
        "process": "1. 企业在惠企服务平台在线申报并上传材料；2. 市经信局形式审查（2个工作日），材料不全的一次性告知，"
        "企业须在5个工作日内补正；3. 市经信局初审（5个工作日）；4. 市财政局、市发展改革委联合审核（10个工作日）；"
        "5. 拟支持名单在惠企服务平台公示5个工作日；6. 市财政局审核后通过国库集中支付拨付至企业账户。",
        "notes": "1. 申报材料须真实、完整，弄虚作假的取消资格、追回资金并记入企业信用记录；2. 同一项目不得重复申报市级技改类"
        "资金；3. 公示期内对拟支持名单有异议的，可实名向市经信局提出并提供证据。",
    },
    "conditions": {
        "op": "all",
        "items": [
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "industry_code", "op": "prefix", "value": "C"},
            {"field": "registered_on", "op": "le", "value": "2024-12-31"},
            {"field": "credit_status", "op": "eq", "value": "good"},
        ],
    },
    "standard": {
        "kind": "manual",
        "max_fen": 200_000_000,
        "note": "按经审核确认的设备投资额的8%核定，单个项目最高200万元",
    },
    "budget": {
        "year": 2026,
        "total_fen": 2_000_000_000,
        "sources": [
            {"name": "市级财政", "share_bp": 6000, "indicator_no": "宜财企指〔2026〕31号", "budget_level": "3", "exp_func_code": "2150805", "gov_eco_code": "50799", "dep_eco_code": "31299", "fund_type_code": "1"},
            {"name": "区级财政", "share_bp": 4000, "indicator_no": "伍财企指〔2026〕7号", "budget_level": "4", "exp_func_code": "2150805", "gov_eco_code": "50799", "dep_eco_code": "31299", "fund_type_code": "1"},
        ],
    },
    "pay_summary_code": "30307",
    "approval": {
        "completeness_check": {"department": "YC-JXJ", "deadline_working_days": 2},
        "stages": [
            {
                "key": "first_review",
                "name": "初审",
                "departments": ["YC-JXJ"],
                "deadline_working_days": 5,
                "remind_before_working_days": 1,
                "on_timeout": "escalate",
                "escalate_to": "YC-SJJ",
            },
            {
                "key": "joint_review",
                "name": "联合审核",
                "departments": ["YC-CZJ", "YC-FGW"],
                "joint_mode": "all",
                "deadline_working_days": 10,
                "remind_before_working_days": 2,
                "on_timeout": "escalate",
                "escalate_to": "YC-SJJ",
            },
        ],
        "supplement": {"max_times": 1, "enterprise_deadline_working_days": 5},
        "publicity": {"working_days": 5, "objections_allowed": True, "objection_department": "YC-JXJ"},
        "finance": FINANCE,
    },
    "sms_templates": {"publicity": "SMS_JSGZ_GS01"},
    "service_officer": {"name": "刘洋", "phone": "0717-6222018", "office": "市经信局投资与技术改造科"},
}

# 免申即享: 稳岗补贴 — matched from shared data, 3% of last year's tax with a floor and a cap, consent within
# 10 working days, publicity, automatic finance approval.
NO_APPLICATION_ITEM = "YC-2026-WGBT-001"
NO_APPLICATION_CONFIG: dict[str, Any] = {
    "policy": {
        "doc_number": "宜人社发〔2026〕6号",
        "title": "宜昌市人力资源和社会保障局 宜昌市财政局关于做好2026年中小微企业稳岗补贴工作的通知",
        "level": "city",
        "issuer": "宜昌市人力资源和社会保障局、宜昌市财政局",
        "issuer_code": "YC-RSJ",
        "published_on": "2026-05-12",
    },
    "name": "宜昌市2026年度中小微企业稳岗补贴（免申即享）",
    "region": CITY,
    "mode": "no_application",
    "guide": {
        "policy_basis": "《关于做好2026年中小微企业稳岗补贴工作的通知》（宜人社发〔2026〕6号）",
        "conditions_text": "1. 在宜昌市依法登记注册的中型、小型、微型企业；2. 上年末从业人数不少于10人；3. 成立满一年"
        "（2025年6月30日前成立）；4. 信用状况良好，未被列入严重失信主体名单或经营异常名录。",
        "standard_text": "按企业上年度纳税额的3%给予稳岗补贴，最低1万元，最高20万元。预算不足时，按从业人数从多到少的"
        "顺序兑付，人数相同的按成立时间先后兑付。",
        "materials": [],
        "process": "1. 平台比对企业档案数据，自动确定符合条件的企业并核定金额，短信告知企业；2. 企业在10个工作日内登录平台"
        "确认兑付意愿和收款账户，逾期未确认的按企业档案登记的基本存款账户兑付；3. 拟兑付名单公示5个工作日；"
        "4. 市财政局审核后通过国库集中支付直达企业账户。",
        "notes": "1. 企业无需申报、无需提交材料；2. 对核定结果有异议的，可在公示期内向市人社局实名反映；3. 请及时更新"
        "企业联系电话和收款账户。",
    },
    "conditions": {
        "op": "all",
        "items": [
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "size_class", "op": "in", "value": ["medium", "small", "micro"]},
            {"field": "employees", "op": "ge", "value": 10},
            {"field": "registered_on", "op": "le", "value": "2025-06-30"},
            {"field": "credit_status", "op": "eq", "value": "good"},
        ],
    },
    "standard": {
        "kind": "rate",
        "base": "tax_paid_fen",
        "rate": "0.03",
        "floor_fen": 1_000_000,
        "cap_fen": 20_000_000,
    },
    "budget": {
        "year": 2026,
        "total_fen": 1_000_000_000,
        "sources": [
            {"name": "市级就业补助资金", "share_bp": 7000, "indicator_no": "宜财社指〔2026〕5号", "budget_level": "3", "exp_func_code": "2080799", "gov_eco_code": "50799", "dep_eco_code": "31299", "fund_type_code": "1"},
            {"name": "区级财政", "share_bp": 3000, "indicator_no": "伍财社指〔2026〕2号", "budget_level": "4", "exp_func_code": "2080799", "gov_eco_code": "50799", "dep_eco_code": "31299", "fund_type_code": "1"},
        ],
    },
    "pay_summary_code": "30307",
    "approval": {
        "publicity": {"working_days": 5, "objections_allowed": True, "objection_department": "YC-RSJ"},
        "finance": FINANCE,
    },
    "no_application": {
        "consent": {"deadline_working_days": 10, "on_no_answer": "pay_on_file"},
        "shortfall": {
            "policy": "stop_in_order",
            "order_by": [{"key": "employees", "direction": "desc"}, {"key": "registered_on", "direction": "asc"}],
        },
    },
    "service_officer": {"name": "陈静", "phone": "0717-6451234", "office": "市人社局就业促进科"},
}

DEPARTMENTS = [
    ("YC-JXJ", "宜昌市经济和信息化局", "policy"),
    ("YC-CZJ", "宜昌市财政局", "finance"),
    ("YC-RSJ", "宜昌市人力资源和社会保障局", "policy"),
    ("YC-KJJ", "宜昌市科学技术局", "policy"),
    ("YC-FGW", "宜昌市发展和改革委员会", "policy"),
    ("YC-SJJ", "宜昌市数据局", "policy"),
]
# (code, owning department, configuration) of the listed demo items, one per mode.
DEMO_ITEMS = [
    (DEMO_ITEM, "YC-JXJ", DEMO_CONFIG),
    (REVIEW_ITEM, "YC-JXJ", REVIEW_CONFIG),
    (NO_APPLICATION_ITEM, "YC-RSJ", NO_APPLICATION_CONFIG),
]


def demo_enterprise_uscc() -> str:
    return uscc_rules.generate(random.Random(20260), "420502")


def ensure_demo(settings: Settings) -> bool:
    """Load the demo data into an empty database; returns whether it did."""
    with transaction(settings.db_url) as session:
        if fund_items.count(session=session):
            return False
        load(session=session, fernet_key=settings.fernet_key())
    return True


def add_listed_item(*, session, code: str, department_code: str, config: dict[str, Any]) -> FundItem:
    """A fund item listed with `config` (validated) frozen as version 1, and its budget lines."""
    cfg = validate_config(config)
    owner = fund_items.department_by_code(session=session, code=department_code)
    assert owner is not None, department_code
    policy = fund_items.policy_by_doc_number(session=session, doc_number=cfg.policy.doc_number)
    if policy is None:
        issuer = fund_items.department_by_code(session=session, code=cfg.policy.issuer_code or department_code)
        policy = fund_items.add_policy(
            session=session,
            doc_number=cfg.policy.doc_number,
            title=cfg.policy.title,
            level=cfg.policy.level,
            department_id=(issuer or owner).id,
            published_on=cfg.policy.published_on,
        )
    item = fund_items.add_listed(
        session=session,
        code=code,
        policy_id=policy.id,
        department_id=owner.id,
        name=cfg.name,
        mode=cfg.mode,
        config=cfg.to_json(),
    )
    fund_items.sync_budget_lines(
        session=session,
        fund_item_id=item.id,
        budget_year=cfg.budget.year,
        sources=[(s.name, s.amount_fen or 0) for s in cfg.budget.sources],
    )
    indicators.sync_budget(session=session, fund_item_id=item.id, budget=cfg.budget)
    return item


def load(*, session, fernet_key: str, n_enterprises: int = 40) -> None:
    for code, name, kind in DEPARTMENTS:
        fund_items.add_department(session=session, code=code, name=name, region_code="420500", kind=kind)
    for code, department_code, config in DEMO_ITEMS:
        add_listed_item(session=session, code=code, department_code=department_code, config=config)
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
