"""Fresh, valid test data that no other test can have used up: USCCs and enterprises made on demand."""

from __future__ import annotations

import copy
import random
import threading
import uuid
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from db.models import Enterprise, FundItem
from db.repositories import fund_items
from schemas import uscc as uscc_rules

_rng = random.Random()  # seeded from the OS: codes differ between runs too, so committed data never collides
_issued: set[str] = set()
_lock = threading.Lock()


def fresh_uscc(region_code: str = "420500") -> str:
    """A valid unified social credit code (GB 32100) not handed out before in this test run."""
    with _lock:
        while True:
            code = uscc_rules.generate(_rng, region_code)
            if code not in _issued:
                _issued.add(code)
                return code


def clone_enterprise(session: Session, template: Enterprise, **changes: Any) -> Enterprise:
    """A new enterprise with `template`'s archive (so the same rules match it) under a fresh USCC and name."""
    skip = {"id", "uscc", "name", "created_at", "updated_at"}
    code = fresh_uscc(template.uscc[2:8])
    fields = {a.key: copy.copy(getattr(template, a.key)) for a in inspect(Enterprise).column_attrs if a.key not in skip}
    fields |= {"uscc": code, "name": f"{template.name}（{code[-6:]}）"}
    enterprise = Enterprise(**(fields | changes))
    session.add(enterprise)
    session.flush()
    return enterprise


def new_enterprise(session: Session, *, region_code: str = "420502", **fields: Any) -> Enterprise:
    """A minimal enterprise of Yichang with a fresh, valid USCC; `fields` set anything else."""
    code = fresh_uscc(region_code)
    enterprise = Enterprise(uscc=code, name=f"宜昌测试企业{code[-6:]}有限公司", region_code=region_code)
    for key, value in fields.items():
        setattr(enterprise, key, value)
    session.add(enterprise)
    session.flush()
    return enterprise


def new_listed_item(session: Session, *, mode: str, name: str, policy_title: str = "测试政策") -> FundItem:
    """A listed fund item of a new department of 宜昌市 (named as the 经信局 is), under a new city policy; its codes
    are fresh, so committed items never collide."""
    tag = uuid.uuid4().hex[:6].upper()
    department = fund_items.add_department(session=session, code=f"T-{tag}", name="宜昌市经济和信息化局",
                                           region_code="420500")  # fmt: skip
    policy = fund_items.add_policy(session=session, doc_number=f"宜政T{tag}", title=policy_title, level="city",
                                   department_id=department.id)  # fmt: skip
    return fund_items.add_listed(session=session, code=f"T-{tag}", policy_id=policy.id, department_id=department.id,
                                 name=name, mode=mode, config={})  # fmt: skip
