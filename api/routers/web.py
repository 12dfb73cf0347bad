"""Chinese web pages (Jinja2, server-rendered): cases, timelines and notices."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api import services
from api.auth import Principal, decode
from api.deps import SessionDep
from api.errors import DomainError
from db.repositories import budget, cases, enterprises, fund_items, notices
from rules.money import format_yuan

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
templates.env.filters["yuan"] = lambda fen: "—" if fen is None else format_yuan(fen)
STATUS_ZH = {
    "received": "已受理",
    "approved": "审核通过",
    "rejected": "未通过",
    "reserved": "额度已预留",
    "paying": "拨付中",
    "paid": "已拨付",
    "payment_failed": "拨付失败",
    "withdrawn": "已撤回",
    "created": "已生成",
    "accepted": "国库已受理",
    "failed": "失败",
    "returned": "已退票",
    "queued": "待发送",
    "sent": "已发送",
    "delivered": "已送达",
}
EVENT_ZH = {
    "received": "申报受理", "approved": "规则核验通过", "rejected": "不予通过", "budget_reserved": "预留资金额度",
    "payment_sent": "发送支付指令", "paid": "国库支付成功", "payment_failed": "支付失败",
}
# Review workflows and the payment stage (issue 4).
STATUS_ZH |= {
    "completeness": "形式审查中", "reviewing": "审核中", "supplement": "待企业补正", "publicity": "公示中",
    "objection": "异议核查中", "finance_review": "财政审核中", "awaiting_correction": "待更正收款账户",
    "revoked": "已撤销", "refunded": "资金已退回",
}  # fmt: skip
EVENT_ZH |= {
    "stage_opened": "进入审核环节", "stage_escalated": "逾期上报", "stage_reminder": "办理提醒",
    "stage_timeout": "办理逾期", "stage_enterprise_reminder": "提醒企业办理", "decision": "部门审核意见",
    "supplement_requested": "退回补正", "supplement_received": "企业已补正", "publicity_started": "公示",
    "objection_received": "收到实名异议", "objection_upheld": "异议成立", "objection_dismissed": "异议不成立",
    "finance_approved": "财政审核通过", "withdrawn": "撤回申报", "revoked": "撤销办件",
    "correction_requested": "通知更正收款账户", "account_corrected": "企业已更正账户", "budget_decision": "财政预算决定",
    "refunded": "资金主动退回",
}  # fmt: skip
BEIJING = ZoneInfo("Asia/Shanghai")
templates.env.filters["zh"] = lambda s: STATUS_ZH.get(s, s)
templates.env.filters["event_zh"] = lambda s: EVENT_ZH.get(s, s)
# Stored in UTC; users read Beijing time.
templates.env.filters["bj"] = lambda t: (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(BEIJING).strftime(
    "%Y-%m-%d %H:%M:%S"
)
router = APIRouter(prefix="/web", include_in_schema=False)


def _principal(request: Request) -> Principal | None:
    token = request.cookies.get("zhida_token")
    if not token:
        return None
    try:
        return decode(request.app.state.settings.jwt_key(), token)
    except jwt.InvalidTokenError:
        return None


def token_error_zh(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "令牌无效：已过期，请重新生成"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "令牌无效：签名不符（不是本平台签发的令牌）"
    return "令牌无效：格式错误"


def _sign_in(request: Request, token: str) -> Response:
    try:
        decode(request.app.state.settings.jwt_key(), token.strip())
    except jwt.InvalidTokenError as exc:
        return templates.TemplateResponse(request, "login.html", {"error": token_error_zh(exc)}, status_code=401)
    response = RedirectResponse("/web/", status_code=303)
    response.set_cookie("zhida_token", token.strip(), httponly=True, samesite="lax")
    return response


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, token: str = "") -> Response:
    """The sign-in form; `?token=` is the one-click link `zhida run` prints for development."""
    if token:
        return _sign_in(request, token)
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login_form(request: Request, token: str = Form("")) -> Response:
    """Sign in with a token typed into the form (POST keeps it out of URLs and logs)."""
    return _sign_in(request, token)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/web/login", status_code=303)
    if principal.role == "enterprise":
        return RedirectResponse(f"/web/enterprises/{principal.subject}", status_code=303)
    items = [
        (item, budget.totals(session=session, fund_item_id=item.id)) for item in fund_items.list_all(session=session)
    ]
    recent = [services.case_view(session=session, case=c, detail=False) for c in cases.list_recent(session=session)]
    return templates.TemplateResponse(
        request,
        "home.html",
        {"principal": principal, "items": items, "cases": recent, "counts": cases.count_by_status(session=session)},
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: int, request: Request, session: SessionDep) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/web/login", status_code=303)
    try:
        case = services.visible_case(session=session, principal=principal, case_id=case_id)
    except DomainError as exc:
        return templates.TemplateResponse(request, "error.html", {"message": exc.message}, status_code=404)
    return templates.TemplateResponse(
        request, "case.html", {"principal": principal, "case": services.case_view(session=session, case=case)}
    )


@router.get("/enterprises/{uscc}", response_class=HTMLResponse)
def enterprise_page(uscc: str, request: Request, session: SessionDep) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/web/login", status_code=303)
    enterprise = enterprises.get_by_uscc(session=session, uscc=uscc)
    if enterprise is None or (principal.role == "enterprise" and principal.subject != uscc):
        return templates.TemplateResponse(request, "error.html", {"message": f"企业 {uscc} 不存在"}, status_code=404)
    return templates.TemplateResponse(
        request,
        "enterprise.html",
        {
            "principal": principal,
            "enterprise": enterprise,
            "cases": [
                services.case_view(session=session, case=c, detail=False)
                for c in cases.list_for_enterprise(session=session, enterprise_id=enterprise.id)
            ],
            "notices": notices.for_enterprise(session=session, enterprise_id=enterprise.id),
        },
    )
