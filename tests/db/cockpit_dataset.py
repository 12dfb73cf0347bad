"""A known dataset for the finance cockpit, built with repository calls (never through workflows), so every figure
the cockpit shows can be proven by hand. The expected figures are worked out in tests/db/test_cockpit.py.

宜昌 (420500): 经信局 owns item A (lines 市级财政 150,000.00 and 区级财政 500,000.00), 科技局 owns item B (市级财政
200,000.00). 武汉 (420100): 经信局 owns item W (100,000.00). Times are Beijing time; 2026-10-01…07 is the National
Day holiday and 2026-10-10 a make-up Saturday (chinesecalendar).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from db.models import Case, Enterprise
from db.repositories import budget, cases, fund_items, payments, reviews
from schemas.localtime import LOCAL_TZ
from schemas.treasury import InstructionResult
from schemas.vocabulary import (
    CaseStatus,
    DepartmentKind,
    FundItemStatus,
    PaymentStatus,
    ReturnHandling,
    ReturnKind,
    TaskStatus,
)
from tests.factories import new_enterprise

NOW = datetime(2026, 9, 20, 12, 0, tzinfo=LOCAL_TZ)  # "now" for the overdue stages


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


@dataclass
class Dataset:
    tag: str
    finance_yc: str
    finance_wh: str
    dept_a: str
    dept_b: str
    ids: dict[str, int] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)


def build(session: Session) -> Dataset:
    tag = uuid.uuid4().hex[:6].upper()
    data = Dataset(tag, f"CK-CZ-YC-{tag}", f"CK-CZ-WH-{tag}", f"CK-JXJ-{tag}", f"CK-KJJ-{tag}")
    add = fund_items.add_department
    add(session=session, code=data.finance_yc, name="宜昌市财政局", region_code="420500", kind=DepartmentKind.FINANCE)
    add(session=session, code=data.finance_wh, name="武汉市财政局", region_code="420100", kind=DepartmentKind.FINANCE)
    dept_a = add(session=session, code=data.dept_a, name="宜昌市经济和信息化局", region_code="420500")
    dept_b = add(session=session, code=data.dept_b, name="宜昌市科学技术局", region_code="420500")
    dept_w = add(session=session, code=f"CK-WH-{tag}", name="武汉市经济和信息化局", region_code="420100")
    data.ids["dept_a"], data.ids["dept_b"] = dept_a.id, dept_b.id

    def item(code: str, department, name: str, mode: str, lines: dict[str, int]):
        policy = fund_items.add_policy(session=session, doc_number=f"宜政{code}{tag}", title=f"{name}政策", level="city",
                                       department_id=department.id)  # fmt: skip
        row = fund_items.add_listed(session=session, code=f"{code}-{tag}", policy_id=policy.id,
                                    department_id=department.id, name=name, mode=mode, config={})  # fmt: skip
        for source, total in lines.items():
            line = budget.add_line(session=session, fund_item_id=row.id, source=source, budget_year=2026, total_fen=total)
            data.lines[f"{code}:{source}"] = line.id
        # Ended items: in a shared stack the SMS dispatcher's pushes look only at listed items, so these stay out of it.
        fund_items.set_status(session=session, item=row, status=FundItemStatus.CLOSED)
        data.ids[f"item_{code}"] = row.id
        return row

    item_a = item("A", dept_a, "工业企业技术改造奖补", "instant", {"市级财政": 15_000_000, "区级财政": 50_000_000})
    item_b = item("B", dept_b, "科技创新平台奖励", "review", {"市级财政": 20_000_000})
    item_w = item("W", dept_w, "武汉市中小企业奖补", "instant", {"市级财政": 10_000_000})

    ents: dict[str, Enterprise] = {}
    for key, region in (("e1", "420502"), ("e2", "420503"), ("e3", "420506"), ("e4", "420502"), ("e5", "420102")):
        ents[key] = new_enterprise(session, region_code=region)
        data.ids[key] = ents[key].id

    def case(key, fund_item, ent, status, amount, *, began, paid_at=None, line=None, commit=True, pay=True):
        row, _ = cases.get_or_create(session=session, fund_item_id=fund_item.id, fund_item_version=1,
                                     enterprise_id=ents[ent].id, mode=fund_item.mode,
                                     workflow_id=f"cockpit:{tag}:{key}")  # fmt: skip
        row.status, row.amount_fen, row.created_at = status, amount, began
        if line is not None:
            # The reservation goes on the first line with room: fill the earlier lines' order by naming the line.
            entry = budget.reserve(session=session, fund_item_id=fund_item.id, case_id=row.id, amount_fen=amount)
            assert entry.budget_line_id == data.lines[line], (key, line)
            if commit:
                budget.commit(session=session, case_id=row.id)
        if paid_at is not None and pay:
            instruction = payments.get_or_create(
                session=session, case_id=row.id, attempt=1, adm_div_code="420500", st_year=2026, pay_acct_no="PAY",
                payee_acct_no_enc="x", payee_acct_no_masked="6222****0001", payee_acct_name=ents[ent].name,
                payee_acct_bank_name="工商银行", payee_acct_bank_no="102526000012", pay_amt_fen=amount,
                pay_summary_code="30299", fund_source=line.split(":")[1] if line else "市级财政",
            )  # fmt: skip
            paid = InstructionResult(VoucherNo=instruction.voucher_no, Status=PaymentStatus.PAID, PaidAmt=amount,
                                     AcceptedAt=paid_at, SettledAt=paid_at)  # fmt: skip
            assert payments.store_result(session=session, result=paid) == "applied"
            if status == CaseStatus.PAID:
                row.paid_fen, row.closed_at = amount, paid_at
        session.flush()
        data.ids[key] = row.id
        return row

    # The ledger reserves on the first line with room: c1, c3 and c4 fill 市级财政 exactly, so c2 goes to 区级财政.
    case("c1", item_a, "e1", CaseStatus.PAID, 10_000_000, began=bj(2026, 9, 1, 9), paid_at=bj(2026, 9, 3, 10),
         line="A:市级财政")  # fmt: skip
    case("c3", item_a, "e3", CaseStatus.PAID, 3_000_000, began=bj(2026, 9, 28, 9), paid_at=bj(2026, 10, 9, 16),
         line="A:市级财政")  # fmt: skip
    c4 = case("c4", item_a, "e4", CaseStatus.AWAITING_CORRECTION, 2_000_000, began=bj(2026, 9, 2, 9),
              paid_at=bj(2026, 9, 4, 10), line="A:市级财政")  # fmt: skip
    case("c2", item_a, "e2", CaseStatus.PAID, 5_000_000, began=bj(2026, 9, 1, 9), paid_at=bj(2026, 9, 8, 15),
         line="A:区级财政")  # fmt: skip
    case("c5", item_a, "e5", CaseStatus.REVIEWING, None, began=bj(2026, 9, 5, 9))
    voucher = payments.voucher_no(case_id=c4.id, attempt=1)
    instruction = payments.get(session=session, voucher=voucher)
    assert instruction is not None
    instruction.status, instruction.returned_amt_fen = PaymentStatus.RETURNED, 2_000_000
    reviews.record_return(session=session, voucher_no=voucher, case_id=c4.id, attempt=1, kind=ReturnKind.PASSIVE,
                          reason="收款人户名与账号不符", amount_fen=2_000_000, returned_on=date(2026, 9, 7),
                          budget_year=2026, handling=ReturnHandling.RECORDED)  # fmt: skip
    case("c6", item_b, "e1", CaseStatus.PAID, 800_000, began=bj(2026, 9, 11, 9), paid_at=bj(2026, 9, 14, 9),
         line="B:市级财政")  # fmt: skip
    case("c7", item_b, "e2", CaseStatus.FINANCE_REVIEW, 1_200_000, began=bj(2026, 9, 7, 9), line="B:市级财政",
         commit=False)  # fmt: skip
    # Paid at 07:00 on 1 November in Beijing: still 31 October in UTC, so the month proves the local cut.
    case("c8", item_b, "e3", CaseStatus.PAID, 500_000, began=bj(2026, 10, 30, 9), paid_at=bj(2026, 11, 1, 7),
         line="B:市级财政")  # fmt: skip
    case("c9", item_w, "e5", CaseStatus.PAID, 100_000, began=bj(2026, 9, 1, 9), paid_at=bj(2026, 9, 2, 9),
         line="W:市级财政")  # fmt: skip

    def task(case_key: str, stage: str, department: str, due: datetime, status: TaskStatus = TaskStatus.OPEN) -> None:
        (row,) = reviews.open_tasks(session=session, case_id=data.ids[case_key], stage_key=stage, stage_name="部门审核",
                                    round_=1, departments=[department], due_at=due, provisional=False)  # fmt: skip
        row.status = status

    task("c5", "review", data.dept_a, bj(2026, 9, 10, 17))  # open past its deadline: overdue
    task("c5", "completeness", data.dept_a, bj(2026, 9, 8, 17), TaskStatus.DONE)  # done: not overdue
    task("c1", "completeness", data.dept_a, bj(2026, 9, 2, 17), TaskStatus.TIMED_OUT)  # timed out: overdue
    task("c7", "review", data.dept_b, bj(2026, 9, 15, 17), TaskStatus.TIMED_OUT)
    task("c7", "joint", data.dept_a, bj(2026, 9, 30, 17))  # open, not yet due
    session.flush()
    return data


def case_of(session: Session, case_id: int) -> Case:
    row = session.get(Case, case_id)
    assert row is not None
    return row
