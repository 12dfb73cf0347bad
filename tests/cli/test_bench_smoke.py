"""Smoke run of `zhida bench dry-run` with a small archive: it runs, prints, and writes both reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.report import write_report
from cli.main import app
from db.session import engine_for
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


def test_bench_dry_run_smoke(tmp_path: Path, bench_url: str) -> None:
    args = ["bench", "dry-run", "--n", "2000", "--repeats", "2", "--no-progress", "--reports-dir", str(tmp_path)]
    if bench_url:
        args += ["--database-url", bench_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "matched" in result.output

    report = json.loads((tmp_path / "bench-dry-run.json").read_text(encoding="utf-8"))
    assert {"benchmark", "n", "seconds", "matched", "machine", "notes", "recorded_at"} <= set(report)
    assert report["benchmark"] == "dry-run"
    assert report["n"] == 2000
    assert isinstance(report["seconds"], float) and 0 < report["seconds"] < 10
    assert isinstance(report["matched"], int) and 0 < report["matched"] < 2000
    assert {"cores", "python", "database"} <= set(report["machine"])
    assert report["machine"]["database"].split()[0] == ("postgresql" if bench_url else "sqlite")
    markdown = (tmp_path / "bench-dry-run.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Benchmark: dry-run") and "| seconds |" in markdown

    if bench_url:  # the given database gets its enterprise table back empty
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output


def test_write_report_wants_numbers(tmp_path: Path) -> None:
    json_path, md_path = write_report("x", {"ops_per_s": 12.5, "n": 3}, "notes", reports_dir=tmp_path)
    assert json.loads(json_path.read_text())["ops_per_s"] == 12.5 and md_path.exists()
    with pytest.raises(TypeError, match="number"):
        write_report("x", {"seconds": "fast"}, "", reports_dir=tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        write_report("x", {"machine": 1}, "", reports_dir=tmp_path)
