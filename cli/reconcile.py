"""`zhida reconcile`: the daily reconciliation schedule (Temporal Schedules) and manual runs."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from settings import Settings, get_settings

if TYPE_CHECKING:
    from temporalio.client import Client

app = typer.Typer(help="对账 reconciliation with the treasury's daily statement", no_args_is_help=True)
console = Console()


async def ensure_reconciliation_schedule(client: Client, settings: Settings) -> str | None:
    """Create or update the daily schedule from settings (None when disabled)."""
    if not settings.reconciliation_schedule_enabled:
        return None
    from workflows.reconciliation import ensure_schedule

    return await ensure_schedule(
        client,
        task_queue=settings.temporal_task_queue,
        at=settings.reconciliation_time,
        time_zone=settings.reconciliation_timezone,
    )


@app.command("schedule")
def schedule() -> None:
    """Create or update the daily reconciliation schedule (the worker also does this at start)."""
    from workflows.client import connect

    settings = get_settings().model_copy(update={"reconciliation_schedule_enabled": True})

    async def _main() -> str | None:
        client = await connect(settings, attempts=10)
        return await ensure_reconciliation_schedule(client, settings)

    schedule_id = asyncio.run(_main())
    console.print(
        f"schedule {schedule_id}: daily at {settings.reconciliation_time} ({settings.reconciliation_timezone})"
    )


@app.command("run")
def run(
    day: str = typer.Option("", "--date", help="statement day YYYY-MM-DD (default: yesterday, Beijing time)"),
    wait: bool = typer.Option(True, help="wait for the result and print it"),
) -> None:
    """Reconcile one day now, through the same workflow the schedule starts."""
    from workflows.client import connect
    from workflows.reconciliation import start_reconciliation

    settings = get_settings()
    statement_day = date.fromisoformat(day) if day else None

    async def _main() -> None:
        client = await connect(settings, attempts=10)
        if statement_day is None:
            from datetime import datetime, timedelta

            from schemas.localtime import LOCAL_TZ

            target = datetime.now(LOCAL_TZ).date() - timedelta(days=1)
        else:
            target = statement_day
        workflow_id = await start_reconciliation(client, statement_date=target, task_queue=settings.temporal_task_queue)
        console.print(f"started {workflow_id}")
        if wait:
            summary = await client.get_workflow_handle(workflow_id).result()
            console.print(summary.model_dump() if hasattr(summary, "model_dump") else summary)

    asyncio.run(_main())
