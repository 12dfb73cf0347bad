"""The worker keeps enough workflow task polls open on the normal task queue for a burst of new cases: their first
tasks come from there (later ones from the worker's sticky queue), and a task that finds no waiting poll goes to the
server's backlog (seconds of schedule-to-start in `zhida bench instant-latency` with the SDK's one normal poll)."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorSimpleMaximum

from cli.worker import build_worker
from gateways.factory import build_gateways
from settings import Settings
from tests.workflows.conftest import ScriptedTreasury


async def test_the_normal_and_the_sticky_queue_each_get_several_polls(
    ts_env: WorkflowEnvironment, tmp_path
) -> None:
    settings = Settings(data_dir=tmp_path, temporal_task_queue=f"q-{uuid.uuid4().hex[:8]}")
    worker = build_worker(ts_env.client, settings, gateways=build_gateways(settings, treasury=ScriptedTreasury()))
    behavior = worker.config()["workflow_task_poller_behavior"]
    ratio = worker.config()["nonsticky_to_sticky_poll_ratio"]
    assert isinstance(behavior, PollerBehaviorSimpleMaximum)
    normal = int(behavior.maximum * ratio)
    assert normal >= 5 and behavior.maximum - normal >= 5
