"""Answers of the operational endpoints, declared so clients and the schemathesis run can check them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class HealthOut(BaseModel):
    status: Literal["ok"] = Field(description="进程存活")


class BrokenLinkOut(BaseModel):
    case_id: int | None = Field(description="断裂所在的办件（审计记录链断裂时为空）")
    seq: int | None = Field(description="第一处断裂的事件序号（链头不符时为空）")
    problem: str


class AuditVerifyOut(BaseModel):
    ok: bool = Field(description="全部审计链（办件事件与审计记录）完好")
    cases: int = Field(ge=0, description="校验的办件数")
    records: int = Field(ge=0, description="校验的审计记录数（登录、配置、档案、决定、导出）")
    broken: list[BrokenLinkOut]


class CallbackAck(BaseModel):
    """The answer the treasury expects to a callback it delivered (duplicates and stale results included)."""

    code: Literal["OK"]
    VoucherNo: str
    outcome: Literal["applied", "unchanged", "unknown"] = Field(
        description="applied：已记录；unchanged：重复或过期；unknown：非本系统凭证"
    )


class ReadyOut(BaseModel):
    """Readiness: 200 when the database and Temporal answer, 503 (same body) otherwise."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="每项依赖：ok，或 error: 原因")


class CodecPayload(BaseModel):
    """A Temporal payload in its protobuf JSON form (base64 `data`, base64 values in `metadata`); fields a newer
    Temporal adds (`externalPayloads`) pass through unchanged."""

    model_config = ConfigDict(extra="allow")
    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class CodecPayloads(BaseModel):
    """The body and the answer of the Temporal Web UI's codec server (/codec/encode, /codec/decode)."""

    payloads: list[CodecPayload]
