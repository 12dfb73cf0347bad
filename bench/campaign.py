"""`zhida bench campaign`: a no-application item listed → all N generated enterprises paid (through the treasury
stand-in) and notified, on an embedded stack the bench starts itself; with the one-statement bulk insert of N
case rows into the same database as the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.report import app, print_figures, process_cpu_seconds, write_report
from settings import Settings

console = Console()
ITEM_CODE = "BENCH-2026-WGBT-001"
GOAL_SECONDS = 60.0
MUST_SECONDS = 300.0

# 湖北省中小微企业稳岗补贴（基准测试）：湖北注册、非失信，按纳税额 1% 补贴，最低 1000 元、最高 5 万元。
BENCH_CONDITIONS: dict[str, Any] = {
    "op": "all",
    "items": [
        {"field": "region_code", "op": "prefix", "value": "42"},
        {"field": "credit_status", "op": "ne", "value": "dishonest"},
    ],
}
BENCH_STANDARD: dict[str, Any] = {
    "kind": "rate",
    "base": "tax_paid_fen",
    "rate": "0.01",
    "floor_fen": 100_000,
    "cap_fen": 5_000_000,
}


def bench_config(budget_fen: int) -> dict[str, Any]:
    from cli.demo import NO_APPLICATION_CONFIG

    return NO_APPLICATION_CONFIG | {
        "name": "湖北省2026年度中小微企业稳岗补贴（免申即享，基准测试）",
        "region": {"code": "420000", "name": "湖北省"},
        "conditions": BENCH_CONDITIONS,
        "standard": BENCH_STANDARD,
        "budget": {"year": 2026, "total_fen": budget_fen, "sources": [{"name": "省级就业补助资金", "share_bp": 10000}]},
        "approval": {"finance": {"department": "YC-CZJ", "auto_when_quantified": True}},
        "no_application": {
            "consent": None,
            "shortfall": {"policy": "stop_in_order", "order_by": [{"key": "employees", "direction": "desc"}]},
        },
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "ZHIDA_DATA_DIR": str(settings.data_dir),
        "ZHIDA_DATABASE_URL": settings.db_url,
        "ZHIDA_TEMPORAL_ADDRESS": settings.temporal_address,
        "ZHIDA_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "ZHIDA_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "ZHIDA_TREASURY_URL": settings.treasury_url,
        "ZHIDA_TREASURY_SIM_PORT": str(settings.treasury_sim_port),
        "ZHIDA_TREASURY_SIM_DATABASE_URL": settings.treasury_db_url,
        "ZHIDA_TREASURY_SIM_SETTLE_DELAY_SECONDS": str(settings.treasury_sim_settle_delay_seconds),
        "ZHIDA_LOG_LEVEL": "WARNING",
    }


def add_accounts(url: str, fernet_key: str) -> int:
    """Every generated enterprise gets an account on file (encrypted) and a 联行号, as the archive would have."""
    from sqlalchemy import bindparam, select, update

    from db import crypto
    from db.models import Enterprise
    from db.session import transaction

    table = Enterprise.__table__
    with transaction(url) as session:
        rows = session.execute(select(table.c.id, table.c.name)).all()
        params = []
        for eid, name in rows:
            account = f"6222{eid:014d}"
            params.append(
                {
                    "eid": eid,
                    "enc": crypto.encrypt(fernet_key, account),
                    "masked": crypto.mask_account(account),
                    "acct_name": name,
                }
            )
        session.execute(
            update(table)
            .where(table.c.id == bindparam("eid"))
            .values(
                bank_account_enc=bindparam("enc"),
                bank_account_masked=bindparam("masked"),
                bank_account_name=bindparam("acct_name"),
                bank_name="中国工商银行湖北省分行营业部",
                bank_code="102521000018",
            ),
            params,
        )
    return len(params)


def baseline_bulk_insert(url: str, item_id: int) -> tuple[float, int]:
    """N case rows in one INSERT … SELECT into the same database (then removed): the floor for any campaign."""
    from sqlalchemy import String, delete, func, insert, literal, select

    from db.models import Case, Enterprise
    from db.session import transaction
    from schemas.vocabulary import CaseStatus, FundItemMode

    case_t, ent_t = Case.__table__, Enterprise.__table__
    source = select(
        literal(item_id),
        literal(1),
        ent_t.c.id,
        literal(FundItemMode.NO_APPLICATION.value, String),
        literal(CaseStatus.MATCHED.value, String),
        literal(100_000),
        literal(0),
        literal("baseline:", String) + ent_t.c.uscc,
    )
    columns = [
        "fund_item_id",
        "fund_item_version",
        "enterprise_id",
        "mode",
        "status",
        "amount_fen",
        "paid_fen",
        "workflow_id",
    ]
    with transaction(url) as session:
        started = time.perf_counter()
        session.execute(insert(case_t).from_select(columns, source))
        session.commit()
        seconds = time.perf_counter() - started
    with transaction(url) as session:
        # The baseline rows are told apart by their workflow ids, as a real status they keep the CHECK constraint.
        baseline = case_t.c.workflow_id.startswith("baseline:")
        count = session.scalar(select(func.count()).select_from(case_t).where(baseline))
        session.execute(delete(case_t).where(baseline))
    return seconds, int(count or 0)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_campaign_bench(
    *,
    n: int,
    settle_delay: float = 0.05,
    batch_size: int = 5000,
    seed: int = 2026,
    progress: bool = True,
    profile_worker: str = "",
    summary_triggers: bool = True,
) -> tuple[dict[str, Any], str]:
    """Start the stack, generate the archive, list the item, wait until every match is paid and notified."""
    from sqlalchemy import func, select

    from bench.dashboard import _triggers_off
    from bench.report import database_facts
    from cli.demo import DEPARTMENTS, add_listed_item
    from cli.embedded import temporal_command, wait_port
    from cli.generate import insert_enterprises
    from db.migrate import upgrade
    from db.models import Case, Notice, PaymentInstruction
    from db.repositories import campaigns as repo
    from db.repositories import fund_items
    from db.session import transaction
    from schemas.vocabulary import CaseStatus

    with tempfile.TemporaryDirectory(prefix="zhida-bench-campaign-") as folder:
        data = Path(folder)
        settings = Settings(
            data_dir=data,
            database_url=f"sqlite:///{data / 'zhida.db'}",
            temporal_address=f"127.0.0.1:{_free_port()}",
            temporal_ui_port=_free_port(),
            temporal_namespace="default",
            temporal_task_queue="zhida-bench-campaign",
            treasury_sim_port=_free_port(),
            treasury_sim_database_url=f"sqlite:///{data / 'treasury.db'}",
            treasury_sim_settle_delay_seconds=settle_delay,
        )
        settings.treasury_url = f"http://127.0.0.1:{settings.treasury_sim_port}"
        url = settings.db_url
        upgrade(url)
        console.print(f"生成 {n} 家企业档案（含收款账户）…")
        with transaction(url) as session:
            for code, name, kind in DEPARTMENTS:
                fund_items.add_department(session=session, code=code, name=name, region_code="420500", kind=kind)
            insert_enterprises(session=session, n=n, seed=seed, progress=progress, console=console)
        add_accounts(url, settings.fernet_key())
        with transaction(url) as session:
            scratch = add_listed_item(
                session=session, code="BENCH-BASELINE", department_code="YC-RSJ", config=bench_config(10**12)
            )
            scratch_id = scratch.id
        baseline_seconds, baseline_rows = baseline_bulk_insert(url, scratch_id)
        console.print(f"基线：一条语句插入 {baseline_rows} 行办件 {baseline_seconds:.3f} 秒")

        # Without the cockpit's summary triggers (dropped here, put back and recounted after the run, untimed): what
        # keeping the summaries in the writing transaction costs the campaign.
        triggers = contextlib.nullcontext() if summary_triggers else _triggers_off(url)
        triggers.__enter__()
        procs: list[subprocess.Popen] = []
        named: list[tuple[str, subprocess.Popen]] = []
        logs = data / "logs"
        logs.mkdir()

        def start(name: str, argv: list[str]) -> None:
            log = (logs / f"{name}.log").open("ab")
            procs.append(
                subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=_env(settings), start_new_session=True)
            )
            named.append((name, procs[-1]))

        try:
            start("temporal", temporal_command(settings))
            start("treasury", [sys.executable, "-m", "cli", "treasury-sim"])
            host, port = settings.temporal_address.rsplit(":", 1)
            if not wait_port(host, int(port), 60) or not wait_port("127.0.0.1", settings.treasury_sim_port, 60):
                raise typer.Exit(f"服务未能启动，日志在 {logs}")
            profile = ["-m", "cProfile", "-o", profile_worker] if profile_worker else []
            start("worker", [sys.executable, *profile, "-m", "cli", "bench", "campaign-worker"])
            figures = asyncio.run(_listing_to_paid(settings, n, batch_size, progress, named))
            cpu_before = figures.pop("cpu_at_start")
            for name, proc in named:
                used = process_cpu_seconds(proc.pid) - cpu_before[name]
                figures[f"cpu_seconds_{name}"] = round(used, 2)
        finally:
            _stop(procs)
            triggers.__exit__(None, None, None)
        with transaction(url) as session:
            item = fund_items.get_by_code(session=session, code=ITEM_CODE)
            assert item is not None
            paid, paid_fen = session.execute(
                select(func.count(), func.coalesce(func.sum(Case.paid_fen), 0)).where(
                    Case.fund_item_id == item.id, Case.status == CaseStatus.PAID
                )
            ).one()
            matched = session.scalar(select(func.count()).select_from(Case).where(Case.fund_item_id == item.id))
            notices = session.scalar(
                select(func.count())
                .select_from(Notice)
                .where(Notice.fund_item_id == item.id, Notice.template_key == "paid")
            )
            instructions = session.scalar(
                select(func.count()).select_from(PaymentInstruction).join(Case).where(Case.fund_item_id == item.id)
            )
            campaign = repo.for_item(session=session, fund_item_id=item.id)[0]
            counts = repo.case_status_counts(session=session, campaign_id=campaign.id)
        database = database_facts(url)
    seconds = figures.pop("seconds")
    result = {
        "n": n,
        "seconds": round(seconds, 2),
        "paid": int(paid),
        "paid_fen": int(paid_fen),
        "baseline_bulk_insert_seconds": round(baseline_seconds, 3),
        "ratio_to_baseline": round(seconds / baseline_seconds, 1) if baseline_seconds else 0.0,
        "matched": int(matched or 0),
        "instructions": int(instructions or 0),
        "paid_notices": int(notices or 0),
        "not_paid": sum(v for k, v in counts.items() if k != "paid"),
        "paid_per_s": round(int(paid) / seconds, 1) if seconds else 0.0,
        "batch_size": batch_size,
        "summary_triggers": summary_triggers,
        "treasury_settle_delay_seconds": settle_delay,
        **figures,
        "goal_seconds": GOAL_SECONDS,
        "within_goal": seconds < GOAL_SECONDS,
        "within_must": seconds < MUST_SECONDS,
    }
    return result, database


async def _listing_to_paid(
    settings: Settings, n: int, batch_size: int, progress: bool, processes: list[tuple[str, subprocess.Popen]]
) -> dict[str, Any]:
    """List the item (campaign registered in the listing transaction) and start it as the API starter would.

    A process of the bench's stack that exits ends the bench with its name: the campaign would otherwise wait
    for a worker that is gone, for ever."""
    from cli.demo import add_listed_item
    from db.repositories import campaigns as repo
    from db.session import transaction
    from services.campaigns import start_campaign
    from workflows.campaign import CampaignWorkflow
    from workflows.client import connect

    client = await connect(settings, attempts=60)
    await _worker_polling(client, settings, processes)
    cpu_at_start = {name: process_cpu_seconds(proc.pid) for name, proc in processes}  # after the worker's start-up
    started = time.perf_counter()
    with transaction(settings.db_url) as session:
        item = add_listed_item(session=session, code=ITEM_CODE, department_code="YC-RSJ", config=bench_config(10**13))
        campaign = repo.register_listing(session=session, item=item, version=1, actor="bench")
        campaign_id, workflow_id = campaign.id, campaign.workflow_id
    await start_campaign(
        client=client,
        settings=settings,
        campaign_id=campaign_id,
        workflow_id=workflow_id,
        batch_size=batch_size,
        pay_batch_size=batch_size,
        poll_seconds=0.5,
    )
    from schemas.campaigns import CampaignProgress

    handle = client.get_workflow_handle(workflow_id, result_type=CampaignProgress)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("免申即享兑付", total=n)
        result_task = asyncio.ensure_future(handle.result())
        while not result_task.done():
            for name, proc in processes:
                if proc.poll() is not None:
                    result_task.cancel()
                    raise typer.Exit(f"{name} 进程意外退出（退出码 {proc.returncode}），日志在 {settings.data_dir}/logs")
            with contextlib.suppress(Exception):
                p = await handle.query(CampaignWorkflow.progress)
                bar.update(task, total=p.matched or n, completed=p.paid, description=f"{p.phase} 已拨付")
            await asyncio.wait([result_task], timeout=1.0)
        final = result_task.result()
    seconds = time.perf_counter() - started
    described = await handle.describe()
    history = described.raw_description.workflow_execution_info.history_length
    return {
        "seconds": seconds,
        "workflow_history_events_last_run": history,
        "failed": final.failed,
        "cpu_at_start": cpu_at_start,
        **await _activity_seconds(handle),
    }


async def _worker_polling(client, settings: Settings, processes: list[tuple[str, subprocess.Popen]]) -> None:
    """Wait until the worker polls both its workflow and activity queues: the clock times the campaign, not the
    worker's start-up (a deployment's worker is running before an item is listed; its imports took seconds here)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for name, proc in processes:
            if proc.poll() is not None:
                raise typer.Exit(f"{name} 进程意外退出（退出码 {proc.returncode}），日志在 {settings.data_dir}/logs")
        polled = []
        for kind in kinds:
            answer = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=settings.temporal_namespace,
                    task_queue=TaskQueue(name=settings.temporal_task_queue),
                    task_queue_type=kind,
                )
            )
            polled.append(bool(answer.pollers))
        if all(polled):
            return
        await asyncio.sleep(0.2)
    raise typer.Exit("工作进程 120 秒内未开始拉取任务")


