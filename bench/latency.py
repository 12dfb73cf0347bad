"""`zhida bench instant-latency`: application → instruction accepted by the treasury stand-in, on a private
embedded stack (Temporal dev server, stand-in, worker and API as processes, real HTTP between them)."""

from __future__ import annotations

import asyncio
import copy
import functools
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import typer
from sqlalchemy import func, or_, select

from bench.report import app, console, print_figures, process_cpu_seconds, write_report

BENCH_ITEM = "BENCH-INSTANT-001"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100), the usual definition for latency reports."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _prepare(settings: Any, n: int, seed: int) -> list[str]:
    """A listed instant item with room for every application, and n enterprises that meet its conditions."""
    from cli.demo import DEMO_CONFIG, add_listed_item
    from db import crypto
    from db.models import Enterprise
    from db.repositories import enterprises
    from db.session import transaction
    from schemas import uscc as uscc_rules

    config = copy.deepcopy(DEMO_CONFIG)
    config["name"] = "宜昌市2026年度专精特新一次性奖励（即申即享，基准测试）"
    config["budget"] = {
        "year": 2026,
        "total_fen": n * config["standard"]["amount_fen"] * 2,
        "sources": [{"name": "市级财政", "share_bp": 10000}],
    }
    rng = random.Random(seed)
    fernet = settings.fernet_key()
    codes: list[str] = []
    with transaction(settings.db_url) as session:
        add_listed_item(session=session, code=BENCH_ITEM, department_code="YC-JXJ", config=config)
        seen = set(session.scalars(select(Enterprise.uscc)))  # the demo archive is loaded too
        while len(codes) < n:
            code = uscc_rules.generate(rng, "420502")
            if code in seen:
                continue
            seen.add(code)
            phone = f"1390717{rng.randrange(10_000):04d}"
            account = f"4205{rng.randrange(10**14):014d}"
            name = f"宜昌基准测试制造有限公司{len(codes):04d}"
            enterprises.add(
                session=session,
                enterprise=Enterprise(
                    uscc=code,
                    name=name,
                    region_code="420502",
                    industry_code="C34",
                    size_class="small",
                    registered_on=date(2015, 5, 1),
                    employees=80,
                    revenue_fen=5 * 10**9,
                    tax_paid_fen=10**8,
                    rd_ratio_bp=500,
                    tags=["专精特新"],
                    credit_status="good",
                    contact_phone_enc=crypto.encrypt(fernet, phone),
                    contact_phone_masked=crypto.mask_phone(phone),
                    bank_account_enc=crypto.encrypt(fernet, account),
                    bank_account_masked=crypto.mask_account(account),
                    bank_account_name=name,
                    bank_name="中国工商银行宜昌分行营业部",
                    bank_code="102526000011",
                ),
            )
            codes.append(code)
    return codes


