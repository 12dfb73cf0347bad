"""Smoke run of `zhida bench notices` with a small archive: it queues, dispatches, prints and writes both reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import app
from db.models import Enterprise, Notice
from db.session import engine_for, transaction
from tests.conftest import _drop_postgres_database, _fresh_postgres_database


@pytest.fixture
def bench_url(db_url: str) -> Iterator[str]:
    """'' (the benchmark's own temporary SQLite file) or an empty PostgreSQL database."""
    if db_url.startswith("sqlite"):
        yield ""
        return
    url, name = _fresh_postgres_database()
    yield url
    engine_for(url).dispose()
    _drop_postgres_database(name)


def test_bench_notices_smoke(tmp_path: Path, bench_url: str) -> None:
    args = ["bench", "notices", "--n", "1500", "--batch-size", "400", "--no-progress", "--reports-dir", str(tmp_path)]
    if bench_url:
        args += ["--database-url", bench_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "notices_per_s" in result.output

    report = json.loads((tmp_path / "bench-notices.json").read_text(encoding="utf-8"))
    assert report["benchmark"] == "notices"
    assert report["n"] == report["queued"] == report["delivered"] == 1500 and report["not_delivered"] == 0
    assert report["dispatch_rounds"] == 4  # 400 a round
    for key in ("notices_per_s", "queue_notices_per_s", "dispatch_notices_per_s"):
        assert isinstance(report[key], float) and report[key] > 0
    assert report["baseline_enqueue_one_by_one_notices_per_s"] > 0
    assert report["machine"]["database"].split()[0] == ("postgresql" if bench_url else "sqlite")
    markdown = (tmp_path / "bench-notices.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Benchmark: notices") and "| notices_per_s |" in markdown

    if bench_url:  # the given database is left empty, so the benchmark can run again
        with transaction(bench_url) as session:
            assert session.scalar(select(func.count()).select_from(Enterprise)) == 0
            assert session.scalar(select(func.count()).select_from(Notice)) == 0
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
