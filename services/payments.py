"""The treasury's results (国库支付结果): store each once and in order, then tell the case workflow.

A return (退票/主动退回) that arrives after the case workflow has finished opens the correction loop
(workflows.client.start_correction) instead; that start is idempotent, so a redelivered callback is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError

from db.repositories import payments
from schemas.cases import PaymentSignal
from schemas.treasury import InstructionResult
from schemas.vocabulary import CaseStatus, PaymentStatus
from services.errors import Unavailable
from services.uow import UnitOfWork
from workflows.client import start_correction


@dataclass(frozen=True)
class Stored:
    outcome: str
    case_id: int | None
    workflow_id: str | None
    case_status: str | None


def store_result(*, session: Session, result: InstructionResult) -> Stored:
    """Store the result (duplicates and out-of-order results change nothing) and find its case."""
    outcome = payments.store_result(session=session, result=result)
    found = payments.case_of(session=session, voucher=result.VoucherNo)  # Core, no ORM load of either row
    if found is None:
        return Stored(outcome, None, None, None)
    if found.found is None:
        return Stored(outcome, found.case_id, None, None)
    return Stored(outcome, found.case_id, found.workflow_id, found.case_status)


async def _signal(client: Client, stored: Stored, result: InstructionResult) -> bool:
    """Signal `payment_result`; False when the workflow is gone (finished, or never started)."""
    try:
        await client.get_workflow_handle(stored.workflow_id).signal(
            "payment_result", PaymentSignal(voucher_no=result.VoucherNo, status=result.Status)
        )
    except RPCError:
        return False
    return True


async def handle_result(
    *, uow: UnitOfWork, client: Client | None, result: InstructionResult, task_queue: str
) -> dict[str, str]:
    """Store a verified result and signal its case (or start the correction of a return after the case closed).

    Unavailable asks the treasury to deliver again when a return cannot reach Temporal yet."""
    stored = await uow.write(store_result, result=result)
    answer = {"code": "OK", "VoucherNo": result.VoucherNo, "outcome": stored.outcome}
    if stored.workflow_id is None or result.Status == PaymentStatus.ACCEPTED:
        return answer
    if result.Status == PaymentStatus.RETURNED:
        if client is None:
            raise Unavailable("工作流服务暂不可用，请稍后重发回调")
        # A final case status means the case workflow is over: the return needs its own correction workflow.
        closed = stored.case_status in CaseStatus.finals()
        running = not closed and await _signal(client, stored, result)
        if not running:
            assert stored.case_id is not None
            await start_correction(client, case_id=stored.case_id, voucher_no=result.VoucherNo, task_queue=task_queue)
    elif client is not None and stored.outcome == "applied":
        await _signal(client, stored, result)  # if it fails, the workflow finds the result by polling
    return answer
