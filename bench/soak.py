"""`zhida soak`: cases of all three modes at once while the worker is killed, the Temporal dev server restarted, the
treasury stand-in times out, answers 5xx, duplicates and reorders callbacks and returns payments, and the SMS
stand-in fails; then the invariants are checked and the figures go to reports/soak.json.

The stack is private (temporary folder, free ports): Temporal dev server (SQLite file), treasury stand-in, worker and
API as processes (`cli/embedded.start_stack`), the SMS carrier as the HTTP stand-in in this process. The soak acts as
the enterprises (applications over HTTP, a corrected account after a return), the departments and finance (every
open review task is decided over HTTP) and the operator (it lists a no-application item, whose campaign pays its
enterprises in batches).

Invariants checked at the end (each violation is listed with the case and what was found):
- no case lost: every application answered with a case, and every case is final, or waits on a deadline (an open
  task with a due date, 补正, a correction of the account, consent or publicity), with its workflow still running;
- no voucher paid twice: the treasury holds one paid line per VoucherNo, and no case has two instructions paid at
  once (a returned one is money back);
- our ledger equals the treasury's: paid and returned totals and counts of our instructions equal the stand-in's;
- budget never exceeded: reserved + committed ≤ total on every budget line, and the committed amount equals what
  stays paid;
- exactly one payout notice per paid case: at least one `paid` notice for a paid case, never more than one per
  payout (a case paid again after a return is told again), none for a case never paid.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import random
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import typer

from bench.report import app, console

INSTANT_ITEM = "SOAK-2026-ZJTX-001"
REVIEW_ITEM = "SOAK-2026-JSGZ-001"
CAMPAIGN_ITEM = "SOAK-2026-WGBT-001"
INSTANT_REGION, CAMPAIGN_REGION = "420502", "420506"
REVIEW_AMOUNT = 660_000


@dataclass
class Plan:
    cases: int = 30
    worker_kills: int = 2
    server_restarts: int = 1
    seed: int = 20261201
    # The share of cases per mode: instant, review, no application (the rest).
    instant_share: float = 0.4
    review_share: float = 0.2
    concurrency: int = 8
    drain_seconds: float = 180.0
    settle_delay: float = 0.3


@dataclass
class Tally:
    applications: int = 0
    refused: Counter = field(default_factory=Counter)
    decisions: int = 0
    corrections: int = 0
    worker_kills: int = 0
    server_restarts: int = 0
    sms_failures_scripted: int = 0
    api_errors: Counter = field(default_factory=Counter)
    decision_retries: Counter = field(default_factory=Counter)
    clerk_errors: Counter = field(default_factory=Counter)


def _enterprises(settings: Any, n: int, region: str, rng: random.Random, prefix: str) -> list[str]:
    from sqlalchemy import select

    from db import crypto
    from db.models import Enterprise
    from db.repositories import enterprises
    from db.session import transaction
    from schemas import uscc as uscc_rules

    fernet = settings.fernet_key()
    codes: list[str] = []
    with transaction(settings.db_url) as session:
        seen = set(session.scalars(select(Enterprise.uscc)))
        while len(codes) < n:
            code = uscc_rules.generate(rng, region)
            if code in seen:
                continue
            seen.add(code)
            i = len(codes)
            phone, account = f"139{rng.randrange(10**8):08d}", f"4205{rng.randrange(10**14):014d}"
            name = f"宜昌{prefix}测试制造有限公司{i:05d}"
            enterprises.add(
                session=session,
                enterprise=Enterprise(
                    uscc=code, name=name, region_code=region, industry_code="C34", size_class="small",
                    registered_on=date(2015, 5, 1), employees=80 + i % 50, revenue_fen=5 * 10**9, tax_paid_fen=10**8,
                    rd_ratio_bp=500, tags=["专精特新"], credit_status="good",
                    contact_phone_enc=crypto.encrypt(fernet, phone), contact_phone_masked=crypto.mask_phone(phone),
                    bank_account_enc=crypto.encrypt(fernet, account),
                    bank_account_masked=crypto.mask_account(account), bank_account_name=name,
                    bank_name="中国工商银行宜昌分行营业部", bank_code="102526000011",
                ),
            )  # fmt: skip
            codes.append(code)
    return codes


def _items(settings: Any, n_instant: int, budget_cases: int) -> dict[str, int]:
    """The three soak items: instant (budget for `budget_cases` of them, so some are refused), review (one
    department stage and finance), no application (campaign over CAMPAIGN_REGION, automatic finance)."""
    from bench.campaign import bench_config
    from cli.demo import DEMO_CONFIG, REVIEW_CONFIG, add_listed_item
    from db.repositories import campaigns as campaign_repo
    from db.session import transaction

    instant = copy.deepcopy(DEMO_CONFIG)
    instant["name"] = "宜昌市2026年度专精特新一次性奖励（即申即享，浸泡测试）"
    instant["budget"] = {"year": 2026, "total_fen": budget_cases * instant["standard"]["amount_fen"],
                         "sources": [{"name": "市级财政", "share_bp": 10000}]}  # fmt: skip
    review = copy.deepcopy(REVIEW_CONFIG)
    for part in ("publicity", "completeness_check"):
        review["approval"].pop(part, None)
    review["approval"]["stages"] = review["approval"]["stages"][:1]
    review["name"] = "宜昌市2026年度工业企业技术改造设备投资补贴（申报审批，浸泡测试）"
    campaign = bench_config(10**13)
    campaign["name"] = "湖北省2026年度中小微企业稳岗补贴（免申即享，浸泡测试）"
    campaign["conditions"] = {"op": "all", "items": [{"field": "region_code", "op": "prefix", "value": CAMPAIGN_REGION},
                                                     {"field": "credit_status", "op": "ne", "value": "dishonest"}]}  # fmt: skip
    with transaction(settings.db_url) as session:
        add_listed_item(session=session, code=INSTANT_ITEM, department_code="YC-JXJ", config=instant)
        add_listed_item(session=session, code=REVIEW_ITEM, department_code="YC-JXJ", config=review)
        item = add_listed_item(session=session, code=CAMPAIGN_ITEM, department_code="YC-RSJ", config=campaign)
        registered = campaign_repo.register_listing(session=session, item=item, version=1, actor="soak")
        return {"campaign_id": registered.id, "workflow_id": registered.workflow_id}  # type: ignore[dict-item]


class Soak:
    def __init__(self, plan: Plan, data_dir: Path) -> None:
        self.plan, self.data_dir = plan, data_dir
        self.tally = Tally()
        self.rng = random.Random(plan.seed)
        self.case_ids: dict[str, int] = {}  # (item:uscc) → case id
        self.load_done = asyncio.Event()
        self.faults: dict[str, int] = {}

    # -- the stack --------------------------------------------------------------------------------------------

    def start(self) -> None:
        from cli.embedded import Supervisor, isolated_settings, start_stack
        from standins.sms.servers import FakeSmsServer

        self.sms = FakeSmsServer().start()
        self.settings = isolated_settings(
            self.data_dir,
            log_level="WARNING",
            treasury_sim_settle_delay_seconds=str(self.plan.settle_delay),
            payment_poll_seconds="3",
            sms_provider="http",
            sms_http_url=f"http://{self.sms.endpoint}/send",
            sms_retry_base_seconds="1",
            sms_rate_per_minute="100",
            sms_rate_per_hour="1000",
            sms_rate_per_day="10000",
            sms_push_quiet_start="00:00",
            sms_push_quiet_end="00:00",
            reconciliation_schedule_enabled="false",
        )
        self.sup = Supervisor(self.data_dir / "logs")
        start_stack(self.settings, self.sup, load_demo=True, quiet=True)
        self.base = f"http://{self.settings.api_host}:{self.settings.api_port}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.sup.stop()
        with contextlib.suppress(Exception):
            self.sms.stop()

    def _proc(self, name: str):
        return dict(self.sup.children)[name]

    def kill_worker(self) -> None:
        proc = self._proc("worker")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a crash: no graceful shutdown
        proc.wait()
        self.sup.start("worker", self.sup._argv["worker"])
        self.tally.worker_kills += 1

    async def restart_server(self) -> None:
        from cli.embedded import wait_port

        proc = self._proc("temporal")
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
        await asyncio.sleep(0.5)
        self.sup.start("temporal", self.sup._argv["temporal"])
        host, port = self.settings.temporal_address.rsplit(":", 1)
        if not await asyncio.to_thread(wait_port, host, int(port), 60):
            raise RuntimeError(f"Temporal 未能重启，见 {self.sup.log_dir}/temporal.log")
        self.tally.server_restarts += 1

    def set_treasury_faults(self, on: bool) -> None:
        from standins.treasury.contracts import FaultRule

        rules = (
            [
                FaultRule(Kind="timeout", Rate=0.03, DelaySeconds=6.0),  # past the worker's 5 s request timeout
                FaultRule(Kind="error_5xx", Rate=0.05),
                FaultRule(Kind="duplicate_callback", Rate=0.15, Copies=3),
                FaultRule(Kind="out_of_order", Rate=0.15),
                FaultRule(Kind="passive_return", Rate=0.04, Reason="收款人账号不存在（浸泡测试）"),
            ]
            if on
            else []
        )
        with self._admin() as admin:
            if not on:
                self.faults = {f"treasury_{k}": v for k, v in admin.injected().items()}
            admin.set_faults(*rules, seed=self.plan.seed)

    def _admin(self):
        from standins.treasury.admin import StandInAdmin

        s = self.settings
        return StandInAdmin(s.treasury_url, s.zhida_private_pem(), s.signing_key_id)

    # -- the people ---------------------------------------------------------------------------------------------

    def _token(self, role: str, subject: str) -> dict[str, str]:
        from api.auth import mint

        return {"Authorization": f"Bearer {mint(self.settings.jwt_key(), role=role, subject=subject)}"}

    async def _post(
        self, client: httpx.AsyncClient, path: str, body: dict, headers: dict, tries: int = 30
    ) -> httpx.Response | None:
        """POST until an answer that is not a transient failure (5xx, 429, transport error) or tries run out."""
        for attempt in range(tries):
            try:
                response = await client.post(path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                self.tally.api_errors[type(exc).__name__] += 1
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                self.tally.api_errors[str(response.status_code)] += 1
            await asyncio.sleep(min(5.0, 0.3 * (attempt + 1)))
        return None

    async def apply_all(self, client: httpx.AsyncClient, jobs: list[tuple[str, str]]) -> None:
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)

        async def applicant() -> None:
            while not queue.empty():
                item, uscc = queue.get_nowait()
                response = await self._post(client, "/api/v1/applications", {"fund_item_code": item, "uscc": uscc},
                                            self._token("enterprise", uscc))  # fmt: skip
                self.tally.applications += 1
                if response is not None and response.status_code in (200, 201):
                    self.case_ids[f"{item}:{uscc}"] = response.json()["id"]
                else:
                    self.tally.refused[str(None if response is None else response.status_code)] += 1

        await asyncio.gather(*(applicant() for _ in range(self.plan.concurrency)))

    async def clerks(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Departments and finance decide every open task (approve, the review amount); enterprises correct their
        account after a return."""
        from sqlalchemy import select

        from db.models import Case, CaseTask, Enterprise
        from db.session import reading
        from schemas.vocabulary import CaseStatus, TaskStatus

        # A task is tried again with backoff until it is decided: a decision can be refused (409) while the
        # workflow has not yet reached the stage the task row already shows, or fail while the worker is down.
        due: dict[int, tuple[float, int]] = {}
        corrected: dict[int, tuple[float, int]] = {}

        def open_work() -> tuple[list, list]:
            with reading(self.settings.db_url) as session:
                tasks = session.execute(
                    select(CaseTask.id, CaseTask.case_id, CaseTask.stage_key, CaseTask.department_code).where(
                        CaseTask.status == TaskStatus.OPEN
                    )
                ).all()
                returned = session.execute(
                    select(Case.id, Enterprise.uscc, Enterprise.name)
                    .join(Enterprise, Enterprise.id == Case.enterprise_id)
                    .where(Case.status == CaseStatus.AWAITING_CORRECTION)
                ).all()
            return tasks, returned

        def ready(book: dict[int, tuple[float, int]], key: int) -> bool:
            at, _ = book.get(key, (0.0, 0))
            return time.monotonic() >= at

        def tried(book: dict[int, tuple[float, int]], key: int) -> None:
            _, n = book.get(key, (0.0, 0))
            book[key] = (time.monotonic() + min(30.0, 0.5 * 2**n), n + 1)

        async def decide(task_id: int, case_id: int, stage_key: str, department: str) -> None:
            role = "finance" if department == "YC-CZJ" else "department"
            body: dict[str, Any] = {"stage_key": stage_key, "decision": "approve"}
            if role == "department":
                body["amount_fen"] = REVIEW_AMOUNT
            response = await self._post(client, f"/api/v1/cases/{case_id}/decisions", body,
                                        self._token(role, department), tries=1)  # fmt: skip
            if response is not None and response.status_code in (200, 201):
                self.tally.decisions += 1
                due[task_id] = (float("inf"), 0)
            else:
                self.tally.decision_retries[str(None if response is None else response.status_code)] += 1
                tried(due, task_id)

        async def correct(case_id: int, uscc: str, name: str) -> None:
            body = {"acct_name": name, "acct_no": f"6222{self.rng.randrange(10**14):014d}",
                    "bank_name": "中国建设银行宜昌分行", "bank_code": "105526000017"}  # fmt: skip
            response = await self._post(client, f"/api/v1/cases/{case_id}/account", body,
                                        self._token("enterprise", uscc), tries=1)  # fmt: skip
            tried(corrected, case_id)
            if response is not None and response.status_code in (200, 201):
                self.tally.corrections += 1

        while not stop.is_set():
            try:
                tasks, returned = await asyncio.to_thread(open_work)
                work = [decide(*t) for t in [t for t in tasks if ready(due, t[0])][:16]]
                work += [correct(*r) for r in [r for r in returned if ready(corrected, r[0])][:8]]
                await asyncio.gather(*work)
            except Exception as exc:  # the soak must go on: a database hiccup is retried next round
                self.tally.clerk_errors[type(exc).__name__] += 1
            await asyncio.sleep(0.5)

    async def start_campaign(self, ids: dict[str, Any]) -> None:
        from temporalio.exceptions import WorkflowAlreadyStartedError

        from services.campaigns import start_campaign
        from workflows.client import connect

        client = await connect(self.settings, attempts=60)
        # The worker's listing starter may have started it already: that is the same campaign.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await start_campaign(client=client, settings=self.settings, campaign_id=ids["campaign_id"],
                                 workflow_id=ids["workflow_id"], batch_size=200, pay_batch_size=200,
                                 poll_seconds=1.0)  # fmt: skip

    # -- the faults ------------------------------------------------------------------------------------------------

    async def chaos(self, period: float) -> None:
        """Worker kills and server restarts spread over the load; SMS failures scripted in between."""
        plan = self.plan
        events = ["kill"] * plan.worker_kills + ["restart"] * plan.server_restarts
        # Restarts spread among the kills, never first (the load must be under way).
        order = ["kill"] * plan.worker_kills
        for i in range(plan.server_restarts):
            order.insert(min(len(order), 1 + (i + 1) * len(order) // (plan.server_restarts + 1) + i), "restart")
        assert sorted(order) == sorted(events)
        gap = period / (len(order) + 1)
        for what in order:
            await asyncio.sleep(gap * self.rng.uniform(0.6, 1.4))
            self.sms.fail_next("500", times=3)
            self.sms.fail_next("429", times=2)
            self.tally.sms_failures_scripted += 5
            if what == "kill":
                await asyncio.to_thread(self.kill_worker)
            else:
                await self.restart_server()
            console.print(
                f"  [{time.monotonic() - self.t0:6.1f}s] {'杀死 worker' if what == 'kill' else '重启 Temporal'}："
                f"已申请 {self.tally.applications}，已决定 {self.tally.decisions}"
            )

    # -- the whole run ------------------------------------------------------------------------------------------

    async def run(self, load_period: float) -> dict[str, Any]:
        plan = self.plan
        n_instant = max(1, round(plan.cases * plan.instant_share))
        n_review = max(1, round(plan.cases * plan.review_share))
        n_campaign = max(1, plan.cases - n_instant - n_review)
        applicants = _enterprises(self.settings, max(n_instant, n_review), INSTANT_REGION, self.rng, "浸泡")
        _enterprises(self.settings, n_campaign, CAMPAIGN_REGION, self.rng, "稳岗")
        ids = _items(self.settings, n_instant, budget_cases=max(1, int(n_instant * 0.85)))
        jobs = [(INSTANT_ITEM, u) for u in applicants[:n_instant]] + [(REVIEW_ITEM, u) for u in applicants[:n_review]]
        self.rng.shuffle(jobs)
        self.set_treasury_faults(True)
        self.t0 = time.monotonic()
        stop_clerks = asyncio.Event()
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            clerks = asyncio.create_task(self.clerks(client, stop_clerks))
            chaos = asyncio.create_task(self.chaos(load_period))
            await self.start_campaign(ids)
            await self.apply_all(client, jobs)
            applied_s = time.monotonic() - self.t0
            await chaos
            chaos_s = time.monotonic() - self.t0
            # The treasury's faults stay on while the cases settle (a return pays again, and may come back again).
            drained = await self.drain(ids["workflow_id"])
            self.set_treasury_faults(False)
            stop_clerks.set()
            await clerks
        total_s = time.monotonic() - self.t0
        self.faults |= {"worker_kills": self.tally.worker_kills, "temporal_restarts": self.tally.server_restarts,
                        "sms_failures_scripted": self.tally.sms_failures_scripted,
                        "sms_failed_answers": sum(1 for r in self.sms.requests if r.answer != "OK")}  # fmt: skip
        checks = await self.check(ids["workflow_id"])
        return {
            "plan": {"cases": plan.cases, "instant": n_instant, "review": n_review, "no_application": n_campaign,
                     "worker_kills": plan.worker_kills, "server_restarts": plan.server_restarts, "seed": plan.seed},
            "load": {"applications": self.tally.applications, "refused": dict(self.tally.refused),
                     "decisions": self.tally.decisions, "decision_retries": dict(self.tally.decision_retries),
                     "clerk_errors": dict(self.tally.clerk_errors), "corrections": self.tally.corrections,
                     "api_transient_errors": dict(self.tally.api_errors), "applied_seconds": round(applied_s, 1),
                     "faults_seconds": round(chaos_s, 1), "total_seconds": round(total_s, 1), "drained": drained,
                     "cases_per_s": round(checks["cases"]["total"] / max(total_s, 0.001), 2)},
            "faults": self.faults,
            **checks,
        }  # fmt: skip

    async def drain(self, campaign_workflow: str) -> bool:
        """Wait until every case is final or waits on a deadline, no instruction is still on its way, and the
        campaign finished."""
        deadline = time.monotonic() + self.plan.drain_seconds
        said = time.monotonic()
        while time.monotonic() < deadline:
            pending = await asyncio.to_thread(self._unsettled)
            if pending == 0 and await self._workflow_closed(campaign_workflow):
                return True
            if time.monotonic() - said > 30:
                said = time.monotonic()
                console.print(
                    f"  [{said - self.t0:6.1f}s] 等待办件落定：还有 {pending} 件在途，已决定 {self.tally.decisions}"
                )
            await asyncio.sleep(1.0)
        return False

    def _unsettled(self) -> int:
        from sqlalchemy import func, select

        from db.models import Case, CaseEvent, CaseTask, PaymentInstruction
        from db.session import reading
        from schemas.vocabulary import CaseStatus, EventKind, PaymentStatus

        # A case under review waits on a department only while a stage task is open with its deadline; between
        # two stages (a decision recorded, the next stage not opened yet: the workflow is busy or its worker was
        # just killed) it is still moving. Counting every reviewing case as settled ended the drain early, and the
        # final check then met such a case "reviewing without a deadline".
        waits_on_a_department = (
            select(CaseTask.id).where(CaseTask.case_id == Case.id, *_open_task_with_deadline()).exists()
        )
        # Likewise a case awaiting correction waits on the enterprise only until the account is corrected: the
        # case keeps that status while the workflow reserves and sends the next attempt (the soak's applicants
        # correct at once, and a drain that counted such a case as settled once ended before its second payment:
        # "停在 paying，没有截止期限", and the ledgers differed by that payment).
        def last(kind: EventKind):
            return (
                select(func.max(CaseEvent.seq))
                .where(CaseEvent.case_id == Case.id, CaseEvent.kind == kind)
                .scalar_subquery()
            )

        corrected_since_asked = func.coalesce(last(EventKind.ACCOUNT_CORRECTED), 0) > func.coalesce(
            last(EventKind.CORRECTION_REQUESTED), 0
        )
        with reading(self.settings.db_url) as session:
            moving = session.scalar(
                select(func.count())
                .select_from(Case)
                .where(
                    Case.status.not_in([*CaseStatus.finals(), *WAITING])
                    | ((Case.status == CaseStatus.AWAITING_CORRECTION) & corrected_since_asked),
                    ~((Case.status == CaseStatus.REVIEWING) & waits_on_a_department),
                )
            )
            flying = session.scalar(
                select(func.count())
                .select_from(PaymentInstruction)
                .where(PaymentInstruction.status.in_([PaymentStatus.CREATED, PaymentStatus.ACCEPTED]))
            )
            return int(moving or 0) + int(flying or 0)

    async def _workflow_closed(self, workflow_id: str) -> bool:
        from temporalio.client import WorkflowExecutionStatus

        from workflows.client import connect

        with contextlib.suppress(Exception):
            client = await connect(self.settings)
            described = await client.get_workflow_handle(workflow_id).describe()
            return described.status != WorkflowExecutionStatus.RUNNING
        return False

    async def check(self, campaign_workflow: str) -> dict[str, Any]:
        from temporalio.client import WorkflowExecutionStatus

        from workflows.client import connect

        facts = await asyncio.to_thread(self._facts)
        violations: list[str] = list(facts.pop("violations"))
        client = await connect(self.settings)
        for case_id, workflow_id in facts.pop("waiting_workflows"):
            try:
                status = (await client.get_workflow_handle(workflow_id).describe()).status
            except Exception as exc:
                violations.append(f"办件 {case_id} 等待中，但其工作流 {workflow_id} 查不到（{type(exc).__name__}）")
                continue
            if status != WorkflowExecutionStatus.RUNNING:
                violations.append(f"办件 {case_id} 等待中，但其工作流已结束（{status.name}）")
        missing = [key for key in self._expected if key not in self.case_ids]
        if missing:
            violations.append(f"{len(missing)} 份申请未得到办件：{missing[:5]}")
        with self._admin() as admin:
            ledger = admin.ledger()
        [account] = ledger.Accounts or [None]
        theirs = {"paid_fen": account.PaidAmt if account else 0, "paid_count": account.PaidCount if account else 0,
                  "returned_fen": account.ReturnedAmt if account else 0,
                  "returned_count": account.ReturnedCount if account else 0}  # fmt: skip
        ours = facts["ledger_ours"]
        if ours != theirs:
            violations.append(f"我方台账与国库不符：我方 {ours}，国库 {theirs}")
        duplicates = await asyncio.to_thread(self._treasury_duplicates)
        if duplicates:
            violations.append(f"国库有重复拨付的凭证：{duplicates[:5]}")
        return {**facts, "ledger_treasury": theirs, "violations": violations, "ok": not violations}

    @property
    def _expected(self) -> list[str]:
        return list(self._jobs_keys)

    def _treasury_duplicates(self) -> list[str]:
        """Vouchers the treasury paid twice, and cases it holds more than one unreturned payment for."""
        from sqlalchemy import create_engine, select

        from schemas.vocabulary import PaymentStatus
        from standins.treasury.tables import ledger

        engine = create_engine(self.settings.treasury_db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(ledger.c.voucher_no, ledger.c.entry)).all()
        finally:
            engine.dispose()
        paid = Counter(v for v, entry in rows if entry == PaymentStatus.PAID)
        found = [f"{v}×{n}" for v, n in paid.items() if n > 1]
        net: Counter[str] = Counter()
        for voucher, entry in rows:
            net[voucher.rsplit("A", 1)[0]] += 1 if entry == PaymentStatus.PAID else -1
        found += [f"{case}: {n} 笔未退回的拨付" for case, n in net.items() if n > 1]
        return found

    def _facts(self) -> dict[str, Any]:
        from sqlalchemy import func, select

        from db.models import BudgetLine, Case, CaseTask, Notice, PaymentInstruction
        from db.session import reading
        from schemas.vocabulary import CaseStatus, FundItemMode, PaymentStatus

        violations: list[str] = []
        with reading(self.settings.db_url) as session:
            cases = session.execute(select(Case.id, Case.mode, Case.status, Case.workflow_id, Case.paid_fen)).all()
            by_status = Counter(f"{mode}:{status}" for _, mode, status, _, _ in cases)
            open_due = set(session.scalars(select(CaseTask.case_id).where(*_open_task_with_deadline())))
            waiting_workflows = []
            finals = set(CaseStatus.finals())
            for case_id, mode, status, workflow_id, _ in cases:
                if status in finals:
                    continue
                if status in WAITING or case_id in open_due:
                    if mode != FundItemMode.NO_APPLICATION:
                        waiting_workflows.append((case_id, workflow_id))
                    continue
                violations.append(f"办件 {case_id}（{mode}）停在 {status}，没有截止期限")
            instructions = session.execute(
                select(PaymentInstruction.case_id, PaymentInstruction.voucher_no, PaymentInstruction.status,
                       PaymentInstruction.paid_amt_fen, PaymentInstruction.returned_amt_fen)
            ).all()  # fmt: skip
            paid_now = Counter(c for c, _, status, _, _ in instructions if status == PaymentStatus.PAID)
            for case_id, n in paid_now.items():
                if n > 1:
                    violations.append(f"办件 {case_id} 同时有 {n} 笔已拨付的支付凭证")
            was_paid = Counter(
                c for c, _, status, _, _ in instructions if status in (PaymentStatus.PAID, PaymentStatus.RETURNED)
            )
            ours = {
                "paid_fen": sum(
                    p for _, _, s, p, _ in instructions if s in (PaymentStatus.PAID, PaymentStatus.RETURNED)
                ),
                "paid_count": sum(was_paid.values()),
                "returned_fen": sum(r for _, _, s, _, r in instructions if s == PaymentStatus.RETURNED),
                "returned_count": sum(1 for _, _, s, _, _ in instructions if s == PaymentStatus.RETURNED),
            }
            for line_id, total, reserved, committed in session.execute(
                select(BudgetLine.id, BudgetLine.total_fen, BudgetLine.reserved_fen, BudgetLine.committed_fen)
            ):
                if reserved + committed > total or reserved < 0 or committed < 0:
                    violations.append(f"预算额度 {line_id} 超支：预留 {reserved} + 已用 {committed} > {total}")
            # One payout notice per paid case: a paid case has one for the payment that stayed; a case paid again
            # after a return may have one per payout (the dedupe key carries the attempt), never more; a payment
            # whose `paid` result was never seen (the return came first) has none; a case never paid has none.
            paid_notices = Counter(session.scalars(select(Notice.case_id).where(Notice.template_key == "paid")))
            status_of = {case_id: status for case_id, _, status, _, _ in cases}
            for case_id in set(paid_notices) | set(was_paid):
                sent, payouts = paid_notices.get(case_id, 0), was_paid.get(case_id, 0)
                if sent > payouts or (status_of.get(case_id) == CaseStatus.PAID and sent < 1):
                    violations.append(
                        f"办件 {case_id}（{status_of.get(case_id)}）：拨付通知 {sent} 条，拨付 {payouts} 次"
                    )
            paid_cases = sum(1 for _, _, s, _, _ in cases if s == CaseStatus.PAID)
            paid_fen = sum(p for _, _, s, _, p in cases if s == CaseStatus.PAID)
            notices = dict(Counter(session.scalars(select(Notice.status))))
            total_notices = session.scalar(select(func.count()).select_from(Notice))
        return {
            "cases": {
                "total": len(cases),
                "paid": paid_cases,
                "paid_fen": paid_fen,
                "by_mode_status": dict(sorted(by_status.items())),
            },
            "notices": {"total": total_notices, "by_status": notices},
            "ledger_ours": ours,
            "violations": violations,
            "waiting_workflows": waiting_workflows,
        }


def _open_task_with_deadline() -> tuple:
    """A stage task still open with its deadline: the case waits on a department (the drain and the final check)."""
    from db.models import CaseTask
    from schemas.vocabulary import TaskStatus

    return CaseTask.status == TaskStatus.OPEN, CaseTask.due_at.is_not(None)


def _waiting() -> frozenset[str]:
    from schemas.vocabulary import CaseStatus

    # States that hold a deadline of their own in the workflow (or wait on a person with one).
    return frozenset({CaseStatus.AWAITING_CORRECTION, CaseStatus.SUPPLEMENT, CaseStatus.CONSENT_PENDING,
                      CaseStatus.PUBLICITY, CaseStatus.OBJECTION, CaseStatus.OBJECTED, CaseStatus.NO_ACCOUNT})  # fmt: skip


WAITING = _waiting()


def run_soak(plan: Plan, *, load_period: float, data_dir: Path) -> dict[str, Any]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("ZHIDA_")}
    soak = Soak(plan, data_dir)
    try:
        started = time.monotonic()
        soak.start()
        console.print(f"  栈已就绪（{time.monotonic() - started:.1f} 秒）")
        n_instant = max(1, round(plan.cases * plan.instant_share))
        n_review = max(1, round(plan.cases * plan.review_share))
        soak._jobs_keys = []  # filled in run(); the applicants are known only once generated
        result = asyncio.run(_run(soak, load_period, n_instant, n_review))
    finally:
        soak.stop()
        for key in [k for k in os.environ if k.startswith("ZHIDA_")]:
            del os.environ[key]
        os.environ.update(saved)
    return result


async def _run(soak: Soak, load_period: float, n_instant: int, n_review: int) -> dict[str, Any]:
    original = soak.apply_all

    async def apply_all(client: httpx.AsyncClient, jobs: list[tuple[str, str]]) -> None:
        soak._jobs_keys = [f"{item}:{uscc}" for item, uscc in jobs]
        await original(client, jobs)

    soak.apply_all = apply_all  # type: ignore[method-assign]
    return await soak.run(load_period)


@app.command("soak")
def soak_command(
    cases: int = typer.Option(
        30, min=3, help="cases in all (by default 40% instant, 20% review, the rest no-application)"
    ),
    worker_kills: int = typer.Option(2, min=0, help="times the worker is killed (SIGKILL) and restarted"),
    server_restarts: int = typer.Option(1, min=0, help="times the Temporal dev server is restarted"),
    minutes: float = typer.Option(0.2, min=0.05, help="the period over which the faults are spread"),
    seed: int = typer.Option(20261201, help="seed of the fault draws and the data"),
    concurrency: int = typer.Option(8, min=1, help="applicants at once"),
    instant_share: float = typer.Option(0.4, min=0, max=1, help="share of instant cases"),
    review_share: float = typer.Option(0.2, min=0, max=1, help="share of review cases (the rest: no application)"),
    drain_seconds: float = typer.Option(180.0, min=10, help="how long to wait for the cases to settle at the end"),
    reports_dir: Path = typer.Option(Path("reports"), help="where soak.json goes"),
    data_dir: Path | None = typer.Option(None, help="keep the stack's files here (default: a temporary folder)"),
) -> None:
    """Cases of all three modes under worker kills, Temporal restarts, treasury and SMS faults; checks the
    invariants and writes reports/soak.json (exit code 1 on any violation)."""
    plan = Plan(cases=cases, worker_kills=worker_kills, server_restarts=server_restarts, seed=seed,
                concurrency=concurrency, drain_seconds=drain_seconds, instant_share=instant_share,
                review_share=review_share)  # fmt: skip
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        result = run_soak(plan, load_period=minutes * 60, data_dir=data_dir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="zhida-soak-") as folder:
            result = run_soak(plan, load_period=minutes * 60, data_dir=Path(folder))
    result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "soak.json").write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    load, faults = result["load"], result["faults"]
    console.print(f"负载：{result['cases']['total']} 件办件（{result['plan']}），{load['total_seconds']} 秒，"
                  f"{load['cases_per_s']} 件/秒；已拨付 {result['cases']['paid']} 件")  # fmt: skip
    console.print(f"注入故障：{faults}")
    if result["ok"]:
        console.print(
            "[green]不变量全部成立：无办件丢失或无期限停滞、无重复拨付、台账与国库一致、预算未超、每次拨付一条通知[/]"
        )
    else:
        for v in result["violations"]:
            console.print(f"[red]{v}[/]")
    console.print(f"报告：{reports_dir / 'soak.json'}")
    if not result["ok"]:
        raise typer.Exit(1)
