"""A department's collect-now is in the audit chain (#15): the signal carries the audit note, and the collection it
brings forward writes it in its own transaction — once, even when that transaction fails and is retried. On the
time-skipping test server with the real activities (its clock held still: only the signal can start the wave)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from api.auth import Principal
from db.models import Case
from db.repositories import campaigns as repo
from db.session import transaction
from schemas.campaigns import CampaignInput, CampaignProgress, ConsentIn
from schemas.vocabulary import AuditKind
from services.campaigns import collect, consent
from settings import Settings
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, add_item, case_counter, item_config
from tests.campaigns.test_campaign_waves import settings, waves_env, worker  # noqa: F401 - fixtures
from tests.support import audit_records, crash_first_audit_write, eventually
from workflows.campaign import CampaignWorkflow


async def test_collect_now_is_recorded_once_with_the_collection_it_brings_forward(
    waves_env: WorkflowEnvironment,  # noqa: F811
    settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = waves_env
    with transaction(settings.db_url) as session:
        config = item_config(budget_fen=5 * AMOUNT_FEN, consent={"deadline_working_days": 3, "on_no_answer": "lapse"})
        item = add_item(session, "T15-COLLECT-001", config)
        people = [(e.id, e.uscc) for e in add_enterprises(session, settings.fernet_key(), 3, seed=31)]
        campaign = repo.register_listing(session=session, item=item, version=1)
        campaign_id, wid = campaign.id, campaign.workflow_id
    subject = f"campaign:{campaign_id}"

    count = case_counter(settings.db_url, item.id)

    queue = f"collect-{uuid.uuid4().hex[:8]}"
    async with worker(env, settings, queue):
        with env.auto_time_skipping_disabled():
            handle = await env.client.start_workflow(
                CampaignWorkflow.run,
                CampaignInput(campaign_id=campaign_id, batch_size=3, pay_batch_size=3, poll_seconds=0.2),
                id=wid,
                task_queue=queue,
                result_type=CampaignProgress,
            )
            await eventually(lambda: count("consent_pending"), lambda n: n == 3, what="3 consents pending")
            eid, uscc = people[0]
            with transaction(settings.db_url) as session:
                case = session.scalar(select(Case).where(Case.enterprise_id == eid, Case.fund_item_id == item.id))
                consent(session=session, settings=settings, principal=Principal(role="enterprise", subject=uscc),
                        case_id=case.id, body=ConsentIn(accept=True))  # fmt: skip
            assert audit_records(settings.db_url, subject) == []
            crashed = crash_first_audit_write(monkeypatch, subject)  # the collection's first try fails with its note
            officer = Principal(role="department", subject="YC-RSJ", name="王五")
            await collect(client=env.client, workflow_id=wid, principal=officer, campaign_id=campaign_id)
            # No time passes: only the signal brings the wave forward.
            await eventually(lambda: count("paid"), lambda n: n == 1, what="the early answer paid")
            await handle.terminate("the test has seen what it needs")  # the final wave is another test's subject

    assert crashed == [subject]
    [(actor, data)] = [(a, d) for k, a, d in audit_records(settings.db_url, subject) if k == AuditKind.CAMPAIGN_COLLECT_NOW]
    assert actor == officer.actor and (data["campaign_id"], data["workflow_id"]) == (campaign_id, wid)
    assert data["collected"] == 1 and data["final_wave"] is False and data["requested_at"]
