"""Notices for people: an enterprise's notice page and its push opt-out switch (API and web page), the policy push
ledger, and the department/finance page of notice statistics per fund item with the failures to follow up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from activities.notices import push_on_listed
from api.auth import Principal
from api.deps import SessionDep, require
from api.errors import Forbidden, NotFound
from api.routers.web import BEIJING, _principal, templates
from db.models import Department, Enterprise, FundItem, Notice
from db.repositories import enterprises, notices, pushes
from db.repositories import sms as sms_repo
from schemas.notices import NoticeRow, PushCountsOut, PushPreferenceIn, PushPreferenceOut

router = APIRouter(tags=["notices 通知与政策推送"])

NOTICE_STATUS_ZH = {
    "queued": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "delivered": "已送达",
    "failed": "发送失败",
    "cancelled": "已撤回",
}
CATEGORY_ZH = {"case": "办件通知", "push": "政策推送"}
PUSH_KIND_ZH = {"registered": "注册后推送", "listed": "上架后推送", "paid": "兑付时推送"}
OPT_OUT_NOTE = "已退订政策推送短信；办件进度通知（受理、审核、拨付、退票等）不受影响，照常发送。"
OPT_IN_NOTE = "已开启政策推送短信：新上架且符合条件的政策将短信告知。"
Viewer = Annotated[Principal, Depends(require("enterprise", "department", "finance"))]
Owner = Annotated[Principal, Depends(require("enterprise"))]
Staff = Annotated[Principal, Depends(require("department", "finance"))]


def beijing(t: datetime) -> str:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def notice_row(n: Notice) -> NoticeRow:
    category = n.category or "case"
    return NoticeRow(
        id=n.id,
        case_id=n.case_id,
        category=category,
        category_label=CATEGORY_ZH.get(category, category),
        template_key=n.template_key,
        content=n.content,
        phone_masked=n.phone_masked,
        status=n.status,
        status_label=NOTICE_STATUS_ZH.get(n.status, n.status),
        created_at=n.created_at,
        created_at_beijing=beijing(n.created_at),
        fail_reason=n.fail_reason if n.status in ("failed", "cancelled") else None,
    )


def _visible(session, principal: Principal, uscc: str) -> Enterprise:
    enterprise = enterprises.get_by_uscc(session=session, uscc=uscc)
    if enterprise is None or (principal.role == "enterprise" and principal.subject != uscc):
        raise NotFound(f"uscc：企业 {uscc} 不存在", field="uscc")
    return enterprise


def _preference(enterprise: Enterprise, withdrawn: int = 0) -> PushPreferenceOut:
    return PushPreferenceOut(
        uscc=enterprise.uscc,
        push_opt_out=bool(enterprise.push_opt_out),
        opted_out_at=enterprise.push_opted_out_at,
        withdrawn=withdrawn,
        note=OPT_OUT_NOTE if enterprise.push_opt_out else OPT_IN_NOTE,
    )


def change_preference(session, enterprise: Enterprise, opt_out: bool) -> PushPreferenceOut:
    """Record the choice; opting out withdraws pushes still waiting (never case notices)."""
    waiting = 0
    if opt_out and not enterprise.push_opt_out:
        waiting = sum(1 for n in notices.for_enterprise(session=session, enterprise_id=enterprise.id, limit=1000)
                      if n.category == "push" and n.status == "queued")  # fmt: skip
    pushes.set_opt_out(session=session, enterprise=enterprise, opt_out=opt_out, now=datetime.now(UTC))
    return _preference(enterprise, waiting)


# -- API ------------------------------------------------------------------------------------------------------------


@router.get("/api/v1/enterprises/{uscc}/push-preference", response_model=PushPreferenceOut,
            summary="政策推送短信的接收设置")  # fmt: skip
def get_preference(uscc: str, session: SessionDep, principal: Viewer) -> PushPreferenceOut:
    return _preference(_visible(session, principal, uscc))


@router.put("/api/v1/enterprises/{uscc}/push-preference", response_model=PushPreferenceOut,
            summary="退订或恢复政策推送短信（办件通知不可退订）")  # fmt: skip
def put_preference(uscc: str, body: PushPreferenceIn, session: SessionDep, principal: Owner) -> PushPreferenceOut:
    """The enterprise itself (or an administrator on its request) decides; departments cannot."""
    return change_preference(session, _visible(session, principal, uscc), body.opt_out)


@router.get("/api/v1/enterprises/{uscc}/notice-list", response_model=list[NoticeRow],
            summary="企业收到的短信（手机号脱敏，北京时间）")  # fmt: skip
def notice_list(uscc: str, session: SessionDep, principal: Viewer) -> list[NoticeRow]:
    enterprise = _visible(session, principal, uscc)
    return [notice_row(n) for n in notices.for_enterprise(session=session, enterprise_id=enterprise.id)]


def _department_scope(session, principal: Principal) -> int | None:
    if principal.role != "department":
        return None
    department_id = session.scalar(select(Department.id).where(Department.code == principal.subject))
    if department_id is None:
        raise Forbidden(f"未知的部门 {principal.subject}")
    return department_id


def _item_in_scope(session, principal: Principal, fund_item_id: int) -> FundItem:
    scope = _department_scope(session, principal)
    item = session.get(FundItem, fund_item_id)
    if item is None or (scope is not None and item.department_id != scope):
        raise NotFound(f"资金事项 {fund_item_id} 不存在", field="fund_item_id")
    return item


@router.get("/api/v1/pushes", summary="政策推送汇总（注册后、上架后、兑付时三次推送）")
def push_summary(session: SessionDep, principal: Staff, fund_item_id: int | None = None) -> dict:
    if fund_item_id is not None:
        _item_in_scope(session, principal, fund_item_id)
    elif principal.role == "department":
        raise Forbidden("主管部门请按资金事项查询（fund_item_id）")
    by_kind = pushes.summary(session=session, fund_item_id=fund_item_id)
    empty = {"pushes": 0, "matched": 0, "queued": 0, "opted_out": 0, "no_phone": 0}
    kinds = [{"kind": k, "label": label, **by_kind.get(k, empty)} for k, label in PUSH_KIND_ZH.items()]
    return {"fund_item_id": fund_item_id, "kinds": kinds}


@router.post("/api/v1/pushes/listed/{fund_item_id}", response_model=PushCountsOut,
             summary="重新推送上架事项（只推送尚未推送过的匹配企业）")  # fmt: skip
def push_listed_again(fund_item_id: int, session: SessionDep, principal: Staff) -> PushCountsOut:
    item = _item_in_scope(session, principal, fund_item_id)
    if item.status != "listed":
        raise NotFound(f"资金事项 {fund_item_id} 未上架，不能推送", field="fund_item_id")
    pushed = push_on_listed(session, item.id, actor=principal.actor)
    return PushCountsOut(matched=pushed.matched, queued=pushed.queued, opted_out=pushed.opted_out,
                         no_phone=pushed.no_phone)  # fmt: skip


# -- web pages ------------------------------------------------------------------------------------------------------


def _page_enterprise(request: Request, session, uscc: str) -> tuple[Principal | None, Enterprise | None, Response | None]:
    principal = _principal(request)
    if principal is None:
        return None, None, RedirectResponse("/web/login", status_code=303)
    enterprise = enterprises.get_by_uscc(session=session, uscc=uscc)
    if enterprise is None or (principal.role == "enterprise" and principal.subject != uscc):
        page = templates.TemplateResponse(request, "error.html", {"message": f"企业 {uscc} 不存在"}, status_code=404)
        return principal, None, page
    return principal, enterprise, None


@router.get("/web/enterprises/{uscc}/notices", response_class=HTMLResponse, include_in_schema=False)
def notices_page(uscc: str, request: Request, session: SessionDep, saved: str = "") -> Response:
    principal, enterprise, early = _page_enterprise(request, session, uscc)
    if early is not None:
        return early
    rows = [notice_row(n) for n in notices.for_enterprise(session=session, enterprise_id=enterprise.id)]
    counts = {label: sum(1 for r in rows if r.status_label == label) for label in ("已发送", "已送达", "发送失败")}
    return templates.TemplateResponse(
        request,
        "notices.html",
        {
            "principal": principal,
            "enterprise": enterprise,
            "rows": rows,
            "counts": counts,
            "preference": _preference(enterprise),
            "can_change": principal.role in ("enterprise", "admin"),
            "saved": saved,
        },
    )


@router.post("/web/enterprises/{uscc}/push-preference", include_in_schema=False)
def notices_page_preference(uscc: str, request: Request, session: SessionDep, opt_out: str = Form("")) -> Response:
    principal, enterprise, early = _page_enterprise(request, session, uscc)
    if early is not None:
        return early
    if principal.role not in ("enterprise", "admin"):
        return templates.TemplateResponse(
            request, "error.html", {"message": "只有企业本身可以设置政策推送"}, status_code=403
        )
    choice = opt_out == "1"
    change_preference(session, enterprise, choice)
    return RedirectResponse(f"/web/enterprises/{uscc}/notices?saved={'out' if choice else 'in'}", status_code=303)


def _staff_page(request: Request) -> tuple[Principal | None, Response | None]:
    principal = _principal(request)
    if principal is None:
        return None, RedirectResponse("/web/login", status_code=303)
    if principal.role not in ("department", "finance", "admin"):
        page = templates.TemplateResponse(request, "error.html", {"message": "无权查看短信统计"}, status_code=403)
        return principal, page
    return principal, None


@router.get("/web/sms", response_class=HTMLResponse, include_in_schema=False)
def stats_page(request: Request, session: SessionDep) -> Response:
    principal, early = _staff_page(request)
    if early is not None:
        return early
    try:
        scope = _department_scope(session, principal)
    except Forbidden as exc:
        return templates.TemplateResponse(request, "error.html", {"message": exc.message}, status_code=403)
    rows = sms_repo.stats(session=session, department_id=scope)
    summary = pushes.summary(session=session) if scope is None else {}
    empty = {"pushes": 0, "matched": 0, "queued": 0, "opted_out": 0, "no_phone": 0}
    kinds = [(label, summary.get(k, empty)) for k, label in PUSH_KIND_ZH.items()] if scope is None else []
    return templates.TemplateResponse(request, "sms_stats.html", {"principal": principal, "rows": rows, "kinds": kinds})


@router.get("/web/sms/{fund_item_id}/failures", response_class=HTMLResponse, include_in_schema=False)
def failures_page(fund_item_id: int, request: Request, session: SessionDep) -> Response:
    principal, early = _staff_page(request)
    if early is not None:
        return early
    try:
        item = _item_in_scope(session, principal, fund_item_id)
    except (Forbidden, NotFound) as exc:
        return templates.TemplateResponse(request, "error.html", {"message": exc.message}, status_code=404)
    found = sms_repo.failures(session=session, fund_item_id=fund_item_id)
    names = {e: enterprises.get(session=session, enterprise_id=e) for e in {n.enterprise_id for n in found}}
    rows = [(notice_row(n), names[n.enterprise_id]) for n in found]
    return templates.TemplateResponse(
        request, "sms_failures.html", {"principal": principal, "item": item, "rows": rows}
    )
