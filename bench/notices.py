"""`zhida bench notices`: 100,000 notices through the outbox, by the path the system uses for bulk — the listing
push of the Yichang rules art. 26 (one INSERT … SELECT over the matched enterprises) — then dispatched through the
outbox provider by the real dispatcher (claims, phone and parameter checks, status updates) until none is left."""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path
from typing import Any

import typer

from bench.report import app, bench_database, console, database_facts, print_figures, write_report

GOAL_NOTICES_PER_S = 5_000
GOAL_RATIO = 15  # end to end within 15 × a bulk INSERT of the same notice rows
BENCH_ITEM = "BENCH-NOTICES-001"
BASELINE_N = 2_000  # notices queued one by one through notices.enqueue (the per-case path), for the ratio


def _prepare(url: str, n: int, seed: int, progress: bool) -> tuple[int, float]:
    """N generated enterprises with encrypted mobile numbers and a listed item all of them match."""
    from sqlalchemy import insert

    from cli.demo import DEMO_CONFIG, add_listed_item
    from cli.generate import generate_enterprises
    from db import crypto
    from db.models import Enterprise
    from db.repositories import fund_items
    from db.session import transaction
    from settings import Settings

    key = Settings(database_url=url).fernet_key()
    started = time.perf_counter()
    with transaction(url) as session:
        rows: list[dict[str, Any]] = []
        for i, row in enumerate(generate_enterprises(n, seed=seed)):
            phone = f"13{(seed * 7919 + i) % 10**9:09d}"
            row["contact_phone_enc"] = crypto.encrypt(key, phone)
            row["contact_phone_masked"] = crypto.mask_phone(phone)
            rows.append(row)
            if len(rows) >= 5000:
                session.execute(insert(Enterprise.__table__), rows)
                rows = []
        if rows:
            session.execute(insert(Enterprise.__table__), rows)
        fund_items.add_department(session=session, code="YC-JXJ", name="宜昌市经济和信息化局", region_code="420500")
        config = copy.deepcopy(DEMO_CONFIG)
        config["conditions"] = {"field": "region_code", "op": "prefix", "value": "42"}  # the whole (Hubei) archive
        item = add_listed_item(session=session, code=BENCH_ITEM, department_code="YC-JXJ", config=config)
        item_id = item.id
    return item_id, time.perf_counter() - started


def _clean(url: str) -> None:
    """Leave a given database as it was: empty of what the benchmark added."""
    from sqlalchemy import delete

    from db.models import (
        BudgetIndicator,
        BudgetLine,
        Department,
        Enterprise,
        FundItem,
        FundItemVersion,
        Notice,
        Policy,
        PolicyPush,
    )
    from db.session import transaction

    with transaction(url) as session:
        models = (Notice, PolicyPush, BudgetIndicator, BudgetLine, FundItemVersion, FundItem, Policy, Department)
        for model in (*models, Enterprise):
            session.execute(delete(model))


def _bulk_insert_same_rows(url: str) -> float:
    """Read the push's notice rows, delete them, and time writing them back by one executemany INSERT (with its
    commit): what the database alone needs for those rows, so the ratio says what the outbox adds to it."""
    from sqlalchemy import delete, insert, select

    from db import bulk
    from db.models import Notice
    from db.session import transaction
    from schemas.vocabulary import NoticeCategory

    table = Notice.__table__
    with transaction(url) as session:
        rows = [dict(row._mapping) for row in session.execute(select(table).where(table.c.category == NoticeCategory.PUSH))]
        session.execute(delete(table).where(table.c.id.in_([row["id"] for row in rows])))
    started = time.perf_counter()
    with transaction(url) as session:
        for chunk in bulk.chunks(rows):
            session.execute(insert(table), list(chunk))
    return time.perf_counter() - started


