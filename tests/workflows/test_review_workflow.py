"""ReviewCaseWorkflow on the time-skipping server with the real activities on SQLite: every stage decision,
timeout policy, supplement, objection, withdrawal and revocation, asserting state, events, notices, ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from db import crypto
from db.repositories import cases, reviews
from db.session import transaction
from schemas.cases import (
    CaseProgress,
    DecisionIn,
    ObjectionFiled,
    ObjectionRuling,
    Resubmission,
    RevokeIn,
    WithdrawIn,
)
from tests.support import audit_records, crash_first_audit_write
from tests.workflows.conftest import FERNET_KEY, Harness

FULL = "T-RV-FULL"


async def decide(
    handle: WorkflowHandle, stage: str, department: str, decision: str = "approve", **kw: object
) -> CaseProgress:
    body = DecisionIn(stage_key=stage, department=department, decision=decision, actor=f"department:{department}", **kw)
    return await handle.execute_update("decide", body, result_type=CaseProgress)


async def refused(handle: WorkflowHandle, update: str, body: object) -> dict:
    """The update is refused by its validator: returns the error's field and rule."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, body, result_type=CaseProgress)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    details = cause.details[0]
    return {"rule": details["rule"], "field": details["field"], "message": cause.message}


def at(stage: str):
    return lambda p: p.stage is not None and p.stage.key == stage


async def through_reviews(h: Harness, handle: WorkflowHandle, amount_fen: int = 1_600_000) -> None:
    """The full item's completeness check, first review and joint review, all approving."""
    await h.until(handle, at("completeness"))
    await decide(handle, "completeness", "YC-JXJ")
    await h.until(handle, at("first_review"))
    await decide(handle, "first_review", "YC-JXJ", comment="项目真实，投资额经核实")
    await h.until(handle, at("joint_review"))
    await decide(handle, "joint_review", "YC-CZJ", amount_fen=amount_fen)
    await decide(handle, "joint_review", "YC-FGW")


async def test_full_flow_is_paid_after_every_stage_and_refuses_wrong_decisions(h: Harness) -> None:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    progress = await h.until(handle, at("completeness"))
    assert progress.status == "completeness" and progress.stage.pending == ["YC-JXJ"]
    assert progress.stage.due_at is not None and progress.deadlines["completeness"] == progress.stage.due_at

    # Only the department whose turn it is, only the current stage, only once; state unchanged after a refusal.
    wrong = await refused(
        handle, "decide", DecisionIn(stage_key="completeness", department="YC-FGW", decision="approve", actor="x")
    )
    assert wrong["rule"] == "not_your_turn" and wrong["field"] == "department" and "YC-FGW" in wrong["message"]
    stage = await refused(
        handle, "decide", DecisionIn(stage_key="joint_review", department="YC-CZJ", decision="approve", actor="x")
    )
    assert stage["rule"] == "not_current_stage"
    await decide(handle, "completeness", "YC-JXJ")
    await h.until(handle, at("first_review"))
    again = await refused(
        handle, "decide", DecisionIn(stage_key="completeness", department="YC-JXJ", decision="approve", actor="x")
    )
    assert again["rule"] == "not_current_stage"
    await decide(handle, "first_review", "YC-JXJ")
    await h.until(handle, at("joint_review"))
    over = await refused(
        handle,
        "decide",
        DecisionIn(
            stage_key="joint_review", department="YC-CZJ", decision="approve", actor="x", amount_fen=300_000_000
        ),
    )
    assert over["rule"] == "invalid_amount_over_cap" and over["field"] == "amount_fen"
    progress = await decide(handle, "joint_review", "YC-CZJ", amount_fen=1_600_000)
    assert progress.stage.pending == ["YC-FGW"] and progress.amount_fen == 1_600_000  # 联审 'all' waits for both
    twice = await refused(
        handle, "decide", DecisionIn(stage_key="joint_review", department="YC-CZJ", decision="approve", actor="x")
    )
    assert twice["rule"] == "already_decided"
    await decide(handle, "joint_review", "YC-FGW")

    # Publicity runs on a durable timer (skipped), then finance decides (manual standard: not automatic).
    await h.until(handle, lambda p: p.status == "publicity")
    await h.env.sleep(timedelta(days=9))
    await h.until(handle, at("finance"))
    await decide(handle, "finance", "YC-CZJ", comment="同意拨付")
    result = await handle.result()

    assert result.status == "paid" and result.amount_fen == 1_600_000
    kinds = h.events(case_id)
    assert kinds[:2] == ["received", "stage_opened"]
    assert kinds.count("decision") == 5 and kinds.count("stage_opened") == 4
    assert kinds == [
        "received",
        *["stage_opened", "decision"] * 2,
        *["stage_opened", "decision", "decision"],  # 联审: both departments
        "publicity_started",
        *["stage_opened", "decision"],  # finance
        "finance_approved",
        "payment_sent",
        "paid",
    ]
    assert h.notices(case_id) == ["received_review", "publicity_started", "approved", "paid"]
    assert any("壹万陆仟元整" in t for t in h.notice_texts(case_id))
    assert h.ledger(case_id) == [("reserve", 1), ("commit", 1)]
    assert h.case(case_id) == {"status": "paid", "amount_fen": 1_600_000, "paid_fen": 1_600_000, "reason": None}
    assert all(status == "done" for _, _, status, _ in h.tasks(case_id))
    assert h.paid_instructions(case_id) == 1


