"""What the Temporal server holds, read raw from the real dev server: after an instant case is paid and a review
case has a department's decision, no history holds personal data (enterprise name, USCC, phone, account, the
officer's name; masked or not), every payload is encrypted; and a decision sent past the API (the `temporal` CLI, or
a client without the API's signer) is refused by the workflow's validator and leaves no trace in the history.
Then (one stack, to keep the suite short) the daily audit verification's schedule, triggered after a case event was
deleted, raises an alert.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import delete, func, select
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter

from api.auth import mint
from cli.demo import DEMO_ITEM, REVIEW_ITEM, demo_enterprise_uscc
from db import crypto
from db.models import CaseEvent, Enterprise
from db.repositories import cases as cases_repo
from db.repositories import reconciliation as alerts_repo
from db.session import reading, transaction
from schemas.cases import DecisionIn
from schemas.vocabulary import AlertKind
from tests.stack import Stack
from tests.support import drop_audit_guards, eventually
from workflows.audit import ensure_audit_schedule
from workflows.client import connect, data_converter
from workflows.codec import ENCODING
from workflows.versions import STANDARD_SINCE

OFFICER = "欧阳明远"
# The SDK's own markers, in plaintext: local activities (sequence, attempt, type, times) and patches (id).
SDK_MARKER_KEYS = {"seq", "attempt", "activity_id", "activity_type", "complete_time", "backoff",
                   "original_schedule_time", "activation_index", "id", "deprecated"}  # fmt: skip
PATCH_IDS = set(STANDARD_SINCE)


async def _raw_history(client: Client, namespace: str, workflow_id: str) -> bytes:
    """The workflow's whole history as the server stores and serves it: protobuf bytes, nothing decoded."""
    request = GetWorkflowExecutionHistoryRequest(namespace=namespace)
    request.execution.workflow_id = workflow_id
    chunks = []
    while True:
        page = await client.workflow_service.get_workflow_execution_history(request)
        chunks.append(page.history.SerializeToString())
        if not page.next_page_token:
            return b"".join(chunks)
        request.next_page_token = page.next_page_token


def _payloads(history: bytes) -> list[Payload]:
    found: list[Payload] = []

    def walk(message) -> None:
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            items = (
                value.values()
                if field.message_type.GetOptions().map_entry
                else (value if field.is_repeated else [value])
            )
            for item in items:
                if not hasattr(item, "DESCRIPTOR"):
                    continue
                if item.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
                    found.append(item)
                else:
                    walk(item)

    walk(History.FromString(history))
    return found


