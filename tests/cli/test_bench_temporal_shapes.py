"""`zhida bench temporal-shapes` on a private dev server: every shape runs, and the counts it reports show what the
patch markers cost (the reason for workflows/versions.py)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bench.temporal import SHAPES
from cli.main import app


def test_shapes_report_cpu_and_persistence_counts(tmp_path: Path) -> None:
    args = ["bench", "temporal-shapes", "--n", "20", "--concurrency", "5", "--reports-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "bench-temporal-shapes.json").read_text(encoding="utf-8"))
    for shape in SHAPES:
        assert report[f"{shape}_workflows_per_s"] > 0
        assert report[f"{shape}_server_cpu_ms"] > 0
        assert report[f"{shape}_persistence_requests"] > 0
    # Two patch markers add the search-attribute upserts' lookups and writes to every workflow.
    assert report["instant_shape_two_patches_persistence_requests"] > report["instant_shape_persistence_requests"] + 3
    # A bare two-activity workflow needs more requests than one local activity; an eager start saves the dispatch.
    assert report["two_activities_persistence_requests"] > report["one_local_activity_persistence_requests"]
    assert report["one_local_activity_persistence_requests"] > report["one_local_activity_eager_persistence_requests"]
