"""A short `zhida soak` in the suite: 30 cases of the three modes, 2 worker kills, 1 Temporal restart, treasury and
SMS faults; every invariant holds. The on-demand run (≥ 2,000 cases) is `zhida soak --cases 2000 …`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.soak import Plan, run_soak

# A private stack of processes (Temporal dev server, stand-in, worker, API): the e2e mark keeps it out of test-fast.
pytestmark = pytest.mark.e2e


async def test_short_soak_holds_every_invariant(tmp_path: Path) -> None:
    plan = Plan(cases=30, worker_kills=2, server_restarts=1, drain_seconds=120)
    result = await asyncio.to_thread(run_soak, plan, load_period=8.0, data_dir=tmp_path)
    assert result["ok"], "\n".join(result["violations"])
    assert result["load"]["drained"]
    faults = result["faults"]
    assert faults["worker_kills"] == 2 and faults["temporal_restarts"] == 1
    assert faults["sms_failed_answers"] >= 5
    assert sum(v for k, v in faults.items() if k.startswith("treasury_")) > 0, faults
    cases = result["cases"]
    assert cases["total"] >= 30 and cases["paid"] >= 20
    modes = {key.split(":")[0] for key in cases["by_mode_status"]}
    assert modes == {"instant", "review", "no_application"}
    assert result["ledger_ours"] == result["ledger_treasury"]
