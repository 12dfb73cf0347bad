"""`zhida keys rotate`: a new key for personal data at rest, and every encrypted value re-encrypted under it.

`zhida keys retire KEY_ID`: an old key out of the keyring, refused while any stored value still uses it.

`zhida keys status`: the keyring (ids only), the retired keys, and how many values each key still holds."""

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


@app.command("retire")
def retire(
    key_id: str = typer.Argument(..., help="the key id to retire, e.g. k1 (see zhida keys status)"),
    operator: str = typer.Option(..., help="who runs it (recorded in the audit chain)"),
) -> None:
    """Take an old key out of the keyring once no stored value uses it (refused otherwise); recorded."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from schemas.vocabulary import ActorKind, actor
    from services import keys
    from services.errors import DomainError
    from settings import get_settings

    settings = get_settings()
    columns = keys._columns()
    try:
        with Progress(TextColumn("检查 {task.fields[column]}"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:  # fmt: skip
            task = bar.add_task("retire", total=len(columns), column="")
            report = keys.retire(settings=settings, key_id=key_id, actor=actor(ActorKind.ADMIN, "cli", operator),
                                 on_column=lambda column, n: bar.update(task, advance=1, column=f"{column}：{n} 个值"))  # fmt: skip
    except DomainError as exc:
        console.print(f"[red]不能停用密钥 {key_id}：{exc.message}[/]")
        raise typer.Exit(1) from exc
    if report.already:
        console.print(f"[yellow]密钥 {key_id} 此前已停用，不再加载；无需再次操作[/]")
        return
    where = (f"密钥文件已移到 {report.moved_to}（不再加载；离线归档或在备份保存期满后销毁）" if report.moved_to
             else "该密钥来自 ZHIDA_ENCRYPTION_KEY：请从各进程的环境中删除它")  # fmt: skip
    console.print(f"[green]密钥 {key_id} 已停用：{len(report.checked)} 个加密字段中没有值再使用它；{where}。"
                  f"已写入审计记录；请重启各进程，使其不再持有该密钥[/]")  # fmt: skip


@app.command("status")
def status() -> None:
    """Key ids in the keyring (current first), the retired ones, and how many values each key encrypts."""
    from db import crypto
    from services import keys
    from settings import get_settings

    settings = get_settings()
    current, ring = crypto.keyring(settings.fernet_key())
    retired = settings.retired_fernet_keys()
    console.print(f"当前密钥 {current}；密钥目录中：{', '.join(ring)}" + (f"；已停用：{', '.join(sorted(retired))}"
                                                                  if retired else ""))  # fmt: skip
    for key_id, by_column in keys.usage(settings=settings).items():
        state = "当前" if key_id == current else ("已停用" if key_id in retired else "可停用" if not any(
            by_column.values()) else "待重新加密")  # fmt: skip
        console.print(f"  {key_id}（{state}）：{sum(by_column.values())} 个值")
        for column, n in by_column.items():
            if n:
                console.print(f"    {column}: {n}")
        if key_id in retired and any(by_column.values()):
            console.print(f"[red]    已停用的密钥 {key_id} 下仍有值（轮换后未重启的进程写入）：把 keys/fernet/retired/"
                          f"{key_id}.key 移回 keys/fernet/ 并从 retired.txt 删除它，再运行 zhida keys rotate[/]")  # fmt: skip
