"""How our processes reach Temporal: one data converter (pydantic + the encryption codec), decision tokens on
every client, workflow IDs from business keys."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING

from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter

from workflows.codec import AES, SM4, encrypted_converter
from workflows.decisions import DecisionGuard, DecisionSigner

if TYPE_CHECKING:
    from settings import Settings


def case_workflow_id(fund_item_code: str, uscc: str, key: bytes) -> str:
    """Business key: a second start for the same enterprise and fund item finds the first workflow.

    The enterprise appears as a keyed pseudonym (HMAC of its USCC), never as its USCC: workflow ids are stored in
    plaintext in every history and listed in the Temporal Web UI. The key (keys/workflow-id.key) never rotates, or
    a second application would start a second workflow; cases written before this keep their stored ids."""
    pseudonym = hmac.new(key, uscc.encode(), hashlib.sha256).hexdigest()[:24]
    return f"case:{fund_item_code}:{pseudonym}"


_CONVERTERS: dict[tuple, DataConverter] = {}


def data_converter(settings: Settings) -> DataConverter:
    """The one data converter of every Zhida client, worker, replayer and test: pydantic payloads encrypted with
    the keys of the keys folder (AES-256-GCM, or SM4-GCM when ZHIDA_CRYPTO=gm). Built once per key set."""
    keys, current = settings.payload_keys()
    cipher = SM4 if settings.crypto == "gm" else AES
    cache_key = (cipher, current, tuple(sorted(keys.items())))
    converter = _CONVERTERS.get(cache_key)
    if converter is None:
        converter = _CONVERTERS[cache_key] = encrypted_converter(keys, current, cipher)
    return converter


def decision_signer(settings: Settings) -> DecisionSigner:
    return DecisionSigner(settings.decision_key(), settings.decision_token_seconds)


def decision_guard(settings: Settings) -> DecisionGuard:
    return DecisionGuard(settings.decision_key())


async def connect(
    settings: Settings, *, attempts: int = 1, delay: float = 1.0, interceptors: Sequence[Interceptor] = ()
) -> Client:
    """Connect to settings' Temporal, retrying while an embedded server is still starting; `interceptors` (tracing)
    also serve the workers built on this client, after the decision signer."""
    converter = data_converter(settings)
    signer = decision_signer(settings)
    for attempt in range(1, attempts + 1):
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=converter,
                interceptors=[signer, *interceptors],
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
