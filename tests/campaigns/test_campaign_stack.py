"""Campaigns on the embedded stack (real Temporal dev server, treasury stand-in over signed HTTP, API):
listing pays every matched enterprise in batches, a failed line gets its correction workflow, finance decides a
wave by update, an archive change pays a newly eligible enterprise once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus
from typer.testing import CliRunner

from cli.main import app
from db.models import AuditRecord, Case, CaseEvent, Notice, PaymentInstruction
from db.repositories import budget, fund_items
from db.repositories import campaigns as repo
from db.session import transaction
from settings import get_settings
from tests.api.scoping import csrf_headers
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, add_item, item_config
from tests.stack import Stack
from tests.support import audit_records, crash_first_audit_write, eventually
from workflows.client import connect, correction_workflow_id

REGION = "420581"  # 宜都市: the demo enterprises (42050x) stay out of these campaigns
SOCIAL = {"source": "social"}  # the head count belongs to the social-security source


def small_batches(stack: Stack) -> None:
    """Batches of a few cases, so a few dozen enterprises still take several batches of every kind, and a run
    continues as new after a few activities (the history of one run stays small)."""
    stack.api.server.config.app.state.campaign_options = {
        "batch_size": 7,
        "pay_batch_size": 9,
        "poll_seconds": 0.3,
        "max_steps_per_run": 5,
    }


def list_item(stack: Stack, code: str, config: dict[str, Any]) -> None:
    dept = stack.token("department", "YC-RSJ")
    created = stack.http.post("/api/v1/fund-items", json={"code": code, "config": config}, headers=dept)
    assert created.status_code == 201, created.text
    assert stack.http.post(f"/api/v1/fund-items/{code}/submit", headers=dept).status_code == 200
    listed = stack.http.post(f"/api/v1/fund-items/{code}/list", headers=dept)
    assert listed.status_code == 200, listed.text
    assert any("免申即享批量兑付" in note for note in listed.json()["notes"])


async def wait_campaign(stack: Stack, code: str, done: Any, timeout: float = 180) -> dict:
    """The campaign of `code` as the API lists it, once `done(campaign)` holds."""
    headers = stack.token("finance", "YC-CZJ")
    url = f"/api/v1/campaigns?fund_item_code={code}"
    rows = await eventually(
        lambda: stack.http.get(url, headers=headers).json(),
        lambda rows: bool(rows) and done(rows[0]),
        what=f"the campaign of {code} to get on",
        timeout=timeout,
        every=0.3,
    )
    return rows[0]


def config(**kw: Any) -> dict[str, Any]:
    return item_config(region=REGION, **kw)


async def test_listing_pays_every_matched_enterprise_and_a_failed_line_gets_a_correction(stack: Stack) -> None:
    small_batches(stack)
    code = "T7-E2E-PAY-001"
    with transaction(stack.settings.db_url) as session:
        people = add_enterprises(session, stack.settings.fernet_key(), 30, seed=11, region=REGION, fault_names=2)
        faulty = {e.id for e in people[:2]}
    list_item(stack, code, config(budget_fen=40 * AMOUNT_FEN))
    progress = await wait_campaign(stack, code, lambda p: p["finished"])

    assert progress["matched"] == 30 and progress["paid"] == 28 and progress["failed"] == 2
    assert progress["paid_fen"] == 28 * AMOUNT_FEN and progress["instructed"] == 30
    with transaction(stack.settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code=code)
        totals = budget.totals(session=session, fund_item_id=item.id)
        assert totals["committed_fen"] == 28 * AMOUNT_FEN
        cases = session.scalars(select(Case).where(Case.fund_item_id == item.id)).all()
        assert {c.status for c in cases if c.enterprise_id in faulty} <= {"payment_failed", "awaiting_correction"}
        paid = [c for c in cases if c.status == "paid"]
        assert len(paid) == 28 and all(c.paid_fen == AMOUNT_FEN for c in paid)
        kinds = session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == paid[0].id).order_by(CaseEvent.seq))
        # The wave's automatic approval is one chained audit record; the payment event names the wave.
        assert list(kinds) == ["matched", "budget_reserved", "payment_sent", "paid"]
        sent = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == paid[0].id, CaseEvent.kind == "payment_sent")
        ).one()
        assert sent.from_status == "reserved" and sent.data["finance"] == "auto" and sent.data["tranche"] == 1
        wave = f"campaign:{repo.for_item(session=session, fund_item_id=item.id)[0].id}:tranche:1"
        decision = session.scalars(
            select(AuditRecord).where(AuditRecord.kind == "decision", AuditRecord.subject == wave)
        ).one_or_none()
        assert decision is not None and decision.data["approve"] is True and decision.actor == "system:auto"
        paid_notices = session.scalars(
            select(Notice.content).where(Notice.fund_item_id == item.id, Notice.template_key == "paid")
        ).all()
        assert len(paid_notices) == 28 and all("壹万元整" in text for text in paid_notices)
        assert (
            session.scalar(
                select(func.count()).select_from(PaymentInstruction).join(Case).where(Case.fund_item_id == item.id)
            )
            == 30
        )
        failed = session.execute(
            select(PaymentInstruction.case_id, PaymentInstruction.voucher_no)
            .join(Case)
            .where(Case.fund_item_id == item.id, PaymentInstruction.status == "failed")
        ).all()
    assert len(failed) == 2
    client = await connect(stack.settings)
    # The database says finished a moment before the last run completes, and visibility lags a little behind that.
    await client.get_workflow_handle(f"campaign:{code}:v1").result()

    async def runs_seen() -> list:
        return [w async for w in client.list_workflows(f"WorkflowId = 'campaign:{code}:v1'")]

    runs = await eventually(
        runs_seen,
        lambda runs: any(r.status == WorkflowExecutionStatus.COMPLETED for r in runs),
        what=f"the completed run of campaign:{code}:v1 in visibility",
    )
    assert len(runs) > 2  # continued as new several times; every run but the last is ContinuedAsNew
    assert sum(r.status == WorkflowExecutionStatus.COMPLETED for r in runs) == 1
    for case_id, voucher in failed:
        described = await client.get_workflow_handle(correction_workflow_id(case_id, voucher)).describe()
        assert described.workflow_type == "PaymentCorrectionWorkflow"
        assert described.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED)


async def test_finance_decides_the_wave_by_update_and_a_wrong_wave_is_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(stack)
    code = "T7-E2E-FIN-001"
    with transaction(stack.settings.db_url) as session:
        add_enterprises(session, stack.settings.fernet_key(), 12, seed=12, region=REGION)
    list_item(stack, code, config(budget_fen=12 * AMOUNT_FEN, finance_auto=False))
    waiting = await wait_campaign(stack, code, lambda p: p["awaiting_tranche"] == 1)
    assert waiting["awaiting_finance"] == 12 and waiting["tranches"][0]["amount_fen"] == 12 * AMOUNT_FEN
    finance = stack.token("finance", "YC-CZJ")
    url = f"/api/v1/campaigns/{waiting['campaign_id']}/finance-decisions"
    live_url = f"/api/v1/campaigns/{waiting['campaign_id']}?source=workflow"
    live = await eventually(  # the workflow's own query says when it waits for the decision
        lambda: stack.http.get(live_url, headers=finance).json(),
        lambda live: live.get("awaiting_tranche") == 1,
        what="the campaign workflow to wait for finance's decision on tranche 1",
    )
    assert live["awaiting_tranche"] == 1 and live["matched"] == 12 and live["reserved"] == 12
    # The worker runs on this event loop: calls that wait for the workflow go through a thread.
    wrong = await asyncio.to_thread(stack.http.post, url, json={"tranche": 2, "approve": True}, headers=finance)
    assert wrong.status_code == 409 and "第 1 批" in wrong.json()["error"]["message"]
    dept = stack.token("department", "YC-RSJ")
    assert stack.http.post(url, json={"tranche": 1, "approve": True}, headers=dept).status_code == 403
    # The decision from the finance page's form (one decision on the whole wave, its totals on the button).
    cookie = {"Cookie": f"zhida_token={finance['Authorization'][7:]}"}
    page = stack.http.get(f"/web/campaigns/{waiting['campaign_id']}", headers=cookie)
    assert "同意拨付（12 家，120,000.00元）" in page.text
    form = {"tranche": "1", "approve": "yes", "note": "同意"}
    # The worker crashes once between the wave's decision and its audit record: the retry writes both, once.
    crashed = crash_first_audit_write(monkeypatch, f"campaign:{waiting['campaign_id']}")
    ok = await asyncio.to_thread(
        stack.http.post,
        f"/web/campaigns/{waiting['campaign_id']}/decision",
        data=form,
        headers=cookie | csrf_headers(stack.settings.jwt_key(), finance["Authorization"][7:]),
    )
    assert ok.status_code == 303, ok.text
    done = await wait_campaign(stack, code, lambda p: p["finished"])
    assert done["paid"] == 12 and done["budget_left_fen"] == 0
    assert done["tranches"][0]["finance_status"] == "approved"
    # The decision's audit record was written with the wave's decision by the workflow's activity, once.
    assert crashed == [f"campaign:{done['campaign_id']}"]
    assert audit_records(stack.settings.db_url, f"campaign:{done['campaign_id']}") == [
        ("decision", "finance:YC-CZJ", {"decision": "campaign_tranche", "tranche": 1, "approve": True, "note": "同意"})
    ]
    page = stack.http.get(f"/web/campaigns/{done['campaign_id']}", headers=cookie)
    assert page.status_code == 200 and "已拨付 12 / 匹配 12 家" in page.text and "已同意" in page.text
    listing = stack.http.get("/web/campaigns", headers=cookie)
    assert listing.status_code == 200 and code in listing.text and "上架比对" in listing.text


def test_campaign_progress_command_shows_the_figures(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """`zhida campaign progress ITEM` on a finished campaign prints its figures (the live bar is for running ones)."""
    with transaction(stack.settings.db_url) as session:
        item = add_item(session, "T7-CLI-001", config(budget_fen=5 * AMOUNT_FEN))
        add_enterprises(session, stack.settings.fernet_key(), 3, seed=14, region="420582")
        campaign = repo.register_listing(session=session, item=item, version=1)
        repo.set_phase(session=session, campaign_id=campaign.id, phase="done")
    monkeypatch.setenv("ZHIDA_DATABASE_URL", stack.settings.db_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["campaign", "progress", "T7-CLI-001"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "T7-CLI-001" in result.output and "已拨付" in result.output and "预算余额" in result.output
    assert "…" not in result.output  # no figure cut short, whatever the terminal's width
    assert "50,000.00" in result.output
    missing = CliRunner().invoke(app, ["campaign", "progress", "NO-SUCH-ITEM"])
    assert missing.exit_code != 0 and "不存在" in missing.output


async def test_archive_change_pays_a_newly_eligible_enterprise_once(stack: Stack) -> None:
    small_batches(stack)
    code = "T7-E2E-RE-001"
    with transaction(stack.settings.db_url) as session:
        people = add_enterprises(session, stack.settings.fernet_key(), 6, seed=13, region=REGION)
        people[5].employees = 5  # below the 10-employee condition
        late = people[5].uscc
    list_item(stack, code, config(budget_fen=10 * AMOUNT_FEN))
    first = await wait_campaign(stack, code, lambda p: p["finished"])
    assert first["paid"] == 5
    dept = stack.token("department", "YC-RSJ")
    # Archive data belongs to its owners: a policy department may not change it, an administrator may.
    refused = stack.http.patch(f"/api/v1/enterprises/{late}/archive", json={"employees": 50}, headers=dept)
    assert refused.status_code == 403
    admin = stack.token("admin", "ops")
    changed = stack.http.patch(f"/api/v1/enterprises/{late}/archive", json={"employees": 50}, params=SOCIAL, headers=admin)
    assert changed.status_code == 200, changed.text
    ours = [w for w in changed.json()["reevaluations"] if w.startswith(f"campaign:{code}:v1:re:")]
    assert len(ours) == 1  # (the demo's 稳岗补贴 item, also no-application, is re-checked too)
    second = await wait_campaign(stack, code, lambda p: p["kind"] == "reevaluation" and p["finished"])
    assert second["matched"] == 1 and second["paid"] == 1
    # Another change: the enterprise already has its case, so nothing is re-evaluated or paid again.
    again = stack.http.patch(f"/api/v1/enterprises/{late}/archive", json={"employees": 60}, params=SOCIAL, headers=admin)
    assert again.json()["reevaluations"] == []
    with transaction(stack.settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code=code)
        assert budget.totals(session=session, fund_item_id=item.id)["committed_fen"] == 6 * AMOUNT_FEN
        query = select(func.count()).select_from(PaymentInstruction).join(Case).where(Case.fund_item_id == item.id)
        assert session.scalar(query) == 6
