"""Review work (申报审批): department work lists and decisions, supplement, objections, withdrawal, revocation,
account correction and finance's budget decision (services/reviews.py). A refused workflow update comes back as 409
(not allowed now) or 422 (invalid value) naming the field and the rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.deps import SessionDep, SettingsDep, TemporalDep, UowDep, allow
from api.routers.materials import read_uploads, store_of
from schemas.cases import CaseProgress
from schemas.reviews import (
    AccountBody,
    BudgetBody,
    CommentBody,
    DecisionBody,
    ObjectionBody,
    ObjectionOut,
    ReasonBody,
    RulingBody,
)
from schemas.text import Id
from schemas.vocabulary import Role
from schemas.workbench import TaskRow
from services import materials, reviews, workbench
from services.scope import Scope

router = APIRouter(prefix="/api/v1", tags=["reviews 审核"])
Staff = Annotated[Scope, Depends(allow(Role.DEPARTMENT, Role.FINANCE))]
Enterprise = Annotated[Scope, Depends(allow(Role.ENTERPRISE))]
Anyone = Annotated[Scope, Depends(allow(Role.ENTERPRISE, Role.DEPARTMENT, Role.FINANCE))]


@router.get("/tasks", response_model=list[TaskRow], tags=["reviews 审核"])
def my_tasks(
    session: SessionDep,
    scope: Staff,
    response: Response,
    status: Annotated[str | None, Query(pattern="^(open|done|closed|timed_out)$")] = "open",
    department: Annotated[str | None, Query(max_length=32)] = None,
    fund_item: Annotated[str | None, Query(max_length=40, description="资金事项编码")] = None,
    stage_key: Annotated[str | None, Query(max_length=32, description="环节编码")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TaskRow]:
    """My department's work list (待办), the earliest deadline first, with the enterprise and fund item names and
    the working days left; the total number of matching tasks is in the X-Total-Count header."""
    page = workbench.task_page(
        session=session, scope=scope, status=status, department=department, fund_item=fund_item,
        stage_key=stage_key, limit=limit, offset=offset,
    )  # fmt: skip
    response.headers["X-Total-Count"] = str(page.total)
    return page.items


@router.get("/cases/{case_id}/progress", response_model=CaseProgress, tags=["cases 办件"])
async def progress(case_id: Id, uow: UowDep, client: TemporalDep, scope: Anyone) -> CaseProgress:
    """The live state from the workflow (stage, deadlines, decisions, amount, payment status)."""
    return await reviews.progress(uow=uow, client=client, scope=scope, case_id=case_id)


@router.post("/cases/{case_id}/decisions", response_model=CaseProgress)
async def decide(case_id: Id, body: DecisionBody, uow: UowDep, client: TemporalDep, scope: Staff) -> CaseProgress:
    """A department's decision on the current stage; only its own turn, once, while the stage is open."""
    return await reviews.decide(uow=uow, client=client, scope=scope, case_id=case_id, body=body)


SUPPLEMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CommentBody.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "comment": {"type": "string", "maxLength": 2000, "description": "补正说明"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                  "description": "补正材料（PDF、JPEG、PNG、OFD，按内容识别）"},
                    },
                }
            },
        },
    }
}  # fmt: skip


@router.post("/cases/{case_id}/supplement", response_model=CaseProgress, openapi_extra=SUPPLEMENT_BODY)
async def resubmit(
    case_id: Id, request: Request, settings: SettingsDep, uow: UowDep, client: TemporalDep, scope: Enterprise
) -> CaseProgress:
    """The enterprise answers 补正 and the returned stage resumes: JSON `{comment}`, or multipart with `comment` and
    new materials in `files` (kept before the stage resumes; the same checks as any upload)."""
    uploads = []
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=settings.materials_max_files + 1, max_fields=20)
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            body = CommentBody(comment=str(form.get("comment") or ""))
            uploads = await read_uploads(request, files)
        else:
            body = CommentBody.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    return await materials.answer_supplement(
        uow=uow, client=client, settings=settings, scope=scope, case_id=case_id, comment=body.comment,
        uploads=uploads, store=store_of(request),
    )  # fmt: skip


@router.post("/cases/{case_id}/withdraw", response_model=CaseProgress)
async def withdraw(
    case_id: Id, body: CommentBody, uow: UowDep, client: TemporalDep, scope: Enterprise
) -> CaseProgress:
    """The enterprise withdraws its application (before payment)."""
    return await reviews.withdraw(uow=uow, client=client, scope=scope, case_id=case_id, comment=body.comment)


@router.post("/cases/{case_id}/revoke", response_model=CaseProgress)
async def revoke(case_id: Id, body: ReasonBody, uow: UowDep, client: TemporalDep, scope: Staff) -> CaseProgress:
    """A department revokes the case with a reason (before payment; a reserved budget is released)."""
    return await reviews.revoke(uow=uow, client=client, scope=scope, case_id=case_id, reason=body.reason)


@router.post("/cases/{case_id}/review-objections", response_model=ObjectionOut, status_code=201)
async def file_objection(
    case_id: Id, body: ObjectionBody, settings: SettingsDep, uow: UowDep, client: TemporalDep, scope: Anyone
) -> ObjectionOut:
    """A real-name objection during publicity (anyone signed in); the case is suspended until the objection
    department rules."""
    return await reviews.file_objection(
        uow=uow, client=client, case_id=case_id, body=body, fernet_key=settings.fernet_key()
    )


@router.post("/cases/{case_id}/review-objections/{objection_id}/ruling", response_model=CaseProgress)
async def rule_objection(
    case_id: Id, objection_id: Id, body: RulingBody, uow: UowDep, client: TemporalDep, scope: Staff
) -> CaseProgress:
    """The objection department rules: uphold → the case is rejected; dismiss → it continues."""
    return await reviews.rule_objection(
        uow=uow,
        client=client,
        scope=scope,
        case_id=case_id,
        objection_id=objection_id,
        uphold=body.uphold,
        comment=body.comment,
    )


@router.post("/cases/{case_id}/account", response_model=CaseProgress)
async def correct_account(
    case_id: Id, body: AccountBody, settings: SettingsDep, uow: UowDep, client: TemporalDep, scope: Enterprise
) -> CaseProgress:
    """The enterprise corrects its payout account after a failed or returned payment; the case pays again."""
    return await reviews.correct_account(
        uow=uow, client=client, scope=scope, case_id=case_id, body=body, fernet_key=settings.fernet_key()
    )


@router.post("/cases/{case_id}/budget-decision", response_model=CaseProgress)
async def budget_decision(
    case_id: Id,
    body: BudgetBody,
    uow: UowDep,
    client: TemporalDep,
    scope: Annotated[Scope, Depends(allow(Role.FINANCE))],
) -> CaseProgress:
    """Finance decides whether a cross-year return gets new budget (then it is paid again) or fails finally."""
    return await reviews.budget_decision(
        uow=uow, client=client, scope=scope, case_id=case_id, approve=body.approve, comment=body.comment
    )
