"""Scoping by the caller: every service asks this module what the signed-in principal may see and change.

- an enterprise sees its own cases, notices and archive;
- a department sees its own fund items, their cases, and the cases with a stage assigned to it (联审);
- a finance bureau sees the fund items and cases of its region (its region code and the districts under it);
- an administrator sees everything.
A valid token whose department or enterprise does not exist is refused (401): a signature alone proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import FundItem
from db.repositories import scopes
from schemas.principal import Principal
from schemas.vocabulary import DepartmentKind, Role
from services.errors import Forbidden, NotFound, Unauthorized


@dataclass(frozen=True)
class Scope:
    """The caller with what it may see resolved once per request."""

    principal: Principal
    department_id: int | None = None
    department_code: str | None = None
    department_name: str | None = None
    region_prefix: str | None = None
    enterprise_id: int | None = None

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def actor(self) -> str:
        return self.principal.actor


def region_prefix(region_code: str) -> str:
    """The prefix that covers a region and everything under it: 420500 → 4205, 420000 → 42, 420502 → 420502."""
    code = region_code
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def resolve(*, session: Session, principal: Principal) -> Scope:
    """The caller's scope; an unknown department or enterprise, or a department in the wrong role, is refused."""
    if principal.role == Role.ADMIN:
        return Scope(principal=principal)
    if principal.role == Role.ENTERPRISE:
        enterprise_id = scopes.enterprise_id_by_uscc(session=session, uscc=principal.subject)
        if enterprise_id is None:
            raise Unauthorized("访问令牌中的企业不在企业档案中", field="sub", rule="known_enterprise")
        return Scope(principal=principal, enterprise_id=enterprise_id)
    department = scopes.department_by_code(session=session, code=principal.subject)
    expected = DepartmentKind.FINANCE if principal.role == Role.FINANCE else DepartmentKind.POLICY
    if department is None or department.kind != expected:
        raise Unauthorized(f"访问令牌中的{Role(principal.role).label}不存在", field="sub", rule="known_department")
    return Scope(
        principal=principal,
        department_id=department.id,
        department_code=department.code,
        department_name=department.name,
        region_prefix=region_prefix(department.region_code),
    )


def case_filter(scope: Scope) -> scopes.Condition:
    """The cases the caller may see, as a condition the repositories apply."""
    return scopes.case_condition(
        role=scope.role,
        enterprise_id=scope.enterprise_id,
        region_prefix=scope.region_prefix,
        department_id=scope.department_id,
        department_code=scope.department_code,
    )


def item_filter(scope: Scope) -> scopes.Condition:
    """The fund items the caller may manage (department: its own) or track (finance: its region)."""
    return scopes.item_condition(role=scope.role, region_prefix=scope.region_prefix, department_id=scope.department_id)


def require_case(*, session: Session, scope: Scope, case_id: int) -> None:
    """Refuse a case outside the caller's scope as if it did not exist (no probing of other departments' cases)."""
    if not scopes.case_matches(session=session, case_id=case_id, condition=case_filter(scope)):
        raise NotFound(f"办件 {case_id} 不存在", field="case_id", rule="in_scope")


def require_item(*, session: Session, scope: Scope, fund_item_id: int, code: str = "") -> None:
    if not scopes.item_matches(session=session, fund_item_id=fund_item_id, condition=item_filter(scope)):
        raise NotFound(f"资金事项 {code or fund_item_id} 不存在", field="code", rule="in_scope")


def require_owner(*, scope: Scope, fund_item: FundItem) -> None:
    """Only the owning department (or an administrator) changes a fund item."""
    if scope.role == Role.ADMIN:
        return
    if scope.role != Role.DEPARTMENT or fund_item.department_id != scope.department_id:
        raise Forbidden(f"资金事项“{fund_item.name}”不属于本部门", field="code", rule="owner_department")

