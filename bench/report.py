"""What every benchmark shares: the `zhida bench` app, machine facts, and the reports. Each benchmark prints its figures and writes
reports/bench-NAME.json (figures as numbers, units in the key names, plus machine facts) and reports/bench-NAME.md.

Benchmarks never touch the user's data: by default they run on a fresh database in a temporary directory.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Benchmarks: figures to reports/bench-NAME.json and .md", no_args_is_help=True)
console = Console()

RESERVED_KEYS = ("benchmark", "machine", "notes", "recorded_at")

# --------------------------------------------------------------------------- shared report writing


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def database_facts(url: str) -> str:
    """'sqlite 3.40.1' or 'postgresql 15.20': the engine a benchmark ran on, with its version."""
    from db.session import engine_for

    engine = engine_for(url)
    with engine.connect() as conn:
        info = conn.dialect.server_version_info or ()
    return f"{engine.dialect.name} {'.'.join(str(part) for part in info)}".strip()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_facts(database: str | None = None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
    }
    if database:
        facts["database"] = database
    return facts


def write_report(
    name: str,
    figures: Mapping[str, Any],
    notes: str,
    *,
    database: str | None = None,
    reports_dir: Path | str = "reports",
) -> tuple[Path, Path]:
    """Write reports/bench-NAME.json and .md; figures are numbers (or booleans) with their unit in the key name."""
    for key, value in figures.items():
        if key in RESERVED_KEYS:
            raise ValueError(f"figure name {key!r} is reserved")
        if not isinstance(value, int | float | bool):
            raise TypeError(f"figure {key!r} must be a number, got {value!r}")
    folder = Path(reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    machine = machine_facts(database)
    recorded_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    document = {"benchmark": name, **figures, "machine": machine, "notes": notes, "recorded_at": recorded_at}
    json_path = folder / f"bench-{name}.json"
    json_path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Benchmark: {name}", "", f"Recorded {recorded_at}.", "", "| figure | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in figures.items()]
    lines += ["", "## Machine", "", "| fact | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in machine.items()]
    lines += ["", "## Notes", "", notes.strip(), ""]
    md_path = folder / f"bench-{name}.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return json_path, md_path


def print_figures(title: str, figures: Mapping[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    console.print(table)


@contextmanager
def bench_database(database_url: str) -> Iterator[tuple[str, bool]]:
    """(url, owned): a fresh SQLite file in a temporary directory, or the given database (not owned)."""
    from db.session import engine_for

    if database_url:
        yield database_url, False
        return
    with tempfile.TemporaryDirectory(prefix="zhida-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        try:
            yield url, True
        finally:
            engine_for(url).dispose()
