"""Contracts with the treasury (国库集中支付): payment instructions and their results.

Field names follow the payment voucher (支付凭证) conventions, so they are PascalCase on purpose.
Money is integer fen (分).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from schemas.vocabulary import PaymentStatus, ReturnKind

# The treasury knows an instruction only once it accepted it: `created` is ours alone.
InstructionStatus = Literal[PaymentStatus.ACCEPTED, PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.RETURNED]
# Largest single instruction: 10 billion yuan; anything above is a units mistake (yuan vs fen).
MAX_PAY_AMT_FEN = 10**12
MAX_BATCH = 1000

VoucherNoStr = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
AcctNoStr = Annotated[str, Field(pattern=r"^\d{6,32}$")]
NameStr = Annotated[str, Field(min_length=1, max_length=200)]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstructionDetail(_Contract):
    """One DetailList line of a voucher: the part of the payment that one funding source's indicator (指标) carries
    (市区分担; the split rule is rules/indicators), with the indicator's codes."""

    Source: str = Field(min_length=1, max_length=64, description="资金来源", examples=["市级财政"])
    IndicatorNo: str | None = Field(default=None, max_length=64, description="指标文号")
    BudgetLevel: str | None = Field(default=None, max_length=4, description="预算级次")
    ExpFuncCode: str | None = Field(default=None, pattern=r"^\d{3,7}$", description="支出功能分类科目")
    GovExpEcoCode: str | None = Field(default=None, pattern=r"^\d{3,5}$", description="政府经济分类")
    DepExpEcoCode: str | None = Field(default=None, pattern=r"^\d{3,5}$", description="部门经济分类")
    FundTypeCode: str | None = Field(default=None, max_length=4, description="资金性质")
    Amt: int = Field(ge=0, le=MAX_PAY_AMT_FEN, strict=True, description="本来源金额（分）")


class PaymentInstruction(_Contract):
    """One payment voucher (支付凭证) from the 零余额账户 to an enterprise's account."""

    VoucherNo: VoucherNoStr = Field(examples=["ZD2026YC000123-1"])
    AdmDivCode: str = Field(pattern=r"^\d{6,12}$", examples=["420500"])
    StYear: int = Field(ge=2000, le=2100, examples=[2026])
    PayAcctNo: AcctNoStr = Field(description="零余额账户账号", examples=["420500000000000001"])
    PayAcctName: NameStr = Field(examples=["宜昌市财政局零余额账户"])
    PayeeAcctNo: AcctNoStr = Field(examples=["6222020200112233445"])
    PayeeAcctName: NameStr = Field(examples=["宜昌某某科技有限公司"])
    PayeeAcctBankName: NameStr = Field(examples=["中国工商银行宜昌分行"])
    PayeeAcctBankNo: str = Field(
        pattern=r"^\d{12}$", description="收款行联行号 (CNAPS)", examples=["102526000018"]
    )
    PayAmt: int = Field(gt=0, le=MAX_PAY_AMT_FEN, strict=True, description="金额（分）", examples=[10000000])
    PaySummaryCode: str = Field(min_length=1, max_length=16, examples=["30307"])
    PaySummaryName: str = Field(min_length=1, max_length=100, examples=["惠企政策奖补资金"])
    FundSource: str = Field(min_length=1, max_length=64, examples=["一般公共预算"])
    # Omitted for bulk campaigns, which poll with a batch query rather than take one callback per payee.
    NotifyUrl: str | None = Field(
        default=None, max_length=500, pattern=r"^https?://\S+$", description="结果回调地址"
    )
    # The voucher channel's extra fields; the other channels ignore them.
    AgencyCode: str | None = Field(default=None, max_length=32, description="预算单位（主管部门）代码")
    AgencyName: str | None = Field(default=None, max_length=200, description="预算单位名称")
    Details: list[InstructionDetail] | None = Field(
        default=None, min_length=1, max_length=20, description="每个资金来源一行（DetailList），合计等于PayAmt"
    )

    @model_validator(mode="after")
    def _details_sum(self) -> PaymentInstruction:
        details = self.Details
        if details is not None:
            total = details[0].Amt if len(details) == 1 else sum(d.Amt for d in details)
            if total != self.PayAmt:
                raise ValueError(f"DetailList 金额合计 {total} 分不等于 PayAmt {self.PayAmt} 分")
        return self


