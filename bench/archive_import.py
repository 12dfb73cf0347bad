"""`zhida bench archive-import`: importing a tax file of N rows into an archive of N enterprises (goal: 100,000 rows
in under 10 s), plus the same file with one bad last row (stores nothing) and the same file again (no-op)."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

import typer

from bench.report import app, bench_database, console, database_facts, print_figures, write_report

GOAL_SECONDS = 10.0


def _file(usccs: list[str], bad_last: bool = False) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["统一社会信用代码", "营业收入（元）", "纳税额（元）", "数据日期"])
    for i, code in enumerate(usccs):
        writer.writerow([code, f"{1_000_000 + i * 13}.{i % 100:02d}", f"{20_000 + i % 5000}.5", "2026-06-30"])
    if bad_last:
        writer.writerow([usccs[-1][:-1] + ("0" if usccs[-1][-1] != "0" else "1"), "1", "1", "2026-06-30"])
    return buf.getvalue().encode("utf-8")


def _baseline(url: str, *, n: int, import_id: int) -> float:
    """The database writes of the import alone, rolled back: one executemany UPDATE of the two tax columns of n
    enterprise rows and one executemany INSERT of their 2n history rows, in one transaction, from values ready in
    memory (no file, no validation, no diff). The import's seconds over this is its ratio_to_baseline."""
    from datetime import UTC, datetime

    from db.session import engine_for

    moment = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    engine = engine_for(url)
    pg = engine.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    with engine.connect() as connection:
        ids = [r[0] for r in connection.exec_driver_sql('SELECT "id" FROM "enterprise" ORDER BY "id"')][:n]
        updates = [(2_000_000 + i, 30_000 + i, moment, e) for i, e in enumerate(ids)]
        values = [(e, f, str(v), "tax", "2026-06-30", import_id, None, moment)
                  for i, e in enumerate(ids) for f, v in (("revenue_fen", 2_000_000 + i), ("tax_paid_fen", 30_000 + i))]  # fmt: skip
        cast = "::jsonb" if pg else ""
        connection.rollback()  # end the read's implicit transaction: the timed one begins below
        started = time.perf_counter()
        transaction = connection.begin()
        connection.exec_driver_sql(
            f'UPDATE "enterprise" SET "revenue_fen" = {mark}, "tax_paid_fen" = {mark}, "updated_at" = {mark} '
            f'WHERE "id" = {mark}',
            updates,
        )
        connection.exec_driver_sql(
            'INSERT INTO "archive_value" (enterprise_id, field, value, source, source_date, import_id, '
            f"archive_change_id, recorded_at) VALUES ({mark}, {mark}, {mark}{cast}, {mark}, {mark}, {mark}, {mark}, {mark})",
            values,
        )
        elapsed = time.perf_counter() - started
        transaction.rollback()
    return elapsed


def run_archive_import(*, n: int, database_url: str = "", seed: int = 2026) -> tuple[dict[str, Any], str]:
    from sqlalchemy import delete, select

    from cli.generate import insert_enterprises
    from db.migrate import upgrade
    from db.models import Alert, ArchiveImport, ArchiveValue, Enterprise
    from db.session import transaction
    from schemas.principal import Principal
    from schemas.vocabulary import ImportStatus
    from services import archive
    from services.scope import Scope

    scope = Scope(principal=Principal(role="admin", subject="bench"))
    with bench_database(database_url) as (url, owned):
        upgrade(url)
        with transaction(url) as session:
            if not owned and session.scalar(select(Enterprise.id).limit(1)):
                raise typer.BadParameter(
                    "企业表须为空 / the enterprise table must be empty", param_hint="--database-url"
                )
            inserted = insert_enterprises(session=session, n=n, seed=seed, progress=True, console=console)
            usccs = list(session.scalars(select(Enterprise.uscc).order_by(Enterprise.id)))
        good, bad = _file(usccs), _file(usccs, bad_last=True)
        stages: dict[str, float] = {}
        began = time.perf_counter()

        def progress(stage: str, done: int, total: int) -> None:
            if done >= total:
                stages[stage] = time.perf_counter() - began

        try:
            started = time.perf_counter()
            with transaction(url) as session:
                failed = archive.import_file(
                    session=session, scope=scope, source_name="tax", file_name="bad.csv", data=bad
                )
            failed_seconds = time.perf_counter() - started
            began = started = time.perf_counter()
            cpu = time.process_time()
            with transaction(url) as session:
                result = archive.import_file(
                    session=session, scope=scope, source_name="tax", file_name="tax.csv", data=good, progress=progress
                )
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu
            started = time.perf_counter()
            with transaction(url) as session:
                again = archive.import_file(
                    session=session, scope=scope, source_name="tax", file_name="tax.csv", data=good
                )
            duplicate_seconds = time.perf_counter() - started
            baseline_seconds = _baseline(url, n=len(usccs), import_id=result.id)
            database = database_facts(url)
        finally:
            if not owned:
                with transaction(url) as session:
                    for model in (ArchiveValue, Alert, ArchiveImport, Enterprise):
                        session.execute(delete(model))
    assert failed.status == ImportStatus.FAILED and failed.error_count == 1
    assert result.status == ImportStatus.SUCCEEDED and again.duplicate
    figures: dict[str, Any] = {
        "rows": result.rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(result.rows / seconds, 1),
        "cpu_seconds": round(cpu_seconds, 3),
        "validate_seconds": round(stages.get("校验", 0.0), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "changed_values": result.changed_values,
        "failed_import_seconds": round(failed_seconds, 3),
        "failed_errors": failed.error_count,
        "duplicate_import_seconds": round(duplicate_seconds, 3),
        "baseline_bulk_write_seconds": round(baseline_seconds, 3),
        "ratio_to_baseline": round(seconds / baseline_seconds, 2) if baseline_seconds else None,
        "enterprises": inserted,
        "file_bytes": len(good),
        "goal_seconds": GOAL_SECONDS,
        "within_goal": seconds < GOAL_SECONDS,
    }
    return figures, database


@app.command("archive-import")
def archive_import_command(
    n: int = typer.Option(100_000, "--n", min=1, help="rows in the file (and enterprises in the archive)"),
    database_url: str = typer.Option("", help="database to run on (its enterprise table must be empty)"),
    seed: int = typer.Option(2026, help="generator seed"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-archive-import.json and .md go"),
) -> None:
    """Import a tax file (税务年度纳税) of N rows, every row changing two values; goal < 10 s for 100,000."""
    figures, database = run_archive_import(n=n, database_url=database_url, seed=seed)
    print_figures(f"bench archive-import · {database}", figures)
    notes = (
        "One import = read the CSV, validate every row (USCC checksum, yuan → fen, date), look up the enterprises "
        "(chunked IN), diff against the stored values, one executemany UPDATE of the enterprise rows, the history "
        "rows (archive_value) by executemany INSERT, then re-matching of listed items that use the changed fields, "
        "all in one transaction. 'seconds' (wall clock, commit included) is that import with every row changing revenue and tax paid; "
        "'baseline_bulk_write_seconds' is the database writes alone (the same UPDATE and history INSERT from ready values, one transaction, rolled back) and 'ratio_to_baseline' the import over it; "
        "'failed_import_seconds' the same file with one bad last row (validated whole, nothing stored); "
        "'duplicate_import_seconds' the good file again (found by its content hash, nothing stored). 'cpu_seconds' is this process's CPU time for the import and "
        "'load_average_1min' the machine's load when it ended: on a shared machine the wall clock includes waiting."
    )
    json_path, md_path = write_report("archive-import", figures, notes, database=database, reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")
