"""`zhida calendar …`: the working-day calendar's holiday data (节假日安排) from the command line.

zhida calendar seed                                  # the packaged chinesecalendar years (2004–2026)
zhida calendar import notice-2027.csv --year 2027 --source "国办发明电〔2026〕X号"
zhida calendar show 2027
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Working-day calendar: seed, import a year's State Council notice, show a year", no_args_is_help=True
)
console = Console()
WEEKDAYS_ZH = "一二三四五六日"


def _url(database_url: str) -> str:
    from db.migrate import upgrade
    from settings import get_settings

    url = database_url or get_settings().db_url
    upgrade(url)
    return url


def decode_notice(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GB 18030 as Excel saves CSV on Chinese Windows."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


DatabaseUrl = typer.Option("", "--database-url", help="database URL (default: the configured one)")


@app.command("seed")
def seed_command(database_url: str = DatabaseUrl) -> None:
    """Load the packaged chinesecalendar years not loaded yet (an administrator's import always wins)."""
    from db.repositories import calendar as repo
    from db.session import transaction

    url = _url(database_url)
    with transaction(url) as session:
        added = repo.seed_from_chinese_calendar(session=session)
        years = repo.loaded_years(session=session)
    span = f"{years[0]}–{years[-1]}" if years else "无"
    console.print(f"已载入节假日数据 {added} 天；已有年份：{span}（共 {len(years)} 年）/ {added} days added")


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="JSON or CSV (日期,类型,名称)"),
    year: int = typer.Option(..., "--year", min=1900, max=2200, help="the year the notice arranges"),
    source: str = typer.Option("", help="source, e.g. the notice's number 国办发明电〔2026〕X号"),
    database_url: str = DatabaseUrl,
) -> None:
    """Replace YEAR's holidays and make-up workdays with a transcription of the State Council notice."""
    from db.repositories import calendar as repo
    from db.session import transaction
    from rules.calendar import NoticeError, parse_holiday_notice
    from schemas.vocabulary import ActorKind
    from services.calendar import recompute_provisional

    try:
        text = decode_notice(file.read_bytes())
    except UnicodeDecodeError:
        console.print(f"[red]{file}：文件须为 UTF-8 或 GB18030 编码 / the file must be UTF-8 or GB 18030[/red]")
        raise typer.Exit(1) from None
    try:
        entries = parse_holiday_notice(text, year=year)
    except NoticeError as exc:
        console.print(f"[red]{file}：{year}年节假日安排导入失败，未作任何修改 / rejected, nothing changed:[/red]")
        for problem in exc.problems:
            console.print(f"  • {problem}", markup=False)
        raise typer.Exit(1) from None
    url = _url(database_url)
    label = source.strip() or f"导入自 {file.name}"
    with transaction(url) as session:
        repo.seed_from_chinese_calendar(session=session)
        stored = repo.load_year(session=session, year=year, days=entries, source=label[:200])
        moves = recompute_provisional(session=session, year=year, source=label[:200], actor=ActorKind.ADMIN.value)
    holidays = sum(1 for e in entries if not e.is_workday)
    console.print(
        f"{year}年节假日安排已导入：{stored} 天（放假 {holidays} 天，调休上班 {stored - holidays} 天），来源：{label}"
    )
    if moves:
        console.print(f"已重新计算 {len(moves)} 个在办环节的临时办理期限", markup=False)
        _signal(moves, url)


def _signal(moves, url: str) -> None:
    """Tell the waiting workflows (the import is committed), and re-send earlier moves a workflow missed; without
    Temporal the tasks still carry the new dates (`zhida calendar repair-deadlines` tells the workflows later)."""
    import asyncio

    from services.calendar import after_import
    from settings import get_settings
    from workflows.client import connect

    async def run() -> int:
        settings = get_settings()
        client = await connect(settings)
        return len(moves) + len(await after_import(client=client, db_url=url, moves=moves))

    try:
        told = asyncio.run(run())
    except Exception as exc:  # Temporal down: say so, the recompute itself is stored
        console.print(f"办理期限已更新，但未能通知工作流（{exc}）：其计时仍按原期限", markup=False)
        return
    console.print(f"已通知 {told} 个办件工作流调整计时", markup=False)


@app.command("repair-deadlines")
def repair_command(database_url: str = DatabaseUrl) -> None:
    """Re-send recomputed deadlines that a waiting workflow missed (its timer still at the old date)."""
    import asyncio

    from db.session import reading
    from services.calendar import recorded_moves, repair_moves
    from settings import get_settings
    from workflows.client import connect

    with reading(_url(database_url)) as session:
        moves = recorded_moves(session=session)

    async def run() -> int:
        settings = get_settings()
        client = await connect(settings)
        return len(await repair_moves(client=client, moves=moves))

    console.print(f"已核对 {len(moves)} 个调整过的期限，重新通知 {asyncio.run(run())} 个工作流", markup=False)


@app.command("show")
def show_command(year: int = typer.Argument(..., min=1900, max=2200), database_url: str = DatabaseUrl) -> None:
    """Print YEAR's holidays (休) and make-up workdays (班); exit code 1 when the year is not loaded."""
    from db.repositories import calendar as repo
    from db.session import transaction

    url = _url(database_url)
    with transaction(url) as session:
        repo.seed_from_chinese_calendar(session=session)
        loaded = repo.year(session=session, year=year)
        source = loaded.source if loaded else ""
        cal = repo.load_calendar(session=session)
        years = repo.loaded_years(session=session)
    if not loaded:
        span = f"{years[0]}–{years[-1]}" if years else "无"
        console.print(
            f"[yellow]{year} 年的节假日安排尚未导入：该年的期限仅按周末计算，标记为临时（provisional）。"
            f"已导入年份：{span}。[/yellow]"
        )
        raise typer.Exit(1)
    table = Table(title=f"{year}年节假日安排 · 来源：{source}")
    for column in ("日期", "星期", "休/班", "名称"):
        table.add_column(column)
    for entry in cal.entries():
        if entry.day.year == year:
            kind = "[blue]班[/blue]" if entry.is_workday else "[green]休[/green]"
            table.add_row(entry.day.isoformat(), f"星期{WEEKDAYS_ZH[entry.day.weekday()]}", kind, entry.name)
    console.print(table)