async def test_joint_review_rejection_closes_the_case_with_the_reason(h: Harness) -> None:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    await h.until(handle, at("completeness"))
    await decide(handle, "completeness", "YC-JXJ")
    await h.until(handle, at("first_review"))
    await decide(handle, "first_review", "YC-JXJ")
    await h.until(handle, at("joint_review"))
    missing = await refused(
        handle, "decide", DecisionIn(stage_key="joint_review", department="YC-FGW", decision="reject", actor="x")
    )
    assert missing["rule"] == "invalid_comment_required" and missing["field"] == "comment"
    await decide(handle, "joint_review", "YC-FGW", "reject", comment="项目未取得备案")
    result = await handle.result()
    assert result.status == "rejected"
    assert h.case(case_id)["status"] == "rejected" and "项目未取得备案" in h.case(case_id)["reason"]
    assert h.events(case_id)[-1] == "rejected"
    assert h.notices(case_id) == ["received_review", "rejected"]
    assert h.ledger(case_id) == []
    assert ("joint_review", "YC-CZJ", "closed", None) in h.tasks(case_id)


async def test_first_review_rejection(h: Harness) -> None:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    await h.until(handle, at("completeness"))
    await decide(handle, "completeness", "YC-JXJ")
    await h.until(handle, at("first_review"))
    await decide(handle, "first_review", "YC-JXJ", "reject", comment="不属于制造业")
    assert (await handle.result()).status == "rejected"
    assert h.notices(case_id) == ["received_review", "rejected"]


async def test_supplement_met_resumes_the_stage_and_the_limit_is_enforced(h: Harness) -> None:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    await h.until(handle, at("completeness"))
    progress = await decide(handle, "completeness", "YC-JXJ", "return", comment="缺少专项审计报告")
    progress = await h.until(handle, lambda p: p.awaiting == "supplement")
    assert progress.status == "supplement" and "supplement" in progress.deadlines
    bad = await refused(
        handle, "decide", DecisionIn(stage_key="completeness", department="YC-JXJ", decision="approve", actor="x")
    )
    assert bad["rule"] == "stage_not_open"
    await handle.execute_update(
        "resubmit", Resubmission(actor="enterprise:x", comment="已补充审计报告"), result_type=CaseProgress
    )
    progress = await h.until(handle, lambda p: at("completeness")(p) and p.stage.round == 2)
    assert progress.supplements == 1
    # The configured maximum (1) is used up: a second return is refused.
    limit = await refused(
        handle,
        "decide",
        DecisionIn(stage_key="completeness", department="YC-JXJ", decision="return", actor="x", comment="再补"),
    )
    assert limit["rule"] == "supplement_limit" and limit["field"] == "decision"
    await decide(handle, "completeness", "YC-JXJ")
    await h.until(handle, at("first_review"))
    kinds = h.events(case_id)
    assert [k for k in kinds if k.startswith("supplement")] == ["supplement_requested", "supplement_received"]
    assert h.notices(case_id) == ["received_review", "supplement_requested"]
    assert "缺少专项审计报告" in h.notice_texts(case_id)[1]
    assert ("completeness", "YC-JXJ", "done", "return") in h.tasks(case_id)


