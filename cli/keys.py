"""`zhida keys rotate`: a new key for personal data at rest, and every encrypted value re-encrypted under it.

`zhida keys status`: the keyring (ids only) and how many values each key still holds."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="密钥 keys of personal data at rest", no_args_is_help=True)
console = Console()


@app.command("rotate")
def rotate(
    operator: str = typer.Option(..., help="who runs it (recorded in the audit chain)"),
    batch: int = typer.Option(1000, min=1, max=100_000, help="values per transaction"),
) -> None:
    """Make a new key current and re-encrypt every value in batches (resumable: run it again after a crash)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from schemas.vocabulary import ActorKind, actor
    from services import keys
    from settings import get_settings

    settings = get_settings()
    with Progress(TextColumn("重新加密 {task.fields[column]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:  # fmt: skip
        task = bar.add_task("rotate", total=None, column="")
        report = keys.rotate(
            settings=settings,
            actor=actor(ActorKind.ADMIN, "cli", operator),
            batch=batch,
            on_total=lambda total: bar.update(task, total=total),
            on_batch=lambda column, rows: bar.update(task, advance=rows, column=column),
        )
    verb = "继续完成" if report.resumed else "完成"
    for column, rows in report.by_column.items():
        console.print(f"  {column}: {rows}")
    if report.unreadable:
        console.print(f"[red]{len(report.unreadable)} 个值的密钥不在密钥目录中，未重新加密（已保留原值）："
                      f"{', '.join(report.unreadable[:20])}；补齐密钥后再次运行以完成轮换[/]")  # fmt: skip
        raise typer.Exit(1)
    console.print(f"[green]密钥轮换{verb}：当前密钥 {report.key_id}，重新加密 {report.done} 个值；旧密钥仍保留可读，"
                  f"全部进程重启后可归档[/]")  # fmt: skip


@app.command("status")
def status() -> None:
    """Key ids in the keyring (current first) and the values each still encrypts."""
    from db import crypto
    from db.repositories import keys as repo
    from db.session import reading
    from settings import get_settings

    settings = get_settings()
    current, ring = crypto.keyring(settings.fernet_key())
    console.print(f"当前密钥 {current}；密钥目录中：{', '.join(ring)}")
    with reading(settings.db_url) as session:
        for table, column in repo.ENCRYPTED:
            left = repo.count_pending(session=session, table=table, column=column, key_id=current)
            console.print(f"  {table.name}.{column}: {left} 个值不在当前密钥下")
