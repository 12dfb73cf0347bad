"""Review work (申报审批): department work lists and decisions, supplement, objections, withdrawal, revocation,
account correction and finance's budget decision. Each action is a Temporal update on the case's workflow;
a refused update comes back as 409 (not allowed now) or 422 (invalid value) naming the field and the rule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api import services
from api.auth import Principal
from api.deps import SettingsDep, TemporalDep, require
from api.errors import Conflict, Forbidden, Invalid
from db import crypto
from db.repositories import cases, enterprises, payments, reviews
from db.session import transaction
from schemas.cases import (
    AccountCorrection,
    BudgetDecision,
    CaseProgress,
    DecisionIn,
    ObjectionFiled,
    ObjectionRuling,
    Resubmission,
    RevokeIn,
    WithdrawIn,
)
from settings import Settings
from workflows.client import correction_workflow_id

router = APIRouter(prefix="/api/v1", tags=["reviews 审核"])
Department = Annotated[Principal, Depends(require("department", "finance"))]
Enterprise = Annotated[Principal, Depends(require("enterprise"))]


class TaskOut(BaseModel):
    id: int
    case_id: int
    stage_key: str
    stage_name: str
    round: int
    department_code: str
    status: str
    due_at: datetime | None
    provisional: bool
    reminded_at: datetime | None
    decision: str | None
    comment: str | None


class DecisionBody(BaseModel):
    """A department's decision on the current stage: approve / reject / return for supplement (补正)."""

    stage_key: str = Field(min_length=1, max_length=32, examples=["first_review"])
    decision: str = Field(pattern="^(approve|reject|return)$", examples=["approve"])
    comment: str = Field("", max_length=2000)
    amount_fen: int | None = Field(None, ge=1, description="核定金额（分），同意时可填")
    department: str | None = Field(None, description="仅管理员代部门办理时填写")


class CommentBody(BaseModel):
    comment: str = Field("", max_length=2000)


class ReasonBody(BaseModel):
    reason: str = Field(min_length=2, max_length=500)


class ObjectionBody(BaseModel):
    """A real-name objection during publicity (实名异议): name, resident ID number, evidence."""

    name: str = Field(min_length=2, max_length=60)
    id_number: str = Field(min_length=18, max_length=18, description="居民身份证号码")
    phone: str | None = Field(None, max_length=20)
    evidence: str = Field(min_length=5, max_length=4000, description="异议事实和证据")


class ObjectionOut(BaseModel):
    id: int
    case_id: int
    objector_name: str
    id_number_masked: str
    status: str


class RulingBody(BaseModel):
    uphold: bool
    comment: str = Field("", max_length=2000)


class AccountBody(BaseModel):
    """The corrected payout account (收款账户); stored encrypted."""

    acct_no: str = Field(pattern=r"^\d{6,32}$")
    acct_name: str = Field(min_length=1, max_length=200)
    bank_name: str = Field(min_length=1, max_length=200)
    bank_code: str = Field(pattern=r"^\d{12}$", description="开户行联行号")


class BudgetBody(BaseModel):
    approve: bool
    comment: str = Field("", max_length=500)


# -- helpers -----------------------------------------------------------------------------------------------------


def _department_of(principal: Principal, override: str | None = None) -> str:
    if principal.role == "admin":
        if not override:
            raise Invalid("department：管理员代办时须填写部门编码", field="department")
        return override
    return principal.subject


def _case_ref(settings: Settings, principal: Principal, case_id: int) -> tuple[str, str | None]:
    """The case's workflow ID, and its latest failed/returned voucher (for a correction workflow)."""
    with transaction(settings.db_url) as session:
        case = services.visible_case(session=session, principal=principal, case_id=case_id)
        latest = payments.for_case(session=session, case_id=case.id)
        voucher = latest[-1].voucher_no if latest and latest[-1].status in ("failed", "returned") else None
        return case.workflow_id, voucher


