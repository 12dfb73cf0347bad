"""How our processes reach Temporal: one data converter, workflow IDs from business keys."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


def case_workflow_id(fund_item_code: str, uscc: str) -> str:
    """Business key: a second start for the same enterprise and fund item finds the first workflow."""
    return f"case:{fund_item_code}:{uscc}"


async def connect(address: str, namespace: str, *, attempts: int = 1, delay: float = 1.0) -> Client:
    """Connect, retrying while an embedded server is still starting."""
    for attempt in range(1, attempts + 1):
        try:
            return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
        except Exception:
            if attempt == attempts:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
