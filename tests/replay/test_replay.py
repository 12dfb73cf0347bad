"""Workflow versioning discipline: every recorded history (one per path the workflow tests walk) replays
against the current workflow code, so a change that breaks determinism fails here.

Re-record after an intended, versioned change (workflow.patched) with:
    ZHIDA_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/workflows tests/campaigns/test_campaign_waves.py
which rewrites tests/replay/histories/*.json (the histories of the time-skipping tests' workflows; see
tests/replay/recording.py). Either part can be re-recorded alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from settings import Settings
from workflows.audit import AuditVerificationWorkflow
from workflows.campaign import CampaignObjectionWorkflow, CampaignWorkflow
from workflows.client import data_converter
from workflows.correction import PaymentCorrectionWorkflow
from workflows.instant import InstantCaseWorkflow
from workflows.review import ReviewCaseWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# Histories kept from before a patch, which re-recording would overwrite: they walk the unpatched branch
# (`workflow.patched` false), which workflows started before a deploy still take. Never re-recorded.
KEPT = sorted((Path(__file__).parent / "histories").glob("before-*/*.json"))
# Paths that must stay covered: a missing history means the recording lost a path.
REQUIRED = {
    "test_review_workflow__test_full_flow",
    "test_review_workflow__test_joint_review_rejection",
    "test_review_workflow__test_supplement_met",
    "test_review_workflow__test_supplement_missed",
    "test_review_workflow__test_timeout_auto_approve",
    "test_review_workflow__test_timeout_auto_reject",
    "test_review_workflow__test_timeout_escalates",
    "test_review_workflow__test_objection_upheld",
    "test_review_workflow__test_objection_dismissed",
    "test_review_workflow__test_enterprise_withdraws",
    "test_review_workflow__test_department_revokes",
    "test_review_workflow__test_joint_review_return",
    "test_review_workflow__test_finance_rejection",
    "test_payment_stage__test_correction_does_nothing",
    "test_payment_stage__test_active_return",
    "test_payment_stage__test_return_during_the_stage",
    "test_payment_stage__test_failed_payment_finally_fails",
    "test_payment_stage__test_return_then_final_failure",
    "test_payment_stage__test_return_after_paid_same_year",
    "test_payment_stage__test_cross_year_return",
    "test_campaign_waves__test_consent_waves",
    "test_campaign_waves__test_objection_takes_a_case_off_the_wave",
    "test_review_eligibility__test_unmet_conditions_reject_at_once",
}
WORKFLOWS = [
    InstantCaseWorkflow,
    ReviewCaseWorkflow,
    PaymentCorrectionWorkflow,
    CampaignWorkflow,
    CampaignObjectionWorkflow,
    AuditVerificationWorkflow,
]


def test_every_path_has_a_recorded_history() -> None:
    names = {p.stem for p in HISTORIES}
    missing = {r for r in REQUIRED if not any(n.startswith(r) for n in names)}
    assert not missing, f"re-record histories (ZHIDA_RECORD_HISTORIES=1): {sorted(missing)}"
    types = {
        json.loads(p.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        for p in HISTORIES
    }
    assert {w.__name__ for w in WORKFLOWS} <= types


@pytest.mark.parametrize("path", HISTORIES + KEPT, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES + KEPT])
async def test_history_replays_on_current_code(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(Settings()),  # what the workers use (old unencrypted payloads pass through)
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
