"""Recording workflow histories for the replay test: `ZHIDA_RECORD_HISTORIES=1` turns it on."""

from __future__ import annotations

import os
import re
from pathlib import Path

from google.protobuf.message import Message
from temporalio.client import WorkflowHandle

from workflows.codec import ENCODING

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
    # Histories are kept decrypted: the test session's payload keys are thrown away, the replay needs none.
    codec = handle._client.data_converter.payload_codec
    if codec is not None:
        for event in history.events:
            _decrypt_payloads(event, codec)
    HISTORIES.mkdir(parents=True, exist_ok=True)
    (HISTORIES / f"{history_name(test_name, index)}.json").write_text(history.to_json())


def _decrypt_payloads(message: Message, codec) -> None:
    """Replace every encrypted Payload inside `message` (at any depth, in lists and maps) by its plaintext."""

    def visit(item: Message) -> None:
        if item.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
            if item.metadata.get("encoding") == ENCODING:
                item.CopyFrom(codec.decode_sync([item])[0])
        else:
            _decrypt_payloads(item, codec)

    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    visit(item)
        elif field.is_repeated:
            for item in value:
                visit(item)
        else:
            visit(value)
