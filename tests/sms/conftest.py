"""Fixtures of the SMS tests: the fake provider server, settings on a database of the module, a small world.

The dispatcher commits, so these tests never write into the shared session database (tests there that replace
every enterprise inside a rolled-back transaction would otherwise meet these rows, depending on the order).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from db.models import Department, Enterprise, FundItem, Notice, Policy
from db.session import transaction
from settings import Settings
from standins.sms.servers import FakeSmsServer
from tests.factories import fresh_uscc


@pytest.fixture(scope="module")
def fake(module_db_url: str) -> Iterator[FakeSmsServer]:
    """One per backend: notice ids (the idempotency keys it counts) restart in each database."""
    with FakeSmsServer() as server:
        yield server


# The secret receipt callbacks carry (the endpoints refuse every receipt without a configured one).
RECEIPT_TOKEN = "receipt-secret-for-tests"
RECEIPT_HEADERS = {"X-Zhida-Receipt-Token": RECEIPT_TOKEN}


@pytest.fixture
def settings(module_db_url: str, tmp_path) -> Settings:
    return Settings(database_url=module_db_url, data_dir=tmp_path, sms_receipt_token=RECEIPT_TOKEN)


@pytest.fixture
def world(settings: Settings) -> Iterator[dict]:
    """A department with a fund item, another department, a finance bureau and an enterprise; queued notices (and receipt polls) of earlier tests are put aside."""
    tag = uuid.uuid4().hex[:8]
    with transaction(settings.db_url) as s:
        s.execute(update(Notice).where(Notice.status.in_(("queued", "sending"))).values(status="failed"))
        s.execute(update(Notice).where(Notice.status == "sent").values(next_attempt_at=None))  # no stray polls
        dept = Department(code=f"D{tag}", name="市科技局", region_code="420500")
        other = Department(code=f"O{tag}", name="市人社局", region_code="420500")
        finance = Department(code=f"F{tag}", name="市财政局", region_code="420500", kind="finance")
        s.add_all([dept, other, finance])
        s.flush()
        policy = Policy(doc_number=f"宜科发{tag}", title="政策", level="city", department_id=dept.id)
        s.add(policy)
        s.flush()
        item = FundItem(code=f"FI{tag}", policy_id=policy.id, department_id=dept.id, name="高企奖励", mode="instant")
        ent = Enterprise(uscc=fresh_uscc(), name="宜昌某科技有限公司", region_code="420500")
        s.add_all([item, ent])
        s.flush()
        yield_ = {"dept": dept.code, "other_dept": other.code, "finance": finance.code, "item": item.id, "ent": ent.id,
                  "uscc": ent.uscc, "key": settings.fernet_key()}  # fmt: skip
    yield yield_
