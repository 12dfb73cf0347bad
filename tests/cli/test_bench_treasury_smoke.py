"""Smoke run of `zhida bench treasury` with a small N: it starts its own stand-in, sends, checks, reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def test_bench_treasury_smoke(tmp_path: Path) -> None:
    before = {k: v for k, v in os.environ.items() if k.startswith("ZHIDA_")}
    args = [
        "bench",
        "treasury",
        "--n",
        "300",
        "--batch",
        "100",
        "--settle-delay",
        "0.1",
        "--reports-dir",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "instructions_per_s" in result.output

    report = json.loads((tmp_path / "bench-treasury.json").read_text(encoding="utf-8"))
    assert report["benchmark"] == "treasury" and report["n"] == report["accepted"] == 300
    assert report["instructions_per_s"] > 0 and 0 < report["batch_p50_ms"] <= report["batch_p99_ms"]
    assert report["ledger_matches"] is True and report["resend_all_duplicates"] is True
    assert report["ledger_paid_fen"] == sum(10_000 + i % 1000 for i in range(300))
    assert {"cores", "python", "database"} <= set(report["machine"])
    assert (tmp_path / "bench-treasury.md").read_text(encoding="utf-8").startswith("# Benchmark: treasury")
    assert {k: v for k, v in os.environ.items() if k.startswith("ZHIDA_")} == before  # environment restored
