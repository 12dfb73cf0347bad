"""Eligibility at application (#12) on the time-skipping server: the quantified conditions are evaluated when the
application arrives and kept with the case; an item that rejects at once closes a definitely ineligible case with
the 不足之处 in the enterprise's notice, and sends the others (met, or missing data) to its departments."""

from __future__ import annotations

import copy

from cli.demo import add_listed_item
from db.repositories import cases, enterprises, fund_items
from db.session import transaction
from tests.workflows.conftest import Harness, _review, _stage

AT_ONCE = "T-RV-ELIG"
AT_ONCE_MISSING = "T-RV-ELIG-NA"
FIXED = {"kind": "fixed", "amount_fen": 5_000_000}


def _item(h: Harness, code: str, conditions: dict) -> None:
    config = copy.deepcopy(
        _review(stages=[_stage("first_review", ["YC-JXJ"], on_timeout="auto_reject")], reject_unmet_at_application=True)
    )
    config |= {"standard": FIXED, "conditions": conditions}
    with transaction(h.db_url) as session:
        if fund_items.get_by_code(session=session, code=code) is None:
            add_listed_item(session=session, code=code, department_code="YC-JXJ", config=config)


def _evidence(h: Harness, case_id: int) -> dict:
    with transaction(h.db_url) as session:
        case = cases.get(session=session, case_id=case_id)
        assert case is not None
        return dict(case.evidence)


async def test_unmet_conditions_reject_at_once_with_the_shortfall_in_the_notice(h: Harness) -> None:
    _item(h, AT_ONCE, {"op": "all", "items": [{"field": "employees", "op": "ge", "value": 1_000_000}]})
    case_id = h.new_case(AT_ONCE)
    handle = await h.start(case_id)
    result = await handle.result()

    assert result.status == "rejected"
    assert h.events(case_id) == ["received", "rejected"]  # no stage was opened: no department saw it
    rejected = h.event_rows(case_id)[-1]
    assert rejected["actor"] == "system:rules" and rejected["data"]["at_application"] is True
    assert h.case(case_id)["reason"].startswith("不符合申报条件：从业人数 ≥ 1,000,000 人：实际")
    assert h.notices(case_id) == ["received_review", "rejected"]
    text = h.notice_texts(case_id)[-1]
    assert "未通过审核" in text and "从业人数" in text and "不足" in text
    evidence = _evidence(h, case_id)
    assert evidence["outcome"] == "false" and evidence["rejected_at_once"] is True
    assert evidence["conditions"][0]["status"] == "unmet" and evidence["conditions"][0]["shortfall"] > 0
    assert h.tasks(case_id) == [] and h.ledger(case_id) == []


async def test_missing_data_goes_to_the_departments_with_the_check_kept(h: Harness) -> None:
    # employees met and the `not` holds, but the enterprise has no R&D ratio on file: unknown, not unmet, so the
    # reviewers decide (and see which datum is missing).
    conditions = {
        "op": "all",
        "items": [
            {"field": "employees", "op": "ge", "value": 1},
            {"op": "not", "item": {"field": "tags", "op": "has_tag", "value": "失信联合惩戒对象"}},
            {"field": "rd_ratio_bp", "op": "ge", "value": 1},
        ],
    }
    _item(h, AT_ONCE_MISSING, conditions)
    case_id = h.new_case(AT_ONCE_MISSING)
    with transaction(h.db_url) as session:
        case = cases.get(session=session, case_id=case_id)
        enterprises.get(session=session, enterprise_id=case.enterprise_id).rd_ratio_bp = None
    handle = await h.start(case_id)
    progress = await h.until(handle, lambda p: p.stage is not None and p.stage.key == "first_review")
    assert progress.status not in ("rejected", "received")
    evidence = _evidence(h, case_id)
    assert evidence["outcome"] == "unknown" and evidence["rejected_at_once"] is False
    assert [c["status"] for c in evidence["conditions"]] == ["met", "met", "missing"]
    assert h.notices(case_id) == ["received_review"]
