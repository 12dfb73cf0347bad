"""Notices for people (services/notices.py): an enterprise's notice page and its push opt-out switch (API and web
page), the policy push ledger, and the department/finance page of notice statistics per fund item with the failures
to follow up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import pages
from api.deps import SessionDep, allow
from api.routers.web import error_page, signed_in
from schemas.notices import NoticeRow, PushPreferenceIn, PushPreferenceOut, PushScheduledOut, PushSummaryOut
from schemas.text import Id
from schemas.vocabulary import Role
from services import notices
from services.errors import DomainError, Forbidden
from services.scope import Scope

router = APIRouter(tags=["notices 通知与政策推送"])
Viewer = Annotated[Scope, Depends(allow(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))]
Owner = Annotated[Scope, Depends(allow(Role.ENTERPRISE))]
Staff = Annotated[Scope, Depends(allow(Role.DEPARTMENT, Role.FINANCE))]


# -- API ------------------------------------------------------------------------------------------------------------


@router.get("/api/v1/enterprises/{uscc}/push-preference", response_model=PushPreferenceOut,
            summary="政策推送短信的接收设置")  # fmt: skip
def get_preference(uscc: str, session: SessionDep, scope: Viewer) -> PushPreferenceOut:
    return notices.get_preference(session=session, scope=scope, uscc=uscc)


@router.put("/api/v1/enterprises/{uscc}/push-preference", response_model=PushPreferenceOut,
            summary="退订或恢复政策推送短信（办件通知不可退订）")  # fmt: skip
def put_preference(uscc: str, body: PushPreferenceIn, session: SessionDep, scope: Owner) -> PushPreferenceOut:
    """The enterprise itself (or an administrator on its request) decides; departments cannot."""
    return notices.change_preference(session=session, scope=scope, uscc=uscc, opt_out=body.opt_out)


@router.get("/api/v1/enterprises/{uscc}/notice-list", response_model=list[NoticeRow],
            summary="企业收到的短信（手机号脱敏，北京时间）")  # fmt: skip
def notice_list(uscc: str, session: SessionDep, scope: Viewer) -> list[NoticeRow]:
    return notices.notice_list(session=session, scope=scope, uscc=uscc)


@router.get("/api/v1/pushes", response_model=PushSummaryOut, summary="政策推送汇总（注册后、上架后、兑付时三次推送）")
def push_summary(session: SessionDep, scope: Staff, fund_item_id: Id | None = None) -> dict:
    return notices.push_summary(session=session, scope=scope, fund_item_id=fund_item_id)


@router.post("/api/v1/pushes/listed/{fund_item_id}", status_code=202, response_model=PushScheduledOut,
             summary="重新推送上架事项（只推送尚未推送过的匹配企业；短信发送程序在后台推送）")  # fmt: skip
def push_listed_again(fund_item_id: Id, session: SessionDep, scope: Staff) -> dict:
    return notices.push_listed_again(session=session, scope=scope, fund_item_id=fund_item_id)


# -- web pages ------------------------------------------------------------------------------------------------------


@router.get("/web/enterprises/{uscc}/notices", response_class=HTMLResponse, include_in_schema=False)
def notices_page(uscc: str, request: Request, session: SessionDep, saved: str = "") -> Response:
    def build(scope: Scope) -> dict:
        page = notices.notices_page(session=session, scope=scope, uscc=uscc)
        return {
            "enterprise": page.enterprise,
            "rows": page.rows,
            "counts": page.counts,
            "preference": page.preference,
            "can_change": page.can_change,
            "saved": saved,
        }

    return pages.page(request, "notices.html", build)


@router.post("/web/enterprises/{uscc}/push-preference", include_in_schema=False)
def notices_page_preference(uscc: str, request: Request, session: SessionDep, opt_out: str = Form("")) -> Response:
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    choice = opt_out == "1"
    try:
        notices.change_preference(session=session, scope=scope, uscc=uscc, opt_out=choice)
    except DomainError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/web/enterprises/{uscc}/notices?saved={'out' if choice else 'in'}", status_code=303)


def _staff(request: Request) -> Scope | Response:
    scope = signed_in(request)
    if isinstance(scope, Scope) and scope.role == Role.ENTERPRISE:
        return error_page(request, Forbidden("无权查看短信统计"))
    return scope


@router.get("/web/sms", response_class=HTMLResponse, include_in_schema=False)
def stats_page(request: Request, session: SessionDep) -> Response:
    def build(scope: Scope) -> dict:
        page = notices.stats_page(session=session, scope=scope)
        return {"rows": page.rows, "kinds": page.kinds}

    return pages.page(request, "sms_stats.html", build, guard=_staff)


@router.get("/web/sms/{fund_item_id}/failures", response_class=HTMLResponse, include_in_schema=False)
def failures_page(fund_item_id: Id, request: Request, session: SessionDep) -> Response:
    def build(scope: Scope) -> dict:
        found = notices.sms_failures(session=session, scope=scope, fund_item_id=fund_item_id)
        return {"item": found.item, "rows": found.rows}

    return pages.page(request, "sms_failures.html", build, guard=_staff)
