"""Consent waves and publicity objections, on the time-skipping test server (working-day deadlines days
ahead) with the real activities: database, treasury stand-in over signed HTTP."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import Principal, mint
from cli.worker import build_worker
from db.migrate import upgrade
from db.models import BudgetEntry, Case, Notice, PaymentInstruction
from db.repositories import budget
from db.repositories import campaigns as repo
from db.session import transaction
from schemas.campaigns import CampaignInput, CampaignProgress, ConsentIn, ObjectionRuling
from services.campaigns import consent
from settings import Settings
from standins.treasury import create_app as create_treasury_app
from tests.api.scoping import csrf_headers
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, add_item, case_counter, item_config
from tests.replay.recording import record
from tests.support import ServerThread, audit_records, crash_first_audit_write, eventually
from workflows.campaign import CampaignObjectionWorkflow, CampaignWorkflow, objection_workflow_id
from workflows.client import data_converter, decision_signer


@pytest.fixture
async def waves_env() -> AsyncIterator[WorkflowEnvironment]:
    """One test server per test: skipped time and workflow IDs (case ids restart per database) stay apart."""
    path = shutil.which("temporal-test-server") or str(Path(sys.executable).parent / "temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path,
        data_converter=data_converter(Settings()),
        interceptors=[decision_signer(Settings())],
    )
    yield env
    await env.shutdown()


@pytest.fixture
def settings(empty_db_url: str, tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url)
    upgrade(settings.db_url)
    treasury = ServerThread(
        create_treasury_app(
            db_url=f"sqlite:///{tmp_path / 'treasury.db'}",
            private_pem=settings.treasury_private_pem(),
            key_id=settings.treasury_signing_key_id,
            zhida_public_pems={settings.signing_key_id: settings.zhida_public_pem()},
            settle_delay_seconds=0.1,
        )
    ).start()
    settings.treasury_url = treasury.url
    yield settings
    treasury.stop()


def worker(env: WorkflowEnvironment, settings: Settings, queue: str) -> Worker:
    return build_worker(
        env.client,
        settings.model_copy(update={"temporal_task_queue": queue, "workflow_sandbox": True}),
    )


async def record_histories(request: pytest.FixtureRequest, *handles: WorkflowHandle) -> None:
    """Keep these runs' histories for the replay test when recording (ZHIDA_RECORD_HISTORIES=1)."""
    for i, handle in enumerate(handles):
        await record(handle, f"test_campaign_waves__{request.node.originalname}", i)


