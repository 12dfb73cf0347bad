"""The daily audit verification workflow on the shared worker: it checks every chain and answers with the counts
(its failure path, an alert after tampering, is shown on the dev server in tests/e2e/test_history_secrets.py)."""

from __future__ import annotations

import uuid

from cli.demo import DEMO_ITEM
from schemas.audit import AuditCheckIn, AuditCheckOut
from tests.workflows.conftest import Harness
from workflows.audit import AuditVerificationWorkflow


async def test_the_verification_checks_every_chain(h: Harness) -> None:
    case_id = h.new_case(DEMO_ITEM, tag="专精特新")
    handle = await h.client.start_workflow(
        AuditVerificationWorkflow.run,
        AuditCheckIn(trigger="manual"),
        id=f"audit-verify-{uuid.uuid4().hex[:8]}",
        task_queue=h.queue,
        result_type=AuditCheckOut,
    )
    h.handles.append(handle)
    result = await handle.result()
    assert result.ok and result.broken == 0 and result.alert_id is None
    assert result.cases >= case_id > 0
