"""Treasury electronic vouchers (国库集中支付电子化管理接口报文规范 V2.0): the 财政直接支付凭证 (5201) Zhida sends,
the receipts (回单) the agent bank returns, and the signed file that carries them.

- Every document is XML in GBK, as V2.0 prescribes; amounts are yuan with two decimals, with 大写 beside the amount
  (rules.money.to_capitals); field names and order follow the V2.0 layout.
- Each document is checked against Zhida's own published schema (gateways/xsd/zhida-voucher-*.xsd) when it is built
  and when it is read.
- A file (root MOF) carries several documents, each as the base64 of its exact GBK bytes with the sender's SM2
  signature over those bytes (gateways.sm2); a reader verifies every signature before it trusts a document.

Python's XML parser does not read multi-byte encodings, so a document is decoded from GBK here and parsed as text.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import xmlschema

from gateways.signing import SignatureError, Signer, Verifier
from rules.money import to_capitals
from schemas.codelists import code_list
from schemas.treasury import InstructionDetail, PaymentInstruction
from schemas.vocabulary import PaymentStatus, ReturnKind

XSD_DIR = Path(__file__).resolve().parent / "xsd"
ENCODING = "GBK"
SIGNATURE_ALGORITHM = "SM2-SM3"
# Voucher types (VtCode). 5201 is V2.0's 财政直接支付凭证; the receipt codes are Zhida's assignment (see the XSD).
VT_PAYMENT = "5201"
VT_ACK = "2301"  # 受理回执
VT_RECEIPT = "2302"  # 财政直接支付凭证回单: paid or failed
VT_RETURN = "2303"  # 退票回单: passive (退票) or active (主动退回) return
PAY_TYPE = ("1", "财政直接支付")
# PayResultCode of a receipt.
RESULT_CODES = {
    "0": ("已受理", PaymentStatus.ACCEPTED),
    "1": ("支付成功", PaymentStatus.PAID),
    "2": ("支付失败", PaymentStatus.FAILED),
    "3": ("退票", PaymentStatus.RETURNED),
    "4": ("主动退回", PaymentStatus.RETURNED),
}
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9_-]+)[\"'][^>]*\?>")
_FEN = Decimal("0.01")


class VoucherError(ValueError):
    """A voucher that cannot be built (missing indicator codes, text outside GBK) or that fails its schema."""


# ----------------------------------------------------------------------------------------------------- common


@lru_cache(maxsize=4)
def schema(kind: str) -> xmlschema.XMLSchema:
    """Zhida's schema of `kind` ("5201", "receipt", "envelope"), parsed once."""
    return xmlschema.XMLSchema(XSD_DIR / f"zhida-voucher-{kind}.xsd")


def decode(document: bytes) -> str:
    """The text of a GBK document; refuses another declared encoding."""
    found = _DECLARATION.match(document)
    if found is None or found.group(1).decode().upper() != ENCODING:
        raise VoucherError('凭证报文须声明 GBK 编码（<?xml version="1.0" encoding="GBK"?>）')
    try:
        return document.decode("gbk")
    except UnicodeDecodeError as exc:
        raise VoucherError(f"凭证报文不是有效的GBK编码: {exc}") from exc


def validate(kind: str, document: bytes) -> str:
    """Check a document against its schema; returns its text."""
    text = decode(document)
    try:
        schema(kind).validate(text)
    except xmlschema.XMLSchemaException as exc:
        raise VoucherError(f"凭证报文 {kind} 校验失败: {str(exc)[:500]}") from exc
    return text


def yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(_FEN))


def fen(text: str) -> int:
    value = Decimal(text.strip()) * 100
    if value != value.to_integral_value():
        raise VoucherError(f"金额 {text} 精度超过分")
    return int(value)


def _encode(root: ET.Element, kind: str) -> bytes:
    text = ET.tostring(root, encoding="unicode")
    try:
        document = f'<?xml version="1.0" encoding="{ENCODING}"?>\n{text}'.encode("gbk")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise VoucherError(f"凭证内容含GBK无法表示的字符“{bad}”，请更正后重发") from exc
    validate(kind, document)
    return document


def _add(parent: ET.Element, tag: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, tag).text = text


