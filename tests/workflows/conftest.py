"""One time-skipping Temporal test server and one SQLite database (demo data, review items of every shape)
for all workflow tests; the worker runs the real activities against that database and a scripted treasury."""

from __future__ import annotations

import copy
import shutil
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.auth import Principal
from cli.demo import REVIEW_CONFIG, add_listed_item, load
from cli.worker import build_worker
from db.migrate import upgrade
from db.models import BudgetEntry, Enterprise, PaymentInstruction
from db.repositories import budget, cases, notices, payments, reviews
from db.repositories import calendar as calendar_repo
from db.session import transaction
from gateways.factory import build_gateways
from gateways.sms import OutboxProvider
from gateways.treasury import TreasuryUnavailable
from schemas.cases import ApplicationIn, CaseProgress
from schemas.treasury import InstructionResult
from schemas.treasury import PaymentInstruction as InstructionMessage
from services.cases import case_input, create_application
from services.scope import Scope
from settings import Settings
from tests.factories import clone_enterprise
from tests.replay.recording import record
from tests.support import eventually
from workflows.client import data_converter, decision_signer
from workflows.review import ReviewCaseWorkflow

FERNET_KEY = Fernet.generate_key().decode()
# ZHIDA_RECORD_HISTORIES=1 re-records tests/replay/histories (see tests/replay/test_replay.py).
FIXED = {"kind": "fixed", "amount_fen": 5_000_000}


def _review(**approval: Any) -> dict[str, Any]:
    config = copy.deepcopy(REVIEW_CONFIG)
    config["approval"] = {"finance": {"department": "YC-CZJ", "auto_when_quantified": True}} | approval
    return config


def _stage(key: str, departments: list[str], **kw: Any) -> dict[str, Any]:
    return {"key": key, "name": kw.pop("name", key), "departments": departments, "deadline_working_days": 3} | kw


# The test items: the demo's full flow, and small flows for each timeout policy and 联审 'any'.
ITEMS: dict[str, dict[str, Any]] = {
    "T-RV-FULL": REVIEW_CONFIG,
    "T-RV-AUTOAPP": _review(stages=[_stage("first_review", ["YC-JXJ"], on_timeout="auto_approve")])
    | {"standard": FIXED},
    "T-RV-AUTOREJ": _review(stages=[_stage("first_review", ["YC-JXJ"], on_timeout="auto_reject")]),
    "T-RV-ANY": _review(
        stages=[_stage("joint_review", ["YC-CZJ", "YC-FGW"], joint_mode="any", on_timeout="auto_reject")],
        supplement={"max_times": 2, "enterprise_deadline_working_days": 3},
    )
    | {"standard": FIXED},
}


def review_item_config(code: str) -> dict[str, Any]:
    return ITEMS[code]


class ScriptedTreasury:
    """The treasury gateway with a scripted result per voucher (default paid), settling at once."""

    def __init__(self) -> None:
        self.script: dict[str, str] = {}
        self.outages: dict[str, int] = {}
        self.results: dict[str, InstructionResult] = {}
        self.submits: list[str] = []
        self._lock = threading.Lock()

    def submit(self, instruction: InstructionMessage) -> InstructionResult:
        with self._lock:
            self.submits.append(instruction.VoucherNo)
            if self.outages.get(instruction.VoucherNo, 0) > 0:
                self.outages[instruction.VoucherNo] -= 1
                raise TreasuryUnavailable("国库系统维护中")
            if instruction.VoucherNo not in self.results:
                self.results[instruction.VoucherNo] = self._settle(instruction)
            return self.results[instruction.VoucherNo]

    def _settle(self, instruction: InstructionMessage) -> InstructionResult:
        now = datetime.now(UTC)
        status = self.script.get(instruction.VoucherNo, "paid")
        base = {"VoucherNo": instruction.VoucherNo, "TreasuryRef": "T" + instruction.VoucherNo, "AcceptedAt": now}
        if status == "paid":
            return InstructionResult(**base, Status="paid", PaidAmt=instruction.PayAmt, SettledAt=now)
        if status == "returned":
            return InstructionResult(
                **base,
                Status="returned",
                PaidAmt=0,
                SettledAt=now,
                ReturnType="passive",
                ReturnedAmt=instruction.PayAmt,
                ReturnedAt=now,
                Reason="收款账户已销户",
            )
        return InstructionResult(**base, Status="failed", PaidAmt=0, SettledAt=now, Reason="收款人账户名称与账号不符")

    def query(self, voucher_no: str) -> InstructionResult | None:
        return self.results.get(voucher_no)

    def submit_batch(self, instructions):
        raise NotImplementedError

    def query_many(self, voucher_nos):
        return {v: r for v in voucher_nos if (r := self.results.get(v))}


