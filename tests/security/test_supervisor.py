"""`zhida run`'s supervisor restarts a child that dies, with growing backoff, instead of stopping the stack."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cli.embedded import Supervisor
from tests.support import eventually_sync


def test_a_dead_child_is_restarted_with_backoff(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    sup.start("worker", [sys.executable, "-c", "raise SystemExit(3)"])
    sup.start("api", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        eventually_sync(lambda: sup.dead() == ["worker"], what="the worker to exit")
        first = sup.children[0][1]
        t0 = time.monotonic()
        assert sup.tend(now=t0) == ["worker 意外退出（退出码 3），1 秒后重启（第 1 次）"]
        assert sup.tend(now=t0 + 0.5) == []  # not yet
        assert sup.tend(now=t0 + 1.0) == ["worker 已重启"]
        assert [n for n, _ in sup.children] == ["worker", "api"] and sup.children[0][1] is not first
        eventually_sync(lambda: sup.dead() == ["worker"], what="the restarted worker to exit")
        assert sup.tend(now=t0 + 1.5) == ["worker 意外退出（退出码 3），2 秒后重启（第 2 次）"]
        assert sup.dead() == ["worker"] and "api" not in sup.dead()  # the rest of the stack keeps running
    finally:
        sup.stop()
