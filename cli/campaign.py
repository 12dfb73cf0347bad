"""`zhida campaign`: watch a no-application campaign with a live progress bar, or start one for a listed item."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from settings import get_settings

app = typer.Typer(help="免申即享批量兑付 (no-application campaigns)", no_args_is_help=True)
console = Console()


def _progress(db_url: str, code: str, campaign_id: int | None):
    from db.repositories import campaigns as repo
    from db.repositories import fund_items
    from db.session import transaction
    from services.campaign_progress import counted_progress

    with transaction(db_url) as session:
        item = fund_items.get_by_code(session=session, code=code)
        if item is None:
            raise typer.BadParameter(f"资金事项 {code} 不存在", param_hint="ITEM")
        found = repo.for_item(session=session, fund_item_id=item.id)
        if campaign_id is not None:
            found = [c for c in found if c.id == campaign_id]
        if not found:
            raise typer.BadParameter(f"资金事项 {code} 没有批量兑付", param_hint="ITEM")
        listing = [c for c in found if c.kind == "listing"] or found
        return counted_progress(session=session, campaign_id=listing[-1].id)


def _table(p) -> Table:
    from rules.money import format_yuan

    # One figure per row: a wide row of ten columns is cut to "50,0…" in a narrow terminal, and a figure the
    # operator cannot read is worse than a longer table.
    table = Table(title=f"{p.fund_item_code} {p.fund_item_name} · 第 {p.campaign_id} 号批量兑付 · {p.phase_label}")
    table.add_column("项目", no_wrap=True)
    table.add_column("数值", justify="right", no_wrap=True)
    for label, value in (
        ("匹配", str(p.matched)),
        ("预留", str(p.reserved)),
        ("预算不足", str(p.exhausted)),
        ("待确认", str(p.consent_pending)),
        ("待财政审核", str(p.awaiting_finance)),
        ("已发指令", str(p.instructed)),
        ("已拨付", str(p.paid)),
        ("失败", str(p.failed)),
        ("已拨付金额", format_yuan(p.paid_fen)),
        ("预算余额", format_yuan(p.budget_left_fen)),
    ):
        table.add_row(label, value)
    return table


@app.command("progress")
def progress_command(
    item: str = typer.Argument(..., help="资金事项编码"),
    campaign: int | None = typer.Option(None, help="批量兑付编号（默认：上架时的那一次）"),
    follow: bool = typer.Option(True, help="持续刷新直到完成"),
    every: float = typer.Option(1.0, help="刷新间隔（秒）"),
) -> None:
    """Live progress of a campaign: matched → reserved → instructed → paid, amount paid, budget left."""
    from rules.money import format_yuan

    db_url = get_settings().db_url
    p = _progress(db_url, item, campaign)
    if not follow or p.finished:
        console.print(_table(p))
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[amount]}"),
    ]
    with Progress(*columns, console=console) as bar:
        instructed = bar.add_task("已发指令", total=p.matched or None, amount="")
        paid = bar.add_task("已拨付", total=p.matched or None, amount="")
        while True:
            bar.update(instructed, total=p.matched or None, completed=p.instructed, amount=p.phase_label)
            bar.update(paid, total=p.matched or None, completed=p.paid, amount=format_yuan(p.paid_fen))
            if p.finished:
                break
            time.sleep(every)
            p = _progress(db_url, item, campaign)
    console.print(_table(p))


@app.command("start")
def start_command(item: str = typer.Argument(..., help="已上架的免申即享资金事项编码")) -> None:
    """Register and start the campaign of a listed no-application item (e.g. one listed before campaigns existed)."""
    import functools

    from db.repositories import campaigns as repo
    from db.repositories import fund_items
    from db.session import transaction
    from schemas.vocabulary import FundItemMode, FundItemStatus
    from services.campaigns import start_pending
    from workflows.client import connect

    settings = get_settings()
    with transaction(settings.db_url) as session:
        found = fund_items.get_by_code(session=session, code=item)
        if found is None or found.mode != FundItemMode.NO_APPLICATION or found.status != FundItemStatus.LISTED:
            raise typer.BadParameter(f"{item} 不是已上架的免申即享事项", param_hint="ITEM")
        campaign = repo.register_listing(session=session, item=found, version=found.listed_version or 1)
        wid = campaign.workflow_id

    async def _start() -> None:
        client = await connect(settings)
        await start_pending(
            client=client, settings=settings, unit_of_work=functools.partial(transaction, settings.db_url)
        )

    asyncio.run(_start())
    console.print(f"已启动批量兑付 {wid}；查看进度：zhida campaign progress {item}")


@app.command("import-tax")
def import_tax_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV：统一社会信用代码,纳税额（分）"),
    actor: str = typer.Option("import:tax", help="记入审计的操作人"),
) -> None:
    """Import tax data (uscc, tax_paid_fen); every changed enterprise is re-checked against open no-application
    items, and a newly eligible one gets its re-evaluation campaign (started by the API's starter)."""
    import csv

    from db.repositories import campaigns as repo
    from db.repositories import enterprises
    from db.session import transaction
    from schemas import uscc as uscc_rules

    settings = get_settings()
    changed = registered = 0
    problems: list[str] = []
    with path.open(encoding="utf-8-sig", newline="") as handle, transaction(settings.db_url) as session:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].strip().lower() in ("uscc", "统一社会信用代码"):
                continue
            try:
                code, fen = uscc_rules.validate(row[0].strip()), int(row[1])
                if fen < 0:
                    raise ValueError("纳税额不能为负")
            except (ValueError, IndexError) as exc:
                problems.append(f"第 {line} 行：{exc}")
                continue
            enterprise = enterprises.get_by_uscc(session=session, uscc=code)
            if enterprise is None:
                problems.append(f"第 {line} 行：企业 {code} 不在企业档案中")
                continue
            if enterprise.tax_paid_fen == fen:
                continue
            enterprise.tax_paid_fen = fen
            session.flush()
            changed += 1
            registered += len(repo.reevaluate_enterprise(session=session, enterprise_id=enterprise.id, actor=actor))
    for problem in problems:
        console.print(f"[yellow]{problem}[/]")
    console.print(f"已更新 {changed} 家企业的纳税数据，重新比对后新增 {registered} 个免申即享兑付")
