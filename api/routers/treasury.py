"""The treasury's signed result callback: verify, store once, then signal the case workflow."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api.errors import Invalid, Unauthorized
from db.repositories import cases, payments
from db.session import transaction
from gateways.signing import SignatureError
from gateways.treasury import verify_callback
from schemas.cases import PaymentSignal
from schemas.treasury import InstructionResult

router = APIRouter(prefix="/api/v1/treasury", tags=["treasury 国库回调"])


@router.post("/callbacks")
async def callback(request: Request) -> dict:
    """Accepts a signed InstructionResult; forged, stale or replayed callbacks get 401."""
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
    workflow_id = await run_in_threadpool(_store, settings.db_url, result)
    client = request.app.state.temporal
    if workflow_id and client is not None and result.Status != "accepted":
        try:
            await client.get_workflow_handle(workflow_id).signal(
                "payment_result", PaymentSignal(voucher_no=result.VoucherNo, status=result.Status)
            )
        except RPCError:
            pass  # the workflow has finished, or will find the result by polling
    return {"code": "OK", "VoucherNo": result.VoucherNo}


def _store(db_url: str, result: InstructionResult) -> str | None:
    with transaction(db_url) as session:
        payments.store_result(session=session, result=result)
        instruction = payments.get(session=session, voucher=result.VoucherNo)
        if instruction is None:
            return None
        case = cases.get(session=session, case_id=instruction.case_id)
        return case.workflow_id if case else None
