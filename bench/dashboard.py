"""`zhida bench dashboard`: the finance cockpit's queries and one export over generated cases (default 1,000,000
cases over 1,000 fund items), on a fresh SQLite file or the database given."""

from __future__ import annotations

import math
import random
import statistics
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer

from bench.report import app, bench_database, console, database_facts, print_figures, write_report

GOAL_P95_MS = 300.0
GOAL_EXPORT_SECONDS = 10.0
# Share of each case status in the generated cases (percent).
STATUS_WEIGHTS = [60, 10, 10, 5, 15]  # paid, reviewing, finance review, awaiting correction, rejected
REGIONS = ["420502", "420503", "420504", "420505", "420506", "420581", "420582", "420583"]


P = 2_147_483_647  # 2^31 - 1: the pseudo-random mix below stays within 64-bit integers on both engines


def _mix(i: str, salt: int) -> str:
    """A pseudo-random integer in [0, P) for row number `i` (SQL), the same on SQLite and PostgreSQL: an affine step
    then two squarings modulo P, so the fields drawn with different salts are not linear in each other."""
    x = f"((({i}) + 1) * 2654435761 + {salt * 40503}) % {P}"
    x = f"(({x}) * ({x}) + {salt}) % {P}"
    return f"(({x}) * ({x})) % {P}"


