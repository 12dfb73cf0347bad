"""The shared payment stage and PaymentCorrectionWorkflow with the real activities on SQLite: failures,
returns (退票) in the same and a later budget year, account correction, final failure, treasury outages.
Never two successful payments for one case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from cli.demo import DEMO_ITEM
from db.repositories import payments
from db.session import transaction
from schemas.cases import AccountCorrection, BudgetDecision, CaseProgress, CorrectionOutcome
from schemas.treasury import InstructionResult
from tests.support import audit_records, crash_first_audit_write
from tests.workflows.conftest import Harness
from workflows.client import correction_workflow_id, start_correction
from workflows.instant import InstantCaseWorkflow

AMOUNT = 10_000_000  # the demo instant item pays 10万元


def voucher(case_id: int, attempt: int) -> str:
    return payments.voucher_no(case_id=case_id, attempt=attempt)


async def instant(h: Harness, *script: str, outages: int = 0) -> tuple[int, WorkflowHandle]:
    """An instant case whose attempts 1, 2, … settle as scripted (default paid), started after scripting."""
    case_id = h.new_case(DEMO_ITEM, tag="专精特新")
    for attempt, status in enumerate(script, start=1):
        h.treasury.script[voucher(case_id, attempt)] = status
    if outages:
        h.treasury.outages[voucher(case_id, 1)] = outages
    return case_id, await h.start(case_id, InstantCaseWorkflow)


async def correct(h: Harness, handle: WorkflowHandle) -> CaseProgress:
    await h.until(handle, lambda p: p.awaiting == "account_correction")
    return await handle.execute_update(
        "correct_account",
        AccountCorrection(actor="enterprise:test", acct_masked="6222****0001"),
        result_type=CaseProgress,
    )


async def test_instant_case_paid_on_the_shared_stage(h: Harness) -> None:
    case_id, handle = await instant(h)
    result = await handle.result()
    assert result.status == "paid" and result.payment_attempt == 1
    assert h.events(case_id) == ["received", "approved", "budget_reserved", "payment_sent", "paid"]
    assert h.ledger(case_id) == [("reserve", 1), ("commit", 1)]
    assert h.notices(case_id) == ["received", "approved", "paid"]


async def test_return_during_the_stage_then_correction_pays_attempt_two(h: Harness) -> None:
    case_id, handle = await instant(h, "returned")
    progress = await correct(h, handle)
    assert progress.status == "awaiting_correction" and "account_correction" in progress.deadlines
    result = await handle.result()
    assert result.status == "paid" and result.payment_attempt == 2
    assert h.payments(case_id) == [(1, "returned"), (2, "paid")]
    assert h.paid_instructions(case_id) == 1
    assert h.ledger(case_id) == [("reserve", 1), ("release", 1), ("reserve", 2), ("commit", 2)]
    assert h.returns(case_id) == [("passive", "released", False)]
    assert h.notices(case_id) == ["received", "approved", "payment_returned", "paid"]
    assert "收款账户已销户" in h.notice_texts(case_id)[2] and "壹拾万元整" in h.notice_texts(case_id)[2]
    kinds = h.events(case_id)
    assert kinds[-5:] == ["correction_requested", "account_corrected", "budget_reserved", "payment_sent", "paid"]
    assert h.case(case_id)["paid_fen"] == AMOUNT


async def test_failed_payment_finally_fails_when_the_account_is_not_corrected(h: Harness) -> None:
    case_id, handle = await instant(h, "failed")
    result = await handle.result()  # the correction deadline passes (time skipped)
    assert result.status == "payment_failed"
    assert h.ledger(case_id) == [("reserve", 1), ("release", 1)]
    assert h.notices(case_id) == ["received", "approved", "payment_returned", "deadline_reminder", "payment_failed"]
    assert "逾期未更正" in h.case(case_id)["reason"]
    assert h.case(case_id)["status"] == "payment_failed"
    assert h.paid_instructions(case_id) == 0


async def test_return_then_final_failure_after_the_maximum_attempts(h: Harness) -> None:
    case_id, handle = await instant(h, "returned", "failed", "failed")
    await correct(h, handle)
    await h.until(handle, lambda p: p.awaiting == "account_correction" and p.payment_attempt == 2)
    await correct(h, handle)
    result = await handle.result()
    assert result.status == "payment_failed" and result.payment_attempt == 3
    assert h.payments(case_id) == [(1, "returned"), (2, "failed"), (3, "failed")]
    assert h.ledger(case_id) == [(k, a) for a in (1, 2, 3) for k in ("reserve", "release")]
    assert "最大支付次数" in h.case(case_id)["reason"]
    assert h.notices(case_id)[-1] == "payment_failed"
    assert h.totals(DEMO_ITEM)["reserved_fen"] == 0


async def test_treasury_outage_is_retried_with_backoff(h: Harness) -> None:
    case_id, handle = await instant(h, outages=2)
    result = await handle.result()
    assert result.status == "paid"
    assert h.treasury.submits.count(voucher(case_id, 1)) == 3
    assert h.payments(case_id) == [(1, "paid")]


async def test_correction_refused_when_not_awaiting(h: Harness) -> None:
    case_id = h.new_case("T-RV-FULL")
    handle = await h.start(case_id)
    await h.until(handle, lambda p: p.stage is not None)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update("correct_account", AccountCorrection(actor="x"), result_type=CaseProgress)
    assert info.value.cause.details[0]["rule"] == "not_awaiting_correction"


def _return_after_paid(h: Harness, case_id: int, *, returned_at: datetime, kind: str = "passive") -> str:
    """The bank sends the money back days after `paid` (what the treasury callback stores)."""
    v = voucher(case_id, 1)
    with transaction(h.db_url) as session:
        instruction = payments.get(session=session, voucher=v)
        assert instruction is not None and instruction.status == "paid"
        result = InstructionResult(
            VoucherNo=v,
            Status="returned",
            PaidAmt=0,
            AcceptedAt=instruction.accepted_at or returned_at,
            SettledAt=instruction.settled_at or returned_at,
            ReturnType=kind,
            ReturnedAmt=instruction.paid_amt_fen,
            ReturnedAt=returned_at,
            Reason="户名与账号不符" if kind == "passive" else "企业主动退回",
        )
        assert payments.store_result(session=session, result=result) == "applied"
    return v


async def _paid_case(h: Harness) -> int:
    case_id, handle = await instant(h)
    assert (await handle.result()).status == "paid"
    return case_id


async def test_return_after_paid_same_year_restores_quota_and_pays_again(h: Harness) -> None:
    case_id = await _paid_case(h)
    before = h.totals(DEMO_ITEM)
    v = _return_after_paid(h, case_id, returned_at=datetime.now(UTC))
    await start_correction(h.client, case_id=case_id, voucher_no=v, task_queue=h.queue)
    await start_correction(h.client, case_id=case_id, voucher_no=v, task_queue=h.queue)  # a second call is a no-op
    handle = h.track(correction_workflow_id(case_id, v), CorrectionOutcome)
    await h.until(handle, lambda p: p.awaiting == "account_correction")
    assert h.case(case_id)["status"] == "awaiting_correction" and h.case(case_id)["paid_fen"] == 0
    assert h.totals(DEMO_ITEM)["committed_fen"] == before["committed_fen"] - AMOUNT  # quota restored
    await correct(h, handle)
    outcome = await handle.result()
    assert outcome.result == "paid" and outcome.attempt == 2
    assert h.ledger(case_id) == [("reserve", 1), ("commit", 1), ("restore", 1), ("reserve", 2), ("commit", 2)]
    assert h.returns(case_id) == [("passive", "restored", False)]
    assert h.payments(case_id) == [(1, "returned"), (2, "paid")]
    assert h.paid_instructions(case_id) == 1
    assert h.case(case_id)["status"] == "paid" and h.case(case_id)["paid_fen"] == AMOUNT
    assert h.totals(DEMO_ITEM)["committed_fen"] == before["committed_fen"]
    assert h.notices(case_id) == ["received", "approved", "paid", "payment_returned", "paid"]


async def test_cross_year_return_waits_for_finance_then_pays_without_restoring(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = await _paid_case(h)
    # The worker crashes once between the decision's event and its audit record: neither commits, the retry writes both.
    crashed = crash_first_audit_write(monkeypatch, f"case:{case_id}")
    before = h.totals(DEMO_ITEM)
    v = _return_after_paid(h, case_id, returned_at=datetime(2027, 1, 6, 2, 0, tzinfo=UTC))
    await start_correction(h.client, case_id=case_id, voucher_no=v, task_queue=h.queue)
    handle = h.track(correction_workflow_id(case_id, v), CorrectionOutcome)
    await correct(h, handle)
    await h.until(handle, lambda p: p.awaiting == "budget_decision")
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            "decide_budget", BudgetDecision(department="YC-JXJ", approve=True, actor="x"), result_type=CaseProgress
        )
    await handle.execute_update(
        "decide_budget",
        BudgetDecision(department="YC-CZJ", approve=True, actor="finance:YC-CZJ", comment="2027年预算重新安排"),
        result_type=CaseProgress,
    )
    outcome = await handle.result()
    assert outcome.result == "paid"
    assert h.returns(case_id) == [("passive", "back_to_finance", True)]
    assert h.ledger(case_id) == [("reserve", 1), ("commit", 1), ("reserve", 2), ("commit", 2)]  # no restore
    assert h.totals(DEMO_ITEM)["committed_fen"] == before["committed_fen"] + AMOUNT
    assert h.events(case_id).count("budget_decision") == 1
    # Finance's decision is in the audit chain although nothing but the workflow update ran (no API step after it).
    assert crashed == [f"case:{case_id}"]
    assert audit_records(h.db_url, f"case:{case_id}") == [
        ("decision", "finance:YC-CZJ", {"decision": "budget", "approve": True, "comment": "2027年预算重新安排"})
    ]


async def test_cross_year_return_without_new_budget_fails_finally(h: Harness) -> None:
    case_id = await _paid_case(h)
    v = _return_after_paid(h, case_id, returned_at=datetime(2027, 2, 1, 2, 0, tzinfo=UTC))
    await start_correction(h.client, case_id=case_id, voucher_no=v, task_queue=h.queue)
    handle = h.track(correction_workflow_id(case_id, v), CorrectionOutcome)
    await correct(h, handle)
    await h.until(handle, lambda p: p.awaiting == "budget_decision")
    await handle.execute_update(
        "decide_budget",
        BudgetDecision(department="YC-CZJ", approve=False, actor="finance:YC-CZJ"),
        result_type=CaseProgress,
    )
    outcome = await handle.result()
    assert outcome.result == "payment_failed"
    assert h.case(case_id)["status"] == "payment_failed" and "财政未重新安排预算" in h.case(case_id)["reason"]
    assert h.ledger(case_id) == [("reserve", 1), ("commit", 1)]


async def test_active_return_is_recorded_and_closes_the_case(h: Harness) -> None:
    case_id = await _paid_case(h)
    v = _return_after_paid(h, case_id, returned_at=datetime.now(UTC), kind="active")
    await start_correction(h.client, case_id=case_id, voucher_no=v, task_queue=h.queue)
    handle = h.track(correction_workflow_id(case_id, v), CorrectionOutcome)
    outcome = await handle.result()
    assert outcome.result == "closed"
    assert h.returns(case_id) == [("active", "restored", False)]
    assert h.ledger(case_id) == [("reserve", 1), ("commit", 1), ("restore", 1)]
    assert h.case(case_id)["status"] == "refunded" and h.case(case_id)["paid_fen"] == 0


async def test_correction_does_nothing_while_the_case_workflow_runs(h: Harness) -> None:
    case_id, handle = await instant(h, "failed")
    v = voucher(case_id, 1)
    await h.until(handle, lambda p: p.awaiting == "account_correction")
    await start_correction(h.client, case_id=case_id, voucher_no=v, task_queue=h.queue)
    outcome = await h.track(correction_workflow_id(case_id, v), CorrectionOutcome).result()
    assert outcome.result == "handled_by_case"
    await correct(h, handle)
    assert (await handle.result()).status == "paid"
    assert h.payments(case_id) == [(1, "failed"), (2, "paid")]
    assert h.ledger(case_id) == [("reserve", 1), ("release", 1), ("reserve", 2), ("commit", 2)]


async def test_correction_of_a_paid_voucher_is_not_applicable(h: Harness) -> None:
    case_id = await _paid_case(h)
    v = voucher(case_id, 1)
    await start_correction(h.client, case_id=case_id, voucher_no=v, task_queue=h.queue)
    outcome = await h.track(correction_workflow_id(case_id, v), CorrectionOutcome).result()
    assert outcome.result == "not_applicable"
    assert h.case(case_id)["status"] == "paid"


async def test_review_case_payment_failure_goes_through_the_same_stage(h: Harness) -> None:
    case_id = h.new_case("T-RV-AUTOAPP")
    h.treasury.script[voucher(case_id, 1)] = "failed"  # set before the workflow starts
    handle = await h.start(case_id)
    await h.env.sleep(timedelta(days=10))
    await correct(h, handle)
    result = await handle.result()
    assert result.status == "paid" and h.payments(case_id) == [(1, "failed"), (2, "paid")]
    assert h.ledger(case_id) == [("reserve", 1), ("release", 1), ("reserve", 2), ("commit", 2)]
