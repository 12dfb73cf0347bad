"""`zhida --help` and `zhida token` start at once: importing the command line loads none of the heavy layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("temporalio", "sqlalchemy", "fastapi", "uvicorn", "alembic", "bench", "standins", "cn2an", "httpx")


def test_importing_the_command_line_loads_no_heavy_module() -> None:
    code = (
        "import cli.main, json, sys; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []


def test_token_runs_without_loading_heavy_modules(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "result = CliRunner().invoke(app, ['token', '--role', 'admin', '--subject', 'x'])\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))"
    )
    env = os.environ | {"ZHIDA_DATA_DIR": str(tmp_path)}  # the development JWT key is written there
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