async def _apply_all(settings: Any, codes: list[str], concurrency: int, rate: float = 0.0) -> dict[int, float]:
    """Applicants over real HTTP; returns case id → time the application was sent.

    Closed loop (rate 0): `concurrency` applicants, each waiting until its instruction is accepted before
    applying again, as people at their screens. Open loop (rate R): one application every 1/R seconds,
    whatever the system's state, so latency is measured at a given arrival rate rather than at saturation.
    """
    from api.auth import mint

    base = f"http://{settings.api_host}:{settings.api_port}"
    key = settings.jwt_key()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for code in codes:
        queue.put_nowait(code)
    sent: dict[int, float] = {}
    waiting: dict[int, asyncio.Event] = {}
    done = asyncio.Event()
    stuck: list[int] = []

    async def watcher() -> None:
        """One poller for everyone: marks applications whose instruction the stand-in accepted."""
        while not done.is_set():
            if waiting:
                accepted = await asyncio.to_thread(_accepted_among, settings, set(waiting))
                for case_id in accepted:
                    waiting.pop(case_id).set()
            await asyncio.sleep(0.02)

    async def apply(client: httpx.AsyncClient, code: str) -> None:
        token = mint(key, role="enterprise", subject=code, name="基准测试企业")
        started = time.time()
        response = await client.post(
            f"{base}/api/v1/applications",
            json={"fund_item_code": BENCH_ITEM, "uscc": code},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        case_id = response.json()["id"]
        sent[case_id] = started
        event = waiting[case_id] = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), timeout=120)
        except TimeoutError:
            stuck.append(case_id)

    async def applicant(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await apply(client, queue.get_nowait())

    async def arrivals(client: httpx.AsyncClient) -> None:
        start = time.monotonic()
        tasks = []
        for i, code in enumerate(codes):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(apply(client, code)))
        await asyncio.gather(*tasks)

    connections = max(concurrency, 100) if rate else concurrency
    # Idle connections are dropped well before uvicorn closes them (5 s keep-alive): an applicant waits seconds for
    # its acceptance, and reusing a connection the server is closing fails the next POST with a ReadError.
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0)
    poller = asyncio.create_task(watcher())
    try:
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            if rate:
                await arrivals(client)
            else:
                await asyncio.gather(*(applicant(client) for _ in range(concurrency)))
    finally:
        done.set()
        await poller
    if stuck:
        raise SystemExit(
            f"{len(stuck)} 笔申报 120 秒内未见国库受理：办件 {stuck[:10]}，日志在 {settings.data_dir}/logs"
        )
    return sent


def _accepted_among(settings: Any, case_ids: set[int]) -> set[int]:
    from db.session import reader_for

    # A read-only poll: it must not take the write lock the system under test needs. A pooled connection and a
    # prebuilt statement, not an ORM session: this process polls 50 times a second on the cores the system under
    # test runs on, and an ORM session per poll cost it several ms of CPU per case.
    with reader_for(settings.db_url).connect() as conn:
        return set(conn.execute(_accepted_statement(), {"ids": list(case_ids)}).scalars())


@functools.cache
def _accepted_statement() -> Any:
    """Built on first use (importing the models here would slow every `zhida` command that loads the benches)."""
    from sqlalchemy import bindparam

    from db.models import PaymentInstruction

    t = PaymentInstruction.__table__
    return select(t.c.case_id).where(
        t.c.case_id.in_(bindparam("ids", expanding=True)),
        # A result can overtake the answer to the send (paid before accepted was stored).
        or_(t.c.accepted_at.is_not(None), t.c.settled_at.is_not(None)),
    )


def _times(settings: Any, case_ids: set[int]) -> dict[int, tuple[datetime, datetime | None]]:
    """case id → (accepted, settled) of the first instruction; accepted falls back to settled when a result
    overtook the answer to the send."""
    from db.models import PaymentInstruction
    from db.session import transaction

    with transaction(settings.db_url) as session:
        rows = session.execute(
            select(
                PaymentInstruction.case_id,
                func.coalesce(PaymentInstruction.accepted_at, PaymentInstruction.settled_at),
                PaymentInstruction.settled_at,
            ).where(PaymentInstruction.attempt == 1)
        ).all()
    return {case_id: (accepted, settled) for case_id, accepted, settled in rows if case_id in case_ids}


def _wait_settled(settings: Any, case_ids: set[int], timeout: float) -> dict[int, tuple[datetime, datetime]]:
    deadline = time.monotonic() + timeout
    while True:
        times = _times(settings, case_ids)
        settled = {case_id: (a, s) for case_id, (a, s) in times.items() if s is not None}
        if len(settled) == len(case_ids):
            return settled
        if time.monotonic() > deadline:
            raise SystemExit(f"超时：{len(case_ids) - len(settled)} 笔支付指令未在 {timeout:.0f} 秒内办结")
        time.sleep(0.5)


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _cpu_by_process(sup: Any) -> dict[str, float]:
    usage = {name: process_cpu_seconds(proc.pid) for name, proc in sup.children}
    usage["bench"] = time.process_time()
    return usage


