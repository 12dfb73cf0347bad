"""ISO 20022 files: generated pain.001 validates against the official XSD; pain.002 and camt.054 round-trip."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st

from gateways import iso20022
from gateways.iso20022 import TxStatus
from schemas.treasury import PaymentInstruction

NOW = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)


def instruction(n: int, **changes: object) -> PaymentInstruction:
    fields: dict[str, object] = {
        "VoucherNo": f"ZD{n:012d}A01",
        "AdmDivCode": "420500",
        "StYear": 2026,
        "PayAcctNo": "420500000000000001",
        "PayAcctName": "宜昌市财政局零余额账户",
        "PayeeAcctNo": "6222020200112233445",
        "PayeeAcctName": "宜昌三峡智造科技有限公司",
        "PayeeAcctBankName": "中国工商银行宜昌分行",
        "PayeeAcctBankNo": "102526000018",
        "PayAmt": 12_345_601,
        "PaySummaryCode": "30307",
        "PaySummaryName": "惠企政策奖补资金",
        "FundSource": "一般公共预算",
    }
    return PaymentInstruction(**(fields | changes))


def official(name: str) -> xmlschema.XMLSchema:
    """The XSD straight from the shipped file, independent of the module's own cache."""
    return xmlschema.XMLSchema(iso20022.XSD_DIR / f"{name}.xsd")


def test_pain001_validates_and_carries_chinese_names_and_yuan() -> None:
    batch = [instruction(1), instruction(2, PayAmt=1, PayeeAcctName="秭归县脐橙合作社"), instruction(3, PayAmt=100)]
    document = iso20022.build_pain001(batch, msg_id="ZD20261122A", created_at=NOW, initiating_party="宜昌市财政局")
    official(iso20022.PAIN001).validate(document.decode())

    data = official(iso20022.PAIN001).to_dict(document.decode())
    header = data["CstmrCdtTrfInitn"]["GrpHdr"]
    assert header["NbOfTxs"] == "3" and Decimal(str(header["CtrlSum"])) == Decimal("123457.02")
    [info] = data["CstmrCdtTrfInitn"]["PmtInf"]
    assert info["Dbtr"]["Nm"] == "宜昌市财政局零余额账户"
    txs = info["CdtTrfTxInf"]
    assert txs[1]["Cdtr"]["Nm"] == "秭归县脐橙合作社"
    assert txs[0]["Amt"]["InstdAmt"] == {"@Ccy": "CNY", "$": Decimal("123456.01")}
    assert txs[2]["Amt"]["InstdAmt"]["$"] == Decimal("1.00")
    assert txs[0]["CdtrAgt"]["FinInstnId"]["ClrSysMmbId"] == {"ClrSysId": {"Cd": "CNAPS"}, "MmbId": "102526000018"}
    assert '<InstdAmt Ccy="CNY">0.01</InstdAmt>' in document.decode()

    msg_id, parsed = iso20022.parse_pain001(document)
    assert msg_id == "ZD20261122A" and parsed == batch


def test_one_payment_block_per_paying_account() -> None:
    batch = [instruction(1), instruction(2, PayAcctNo="420500000000000002", PayAcctName="宜昌市财政局专户")]
    document = iso20022.build_pain001(batch, msg_id="M2", created_at=NOW, initiating_party="宜昌市财政局")
    infos = official(iso20022.PAIN001).to_dict(document.decode())["CstmrCdtTrfInitn"]["PmtInf"]
    assert [i["DbtrAcct"]["Id"]["Othr"]["Id"] for i in infos] == ["420500000000000001", "420500000000000002"]


def test_values_iso_cannot_carry_are_refused_with_the_field_named() -> None:
    too_long = instruction(1, PayeeAcctName="宜" * 141)
    with pytest.raises(iso20022.Iso20022Error, match="PayeeAcctName"):
        iso20022.build_pain001([too_long], msg_id="M3", created_at=NOW, initiating_party="财政")
    with pytest.raises(iso20022.Iso20022Error, match="校验失败"):
        iso20022.parse_pain001(b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'/>")
    with pytest.raises(iso20022.Iso20022Error, match="精度"):
        iso20022.fen("1.001")


@given(st.integers(min_value=0, max_value=10**12))
def test_fen_yuan_round_trip(amount: int) -> None:
    assert iso20022.fen(iso20022.yuan(amount)) == amount


def test_pain002_statuses_validate_and_parse() -> None:
    lines = [
        TxStatus("ZD000000000001A01", "accepted", treasury_ref="GK1", at=NOW),
        TxStatus("ZD000000000002A01", "paid", amount_fen=10_000_000, treasury_ref="GK2", at=NOW),
        TxStatus("ZD000000000003A01", "failed", reason="收款账号不存在", treasury_ref="GK3", at=NOW),
        TxStatus("ZD000000000004A01", "failed", reason="收款人户名不符" * 20, at=NOW),
    ]
    document = iso20022.build_pain002(
        lines, msg_id="STS1", created_at=NOW, original_msg_id="ZD20261122A", original_pmt_inf_id="ZD20261122A-1"
    )
    official(iso20022.PAIN002).validate(document.decode())
    original, parsed = iso20022.parse_pain002(document)
    assert original == "ZD20261122A"
    assert parsed[:3] == lines[:3]
    assert parsed[3].reason == "收款人户名不符" * 20  # long reasons are split over AddtlInf and joined back
    tx = official(iso20022.PAIN002).to_dict(document.decode())["CstmrPmtStsRpt"]["OrgnlPmtInfAndSts"][0]["TxInfAndSts"]
    assert [t["TxSts"] for t in tx] == ["ACCP", "ACSC", "RJCT", "RJCT"]
    assert tx[2]["StsRsnInf"][0]["Rsn"] == {"Cd": "AC01"} and tx[3]["StsRsnInf"][0]["Rsn"] == {"Cd": "BE01"}


def test_camt054_returns_validate_and_parse() -> None:
    lines = [
        TxStatus("ZD000000000005A01", "returned", 10_000_000, "收款人户名不符", "GK5", NOW, "passive"),
        TxStatus("ZD000000000006A01", "returned", 1, "收款人主动退回", "GK6", NOW, "active"),
    ]
    document = iso20022.build_camt054(lines, msg_id="NTF1", created_at=NOW, account_no="420500000000000001")
    official(iso20022.CAMT054).validate(document.decode())
    assert iso20022.parse_camt054(document) == lines


def test_a_foreign_pain002_with_other_codes_parses() -> None:
    document = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<GrpHdr><MsgId>BANK-1</MsgId><CreDtTm>2026-11-22T11:00:00+08:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>ZD20261122A</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>ZD20261122A-1</OrgnlPmtInfId>
<TxInfAndSts><OrgnlEndToEndId>ZD000000000007A01</OrgnlEndToEndId><TxSts>ACTC</TxSts></TxInfAndSts>
<TxInfAndSts><OrgnlEndToEndId>ZD000000000008A01</OrgnlEndToEndId><TxSts>RJCT</TxSts>
<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>账户已销户</AddtlInf></StsRsnInf></TxInfAndSts>
</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>""".encode()
    official(iso20022.PAIN002).validate(document.decode())
    _, parsed = iso20022.parse_pain002(document)
    assert [(p.status, p.reason) for p in parsed] == [("accepted", ""), ("failed", "账户已销户")]