async def test_consent_waves_pay_early_answers_then_late_ones_and_the_silent_on_file(
    waves_env: WorkflowEnvironment, settings: Settings, request: pytest.FixtureRequest
) -> None:
    env = waves_env
    code = "T7-WAVE-001"
    with transaction(settings.db_url) as session:
        config = item_config(
            budget_fen=20 * AMOUNT_FEN, consent={"deadline_working_days": 3, "on_no_answer": "pay_on_file"}
        )
        item = add_item(session, code, config)
        people = [(e.id, e.uscc) for e in add_enterprises(session, settings.fernet_key(), 8, seed=21)]
        campaign = repo.register_listing(session=session, item=item, version=1)
        campaign_id, wid = campaign.id, campaign.workflow_id

    def answer(index: int, accept: bool = True, **account: str) -> None:
        eid, uscc = people[index]
        with transaction(settings.db_url) as session:
            case = session.scalar(select(Case).where(Case.enterprise_id == eid, Case.fund_item_id == item.id))
            consent(
                session=session,
                settings=settings,
                principal=Principal(role="enterprise", subject=uscc),
                case_id=case.id,
                body=ConsentIn(accept=accept, **account),
            )

    def web_answer(index: int) -> None:
        eid, uscc = people[index]
        with transaction(settings.db_url) as session:
            case_id = session.scalar(select(Case.id).where(Case.enterprise_id == eid, Case.fund_item_id == item.id))
        web = TestClient(create_app(settings))  # no lifespan: pages and the database only
        token = mint(settings.jwt_key(), role="enterprise", subject=uscc)
        web.cookies.set("zhida_token", token)
        page = web.get(f"/web/cases/{case_id}/consent")
        assert page.status_code == 200 and "确认兑付" in page.text and "待企业确认" in page.text
        done = web.post(f"/web/cases/{case_id}/consent", data={"accept": "yes"}, follow_redirects=True,
                        headers=csrf_headers(settings.jwt_key(), token))  # fmt: skip
        assert "已提交" in done.text and "已确认" in done.text

    count = case_counter(settings.db_url, item.id)

    queue = f"waves-{uuid.uuid4().hex[:8]}"
    async with worker(env, settings, queue):
        with env.auto_time_skipping_disabled():
            handle = await env.client.start_workflow(
                CampaignWorkflow.run,
                CampaignInput(campaign_id=campaign_id, batch_size=3, pay_batch_size=3, poll_seconds=0.2),
                id=wid,
                task_queue=queue,
                result_type=CampaignProgress,
            )
            # Real time from here on: the treasury and the database are real.
            await eventually(lambda: count("consent_pending"), lambda n: n == 8, what="8 consents pending")
            # early answers: three accept (one to another account), one declines; the first on the web page
            web_answer(0)
            answer(1)
            answer(
                2,
                acct_no="6228480000000000001",
                acct_name="宜昌测试21企业0002有限公司",
                bank_name="中国农业银行宜昌分行",
                bank_code="103526000012",
            )
            answer(3, accept=False)
            await env.sleep(timedelta(hours=1, seconds=5))  # the hourly wave
            await eventually(lambda: count("paid"), lambda n: n == 3, what="the 3 early answers paid")
            assert count("declined") == 1
            # late answers, before the deadline; the last two never answer
            answer(4)
            answer(5)
            await env.sleep(timedelta(days=10))  # past the deadline: the final wave
            result = await handle.result()
            await record_histories(request, handle)

    assert result.finished and result.paid == 7 and result.lapsed == 1
    with transaction(settings.db_url) as session:
        progress_rows = repo.tranches(session=session, campaign_id=campaign_id)
        # wave 1: the early answers; the next hourly wave: the late ones; the deadline: the silent, on file
        assert [(t.number, t.cases) for t in progress_rows] == [(1, 3), (2, 2), (3, 2)]
        cases = {c.enterprise_id: c for c in session.scalars(select(Case).where(Case.fund_item_id == item.id))}
        consent_of = [cases[eid].consent_status for eid, _ in people]
        assert consent_of == ["confirmed"] * 3 + ["declined"] + ["confirmed"] * 2 + ["on_file"] * 2
        assert [cases[eid].tranche for eid, _ in people] == [1, 1, 1, None, 2, 2, 3, 3]
        other = session.scalar(select(PaymentInstruction).where(PaymentInstruction.case_id == cases[people[2][0]].id))
        assert other.payee_acct_no_masked == "6228****0001" and other.payee_acct_bank_no == "103526000012"
        totals = budget.totals(session=session, fund_item_id=item.id)
        assert totals["committed_fen"] == 7 * AMOUNT_FEN and totals["reserved_fen"] == 0
        released = session.scalars(select(BudgetEntry.case_id).where(BudgetEntry.kind == "release")).all()
        assert released == [cases[people[3][0]].id]
        texts = session.scalars(
            select(Notice.content).where(
                Notice.fund_item_id == item.id, Notice.template_key == "consent_requested_pay_on_file"
            )
        ).all()
        # The silent are paid to the account on file, and the notice says so (not "逾期视为放弃").
        assert len(texts) == 8 and all("逾期未确认的将按档案登记账户兑付" in t for t in texts)


