"""Contracts of enterprise registration, push preferences (opt-out of policy pushes) and the notice list."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from schemas import uscc as uscc_rules
from schemas.phone import PhoneError, parse_phone
from schemas.portal import PayoutAccountIn
from schemas.text import BasisPoints, Day, Fen, Headcount, Name
from schemas.vocabulary import NoticeCategory, NoticeStatus


class EnterpriseRegister(BaseModel):
    """A newly registered enterprise (企业注册登记); the platform pushes the listed policies it matches."""

    uscc: str = Field(title="统一社会信用代码", examples=["91420500MA4F0XXXX0"])
    name: Name = Field(min_length=2, max_length=200, title="企业名称")
    region_code: str = Field(pattern=r"^\d{6,12}$", title="注册地行政区划代码")
    industry_code: str = Field("", max_length=8, title="国民经济行业代码（GB/T 4754）")
    size_class: Literal["large", "medium", "small", "micro"] = Field("small", title="企业规模")
    registered_on: Day | None = Field(None, title="成立日期")
    employees: Headcount | None = Field(None, title="从业人数")
    revenue_fen: Fen | None = Field(None, title="营业收入（分）")
    tax_paid_fen: Fen | None = Field(None, title="纳税额（分）")
    rd_ratio_bp: BasisPoints | None = Field(None, title="研发投入占比（基点）")
    tags: list[Name] = Field(default_factory=list, max_length=50, title="资质标签")
    contact_phone: str | None = Field(None, title="联系手机号（接收政策短信）")
    push_opt_out: bool = Field(False, title="不接收政策推送短信")
    payout_account: PayoutAccountIn | None = Field(None, title="收款账户", description="户名须与企业名称一致")

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, value: str) -> str:
        return uscc_rules.validate(value)

    @field_validator("contact_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return parse_phone(value).national
        except PhoneError as exc:
            raise ValueError(str(exc)) from None


class PushCountsOut(BaseModel):
    matched: int = Field(description="匹配的已上架资金事项数（注册推送）或企业数（上架推送）")
    queued: int = Field(description="已排队发送的推送短信条数")
    opted_out: int = Field(0, description="因已退订未推送")
    no_phone: int = Field(0, description="因未登记手机号未推送")


class EnterpriseRegistered(BaseModel):
    id: int
    uscc: str
    name: str
    contact_phone_masked: str | None
    push_opt_out: bool
    push: PushCountsOut


class PushPreferenceIn(BaseModel):
    opt_out: bool = Field(description="true：不再接收政策推送短信（办件通知照常发送）；false：恢复接收")


class PushPreferenceOut(BaseModel):
    uscc: str
    push_opt_out: bool
    opted_out_at: datetime | None
    withdrawn: int = Field(0, description="退订时撤回的待发送推送条数")
    note: str


class NoticeRow(BaseModel):
    """One notice as the enterprise's notice page lists it."""

    id: int
    case_id: int | None = None
    category: NoticeCategory
    category_label: str
    template_key: str
    content: str
    phone_masked: str | None
    status: NoticeStatus
    status_label: str
    created_at: datetime
    created_at_beijing: str
    fail_reason: str | None = None


# -- SMS statistics, failures and policy pushes (the staff API) ------------------------------------------------------


class SmsStatsRow(BaseModel):
    """One fund item's notices by status (a notice counts under its own or its case's item)."""

    fund_item_id: int
    fund_item_code: str
    fund_item_name: str
    total: int
    pending: int = Field(description="排队或发送中")
    sent: int
    delivered: int
    failed: int
    cancelled: int
    case_notices: int = Field(description="其中办件通知")
    pushes: int = Field(description="其中政策推送")


class SmsStatsOut(BaseModel):
    items: list[SmsStatsRow]


class SmsFailureOut(BaseModel):
    notice_id: int
    case_id: int | None
    enterprise_id: int | None
    stage: str = Field(description="通知模板（办件阶段）")
    category: NoticeCategory
    phone: str | None = Field(description="手机号（脱敏）")
    provider: str | None
    attempts: int
    reason: str | None
    created_at: str | None = Field(description="创建时间（ISO 8601）")


class SmsFailuresOut(BaseModel):
    fund_item_id: int
    failures: list[SmsFailureOut]


class PushKindOut(BaseModel):
    kind: str
    label: str
    pushes: int
    matched: int
    queued: int
    opted_out: int
    no_phone: int


class PushSummaryOut(BaseModel):
    fund_item_id: int | None = Field(description="所查资金事项（为空：调用者范围内的全部事项）")
    kinds: list[PushKindOut]


class PushScheduledOut(BaseModel):
    fund_item_id: int
    scheduled: Literal[True]
    note: str


# -- the answers each SMS provider expects to its pushes (receipts and replies), in its own format --------------------


class AliyunAck(BaseModel):
    code: int = Field(description="0：已接收；1：格式错误")
    msg: str


class TencentAck(BaseModel):
    result: int = Field(description="0：已接收；1：格式错误")
    errmsg: str


class HttpReceiptAck(BaseModel):
    ok: bool
    applied: int | None = Field(None, description="已记录的回执数")
    duplicate: int | None = Field(None, description="重复或过期的回执数")
    error: str | None = Field(None, description="格式错误的说明")
