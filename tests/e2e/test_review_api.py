"""A review (申报审批) application walked through the real API on the embedded stack: department work lists,
decisions as workflow updates (refusals as 409/422 naming the field and rule), supplement, real-name
objections, and a flow without publicity paid through the treasury stand-in."""

from __future__ import annotations

import asyncio
import copy
import re

import httpx

from cli.demo import REVIEW_CONFIG, REVIEW_ITEM, add_listed_item, demo_enterprise_uscc
from db.repositories import budget, cases, fund_items
from db.session import transaction
from tests.stack import Stack
from tests.support import eventually


async def _post(stack: Stack, path: str, body: dict, headers: dict) -> httpx.Response:
    """In a thread: the in-process worker shares this event loop and must keep answering."""
    return await asyncio.to_thread(stack.http.post, path, json=body, headers=headers)


async def _get(stack: Stack, path: str, headers: dict) -> httpx.Response:
    return await asyncio.to_thread(stack.http.get, path, headers=headers)


async def _stage(stack: Stack, case_id: int, key: str, headers: dict) -> dict:
    """Wait until the live progress shows the stage open."""
    response = await eventually(
        lambda: stack.http.get(f"/api/v1/cases/{case_id}/progress", headers=headers),
        lambda r: r.status_code == 200 and (r.json().get("stage") or {}).get("key") == key,
        what=f"stage {key} of case {case_id} to open",
    )
    return response.json()


async def _status(stack: Stack, case_id: int, status: str, headers: dict) -> dict:
    response = await eventually(
        lambda: stack.http.get(f"/api/v1/cases/{case_id}/progress", headers=headers),
        lambda r: r.status_code == 200 and r.json()["status"] == status,
        what=f"case {case_id} to reach {status}",
    )
    return response.json()


async def test_review_application_through_the_api_until_an_upheld_objection(stack: Stack) -> None:
    uscc = demo_enterprise_uscc()
    ent = stack.token("enterprise", uscc)
    jxj, fgw, czj = (
        stack.token("department", "YC-JXJ"),
        stack.token("department", "YC-FGW"),
        stack.token("finance", "YC-CZJ"),
    )

    r = await _post(stack, "/api/v1/applications", {"fund_item_code": REVIEW_ITEM, "uscc": uscc}, ent)
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    progress = await _stage(stack, case_id, "completeness", ent)
    assert progress["stage"]["pending"] == ["YC-JXJ"] and progress["stage"]["due_at"]
    assert re.search(r"(Z|[+-]\d{2}:\d{2})$", progress["stage"]["due_at"])  # a moment with its offset

    tasks = (await _get(stack, "/api/v1/tasks", jxj)).json()
    assert [(t["case_id"], t["stage_key"]) for t in tasks] == [(case_id, "completeness")]
    assert (await _get(stack, "/api/v1/tasks", fgw)).json() == []

    wrong = await _post(
        stack, f"/api/v1/cases/{case_id}/decisions", {"stage_key": "completeness", "decision": "approve"}, fgw
    )
    # A department sees a case of another department's item only once a stage is assigned to it (联审).
    assert wrong.status_code == 404 and wrong.json()["error"]["errors"][0]["rule"] == "in_scope"
    as_enterprise = await _post(
        stack, f"/api/v1/cases/{case_id}/decisions", {"stage_key": "completeness", "decision": "approve"}, ent
    )
    assert as_enterprise.status_code == 403

    # 补正 and resubmission
    r = await _post(
        stack,
        f"/api/v1/cases/{case_id}/decisions",
        {"stage_key": "completeness", "decision": "return", "comment": "缺少设备发票"},
        jxj,
    )
    assert r.status_code == 200, r.text
    await _status(stack, case_id, "supplement", ent)
    resubmitted = await _post(stack, f"/api/v1/cases/{case_id}/supplement", {"comment": "已补充发票"}, ent)
    assert resubmitted.status_code == 200, resubmitted.text
    await _stage(stack, case_id, "completeness", ent)
    for stage, headers in (("completeness", jxj), ("first_review", jxj)):
        await _stage(stack, case_id, stage, ent)
        r = await _post(
            stack, f"/api/v1/cases/{case_id}/decisions", {"stage_key": stage, "decision": "approve"}, headers
        )
        assert r.status_code == 200, r.text
    await _stage(stack, case_id, "joint_review", ent)
    wrong = await _post(
        stack, f"/api/v1/cases/{case_id}/decisions", {"stage_key": "joint_review", "decision": "approve"}, jxj
    )
    assert wrong.status_code == 409
    error = wrong.json()["error"]["errors"][0]
    assert error["field"] == "department" and error["rule"] == "not_your_turn"
    over = await _post(
        stack,
        f"/api/v1/cases/{case_id}/decisions",
        {"stage_key": "joint_review", "decision": "approve", "amount_fen": 900_000_000},
        czj,
    )
    assert over.status_code == 422 and over.json()["error"]["errors"][0]["rule"] == "invalid_amount_over_cap"
    r = await _post(
        stack,
        f"/api/v1/cases/{case_id}/decisions",
        {"stage_key": "joint_review", "decision": "approve", "amount_fen": 1_600_000},
        czj,
    )
    assert r.status_code == 200 and r.json()["amount_fen"] == 1_600_000
    second = await _post(
        stack, f"/api/v1/cases/{case_id}/decisions", {"stage_key": "joint_review", "decision": "approve"}, fgw
    )
    assert second.status_code == 200
    await _status(stack, case_id, "publicity", ent)

    # Real-name objection: a bad ID number names the field; a valid one suspends the case.
    bad = await _post(
        stack,
        f"/api/v1/cases/{case_id}/review-objections",
        {"name": "张三", "id_number": "110105194912310021", "evidence": "设备发票与实际不符"},
        fgw,
    )
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["field"] == "id_number", bad.text
    filed = await _post(
        stack,
        f"/api/v1/cases/{case_id}/review-objections",
        {"name": "张三", "id_number": "11010519491231002X", "evidence": "设备发票与实际不符"},
        fgw,
    )
    assert filed.status_code == 201, filed.text
    objection = filed.json()
    assert objection["id_number_masked"] == "110105********002X"
    await _status(stack, case_id, "objection", ent)
    r = await _post(
        stack,
        f"/api/v1/cases/{case_id}/review-objections/{objection['id']}/ruling",
        {"uphold": True, "comment": "发票不实"},
        jxj,
    )
    assert r.status_code == 200, r.text
    case = await stack.wait_status(case_id, {"rejected"}, ent)
    kinds = [e["kind"] for e in case["events"]]
    assert kinds[-2:] == ["objection_upheld", "rejected"]
    assert [n["template_key"] for n in case["notices"]] == [
        "received_review",
        "supplement_requested",
        "publicity_started",
        "objection_received",
        "rejected",
    ]
    late = await _post(stack, f"/api/v1/cases/{case_id}/withdraw", {}, ent)
    assert late.status_code == 409