async def test_objection_takes_a_case_off_the_wave_until_the_department_rules(
    waves_env: WorkflowEnvironment, settings: Settings, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = waves_env
    code = "T7-OBJ-001"
    with transaction(settings.db_url) as session:
        item = add_item(session, code, item_config(budget_fen=10 * AMOUNT_FEN, publicity=True))
        add_enterprises(session, settings.fernet_key(), 4, seed=22)
        campaign = repo.register_listing(session=session, item=item, version=1)
        campaign_id, wid = campaign.id, campaign.workflow_id

    def cases_by_status() -> dict[str, list[Case]]:
        with transaction(settings.db_url) as session:
            out: dict[str, list[Case]] = {}
            for c in session.scalars(select(Case).where(Case.fund_item_id == item.id).order_by(Case.id)):
                out.setdefault(c.status, []).append(c)
            return out

    queue = f"objections-{uuid.uuid4().hex[:8]}"
    async with worker(env, settings, queue):
        with env.auto_time_skipping_disabled():
            handle = await env.client.start_workflow(
                CampaignWorkflow.run,
                CampaignInput(campaign_id=campaign_id, poll_seconds=0.2),
                id=wid,
                task_queue=queue,
                result_type=CampaignProgress,
            )
            await eventually(
                lambda: {status: len(rows) for status, rows in cases_by_status().items()},
                lambda counts: counts.get("publicity") == 4,
                what="4 cases in publicity (case counts by status)",
            )
            first, second = cases_by_status()["publicity"][:2]
            with transaction(settings.db_url) as session:
                for case_id in (first.id, second.id):
                    case = session.get(Case, case_id)
                    repo.file_objection(
                        session=session,
                        case=case,
                        objector_name="张三",
                        reason="该企业实际未在宜昌经营",
                        actor="enterprise:x",
                    )
            await env.sleep(timedelta(days=10))  # the publicity period ends
            result = await handle.result()
            assert result.paid == 2 and result.finished
            # The worker crashes once between the upheld ruling's effect and its audit record: the retry writes both.
            crashed = crash_first_audit_write(monkeypatch, f"case:{first.id}")
            upheld = env.client.get_workflow_handle(objection_workflow_id(first.id))
            dismissed = env.client.get_workflow_handle(objection_workflow_id(second.id))
            ruling = ObjectionRuling(upheld=True, actor="department:YC-RSJ", reason="经核查异议属实，不予兑付")
            assert await upheld.execute_update(CampaignObjectionWorkflow.rule, ruling) == "upheld"
            ruling = ObjectionRuling(upheld=False, actor="department:YC-RSJ", reason="经核查异议不成立")
            assert await dismissed.execute_update(CampaignObjectionWorkflow.rule, ruling) == "dismissed"
            assert (await upheld.result())["status"] == "rejected"
            assert (await dismissed.result())["status"] == "paid"
            await record_histories(request, handle, upheld, dismissed)

    final = cases_by_status()
    assert [c.id for c in final["rejected"]] == [first.id]
    assert len(final["paid"]) == 3
    # Rulings and the wave's (automatic) finance decision are in the audit chain, written with their effects.
    assert crashed == [f"case:{first.id}"]
    for case, upheld_, reason in ((first, True, "经核查异议属实，不予兑付"), (second, False, "经核查异议不成立")):
        assert audit_records(settings.db_url, f"case:{case.id}") == [
            ("decision", "department:YC-RSJ", {"decision": "campaign_objection_ruling", "upheld": upheld_, "reason": reason})
        ]
    [(kind, _, data)] = audit_records(settings.db_url, f"campaign:{campaign_id}")
    assert kind == "decision" and data["decision"] == "campaign_tranche" and data["approve"] is True
    with transaction(settings.db_url) as session:
        totals = budget.totals(session=session, fund_item_id=item.id)
        assert totals["committed_fen"] == 3 * AMOUNT_FEN and totals["reserved_fen"] == 0
        publicity = session.scalars(
            select(Notice.content).where(Notice.fund_item_id == item.id, Notice.template_key == "publicity_started")
        ).all()
        assert len(publicity) == 4 and all("公示期至" in t for t in publicity)
