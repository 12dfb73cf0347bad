"""Review work (申报审批): work lists, decisions, supplement, withdrawal, revocation, real-name objections, account
correction and finance's budget decision.

Each action is a Temporal update on the case's workflow, sent only after the case was found in the caller's scope; a
refused update comes back as Conflict (not allowed now) or Invalid (an invalid value) naming the field and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from db import crypto
from db.repositories import cases, enterprises, payments, reviews
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
from schemas.reviews import AccountBody, DecisionBody, ObjectionBody, ObjectionOut, TaskOut
from schemas.vocabulary import CaseStatus, FundItemMode, PaymentStatus, Role
from services.cases import visible_case
from services.errors import Conflict, Forbidden, Invalid
from services.scope import Scope
from services.uow import UnitOfWork
from workflows.client import correction_workflow_id


@dataclass(frozen=True)
class CaseRef:
    """The case's workflow, and its latest failed or returned voucher (whose correction workflow may be running)."""

    case_id: int
    workflow_id: str
    voucher: str | None


def case_ref(*, session: Session, scope: Scope, case_id: int) -> CaseRef:
    """The workflow of a case in the caller's scope."""
    case = visible_case(session=session, scope=scope, case_id=case_id)
    latest = payments.for_case(session=session, case_id=case.id)
    failed = (PaymentStatus.FAILED, PaymentStatus.RETURNED)
    voucher = latest[-1].voucher_no if latest and latest[-1].status in failed else None
    return CaseRef(case.id, case.workflow_id, voucher)


def _refusal(exc: WorkflowUpdateFailedError) -> Exception:
    """A validator's refusal as Conflict (not allowed now) or Invalid (an invalid value), with its field and rule."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and "expected but not found" in (cause.message or ""):
        # The workflow has no such action (e.g. a mode without it): never show Temporal's own text.
        return Conflict("该办件当前不支持此项操作", field="case_id", rule="action_not_available")
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


async def _payment_update(client: Client, ref: CaseRef, name: str, body: Any) -> CaseProgress:
    """The case workflow handles its own payments; after it ended, the correction workflow of the voucher does."""
    try:
        return await _update(client, ref.workflow_id, name, body)
    except Conflict:
        if ref.voucher is None:
            raise
        return await _update(client, correction_workflow_id(ref.case_id, ref.voucher), name, body)


def _staff(scope: Scope) -> None:
    if scope.role not in (Role.DEPARTMENT, Role.FINANCE, Role.ADMIN):
        raise Forbidden(f"{Role.label_of(scope.role)}无权办理审核", rule="role")


def _enterprise(scope: Scope) -> None:
    if scope.role not in (Role.ENTERPRISE, Role.ADMIN):
        raise Forbidden("只有申报企业本身可以办理", rule="role")


# -- work lists and the live state ----------------------------------------------------------------------------------


def tasks(
    *, session: Session, scope: Scope, status: str | None = "open", department: str | None = None
) -> list[TaskOut]:
    """The caller's department's work list (待办), the most urgent first; an administrator names the department."""
    _staff(scope)
    code = department if scope.role == Role.ADMIN and department else scope.principal.subject
    rows = reviews.tasks_for_department(session=session, department=code, status=status)
    return [TaskOut.model_validate(t, from_attributes=True) for t in rows]


async def progress(*, uow: UnitOfWork, client: Client, scope: Scope, case_id: int) -> CaseProgress:
    """The live state from the workflow (stage, deadlines, decisions, amount, payment status)."""
    ref = await uow.read(case_ref, scope=scope, case_id=case_id)
    try:
        return await client.get_workflow_handle(ref.workflow_id).query("status", result_type=CaseProgress)
    except RPCError as exc:
        raise Conflict("办件流程不可查询（可能尚未开始）", field="case_id") from exc


# -- decisions ------------------------------------------------------------------------------------------------------


async def decide(*, uow: UnitOfWork, client: Client, scope: Scope, case_id: int, body: DecisionBody) -> CaseProgress:
    """A department's decision on the current stage; only its own turn, once, while the stage is open."""
    _staff(scope)
    if scope.role == Role.ADMIN and not body.department:
        raise Invalid("department：管理员代办时须填写部门编码", field="department")
    ref = await uow.read(case_ref, scope=scope, case_id=case_id)
    decision = DecisionIn(
        stage_key=body.stage_key,
        department=body.department if scope.role == Role.ADMIN else scope.principal.subject,
        decision=body.decision,  # type: ignore[arg-type]
        actor=scope.actor,
        comment=body.comment,
        amount_fen=body.amount_fen,
    )
    return await _update(client, ref.workflow_id, "decide", decision)


