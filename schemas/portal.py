"""Contracts of the enterprise side (企业端): the payout account, the policy calculator and the application calendar."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from schemas.vocabulary import FundItemMode


class PayoutAccountIn(BaseModel):
    """The enterprise's payout account (收款账户); kept encrypted, shown masked. 户名 must be the registered name."""

    model_config = ConfigDict(str_strip_whitespace=True)

    acct_name: str = Field(min_length=2, max_length=200, title="户名", description="须与企业登记名称一致")
    acct_no: str = Field(pattern=r"^\d{6,32}$", title="账号", description="6 至 32 位数字")
    bank_name: str = Field(min_length=2, max_length=200, title="开户行")
    bank_code: str = Field(pattern=r"^\d{12}$", title="联行号", description="12 位数字")


class PayoutAccountOut(BaseModel):
    acct_name: str | None
    acct_no_masked: str | None
    bank_name: str | None
    bank_code: str | None


class Shortfall(BaseModel):
    """One condition the enterprise does not (or cannot yet be shown to) meet, and by how much (不足之处)."""

    field: str
    label: str
    text: str = Field(description="要求、实际值与差距，中文")
    missing: bool = Field(description="档案暂无该项数据，无法判断")


class CalculatorRow(BaseModel):
    """One listed fund item for one enterprise."""

    code: str
    name: str
    mode: FundItemMode
    mode_label: str
    department_name: str
    matched: bool
    amount_fen: int | None = Field(description="预计金额（整数分）；未匹配或需人工核定时为空")
    amount_text: str = Field(description="金额的计算过程")
    shortfalls: list[Shortfall] = Field(default_factory=list)
    window_start: date | None = None
    window_end: date | None = None
    open_now: bool = Field(description="今天在申报期内（免申即享事项无申报期）")
    days_left: int | None = Field(None, description="距申报截止的天数（含今天）")


class CalculatorOut(BaseModel):
    uscc: str
    enterprise_name: str
    today: date
    matched: int
    expected_total_fen: int
    items: list[CalculatorRow]