async def test_supplement_missed_closes_the_case_as_withdrawn(h: Harness) -> None:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    await h.until(handle, at("completeness"))
    await decide(handle, "completeness", "YC-JXJ", "return", comment="缺少项目备案证明")
    await h.until(handle, lambda p: p.awaiting == "supplement")
    result = await handle.result()  # the enterprise never answers: its deadline passes (time skipped)
    assert result.status == "withdrawn"
    kinds = h.events(case_id)
    assert "stage_enterprise_reminder" in kinds and kinds[-1] == "withdrawn"
    assert h.notices(case_id) == ["received_review", "supplement_requested", "deadline_reminder", "case_withdrawn"]
    assert "逾期未补正" in h.case(case_id)["reason"]


async def test_joint_any_mode_passes_on_one_approval_and_auto_finance(h: Harness) -> None:
    case_id = h.new_case("T-RV-ANY")
    handle = await h.start(case_id)
    await h.until(handle, at("joint_review"))
    fixed = await refused(
        handle,
        "decide",
        DecisionIn(stage_key="joint_review", department="YC-CZJ", decision="approve", actor="x", amount_fen=1),
    )
    assert fixed["rule"] == "invalid_amount_quantified"
    await decide(handle, "joint_review", "YC-FGW", "reject", comment="不同意")
    progress = await handle.query("status", result_type=CaseProgress)
    assert progress.stage is not None and progress.stage.pending == ["YC-CZJ"]  # 'any': one reject is not the end
    await decide(handle, "joint_review", "YC-CZJ")
    result = await handle.result()
    assert result.status == "paid" and result.amount_fen == 5_000_000
    assert "finance_approved" in h.events(case_id)
    assert next(e for e in h.event_rows(case_id) if e["kind"] == "finance_approved")["actor"] == "system:finance"
    assert h.notices(case_id) == ["received_review", "approved", "paid"]


async def test_timeout_auto_approve(h: Harness) -> None:
    case_id = h.new_case("T-RV-AUTOAPP")
    handle = await h.start(case_id)
    result = await handle.result()  # nobody decides: the deadline passes and the stage counts as approved
    assert result.status == "paid"
    rows = h.event_rows(case_id)
    reminder = [e for e in rows if e["kind"] == "stage_reminder"]
    timeout = [e for e in rows if e["kind"] == "stage_timeout"]
    assert len(reminder) == 1 and len(timeout) == 1 and "逾期视为同意" in timeout[0]["reason"]
    decision = next(e for e in rows if e["kind"] == "decision")
    assert decision["actor"] == "system:timeout" and decision["data"]["system"] is True
    assert h.ledger(case_id) == [("reserve", 1), ("commit", 1)]


async def test_timeout_auto_reject(h: Harness) -> None:
    case_id = h.new_case("T-RV-AUTOREJ")
    handle = await h.start(case_id)
    result = await handle.result()
    assert result.status == "rejected"
    assert "逾期未办理" in h.case(case_id)["reason"]
    assert [k for k in h.events(case_id) if k.startswith("stage_")] == [
        "stage_opened",
        "stage_reminder",
        "stage_timeout",
    ]
    assert h.notices(case_id) == ["received_review", "rejected"]
    assert ("first_review", "YC-JXJ", "closed", None) in h.tasks(case_id)