async def resubmit(*, uow: UnitOfWork, client: Client, scope: Scope, case_id: int, comment: str) -> CaseProgress:
    """The enterprise resubmits after 补正: the returned stage resumes."""
    _enterprise(scope)
    ref = await uow.read(case_ref, scope=scope, case_id=case_id)
    return await _update(client, ref.workflow_id, "resubmit", Resubmission(actor=scope.actor, comment=comment))


INSTANT_NOT_WITHDRAWABLE = "即申即享办件提交后由系统即时核验并拨付，不能撤回；如有疑问请联系政策服务专员"


def withdrawable_ref(*, session: Session, scope: Scope, case_id: int) -> CaseRef:
    """The workflow of a case its enterprise may withdraw: an instant case is decided and paid at once, so its
    workflow has no withdrawal (refused here in Chinese instead of by Temporal's unknown-update error)."""
    case = visible_case(session=session, scope=scope, case_id=case_id)
    if case.mode == FundItemMode.INSTANT:
        raise Conflict(INSTANT_NOT_WITHDRAWABLE, field="case_id", rule="withdraw_not_allowed")
    return case_ref(session=session, scope=scope, case_id=case_id)


async def withdraw(*, uow: UnitOfWork, client: Client, scope: Scope, case_id: int, comment: str) -> CaseProgress:
    """The enterprise withdraws its application (a review case, before payment)."""
    _enterprise(scope)
    ref = await uow.read(withdrawable_ref, scope=scope, case_id=case_id)
    request = WithdrawIn(actor=scope.actor, reason=comment or "企业主动撤回申报")
    return await _update(client, ref.workflow_id, "withdraw", request)


async def revoke(*, uow: UnitOfWork, client: Client, scope: Scope, case_id: int, reason: str) -> CaseProgress:
    """A department revokes the case with a reason (before payment; a reserved budget is released)."""
    _staff(scope)
    ref = await uow.read(case_ref, scope=scope, case_id=case_id)
    department = scope.principal.subject if scope.role != Role.ADMIN else "admin"
    request = RevokeIn(department=department, actor=scope.actor, reason=reason)
    return await _update(client, ref.workflow_id, "revoke", request)


# -- objections -----------------------------------------------------------------------------------------------------


def store_objection(*, session: Session, case_id: int, body: ObjectionBody, fernet_key: str) -> tuple[str, int]:
    """Keep a real-name objection to a case in publicity (公示 is public: any signed-in caller may object)."""
    try:
        number = ric.validate(body.id_number)
    except StdnumError as exc:
        raise Invalid(f"id_number：身份证号码无效（{exc.message}）", field="id_number") from exc
    case = cases.get(session=session, case_id=case_id)
    if case is None or case.mode != FundItemMode.REVIEW:
        raise Conflict(f"办件 {case_id} 不是申报审批办件，不接受异议", field="case_id")
    if case.status not in (CaseStatus.PUBLICITY, CaseStatus.OBJECTION):
        raise Conflict("办件不在公示期内，不能提出异议", field="case_id")
    objection = reviews.add_objection(
        session=session,
        case=case,
        objector_name=crypto.mask_name(body.name),
        objector_name_enc=crypto.encrypt(fernet_key, body.name),
        id_number_enc=crypto.encrypt(fernet_key, number),
        id_number_masked=f"{number[:6]}********{number[-4:]}",
        phone_enc=crypto.encrypt(fernet_key, body.phone) if body.phone else None,
        evidence=body.evidence,
    )
    return case.workflow_id, objection.id


