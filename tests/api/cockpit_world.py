"""The cockpit's API world: the known dataset (tests/db/cockpit_dataset.py) in a database of its own, an open
reconciliation alert, and a token per caller of the standard cast (tests/api/scoping.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from api.auth import mint
from db.migrate import upgrade
from db.models import Enterprise
from db.repositories import cases, reconciliation
from db.repositories import payouts as payout_repo
from db.session import engine_for, transaction
from schemas.vocabulary import CaseStatus
from settings import Settings
from tests.api.scoping import World
from tests.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.db import cockpit_dataset
from tests.factories import new_enterprise


def build(db_url: str, folder: Path) -> Iterator[tuple[Settings, World, cockpit_dataset.Dataset]]:
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'cockpit.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, jwt_secret="cockpit-test-secret-" + "x" * 24)
    with transaction(url) as s:
        data = cockpit_dataset.build(s)
        alert = reconciliation.raise_alert(session=s, kind="recon_missing_ours", ref=f"cockpit:{data.tag}",
                                           message="2026-09-03 对账：国库对账单有凭证 V1（已拨付 100.00元），我方无此支付指令")  # fmt: skip
        usccs = {k: s.get(Enterprise, data.ids[k]).uscc for k in ("e1", "e5")}  # type: ignore[union-attr]
        # One payout made outside Zhida, for the same purpose as e1's paid case: a duplicate benefit.
        outside = {"uscc": usccs["e1"], "enterprise_name": "宜昌甲公司", "item_name": "技改补贴（线下）",
                   "purpose": "工业企业技术改造奖补", "amount_fen": 5_000_000, "paid_on": date(2026, 3, 15),
                   "department_name": "宜昌市经济和信息化局", "source_document": "宜经信〔2026〕12号"}  # fmt: skip
        payout_repo.add_many(session=s, rows=[outside | {"row_key": f"world-{data.tag}", "region_code": "420500",
                                                         "batch": "world", "imported_by": "test"}])  # fmt: skip
        # One case not approved, with its reason: the policy performance's rejection ranking (no amount, so no sum
        # of the cockpit moves).
        elsewhere = new_enterprise(s, region_code="420504")  # 点军区: no other case there
        rejected, _ = cases.get_or_create(session=s, fund_item_id=data.ids["item_B"], fund_item_version=1,
                                          enterprise_id=elsewhere.id, mode="review",
                                          workflow_id=f"cockpit:{data.tag}:r1")  # fmt: skip
        rejected.status, rejected.outcome_reason = CaseStatus.REJECTED, "研发投入未达申报条件"
        s.flush()
        ids = {**data.ids, "alert": alert.id, "r1": rejected.id, "uscc_a": usccs["e1"], "uscc_b": usccs["e5"]}
    key = settings.jwt_key()
    subjects = {"admin": ("admin", "ops"), "dept_a": ("department", data.dept_a), "dept_b": ("department", data.dept_b),
                "finance_yc": ("finance", data.finance_yc), "finance_wh": ("finance", data.finance_wh),
                "ent_a": ("enterprise", usccs["e1"]), "ent_b": ("enterprise", usccs["e5"]),
                "unknown": ("department", "NOPE")}  # fmt: skip
    headers = {c: {"Authorization": f"Bearer {mint(key, role=r, subject=sub)}"} for c, (r, sub) in subjects.items()}
    yield settings, World(headers=headers, ids=ids, secret=settings.jwt_key()), data
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)