class Harness:
    """Cases on the shared database, their workflows on the shared worker, and what they left behind."""

    def __init__(self, env: WorkflowEnvironment, db_url: str, queue: str, treasury: ScriptedTreasury) -> None:
        self.env = env
        self.client = env.client
        self.db_url = db_url
        self.queue = queue
        self.treasury = treasury
        self.handles: list[WorkflowHandle] = []
        self.test_name = ""

    def new_case(self, item_code: str, tag: str | None = None) -> int:
        """A case of a new enterprise (one case per enterprise and item), with `tag` when given.

        The enterprise copies the archive of the last demo enterprise (with `tag`), under a fresh USCC: the same
        rules match it, and no number of tests can use the demo enterprises up.
        """
        with transaction(self.db_url) as session:
            templates = session.scalars(select(Enterprise).order_by(Enterprise.id.desc())).all()
            template = next(e for e in templates if tag is None or tag in (e.tags or []))
            enterprise = clone_enterprise(session, template)
            case, _ = create_application(
                session=session,
                scope=Scope(principal=Principal(role="admin", subject="admin")),
                body=ApplicationIn(fund_item_code=item_code, uscc=enterprise.uscc),
                workflow_key=b"test",
            )
            return case.id

    async def start(self, case_id: int, workflow: type = ReviewCaseWorkflow) -> WorkflowHandle:
        with transaction(self.db_url) as session:
            case = cases.get(session=session, case_id=case_id)
            assert case is not None
            payload = case_input(case=case, poll_seconds=5)
            workflow_id = case.workflow_id
        handle = await self.client.start_workflow(workflow.run, payload, id=workflow_id, task_queue=self.queue)
        self.handles.append(handle)
        return handle

    async def until(
        self, handle: WorkflowHandle, predicate: Callable[[CaseProgress], bool], timeout: float = 90
    ) -> CaseProgress:
        """Poll the status query (real time: queries do not skip time) until the predicate holds."""

        async def progress() -> CaseProgress:
            return await handle.query("status", result_type=CaseProgress)

        return await eventually(
            progress, predicate, what=f"workflow {handle.id} to get on", timeout=timeout, every=0.05
        )

    def events(self, case_id: int) -> list[str]:
        with transaction(self.db_url) as session:
            assert cases.verify_chain(session=session, case_id=case_id)
            return [e.kind for e in cases.events(session=session, case_id=case_id)]

    def event_rows(self, case_id: int) -> list[dict]:
        with transaction(self.db_url) as session:
            return [
                {"kind": e.kind, "key": e.key, "actor": e.actor, "to": e.to_status, "reason": e.reason, "data": e.data}
                for e in cases.events(session=session, case_id=case_id)
            ]

    def notices(self, case_id: int) -> list[str]:
        with transaction(self.db_url) as session:
            return [n.template_key for n in notices.for_case(session=session, case_id=case_id)]

    def notice_texts(self, case_id: int) -> list[str]:
        with transaction(self.db_url) as session:
            return [n.content for n in notices.for_case(session=session, case_id=case_id)]

    def ledger(self, case_id: int) -> list[tuple[str, int]]:
        with transaction(self.db_url) as session:
            return [(e.kind, e.attempt) for e in budget.entries(session=session, case_id=case_id)]

    def ledger_amounts(self, case_id: int) -> list[int]:
        with transaction(self.db_url) as session:
            return [e.amount_fen for e in session.scalars(select(BudgetEntry).where(BudgetEntry.case_id == case_id))]

    def payments(self, case_id: int) -> list[tuple[int, str]]:
        with transaction(self.db_url) as session:
            return [(p.attempt, p.status) for p in payments.for_case(session=session, case_id=case_id)]

    def paid_instructions(self, case_id: int) -> int:
        with transaction(self.db_url) as session:
            rows = session.scalars(
                select(PaymentInstruction).where(
                    PaymentInstruction.case_id == case_id, PaymentInstruction.status == "paid"
                )
            )
            return len(list(rows))

    def tasks(self, case_id: int) -> list[tuple[str, str, str, str | None]]:
        with transaction(self.db_url) as session:
            return [
                (t.stage_key, t.department_code, t.status, t.decision)
                for t in reviews.tasks_for_case(session=session, case_id=case_id)
            ]

    def case(self, case_id: int) -> dict:
        with transaction(self.db_url) as session:
            c = cases.get(session=session, case_id=case_id)
            assert c is not None
            return {"status": c.status, "amount_fen": c.amount_fen, "paid_fen": c.paid_fen, "reason": c.outcome_reason}

    def returns(self, case_id: int) -> list[tuple[str, str, bool]]:
        with transaction(self.db_url) as session:
            return [
                (r.kind, r.handling, r.cross_year) for r in reviews.returns_for_case(session=session, case_id=case_id)
            ]

    def totals(self, item_code: str) -> dict[str, int]:
        from db.repositories import fund_items

        with transaction(self.db_url) as session:
            item = fund_items.get_by_code(session=session, code=item_code)
            assert item is not None
            return budget.totals(session=session, fund_item_id=item.id)

    def track(self, workflow_id: str, result_type: type | None = None) -> WorkflowHandle:
        """A handle to a workflow started elsewhere (e.g. by start_correction), cleaned up and recorded too."""
        handle = self.client.get_workflow_handle(workflow_id, result_type=result_type)
        self.handles.append(handle)
        return handle

    async def cleanup(self) -> None:
        """Terminate what a test left running, so later time skipping does not wake it; record histories."""
        for i, handle in enumerate(self.handles):
            try:
                await handle.terminate("test finished")
            except Exception:
                pass
            await record(handle, self.test_name, i)
        self.handles.clear()


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    path = shutil.which("temporal-test-server") or str(Path(sys.executable).parent / "temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path,
        data_converter=data_converter(Settings()),
        interceptors=[decision_signer(Settings())],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def review_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('wf') / 'zhida.db'}"
    upgrade(url)
    with transaction(url) as session:
        load(session=session, fernet_key=FERNET_KEY, n_enterprises=60)
        calendar_repo.seed_from_chinese_calendar(session=session)
        for code, config in ITEMS.items():
            add_listed_item(session=session, code=code, department_code="YC-JXJ", config=config)
    return url


@pytest.fixture(scope="session")
async def worker_harness(
    ts_env: WorkflowEnvironment, review_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    treasury = ScriptedTreasury()
    queue = f"wf-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("wf-worker"),
        database_url=review_db,
        encryption_key=FERNET_KEY,
        temporal_task_queue=queue,
        public_base_url="http://127.0.0.1:9",
        workflow_sandbox=True,
    )
    async with build_worker(
        ts_env.client,
        settings,
        gateways=build_gateways(settings, treasury=treasury, sms=OutboxProvider()),
    ):
        yield Harness(ts_env, review_db, queue, treasury)


@pytest.fixture
async def h(worker_harness: Harness, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    worker_harness.test_name = f"{request.node.module.__name__.rsplit('.', 1)[-1]}__{request.node.name}"
    yield worker_harness
    await worker_harness.cleanup()