def _refusal(exc: WorkflowUpdateFailedError) -> Exception:
    """A validator's refusal as 409 (not allowed now) or 422 (an invalid value), with its field and rule."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        rule = str(details.get("rule") or cause.type or "refused")
        kind = Invalid if rule.startswith("invalid_") else Conflict
        return kind(cause.message, field=details.get("field") or "case_id", rule=rule)
    return Conflict(f"操作被拒绝：{exc}", field="case_id")


async def _update(client: Client, workflow_id: str, name: str, body: Any) -> CaseProgress:
    try:
        return await client.get_workflow_handle(workflow_id).execute_update(name, body, result_type=CaseProgress)
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from exc
    except RPCError as exc:
        raise Conflict("办件流程已结束，不能再办理", field="case_id") from exc


async def _payment_update(client: Client, workflow_id: str, voucher: str | None, case_id: int, name: str, body: Any):
    """The case workflow handles its own payments; after it ended, the correction workflow of the voucher does."""
    try:
        return await _update(client, workflow_id, name, body)
    except Conflict:
        if voucher is None:
            raise
        return await _update(client, correction_workflow_id(case_id, voucher), name, body)


# -- endpoints ---------------------------------------------------------------------------------------------------


@router.get("/tasks", response_model=list[TaskOut], tags=["reviews 审核"])
def my_tasks(
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("department", "finance"))],
    status: Annotated[str | None, Query(pattern="^(open|done|closed|timed_out)$")] = "open",
    department: Annotated[str | None, Query(max_length=32)] = None,
) -> list[TaskOut]:
    """My department's work list (待办), the most urgent first."""
    code = department if principal.role == "admin" and department else principal.subject
    with transaction(settings.db_url) as session:
        rows = reviews.tasks_for_department(session=session, department=code, status=status)
        return [TaskOut.model_validate(t, from_attributes=True) for t in rows]


@router.get("/cases/{case_id}/progress", response_model=CaseProgress, tags=["cases 办件"])
async def progress(
    case_id: int,
    settings: SettingsDep,
    client: TemporalDep,
    principal: Annotated[Principal, Depends(require("enterprise", "department", "finance"))],
) -> CaseProgress:
    """The live state from the workflow (stage, deadlines, decisions, amount, payment status)."""
    workflow_id, _ = await run_in_threadpool(_case_ref, settings, principal, case_id)
    try:
        return await client.get_workflow_handle(workflow_id).query("status", result_type=CaseProgress)
    except RPCError as exc:
        raise Conflict("办件流程不可查询（可能尚未开始）", field="case_id") from exc


@router.post("/cases/{case_id}/decisions", response_model=CaseProgress)
async def decide(
    case_id: int, body: DecisionBody, settings: SettingsDep, client: TemporalDep, principal: Department
) -> CaseProgress:
    """A department's decision on the current stage; only its own turn, once, while the stage is open."""
    workflow_id, _ = await run_in_threadpool(_case_ref, settings, principal, case_id)
    decision = DecisionIn(
        stage_key=body.stage_key,
        department=_department_of(principal, body.department),
        decision=body.decision,  # type: ignore[arg-type]
        actor=principal.actor,
        comment=body.comment,
        amount_fen=body.amount_fen,
    )
    return await _update(client, workflow_id, "decide", decision)


@router.post("/cases/{case_id}/supplement", response_model=CaseProgress)
async def resubmit(
    case_id: int, body: CommentBody, settings: SettingsDep, client: TemporalDep, principal: Enterprise
) -> CaseProgress:
    """The enterprise resubmits after 补正: the returned stage resumes."""
    workflow_id, _ = await run_in_threadpool(_case_ref, settings, principal, case_id)
    return await _update(client, workflow_id, "resubmit", Resubmission(actor=principal.actor, comment=body.comment))


@router.post("/cases/{case_id}/withdraw", response_model=CaseProgress)
async def withdraw(
    case_id: int, body: CommentBody, settings: SettingsDep, client: TemporalDep, principal: Enterprise
) -> CaseProgress:
    """The enterprise withdraws its application (before payment)."""
    workflow_id, _ = await run_in_threadpool(_case_ref, settings, principal, case_id)
    request = WithdrawIn(actor=principal.actor, reason=body.comment or "企业主动撤回申报")
    return await _update(client, workflow_id, "withdraw", request)


@router.post("/cases/{case_id}/revoke", response_model=CaseProgress)
async def revoke(
    case_id: int, body: ReasonBody, settings: SettingsDep, client: TemporalDep, principal: Department
) -> CaseProgress:
    """A department revokes the case with a reason (before payment; a reserved budget is released)."""
    workflow_id, _ = await run_in_threadpool(_case_ref, settings, principal, case_id)
    department = principal.subject if principal.role != "admin" else "admin"
    request = RevokeIn(department=department, actor=principal.actor, reason=body.reason)
    return await _update(client, workflow_id, "revoke", request)


