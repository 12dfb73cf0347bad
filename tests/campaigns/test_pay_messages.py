"""The vouchers of a campaign's pay batch: validated as one list, an incomplete account failing alone."""

from __future__ import annotations

from activities.campaign import CampaignActivities
from db import crypto
from rules.indicators import voucher_details
from schemas.fund_items import FundingSource
from schemas.treasury import PaymentInstruction
from schemas.vocabulary import PaymentStatus

KEY = "ZnJvemVuLWV2aWRlbmNlLXRlc3Qta2V5LTMyYnl0ZXM="
SOURCES = [FundingSource(name="市级财政", share_bp=6000), FundingSource(name="区级财政", share_bp=4000)]


def _row(i: int, **changes: object) -> dict:
    row = {
        "voucher_no": f"ZD{i:012d}A01",
        "adm_div_code": "420500",
        "st_year": 2026,
        "pay_acct_no": "420500000000000001",
        "payee_acct_no_enc": crypto.encrypt(KEY, f"6222{i:014d}"),
        "payee_acct_name": f"宜昌测试企业{i}有限公司",
        "payee_acct_bank_name": "中国工商银行宜昌分行",
        "payee_acct_bank_no": "102526000018",
        "pay_amt_fen": 100_001 + i,
        "pay_summary_code": "30307",
        "fund_source": "市级财政",
    }
    return row | changes


def test_vouchers_of_a_batch_are_the_single_vouchers_and_an_incomplete_account_fails_alone() -> None:
    acts = CampaignActivities(db_url="sqlite://", fernet_key=KEY, treasury=None, pay_acct_no="420500000000000001",  # type: ignore[arg-type]
                              pay_acct_name="宜昌市财政局零余额账户", adm_div_code="420500")  # fmt: skip
    rows = [_row(1), _row(2, payee_acct_bank_no="1025"), _row(3), _row(4, payee_acct_no_enc=crypto.encrypt(KEY, "12"))]
    messages, invalid = acts._messages(rows, "宜昌市财政局零余额账户", "稳岗补贴", SOURCES)
    assert [m.VoucherNo for m in messages] == [rows[0]["voucher_no"], rows[2]["voucher_no"]]
    single = PaymentInstruction(
        VoucherNo=rows[0]["voucher_no"], AdmDivCode="420500", StYear=2026, PayAcctNo="420500000000000001",
        PayAcctName="宜昌市财政局零余额账户", PayeeAcctNo=f"6222{1:014d}", PayeeAcctName="宜昌测试企业1有限公司",
        PayeeAcctBankName="中国工商银行宜昌分行", PayeeAcctBankNo="102526000018", PayAmt=100_002, PaySummaryCode="30307",
        PaySummaryName="稳岗补贴", FundSource="市级财政", Details=voucher_details(SOURCES, 100_002),
    )  # fmt: skip
    assert messages[0] == single and messages[0].model_dump_json() == single.model_dump_json()
    assert messages[1].Details == voucher_details(SOURCES, 100_004)
    assert [d.Amt for d in messages[1].Details or []] == [60_002, 40_002]  # the largest remainder gets the fen left
    assert [(r.VoucherNo, r.Status, r.PaidAmt) for r in invalid] == [
        (rows[1]["voucher_no"], PaymentStatus.FAILED, 0),
        (rows[3]["voucher_no"], PaymentStatus.FAILED, 0),
    ]
    assert invalid[0].Reason == "收款账户信息不完整（PayeeAcctBankNo），未发送"
    assert invalid[1].Reason == "收款账户信息不完整（PayeeAcctNo），未发送"
    assert acts._messages([], "宜昌市财政局零余额账户", "稳岗补贴", SOURCES) == ([], [])
