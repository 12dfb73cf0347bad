"""How our processes reach Temporal: one data converter, workflow IDs from business keys."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter


def case_workflow_id(fund_item_code: str, uscc: str) -> str:
    """Business key: a second start for the same enterprise and fund item finds the first workflow."""
    return f"case:{fund_item_code}:{uscc}"


async def connect(
    address: str, namespace: str, *, attempts: int = 1, delay: float = 1.0, interceptors: Sequence[Interceptor] = ()
) -> Client:
    """Connect, retrying while an embedded server is still starting; `interceptors` (tracing) also serve the
    workers built on this client."""
    for attempt in range(1, attempts + 1):
        try:
            return await Client.connect(
                address, namespace=namespace, data_converter=pydantic_data_converter, interceptors=interceptors
            )
        except Exception:
            if attempt == attempts:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


CORRECTION_WORKFLOW = "PaymentCorrectionWorkflow"


def correction_workflow_id(case_id: int, voucher_no: str) -> str:
    """One correction loop per failed or returned instruction, whoever notices it first."""
    return f"correction:{case_id}:{voucher_no}"


async def start_correction(client: Client, *, case_id: int, voucher_no: str, task_queue: str) -> None:
    """Open the account-correction loop for a payment that failed or came back after its case workflow ended.

    Called by the treasury callback, reconciliation and campaigns; a second call for the same voucher is a no-op.
    """
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from schemas.cases import CorrectionInput

    try:
        await client.start_workflow(
            CORRECTION_WORKFLOW,
            CorrectionInput(case_id=case_id, voucher_no=voucher_no),
            id=correction_workflow_id(case_id, voucher_no),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
