"""Recording workflow histories for the replay test: `ZHIDA_RECORD_HISTORIES=1` turns it on."""

from __future__ import annotations

import os
import re
from pathlib import Path

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).resolve().parent / "histories"
RECORD = os.environ.get("ZHIDA_RECORD_HISTORIES") == "1"


def history_name(test_name: str, index: int) -> str:
    """The file stem of a test's index-th workflow: `module__test__index`, filesystem-safe."""
    return f"{re.sub(r'[^A-Za-z0-9_]+', '_', test_name).strip('_')}__{index}"


async def record(handle: WorkflowHandle, test_name: str, index: int) -> None:
    """Write the workflow's history to tests/replay/histories when recording is on."""
    if not RECORD:
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(parents=True, exist_ok=True)
    (HISTORIES / f"{history_name(test_name, index)}.json").write_text(history.to_json())
