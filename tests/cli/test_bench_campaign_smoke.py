"""`zhida bench campaign` end to end on a tiny archive: its own stack, every match paid and notified, a report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def test_bench_campaign_pays_every_match_and_writes_its_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "campaign", "--n", "150", "--no-progress", "--reports-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "bench-campaign.json").read_text(encoding="utf-8"))
    assert figures["n"] == 150 and 0 < figures["paid"] == figures["matched"] == figures["paid_notices"]
    assert figures["not_paid"] == 0 and figures["paid_fen"] > 0
    assert figures["baseline_bulk_insert_seconds"] > 0 and figures["ratio_to_baseline"] > 1
    assert "ratio_to_baseline" in (tmp_path / "bench-campaign.md").read_text(encoding="utf-8")
