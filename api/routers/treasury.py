"""The treasury's signed result callback: verify, store once and in order, then tell the case workflow.

A return (退票/主动退回) that arrives after the case workflow has finished opens the correction loop
(workflows.client.start_correction) instead; that start is idempotent, so a redelivered callback is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError

from api.errors import Invalid, Unauthorized, Unavailable
from db.repositories import cases, payments
from db.session import transaction
from gateways.signing import SignatureError
from gateways.treasury import verify_callback
from schemas.cases import PaymentSignal
from schemas.treasury import InstructionResult
from workflows.client import start_correction

router = APIRouter(prefix="/api/v1/treasury", tags=["treasury 国库回调"])
# Case statuses after which the case workflow is over: a return then needs its own correction workflow.
CLOSED_CASE_STATUSES = frozenset({"paid", "payment_failed", "rejected", "withdrawn", "closed"})


@dataclass(frozen=True)
class _Stored:
    outcome: str
    case_id: int | None
    workflow_id: str | None
    case_status: str | None


@router.post("/callbacks")
async def callback(request: Request) -> dict:
    """Accepts a signed InstructionResult; forged, stale-timestamped or replayed callbacks get 401.

    Duplicate and out-of-order results are answered 200 and change nothing (the stored state only moves
    forward). 503 asks the treasury to deliver again when a return cannot reach Temporal yet.
    """
    settings = request.app.state.settings
    body = await request.body()
    try:
        result = verify_callback(
            request.headers,
            body,
            treasury_public_pems={settings.treasury_signing_key_id: settings.treasury_public_pem()},
            window_seconds=settings.signature_window_seconds,
            nonces=request.app.state.nonces,
        )
    except SignatureError as exc:
        raise Unauthorized(f"回调签名校验失败：{exc}") from exc
    except ValidationError as exc:
        raise Invalid(f"回调内容不合法：{exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from exc
    stored = await run_in_threadpool(_store, settings.db_url, result)
    client = request.app.state.temporal
    if stored.workflow_id is None or result.Status == "accepted":
        return {"code": "OK", "VoucherNo": result.VoucherNo, "outcome": stored.outcome}
    if result.Status == "returned":
        if client is None:
            raise Unavailable("工作流服务暂不可用，请稍后重发回调")
        running = stored.case_status not in CLOSED_CASE_STATUSES and await _signal(client, stored, result)
        if not running:
            assert stored.case_id is not None
            await start_correction(
                client, case_id=stored.case_id, voucher_no=result.VoucherNo, task_queue=settings.temporal_task_queue
            )
    elif client is not None and stored.outcome == "applied":
        await _signal(client, stored, result)  # if it fails, the workflow finds the result by polling
    return {"code": "OK", "VoucherNo": result.VoucherNo, "outcome": stored.outcome}


async def _signal(client: Client, stored: _Stored, result: InstructionResult) -> bool:
    """Signal `payment_result`; False when the workflow is gone (finished, or never started)."""
    try:
        await client.get_workflow_handle(stored.workflow_id).signal(
            "payment_result", PaymentSignal(voucher_no=result.VoucherNo, status=result.Status)
        )
    except RPCError:
        return False
    return True


def _store(db_url: str, result: InstructionResult) -> _Stored:
    with transaction(db_url) as session:
        outcome = payments.store_result(session=session, result=result)
        instruction = payments.get(session=session, voucher=result.VoucherNo)
        if instruction is None:
            return _Stored(outcome, None, None, None)
        case = cases.get(session=session, case_id=instruction.case_id)
        if case is None:
            return _Stored(outcome, instruction.case_id, None, None)
        return _Stored(outcome, case.id, case.workflow_id, case.status)
