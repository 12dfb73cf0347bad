"""Use cases behind the routers and web pages: validation, repositories, starting workflows."""

from __future__ import annotations

import contextlib

from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import Principal
from api.errors import Conflict, Forbidden, Invalid, NotFound
from db.models import Case
from db.repositories import cases, enterprises, fund_items, notices, payments
from schemas import uscc as uscc_rules
from schemas.cases import ApplicationIn, CaseEventOut, CaseInput, CaseOut, NoticeOut, PaymentOut
from settings import Settings
from workflows.client import case_workflow_id
from workflows.instant import InstantCaseWorkflow
from workflows.review import ReviewCaseWorkflow

WORKFLOW_BY_MODE = {"instant": InstantCaseWorkflow, "review": ReviewCaseWorkflow}


def create_application(*, session: Session, principal: Principal, body: ApplicationIn) -> tuple[Case, bool]:
    """The case for this enterprise and fund item, created once; a duplicate returns the first case."""
    try:
        code = uscc_rules.validate(body.uscc)
    except ValueError as exc:
        raise Invalid(f"uscc：{exc}", field="uscc") from exc
    if principal.role == "enterprise" and principal.subject != code:
        raise Forbidden("企业只能为本企业申报", field="uscc")
    item = fund_items.get_by_code(session=session, code=body.fund_item_code)
    if item is None:
        raise NotFound(f"fund_item_code：资金事项 {body.fund_item_code} 不存在", field="fund_item_code")
    if item.status != "listed":
        raise Conflict(f"fund_item_code：资金事项“{item.name}”未上架，不接受申报", field="fund_item_code")
    if item.mode not in WORKFLOW_BY_MODE:
        raise Conflict(f"fund_item_code：资金事项“{item.name}”的兑付方式不接受在线申报", field="fund_item_code")
    enterprise = enterprises.get_by_uscc(session=session, uscc=code)
    if enterprise is None:
        raise NotFound(f"uscc：统一社会信用代码 {code} 不在企业档案中", field="uscc")
    return cases.get_or_create(
        session=session,
        fund_item_id=item.id,
        fund_item_version=item.listed_version or item.current_version,
        enterprise_id=enterprise.id,
        mode=item.mode,
        workflow_id=case_workflow_id(item.code, code),
    )


async def start_case_workflow(*, client: Client, settings: Settings, case: Case) -> None:
    """Start the case's workflow once: a running one is reused and a finished one is never started again."""
    workflow = WORKFLOW_BY_MODE[case.mode]
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            workflow.run,
            CaseInput(
                case_id=case.id,
                fund_item_id=case.fund_item_id,
                fund_item_version=case.fund_item_version,
                payment_poll_seconds=settings.payment_poll_seconds,
            ),
            id=case.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )


def case_view(*, session: Session, case: Case, detail: bool = True) -> CaseOut:
    item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
    enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
    assert item and enterprise
    out = CaseOut(
        id=case.id,
        workflow_id=case.workflow_id,
        fund_item_code=item.code,
        fund_item_name=item.name,
        fund_item_version=case.fund_item_version,
        uscc=enterprise.uscc,
        enterprise_name=enterprise.name,
        mode=case.mode,
        status=case.status,
        amount_fen=case.amount_fen,
        paid_fen=case.paid_fen,
        outcome_reason=case.outcome_reason,
        created_at=case.created_at,
    )
    if detail:
        out.events = [
            CaseEventOut.model_validate(e, from_attributes=True) for e in cases.events(session=session, case_id=case.id)
        ]
        out.notices = [
            NoticeOut.model_validate(n, from_attributes=True)
            for n in notices.for_case(session=session, case_id=case.id)
        ]
        out.payments = [
            PaymentOut.model_validate(p, from_attributes=True)
            for p in payments.for_case(session=session, case_id=case.id)
        ]
    return out


def visible_case(*, session: Session, principal: Principal, case_id: int) -> Case:
    """A case the caller may see: enterprises see only their own."""
    case = cases.get(session=session, case_id=case_id)
    if case is None:
        raise NotFound(f"办件 {case_id} 不存在", field="case_id")
    if principal.role == "enterprise":
        enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
        if enterprise is None or enterprise.uscc != principal.subject:
            raise NotFound(f"办件 {case_id} 不存在", field="case_id")
    return case
