"""The enterprise side (企业端): its payout account and policy calculator over the API, and its own pages under /web/me
(home, policies with the calculator and the 申报日历, a policy with its guide, apply, my case with the actions that
apply now, my enterprise). Pages call the same services as the API; a refusal comes back on the page in Chinese."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api import pages
from api.deps import SessionDep, SettingsDep, UowDep, allow
from api.pages import templates
from api.routers.materials import read_uploads, store_of
from api.routers.web import error_page, signed_in
from rules.self_test import HINTS, parse_facts
from schemas.archive_sources import industry_sections, region_codes
from schemas.cases import ApplicationIn
from schemas.fields import FIELDS
from schemas.portal import CalculatorOut, PayoutAccountIn, PayoutAccountOut
from schemas.reviews import AccountBody
from schemas.vocabulary import CaseStatus, Role
from services import calculator, enterprises, materials, notices, portal, reviews
from services.errors import DomainError, Forbidden, NotFound, Unavailable
from services.scope import Scope

router = APIRouter()
Own = Annotated[Scope, Depends(allow(Role.ENTERPRISE))]


# -- API ------------------------------------------------------------------------------------------------------------


@router.put(
    "/api/v1/enterprises/{uscc}/payout-account", response_model=PayoutAccountOut, tags=["enterprises 企业"]
)
def put_payout_account(
    uscc: str, body: PayoutAccountIn, session: SessionDep, scope: Own, settings: SettingsDep
) -> PayoutAccountOut:
    """File or change my payout account (户名 must be the registered enterprise name); stored encrypted, shown masked."""
    return enterprises.set_payout_account(
        session=session, scope=scope, uscc=uscc, body=body, fernet_key=settings.fernet_key()
    )


@router.get("/api/v1/enterprises/{uscc}/calculator", response_model=CalculatorOut, tags=["enterprises 企业"])
def get_calculator(uscc: str, session: SessionDep, scope: Own) -> CalculatorOut:
    """政策计算器: every listed fund item for my enterprise, matched or not, the expected amount and 不足之处."""
    return calculator.calculate(session=session, scope=scope, uscc=uscc)


# -- pages ----------------------------------------------------------------------------------------------------------


def _page(request: Request, name: str, build: Callable[[Scope], dict]) -> Response:
    """An enterprise page (api/pages.py), with the message of the last action and the upload limits."""

    def context(scope: Scope) -> dict:
        common = {
            "message": request.query_params.get("message"),
            "limits": materials.limits_of(request.app.state.settings),
        }
        return common | build(scope)

    return pages.page(request, name, context)


def _back(path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?message={quote(message)}", status_code=303)


def _invalid(exc: ValidationError) -> str:
    names = {"acct_name": "户名", "acct_no": "账号", "bank_name": "开户行", "bank_code": "联行号"}
    wrong = "、".join(dict.fromkeys(names.get(str(e["loc"][-1]), str(e["loc"][-1])) for e in exc.errors()))
    return f"收款账户填写有误：{wrong}（账号 6–32 位数字，联行号 12 位数字，户名、开户行必填）"


@router.get("/web/me", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, session: SessionDep) -> Response:
    """我的首页: my policies, my cases and what waits for me."""
    return _page(request, "portal_home.html", lambda scope: {"page": portal.home(session=session, scope=scope)})


@router.get("/web/me/policies", response_class=HTMLResponse, include_in_schema=False)
def policies(request: Request, session: SessionDep) -> Response:
    """政策找企业 and 政策计算器: every listed item for me; the 申报日历."""

    def build(scope: Scope) -> dict:
        enterprise = portal.own_enterprise(session=session, scope=scope)
        result = calculator.calculate_for(session=session, enterprise=enterprise)
        return {"result": result, "calendar": calculator.calendar(result.items, result.today)}

    return _page(request, "portal_policies.html", build)


@router.get("/web/me/policies/{code}", response_class=HTMLResponse, include_in_schema=False)
def policy(code: str, request: Request, session: SessionDep) -> Response:
    def build(scope: Scope) -> dict:
        page = portal.policy(session=session, scope=scope, code=code)
        if page is None:
            raise NotFound(f"资金事项 {code} 未上架或不存在", field="code")
        return {"page": page}

    return _page(request, "portal_policy.html", build)


@router.post("/web/me/policies/{code}/apply", include_in_schema=False)
async def apply(
    code: str, request: Request, uow: UowDep, files: Annotated[list[UploadFile], File()] = []  # noqa: B006
) -> Response:
    """Apply in one click (a review item with its materials); the case page then shows the decision as it arrives."""
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    if scope.role != Role.ENTERPRISE:
        return error_page(request, portal_refusal(scope))
    client = request.app.state.temporal
    try:
        if client is None:
            raise Unavailable("工作流服务暂不可用，请稍后重试")
        body = ApplicationIn(fund_item_code=code, uscc=scope.principal.subject)
        out, _ = await materials.apply_with_materials(
            uow=uow, client=client, settings=request.app.state.settings, scope=scope, body=body,
            uploads=await read_uploads(request, files), store=store_of(request),
        )  # fmt: skip
    except DomainError as exc:
        if exc.status_code in (401, 403):
            return error_page(request, exc)
        return _back(f"/web/me/policies/{code}", exc.message)
    return RedirectResponse(f"/web/me/cases/{out.id}", status_code=303)


def portal_refusal(scope: Scope) -> DomainError:
    return Forbidden(f"{Role.label_of(scope.role)}请使用工作台；企业端仅供企业本身使用", rule="role")


@router.get("/web/me/cases/{case_id}", response_class=HTMLResponse, include_in_schema=False)
def case_page(case_id: int, request: Request, session: SessionDep) -> Response:
    """My case: status in plain Chinese, the stage line, notices, and the actions that apply now."""
    return _page(request, "portal_case.html", lambda scope: _card(session, scope, case_id))


@router.get("/web/me/cases/{case_id}/status", response_class=HTMLResponse, include_in_schema=False)
def case_status(case_id: int, request: Request, session: SessionDep) -> Response:
    """The status block alone, polled by htmx until the case settles (an instant decision arrives in seconds)."""
    return _page(request, "portal_case_status.html", lambda scope: _card(session, scope, case_id))


def _card(session: SessionDep, scope: Scope, case_id: int) -> dict:
    card = portal.case_card(session=session, scope=scope, case_id=case_id)
    return {"card": card, "final": CaseStatus(card.case.status).is_final}


async def _case_action(request: Request, case_id: int, run) -> Response:
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    if scope.role != Role.ENTERPRISE:
        return error_page(request, portal_refusal(scope))
    client = request.app.state.temporal
    try:
        if client is None:
            raise Unavailable("工作流服务暂不可用，请稍后重试")
        await run(scope, client)
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):
            return error_page(request, exc)
        return _back(f"/web/me/cases/{case_id}", exc.message)
    return _back(f"/web/me/cases/{case_id}", "已提交")


@router.post("/web/me/cases/{case_id}/withdraw", include_in_schema=False)
async def withdraw(case_id: int, request: Request, uow: UowDep, comment: str = Form("")) -> Response:
    async def run(scope: Scope, client) -> None:
        await reviews.withdraw(uow=uow, client=client, scope=scope, case_id=case_id, comment=comment[:500])

    return await _case_action(request, case_id, run)


@router.post("/web/me/cases/{case_id}/supplement", include_in_schema=False)
async def supplement(
    case_id: int,
    request: Request,
    uow: UowDep,
    comment: str = Form(""),
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006
) -> Response:
    """Answer a 补正 request: the note and the new materials; the returned stage resumes."""

    async def run(scope: Scope, client) -> None:
        await materials.answer_supplement(
            uow=uow, client=client, settings=request.app.state.settings, scope=scope, case_id=case_id,
            comment=comment[:2000], uploads=await read_uploads(request, files), store=store_of(request),
        )  # fmt: skip

    return await _case_action(request, case_id, run)


@router.post("/web/me/cases/{case_id}/account", include_in_schema=False)
async def correct_account(
    case_id: int,
    request: Request,
    uow: UowDep,
    acct_name: str = Form(""),
    acct_no: str = Form(""),
    bank_name: str = Form(""),
    bank_code: str = Form(""),
) -> Response:
    try:
        body = AccountBody(acct_name=acct_name.strip(), acct_no=acct_no.strip(), bank_name=bank_name.strip(),
                           bank_code=bank_code.strip())  # fmt: skip
    except ValidationError as exc:
        return _back(f"/web/me/cases/{case_id}", _invalid(exc))
    fernet_key = request.app.state.settings.fernet_key()

    async def run(scope: Scope, client) -> None:
        await reviews.correct_account(
            uow=uow, client=client, scope=scope, case_id=case_id, body=body, fernet_key=fernet_key
        )

    return await _case_action(request, case_id, run)


@router.get("/web/me/enterprise", response_class=HTMLResponse, include_in_schema=False)
def mine(request: Request, session: SessionDep) -> Response:
    """我的企业: archive facts (read-only), contacts, payout account, push preference."""
    return _page(request, "portal_enterprise.html", lambda scope: {"page": portal.mine(session=session, scope=scope)})


@router.post("/web/me/enterprise/account", include_in_schema=False)
def mine_account(
    request: Request,
    session: SessionDep,
    acct_name: str = Form(""),
    acct_no: str = Form(""),
    bank_name: str = Form(""),
    bank_code: str = Form(""),
) -> Response:
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        body = PayoutAccountIn(acct_name=acct_name, acct_no=acct_no, bank_name=bank_name, bank_code=bank_code)
    except ValidationError as exc:
        return _back("/web/me/enterprise", _invalid(exc))
    try:
        portal.own_enterprise(session=session, scope=scope)
        enterprises.set_payout_account(
            session=session,
            scope=scope,
            uscc=scope.principal.subject,
            body=body,
            fernet_key=request.app.state.settings.fernet_key(),
        )
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):
            return error_page(request, exc)
        return _back("/web/me/enterprise", exc.message)
    return _back("/web/me/enterprise", "收款账户已保存")


@router.post("/web/me/enterprise/push", include_in_schema=False)
def mine_push(request: Request, session: SessionDep, opt_out: str = Form("0")) -> Response:
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        portal.own_enterprise(session=session, scope=scope)
        out = notices.change_preference(
            session=session, scope=scope, uscc=scope.principal.subject, opt_out=opt_out == "1"
        )
    except DomainError as exc:
        return error_page(request, exc)
    return _back("/web/me/enterprise", out.note)


@router.get("/web/self-test", response_class=HTMLResponse, include_in_schema=False)
def self_test(request: Request, session: SessionDep) -> Response:
    """政策自测: anyone, signed in or not, types in the facts (the condition field catalogue decides the inputs) and
    sees every listed item matched or not, with the 不足之处, by the calculator's own evaluator; nothing is stored."""
    query = request.query_params
    asked = any(name in query for name in FIELDS)
    raw = {name: [v for v in query.getlist(name)[:21] if v] for name in FIELDS}
    facts, errors = parse_facts(raw)
    result = calculator.self_test(session=session, facts=facts) if asked and not errors else None
    context = {
        "principal": None,
        "anonymous": True,
        "fields": [(spec, HINTS.get(spec.type, "")) for spec in FIELDS.values()],
        "regions": sorted(region_codes().items()),
        "sections": [(letter, name) for letter, (_, _, name) in industry_sections().items()],
        "values": {name: "、".join(v) for name, v in raw.items()},
        "chosen": {name: set(v) for name, v in raw.items()},
        "known_tags": calculator.listed_tags(session=session),
        "errors": errors,
        "result": result,
        "message": None,
    }
    status_code = 422 if errors else 200
    return templates.TemplateResponse(request, "self_test.html", context, status_code=status_code)
