"""`zhida bench dry-run`: the dry run (政策预匹配) of a realistic fund item over N generated enterprises."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import typer

from bench.report import app, bench_database, console, database_facts, print_figures, write_report

# 宜昌市科技创新企业研发投入奖补（示例）：宜昌注册、非失信、有科技资质或研发投入占比 ≥ 3%、制造业/信息技术/科研。
DRY_RUN_CONDITIONS: dict[str, Any] = {
    "op": "all",
    "items": [
        {"field": "region_code", "op": "prefix", "value": "4205"},
        {"op": "not", "item": {"field": "credit_status", "op": "eq", "value": "dishonest"}},
        {"field": "size_class", "op": "in", "value": ["medium", "small", "micro"]},
        {"field": "employees", "op": "ge", "value": 10},
        {"field": "registered_on", "op": "le", "value": "2025-12-31"},
        {
            "op": "any",
            "items": [
                {"field": "industry_code", "op": "prefix", "value": "C"},
                {"field": "industry_code", "op": "prefix", "value": "I"},
                {"field": "industry_code", "op": "prefix", "value": "M"},
            ],
        },
        {
            "op": "any",
            "items": [
                {"field": "tags", "op": "has_any_tags", "value": ["高新技术企业", "科技型中小企业", "专精特新"]},
                {"field": "rd_ratio_bp", "op": "ge", "value": 300},
            ],
        },
    ],
}
# 定额 2 万元 + 纳税额的 10%（保底 1 万元）+ 营收阶梯（≥2000 万元 5 万元，≥1 亿元 20 万元），合计封顶 50 万元。
DRY_RUN_STANDARD: dict[str, Any] = {
    "kind": "sum",
    "cap_fen": 50_000_000,
    "parts": [
        {"kind": "fixed", "amount_fen": 2_000_000},
        {"kind": "rate", "base": "tax_paid_fen", "rate": "0.1", "floor_fen": 1_000_000},
        {
            "kind": "tiers",
            "base": "revenue_fen",
            "tiers": [
                {"at_least": 2_000_000_000, "amount_fen": 5_000_000, "label": "营收 2000 万元以上"},
                {"at_least": 10_000_000_000, "amount_fen": 20_000_000, "label": "营收 1 亿元以上"},
            ],
        },
    ],
}
DRY_RUN_BUDGET_FEN = 30_000_000_000  # 3 亿元
# The worst case for the same standard: nearly the whole archive matches, so the window sorts every row.
BROAD_CONDITIONS: dict[str, Any] = {"op": "not", "item": {"field": "credit_status", "op": "eq", "value": "dishonest"}}
DRY_RUN_GOAL_SECONDS = 2.0


def run_dry_run(
    *, n: int, database_url: str = "", repeats: int = 5, seed: int = 2026, progress: bool = True
) -> tuple[dict[str, Any], str]:
    """Generate N enterprises, then time the dry run `repeats` times; returns (figures, database facts)."""
    from sqlalchemy import delete, func, select

    from cli.generate import insert_enterprises
    from db.migrate import upgrade
    from db.models import Enterprise
    from db.repositories.matching import dry_run
    from db.session import transaction
    from services.workbench import dry_run_sample

    with bench_database(database_url) as (url, owned):
        upgrade(url)
        with transaction(url) as session:
            if not owned and session.scalar(select(func.count()).select_from(Enterprise)):
                raise typer.BadParameter(
                    "数据库中已有企业数据；基准测试只在空的企业表上运行 / the enterprise table must be empty",
                    param_hint="--database-url",
                )
        started = time.perf_counter()
        with transaction(url) as session:
            inserted = insert_enterprises(session=session, n=n, seed=seed, progress=progress, console=console)
        generate_seconds = time.perf_counter() - started
        try:

            def timed(conditions: dict[str, Any]) -> tuple[list[float], Any]:
                timings: list[float] = []
                result = None
                for _ in range(max(1, repeats)):
                    with transaction(url) as session:
                        began = time.perf_counter()
                        result = dry_run(
                            session=session,
                            conditions=conditions,
                            standard=DRY_RUN_STANDARD,
                            budget_total_fen=DRY_RUN_BUDGET_FEN,
                        )
                        timings.append(time.perf_counter() - began)
                return timings, result

            timings, result = timed(DRY_RUN_CONDITIONS)
            broad_timings, broad = timed(BROAD_CONDITIONS)

            def sampled(conditions: dict[str, Any]) -> tuple[list[float], Any]:
                """The page's sample of matched enterprises and near misses (services.workbench.dry_run_sample)."""
                timings: list[float] = []
                out = None
                for _ in range(max(1, repeats)):
                    with transaction(url) as session:
                        began = time.perf_counter()
                        out = dry_run_sample(session=session, conditions=conditions, region_code="420500")
                        timings.append(time.perf_counter() - began)
                return timings, out

            sample_timings, (matched_sample, near_sample, sampled_rows) = sampled(DRY_RUN_CONDITIONS)
            broad_sample_timings, _ = sampled(BROAD_CONDITIONS)
            database = database_facts(url)
        finally:
            if not owned:
                with transaction(url) as session:
                    session.execute(delete(Enterprise))
    seconds = statistics.median(timings)
    sample_seconds = statistics.median(sample_timings)
    with_sample = seconds + sample_seconds
    broad_with_sample = statistics.median(broad_timings) + statistics.median(broad_sample_timings)
    figures: dict[str, Any] = {
        "n": inserted,
        "seconds": round(seconds, 4),
        "seconds_first": round(timings[0], 4),
        "seconds_min": round(min(timings), 4),
        "seconds_max": round(max(timings), 4),
        "repeats": len(timings),
        "matched": result.matched,
        "total_amount_fen": result.total_amount_fen,
        "budget_total_fen": DRY_RUN_BUDGET_FEN,
        "covered": result.budget.covered,
        "regions": len(result.by_region),
        "industries": len(result.by_industry),
        "seconds_broad": round(statistics.median(broad_timings), 4),
        "matched_broad": broad.matched,
        "generate_insert_seconds": round(generate_seconds, 3),
        "insert_rows_per_s": round(inserted / generate_seconds, 1) if generate_seconds else 0.0,
        "sample_seconds": round(sample_seconds, 4),
        "sample_rows_read": sampled_rows,
        "sample_matched": len(matched_sample),
        "sample_near_misses": len(near_sample),
        "seconds_with_sample": round(with_sample, 4),
        "seconds_broad_with_sample": round(broad_with_sample, 4),
        "goal_seconds": DRY_RUN_GOAL_SECONDS,
        "within_goal": max(with_sample, broad_with_sample) < DRY_RUN_GOAL_SECONDS,
    }
    return figures, database


