"""Helpers for the payment-result and reconciliation tests."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from db.models import Case, Enterprise, PaymentInstruction
from db.repositories import fund_items, payments
from schemas.treasury import InstructionResult
from tests.factories import fresh_uscc

_serial = itertools.count(1)


def make_instruction(session: Session, *, amount_fen: int = 10_000_000, status: str = "created") -> PaymentInstruction:
    """A case (with its own enterprise and fund item) and its first payment instruction."""
    n = next(_serial)
    dept = fund_items.add_department(session=session, code=f"RD{n}", name="经信局", region_code="420500")
    policy = fund_items.add_policy(
        session=session,
        doc_number=f"宜经信发〔2026〕R{n}号",
        title="测试政策",
        level="city",
        department_id=dept.id,
        published_on=date(2026, 1, 5),
    )
    item = fund_items.add_listed(
        session=session,
        code=f"R-{n}",
        policy_id=policy.id,
        department_id=dept.id,
        name="测试事项",
        mode="instant",
        config={},
    )
    enterprise = Enterprise(uscc=fresh_uscc(), name=f"宜昌测试企业{n}", region_code="420502", tags=[])
    session.add(enterprise)
    session.flush()
    case = Case(
        fund_item_id=item.id,
        fund_item_version=1,
        enterprise_id=enterprise.id,
        mode="instant",
        status="paying",
        workflow_id=f"case:R-{n}:{enterprise.uscc}",
        paid_fen=0,
    )
    session.add(case)
    session.flush()
    instruction = payments.get_or_create(
        session=session,
        case_id=case.id,
        attempt=1,
        adm_div_code="420500",
        st_year=2026,
        pay_acct_no="420500000000000001",
        payee_acct_no_enc="x",
        payee_acct_no_masked="6222****3445",
        payee_acct_name=enterprise.name,
        payee_acct_bank_name="中国工商银行宜昌分行",
        payee_acct_bank_no="102526000018",
        pay_amt_fen=amount_fen,
        pay_summary_code="30307",
        fund_source="市级财政",
    )
    instruction.status = status
    session.flush()
    return instruction


def result(voucher: str, status: str, amount: int = 10_000_000, **changes: object) -> InstructionResult:
    """A treasury result as the stand-in would send it, at fixed times."""
    accepted = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    settled = datetime(2026, 11, 22, 1, 0, 1, tzinfo=UTC)
    fields: dict[str, object] = {
        "VoucherNo": voucher,
        "Status": status,
        "PaidAmt": amount if status == "paid" else 0,
        "TreasuryRef": "GK20261122ABCDEF",
        "AcceptedAt": accepted,
        "SettledAt": None if status == "accepted" else settled,
        "Reason": {"failed": "收款账号不存在", "returned": "收款人户名不符"}.get(status, ""),
    }
    if status == "returned":
        fields |= {
            "ReturnType": "passive",
            "ReturnedAmt": amount,
            "ReturnedAt": datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
        }
    return InstructionResult(**(fields | changes))
