"""The stand-in's own messages (fault rules, active returns) and how it parses and refuses a request body."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.treasury import VoucherNoStr

M = TypeVar("M", bound=BaseModel)

FaultKind = Literal[
    "timeout", "error_5xx", "duplicate_callback", "out_of_order", "passive_return", "fail", "statement_drop",
    "statement_amount",
]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultRule(_Contract):
    """A fault the stand-in injects, for one VoucherNo or (with Rate) for a share of all instructions.

    Request faults (timeout, error_5xx) hit requests naming the voucher (or, by rate, any instruction request),
    at most `Times` times; settlement faults
    (fail, passive_return, duplicate_callback, out_of_order) and statement faults shape what happens to it.
    """

    Kind: FaultKind
    VoucherNo: VoucherNoStr | None = None
    Rate: float | None = Field(default=None, ge=0, le=1)
    # Request faults fire this many times at most: default once for a voucher rule, unlimited for a rate rule.
    Times: int | None = Field(default=None, ge=1, le=1_000_000)
    Reason: str = Field(default="", max_length=200)
    DelaySeconds: float = Field(default=0, ge=0, le=600)
    Copies: int = Field(default=3, ge=2, le=20)
    AmountDelta: int = Field(default=0, strict=True)

    @model_validator(mode="after")
    def _target(self) -> FaultRule:
        if (self.VoucherNo is None) == (self.Rate is None):
            raise ValueError("exactly one of VoucherNo and Rate is required")
        return self


class FaultSettings(_Contract):
    """The stand-in's fault rules (replaces the previous set); Seed makes rate faults reproducible."""

    Rules: list[FaultRule] = Field(default_factory=list, max_length=10_000)
    Seed: int = 0


class ActiveReturn(_Contract):
    """The payee sent the money back (主动退回); recorded by the treasury like a return."""

    VoucherNo: VoucherNoStr
    Reason: str = Field(default="收款人主动退回", min_length=1, max_length=200)


class Refusal(Exception):
    """An answer other than success; carries its HTTP status and Chinese detail."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"detail": detail} | ({"errors": errors} if errors else {})


def parse(model: type[M], body: bytes, what: str) -> M:
    """Validate a request body; a 422 names every bad field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]} for e in exc.errors()
        ]
        raise Refusal(422, f"{what}字段不合法", errors[:50]) from exc