_FINAL = PaymentStatus.finals()
# Many instructions validated in one call (a campaign's batch): the same checks as one model per instruction.
INSTRUCTION_LIST: TypeAdapter[list[PaymentInstruction]] = TypeAdapter(list[PaymentInstruction])


class InstructionResult(_Contract):
    """Where an instruction stands at the treasury; PaidAmt is what reached the payee and stayed there."""

    VoucherNo: VoucherNoStr
    Status: InstructionStatus
    PaidAmt: int = Field(ge=0, strict=True, description="实付金额（分）")
    Reason: str = Field(default="", max_length=500, description="失败或退票原因")
    TreasuryRef: str = Field(default="", max_length=64, description="国库流水号")
    AcceptedAt: datetime
    SettledAt: datetime | None = None
    # Set only when Status is returned: the money reached the payee at SettledAt and came back at ReturnedAt.
    ReturnType: ReturnKind | None = Field(default=None, description="passive 退票 / active 主动退回")
    ReturnedAmt: int = Field(default=0, ge=0, strict=True, description="退回金额（分）")
    ReturnedAt: datetime | None = None

    @model_validator(mode="after")
    def _amount_matches_status(self) -> InstructionResult:
        status = self.Status  # every result of a campaign's batch passes here: each attribute is read once
        if status != PaymentStatus.PAID and self.PaidAmt != 0:
            raise ValueError(f"PaidAmt must be 0 when Status is {status}")
        if (status in _FINAL) != (self.SettledAt is not None):
            raise ValueError("SettledAt is set exactly when Status is final")
        returned = status == PaymentStatus.RETURNED
        if returned != (self.ReturnedAt is not None) or returned != (self.ReturnType is not None):
            raise ValueError("ReturnType and ReturnedAt are set exactly when Status is returned")
        if returned != (self.ReturnedAmt > 0):
            raise ValueError("ReturnedAmt is positive exactly when Status is returned")
        return self

    @property
    def final(self) -> bool:
        return self.Status in _FINAL


class InstructionBatch(_Contract):
    """Many instructions in one signed request: how campaigns reach thousands of payees per second."""

    Instructions: list[PaymentInstruction] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItemResult(_Contract):
    """One instruction of a batch: new (accepted), a resend (duplicate), or a reused VoucherNo (conflict)."""

    VoucherNo: VoucherNoStr
    Outcome: Literal["accepted", "duplicate", "conflict"]
    Result: InstructionResult | None = None
    Reason: str = ""


class InstructionBatchResult(_Contract):
    Results: list[BatchItemResult]


class InstructionQuery(_Contract):
    """Ask for many instructions at once (reconciliation, or when callbacks are late)."""

    VoucherNos: list[VoucherNoStr] = Field(min_length=1, max_length=MAX_BATCH)


class InstructionQueryResult(_Contract):
    """Results of the known instructions; unknown voucher numbers are simply absent."""

    Results: list[InstructionResult]


class LedgerAccount(_Contract):
    """Totals of one paying account: gross paid, gross returned, and what stayed paid (NetAmt)."""

    PayAcctNo: str
    PaidAmt: int
    PaidCount: int
    ReturnedAmt: int = 0
    ReturnedCount: int = 0
    NetAmt: int = 0


class LedgerSummary(_Contract):
    """The stand-in's own paid totals per paying account, to reconcile against."""

    Accounts: list[LedgerAccount]


StatementLineType = Literal[PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.RETURNED]


class StatementLine(_Contract):
    """One line of the treasury's daily statement (对账单): a settlement, or a return as its own line."""

    VoucherNo: VoucherNoStr
    LineType: StatementLineType
    PayAcctNo: str
    PayAmt: int = Field(ge=0, strict=True, description="指令金额（分）")
    Amount: int = Field(ge=0, strict=True, description="本行资金金额（分）：支付为实付，退回为退回额，失败为0")
    Reason: str = ""
    TreasuryRef: str = ""
    SettledAt: datetime = Field(description="本行发生时间：支付/失败为清算时间，退回为退回时间")


class DailyStatement(_Contract):
    """Every line the treasury settled on one day (Asia/Shanghai), with totals to check the lines against."""

    StatementDate: date
    Lines: list[StatementLine]
    LineCount: int
    TotalPaidAmt: int
    TotalReturnedAmt: int
