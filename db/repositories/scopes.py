"""What a caller may see, as SQL: the fund items and cases of a department (own items and assigned stages) or of a
finance bureau's region. services/scope.py decides who gets which filter; the queries live here."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select, true
from sqlalchemy.orm import Session, aliased

from db.models import Case, CaseTask, Department, Enterprise, FundItem
from schemas.vocabulary import Role

Condition = ColumnElement[bool]


def department_by_code(*, session: Session, code: str) -> Department | None:
    return session.scalar(select(Department).where(Department.code == code))


def enterprise_id_by_uscc(*, session: Session, uscc: str) -> int | None:
    return session.scalar(select(Enterprise.id).where(Enterprise.uscc == uscc))


def items_of_region(region_prefix: str) -> ColumnElement[bool]:
    """Fund items whose owning department lies in the region (a region code prefix: 4205 = 宜昌市 and its districts)."""
    return FundItem.department_id.in_(select(Department.id).where(Department.region_code.startswith(region_prefix)))


def cases_of_department(department_id: int, department_code: str) -> ColumnElement[bool]:
    """Cases of the department's own fund items, and cases with a stage assigned to it (联审 of others' items)."""
    own = Case.fund_item_id.in_(select(FundItem.id).where(FundItem.department_id == department_id))
    assigned = exists().where(CaseTask.case_id == Case.id, CaseTask.department_code == department_code)
    return or_(own, assigned)


def cases_of_region(region_prefix: str) -> ColumnElement[bool]:
    """Cases of the fund items whose owning department lies in the region, as a per-case EXISTS: SQLite took an IN
    list over the item ids for an index and sorted a million cases to page the newest fifty (about a second)."""
    item, department = aliased(FundItem), aliased(Department)
    return exists().where(
        item.id == Case.fund_item_id,
        department.id == item.department_id,
        department.region_code.startswith(region_prefix),
    )


def case_matches(*, session: Session, case_id: int, condition: ColumnElement[bool]) -> bool:
    """Whether the case satisfies a scope condition."""
    return session.scalar(select(exists().where(Case.id == case_id, condition))) or False


def item_matches(*, session: Session, fund_item_id: int, condition: ColumnElement[bool]) -> bool:
    return session.scalar(select(exists().where(FundItem.id == fund_item_id, condition))) or False


def case_condition(
    *,
    role: Role,
    enterprise_id: int | None,
    region_prefix: str | None,
    department_id: int | None,
    department_code: str | None,
) -> Condition:
    """The cases a caller of this role and scope may see."""
    if role == Role.ADMIN:
        return true()
    if role == Role.ENTERPRISE:
        return Case.enterprise_id == enterprise_id
    if role == Role.FINANCE:
        return cases_of_region(region_prefix or "")
    return cases_of_department(department_id or 0, department_code or "")


def item_condition(*, role: Role, region_prefix: str | None, department_id: int | None) -> Condition:
    """The fund items a caller may manage (department: its own) or track (finance: its region)."""
    if role == Role.ADMIN:
        return true()
    if role == Role.FINANCE:
        return items_of_region(region_prefix or "")
    if role == Role.DEPARTMENT:
        return FundItem.department_id == department_id
    return FundItem.id.is_(None)  # enterprises manage no fund items; published items are read elsewhere
