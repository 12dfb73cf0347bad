"""ISO 20022 files for the treasury's file channel: pain.001 out, pain.002 and camt.054 back.

Versions: pain.001.001.03 (credit transfer initiation), pain.002.001.03 (payment status report),
camt.054.001.02 (debit/credit notification, for returns); the official XSDs are in gateways/xsd/ (see its
README) and every document built or read here is validated against them. Amounts are integer fen inside
Zhida and yuan with two decimals in the files (InstdAmt Ccy="CNY").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import xmlschema

from schemas.treasury import PaymentInstruction
from schemas.vocabulary import PaymentStatus

XSD_DIR = Path(__file__).resolve().parent / "xsd"
PAIN001 = "pain.001.001.03"
PAIN002 = "pain.002.001.03"
CAMT054 = "camt.054.001.02"
CNAPS = "CNAPS"  # ISO external clearing system code of China's national payment system (联行号)
_FEN = Decimal("0.01")
# Remittance lines after the first (the PaySummaryName) carry the voucher fields ISO has no element for.
_REMITTANCE_KEYS = ("StYear", "AdmDivCode", "FundSource")
# pain.002 / camt.054 reason codes (ISO external code sets) for the treasury's Chinese reasons.
REASON_CODES = {"户名": "BE01", "账号": "AC01"}


class Iso20022Error(ValueError):
    """A document that does not validate against its official schema, or cannot carry an instruction."""


@lru_cache(maxsize=4)
def schema(name: str) -> xmlschema.XMLSchema:
    """The official XSD of message `name` (e.g. "pain.001.001.03"), parsed once."""
    return xmlschema.XMLSchema(XSD_DIR / f"{name}.xsd")


def validate(name: str, document: bytes) -> None:
    """Raise Iso20022Error naming the first schema violation."""
    try:
        schema(name).validate(document.decode("utf-8") if isinstance(document, bytes) else document)
    except xmlschema.XMLSchemaException as exc:
        raise Iso20022Error(f"{name} 校验失败: {str(exc)[:500]}") from exc


def yuan(fen: int) -> str:
    """Fen → the decimal yuan text ISO amounts use: 10000000 → "100000.00"."""
    return str((Decimal(fen) / 100).quantize(_FEN))


def fen(text: str) -> int:
    """Yuan text → integer fen; refuses fractions of a fen."""
    value = Decimal(text.strip()) * 100
    if value != value.to_integral_value():
        raise Iso20022Error(f"金额 {text} 精度超过分")
    return int(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _parse_dt(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Doc:
    """A tiny builder over ElementTree in one namespace, so building reads like the XML it makes."""

    def __init__(self, name: str) -> None:
        self.ns = f"urn:iso:std:iso:20022:tech:xsd:{name}"
        ET.register_namespace("", self.ns)
        self.root = ET.Element(f"{{{self.ns}}}Document")

    def add(self, parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{self.ns}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    def path(self, parent: ET.Element, tags: str, text: str) -> ET.Element:
        """Add nested elements "A/B/C" with `text` in the last one."""
        *outer, last = tags.split("/")
        for tag in outer:
            parent = self.add(parent, tag)
        return self.add(parent, last, text)

    def bytes(self) -> bytes:
        return ET.tostring(self.root, encoding="utf-8", xml_declaration=True)


def _check_len(value: str, limit: int, field: str) -> str:
    if len(value) > limit:
        raise Iso20022Error(f"{field} 超过ISO 20022允许的{limit}个字符")
    return value


def build_pain001(
    instructions: Sequence[PaymentInstruction],
    *,
    msg_id: str,
    created_at: datetime,
    initiating_party: str,
    execution_date: date | None = None,
) -> bytes:
    """A validated pain.001.001.03 credit transfer initiation: one PmtInf per paying account."""
    if not instructions:
        raise Iso20022Error("至少需要一条支付指令")
    doc = _Doc(PAIN001)
    body = doc.add(doc.root, "CstmrCdtTrfInitn")
    header = doc.add(body, "GrpHdr")
    doc.add(header, "MsgId", _check_len(msg_id, 35, "MsgId"))
    doc.add(header, "CreDtTm", _iso(created_at))
    doc.add(header, "NbOfTxs", str(len(instructions)))
    doc.add(header, "CtrlSum", yuan(sum(i.PayAmt for i in instructions)))
    doc.path(header, "InitgPty/Nm", _check_len(initiating_party, 140, "InitgPty"))
    groups: dict[tuple[str, str], list[PaymentInstruction]] = {}
    for instruction in instructions:
        groups.setdefault((instruction.PayAcctNo, instruction.PayAcctName), []).append(instruction)
    for number, ((acct_no, acct_name), items) in enumerate(groups.items(), start=1):
        info = doc.add(body, "PmtInf")
        doc.add(info, "PmtInfId", f"{msg_id[:30]}-{number}")
        doc.add(info, "PmtMtd", "TRF")
        doc.add(info, "NbOfTxs", str(len(items)))
        doc.add(info, "CtrlSum", yuan(sum(i.PayAmt for i in items)))
        doc.add(info, "ReqdExctnDt", (execution_date or created_at.date()).isoformat())
        doc.path(info, "Dbtr/Nm", _check_len(acct_name, 140, "PayAcctName"))
        doc.path(info, "DbtrAcct/Id/Othr/Id", acct_no)
        doc.path(info, "DbtrAgt/FinInstnId/Othr/Id", items[0].AdmDivCode)
        for item in items:
            tx = doc.add(info, "CdtTrfTxInf")
            pmt_id = doc.add(tx, "PmtId")
            doc.add(pmt_id, "InstrId", _check_len(item.VoucherNo, 35, "VoucherNo"))
            doc.add(pmt_id, "EndToEndId", item.VoucherNo)
            doc.add(doc.add(tx, "Amt"), "InstdAmt", yuan(item.PayAmt), Ccy="CNY")
            agent = doc.add(doc.add(tx, "CdtrAgt"), "FinInstnId")
            member = doc.add(agent, "ClrSysMmbId")
            doc.path(member, "ClrSysId/Cd", CNAPS)
            doc.add(member, "MmbId", item.PayeeAcctBankNo)
            doc.add(agent, "Nm", _check_len(item.PayeeAcctBankName, 140, "PayeeAcctBankName"))
            doc.path(tx, "Cdtr/Nm", _check_len(item.PayeeAcctName, 140, "PayeeAcctName"))
            doc.path(tx, "CdtrAcct/Id/Othr/Id", item.PayeeAcctNo)
            doc.path(tx, "Purp/Prtry", item.PaySummaryCode)
            remittance = doc.add(tx, "RmtInf")
            doc.add(remittance, "Ustrd", _check_len(item.PaySummaryName, 140, "PaySummaryName"))
            for key in _REMITTANCE_KEYS:
                doc.add(remittance, "Ustrd", _check_len(f"{key}={getattr(item, key)}", 140, key))
    document = doc.bytes()
    validate(PAIN001, document)
    return document


def _find(element: ET.Element, path: str, ns: str) -> str:
    found = element.find("/".join(f"{{{ns}}}{tag}" for tag in path.split("/")))
    if found is None or found.text is None:
        raise Iso20022Error(f"缺少元素 {path}")
    return found.text


def _opt(element: ET.Element, path: str, ns: str) -> str | None:
    found = element.find("/".join(f"{{{ns}}}{tag}" for tag in path.split("/")))
    return None if found is None else found.text


def parse_pain001(document: bytes) -> tuple[str, list[PaymentInstruction]]:
    """(MsgId, instructions) of a pain.001 written by build_pain001; validated against the XSD first."""
    validate(PAIN001, document)
    ns = f"urn:iso:std:iso:20022:tech:xsd:{PAIN001}"
    root = ET.fromstring(document)
    body = root.find(f"{{{ns}}}CstmrCdtTrfInitn")
    assert body is not None
    msg_id = _find(body, "GrpHdr/MsgId", ns)
    out: list[PaymentInstruction] = []
    for info in body.findall(f"{{{ns}}}PmtInf"):
        acct_no = _find(info, "DbtrAcct/Id/Othr/Id", ns)
        acct_name = _find(info, "Dbtr/Nm", ns)
        for tx in info.findall(f"{{{ns}}}CdtTrfTxInf"):
            amount = tx.find(f"{{{ns}}}Amt/{{{ns}}}InstdAmt")
            assert amount is not None and amount.text is not None
            if amount.get("Ccy") != "CNY":
                raise Iso20022Error(f"币种 {amount.get('Ccy')} 不是人民币")
            lines = [e.text or "" for e in tx.findall(f"{{{ns}}}RmtInf/{{{ns}}}Ustrd")]
            extra = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
            out.append(
                PaymentInstruction(
                    VoucherNo=_find(tx, "PmtId/EndToEndId", ns),
                    AdmDivCode=extra.get("AdmDivCode", ""),
                    StYear=int(extra.get("StYear", "0")),
                    PayAcctNo=acct_no,
                    PayAcctName=acct_name,
                    PayeeAcctNo=_find(tx, "CdtrAcct/Id/Othr/Id", ns),
                    PayeeAcctName=_find(tx, "Cdtr/Nm", ns),
                    PayeeAcctBankName=_find(tx, "CdtrAgt/FinInstnId/Nm", ns),
                    PayeeAcctBankNo=_find(tx, "CdtrAgt/FinInstnId/ClrSysMmbId/MmbId", ns),
                    PayAmt=fen(amount.text),
                    PaySummaryCode=_find(tx, "Purp/Prtry", ns),
                    PaySummaryName=lines[0] if lines else "",
                    FundSource=extra.get("FundSource", ""),
                )
            )
    return msg_id, out


@dataclass(frozen=True)
class TxStatus:
    """One transaction's status as a pain.002 or camt.054 line carries it."""

    voucher_no: str
    status: str  # accepted | paid | failed | returned
    amount_fen: int = 0
    reason: str = ""
    treasury_ref: str = ""
    at: datetime | None = None  # acceptance/settlement time (pain.002) or return time (camt.054)
    return_type: str | None = None  # passive | active (camt.054 only)


