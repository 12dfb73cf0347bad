"""Client side of the treasury protocol (docs/treasury-protocol.md): submit and query signed instructions.

Synchronous on purpose: it runs inside sync Temporal activities. The treasury deduplicates by
VoucherNo, so every call may be retried after `TreasuryUnavailable`; `TreasuryRejected` is final.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from gateways.metrics import TREASURY_ERRORS
from gateways.signing import NonceCache, SignatureError, sign_headers, verify_headers
from schemas.treasury import (
    BatchItemResult,
    DailyStatement,
    InstructionBatch,
    InstructionBatchResult,
    InstructionQuery,
    InstructionQueryResult,
    InstructionResult,
    LedgerSummary,
    PaymentInstruction,
)

M = TypeVar("M", bound=BaseModel)
# Statuses that say "not now" rather than "never": the caller retries them like a network error.
_TRANSIENT_4XX = frozenset({408, 425, 429})


class TreasuryError(Exception):
    """Base of the treasury gateway's errors."""


class TreasuryUnavailable(TreasuryError):
    """Network failure, timeout, 5xx or an unreadable answer: retry later (submission is idempotent)."""


class TreasuryRejected(TreasuryError):
    """The treasury refused the request (4xx); resending the same request cannot succeed."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(f"{status_code}: {reason}")
        self.status_code = status_code
        self.reason = reason


class TreasuryGateway(Protocol):
    """What the payment activities need from the treasury, whatever carries it."""

    def submit(self, instruction: PaymentInstruction) -> InstructionResult: ...

    def query(self, voucher_no: str) -> InstructionResult | None: ...

    def submit_batch(self, instructions: Sequence[PaymentInstruction]) -> list[BatchItemResult]: ...

    def query_many(self, voucher_nos: Sequence[str]) -> dict[str, InstructionResult]: ...


class StatementSource(Protocol):
    """Where reconciliation gets the treasury's daily statement."""

    def statement(self, day: date) -> DailyStatement: ...


class HttpTreasuryGateway:
    """The treasury over HTTP with Ed25519-signed requests; thread-safe, one connection pool.

    With `treasury_public_pems`, every answer must also carry the treasury's signature.
    """

    def __init__(
        self,
        base_url: str,
        private_pem: str,
        key_id: str,
        timeout: float = 5.0,
        *,
        treasury_public_pems: Mapping[str, str] | None = None,
        window_seconds: int = 300,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._private_pem = private_pem
        self._key_id = key_id
        self._treasury_pems = dict(treasury_public_pems) if treasury_public_pems else None
        self._window = window_seconds
        self._nonces = NonceCache()
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpTreasuryGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, instruction: PaymentInstruction) -> InstructionResult:
        """Send one instruction: accepted when new, its current result when already known."""
        response = self._send("POST", "/v1/instructions", instruction.model_dump_json().encode())
        return self._parse(response, InstructionResult)

    def query(self, voucher_no: str) -> InstructionResult | None:
        """The instruction's current result, or None when the treasury never accepted it."""
        response = self._send("GET", f"/v1/instructions/{quote(voucher_no, safe='')}", b"", allow_404=True)
        return None if response.status_code == 404 else self._parse(response, InstructionResult)

    def submit_batch(self, instructions: Sequence[PaymentInstruction]) -> list[BatchItemResult]:
        """Send up to 1000 instructions at once; a reused VoucherNo is an item conflict, not an error."""
        body = InstructionBatch(Instructions=list(instructions)).model_dump_json().encode()
        return self._parse(
            self._send("POST", "/v1/instruction-batches", body), InstructionBatchResult
        ).Results

    def query_many(self, voucher_nos: Sequence[str]) -> dict[str, InstructionResult]:
        """Results of up to 1000 instructions by VoucherNo; unknown ones are left out."""
        body = InstructionQuery(VoucherNos=list(voucher_nos)).model_dump_json().encode()
        results = self._parse(self._send("POST", "/v1/instruction-queries", body), InstructionQueryResult)
        return {r.VoucherNo: r for r in results.Results}

    def statement(self, day: date) -> DailyStatement:
        """The treasury's signed daily statement (对账单) of one Beijing day."""
        return self._parse(self._send("GET", f"/v1/statements/{day.isoformat()}", b""), DailyStatement)

    def ledger(self) -> LedgerSummary:
        """The treasury's own paid and returned totals per paying account."""
        return self._parse(self._send("GET", "/v1/ledger", b""), LedgerSummary)

    def _send(self, method: str, path: str, body: bytes, *, allow_404: bool = False) -> httpx.Response:
        headers = sign_headers(self._private_pem, self._key_id, body)
        if body:
            headers["Content-Type"] = "application/json"
        try:
            response = self._client.request(method, path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            TREASURY_ERRORS.labels(kind="timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable").inc()
            raise TreasuryUnavailable(f"国库支付系统不可达: {exc!r}") from exc
        status = response.status_code
        if status >= 500 or status in _TRANSIENT_4XX:
            TREASURY_ERRORS.labels(kind="5xx" if status >= 500 else str(status)).inc()
            raise TreasuryUnavailable(f"国库支付系统暂不可用: HTTP {status}")
        self._check_signature(response)
        if status >= 400 and not (allow_404 and status == 404):
            TREASURY_ERRORS.labels(kind="4xx").inc()
            raise TreasuryRejected(status, _error_text(response))
        return response

    def _check_signature(self, response: httpx.Response) -> None:
        if self._treasury_pems is None:
            return
        try:
            verify_headers(
                self._treasury_pems,
                response.headers,
                response.content,
                window_seconds=self._window,
                nonces=self._nonces,
            )
        except SignatureError as exc:
            TREASURY_ERRORS.labels(kind="bad_signature").inc()
            # A forged or garbled answer says nothing about the instruction: ask again.
            raise TreasuryUnavailable(f"国库应答签名无效: {exc.reason}") from exc

    @staticmethod
    def _parse(response: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            TREASURY_ERRORS.labels(kind="bad_answer").inc()
            raise TreasuryUnavailable(f"国库应答格式错误: {exc.errors()[:3]}") from exc


def _error_text(response: httpx.Response) -> str:
    """The stand-in's `detail` (and field errors when present), else the raw body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(data, dict):
        return str(data)[:500]
    text = str(data.get("detail", data))
    errors = data.get("errors")
    if errors:
        text += "; " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors[:10])
    return text


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    *,
    treasury_public_pems: Mapping[str, str],
    window_seconds: int,
    nonces: NonceCache,
) -> InstructionResult:
    """Check a treasury callback's signature and parse its result.

    Raises SignatureError (answer 401) or pydantic.ValidationError (answer 422). Callbacks are
    delivered at least once: the receiver must treat a repeated final result as already applied.
    """
    verify_headers(treasury_public_pems, headers, body, window_seconds=window_seconds, nonces=nonces)
    return InstructionResult.model_validate_json(body)
