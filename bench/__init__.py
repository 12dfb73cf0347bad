"""Benchmarks (`zhida bench NAME`): each prints its figures and writes reports/bench-NAME.json and .md.

Imported only by the `zhida bench` command, so no other command pays for loading them.
"""

from bench import (  # noqa: F401 (each registers on app)
    archive_import,
    calculator,
    campaign,
    dashboard,
    dry_run,
    latency,
    notices,
    soak,
    temporal,
    treasury,
)
from bench.report import app

__all__ = ["app"]