_TX_STS = {PaymentStatus.ACCEPTED: "ACCP", PaymentStatus.PAID: "ACSC", PaymentStatus.FAILED: "RJCT"}
_STATUS_OF = {"ACCP": PaymentStatus.ACCEPTED, "ACTC": PaymentStatus.ACCEPTED, "PDNG": PaymentStatus.ACCEPTED,
              "ACSP": PaymentStatus.ACCEPTED, "ACSC": PaymentStatus.PAID, "RJCT": PaymentStatus.FAILED}


def reason_code(reason: str) -> str:
    """The ISO reason code for a Chinese reason: 户名不符 → BE01, 账号不存在 → AC01, else NARR."""
    return next((code for mark, code in REASON_CODES.items() if mark in reason), "NARR")


def build_pain002(
    lines: Iterable[TxStatus], *, msg_id: str, created_at: datetime, original_msg_id: str, original_pmt_inf_id: str
) -> bytes:
    """A validated pain.002.001.03 status report for transactions of one original pain.001."""
    doc = _Doc(PAIN002)
    body = doc.add(doc.root, "CstmrPmtStsRpt")
    header = doc.add(body, "GrpHdr")
    doc.add(header, "MsgId", _check_len(msg_id, 35, "MsgId"))
    doc.add(header, "CreDtTm", _iso(created_at))
    original = doc.add(body, "OrgnlGrpInfAndSts")
    doc.add(original, "OrgnlMsgId", original_msg_id)
    doc.add(original, "OrgnlMsgNmId", PAIN001)
    info = doc.add(body, "OrgnlPmtInfAndSts")
    doc.add(info, "OrgnlPmtInfId", original_pmt_inf_id)
    for line in lines:
        tx = doc.add(info, "TxInfAndSts")
        doc.add(tx, "OrgnlInstrId", line.voucher_no)
        doc.add(tx, "OrgnlEndToEndId", line.voucher_no)
        doc.add(tx, "TxSts", _TX_STS[line.status])
        if line.status == PaymentStatus.FAILED:
            reason = doc.add(tx, "StsRsnInf")
            doc.path(reason, "Rsn/Cd", reason_code(line.reason))
            for start in range(0, len(line.reason), 105):
                doc.add(reason, "AddtlInf", line.reason[start : start + 105])
        if line.at is not None:
            doc.add(tx, "AccptncDtTm", _iso(line.at))
        if line.treasury_ref:
            doc.add(tx, "AcctSvcrRef", line.treasury_ref)
        doc.add(doc.add(doc.add(tx, "OrgnlTxRef"), "Amt"), "InstdAmt", yuan(line.amount_fen), Ccy="CNY")
    document = doc.bytes()
    validate(PAIN002, document)
    return document