async def test_timeout_escalates_to_the_configured_department(h: Harness) -> None:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    await h.until(handle, at("completeness"))
    await decide(handle, "completeness", "YC-JXJ")
    await h.until(handle, at("first_review"))
    await h.env.sleep(timedelta(days=12))  # past the 5-working-day limit
    progress = await h.until(handle, lambda p: p.stage is not None and p.stage.escalated)
    assert progress.stage.pending == ["YC-SJJ"]
    late = await refused(
        handle, "decide", DecisionIn(stage_key="first_review", department="YC-JXJ", decision="approve", actor="x")
    )
    assert late["rule"] == "not_your_turn"
    await decide(handle, "first_review", "YC-SJJ", comment="上报后同意")
    await h.until(handle, at("joint_review"))
    kinds = h.events(case_id)
    assert "stage_timeout" in kinds and "stage_escalated" in kinds
    assert ("first_review", "YC-JXJ", "timed_out", None) in h.tasks(case_id)
    assert ("first_review", "YC-SJJ", "done", "approve") in h.tasks(case_id)


async def _to_publicity(h: Harness) -> tuple[int, WorkflowHandle]:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    await through_reviews(h, handle)
    await h.until(handle, lambda p: p.status == "publicity")
    return case_id, handle


def _objection(h: Harness, case_id: int) -> int:
    with transaction(h.db_url) as session:
        case = cases.get(session=session, case_id=case_id)
        return reviews.add_objection(
            session=session,
            case=case,
            objector_name="张三",
            id_number_enc=crypto.encrypt(FERNET_KEY, "11010519491231002X"),
            id_number_masked="110105********002X",
            phone_enc=None,
            evidence="该企业设备发票与实际不符",
        ).id