async def _activity_seconds(handle) -> dict[str, float]:
    """Seconds spent in each kind of activity (started → completed), from the last run's history."""
    scheduled: dict[int, str] = {}
    started: dict[int, float] = {}
    spent: dict[str, float] = {}
    timeline: list[tuple[str, float, float]] = []
    async for event in handle.fetch_history_events():
        attrs = event.activity_task_scheduled_event_attributes
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.HasField("activity_task_started_event_attributes"):
            started[event.activity_task_started_event_attributes.scheduled_event_id] = (
                event.event_time.ToDatetime().timestamp()
            )
        elif event.HasField("activity_task_completed_event_attributes"):
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            name = scheduled.get(sid, "?").removeprefix("campaign_")
            took = event.event_time.ToDatetime().timestamp() - started.get(sid, 0.0)
            spent[f"activity_{name}_seconds"] = spent.get(f"activity_{name}_seconds", 0.0) + took
            spent[f"activity_{name}_count"] = spent.get(f"activity_{name}_count", 0) + 1
            timeline.append((name, started.get(sid, 0.0), took))
    if os.environ.get("ZHIDA_BENCH_TIMELINE"):
        Path(os.environ["ZHIDA_BENCH_TIMELINE"]).write_text(
            "\n".join(f"{name} {at:.3f} {took:.3f}" for name, at, took in timeline)
        )
    return {k: round(v, 2) for k, v in sorted(spent.items())}