def run_notices(
    *, n: int, database_url: str = "", batch_size: int = 2_000, seed: int = 2026, progress: bool = True
) -> tuple[dict[str, Any], str]:
    """Queue N notices by the listing push and dispatch them through the outbox; returns (figures, database)."""
    from sqlalchemy import func, select

    from activities.notices import DispatchConfig, Dispatcher
    from db.migrate import upgrade
    from db.models import Enterprise, FundItem, Notice
    from db.repositories import notices as notices_repo
    from db.session import transaction
    from gateways.sms import OutboxProvider
    from rules import sms_templates
    from schemas.vocabulary import NoticeCategory, NoticeStatus
    from services.notices import push_on_listed
    from settings import Settings

    with bench_database(database_url) as (url, owned):
        upgrade(url)
        with transaction(url) as session:
            busy = session.scalar(select(func.count()).select_from(Enterprise)) or session.scalar(
                select(func.count()).select_from(FundItem)
            )
            if not owned and busy:
                raise typer.BadParameter(
                    "数据库中已有企业或资金事项；基准测试只在空库上运行 / the database must be empty",
                    param_hint="--database-url",
                )
        try:
            item_id, prepare_seconds = _prepare(url, n, seed, progress)
            database = database_facts(url)

            started = time.perf_counter()
            with transaction(url) as session:
                pushed = push_on_listed(session=session, fund_item_id=item_id, actor="bench")
            queue_seconds = time.perf_counter() - started

            dispatcher = Dispatcher(
                db_url=url,
                fernet_key=Settings(database_url=url).fernet_key(),
                provider=OutboxProvider(),
                config=DispatchConfig(batch_size=batch_size),
            )
            delivered = rounds = 0
            started = time.perf_counter()
            while (report := dispatcher.dispatch_due()).claimed:
                delivered += report.delivered
                rounds += 1
                if report.errors:
                    raise RuntimeError(f"dispatch failed: {report.errors}")
            dispatch_seconds = time.perf_counter() - started
            with transaction(url) as session:
                left = session.scalar(select(func.count()).select_from(Notice).where(Notice.status != NoticeStatus.DELIVERED))

            # Baseline: the per-case path, one notices.enqueue (dedupe lookup + INSERT) at a time.
            with transaction(url) as session:
                ids = list(session.scalars(select(Enterprise.id).order_by(Enterprise.id).limit(BASELINE_N)))
            started = time.perf_counter()
            with transaction(url) as session:
                for i in ids:
                    params = sms_templates.stage_params(enterprise="基准企业", item="基准事项", count=1)
                    notices_repo.enqueue(
                        session=session, dedupe_key=f"bench:{uuid.uuid4().hex}", enterprise_id=i, case_id=None,
                        template_key="policy_push_registered", params=params, content="基准", phone_enc=None,
                        phone_masked=None, fund_item_id=item_id, category=NoticeCategory.PUSH,
                    )  # fmt: skip
            baseline_seconds = time.perf_counter() - started

            # The ratio's baseline: the same notice rows (as they ended, delivered) written by one bulk INSERT.
            bulk_seconds = _bulk_insert_same_rows(url)
        finally:
            if not owned:
                _clean(url)
    total = queue_seconds + dispatch_seconds
    queue_rate = pushed.queued / queue_seconds if queue_seconds else 0.0
    baseline_rate = len(ids) / baseline_seconds if baseline_seconds else 0.0
    figures: dict[str, Any] = {
        "n": n,
        "queued": pushed.queued,
        "delivered": delivered,
        "not_delivered": int(left or 0),
        "queue_seconds": round(queue_seconds, 3),
        "queue_notices_per_s": round(queue_rate, 1),
        "dispatch_seconds": round(dispatch_seconds, 3),
        "dispatch_notices_per_s": round(delivered / dispatch_seconds, 1) if dispatch_seconds else 0.0,
        "notices_per_s": round(delivered / total, 1) if total else 0.0,
        "seconds": round(total, 3),
        "baseline_bulk_insert_seconds": round(bulk_seconds, 3),
        "ratio_to_baseline": round(total / bulk_seconds, 1) if bulk_seconds else 0.0,
        "dispatch_rounds": rounds,
        "batch_size": batch_size,
        "baseline_enqueue_one_by_one_notices_per_s": round(baseline_rate, 1),
        "ratio_queue_to_baseline": round(queue_rate / baseline_rate, 1) if baseline_rate else 0.0,
        "prepare_seconds": round(prepare_seconds, 2),
        "goal_notices_per_s": GOAL_NOTICES_PER_S,
        "within_goal": bool(total and delivered / total >= GOAL_NOTICES_PER_S and total / bulk_seconds <= GOAL_RATIO),
    }
    return figures, database


@app.command("notices")
def notices_command(
    n: int = typer.Option(100_000, "--n", min=1, help="enterprises to generate, one notice each"),
    database_url: str = typer.Option(
        "",
        help="database to run on (must hold no enterprises or fund items; what the benchmark adds is removed "
        "afterwards); default: a fresh SQLite file in a temporary directory",
    ),
    batch_size: int = typer.Option(2_000, min=1, help="notices per dispatcher round"),
    seed: int = typer.Option(2026, help="generator seed"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-notices.json and .md go"),
    progress: bool = typer.Option(True, help="show progress while generating"),
) -> None:
    """100,000 notices queued through the outbox (the listing push) and dispatched; goal > 5,000 notices/s."""
    figures, database = run_notices(
        n=n, database_url=database_url, batch_size=batch_size, seed=seed, progress=progress
    )
    print_figures(f"bench notices · {database}", figures)
    notes = (
        "Queueing: the listing push of the Yichang rules art. 26 (services.notices.push_on_listed), one "
        "INSERT … SELECT over the enterprises the listed item matches (compiled conditions; opt-out and missing "
        "phone excluded; dedupe key push:listed:{item}:{enterprise}, ON CONFLICT DO NOTHING), timed with its commit. "
        "Dispatching: the real Dispatcher with the outbox provider, rounds of batch_size notices (claim with the "
        "phone decrypted and validated and the template parameters checked, then the status update), until no "
        "notice is due. notices_per_s = delivered / (queue_seconds + dispatch_seconds) = delivered / seconds. "
        "ratio_to_baseline = seconds / baseline_bulk_insert_seconds, the latter the same notice rows (as delivered) "
        "deleted and written back by one executemany INSERT with its commit. Also: "
        f"{BASELINE_N} notices queued one at a time through notices.enqueue (the per-case-stage path). "
        "Enterprises: cli/generate.py, each with its own Fernet-encrypted mobile number (prepare_seconds, not timed)."
    )
    json_path, md_path = write_report("notices", figures, notes, database=database, reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")