def run_instant_latency(
    *,
    n: int,
    concurrency: int,
    seed: int,
    settle_delay: float,
    data_dir: Path,
    rate: float = 0.0,
    baseline_n: int = 500,
    baseline_concurrency: int = 50,
    db_url: str = "",
    workers: int = 1,
) -> dict:
    from bench.temporal import measure_baseline, server_requests
    from cli.embedded import Supervisor, free_port, isolated_settings, start_stack, zhida_command

    overrides = {"treasury_sim_settle_delay_seconds": str(settle_delay)}
    if db_url:
        overrides["database_url"] = db_url
    settings = isolated_settings(data_dir, **overrides)
    sup = Supervisor(data_dir / "logs")
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        start_stack(settings, sup, load_demo=True, quiet=True, metrics_port=metrics_port)
        for extra in range(1, workers):
            sup.start(f"worker-{extra + 1}", zhida_command("worker"))
        codes = _prepare(settings, n, seed)
        # The ceiling in the same invocation, on the same dev server, before the stack gets any load.
        # Requests read outside the CPU windows: their wait for the metrics flush is idle time of no workflow.
        requests_baseline = server_requests(metrics_url)
        cpu_baseline = _cpu_by_process(sup)
        baseline = (
            asyncio.run(measure_baseline(settings, baseline_n, baseline_concurrency))
            if baseline_n
            else 0.0
        )
        cpu_baseline = {name: used - cpu_baseline[name] for name, used in _cpu_by_process(sup).items()}
        requests_baseline = {k: v - requests_baseline[k] for k, v in server_requests(metrics_url).items()}
        # One warm-up application outside the measurement: first-use costs (imports, connections) are not latency.
        asyncio.run(_apply_all(settings, codes[:1], 1))
        requests_before = server_requests(metrics_url)
        cpu_before = _cpu_by_process(sup)
        started = time.time()
        sent = asyncio.run(_apply_all(settings, codes[1:], concurrency, rate))
        submitted = time.time()
        times = _wait_settled(settings, set(sent), timeout=600)
        cpu_after = _cpu_by_process(sup)
        requests = {k: v - requests_before[k] for k, v in server_requests(metrics_url).items()}
        latencies = [(_epoch(times[case_id][0]) - sent[case_id]) * 1000 for case_id in sent]
        last_accepted = max(_epoch(accepted) for accepted, _ in times.values())
        to_paid = [(_epoch(times[case_id][1]) - sent[case_id]) * 1000 for case_id in sent]
    finally:
        sup.stop()
    per_s = len(sent) / (last_accepted - started)
    figures: dict[str, Any] = {
        "applications": len(sent),
        "concurrency": 0 if rate else concurrency,
        "rate_per_s": rate,
        "workers": workers,
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "applications_per_s": round(per_s, 1),
        "baseline_workflows_per_s": round(baseline, 1),
        "ratio_to_baseline": round(per_s / baseline, 2) if baseline else 0.0,
        "submit_seconds": round(submitted - started, 2),
        "settle_delay_seconds": settle_delay,
        "p50_to_paid_ms": round(statistics.median(to_paid), 1),
        "p99_to_paid_ms": round(percentile(to_paid, 99), 1),
    }
    if baseline_n:
        # What a bare workflow costs the server (and the in-process worker): the floor an instant case compares to.
        for name in ("temporal", "bench"):
            figures[f"baseline_cpu_ms_per_workflow_{name}"] = round(cpu_baseline[name] * 1000 / baseline_n, 1)
        # Counts, which a busy machine does not move: the server's requests per bare workflow and per case.
        for kind in ("persistence", "visibility"):
            figures[f"baseline_{kind}_requests_per_workflow"] = round(requests_baseline[kind] / baseline_n, 2)
    for kind in ("persistence", "visibility"):
        figures[f"{kind}_requests_per_case"] = round(requests[kind] / len(sent), 2)
    # Where the machine's CPU goes per application (the whole run, including settlement and callbacks).
    for name in cpu_after:
        used = cpu_after[name] - cpu_before.get(name, 0.0)
        figures[f"cpu_ms_per_case_{name.replace('-', '_')}"] = round(used * 1000 / len(sent), 1)
    return figures