async def test_objection_upheld_rejects_the_case(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    case_id, handle = await _to_publicity(h)
    # The worker crashes once between the ruling's effect and its audit record: neither commits, the retry writes both.
    crashed = crash_first_audit_write(monkeypatch, f"case:{case_id}")
    objection_id = _objection(h, case_id)
    progress = await handle.execute_update(
        "file_objection", ObjectionFiled(objection_id=objection_id), result_type=CaseProgress
    )
    assert progress.status == "objection" and progress.objections_open == [objection_id]
    wrong = await refused(
        handle,
        "rule_objection",
        ObjectionRuling(objection_id=objection_id, department="YC-FGW", uphold=True, actor="x"),
    )
    assert wrong["rule"] == "not_your_turn"
    ruling = ObjectionRuling(
        objection_id=objection_id, department="YC-JXJ", uphold=True, actor="department:YC-JXJ", comment="发票不实"
    )
    await handle.execute_update("rule_objection", ruling, result_type=CaseProgress)
    result = await handle.result()
    assert result.status == "rejected"
    assert "发票不实" in h.case(case_id)["reason"]
    assert h.notices(case_id) == ["received_review", "publicity_started", "objection_received", "rejected"]
    assert h.ledger(case_id) == []
    with transaction(h.db_url) as session:
        assert reviews.get_objection(session=session, objection_id=objection_id).status == "upheld"
    assert h.events(case_id).count("objection_upheld") == 1
    # The ruling is in the audit chain although nothing but the workflow update ran (no API step after it).
    assert crashed == [f"case:{case_id}"]
    assert audit_records(h.db_url, f"case:{case_id}") == [
        ("decision", "department:YC-JXJ", {"decision": "objection_ruling", "objection_id": objection_id, "uphold": True})
    ]


async def test_objection_dismissed_suspends_then_continues_to_payment(h: Harness) -> None:
    case_id, handle = await _to_publicity(h)
    objection_id = _objection(h, case_id)
    await handle.execute_update("file_objection", ObjectionFiled(objection_id=objection_id), result_type=CaseProgress)
    # The publicity period ends while the objection is open: the case waits for the ruling.
    await h.env.sleep(timedelta(days=10))
    progress = await h.until(handle, lambda p: p.awaiting == "objection_ruling")
    assert progress.status == "objection"
    closed = await refused(handle, "file_objection", ObjectionFiled(objection_id=objection_id + 1000))
    assert closed["rule"] == "publicity_closed"
    ruling = ObjectionRuling(
        objection_id=objection_id, department="YC-JXJ", uphold=False, actor="department:YC-JXJ", comment="经核查不属实"
    )
    await handle.execute_update("rule_objection", ruling, result_type=CaseProgress)
    await h.until(handle, at("finance"))
    await decide(handle, "finance", "YC-CZJ")
    assert (await handle.result()).status == "paid"
    assert "objection_dismissed" in h.events(case_id)
    assert ("objection", "YC-JXJ", "done", "dismiss") in h.tasks(case_id)


async def test_enterprise_withdraws_during_review(h: Harness) -> None:
    case_id = h.new_case(FULL)
    handle = await h.start(case_id)
    await h.until(handle, at("completeness"))
    progress = await handle.execute_update("withdraw", WithdrawIn(actor="enterprise:x"), result_type=CaseProgress)
    assert progress.status == "withdrawn"
    assert (await handle.result()).status == "withdrawn"
    assert h.events(case_id)[-1] == "withdrawn"
    assert h.notices(case_id) == ["received_review", "case_withdrawn"]
    assert ("completeness", "YC-JXJ", "closed", None) in h.tasks(case_id)


async def test_department_revokes_during_publicity(h: Harness) -> None:
    case_id, handle = await _to_publicity(h)
    outsider = await refused(handle, "revoke", RevokeIn(department="YC-RSJ", actor="x", reason="不是本部门"))
    assert outsider["rule"] == "not_case_department"
    progress = await handle.execute_update(
        "revoke",
        RevokeIn(department="YC-JXJ", actor="department:YC-JXJ", reason="企业存在重复申报"),
        result_type=CaseProgress,
    )
    assert progress.status == "revoked"
    assert (await handle.result()).status == "revoked"
    rows = h.event_rows(case_id)
    assert rows[-1]["kind"] == "revoked" and rows[-1]["actor"] == "department:YC-JXJ"
    assert h.notices(case_id)[-1] == "case_revoked"
    assert h.ledger(case_id) == []
    assert h.case(case_id)["status"] == "revoked"


async def test_joint_review_return_reopens_the_stage_for_both_departments(h: Harness) -> None:
    case_id = h.new_case("T-RV-ANY")
    handle = await h.start(case_id)
    await h.until(handle, at("joint_review"))
    await decide(handle, "joint_review", "YC-FGW", "return", comment="补充设备清单")
    await h.until(handle, lambda p: p.awaiting == "supplement")
    await handle.execute_update("resubmit", Resubmission(actor="enterprise:x"), result_type=CaseProgress)
    progress = await h.until(handle, lambda p: at("joint_review")(p) and p.stage.round == 2)
    assert progress.stage.pending == ["YC-CZJ", "YC-FGW"]
    await decide(handle, "joint_review", "YC-FGW")
    assert (await handle.result()).status == "paid"
    assert ("joint_review", "YC-CZJ", "closed", None) in h.tasks(case_id)  # round 1 ended by the return
    assert ("joint_review", "YC-FGW", "done", "return") in h.tasks(case_id)


async def test_finance_rejection_after_publicity(h: Harness) -> None:
    case_id, handle = await _to_publicity(h)
    await h.env.sleep(timedelta(days=9))
    await h.until(handle, at("finance"))
    no_return = await refused(
        handle,
        "decide",
        DecisionIn(stage_key="finance", department="YC-CZJ", decision="return", actor="x", comment="x"),
    )
    assert no_return["rule"] == "finance_no_return"
    await decide(handle, "finance", "YC-CZJ", "reject", comment="预算已调整")
    assert (await handle.result()).status == "rejected"
    assert h.notices(case_id) == ["received_review", "publicity_started", "rejected"]
    assert h.ledger(case_id) == []
