"""`zhida archive`: the enterprise archive's data sources, and importing a source's file with a progress bar."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from settings import Settings, get_settings

if TYPE_CHECKING:
    from temporalio.client import Client

app = typer.Typer(help="企档 (enterprise archive): data sources and imports", no_args_is_help=True)
console = Console()


@app.command("sources")
def sources_command() -> None:
    """The data sources: who sends each, how often, and the fields it owns."""
    from schemas.archive_sources import SOURCES
    from schemas.fields import FIELDS

    table = Table(title="企档数据来源")
    for label in ("来源", "编码", "提供单位", "更新频率", "拥有字段", "格式"):
        table.add_column(label)
    for s in SOURCES.values():
        owned = "、".join(FIELDS[f].label for f in s.fields)
        table.add_row(s.label, s.id.value, s.provider, s.cadence_label, owned, "、".join(s.formats))
    console.print(table)


@app.command("import")
def import_command(
    source: str = typer.Argument(..., help="数据来源编码：market、tax、social、tech、credit"),
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV、Excel（.xlsx）或 JSON 文件"),
    source_date: str = typer.Option("", help="数据日期 YYYY-MM-DD（文件未逐行给出时；默认今天）"),
    actor: str = typer.Option("import", help="记入审计的操作人（管理员账号）"),
    report: Path | None = typer.Option(None, help="导入失败时把逐行错误报告写到此 CSV 文件"),
) -> None:
    """Import a source's file: every row is validated first; any bad row stores nothing (the errors are listed and
    can be written to a CSV report); the same file again changes nothing."""
    from db.session import transaction
    from schemas.principal import Principal
    from schemas.vocabulary import ImportStatus
    from services import archive
    from services.errors import DomainError
    from services.scope import Scope

    try:
        day = date.fromisoformat(source_date) if source_date else None
    except ValueError:
        raise typer.BadParameter("数据日期应写成 YYYY-MM-DD", param_hint="--source-date") from None
    settings = get_settings()
    scope = Scope(principal=Principal(role="admin", subject=actor))
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        try:
            with transaction(settings.db_url) as session:
                result = archive.import_file(
                    session=session,
                    scope=scope,
                    source_name=source,
                    file_name=path.name,
                    data=path.read_bytes(),
                    source_date=day,
                    progress=progress,
                )
                errors = (
                    archive.error_report(session=session, scope=scope, import_id=result.id)
                    if result.error_count
                    else ""
                )
        except DomainError as exc:
            raise typer.BadParameter(exc.message, param_hint="SOURCE") from None
    if result.duplicate:
        console.print(f"该文件已于第 {result.id} 次导入时导入过（内容相同），未作任何变更")
        return
    if result.status == ImportStatus.FAILED:
        for e in result.errors[:20]:
            console.print(f"[red]第 {e['row']} 行 {e['column']}：{e['message']}[/]")
        more = result.error_count - min(result.error_count, 20)
        if more:
            console.print(f"[red]……另有 {more} 处错误[/]")
        if report is not None:
            report.write_text(errors, encoding="utf-8")
            console.print(f"逐行错误报告已写入 {report}")
        console.print(f"第 {result.id} 次导入未成功：{result.error_count} 处错误，企档未作任何变更")
        raise typer.Exit(1)
    console.print(
        f"第 {result.id} 次导入（{result.source_label}）完成：{result.rows} 行，"
        f"{result.changed_enterprises} 家企业的 {result.changed_values} 项数据有变更；"
        f"重新比对新增 {result.reevaluations} 个免申即享复核，{result.alerts} 条已拨付复核提醒"
    )


async def ensure_archive_pull_schedules(client: Client, settings: Settings) -> list[str]:
    """One Temporal Schedule per pullable source at its configured cadence, when a data-sharing platform is
    configured (none otherwise)."""
    if not (settings.datashare_url and settings.archive_pull_schedules_enabled):
        return []
    from schemas.archive_sources import SOURCES
    from workflows.archive_pull import ensure_schedules

    return await ensure_schedules(
        client,
        task_queue=settings.temporal_task_queue,
        sources={s.id.value: s.cadence for s in SOURCES.values() if s.dataset},
        time_zone=settings.reconciliation_timezone,
    )


@app.command("schedule")
def schedule_command() -> None:
    """Create or update the pull schedules (one per source, at its cadence; the worker also does this at start)."""
    import asyncio

    from workflows.client import connect

    settings = get_settings()
    if not settings.datashare_url:
        raise typer.BadParameter("未配置数据共享平台：请设置 ZHIDA_DATASHARE_URL", param_hint="ZHIDA_DATASHARE_URL")

    async def _run() -> list[str]:
        client = await connect(settings)
        return await ensure_archive_pull_schedules(client, settings.model_copy(update={"archive_pull_schedules_enabled": True}))

    for sid in asyncio.run(_run()):
        console.print(f"schedule {sid}")


@app.command("pull")
def pull_command(
    source: str = typer.Argument(..., help="数据来源编码：market、tax、social、tech、credit"),
    actor: str = typer.Option("datashare", help="记入审计的操作人（管理员账号）"),
) -> None:
    """Pull one source from the data-sharing platform now (the same pull its schedule runs): every page changed
    since the last watermark, checked, then imported whole or not at all."""
    from db.session import transaction
    from gateways.factory import datashare_client
    from schemas.principal import Principal
    from schemas.vocabulary import PullStatus
    from services import archive_pull
    from services.errors import DomainError
    from services.scope import Scope

    settings = get_settings()
    client = datashare_client(settings)
    if client is None:
        raise typer.BadParameter("未配置数据共享平台：请设置 ZHIDA_DATASHARE_URL", param_hint="ZHIDA_DATASHARE_URL")
    scope = Scope(principal=Principal(role="admin", subject=actor))
    try:
        with transaction(settings.db_url) as session:
            result = archive_pull.pull(session=session, scope=scope, client=client, source_name=source)
    except DomainError as exc:
        raise typer.BadParameter(exc.message, param_hint="SOURCE") from None
    finally:
        client.close()
    if result.status == PullStatus.FAILED:
        console.print(f"[red]第 {result.id} 次拉取失败（{result.failure_label}）：{result.reason}[/]")
        console.print("企档未作任何变更；水位线仍为 " + (result.since or "（首次拉取）"))
        raise typer.Exit(1)
    console.print(
        f"第 {result.id} 次拉取（{result.source}）完成：{result.pages} 页 {result.records} 条，"
        f"导入 {result.import_id or '—'}，{result.changed_values} 项数据有变更，"
        f"新增 {result.reevaluations} 个免申即享复核；水位线 {result.watermark or '—'}"
        + (f"（{result.reason}）" if result.reason else "")
    )