def _text(element: ET.Element, tag: str) -> str:
    found = element.find(tag)
    if found is None or found.text is None:
        raise VoucherError(f"凭证缺少 {tag}")
    return found.text


def _opt(element: ET.Element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None else found.text


def _name(key: str, code: str | None, field: str, source: str) -> str:
    if not code:
        raise VoucherError(f"资金来源“{source}”未填{field}，不能生成财政直接支付凭证")
    name = code_list(key).name_of(code)
    if name is None:
        raise VoucherError(f"资金来源“{source}”的{field}“{code}”不在代码表中")
    return name


# ---------------------------------------------------------------------------------------- 5201 payment voucher


def build_payment_voucher(instruction: PaymentInstruction, *, vou_date: date, pay_acct_bank_name: str) -> bytes:
    """The GBK 财政直接支付凭证 of one payment: one DetailList line per funding source."""
    details = instruction.Details or [InstructionDetail(Source=instruction.FundSource, Amt=instruction.PayAmt)]
    fund_type = details[0].FundTypeCode
    root = ET.Element("Voucher")
    _add(root, "Id", instruction.VoucherNo)
    _add(root, "AdmDivCode", instruction.AdmDivCode)
    _add(root, "StYear", str(instruction.StYear))
    _add(root, "VtCode", VT_PAYMENT)
    _add(root, "VouDate", vou_date.strftime("%Y%m%d"))
    _add(root, "VoucherNo", instruction.VoucherNo)
    _add(root, "FundTypeCode", fund_type or "")
    _add(root, "FundTypeName", _name("fund_type", fund_type, "资金性质", details[0].Source))
    _add(root, "PayTypeCode", PAY_TYPE[0])
    _add(root, "PayTypeName", PAY_TYPE[1])
    _add(root, "AgencyCode", instruction.AgencyCode)
    _add(root, "AgencyName", instruction.AgencyName)
    _add(root, "PayAcctNo", instruction.PayAcctNo)
    _add(root, "PayAcctName", instruction.PayAcctName)
    _add(root, "PayAcctBankName", pay_acct_bank_name)
    _add(root, "PayeeAcctNo", instruction.PayeeAcctNo)
    _add(root, "PayeeAcctName", instruction.PayeeAcctName)
    _add(root, "PayeeAcctBankName", instruction.PayeeAcctBankName)
    _add(root, "CurrencyCode", "CNY")
    _add(root, "CurrencyName", "人民币")
    _add(root, "PayeeAcctBankNo", instruction.PayeeAcctBankNo)
    _add(root, "PaySummaryCode", instruction.PaySummaryCode)
    _add(root, "PaySummaryName", instruction.PaySummaryName)
    _add(root, "PayAmt", yuan(instruction.PayAmt))
    _add(root, "PayAmtCapital", to_capitals(instruction.PayAmt))
    detail_list = ET.SubElement(root, "DetailList")
    for number, detail in enumerate(details, start=1):
        line = ET.SubElement(detail_list, "Detail")
        _add(line, "Id", f"{instruction.VoucherNo}-{number}")
        _add(line, "VoucherBillId", instruction.VoucherNo)
        _add(line, "ExpFuncCode", detail.ExpFuncCode or "")
        _add(line, "ExpFuncName", _name("exp_func", detail.ExpFuncCode, "功能分类科目", detail.Source))
        _add(line, "Amt", yuan(detail.Amt))
        _add(line, "VoucherDetailNo", str(number))
        _add(line, "GovExpEcoCode", detail.GovExpEcoCode or "")
        _add(line, "GovExpEcoName", _name("gov_eco", detail.GovExpEcoCode, "政府经济分类", detail.Source))
        _add(line, "DepExpEcoCode", detail.DepExpEcoCode or "")
        _add(line, "DepExpEcoName", _name("dep_eco", detail.DepExpEcoCode, "部门经济分类", detail.Source))
        _add(line, "Hold1", detail.IndicatorNo or "无指标文号")
        _add(line, "Hold2", detail.Source)
        _add(line, "Hold3", detail.BudgetLevel)
    return _encode(root, VT_PAYMENT)


def parse_payment_voucher(document: bytes) -> PaymentInstruction:
    """The payment a 5201 voucher carries (validated against the schema first)."""
    root = ET.fromstring(validate(VT_PAYMENT, document))
    details = [
        InstructionDetail(
            Source=_text(line, "Hold2"),
            IndicatorNo=None if _text(line, "Hold1") == "无指标文号" else _text(line, "Hold1"),
            BudgetLevel=_opt(line, "Hold3"),
            ExpFuncCode=_text(line, "ExpFuncCode"),
            GovExpEcoCode=_text(line, "GovExpEcoCode"),
            DepExpEcoCode=_text(line, "DepExpEcoCode"),
            FundTypeCode=_text(root, "FundTypeCode"),
            Amt=fen(_text(line, "Amt")),
        )
        for line in root.iter("Detail")
    ]
    amount = fen(_text(root, "PayAmt"))
    if _text(root, "PayAmtCapital") != to_capitals(amount):
        raise VoucherError(f"凭证 {_text(root, 'VoucherNo')} 的大写金额与小写金额 {_text(root, 'PayAmt')} 不符")
    return PaymentInstruction(
        VoucherNo=_text(root, "VoucherNo"),
        AdmDivCode=_text(root, "AdmDivCode"),
        StYear=int(_text(root, "StYear")),
        PayAcctNo=_text(root, "PayAcctNo"),
        PayAcctName=_text(root, "PayAcctName"),
        PayeeAcctNo=_text(root, "PayeeAcctNo"),
        PayeeAcctName=_text(root, "PayeeAcctName"),
        PayeeAcctBankName=_text(root, "PayeeAcctBankName"),
        PayeeAcctBankNo=_text(root, "PayeeAcctBankNo"),
        PayAmt=amount,
        PaySummaryCode=_text(root, "PaySummaryCode"),
        PaySummaryName=_text(root, "PaySummaryName"),
        FundSource=details[0].Source,
        AgencyCode=_opt(root, "AgencyCode"),
        AgencyName=_opt(root, "AgencyName"),
        Details=details,
    )


# ----------------------------------------------------------------------------------------------------- receipts


@dataclass(frozen=True)
class Receipt:
    """One receipt (回单) for a voucher: accepted, paid, failed or returned."""

    voucher_no: str  # the 5201 voucher it answers (OriBillNo)
    status: PaymentStatus
    treasury_ref: str
    adm_div_code: str
    st_year: int
    pay_acct_no: str
    pay_amt_fen: int
    at: datetime  # accepted / settled time
    paid_fen: int = 0
    reason: str = ""
    return_kind: ReturnKind | None = None
    returned_fen: int = 0
    returned_at: datetime | None = None

    @property
    def vt_code(self) -> str:
        return {PaymentStatus.ACCEPTED: VT_ACK, PaymentStatus.RETURNED: VT_RETURN}.get(self.status, VT_RECEIPT)

    @property
    def result_code(self) -> str:
        if self.status == PaymentStatus.RETURNED:
            return "4" if self.return_kind == ReturnKind.ACTIVE else "3"
        return {PaymentStatus.ACCEPTED: "0", PaymentStatus.PAID: "1", PaymentStatus.FAILED: "2"}[self.status]

    @property
    def receipt_no(self) -> str:
        return f"{self.vt_code}-{self.voucher_no}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def build_receipt(receipt: Receipt) -> bytes:
    """The GBK receipt document."""
    root = ET.Element("Voucher")
    _add(root, "Id", receipt.receipt_no)
    _add(root, "AdmDivCode", receipt.adm_div_code)
    _add(root, "StYear", str(receipt.st_year))
    _add(root, "VtCode", receipt.vt_code)
    _add(root, "VouDate", (receipt.returned_at or receipt.at).astimezone(UTC).strftime("%Y%m%d"))
    _add(root, "VoucherNo", receipt.receipt_no)
    _add(root, "AgentBusinessNo", receipt.treasury_ref)
    _add(root, "OriBillNo", receipt.voucher_no)
    _add(root, "PayAcctNo", receipt.pay_acct_no)
    _add(root, "PayAmt", yuan(receipt.pay_amt_fen))
    _add(root, "PayResultCode", receipt.result_code)
    _add(root, "PayResultName", RESULT_CODES[receipt.result_code][0])
    _add(root, "PayDate", _iso(receipt.at))
    _add(root, "PaidAmt", yuan(receipt.paid_fen))
    _add(root, "PaidAmtCapital", to_capitals(receipt.paid_fen))
    if receipt.status == PaymentStatus.RETURNED:
        _add(root, "ReturnAmt", yuan(receipt.returned_fen))
        _add(root, "ReturnDate", _iso(receipt.returned_at or receipt.at))
    _add(root, "Remark", receipt.reason or None)
    return _encode(root, "receipt")


def parse_receipt(document: bytes) -> Receipt:
    """A receipt document (validated against the schema first)."""
    root = ET.fromstring(validate("receipt", document))
    code = _text(root, "PayResultCode")
    status = RESULT_CODES[code][1]
    returned = status == PaymentStatus.RETURNED
    returned_at = _opt(root, "ReturnDate")
    return Receipt(
        voucher_no=_text(root, "OriBillNo"),
        status=status,
        treasury_ref=_text(root, "AgentBusinessNo"),
        adm_div_code=_text(root, "AdmDivCode"),
        st_year=int(_text(root, "StYear")),
        pay_acct_no=_text(root, "PayAcctNo"),
        pay_amt_fen=fen(_text(root, "PayAmt")),
        at=datetime.fromisoformat(_text(root, "PayDate")),
        paid_fen=fen(_text(root, "PaidAmt")),
        reason=_opt(root, "Remark") or "",
        return_kind=(ReturnKind.ACTIVE if code == "4" else ReturnKind.PASSIVE) if returned else None,
        returned_fen=fen(_opt(root, "ReturnAmt") or "0") if returned else 0,
        returned_at=datetime.fromisoformat(returned_at) if returned_at else None,
    )


# ----------------------------------------------------------------------------------------------- signed files


@dataclass(frozen=True)
class Signed:
    """One document of a file, its header attributes, and who signed it."""

    vt_code: str
    voucher_no: str
    adm_div_code: str
    st_year: int
    document: bytes
    key_id: str


def build_file(documents: Sequence[tuple[str, str, str, int, bytes]], signer: Signer) -> bytes:
    """A GBK MOF file of (VtCode, VoucherNo, AdmDivCode, StYear, document) entries, each SM2-signed."""
    if not documents:
        raise VoucherError("凭证文件至少需要一张凭证")
    if signer.algorithm != SIGNATURE_ALGORITHM:
        raise VoucherError(f"凭证须用 {SIGNATURE_ALGORITHM} 签名，而不是 {signer.algorithm}")
    root = ET.Element("MOF")
    _add(root, "VoucherCount", str(len(documents)))
    for vt_code, voucher_no, adm_div, year, document in documents:
        body = ET.SubElement(
            root,
            "VoucherBody",
            {"AdmDivCode": adm_div, "StYear": str(year), "VtCode": vt_code, "VoucherNo": voucher_no},
        )
        _add(body, "Voucher", base64.b64encode(document).decode())
        signature = ET.SubElement(body, "Signature", {"Algorithm": SIGNATURE_ALGORITHM, "KeyId": signer.key_id})
        signature.text = base64.b64encode(signer.sign(document)).decode()
    return _encode(root, "envelope")


def open_file(data: bytes, verifiers: Mapping[str, Verifier]) -> list[Signed]:
    """The documents of a MOF file whose signatures all hold; SignatureError or VoucherError otherwise."""
    root = ET.fromstring(validate("envelope", data))
    bodies = root.findall("VoucherBody")
    if int(_text(root, "VoucherCount")) != len(bodies):
        raise VoucherError("凭证文件的 VoucherCount 与凭证张数不符")
    out: list[Signed] = []
    for body in bodies:
        signature = body.find("Signature")
        assert signature is not None  # the schema requires it
        key_id = signature.get("KeyId", "")
        verifier = verifiers.get(key_id)
        if verifier is None:
            raise SignatureError(f"未知的签名密钥: {key_id[:64]}", "unknown_key")
        document = base64.b64decode(_text(body, "Voucher"))
        verifier.verify(base64.b64decode(signature.text or ""), document)
        out.append(
            Signed(
                vt_code=body.get("VtCode", ""),
                voucher_no=body.get("VoucherNo", ""),
                adm_div_code=body.get("AdmDivCode", ""),
                st_year=int(body.get("StYear", "0")),
                document=document,
                key_id=key_id,
            )
        )
    return out
