"""The worker registers every activity a workflow calls, collected from the activities classes."""

from __future__ import annotations

import re
from pathlib import Path

from cli.worker import activities_of, activity_instances
from gateways.factory import build_gateways
from gateways.treasury_files import FileTreasuryGateway
from settings import Settings

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def test_every_activity_a_workflow_calls_is_registered(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    acts = activity_instances(object(), settings, build_gateways(settings))  # type: ignore[arg-type]
    registered = {fn.__name__ for fn in activities_of(*acts)}
    called = {
        name
        for path in WORKFLOWS.glob("*.py")
        for name in re.findall(r"\b(?:\w+Activities|WorkflowProbe)\.(\w+)", path.read_text(encoding="utf-8"))
    }
    assert called and called <= registered, sorted(called - registered)


def test_the_file_channel_gives_cases_and_campaigns_one_file_gateway(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, treasury_channel="file")
    gateways = build_gateways(settings)
    assert isinstance(gateways.treasury, FileTreasuryGateway) and gateways.bulk_treasury is gateways.treasury
    assert gateways.treasury.outbox == tmp_path / "treasury-files" / "pain001"
