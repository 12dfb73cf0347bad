"""Bulk treasury results (campaign polls): a result that is already `returned` is stored as a payment that went out
and came back, with its amounts, so our ledger still equals the treasury's. Found by `zhida soak`: the bulk UPDATE
stored it as returned with 0 paid and no return."""

from __future__ import annotations

from datetime import UTC, datetime

from db.repositories import payments
from db.session import transaction
from schemas.treasury import InstructionResult
from schemas.vocabulary import PaymentStatus, ReturnKind
from tests.db import cockpit_dataset


def test_a_returned_result_in_a_bulk_poll_keeps_the_paid_and_returned_amounts(module_db_url: str) -> None:
    db_url = module_db_url  # a database of its own: the dataset commits cases the shared one must not hold
    with transaction(db_url) as session:
        data = cockpit_dataset.build(session)
        instruction = payments.get_or_create(
            session=session, case_id=data.ids["c5"], attempt=1, adm_div_code="420500", st_year=2026, pay_acct_no="PAY",
            payee_acct_no_enc="x", payee_acct_no_masked="6222****0009", payee_acct_name="宜昌戊公司",
            payee_acct_bank_name="工商银行", payee_acct_bank_no="102526000012", pay_amt_fen=1_000_000,
            pay_summary_code="30299", fund_source="市级财政",
        )  # fmt: skip
        payments.mark_accepted_many(session=session, vouchers=[instruction.voucher_no])
        settled, back = datetime(2026, 9, 20, 2, tzinfo=UTC), datetime(2026, 9, 20, 3, tzinfo=UTC)
        returned = InstructionResult(
            VoucherNo=instruction.voucher_no, Status=PaymentStatus.RETURNED, PaidAmt=0, Reason="收款人账号不存在",
            TreasuryRef="GK1", AcceptedAt=settled, SettledAt=settled, ReturnType=ReturnKind.PASSIVE,
            ReturnedAmt=1_000_000, ReturnedAt=back,
        )  # fmt: skip
        paid_elsewhere = payments.voucher_no(case_id=data.ids["c1"], attempt=1)  # already paid: stays as it is
        assert payments.record_results_many(session=session, results=[returned]) == 1
        session.expire_all()
        row = payments.get(session=session, voucher=instruction.voucher_no)
        assert row is not None
        assert (row.status, row.paid_amt_fen, row.returned_amt_fen) == (PaymentStatus.RETURNED, 1_000_000, 1_000_000)
        assert row.return_kind == ReturnKind.PASSIVE and row.returned_at is not None and row.settled_at is not None
        assert payments.get(session=session, voucher=paid_elsewhere).status == PaymentStatus.PAID


def test_bulk_results_apply_once_the_first_result_of_a_voucher_wins_and_final_rows_stay(module_db_url: str) -> None:
    """The bulk store is one statement per 500 results on SQLite: each open instruction takes its first result, one
    already final keeps its own, and the cockpit's month summary follows (its trigger still runs per row)."""
    from sqlalchemy import func, select

    from db.models import CockpitPaidMonth

    months = select(func.coalesce(func.sum(CockpitPaidMonth.payments), 0))
    with transaction(module_db_url) as session:
        data = cockpit_dataset.build(session)
        fields = dict(adm_div_code="420500", st_year=2026, pay_acct_no="PAY", payee_acct_no_enc="x",
                      payee_acct_no_masked="6222****0009", payee_acct_name="宜昌公司", payee_acct_bank_name="工商银行",
                      payee_acct_bank_no="102526000012", pay_amt_fen=1_200_000, pay_summary_code="30299",
                      fund_source="市级财政")  # fmt: skip
        first = payments.get_or_create(session=session, case_id=data.ids["c7"], attempt=1, **fields).voucher_no
        second = payments.get_or_create(session=session, case_id=data.ids["c7"], attempt=2, **fields).voucher_no
        payments.mark_accepted_many(session=session, vouchers=[first])  # the second stays created
        paid_elsewhere = payments.voucher_no(case_id=data.ids["c1"], attempt=1)
    with transaction(module_db_url) as session:  # PostgreSQL folds the summaries' deltas at commit
        before = session.scalar(months)
    at = datetime(2026, 10, 2, 2, tzinfo=UTC)

    def result(voucher: str, status: PaymentStatus, paid: int, reason: str = "") -> InstructionResult:
        return InstructionResult(VoucherNo=voucher, Status=status, PaidAmt=paid, Reason=reason, TreasuryRef="GK9",
                                 AcceptedAt=at, SettledAt=at)  # fmt: skip

    results = [
        result(first, PaymentStatus.PAID, 1_200_000),
        result(second, PaymentStatus.FAILED, 0, "户名不符"),
        result(first, PaymentStatus.FAILED, 0, "后到的结果"),  # the same voucher again: ignored
        result(paid_elsewhere, PaymentStatus.FAILED, 0, "迟到的失败"),  # already paid: stays paid
        InstructionResult(VoucherNo=first, Status=PaymentStatus.ACCEPTED, PaidAmt=0, AcceptedAt=at),  # not final
    ]
    with transaction(module_db_url) as session:
        assert payments.record_results_many(session=session, results=results) == 4
    with transaction(module_db_url) as session:
        one, two = payments.get(session=session, voucher=first), payments.get(session=session, voucher=second)
        assert (one.status, one.paid_amt_fen, one.fail_reason, one.treasury_ref) == ("paid", 1_200_000, None, "GK9")
        assert (two.status, two.paid_amt_fen, two.fail_reason) == ("failed", 0, "户名不符")
        assert one.settled_at == at and two.settled_at == at
        elsewhere = payments.get(session=session, voucher=paid_elsewhere)
        assert elsewhere.status == PaymentStatus.PAID and elsewhere.fail_reason is None
        assert session.scalar(months) == before + 1  # the one new paid payment, counted once