@app.command("instant-latency")
def instant_latency_command(
    n: int = typer.Option(500, "--n", min=2, help="applications (one more is sent first as a warm-up)"),
    concurrency: int = typer.Option(20, min=1, help="concurrent applicants (closed loop)"),
    rate: float = typer.Option(0.0, "--rate", min=0.0, help="open loop: applications per second (0 = closed loop)"),
    settle_delay: float = typer.Option(1.0, help="the stand-in's settlement delay in seconds (after acceptance)"),
    baseline_n: int = typer.Option(500, help="temporal-baseline workflows run first in the same invocation (0 = skip)"),
    baseline_concurrency: int = typer.Option(50, min=1, help="temporal-baseline workflows in flight at once"),
    database_url: str = typer.Option("", help="application database (default: a fresh SQLite file)"),
    workers: int = typer.Option(1, min=1, help="worker processes"),
    seed: int = typer.Option(2026, help="generator seed"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-instant-latency.json and .md go"),
) -> None:
    """即申即享 latency: application → instruction accepted by the treasury stand-in; goal p50 < 1 s, p99 < 2 s."""
    from bench.report import database_facts

    with tempfile.TemporaryDirectory(prefix="zhida-bench-") as tmp:
        figures = run_instant_latency(
            n=n + 1,
            concurrency=concurrency,
            seed=seed,
            settle_delay=settle_delay,
            data_dir=Path(tmp),
            rate=rate,
            baseline_n=baseline_n,
            baseline_concurrency=baseline_concurrency,
            db_url=database_url,
            workers=workers,
        )
    database = database_facts(database_url) if database_url else "sqlite"
    loop = f"open loop at {rate:g}/s" if rate else f"closed loop, {concurrency} applicants"
    print_figures(f"bench instant-latency · embedded stack ({database}, {workers} worker(s), {loop})", figures)
    notes = (
        "Private embedded stack started by the benchmark: Temporal dev server (SQLite file, WAL), treasury stand-in, "
        f"{workers} worker process(es) and the API as separate processes, real HTTP between them; application "
        f"database {database}. The temporal baseline (bare two-activity workflows, {baseline_concurrency} in flight, "
        "an in-process worker) runs first on the same dev server; ratio_to_baseline = applications_per_s / "
        f"baseline_workflows_per_s. {figures['applications']} enterprises that meet the item's conditions apply "
        f"through POST /api/v1/applications ({loop}: "
        + (
            "one application every 1/rate seconds whatever the system's state"
            if rate
            else "each applicant waiting until its instruction is accepted before applying again"
        )
        + "); one warm-up application is sent first and not counted. Latency = time the "
        "stand-in's acceptance of the signed instruction was stored by our payment activity (payment_instruction."
        "accepted_at) minus the time the applicant sent the request; it covers case creation, workflow start, "
        "received/eligibility/budget activities and the signed send. applications_per_s = applications / (last "
        "acceptance − first application). *_to_paid_ms add the stand-in's settlement delay and the signed callback. "
        "cpu_ms_per_case_* = CPU time of each process (temporal = the dev server, bench = this process, which polls "
        "the database) over the measured run divided by the applications. *_requests_per_case and "
        "baseline_*_requests_per_workflow: the dev server's persistence requests that workflows drive (Prometheus "
        "persistence_requests without the task-queue readers and upkeep on its own clock) and its visibility "
        "store's over each part / its cases or workflows, counts that load does not move; the cases' include their "
        "settlements."
    )
    name = "instant-latency-open" if rate else "instant-latency"
    json_path, md_path = write_report(name, figures, notes, database=database, reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")