def parse_pain002(document: bytes) -> tuple[str, list[TxStatus]]:
    """(original MsgId, transaction statuses) of a pain.002; validated against the XSD first."""
    validate(PAIN002, document)
    ns = f"urn:iso:std:iso:20022:tech:xsd:{PAIN002}"
    body = ET.fromstring(document).find(f"{{{ns}}}CstmrPmtStsRpt")
    assert body is not None
    original = _find(body, "OrgnlGrpInfAndSts/OrgnlMsgId", ns)
    out: list[TxStatus] = []
    for tx in body.iter(f"{{{ns}}}TxInfAndSts"):
        code = _find(tx, "TxSts", ns)
        status = _STATUS_OF.get(code)
        if status is None:
            raise Iso20022Error(f"未知的交易状态 {code}")
        reason = "".join(e.text or "" for e in tx.findall(f"{{{ns}}}StsRsnInf/{{{ns}}}AddtlInf"))
        at = _opt(tx, "AccptncDtTm", ns)
        amount = _opt(tx, "OrgnlTxRef/Amt/InstdAmt", ns)
        out.append(
            TxStatus(
                voucher_no=_opt(tx, "OrgnlEndToEndId", ns) or _find(tx, "OrgnlInstrId", ns),
                status=status,
                amount_fen=fen(amount) if amount and status == PaymentStatus.PAID else 0,
                reason=reason,
                treasury_ref=_opt(tx, "AcctSvcrRef", ns) or "",
                at=_parse_dt(at) if at else None,
            )
        )
    return original, out