def _store_objection(settings: Settings, principal: Principal, case_id: int, body: ObjectionBody) -> tuple[str, int]:
    try:
        number = ric.validate(body.id_number)
    except StdnumError as exc:
        raise Invalid(f"id_number：身份证号码无效（{exc.message}）", field="id_number") from exc
    key = settings.fernet_key()
    with transaction(settings.db_url) as session:
        case = cases.get(session=session, case_id=case_id)
        if case is None or case.mode != "review":
            raise Conflict(f"办件 {case_id} 不是申报审批办件，不接受异议", field="case_id")
        if case.status not in ("publicity", "objection"):
            raise Conflict("办件不在公示期内，不能提出异议", field="case_id")
        objection = reviews.add_objection(
            session=session,
            case=case,
            objector_name=body.name,
            id_number_enc=crypto.encrypt(key, number),
            id_number_masked=f"{number[:6]}********{number[-4:]}",
            phone_enc=crypto.encrypt(key, body.phone) if body.phone else None,
            evidence=body.evidence,
        )
        return case.workflow_id, objection.id


@router.post("/cases/{case_id}/review-objections", response_model=ObjectionOut, status_code=201)
async def file_objection(
    case_id: int,
    body: ObjectionBody,
    settings: SettingsDep,
    client: TemporalDep,
    principal: Annotated[Principal, Depends(require("enterprise", "department", "finance"))],
) -> ObjectionOut:
    """A real-name objection during publicity; the case is suspended until the objection department rules."""
    workflow_id, objection_id = await run_in_threadpool(_store_objection, settings, principal, case_id, body)
    await _update(client, workflow_id, "file_objection", ObjectionFiled(objection_id=objection_id))
    with transaction(settings.db_url) as session:
        objection = reviews.get_objection(session=session, objection_id=objection_id)
        return ObjectionOut.model_validate(objection, from_attributes=True)


@router.post("/cases/{case_id}/review-objections/{objection_id}/ruling", response_model=CaseProgress)
async def rule_objection(
    case_id: int, objection_id: int, body: RulingBody, settings: SettingsDep, client: TemporalDep, principal: Department
) -> CaseProgress:
    """The objection department rules: uphold → the case is rejected; dismiss → it continues."""
    workflow_id, _ = await run_in_threadpool(_case_ref, settings, principal, case_id)
    ruling = ObjectionRuling(
        objection_id=objection_id,
        department=principal.subject,
        uphold=body.uphold,
        actor=principal.actor,
        comment=body.comment,
    )
    return await _update(client, workflow_id, "rule_objection", ruling)


def _store_account(settings: Settings, principal: Principal, case_id: int, body: AccountBody) -> tuple[str, str | None]:
    key = settings.fernet_key()
    with transaction(settings.db_url) as session:
        case = services.visible_case(session=session, principal=principal, case_id=case_id)
        if case.status != "awaiting_correction":
            raise Conflict("办件当前不在等待更正收款账户的环节", field="case_id")
        enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
        if enterprise is None:
            raise Forbidden("企业不存在")
        enterprise.bank_account_enc = crypto.encrypt(key, body.acct_no)
        enterprise.bank_account_masked = crypto.mask_account(body.acct_no)
        enterprise.bank_account_name = body.acct_name
        enterprise.bank_name = body.bank_name
        enterprise.bank_code = body.bank_code
    return _case_ref(settings, principal, case_id)


@router.post("/cases/{case_id}/account", response_model=CaseProgress)
async def correct_account(
    case_id: int, body: AccountBody, settings: SettingsDep, client: TemporalDep, principal: Enterprise
) -> CaseProgress:
    """The enterprise corrects its payout account after a failed or returned payment; the case pays again."""
    workflow_id, voucher = await run_in_threadpool(_store_account, settings, principal, case_id, body)
    correction = AccountCorrection(actor=principal.actor, acct_masked=crypto.mask_account(body.acct_no))
    return await _payment_update(client, workflow_id, voucher, case_id, "correct_account", correction)


@router.post("/cases/{case_id}/budget-decision", response_model=CaseProgress)
async def budget_decision(
    case_id: int,
    body: BudgetBody,
    settings: SettingsDep,
    client: TemporalDep,
    principal: Annotated[Principal, Depends(require("finance"))],
) -> CaseProgress:
    """Finance decides whether a cross-year return gets new budget (then it is paid again) or fails finally."""
    workflow_id, voucher = await run_in_threadpool(_case_ref, settings, principal, case_id)
    decision = BudgetDecision(
        department=principal.subject, approve=body.approve, actor=principal.actor, comment=body.comment
    )
    return await _payment_update(client, workflow_id, voucher, case_id, "decide_budget", decision)