async def test_review_without_publicity_is_paid_through_the_treasury(stack: Stack) -> None:
    config = copy.deepcopy(REVIEW_CONFIG)
    config["approval"].pop("publicity")
    config["approval"].pop("completeness_check")
    config["approval"]["stages"] = config["approval"]["stages"][:1]
    with transaction(stack.settings.db_url) as session:
        add_listed_item(session=session, code="YC-2026-JSGZ-T02", department_code="YC-JXJ", config=config)
    uscc = demo_enterprise_uscc()
    ent = stack.token("enterprise", uscc)
    jxj, czj = stack.token("department", "YC-JXJ"), stack.token("finance", "YC-CZJ")
    applied = await _post(stack, "/api/v1/applications", {"fund_item_code": "YC-2026-JSGZ-T02", "uscc": uscc}, ent)
    case_id = applied.json()["id"]
    await _stage(stack, case_id, "first_review", ent)
    r = await _post(
        stack,
        f"/api/v1/cases/{case_id}/decisions",
        {"stage_key": "first_review", "decision": "approve", "amount_fen": 880_000},
        jxj,
    )
    assert r.status_code == 200, r.text
    await _stage(stack, case_id, "finance", ent)
    assert [t["stage_key"] for t in (await _get(stack, "/api/v1/tasks", czj)).json()] == ["finance"]
    r = await _post(
        stack,
        f"/api/v1/cases/{case_id}/decisions",
        {"stage_key": "finance", "decision": "approve", "comment": "同意"},
        czj,
    )
    assert r.status_code == 200, r.text
    case = await stack.wait_status(case_id, {"paid", "payment_failed"}, ent)
    assert case["status"] == "paid" and case["paid_fen"] == 880_000
    assert [n["template_key"] for n in case["notices"]] == ["received_review", "approved", "paid"]
    with transaction(stack.settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code="YC-2026-JSGZ-T02")
        assert budget.totals(session=session, fund_item_id=item.id)["committed_fen"] == 880_000
        assert cases.verify_chain(session=session, case_id=case_id)


async def test_failed_payment_is_corrected_through_the_api_and_paid_once(stack: Stack) -> None:
    """The treasury stand-in fails a payee whose account name is wrong; the enterprise corrects it via the API."""
    from sqlalchemy import select

    from cli.demo import DEMO_ITEM
    from db.models import Enterprise

    uscc = demo_enterprise_uscc()
    with transaction(stack.settings.db_url) as session:
        enterprise = session.scalar(select(Enterprise).where(Enterprise.uscc == uscc))
        enterprise.bank_account_name = "宜昌长江精工科技有限公司（错误户名）"
    ent = stack.token("enterprise", uscc)
    applied = await _post(stack, "/api/v1/applications", {"fund_item_code": DEMO_ITEM, "uscc": uscc}, ent)
    case_id = applied.json()["id"]
    progress = await _status(stack, case_id, "awaiting_correction", ent)
    assert progress["awaiting"] == "account_correction" and progress["deadlines"]["account_correction"]
    bad = await _post(stack, f"/api/v1/cases/{case_id}/account", {"acct_no": "12", "acct_name": "x"}, ent)
    assert bad.status_code == 422
    account = {
        "acct_no": "420500112233445566",
        "acct_name": "宜昌长江精工科技有限公司",
        "bank_name": "中国工商银行宜昌分行营业部",
        "bank_code": "102526000011",
    }
    fixed = await _post(stack, f"/api/v1/cases/{case_id}/account", account, ent)
    assert fixed.status_code == 200, fixed.text
    case = await stack.wait_status(case_id, {"paid", "payment_failed"}, ent)
    assert case["status"] == "paid" and case["paid_fen"] == 10_000_000
    assert [(p["attempt"], p["status"]) for p in case["payments"]] == [(1, "failed"), (2, "paid")]
    assert case["payments"][1]["payee_acct_no_masked"] == "4205****5566"
    assert [n["template_key"] for n in case["notices"]] == ["received", "approved", "payment_returned", "paid"]
    again = await _post(stack, f"/api/v1/cases/{case_id}/account", account, ent)
    assert again.status_code == 409