def build_camt054(
    returns: Iterable[TxStatus], *, msg_id: str, created_at: datetime, account_no: str
) -> bytes:
    """A validated camt.054.001.02 credit notification: one booked entry per returned payment (退票/主动退回)."""
    doc = _Doc(CAMT054)
    body = doc.add(doc.root, "BkToCstmrDbtCdtNtfctn")
    header = doc.add(body, "GrpHdr")
    doc.add(header, "MsgId", _check_len(msg_id, 35, "MsgId"))
    doc.add(header, "CreDtTm", _iso(created_at))
    notification = doc.add(body, "Ntfctn")
    doc.add(notification, "Id", msg_id)
    doc.add(notification, "CreDtTm", _iso(created_at))
    doc.path(notification, "Acct/Id/Othr/Id", account_no)
    for line in returns:
        entry = doc.add(notification, "Ntry")
        doc.add(entry, "Amt", yuan(line.amount_fen), Ccy="CNY")
        doc.add(entry, "CdtDbtInd", "CRDT")
        doc.add(entry, "Sts", "BOOK")
        doc.path(entry, "BookgDt/DtTm", _iso(line.at or created_at))
        if line.treasury_ref:
            doc.add(entry, "AcctSvcrRef", line.treasury_ref)
        domain = doc.add(doc.add(entry, "BkTxCd"), "Domn")
        doc.add(domain, "Cd", "PMNT")
        family = doc.add(domain, "Fmly")
        doc.add(family, "Cd", "ICDT")
        doc.add(family, "SubFmlyCd", "RRTN")  # reversal due to a payment return
        tx = doc.add(doc.add(entry, "NtryDtls"), "TxDtls")
        refs = doc.add(tx, "Refs")
        doc.add(refs, "InstrId", line.voucher_no)
        doc.add(refs, "EndToEndId", line.voucher_no)
        info = doc.add(tx, "RtrInf")
        if line.return_type == "active":
            doc.path(info, "Rsn/Prtry", "PAYEE_RETURN")
        else:
            doc.path(info, "Rsn/Cd", reason_code(line.reason))
        for start in range(0, len(line.reason), 105):
            doc.add(info, "AddtlInf", line.reason[start : start + 105])
    document = doc.bytes()
    validate(CAMT054, document)
    return document


def parse_camt054(document: bytes) -> list[TxStatus]:
    """The returned payments a camt.054 notifies (credit entries with return information)."""
    validate(CAMT054, document)
    ns = f"urn:iso:std:iso:20022:tech:xsd:{CAMT054}"
    out: list[TxStatus] = []
    for entry in ET.fromstring(document).iter(f"{{{ns}}}Ntry"):
        if _find(entry, "CdtDbtInd", ns) != "CRDT":
            continue
        for tx in entry.iter(f"{{{ns}}}TxDtls"):
            info = tx.find(f"{{{ns}}}RtrInf")
            if info is None:
                continue
            reason = "".join(e.text or "" for e in info.findall(f"{{{ns}}}AddtlInf"))
            booked = _opt(entry, "BookgDt/DtTm", ns)
            out.append(
                TxStatus(
                    voucher_no=_opt(tx, "Refs/EndToEndId", ns) or _find(tx, "Refs/InstrId", ns),
                    status=PaymentStatus.RETURNED,
                    amount_fen=fen(_find(entry, "Amt", ns)),
                    reason=reason,
                    treasury_ref=_opt(entry, "AcctSvcrRef", ns) or "",
                    at=_parse_dt(booked) if booked else None,
                    return_type="active" if _opt(info, "Rsn/Prtry", ns) == "PAYEE_RETURN" else "passive",
                )
            )
    return out