def _generate(url: str, *, cases: int, items: int, seed: int) -> dict[str, int]:
    """Departments, policies, fund items with one budget line each and enterprises (a few thousand rows, from
    Python), then the cases, their payment instructions and overdue stages set-based: one INSERT … SELECT each over a
    generated series, the fields drawn by a deterministic mix of the row number and the seed."""
    from sqlalchemy import text

    from db import bulk
    from db.models import BudgetLine, Department, Enterprise, FundItem, Policy
    from db.session import transaction
    from schemas import uscc as uscc_rules
    from schemas.vocabulary import (
        CaseStatus,
        DepartmentKind,
        FundItemMode,
        FundItemStatus,
        PaymentStatus,
        PolicyLevel,
        TaskStatus,
    )

    rng = random.Random(seed)
    enterprises = max(1, math.ceil(cases / items))
    with transaction(url) as s:
        pg = bulk.is_postgres(s)
        bulk.insert_rows(s, Department.__table__, [{"id": 1, "code": "BENCH-CZ", "name": "宜昌市财政局",
                                                    "region_code": "420500", "kind": DepartmentKind.FINANCE}])  # fmt: skip
        bulk.insert_rows(s, Department.__table__, [
            {"id": 2 + d, "code": f"BENCH-D{d:02d}", "name": f"宜昌市第{d + 1}政策部门", "region_code": "420500",
             "kind": DepartmentKind.POLICY} for d in range(20)])  # fmt: skip
        bulk.insert_rows(s, Policy.__table__, [
            {"id": 1 + i, "doc_number": f"宜政发〔2026〕{i + 1}号", "title": f"政策{i + 1}", "level": PolicyLevel.CITY,
             "department_id": 2 + i % 20} for i in range(items)])  # fmt: skip
        bulk.insert_rows(s, FundItem.__table__, [
            {"id": 1 + i, "code": f"BENCH-{i:04d}", "policy_id": 1 + i, "department_id": 2 + i % 20,
             "name": f"资金事项{i + 1:04d}", "mode": FundItemMode.INSTANT, "status": FundItemStatus.CLOSED, "current_version": 1,
             "listed_version": 1} for i in range(items)])  # fmt: skip
        bulk.insert_rows(s, Enterprise.__table__, [
            {"id": 1 + e, "uscc": uscc_rules.generate(rng, REGIONS[e % len(REGIONS)]), "name": f"基准企业{e + 1}",
             "region_code": REGIONS[e % len(REGIONS)], "tags": [], "industry_code": "C",
             "size_class": "small", "credit_status": "good"} for e in range(enterprises)])  # fmt: skip
    # Cumulative status thresholds over 0..99 (STATUS_WEIGHTS).
    kinds = [CaseStatus.PAID, CaseStatus.REVIEWING, CaseStatus.FINANCE_REVIEW, CaseStatus.AWAITING_CORRECTION,
             CaseStatus.REJECTED]  # fmt: skip
    bounds, total = [], 0
    for weight in STATUS_WEIGHTS:
        total += weight
        bounds.append(total)
    def status(i: str) -> str:
        draw = f"({_mix(i, seed)} % {total})"
        return "CASE " + " ".join(f"WHEN {draw} < {b} THEN '{k.value}'" for b, k in zip(bounds, kinds, strict=True)) + " END"

    def amount(i: str) -> str:  # 1,000.00 to 199,999.00 yuan in whole yuan
        return f"(100000 + ({_mix(i, seed + 1)} % 199000) * 100)"

    def minutes(i: str) -> str:  # began: within 280 days of 2026-01-05
        return f"({_mix(i, seed + 2)} % {60 * 24 * 280})"

    def paid_minutes(i: str) -> str:  # paid: 0-29 days and 0-7 hours later
        return f"({minutes(i)} + ({_mix(i, seed + 3)} % 30) * 1440 + ({_mix(i, seed + 4)} % 8) * 60)"

    def moment(mins: str) -> str:  # 2026-01-05 01:00 UTC plus `mins` minutes, as each engine stores a DateTime
        if pg:
            return f"(TIMESTAMPTZ '2026-01-05 01:00:00+00' + ({mins}) * INTERVAL '1 minute')"
        return f"(strftime('%Y-%m-%d %H:%M:%S', '2026-01-05 01:00:00', '+' || ({mins}) || ' minutes') || '.000000')"

    def series(n: int) -> str:
        if pg:
            return f"FROM generate_series(0, {n - 1}) AS seq(n) CROSS JOIN LATERAL (SELECT seq.n::bigint AS i) AS g"
        return f"FROM (WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1}) SELECT i FROM seq)"

    paid, returned = CaseStatus.PAID.value, CaseStatus.AWAITING_CORRECTION.value
    false = "false" if pg else "0"
    with transaction(url) as s:
        s.execute(text(
            'INSERT INTO "case" (id, fund_item_id, fund_item_version, enterprise_id, mode, status, amount_fen, paid_fen, '
            "workflow_id, created_at, updated_at, closed_at) "
            f"SELECT i + 1, 1 + i % {items}, 1, 1 + i / {items}, '{FundItemMode.INSTANT.value}', st, amt, "
            f"CASE WHEN st = '{paid}' THEN amt ELSE 0 END, 'bench:' || i, {moment('m')}, {moment('m')}, "
            f"CASE WHEN st = '{paid}' THEN {moment('pm')} END "
            f"FROM (SELECT i, {status('i')} AS st, {amount('i')} AS amt, {minutes('i')} AS m, {paid_minutes('i')} AS pm "
            f"{series(cases)}) AS g2"
        ))  # fmt: skip
        voucher = "'B' || lpad((c.id - 1)::text, 12, '0') || 'A01'" if pg else "'B' || printf('%012d', c.id - 1) || 'A01'"
        s.execute(text(
            "INSERT INTO payment_instruction (voucher_no, case_id, attempt, adm_div_code, st_year, pay_acct_no, "
            "payee_acct_no_enc, payee_acct_no_masked, payee_acct_name, payee_acct_bank_name, payee_acct_bank_no, "
            "pay_amt_fen, pay_summary_code, fund_source, status, paid_amt_fen, created_at, settled_at) "
            f"SELECT {voucher}, c.id, 1, '420500', 2026, 'P', 'x', '6222****', '企业', '银行', '102', c.amount_fen, "
            f"'30299', '市级财政', CASE WHEN c.status = '{paid}' THEN '{PaymentStatus.PAID.value}' "
            f"ELSE '{PaymentStatus.RETURNED.value}' END, c.amount_fen, c.created_at, "
            f"CASE WHEN c.status = '{paid}' THEN c.closed_at ELSE "
            f"{moment(paid_minutes('(c.id - 1)'))} END "
            f"FROM \"case\" c WHERE c.status IN ('{paid}', '{returned}') ORDER BY c.id"
        ))  # fmt: skip
        department = "'BENCH-D' || lpad(((c.fund_item_id - 1) % 20)::text, 2, '0')" if pg else \
            "'BENCH-D' || printf('%02d', (c.fund_item_id - 1) % 20)"  # fmt: skip
        due = "c.created_at + INTERVAL '5 days'" if pg else \
            "(strftime('%Y-%m-%d %H:%M:%S', c.created_at, '+5 days') || '.000000')"  # fmt: skip
        s.execute(text(
            "INSERT INTO case_task (case_id, stage_key, stage_name, round, department_code, status, due_at, provisional, "
            f"created_at) SELECT c.id, 'review', '部门审核', 1, {department}, '{TaskStatus.OPEN.value}', {due}, {false}, "
            f"c.created_at FROM \"case\" c WHERE c.status = '{CaseStatus.REVIEWING.value}' ORDER BY c.id"
        ))  # fmt: skip
        committed = dict(s.execute(text(
            f"SELECT fund_item_id, sum(amount_fen) FROM \"case\" WHERE status IN ('{paid}', '{returned}') "
            "GROUP BY fund_item_id")).all())  # fmt: skip
        items_paid = s.scalar(text(f"SELECT count(DISTINCT fund_item_id) FROM \"case\" WHERE status = '{paid}'"))
        bulk.insert_rows(s, BudgetLine.__table__, [
            {"fund_item_id": 1 + i, "source": "市级财政", "budget_year": 2026, "total_fen": 10**12,
             "reserved_fen": 0, "committed_fen": int(committed.get(1 + i, 0))} for i in range(items)])  # fmt: skip
    return {"enterprises": enterprises, "items_paid": int(items_paid or 0)}


