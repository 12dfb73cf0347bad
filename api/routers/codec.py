"""The codec server for the Temporal Web UI: an authorised operator reads (decrypts) workflow payloads there.

Temporal's codec server protocol: `POST /codec/decode` and `POST /codec/encode` with
`{"payloads": [{"metadata": {k: base64}, "data": base64}]}`, answered in the same shape. The Web UI calls it from its
own origin (settings.ui_origin), so that origin, and only that one, is admitted by CORS. Only administrators may
call it: with a bearer token (the UI's "pass access token"), or with the pages' sign-in cookie when the request comes
from the Web UI's origin (the UI's "include credentials"). Everyone else gets 401/403 and never a plaintext. Every decode is an audit record (who, how many payloads under
which keys, the namespace and the workflow when the UI's Referer names it; never the contents), committed before
the answer leaves.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Body, Request, Response
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool
from temporalio.api.common.v1 import Payload

from api.deps import COOKIE, bearer_of, resolve_scope, verify
from api.errors import Forbidden, Invalid, Unauthorized
from db.session import transaction
from schemas.ops import CodecPayloads
from schemas.vocabulary import Role
from services import audit
from services.scope import Scope
from workflows.client import data_converter
from workflows.codec import ENCODING, CodecKeyError

router = APIRouter(prefix="/codec", tags=["codec 载荷编解码（Temporal Web UI）"])
MAX_PAYLOADS = 1000


def _cors(request: Request, response: Response) -> None:
    origin = request.headers.get("origin", "").rstrip("/")
    if origin and origin == request.app.state.settings.ui_origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Namespace"
        response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"


def _operator(request: Request) -> Scope:
    settings = request.app.state.settings
    token = bearer_of(request)
    from_ui = request.headers.get("origin", "").rstrip("/") == settings.ui_origin
    if not token and from_ui:
        token = request.cookies.get(COOKIE, "")
    if not token:
        raise Unauthorized("缺少访问令牌（Authorization: Bearer …）", rule="token")
    scope = resolve_scope(settings.db_url, verify(settings, token))
    if scope.role != Role.ADMIN:
        raise Forbidden(f"{Role.label_of(scope.role)}无权查看工作流载荷（仅平台管理员）", rule="role")
    return scope


# The Web UI's page of a workflow, as a Referer names it (sent in full when the UI and this endpoint share an
# origin behind a proxy, or the UI's Referrer-Policy allows it; across origins browsers send the origin only).
_WORKFLOW_PAGE = re.compile(r"/namespaces/([^/]+)/workflows/([^/]+)")


def _where(request: Request) -> tuple[str, str | None]:
    """(namespace, workflow id or None) of a decode request, from what the UI sends: X-Namespace and the Referer."""
    namespace = request.headers.get("x-namespace", "")[:100] or request.app.state.settings.temporal_namespace
    found = _WORKFLOW_PAGE.search(urlsplit(request.headers.get("referer", "")).path)
    return namespace, unquote(found.group(2))[:200] if found else None


async def _record_decode(request: Request, scope: Scope, payloads: list[Payload]) -> None:
    """One audit record per decode request, committed before any plaintext leaves (no record, no answer)."""
    namespace, workflow_id = _where(request)
    key_ids = [p.metadata.get("encryption-key-id", b"?").decode(errors="replace")[:40] for p in payloads
               if p.metadata.get("encoding") == ENCODING]  # fmt: skip

    def write() -> None:
        with transaction(request.app.state.settings.db_url) as session:
            audit.record_decode(session=session, scope=scope, payloads=len(payloads), key_ids=key_ids,
                                namespace=namespace, workflow_id=workflow_id)  # fmt: skip

    await run_in_threadpool(write)


def _payloads(body: dict[str, Any]) -> list[Payload]:
    items = body.get("payloads")
    if not isinstance(items, list) or len(items) > MAX_PAYLOADS:
        raise Invalid(f"payloads：须是至多 {MAX_PAYLOADS} 项的列表", field="payloads", rule="payloads")
    try:
        return [json_format.ParseDict(item, Payload()) for item in items]
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise Invalid("payloads：不是 Temporal 载荷（metadata 与 data 须为 base64）", field="payloads",
                      rule="payload_format") from exc  # fmt: skip


def _answer(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


@router.options("/{operation}", include_in_schema=False)
def preflight(operation: str, request: Request) -> Response:
    response = Response(status_code=204)
    _cors(request, response)
    return response


@router.post("/decode", summary="解密工作流载荷（Temporal Web UI 编解码服务，仅平台管理员）",
             response_model=CodecPayloads)  # fmt: skip
async def decode(request: Request, response: Response, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    _cors(request, response)
    scope = _operator(request)
    codec = data_converter(request.app.state.settings).payload_codec
    assert codec is not None
    payloads = _payloads(body)
    try:
        decoded = await codec.decode(payloads)
    except CodecKeyError as exc:
        raise Invalid("payloads：载荷的密钥不在本平台的密钥目录中", field="payloads", rule="unknown_key") from exc
    except Exception as exc:  # a forged or damaged ciphertext (InvalidTag)
        if isinstance(exc, Invalid):
            raise
        raise Invalid("payloads：载荷已被篡改或已损坏，无法解密", field="payloads", rule="tampered") from exc
    await _record_decode(request, scope, payloads)
    return _answer(decoded)


@router.post("/encode", summary="加密工作流载荷（Temporal Web UI 编解码服务，仅平台管理员）",
             response_model=CodecPayloads)  # fmt: skip
async def encode(request: Request, response: Response, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    _cors(request, response)
    _operator(request)
    codec = data_converter(request.app.state.settings).payload_codec
    assert codec is not None
    return _answer(await codec.encode(_payloads(body)))
