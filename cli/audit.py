"""`zhida audit verify`: check every case's keyed event chain against its anchor; exit code 1 when any is broken."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="审计 audit chain of case events", no_args_is_help=True)
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
        task = bar.add_task("cases", total=None)
        report = audit.verify(session=session, scope=None, progress=lambda done, total: bar.update(task, completed=done,
                                                                                                    total=total))  # fmt: skip
    for broken in report.broken:
        console.print(f"[red]办件 {broken['case_id']}：{broken['problem']}[/]")
    if report.broken:
        console.print(f"[red]审计链校验失败：{len(report.broken)} / {report.cases} 件办件不符[/]")
        raise typer.Exit(1)
    console.print(f"[green]审计链完好：{report.cases} 件办件[/]")
