"""Departments configure fund items (政策资金事项): drafts, versions, submit, list (上架), close, delist.

Writes need the department role (its own items) or admin; finance reads the items of its region. Validation
errors come back in Chinese, each naming the field (title and path) and the rule broken. The use cases are in
services/fund_items.py.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.deps import SessionDep, require
from schemas.fields import ConditionFieldOut
from schemas.fund_items import (
    EXAMPLE_INSTANT,
    EXAMPLE_NO_APPLICATION,
    EXAMPLE_REVIEW,
    DelistIn,
    FundItemConfig,
    FundItemCreate,
    FundItemOut,
    FundItemSummary,
    FundItemVersionOut,
    VersionSummary,
    explain_errors,
)
from schemas.principal import Principal
from schemas.text import Id
from schemas.vocabulary import FundItemMode, FundItemStatus, Role
from services import fund_items as service


class ChineseValidationRoute(APIRoute):
    """Rewords request validation errors in Chinese (field title, path and rule) before the shared handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        body = self.body_field.field_info.annotation if self.body_field is not None else None
        root = body if isinstance(body, type) and issubclass(body, BaseModel) else FundItemConfig

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(explain_errors(exc.errors(), root), body=exc.body) from None

        return route_handler


router = APIRouter(prefix="/api/v1", tags=["fund items 资金事项"], route_class=ChineseValidationRoute)

Writer = Annotated[Principal, Depends(require(Role.DEPARTMENT))]
Reader = Annotated[Principal, Depends(require(Role.DEPARTMENT, Role.FINANCE))]

CONFIG_EXAMPLES = {
    "instant": {"summary": "即申即享：专精特新企业一次性奖励（定额）", "value": EXAMPLE_INSTANT},
    "review": {"summary": "申报审批：技术改造补贴（初审 → 联审 → 公示 → 财政审核）", "value": EXAMPLE_REVIEW},
    "no_application": {"summary": "免申即享：稳岗补贴（按比例，封顶，意愿确认）", "value": EXAMPLE_NO_APPLICATION},
}
EXAMPLE_CODES = {"instant": "YC-2026-ZJTX-101", "review": "YC-2026-JSGZ-101", "no_application": "YC-2026-WGBT-101"}
CREATE_EXAMPLES = {
    key: {"summary": example["summary"], "value": {"code": EXAMPLE_CODES[key], "config": example["value"]}}
    for key, example in CONFIG_EXAMPLES.items()
}


def listing_today() -> date:
    """The listing day for the 5-working-day check: today in local time (tests override this dependency)."""
    return service.today_local()


Today = Annotated[date, Depends(listing_today)]
ERRORS = {
    401: {"description": "访问令牌无效，或令牌中的部门不存在"},
    403: {"description": "无权操作（只能修改本部门的事项）"},
    404: {"description": "事项不存在（或不在本部门、本地区范围内）"},
    409: {"description": "状态不允许此操作，或不满足上架时限"},
    422: {"description": "配置有误：每条错误给出字段、规则和中文说明"},
}


@router.post("/fund-items", response_model=FundItemOut, status_code=201, responses=ERRORS)
def create_fund_item(
    session: SessionDep,
    principal: Writer,
    body: Annotated[FundItemCreate, Body(openapi_examples=CREATE_EXAMPLES)],
) -> FundItemOut:
    """Create a fund item as a draft (version 1, not frozen)."""
    return service.create_item(session=session, principal=principal, body=body)


@router.get("/fund-items", response_model=list[FundItemSummary])
def list_fund_items(
    session: SessionDep,
    principal: Reader,
    status: Annotated[FundItemStatus | None, Query(description="状态")] = None,
    mode: Annotated[FundItemMode | None, Query(description="兑付方式")] = None,
    department: Annotated[str | None, Query(description="主管部门编码")] = None,
) -> list[FundItemSummary]:
    """Fund items the caller may see (its own, or its region's), filtered by status, mode and department."""
    return service.list_items(
        session=session, principal=principal, status=status, mode=mode, department_code=department
    )


@router.get("/fund-items/{code}", response_model=FundItemOut, responses=ERRORS)
def get_fund_item(code: str, session: SessionDep, principal: Reader) -> FundItemOut:
    """A fund item with its latest version's configuration and its budget ledger."""
    return service.get_item(session=session, principal=principal, code=code)


@router.put("/fund-items/{code}/draft", response_model=FundItemOut, responses=ERRORS)
def save_fund_item_draft(
    code: str,
    session: SessionDep,
    principal: Writer,
    config: Annotated[FundItemConfig, Body(openapi_examples=CONFIG_EXAMPLES)],
) -> FundItemOut:
    """Save the draft: replaces an unfrozen latest version; after listing, starts version N+1."""
    return service.save_draft(session=session, principal=principal, code=code, config=config)


@router.post("/fund-items/{code}/submit", response_model=FundItemOut, responses=ERRORS)
def submit_fund_item(code: str, session: SessionDep, principal: Writer, today: Today) -> FundItemOut:
    """Submit a draft for listing; the response says by when it must be listed."""
    return service.submit(session=session, principal=principal, code=code, today=today)


@router.post("/fund-items/{code}/list", response_model=FundItemOut, responses=ERRORS)
def list_fund_item(code: str, session: SessionDep, principal: Writer, today: Today) -> FundItemOut:
    """List (上架): freeze the latest version; at least 5 working days before the window opens (宜昌规则第二十条)."""
    return service.list_item(session=session, principal=principal, code=code, today=today)


@router.post("/fund-items/{code}/close", response_model=FundItemOut, responses=ERRORS)
def close_fund_item(code: str, body: DelistIn, session: SessionDep, principal: Writer) -> FundItemOut:
    """Stop accepting applications (结束受理); cases under way go on."""
    return service.close(session=session, principal=principal, code=code, reason=body.reason)


@router.post("/fund-items/{code}/delist", response_model=FundItemOut, responses=ERRORS)
def delist_fund_item(code: str, body: DelistIn, session: SessionDep, principal: Writer) -> FundItemOut:
    """Take the fund item off the platform (下架); cases under way go on."""
    return service.delist(session=session, principal=principal, code=code, reason=body.reason)


@router.get("/fund-items/{code}/versions", response_model=list[VersionSummary], responses=ERRORS)
def list_fund_item_versions(code: str, session: SessionDep, principal: Reader) -> list[VersionSummary]:
    """All versions, oldest first; frozen ones are immutable."""
    return service.versions(session=session, principal=principal, code=code)


@router.get("/fund-items/{code}/versions/{number}", response_model=FundItemVersionOut, responses=ERRORS)
def get_fund_item_version(code: str, number: Id, session: SessionDep, principal: Reader) -> FundItemVersionOut:
    """One version's full configuration (cases pin a version)."""
    return service.version(session=session, principal=principal, code=code, number=number)


@router.get("/condition-fields", response_model=list[ConditionFieldOut], tags=["conditions 申报条件"])
def condition_fields(session: SessionDep, principal: Reader) -> list[dict[str, Any]]:
    """The enterprise fields conditions may use: type, unit, Chinese label, operators and choices."""
    return service.condition_fields(session=session, principal=principal)