@contextmanager
def _triggers_off(url: str):
    """Drop the cockpit's summary triggers for a bulk load, put them back, and recount the summaries from the rows."""
    from sqlalchemy import text

    from db.session import transaction
    from services import cockpit

    with transaction(url) as s:
        if s.get_bind().dialect.name == "sqlite":
            saved = list(s.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                        "AND name LIKE 'cockpit_%'")))  # fmt: skip
            for name, _ in saved:
                s.execute(text(f"DROP TRIGGER {name}"))
            restore = [sql for _, sql in saved]
        else:
            found = list(s.execute(text("SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                                        "WHERE t.tgname LIKE 'cockpit_%' AND c.relname <> 'cockpit_delta_mark'")))  # fmt: skip
            for name, table in found:
                s.execute(text(f'ALTER TABLE "{table}" DISABLE TRIGGER {name}'))
            restore = [f'ALTER TABLE "{table}" ENABLE TRIGGER {name}' for name, table in found]
    yield
    with transaction(url) as s:
        for sql in restore:
            s.execute(text(sql))
        s.execute(text("ANALYZE"))  # after a bulk load, as a DBA would: the planner's row counts
        cockpit.rebuild_summaries(session=s)


def _summaries(url: str, *, usable: bool) -> None:
    """Switch the cockpit's summaries off (the offset they record no longer matches) or back on, for the baseline."""
    from sqlalchemy import text

    from db.repositories.cockpit_summaries import OFFSET_HOURS
    from db.session import transaction

    with transaction(url) as s:
        s.execute(text("UPDATE cockpit_summary_state SET offset_hours = :o"), {"o": OFFSET_HOURS if usable else -99})


def _openpyxl_write_only(table: Any) -> bytes:
    """The export as it was written before: openpyxl's write-only workbook, one styled cell per amount (baseline)."""
    import io

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(table.title)
    sheet.append([h for h, _ in table.columns])
    for row in table.rows:
        cells: list[Any] = []
        for (_, kind), value in zip(table.columns, row, strict=True):
            if kind == "yuan" and value is not None:
                cell = WriteOnlyCell(sheet, value=value / 100)
                cell.number_format = "#,##0.00"
                cells.append(cell)
            elif isinstance(value, datetime):
                cells.append(value.isoformat())
            else:
                cells.append(value)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _has_tables(url: str) -> bool:
    from sqlalchemy import inspect

    from db.session import engine_for

    return bool(inspect(engine_for(url)).get_table_names())


def _load() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return -1.0


def run_dashboard(*, cases: int, items: int, database_url: str = "", repeats: int = 3, export_rows: int = 100_000,
                  seed: int = 2026, baseline_repeats: int = 1,
                  baseline_export_rows: int = 20_000) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Generate the cases, then time every cockpit query `repeats` times and one export of `export_rows` cases."""
    from db.migrate import upgrade
    from db.session import transaction
    from schemas.principal import Principal
    from schemas.vocabulary import Role
    from services import cockpit, cockpit_export
    from services import scope as scopes

    with bench_database(database_url) as (url, owned):
        if not owned and _has_tables(url):
            raise typer.BadParameter("基准测试只在空数据库上运行（它会写入一百万条办件）", param_hint="--database-url")
        upgrade(url)
        began = time.perf_counter()
        with _triggers_off(url):  # a bulk load: the summaries are recounted once after it
            _generate(url, cases=cases, items=items, seed=seed)
        generate_seconds = time.perf_counter() - began
        load_start = _load()
        with transaction(url) as s:
            scope = scopes.resolve(session=s, principal=Principal(role=Role.FINANCE, subject="BENCH-CZ"))
        empty = cockpit.make_filter()
        by_department = cockpit.make_filter(department_id=3)
        queries = {
            **{f"breakdown_{by}": (lambda s, by=by: cockpit.breakdown(session=s, scope=scope, filters=empty, by=by))
               for by in cockpit.GROUPS},
            "budget": lambda s: cockpit.budget(session=s, scope=scope, filters=empty),
            "months": lambda s: cockpit.months(session=s, scope=scope, filters=empty),
            "timeliness": lambda s: cockpit.timeliness(session=s, scope=scope, filters=empty),
            "overdue": lambda s: cockpit.overdue(session=s, scope=scope, filters=empty),
            "returns": lambda s: cockpit.returns(session=s, scope=scope, filters=empty),
            "cases_page": lambda s: cockpit.cases(session=s, scope=scope, filters=empty),
            "cases_page_department": lambda s: cockpit.cases(session=s, scope=scope, filters=by_department),
        }  # fmt: skip
        def timed(runs: int) -> dict[str, list[float]]:
            timings: dict[str, list[float]] = {name: [] for name in queries}
            for _ in range(max(1, runs)):
                for name, query in queries.items():
                    with transaction(url) as s:
                        t0, c0 = time.perf_counter(), time.process_time()
                        query(s)
                        timings[name].append((time.perf_counter() - t0) * 1000)
                        cpu_ms.setdefault(name, []).append((time.process_time() - c0) * 1000)
            return timings

        cpu_ms: dict[str, list[float]] = {}  # this process's CPU (SQLite's work included; a PostgreSQL server's not)

        with transaction(url) as s:  # the first read recounts the working-days histogram (calendar seeded)
            cockpit.timeliness(session=s, scope=scope, filters=empty)
        # Baseline in the same invocation: the same queries counted from the cases (the summaries switched off the way
        # a changed local offset switches them off), then read from the summaries.
        _summaries(url, usable=False)
        baseline = timed(baseline_repeats)
        _summaries(url, usable=True)
        cpu_ms.clear()
        timings = timed(repeats)
        with transaction(url) as s:
            t0 = time.perf_counter()
            table = cockpit_export.Table("cases", "办件清单", cockpit_export.CASE_COLUMNS,
                                         [cockpit_export.case_cells(r) for r in
                                          cockpit.all_cases(session=s, scope=scope, filters=empty,
                                                            limit=baseline_export_rows)])  # fmt: skip
            _openpyxl_write_only(table)
            baseline_export_seconds = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        _, _, chunks = cockpit_export.stream_cases(db_url=url, scope=scope, fmt="xlsx", filters=empty,
                                                   limit=export_rows)  # fmt: skip
        size = sum(len(chunk) for chunk in chunks)
        export_seconds, export_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        _, _, chunks = cockpit_export.stream_cases(db_url=url, scope=scope, fmt="csv", filters=empty,
                                                   limit=export_rows)  # fmt: skip
        csv_size = sum(len(chunk) for chunk in chunks)
        csv_seconds, csv_cpu = time.perf_counter() - t0, time.process_time() - c0
        database = database_facts(url)
    every = sorted(ms for values in timings.values() for ms in values)
    p95 = every[max(0, math.ceil(0.95 * len(every)) - 1)]
    cpu = sorted(ms for values in cpu_ms.values() for ms in values)
    cpu_p95 = cpu[max(0, math.ceil(0.95 * len(cpu)) - 1)]
    before = sorted(ms for values in baseline.values() for ms in values)
    baseline_p95 = before[max(0, math.ceil(0.95 * len(before)) - 1)]
    figures: dict[str, Any] = {
        "cases": cases,
        "items": items,
        "p95_ms": round(p95, 1),
        "p50_ms": round(statistics.median(every), 1),
        **{f"{name}_ms": round(statistics.median(values), 1) for name, values in timings.items()},
        "p95_cpu_ms": round(cpu_p95, 1),
        **{f"{name}_cpu_ms": round(statistics.median(values), 1) for name, values in cpu_ms.items()},
        "baseline_p95_ms": round(baseline_p95, 1),
        **{f"baseline_{name}_ms": round(statistics.median(values), 1) for name, values in baseline.items()},
        "ratio_to_baseline": round(p95 / baseline_p95, 3) if baseline_p95 else None,
        "export_rows": export_rows,
        "export_bytes": size,
        "export_seconds": round(export_seconds, 2),
        "export_csv_bytes": csv_size,
        "export_csv_seconds": round(csv_seconds, 2),
        "export_cpu_seconds": round(export_cpu, 2),
        "export_csv_cpu_seconds": round(csv_cpu, 2),
        "baseline_export_rows": baseline_export_rows,
        "baseline_export_openpyxl_seconds": round(baseline_export_seconds, 2),
        "load_average_1m_end": _load(),
        "generate_seconds": round(generate_seconds, 1),
        "load_average_1m_start": load_start,
        "goal_p95_ms": GOAL_P95_MS,
        "goal_export_seconds": GOAL_EXPORT_SECONDS,
        "within_goal": p95 < GOAL_P95_MS and export_seconds < GOAL_EXPORT_SECONDS,
    }
    return figures, database


@app.command("dashboard")
def dashboard_command(
    cases: int = typer.Option(1_000_000, "--cases", min=1, help="cases to generate"),
    items: int = typer.Option(1_000, "--items", min=1, help="fund items the cases spread over"),
    repeats: int = typer.Option(3, "--repeats", min=1, help="timed runs of each query"),
    export_rows: int = typer.Option(100_000, "--export-rows", min=1, help="cases in the timed export"),
    baseline_repeats: int = typer.Option(1, "--baseline-repeats", min=1, help="runs of each query without summaries"),
    baseline_export_rows: int = typer.Option(20_000, "--baseline-export-rows", min=1,
                                             help="cases in the openpyxl write-only export (baseline)"),
    database_url: str = typer.Option("", "--database-url",
                                     help="an empty database to run on (e.g. PostgreSQL); default: a fresh SQLite file"),
) -> None:
    """Finance cockpit queries (p95 over every query and run) and one xlsx export of the drill-down list; the same
    queries counted from the cases and the former openpyxl export as the baseline, in the same invocation."""
    figures, database = run_dashboard(cases=cases, items=items, repeats=repeats, export_rows=export_rows,
                                      baseline_repeats=baseline_repeats, database_url=database_url,
                                      baseline_export_rows=baseline_export_rows)  # fmt: skip
    print_figures("财政看板 dashboard", figures)
    notes = (
        f"{cases:,} generated cases over {items:,} fund items in one region, seen by its finance bureau; p95_ms over "
        f"every cockpit query × {repeats} runs read from the summaries; baseline_*: the same queries counted from the cases "
        f"(× {baseline_repeats}); export_seconds: the streamed xlsx of {export_rows:,} cases (query included); "
        f"baseline_export_openpyxl_seconds: openpyxl write-only of {baseline_export_rows:,} cases; *_cpu_*: this "
        "process's CPU time (SQLite's work included, a PostgreSQL server's not), steadier than wall time on a shared "
        "machine; load average of the shared machine at start and end."
    )
    for path in write_report("dashboard", figures, notes, database=database):
        console.print(f"写入 {path}")
