"""Zhida-signed calls to the stand-in's admin endpoints: what tests and operators use to inject faults."""

from __future__ import annotations

from datetime import date

import httpx

from gateways.signing import sign_headers
from schemas.treasury import DailyStatement, InstructionResult, LedgerSummary
from standins.treasury.contracts import ActiveReturn, FaultRule, FaultSettings
from standins.treasury.ledger import REASON_ACTIVE_RETURN


class StandInAdmin:
    """Zhida-signed calls to the stand-in's admin endpoints: what tests and operators use to inject faults."""

    def __init__(self, base_url: str, private_pem: str, key_id: str, timeout: float = 10.0) -> None:
        self._pem, self._kid = private_pem, key_id
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> StandInAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: bytes = b"") -> httpx.Response:
        headers = sign_headers(self._pem, self._kid, body) | {"Content-Type": "application/json"}
        response = self._client.request(method, path, content=body, headers=headers)
        response.raise_for_status()
        return response

    def set_faults(self, *rules: FaultRule, seed: int = 0) -> FaultSettings:
        """Replace the fault rules (none: clear them)."""
        body = FaultSettings(Rules=list(rules), Seed=seed).model_dump_json().encode()
        return FaultSettings.model_validate_json(self._call("PUT", "/admin/faults", body).content)

    def active_return(self, voucher_no: str, reason: str = REASON_ACTIVE_RETURN) -> InstructionResult:
        body = ActiveReturn(VoucherNo=voucher_no, Reason=reason).model_dump_json().encode()
        return InstructionResult.model_validate_json(self._call("POST", "/admin/active-returns", body).content)

    def injected(self) -> dict[str, int]:
        """How many times each fault kind fired since the rules were last set."""
        return self._call("GET", "/admin/fault-stats").json()["Injected"]

    def ledger(self) -> LedgerSummary:
        return LedgerSummary.model_validate_json(self._call("GET", "/v1/ledger").content)

    def statement(self, day: date) -> DailyStatement:
        return DailyStatement.model_validate_json(self._call("GET", f"/v1/statements/{day.isoformat()}").content)

