"""The department workbench pages (部门工作台): the work list (待办) and the case review screen with its decisions.

Each page is scoped like the API (services/workbench.py and services/reviews.py); a decision is the same workflow
update the API sends, and a refusal shows the workflow's Chinese reason on the page with the API's status.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import pages
from api.deps import SessionDep, UowDep
from api.pages import templates
from api.routers.fund_items import Today
from api.routers.web import error_page, signed_in
from rules.money import format_yuan, parse_yuan
from schemas.fields import field_catalogue
from schemas.reviews import DecisionBody
from schemas.vocabulary import (
    DecisionKind,
    FundItemMode,
    FundItemStatus,
    JointMode,
    ObjectionStatus,
    PolicyLevel,
    Role,
    TaskStatus,
    TimeoutPolicy,
)
from services import fund_items as fund_item_service
from services import item_editor, materials, reviews, workbench
from services.errors import DomainError, Forbidden, Invalid, Unavailable
from services.scope import Scope

router = APIRouter(prefix="/web/workbench", include_in_schema=False)
# The workbench's own vocabularies, registered once at import like api.pages' filters (never while a page renders).
templates.env.filters.update(
    {
        "task_status": TaskStatus.label_of,
        "decision": DecisionKind.label_of,
        "objection_status": ObjectionStatus.label_of,
        "section": item_editor.in_section,
    }
)
PAGE_SIZE = 50


@router.get("/tasks", response_class=HTMLResponse)
def tasks_page(
    request: Request,
    session: SessionDep,
    status: Annotated[str, Query(pattern="^(open|done|closed|timed_out)$")] = TaskStatus.OPEN,
    fund_item: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """My department's work list (待办), the earliest deadline first, overdue in red, counts in the header."""

    def build(scope: Scope) -> dict:
        result = workbench.task_page(
            session=session, scope=scope, status=status, fund_item=fund_item or None,
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
        )  # fmt: skip
        return {
            "department": scope.department_name,
            "result": result,
            "status": status,
            "fund_item": fund_item or "",
            "page": page,
            "pages": max(1, -(-result.total // PAGE_SIZE)),
            "statuses": list(TaskStatus),
            "open_status": TaskStatus.OPEN,
        }

    return pages.page(request, "workbench_tasks.html", build)


async def _review(
    request: Request, uow: UowDep, case_id: int, *, scope: Scope | None = None, **extra: object
) -> Response:
    """The review screen of `case_id`, with `extra` (a refused decision's reason and form, and its status)."""

    async def build(scope: Scope) -> dict:
        page = await uow.read(workbench.review_page, scope=scope, case_id=case_id)
        try:  # the enterprise's materials: the reviewing departments open them; finance does not see them
            found = await uow.read(materials.list_for_case, scope=scope, case_id=case_id)
        except Forbidden:
            found = None
        return {
            "page": page,
            "materials": found,
            "case": page.case,
            "names": page.names,
            "objection_open": ObjectionStatus.OPEN,
        } | extra

    return await pages.page_async(request, "workbench_case.html", build, scope=scope)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(case_id: int, request: Request, uow: UowDep, done: str = "") -> Response:
    """The review screen: conditions against the archive, the timeline, each department's progress, the decision."""
    return await _review(request, uow, case_id, done=done[:200])


def _amount(text: str) -> int | None:
    if not text.strip():
        return None
    try:
        fen = parse_yuan(text)
    except ValueError as exc:
        message = str(exc).split(" / ")[0]
        raise Invalid(f"amount_yuan：核定金额{message.removeprefix('金额')}", field="amount_yuan", rule="yuan") from exc
    if fen <= 0:
        raise Invalid("amount_yuan：核定金额须大于 0 元", field="amount_yuan", rule="positive")
    return fen


FIELD_PREFIX = re.compile(r"^[a-z_]+：")
FEN_AMOUNT = re.compile(r"(\d+) 分")


def page_reason(exc: DomainError) -> str:
    """The workflow's reason as a page says it: without the API field name in front, amounts in yuan, not fen."""
    text = FIELD_PREFIX.sub("", exc.message)
    return FEN_AMOUNT.sub(lambda m: format_yuan(int(m.group(1))), text)


@router.post("/cases/{case_id}/decision", response_class=HTMLResponse)
async def decide(
    case_id: int,
    request: Request,
    uow: UowDep,
    stage_key: Annotated[str, Form(min_length=1, max_length=32)],
    decision: Annotated[str, Form(pattern="^(approve|reject|return)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
    amount_yuan: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Approve (with an amount in yuan), return for 补正 (what to supplement) or reject (with the reason)."""
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    client = request.app.state.temporal
    form = {"stage_key": stage_key, "decision": decision, "comment": comment, "amount_yuan": amount_yuan}
    try:
        if client is None:
            raise Unavailable("工作流服务暂不可用，请稍后重试")
        body = DecisionBody(stage_key=stage_key, decision=decision, comment=comment, amount_fen=_amount(amount_yuan))
        await reviews.decide(uow=uow, client=client, scope=scope, case_id=case_id, body=body)
    except DomainError as exc:
        return await _review(
            request, uow, case_id, scope=scope, error=page_reason(exc), form=form, status_code=exc.status_code
        )
    done = f"已提交：{DecisionKind(decision).label}"
    return RedirectResponse(f"/web/workbench/cases/{case_id}?done={quote(done)}", status_code=303)


@router.post("/cases/{case_id}/objections/{objection_id}/ruling", response_class=HTMLResponse)
async def rule(
    case_id: int,
    objection_id: int,
    request: Request,
    uow: UowDep,
    uphold: Annotated[str, Form(pattern="^(uphold|dismiss)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A publicity objection: uphold (the case is rejected) or dismiss (it continues), with the reason."""
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    client = request.app.state.temporal
    try:
        if client is None:
            raise Unavailable("工作流服务暂不可用，请稍后重试")
        if not comment.strip():
            raise Invalid("comment：裁定异议须写明理由", field="comment", rule="required")
        await reviews.rule_objection(
            uow=uow, client=client, scope=scope, case_id=case_id, objection_id=objection_id,
            uphold=uphold == "uphold", comment=comment,
        )  # fmt: skip
    except DomainError as exc:
        return await _review(request, uow, case_id, scope=scope, error=page_reason(exc), status_code=exc.status_code)
    done = "已裁定：异议成立" if uphold == "uphold" else "已裁定：异议不成立"
    return RedirectResponse(f"/web/workbench/cases/{case_id}?done={quote(done)}", status_code=303)


# -- fund items -----------------------------------------------------------------------------------------------------


@router.get("/items", response_class=HTMLResponse)
def items_page(
    request: Request,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "",
    mode: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=60)] = "",
) -> Response:
    """My fund items (政策资金事项) with status, window, budget use and case counts; filter and search."""

    def build(scope: Scope) -> dict:
        try:
            status_value = FundItemStatus(status) if status else None
            mode_value = FundItemMode(mode) if mode else None
        except ValueError:
            raise Invalid("status / mode：筛选条件不是已知的事项状态或兑付方式", field="status") from None
        return {
            "department": scope.department_name,
            "rows": workbench.items_page(session=session, scope=scope, status=status_value, mode=mode_value, q=q),
            "status": status,
            "mode": mode,
            "q": q,
            "statuses": list(FundItemStatus),
            "modes": list(FundItemMode),
        }

    return pages.page(request, "workbench_items.html", build)


def _item_response(
    request: Request, session: SessionDep, code: str, today: Today, *, scope: Scope | None = None, **extra: object
) -> Response:
    """The fund item page, with `extra` (notes of what was done, or a refusal and its status)."""

    def build(scope: Scope) -> dict:
        page = workbench.item_page(session=session, scope=scope, code=code, today=today)
        return {"page": page, "item": page.item, "statuses": FundItemStatus} | extra

    return pages.page(request, "workbench_item.html", build, scope=scope)


@router.get("/items/{code}", response_class=HTMLResponse)
def item_page(code: str, request: Request, session: SessionDep, today: Today, saved: str = "") -> Response:
    """One fund item: lifecycle buttons with the 5-working-day listing rule explained, and its version history."""
    notes = [n for n in saved[:500].split("；") if n]
    return _item_response(request, session, code, today, notes=notes)


@router.post("/items/{code}/lifecycle", response_class=HTMLResponse)
def lifecycle(
    code: str,
    request: Request,
    session: SessionDep,
    today: Today,
    action: Annotated[str, Form(pattern="^(submit|list|close|delist)$")],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Submit, list (上架), close (结束受理) or delist (下架) the item; a refusal is shown with its Chinese reason."""
    scope = signed_in(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        out = workbench.lifecycle(session=session, scope=scope, code=code, action=action, reason=reason, today=today)
    except DomainError as exc:
        return _item_response(
            request, session, code, today, scope=scope, error=exc.message, status_code=exc.status_code
        )
    return _item_response(request, session, code, today, scope=scope, notes=out.notes)


# -- the fund item editor -------------------------------------------------------------------------------------------

# what a new item's form starts with (the department still fills in everything that is its own)
EDITOR_DEFAULTS = {
    "region_code": "420500",
    "region_name": "宜昌市",
    "policy_level": "city",
    "budget_year": "2026",
    "finance_department": "YC-CZJ",
    "finance_days": "5",
    "finance_auto": "on",
    "standard_kind": "fixed",
    "cond_group": "all",
}


def _editor_scope(request: Request) -> Scope | Response:
    """The editor is the policy departments' (and an administrator's): anyone else is refused before any form."""
    scope = signed_in(request)
    if isinstance(scope, Scope) and scope.role not in (Role.DEPARTMENT, Role.ADMIN):
        return error_page(request, Forbidden(f"{Role.label_of(scope.role)}无权编辑资金事项", rule="role"))
    return scope


def _editor(request: Request, scope: Scope, values: dict, rows: dict, **extra: object) -> Response:
    status_code = int(extra.pop("status_code", 200))  # type: ignore[call-overload]
    context = {
        "principal": scope.principal,
        "v": values,
        "rows": rows,
        "fields": field_catalogue(),
        "levels": list(PolicyLevel),
        "joint_modes": list(JointMode),
        "timeouts": TIMEOUTS,
        "errors": [],
        "code": None,
        "cond_root": item_editor.cond_tree(rows.get("cond") or [{}]),
        "operators_by_field": {f["name"]: [o["op"] for o in f["operators"]] for f in field_catalogue()},
    } | extra
    return templates.TemplateResponse(request, "workbench_editor.html", context, status_code=status_code)


TIMEOUTS = [TimeoutPolicy.ESCALATE, TimeoutPolicy.AUTO_APPROVE, TimeoutPolicy.AUTO_REJECT]
EMPTY_ROWS = {
    "source": [{}], "cond": [{}, {}, {}], "stage": [{}, {}], "material": [{}], "tier": [{}, {}], "part": [{}, {}],
}  # fmt: skip


@router.get("/editor/new", response_class=HTMLResponse)
def new_item(request: Request, mode: Annotated[str, Query(pattern="^(instant|review)$")] = "instant") -> Response:
    """The editor for a new fund item: sections for policy, name, mode, window, guide, budget, standard, conditions
    and (review) the approval stages; nothing is typed as JSON."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    return _editor(request, scope, EDITOR_DEFAULTS | {"mode": mode}, EMPTY_ROWS)


@router.get("/editor/row", response_class=HTMLResponse)
def editor_row(
    request: Request,
    kind: Annotated[str, Query(pattern="^(source|cond|group|stage|material|tier|part)$")],
    parent: Annotated[str, Query(pattern="^[A-Za-z0-9_-]{0,16}$")] = item_editor.ROOT_ID,
) -> Response:
    """One blank row of a repeated section, added by htmx; in the condition tree a comparison or a group (with one
    blank comparison) under the group `parent`."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    node_id = "g" + secrets.token_hex(4)
    node = item_editor.CondNode(
        {"cond_id": node_id, "cond_parent": parent, "cond_kind": "all"}, [item_editor.CondNode({"cond_kind": "leaf"})]
    )
    context = {
        "kind": kind, "r": {}, "parent": parent, "node": node, "fields": field_catalogue(),
        "joint_modes": list(JointMode), "timeouts": TIMEOUTS,
    }  # fmt: skip
    return templates.TemplateResponse(request, "workbench_editor_row.html", context)


REPEATED = {
    "source": ("source_name", "source_share"),
    "stage": item_editor.STAGE_COLUMNS,
    "material": ("material_name", "material_requirement", "material_sample"),
    "tier": item_editor.TIER_COLUMNS,
    "part": item_editor.PART_COLUMNS,
}


def _posted_rows(form: item_editor.Form) -> dict[str, list[dict[str, str]]]:
    """The repeated sections as posted, to show the form again (the condition tree with its groups)."""
    return {kind: form.rows(*names) or [{}] for kind, names in REPEATED.items()} | {"cond": item_editor.cond_rows(form)}


async def _posted(request: Request) -> tuple[dict[str, str], item_editor.Form]:
    data = await request.form()
    single = {k: str(v) for k, v in data.items()}
    return single, item_editor.Form(single, {k: [str(x) for x in data.getlist(k)] for k in data})


@router.post("/editor/conditions-text", response_class=HTMLResponse)
async def conditions_text(request: Request) -> Response:
    """The guide's 申报条件 text generated from the condition tree (htmx fills the textarea), or why it cannot be."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    single, form = await _posted(request)
    text, errors = item_editor.conditions_text(form)
    context = {"text": single.get("guide_conditions_text", "") if text is None else text, "errors": errors}
    return templates.TemplateResponse(request, "workbench_editor_conditions_text.html", context)


@router.post("/editor/validate", response_class=HTMLResponse)
async def validate_section(
    request: Request,
    uow: UowDep,
    section: Annotated[str, Query(pattern="^(item|window|guide|budget|standard|conditions|approval|officer)$")],
    code: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """One section of the editor checked as it changes (htmx): the messages a save would give it, nothing saved."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    if code:
        try:  # another department's item is not found before anything in the form is looked at
            await uow.read(fund_item_service.get_item, principal=scope.principal, code=code)
        except DomainError as exc:
            return error_page(request, exc)
    _, form = await _posted(request)
    errors = await uow.write(item_editor.check, principal=scope.principal, form=form, code=code or None)
    context = {"section_errors": item_editor.in_section(errors, section)}
    return templates.TemplateResponse(request, "workbench_editor_errors.html", context)


@router.post("/editor/example", response_class=HTMLResponse)
async def worked_example(request: Request, uow: UowDep) -> Response:
    """The support standard as filled in, applied to a sample enterprise: the amount in yuan with its working."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    single, form = await _posted(request)
    example = await uow.read(
        item_editor.worked_example, principal=scope.principal, form=form, uscc=single.get("example_uscc", "")[:18]
    )
    return templates.TemplateResponse(request, "workbench_editor_example.html", {"example": example})


@router.post("/editor/sms-preview", response_class=HTMLResponse)
async def sms_preview(request: Request, uow: UowDep, today: Today) -> Response:
    """Every SMS of the item's mode with real sample text: the sample enterprise, 大写金额, Beijing-time deadlines."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    single, form = await _posted(request)
    previews = await uow.write(  # the working-day calendar is seeded on first use
        item_editor.sms_preview, principal=scope.principal, form=form, uscc=single.get("example_uscc", "")[:18],
        today=today,
    )  # fmt: skip
    return templates.TemplateResponse(request, "workbench_editor_sms.html", {"previews": previews})


@router.post("/editor/new", response_class=HTMLResponse)
async def create_item(request: Request, uow: UowDep) -> Response:
    """Create the item as a draft from the editor; refused with the API's messages shown next to their sections."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    data = await request.form()
    single = {k: str(v) for k, v in data.items()}
    multi = {k: [str(x) for x in data.getlist(k)] for k in data}
    form = item_editor.Form(single, multi)
    saved = await uow.write(item_editor.save, principal=scope.principal, form=form)
    if saved.errors:
        rows = _posted_rows(form)
        return _editor(request, scope, single, rows, errors=saved.errors, status_code=422)
    notes = quote("；".join(saved.notes))
    return RedirectResponse(f"/web/workbench/items/{saved.code}?saved={notes}", status_code=303)


@router.get("/items/{code}/dry-run", response_class=HTMLResponse)
def dry_run_page(code: str, request: Request, session: SessionDep) -> Response:
    """政策预匹配: matched count, amount, budget coverage, charts by district and size, and a sample of matched and
    near-miss enterprises with the conditions they do not meet."""

    def build(scope: Scope) -> dict:
        page = workbench.dry_run_page(session=session, scope=scope, code=code)
        return {"page": page, "r": page.result}

    return pages.page(request, "workbench_dry_run.html", build)


@router.get("/items/{code}/edit", response_class=HTMLResponse)
def edit_item(code: str, request: Request, session: SessionDep) -> Response:
    """The editor on the item's latest version (a listed version is copied into a new draft when saved)."""

    def build(scope: Scope) -> Response:
        item = fund_item_service.get_item(session=session, principal=scope.principal, code=code)
        values, rows = item_editor.form_from_config(item.version.config.model_dump(mode="json"))
        return _editor(request, scope, values, rows, code=code)

    return pages.page(request, "workbench_editor.html", build, guard=_editor_scope)


@router.post("/items/{code}/edit", response_class=HTMLResponse)
async def save_item(code: str, request: Request, uow: UowDep) -> Response:
    """Save the draft from the editor; refused with the API's messages shown next to their sections."""
    scope = _editor_scope(request)
    if not isinstance(scope, Scope):
        return scope
    try:  # another department's item is not found before anything in the form is looked at
        await uow.read(fund_item_service.get_item, principal=scope.principal, code=code)
    except DomainError as exc:
        return error_page(request, exc)
    data = await request.form()
    single = {k: str(v) for k, v in data.items()}
    form = item_editor.Form(single, {k: [str(x) for x in data.getlist(k)] for k in data})
    saved = await uow.write(item_editor.save, principal=scope.principal, form=form, code=code)
    if saved.errors:
        rows = _posted_rows(form)
        return _editor(request, scope, single, rows, errors=saved.errors, code=code, status_code=422)
    notes = quote("；".join(saved.notes))
    return RedirectResponse(f"/web/workbench/items/{saved.code}?saved={notes}", status_code=303)
