"""Decision tokens: a human decision enters a workflow only with a short-lived token the API signed.

Whoever reaches the Temporal frontend directly (`temporal workflow update execute --name decide …`) can send any
update, recorded as any department. So every update that carries a person's decision must carry, in its
`zhida-decision` header, an HMAC over (workflow id, update name, actor, a digest of the decision, expiry) made with
a key the API and the workers read from the keys folder, never from Temporal or the database. The workflows' update
validators refuse a decision without a valid token (a worker interceptor runs the check before the workflow's own
validator); the client interceptor on every Zhida client adds it.

Determinism: validators do not run on replay, so the check (which reads the clock and a key) never affects a
history; the token itself holds only an expiry and a MAC (no personal data, not even the workflow id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.client import OutboundInterceptor, StartWorkflowUpdateInput, WorkflowUpdateHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

HEADER = "zhida-decision"
# Every update that carries a person's decision or request (review, payment, campaign, objections).
DECISION_UPDATES = frozenset(
    {
        "decide",
        "resubmit",
        "file_objection",
        "rule_objection",
        "withdraw",
        "revoke",
        "correct_account",
        "decide_budget",
        "finance_decision",
        "rule",
    }
)


def digest(arg: Any) -> str:
    """SHA-256 of the decision's canonical JSON (sorted keys), the same on the API and in the workflow."""
    value = arg.model_dump(mode="json") if hasattr(arg, "model_dump") else arg
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def actor_of(arg: Any) -> str:
    return str(getattr(arg, "actor", "") or "")


def _mac(key: bytes, workflow_id: str, update: str, actor: str, payload_digest: str, expires: int) -> str:
    message = "\x1f".join((workflow_id, update, actor, payload_digest, str(expires))).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, *, workflow_id: str, update: str, arg: Any, expires: int) -> str:
    """The token for one decision: `v1.<expiry unix seconds>.<hex HMAC-SHA256>`."""
    return f"v1.{expires}.{_mac(key, workflow_id, update, actor_of(arg), digest(arg), expires)}"


def check(key: bytes | None, token: str, *, workflow_id: str, update: str, arg: Any, now: float) -> str | None:
    """None when the token is valid for this decision now; otherwise the reason (Chinese) it is not."""
    if not key:
        return "工作节点未配置决定令牌密钥，拒绝一切决定"
    if not token:
        return "缺少决定令牌：审核决定只能经平台提交"
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
        return "决定令牌格式错误"
    expires = int(parts[1])
    expected = _mac(key, workflow_id, update, actor_of(arg), digest(arg), expires)
    if not hmac.compare_digest(parts[2], expected):
        return "决定令牌无效：签名与本办件、本操作、操作人或决定内容不符"
    if expires < now:
        return "决定令牌已过期，请重新提交"
    return None


class DecisionSigner(ClientInterceptor):
    """Client side: every decision update this client sends carries a fresh token."""

    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self.key = key
        self.ttl = ttl_seconds

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Signing(next, self)


class _Signing(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, signer: DecisionSigner) -> None:
        super().__init__(next)
        self.signer = signer

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> WorkflowUpdateHandle[Any]:
        if input.update in DECISION_UPDATES and len(input.args) == 1:
            token = sign(
                self.signer.key,
                workflow_id=input.id,
                update=input.update,
                arg=input.args[0],
                expires=int(time.time()) + self.signer.ttl,
            )
            input.headers = {**input.headers, HEADER: Payload(metadata={"encoding": b"binary/plain"},
                                                              data=token.encode())}  # fmt: skip
        return await super().start_workflow_update(input)


class DecisionGuard(Interceptor):
    """Worker side: refuses, before the workflow's own validator, any decision update without a valid token."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        key = self.key

        class _Guarded(_Checking):
            _key = key

        return _Guarded


def _wall_clock() -> float:
    """Real time, not workflow time: the API signed the expiry by the wall clock and the validator runs when the
    update arrives (never on replay), so reading it cannot make a history non-deterministic. (Workflow time would
    be wrong on a time-skipping server, and lags behind when a workflow task waits.)"""
    with workflow.unsafe.sandbox_unrestricted():
        return time.time()


class _Checking(WorkflowInboundInterceptor):
    _key: bytes | None = None

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        if input.update in DECISION_UPDATES:
            header = input.headers.get(HEADER)
            token = header.data.decode(errors="replace") if header is not None else ""
            reason = check(
                self._key,
                token,
                workflow_id=workflow.info().workflow_id,
                update=input.update,
                arg=input.args[0] if len(input.args) == 1 else None,
                now=_wall_clock(),
            )
            if reason is not None:
                raise ApplicationError(
                    reason,
                    {"field": "decision_token", "rule": "decision_token"},
                    type="decision_token",
                    non_retryable=True,
                )
        super().handle_update_validator(input)