def _objection_out(*, session: Session, objection_id: int) -> ObjectionOut:
    objection = reviews.get_objection(session=session, objection_id=objection_id)
    return ObjectionOut.model_validate(objection, from_attributes=True)


async def file_objection(
    *, uow: UnitOfWork, client: Client, case_id: int, body: ObjectionBody, fernet_key: str
) -> ObjectionOut:
    """A real-name objection during publicity; the case is suspended until the objection department rules."""
    workflow_id, objection_id = await uow.write(store_objection, case_id=case_id, body=body, fernet_key=fernet_key)
    await _update(client, workflow_id, "file_objection", ObjectionFiled(objection_id=objection_id))
    return await uow.read(_objection_out, objection_id=objection_id)


async def rule_objection(
    *, uow: UnitOfWork, client: Client, scope: Scope, case_id: int, objection_id: int, uphold: bool, comment: str
) -> CaseProgress:
    """The objection department rules: uphold → the case is rejected; dismiss → it continues."""
    _staff(scope)
    ref = await uow.read(case_ref, scope=scope, case_id=case_id)
    ruling = ObjectionRuling(
        objection_id=objection_id,
        department=scope.principal.subject,
        uphold=uphold,
        actor=scope.actor,
        comment=comment,
    )
    # Its audit record is written by the workflow's activity, with the ruling (ReviewActivities.record_objection_ruling).
    return await _update(client, ref.workflow_id, "rule_objection", ruling)


# -- payments that came back ----------------------------------------------------------------------------------------


def store_account(*, session: Session, scope: Scope, case_id: int, body: AccountBody, fernet_key: str) -> CaseRef:
    """Keep the enterprise's corrected payout account (encrypted) while its case waits for it."""
    case = visible_case(session=session, scope=scope, case_id=case_id)
    if case.status != CaseStatus.AWAITING_CORRECTION:
        raise Conflict("办件当前不在等待更正收款账户的环节", field="case_id")
    enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
    if enterprise is None:
        raise Forbidden("企业不存在")
    enterprise.bank_account_enc = crypto.encrypt(fernet_key, body.acct_no)
    enterprise.bank_account_masked = crypto.mask_account(body.acct_no)
    enterprise.bank_account_name = body.acct_name
    enterprise.bank_name = body.bank_name
    enterprise.bank_code = body.bank_code
    session.flush()
    return case_ref(session=session, scope=scope, case_id=case_id)


async def correct_account(
    *, uow: UnitOfWork, client: Client, scope: Scope, case_id: int, body: AccountBody, fernet_key: str
) -> CaseProgress:
    """The enterprise corrects its payout account after a failed or returned payment; the case pays again."""
    _enterprise(scope)
    ref = await uow.write(store_account, scope=scope, case_id=case_id, body=body, fernet_key=fernet_key)
    correction = AccountCorrection(actor=scope.actor, acct_masked=crypto.mask_account(body.acct_no))
    return await _payment_update(client, ref, "correct_account", correction)


async def budget_decision(
    *, uow: UnitOfWork, client: Client, scope: Scope, case_id: int, approve: bool, comment: str
) -> CaseProgress:
    """Finance decides whether a cross-year return gets new budget (then it is paid again) or fails finally."""
    if scope.role not in (Role.FINANCE, Role.ADMIN):
        raise Forbidden("只有财政部门可以作出预算决定", rule="role")
    ref = await uow.read(case_ref, scope=scope, case_id=case_id)
    decision = BudgetDecision(department=scope.principal.subject, approve=approve, actor=scope.actor, comment=comment)
    # Its audit record is written by the workflow's activity, with the decision's event (CaseActivities.record_event).
    return await _payment_update(client, ref, "decide_budget", decision)