async def test_histories_hold_no_personal_data_and_forged_decisions_are_refused(stack: Stack) -> None:
    settings = stack.settings
    uscc = demo_enterprise_uscc()
    ent = stack.token("enterprise", uscc)
    jxj = {"Authorization": f"Bearer {mint(settings.jwt_key(), role='department', subject='YC-JXJ', name=OFFICER)}"}

    def post(path: str, body: dict, headers: dict):
        return asyncio.to_thread(stack.http.post, path, json=body, headers=headers)

    instant = await post("/api/v1/applications", {"fund_item_code": DEMO_ITEM, "uscc": uscc}, ent)
    review = await post("/api/v1/applications", {"fund_item_code": REVIEW_ITEM, "uscc": uscc}, ent)
    assert instant.status_code == review.status_code == 201, (instant.text, review.text)
    paid = await stack.wait_status(instant.json()["id"], {"paid", "rejected", "payment_failed"}, ent)
    assert paid["status"] == "paid"
    review_id = review.json()["id"]
    await eventually(
        lambda: stack.http.get(f"/api/v1/cases/{review_id}/progress", headers=ent),
        lambda r: r.status_code == 200 and (r.json().get("stage") or {}).get("key") == "completeness",
        what="the completeness stage to open",
    )

    # A forged decision straight at the frontend: the CLI an operator on the host has (no token possible).
    with reading(settings.db_url) as session:
        enterprise = session.scalars(select(Enterprise).where(Enterprise.uscc == uscc)).one()
        review_case = cases_repo.get(session=session, case_id=review_id)
        instant_case = cases_repo.get(session=session, case_id=instant.json()["id"])
        workflow_ids = [instant_case.workflow_id, review_case.workflow_id]
        phone = crypto.decrypt(settings.fernet_key(), enterprise.contact_phone_enc)
        account = crypto.decrypt(settings.fernet_key(), enterprise.bank_account_enc)
        personal = {
            "enterprise name": enterprise.name,
            "USCC": uscc,
            "phone": phone,
            "masked phone": crypto.mask_phone(phone),
            "account": account,
            "masked account": crypto.mask_account(account),
            "account name": enterprise.bank_account_name,
            "officer": OFFICER,
            "masked officer": crypto.mask_name(OFFICER),
        }
    forged = DecisionIn(stage_key="completeness", department="YC-JXJ", decision="approve", actor="department:YC-JXJ")
    temporal = str(Path(sys.executable).parent / "temporal")
    cli = await asyncio.to_thread(
        subprocess.run,
        [temporal, "workflow", "update", "execute", "--address", settings.temporal_address,
         "--namespace", settings.temporal_namespace, "--workflow-id", review_case.workflow_id,
         "--name", "decide", "--input", forged.model_dump_json()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode != 0 and "type: decision_token" in cli.stderr, (cli.stdout, cli.stderr)
    # The client equivalent, with our data converter (it gets past the codec) but without the API's signer.
    plain = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
    try:
        await plain.get_workflow_handle(review_case.workflow_id).execute_update("decide", forged)
        raise AssertionError("a decision without a token was accepted")
    except WorkflowUpdateFailedError as exc:
        assert "缺少决定令牌" in str(exc.cause)

    # The real decision, through the API, signed there (the officer's name is in the actor).
    decided = await post(
        f"/api/v1/cases/{review_id}/decisions", {"stage_key": "completeness", "decision": "approve"}, jxj
    )
    assert decided.status_code == 200, decided.text

    raw_client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                      data_converter=pydantic_data_converter)  # fmt: skip
    for workflow_id in workflow_ids:
        history = await _raw_history(raw_client, settings.temporal_namespace, workflow_id)
        for what, value in personal.items():
            assert value and value.encode() not in history, f"{what} in the history of {workflow_id}"
            assert json.dumps(value).encode() not in history
        payloads = _payloads(history)
        plain = [p for p in payloads if p.metadata["encoding"] != ENCODING]
        # The decision token in the update's header: an expiry and a MAC, nothing else.
        tokens = [p for p in plain if p.metadata["encoding"] == b"binary/plain"]
        assert all(re.fullmatch(rb"v1\.\d+\.[0-9a-f]{64}", p.data) for p in tokens), tokens
        plain = [p for p in plain if p not in tokens]
        values = [json.loads(p.data) for p in plain]
        assert {k for v in values if isinstance(v, dict) for k in v} - SDK_MARKER_KEYS == set()
        assert all(isinstance(v, dict) or set(v if isinstance(v, list) else [v]) <= PATCH_IDS for v in values), values
        assert len(plain) < len(payloads), workflow_id
    # The forged attempts never entered the history: the one accepted update is the API's decision.
    review_history = History.FromString(
        await _raw_history(raw_client, settings.temporal_namespace, review_case.workflow_id)
    )
    accepted = [
        e for e in review_history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 1

    # The daily audit verification (its Temporal Schedule, triggered now): a tampered chain raises an alert.
    signer_client = await connect(settings)
    schedule_id = await ensure_audit_schedule(signer_client, task_queue=settings.temporal_task_queue, at="03:30",
                                              time_zone="Asia/Shanghai")  # fmt: skip
    with transaction(settings.db_url) as session:
        last = session.scalar(select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == instant_case.id))
        drop_audit_guards(session)  # as an attacker with the database owner's rights would
        session.execute(delete(CaseEvent).where(CaseEvent.case_id == instant_case.id, CaseEvent.seq == last))
    await signer_client.get_schedule_handle(schedule_id).trigger()

    def audit_alerts() -> list:
        with reading(settings.db_url) as session:
            return [a for a in alerts_repo.list_alerts(session=session) if a.kind == AlertKind.AUDIT_BROKEN]

    [alert] = await eventually(audit_alerts, lambda found: len(found) == 1, what="the audit alert", timeout=60)
    assert f"办件 {instant_case.id}" in alert.message and "锚点" in alert.message
