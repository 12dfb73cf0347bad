"""The treasury's signed result callback: verify the signature here, then store and signal (services/payments.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.deps import get_uow
from api.errors import Invalid, Unauthorized
from gateways.signing import SignatureError
from gateways.treasury import verify_callback
from schemas.ops import CallbackAck
from services import payments

router = APIRouter(prefix="/api/v1/treasury", tags=["treasury 国库回调"])


@router.post("/callbacks", response_model=CallbackAck)
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
    return await payments.handle_result(
        uow=get_uow(request),
        client=request.app.state.temporal,
        result=result,
        task_queue=settings.temporal_task_queue,
    )