@app.command("dry-run")
def dry_run_command(
    n: int = typer.Option(100_000, "--n", min=1, help="enterprises to generate"),
    database_url: str = typer.Option(
        "",
        help="database to run on (its enterprise table must be empty; rows are removed afterwards); "
        "default: a fresh SQLite file in a temporary directory",
    ),
    repeats: int = typer.Option(5, min=1, help="timed runs; 'seconds' is their median"),
    seed: int = typer.Option(2026, help="generator seed"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-dry-run.json and .md go"),
    progress: bool = typer.Option(True, help="show a progress bar while generating"),
) -> None:
    """Dry run (政策预匹配) of a realistic fund item over N generated enterprises; goal < 2 s for 100,000."""
    figures, database = run_dry_run(n=n, database_url=database_url, repeats=repeats, seed=seed, progress=progress)
    print_figures(f"bench dry-run · {database}", figures)
    notes = (
        "One dry run = conditions compiled with compile_where + support standard compiled with amount_expr, "
        "one SQL statement (window running total in registration order, grouped by district × size class) "
        "plus a count of the archive. Condition: 宜昌 (4205), not dishonest, not large, ≥ 10 employees, "
        "registered by 2025-12-31, industry C/I/M, a science-and-technology tag or R&D ratio ≥ 3%. Standard: "
        "2 万元 + 10% of tax paid (floor 1 万元) + revenue tiers (2000 万元 → 5 万元, 1 亿元 → 20 万元), cap 50 万元. "
        f"Budget 3 亿元. 'seconds' is the median of {figures['repeats']} runs after generation; "
        "'seconds_broad' times the same standard with a condition nearly everyone meets (not dishonest), "
        "the worst case, where the running total sorts the whole archive; 'sample_seconds' times the page's sample "
        "of matched enterprises and near misses (services.workbench.dry_run_sample: the first 1,000 enterprises of "
        "the region, each near miss with its 不足之处), and 'seconds_with_sample' is what the dry run page costs; "
        "generated data: cli/generate.py (seeded, Hubei districts, GB/T 4754 industries)."
    )
    json_path, md_path = write_report("dry-run", figures, notes, database=database, reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")

