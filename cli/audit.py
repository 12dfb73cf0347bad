"""`zhida audit verify`: check every case's keyed event chain and the chain of audit records (configuration,
archive edits, decisions, sign-ins, exports) against their anchors; exit code 1 when any is broken.
`zhida audit reanchor`: anchor case chains written before anchors existed (migration d5), recorded as its own event."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from temporalio.client import Client

    from settings import Settings

app = typer.Typer(help="审计 audit chains: case events and audit records", no_args_is_help=True)
console = Console()


@app.command("verify")
def verify() -> None:
    """Recompute every case's chain with the audit key and compare it with its anchored head."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from db.session import reading
    from services import audit
    from settings import get_settings

    settings = get_settings()
    with (
        reading(settings.db_url) as session,
        Progress(
            TextColumn("校验审计链"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar,  # fmt: skip
    ):
        task = bar.add_task("cases and records", total=None)
        report = audit.verify(session=session, scope=None, progress=lambda done, total: bar.update(task, completed=done,
                                                                                                    total=total))  # fmt: skip
    for broken in report.broken:
        where = f"办件 {broken['case_id']}" if broken["case_id"] is not None else "审计记录"
        console.print(f"[red]{where}：{broken['problem']}[/]")
    if report.broken:
        console.print(f"[red]审计链校验失败：{len(report.broken)} 处不符（{report.cases} 件办件，{report.records} 条审计记录）[/]")
        raise typer.Exit(1)
    console.print(f"[green]审计链完好：{report.cases} 件办件，{report.records} 条审计记录[/]")


@app.command("reanchor")
def reanchor(operator: str = typer.Option(..., help="who runs it (recorded): the administrator's name or id")) -> None:
    """Anchor the case chains written before migration d5 (they show as 缺少链头锚点) whose keyed hashes hold.

    A chain whose hashes do not hold is not anchored: that is tampering, and it keeps failing verification."""
    from db.session import transaction
    from schemas.vocabulary import ActorKind, actor
    from services import audit
    from settings import get_settings

    with transaction(get_settings().db_url) as session:
        done = audit.reanchor(session=session, scope=None, actor=actor(ActorKind.ADMIN, "cli", operator))
    console.print(f"[green]已重新锚定 {len(done)} 件办件的审计链[/]")


async def ensure_audit_schedule_from(client: Client, settings: Settings) -> str | None:
    """Create or update the daily audit verification schedule from settings (None when disabled)."""
    if not settings.audit_schedule_enabled:
        return None
    from workflows.audit import ensure_audit_schedule

    return await ensure_audit_schedule(client, task_queue=settings.temporal_task_queue, at=settings.audit_verify_time,
                                       time_zone=settings.reconciliation_timezone)  # fmt: skip


@app.command("schedule")
def schedule() -> None:
    """Create or update the daily audit verification schedule (the worker also does this at start)."""
    import asyncio

    from settings import get_settings
    from workflows.client import connect

    settings = get_settings().model_copy(update={"audit_schedule_enabled": True})

    async def _main() -> str | None:
        return await ensure_audit_schedule_from(await connect(settings, attempts=10), settings)

    console.print(f"schedule {asyncio.run(_main())}: daily at {settings.audit_verify_time}")