@app.command("campaign")
def campaign_command(
    n: int = typer.Option(100_000, "--n", min=1, help="enterprises to generate"),
    settle_delay: float = typer.Option(0.05, help="treasury stand-in settlement delay, seconds"),
    batch_size: int = typer.Option(5000, min=100, help="cases per activity"),
    seed: int = typer.Option(2026, help="generator seed"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-campaign.json and .md go"),
    progress: bool = typer.Option(True, help="show progress bars"),
    profile_worker: str = typer.Option("", hidden=True, help="write a cProfile of the worker process to this file"),
    summary_triggers: bool = typer.Option(
        True, help="keep the cockpit's summary triggers on (off: dropped for the run, recounted after; measures their cost)"
    ),
) -> None:
    """免申即享 at scale: listing → every matched enterprise paid and notified; must < 300 s, goal < 60 s for 100,000."""
    figures, database = run_campaign_bench(
        n=n,
        settle_delay=settle_delay,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        profile_worker=profile_worker,
        summary_triggers=summary_triggers,
    )
    print_figures(f"bench campaign · {database}", figures)
    notes = (
        "Embedded stack started by the bench: Temporal dev server (SQLite file, WAL), treasury stand-in process "
        f"(settle delay {settle_delay} s, signed HTTP, batches of 1,000), one worker process, SQLite application "
        "database in a temporary directory. Item: Hubei-registered and not dishonest, 1% of tax paid (floor "
        "1,000 yuan, cap 50,000 yuan), no consent, no publicity, automatic finance approval. 'seconds' runs from "
        "the listing transaction (fund item + campaign row) to the campaign workflow's completion, which comes after "
        "the last batch is settled: budget committed, cases paid, payout notices written. One CampaignWorkflow, "
        f"{batch_size} cases per activity (bulk SQL), continue-as-new between runs. Baseline: one INSERT … SELECT "
        "of N case rows into the same database; ratio_to_baseline = seconds / baseline."
    )
    json_path, md_path = write_report("campaign", figures, notes, database=database, reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")


@app.command("campaign-worker", hidden=True)
def campaign_worker() -> None:
    """The bench's worker process (settings from the environment), without the SMS dispatcher."""
    import signal

    from cli.main import freeze_startup_heap
    from cli.worker import build_worker
    from settings import get_settings
    from workflows.client import connect

    settings = get_settings()
    async def _main() -> None:
        client = await connect(settings, attempts=60)
        worker = build_worker(client, settings)
        freeze_startup_heap()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.shutdown()))
        await worker.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
