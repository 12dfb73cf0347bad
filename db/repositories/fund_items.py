"""Fund items, their versions, departments and policies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Department, FundItem, FundItemVersion, Policy


def get_by_code(*, session: Session, code: str) -> FundItem | None:
    return session.scalar(select(FundItem).where(FundItem.code == code))


def get(*, session: Session, fund_item_id: int) -> FundItem | None:
    return session.get(FundItem, fund_item_id)


def version(*, session: Session, fund_item_id: int, number: int) -> FundItemVersion | None:
    return session.scalar(
        select(FundItemVersion).where(FundItemVersion.fund_item_id == fund_item_id, FundItemVersion.version == number)
    )


def list_all(*, session: Session) -> list[FundItem]:
    return list(session.scalars(select(FundItem).order_by(FundItem.id)))


def add_department(*, session: Session, code: str, name: str, region_code: str, kind: str = "policy") -> Department:
    dept = Department(code=code, name=name, region_code=region_code, kind=kind)
    session.add(dept)
    session.flush()
    return dept


def department_by_code(*, session: Session, code: str) -> Department | None:
    return session.scalar(select(Department).where(Department.code == code))


def add_policy(*, session: Session, **fields: Any) -> Policy:
    policy = Policy(**fields)
    session.add(policy)
    session.flush()
    return policy


def add_listed(
    *,
    session: Session,
    code: str,
    policy_id: int,
    department_id: int,
    name: str,
    mode: str,
    config: dict[str, Any],
) -> FundItem:
    """A fund item listed (上架) with its first configuration frozen."""
    item = FundItem(
        code=code,
        policy_id=policy_id,
        department_id=department_id,
        name=name,
        mode=mode,
        status="listed",
        current_version=1,
        listed_version=1,
    )
    session.add(item)
    session.flush()
    session.add(FundItemVersion(fund_item_id=item.id, version=1, config=config, frozen=True))
    session.flush()
    return item


def count(*, session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(FundItem)) or 0)
