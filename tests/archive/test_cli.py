"""`zhida archive import SOURCE FILE`: a bad file lists its errors, writes the report and exits 1, storing nothing; the
fixed file is imported; the same file again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from db.migrate import upgrade
from db.models import Enterprise
from db.session import transaction
from settings import get_settings
from tests.factories import new_enterprise


def test_import_from_the_command_line(empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(empty_db_url)
    with transaction(empty_db_url) as s:
        ent = new_enterprise(s, credit_status="good")
        uscc, ent_id = ent.uscc, ent.id
    bad, good, report = tmp_path / "bad.csv", tmp_path / "good.csv", tmp_path / "errors.csv"
    bad.write_text(f"统一社会信用代码,信用状态\n{uscc},很差\n", encoding="utf-8")
    good.write_text(f"统一社会信用代码,信用状态\n{uscc},失信\n", encoding="utf-8")
    monkeypatch.setenv("ZHIDA_DATABASE_URL", empty_db_url)
    get_settings.cache_clear()
    run = CliRunner().invoke
    try:
        failed = run(app, ["archive", "import", "credit", str(bad), "--report", str(report)], env={"COLUMNS": "200"})
        assert failed.exit_code == 1, failed.output
        assert "第 2 行 信用状态" in failed.output and "企档未作任何变更" in failed.output
        assert "枚举规则" in report.read_text(encoding="utf-8-sig")
        done = run(app, ["archive", "import", "credit", str(good), "--source-date", "2026-11-30"])
        assert done.exit_code == 0 and "1 家企业的 1 项数据有变更" in done.output, done.output
        again = run(app, ["archive", "import", "credit", str(good)])
        assert again.exit_code == 0 and "未作任何变更" in again.output
        unknown = run(app, ["archive", "import", "weather", str(good)])
        assert unknown.exit_code != 0 and "数据来源" in unknown.output
    finally:
        get_settings.cache_clear()
    with transaction(empty_db_url) as s:
        assert s.get(Enterprise, ent_id).credit_status == "dishonest"
