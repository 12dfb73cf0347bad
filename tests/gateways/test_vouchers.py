"""The V2.0 voucher layout: 财政直接支付凭证 with one DetailList line per funding source, receipts, signed files; GBK,
yuan with two decimals and 大写, every document checked against our published XSD (gateways/xsd)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import xmlschema

from gateways import sm2, vouchers
from gateways.signing import SignatureError
from gateways.treasury import TreasuryRejected
from gateways.treasury_vouchers import VoucherTreasuryGateway
from rules.indicators import voucher_details
from schemas.fund_items import FundingSource
from schemas.treasury import PaymentInstruction
from schemas.vocabulary import PaymentStatus, ReturnKind

SOURCES = [
    FundingSource(
        name="市级财政", share_bp=6000, indicator_no="宜财企指〔2026〕31号", budget_level="3",
        exp_func_code="2150805", gov_eco_code="50799", dep_eco_code="31299", fund_type_code="1",
    ),
    FundingSource(
        name="区级财政", share_bp=4000, indicator_no="伍财企指〔2026〕7号", budget_level="4",
        exp_func_code="2150805", gov_eco_code="50799", dep_eco_code="31299", fund_type_code="1",
    ),
]  # fmt: skip
ZHIDA = sm2.Sm2Signer(sm2.new_private_hex(), "zhida-sm2-1")
TREASURY = sm2.Sm2Signer(sm2.new_private_hex(), "treasury-sm2-1")


def instruction(amount: int = 12_345_601, **changes: object) -> PaymentInstruction:
    fields: dict[str, object] = dict(
        VoucherNo="ZD000000000042A01", AdmDivCode="420500", StYear=2026, PayAcctNo="420500000000000001",
        PayAcctName="宜昌市财政局零余额账户", PayeeAcctNo="6222020200112233445", PayeeAcctName="宜昌某某科技有限公司",
        PayeeAcctBankName="中国工商银行宜昌分行", PayeeAcctBankNo="102526000018", PayAmt=amount,
        PaySummaryCode="30307", PaySummaryName="技术改造项目补助", FundSource="市级财政",
        Details=voucher_details(SOURCES, amount),
    )  # fmt: skip
    return PaymentInstruction.model_validate(fields | changes)


def test_a_payment_voucher_has_one_detail_line_per_source_in_gbk_yuan_and_capitals() -> None:
    document = vouchers.build_payment_voucher(
        instruction(), vou_date=date(2026, 12, 1), pay_acct_bank_name="中国人民银行宜昌市中心支行（国库）"
    )
    assert document.startswith(b'<?xml version="1.0" encoding="GBK"?>')
    text = document.decode("gbk")
    # Validated with a plain xmlschema call too, not only through our helper.
    xmlschema.XMLSchema(vouchers.XSD_DIR / "zhida-voucher-5201.xsd").validate(text)
    assert "<VtCode>5201</VtCode>" in text and "<VouDate>20261201</VouDate>" in text
    assert (
        "<PayAmt>123456.01</PayAmt>" in text and "<PayAmtCapital>壹拾贰万叁仟肆佰伍拾陆元零壹分</PayAmtCapital>" in text
    )
    # 60% / 40% of 12,345,601 fen: 7,407,360.6 and 4,938,240.4 → the larger fraction takes the fen.
    assert re.findall(r"<Amt>([\d.]+)</Amt>", text) == ["74073.61", "49382.40"]
    assert re.findall(r"<Hold1>(.*?)</Hold1>", text) == ["宜财企指〔2026〕31号", "伍财企指〔2026〕7号"]
    assert "<ExpFuncName>科技型中小企业技术创新基金</ExpFuncName>" in text
    assert "<GovExpEcoCode>50799</GovExpEcoCode>" in text and "<DepExpEcoCode>31299</DepExpEcoCode>" in text
    order = re.findall(r"<(\w+)>", text.split("<DetailList>")[0])
    assert order[:8] == ["Voucher", "Id", "AdmDivCode", "StYear", "VtCode", "VouDate", "VoucherNo", "FundTypeCode"]
    parsed = vouchers.parse_payment_voucher(document)
    assert parsed == instruction()


def test_a_voucher_without_indicator_codes_or_with_text_outside_gbk_is_refused() -> None:
    bare = instruction(Details=None)
    with pytest.raises(vouchers.VoucherError, match="未填资金性质"):
        vouchers.build_payment_voucher(bare, vou_date=date(2026, 12, 1), pay_acct_bank_name="国库")
    with pytest.raises(vouchers.VoucherError, match="GBK"):
        vouchers.build_payment_voucher(
            instruction(PayeeAcctName="宜昌😀科技有限公司"), vou_date=date(2026, 12, 1), pay_acct_bank_name="国库"
        )
    with pytest.raises(vouchers.VoucherError, match="GBK"):
        vouchers.validate("5201", b'<?xml version="1.0" encoding="UTF-8"?><Voucher/>')


def test_a_signed_file_opens_only_with_the_right_key_and_untouched_bytes() -> None:
    document = vouchers.build_payment_voucher(instruction(), vou_date=date(2026, 12, 1), pay_acct_bank_name="国库")
    data = vouchers.build_file([("5201", "ZD000000000042A01", "420500", 2026, document)], ZHIDA)
    xmlschema.XMLSchema(vouchers.XSD_DIR / "zhida-voucher-envelope.xsd").validate(data.decode("gbk"))
    verifiers = {ZHIDA.key_id: sm2.Sm2Verifier(ZHIDA.public_hex)}
    [signed] = vouchers.open_file(data, verifiers)
    assert signed.document == document and signed.key_id == "zhida-sm2-1"
    with pytest.raises(SignatureError):
        vouchers.open_file(data, {ZHIDA.key_id: sm2.Sm2Verifier(TREASURY.public_hex)})
    with pytest.raises(SignatureError):
        vouchers.open_file(data, {})
    forged = document.replace(b"123456.01", b"923456.01")
    tampered = data.replace(base64.b64encode(document), base64.b64encode(forged))
    with pytest.raises(SignatureError):
        vouchers.open_file(tampered, verifiers)


def _receipt(status: PaymentStatus, **changes: object) -> vouchers.Receipt:
    fields: dict[str, object] = dict(
        voucher_no="ZD000000000042A01", status=status, treasury_ref="GK20261201C26873DC9B37", adm_div_code="420500",
        st_year=2026, pay_acct_no="420500000000000001", pay_amt_fen=12_345_601,
        at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
    )  # fmt: skip
    return vouchers.Receipt(**(fields | changes))  # type: ignore[arg-type]


def test_receipts_round_trip_and_fold_into_the_instruction_result(tmp_path: Path) -> None:
    ack = _receipt(PaymentStatus.ACCEPTED)
    paid = _receipt(PaymentStatus.PAID, paid_fen=12_345_601, at=datetime(2026, 12, 1, 2, 1, tzinfo=UTC))
    back = _receipt(
        PaymentStatus.RETURNED, reason="收款人户名不符", return_kind=ReturnKind.PASSIVE, returned_fen=12_345_601,
        returned_at=datetime(2026, 12, 2, 1, 0, tzinfo=UTC),
    )  # fmt: skip
    for receipt in (ack, paid, back):
        document = vouchers.build_receipt(receipt)
        xmlschema.XMLSchema(vouchers.XSD_DIR / "zhida-voucher-receipt.xsd").validate(document.decode("gbk"))
        assert vouchers.parse_receipt(document) == receipt
    assert b"<PaidAmtCapital>\xd2\xbc" in vouchers.build_receipt(paid)  # 壹… in GBK
    # The gateway reads signed receipt files, in order, and refuses one signed by anybody else.
    gateway = VoucherTreasuryGateway(
        tmp_path, signer=ZHIDA, treasury_verifiers={TREASURY.key_id: sm2.Sm2Verifier(TREASURY.public_hex)}
    )
    (tmp_path / "receipts").mkdir()
    for n, (receipt, signer) in enumerate([(ack, TREASURY), (paid, TREASURY), (back, ZHIDA)]):
        doc = vouchers.build_receipt(receipt)
        files = [(receipt.vt_code, receipt.receipt_no, "420500", 2026, doc)]
        (tmp_path / "receipts" / f"{n}.xml").write_bytes(vouchers.build_file(files, signer))
    result = gateway.query("ZD000000000042A01")
    assert result is not None and (result.Status, result.PaidAmt) == (PaymentStatus.PAID, 12_345_601)
    assert [p.name for p in (tmp_path / "receipts" / "rejected").iterdir()] == ["2.xml"]
    with pytest.raises(TreasuryRejected, match="未填资金性质"):
        gateway.submit(instruction(VoucherNo="ZD000000000043A01", Details=None))
