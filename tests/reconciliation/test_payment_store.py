"""Treasury results are applied idempotently and in order: a stale or repeated callback never moves a payment back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session

from db.migrate import upgrade
from db.repositories import payments
from db.session import transaction
from tests.reconciliation.support import make_instruction, result


def _status(session: Session, voucher: str) -> tuple:
    row = payments.get(session=session, voucher=voucher)
    assert row is not None
    return row.status, row.paid_amt_fen, row.returned_amt_fen


def test_results_only_move_forward(session: Session) -> None:
    voucher = make_instruction(session).voucher_no
    store = lambda r: payments.store_result(session=session, result=r)  # noqa: E731

    assert store(result(voucher, "accepted")) == "applied"
    assert store(result(voucher, "accepted")) == "unchanged"
    assert store(result(voucher, "paid")) == "applied"
    assert _status(session, voucher) == ("paid", 10_000_000, 0)
    assert store(result(voucher, "accepted")) == "unchanged"  # a late, stale callback
    assert store(result(voucher, "paid")) == "unchanged"  # a duplicate
    assert store(result(voucher, "failed")) == "unchanged"  # a contradiction never overwrites the first result
    assert _status(session, voucher) == ("paid", 10_000_000, 0)

    assert store(result(voucher, "returned")) == "applied"  # returned after paid is allowed
    row = payments.get(session=session, voucher=voucher)
    assert (row.status, row.return_kind, row.return_reason) == ("returned", "passive", "收款人户名不符")
    assert row.paid_amt_fen == row.returned_amt_fen == 10_000_000 and row.returned_at is not None
    assert store(result(voucher, "returned")) == "unchanged"
    assert store(result(voucher, "paid")) == "unchanged"  # the stale paid arriving after the return
    assert _status(session, voucher) == ("returned", 10_000_000, 10_000_000)


def test_paid_before_accepted_stays_paid(session: Session) -> None:
    voucher = make_instruction(session).voucher_no
    assert payments.store_result(session=session, result=result(voucher, "paid")) == "applied"
    assert payments.store_result(session=session, result=result(voucher, "accepted")) == "unchanged"
    assert _status(session, voucher)[0] == "paid"


def test_a_return_whose_paid_result_was_lost_records_both(session: Session) -> None:
    voucher = make_instruction(session, status="accepted").voucher_no
    assert payments.store_result(session=session, result=result(voucher, "returned", 5_000)) == "applied"
    row = payments.get(session=session, voucher=voucher)
    assert (row.status, row.paid_amt_fen, row.returned_amt_fen) == ("returned", 5_000, 5_000)
    assert row.settled_at is not None and row.returned_at is not None


def test_failed_is_final_and_cannot_come_back(session: Session) -> None:
    voucher = make_instruction(session).voucher_no
    assert payments.store_result(session=session, result=result(voucher, "failed")) == "applied"
    for late in ("paid", "returned", "accepted"):
        assert payments.store_result(session=session, result=result(voucher, late)) == "unchanged"
    row = payments.get(session=session, voucher=voucher)
    assert (row.status, row.paid_amt_fen, row.fail_reason) == ("failed", 0, "收款账号不存在")


def test_unknown_voucher(session: Session) -> None:
    assert payments.store_result(session=session, result=result("ZD-UNKNOWN-1", "paid")) == "unknown"


def test_concurrent_duplicate_callbacks_apply_once(empty_db_url: str) -> None:
    db_url = empty_db_url  # its own database: this test commits, the shared one must stay as other tests expect it
    upgrade(db_url)
    with transaction(db_url) as session:
        voucher = make_instruction(session, status="accepted").voucher_no

    def deliver(status: str) -> str:
        with transaction(db_url) as session:
            return payments.store_result(session=session, result=result(voucher, status))

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(deliver, ["paid"] * 6 + ["accepted"] * 2))
    assert outcomes.count("applied") == 1
    with transaction(db_url) as session:
        assert _status(session, voucher) == ("paid", 10_000_000, 0)
