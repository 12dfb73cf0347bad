"""A small smoke run of `zhida bench dashboard`: the generator and every timed query work on a fresh database."""

from __future__ import annotations

from bench.dashboard import run_dashboard


def test_dashboard_bench_smoke() -> None:
    figures, database = run_dashboard(cases=2_000, items=20, repeats=1, export_rows=500)
    assert figures["cases"] == 2_000 and figures["export_rows"] == 500
    assert figures["p95_ms"] >= figures["p50_ms"] > 0 and figures["export_seconds"] > 0
    assert "sqlite" in database.lower()
