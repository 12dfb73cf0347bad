"""Imports store everything or nothing, a file is imported once, every value keeps its history ("as of" a day), a
field changes only through its owning source, and changed enterprises are re-matched against listed items."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli.generate import insert_enterprises
from db.models import Alert, ArchiveImport, ArchiveValue, Campaign, Case, Enterprise
from db.repositories import archive as repo
from schemas.campaigns import EnterpriseUpdate
from services import archive
from services import enterprises as enterprise_service
from services.errors import Forbidden
from tests.archive.support import ADMIN, csv_bytes
from tests.campaigns.support import add_enterprises, add_item, item_config
from tests.factories import new_enterprise

KEY = "ZnJvemVuLWV2aWRlbmNlLXRlc3Qta2V5LTMyYnl0ZXM="
HEADER = ["统一社会信用代码", "营业收入（元）", "纳税额（元）"]


def _tax(session: Session, rows: list[list], name: str = "tax.csv", **kw):
    return archive.import_file(
        session=session, scope=ADMIN, source_name="tax", file_name=name, data=csv_bytes(HEADER, rows), **kw
    )


def test_one_bad_row_in_a_large_file_stores_nothing_then_the_fixed_file_stores_all(session: Session) -> None:
    n = 20_000
    insert_enterprises(session=session, n=n, seed=4711, progress=False)
    people = session.execute(select(Enterprise.uscc, Enterprise.id).order_by(Enterprise.id.desc()).limit(n)).all()
    rows = [[uscc, f"{1000 + i}.50", "12"] for i, (uscc, _) in enumerate(people)]
    rows[-1][2] = "十二元"
    failed = _tax(session, rows, "big.csv")
    assert (failed.status, failed.error_count, failed.errors[0]["row"]) == ("failed", 1, n + 1)
    ids = [i for _, i in people]
    changed = session.scalar(
        select(func.count()).select_from(ArchiveValue).where(ArchiveValue.enterprise_id.in_(ids[:5000]))
    )
    assert changed == 0
    assert session.scalar(select(Enterprise.revenue_fen).where(Enterprise.id == ids[0])) != 100050
    rows[-1][2] = "12"
    done = _tax(session, rows, "big.csv")
    assert (done.status, done.changed_enterprises) == ("succeeded", n)
    session.expire_all()
    assert session.scalar(select(Enterprise.revenue_fen).where(Enterprise.id == ids[0])) == 100050
    assert session.scalar(select(Enterprise.tax_paid_fen).where(Enterprise.id == ids[-1])) == 1200


def test_the_same_file_twice_is_imported_once(session: Session) -> None:
    ent = new_enterprise(session)
    first = _tax(session, [[ent.uscc, "100", "10"]])
    values = session.scalar(select(func.count()).select_from(ArchiveValue).where(ArchiveValue.enterprise_id == ent.id))
    again = _tax(session, [[ent.uscc, "100", "10"]], "renamed.csv")
    assert (again.id, again.duplicate, first.duplicate) == (first.id, True, False)
    assert (
        session.scalar(select(func.count()).select_from(ArchiveValue).where(ArchiveValue.enterprise_id == ent.id))
        == values
        == 2
    )
    # Unchanged values in a new file store no history; a changed one does.
    same = _tax(session, [[ent.uscc, "100.00", "10"]], "same-values.csv")
    assert (same.duplicate, same.changed_values) == (False, 0)


def test_history_answers_what_was_known_on_a_day(session: Session) -> None:
    ent = new_enterprise(session)
    first = _tax(session, [[ent.uscc, "100", "10"]], source_date=date(2025, 12, 31))
    for row in repo.history(session=session, enterprise_id=ent.id):  # as if imported three days ago
        row.recorded_at = datetime.now(UTC) - timedelta(days=3)
    session.flush()
    second = _tax(session, [[ent.uscc, "300", "10"]], source_date=date(2026, 11, 30))
    today = date.today()
    then = {
        f.field: f for f in archive.as_of(session=session, scope=ADMIN, uscc=ent.uscc, day=today - timedelta(days=2))
    }
    assert (then["revenue_fen"].value, then["revenue_fen"].import_id) == (10000, first.id)
    assert then["revenue_fen"].source_date == date(2025, 12, 31) and then["revenue_fen"].source == "tax"
    now = {
        f.field: f for f in archive.as_of(session=session, scope=ADMIN, uscc=ent.uscc, day=today + timedelta(days=1))
    }
    assert (now["revenue_fen"].value, now["revenue_fen"].import_id) == (30000, second.id)
    assert now["tax_paid_fen"].import_id == first.id  # unchanged by the second import
    assert archive.as_of(session=session, scope=ADMIN, uscc=ent.uscc, day=today - timedelta(days=5)) == []
    facts = {f.field: f for f in archive.facts(session=session, scope=ADMIN, uscc=ent.uscc)}
    assert facts["revenue_fen"].text == "300.00 元" and facts["revenue_fen"].source_label == "税务年度纳税"
    assert facts["employees"].source == "social" and facts["employees"].source_date is None


def test_a_case_points_to_the_import_that_supplied_its_facts(session: Session) -> None:
    item = add_item(session, "T18-PROV-001", item_config(budget_fen=10**9))
    [ent] = add_enterprises(session, KEY, 1, seed=181, region="420502")
    supplied = _tax(session, [[ent.uscc, "100", "10"]])
    case = Case(fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id, mode="no_application",
                status="matched", workflow_id=f"t18-prov-{ent.id}", evidence={"values": {"tax_paid_fen": 1000}},
                created_at=datetime.now(UTC) + timedelta(seconds=1))  # fmt: skip
    session.add(case)
    session.flush()
    assert archive.case_provenance(session=session, case=case)["tax_paid_fen"]["import_id"] == supplied.id


def test_a_field_changes_only_through_its_owning_source(session: Session) -> None:
    ent = new_enterprise(session)
    tags = EnterpriseUpdate(tags=["专精特新"])
    with pytest.raises(Forbidden, match="科技资质名单") as refused:
        enterprise_service.update_archive(session=session, scope=ADMIN, uscc=ent.uscc, body=tags)
    assert refused.value.rule == "owning_source"
    with pytest.raises(Forbidden, match="数据来源归属规则"):
        enterprise_service.update_archive(session=session, scope=ADMIN, uscc=ent.uscc, body=tags, source="tax")
    enterprise_service.update_archive(session=session, scope=ADMIN, uscc=ent.uscc, body=tags, source="tech")
    [row] = repo.history(session=session, enterprise_id=ent.id)
    assert (row.field, row.value, row.source, row.import_id) == ("tags", ["专精特新"], "tech", None)
    assert row.archive_change_id is not None
    # An import may only carry its own source's columns.
    wrong = archive.import_file(session=session, scope=ADMIN, source_name="tax", file_name="t.csv",
                                data=csv_bytes(["uscc", "employees"], [[ent.uscc, "5"]]))  # fmt: skip
    assert wrong.status == "failed" and "不属于数据来源「税务年度纳税」" in wrong.errors[0]["message"]


def test_an_import_rematches_newly_eligible_once_and_alerts_on_paid_now_ineligible(session: Session) -> None:
    item = add_item(session, "T18-RE-001", item_config(budget_fen=10**9, region="420506"))
    late, paid = add_enterprises(session, KEY, 2, seed=182, region="420506")
    late.employees = 5  # below the 10-employee condition
    session.add(Case(fund_item_id=item.id, fund_item_version=1, enterprise_id=paid.id, mode="no_application",
                     status="paid", workflow_id=f"t18-paid-{paid.id}"))  # fmt: skip
    session.flush()
    social = ["uscc", "employees"]
    first = archive.import_file(session=session, scope=ADMIN, source_name="social", file_name="s1.csv",
                                data=csv_bytes(social, [[late.uscc, 50], [paid.uscc, 3]]))  # fmt: skip
    assert (first.reevaluations, first.alerts) == (1, 1)
    [campaign] = session.scalars(select(Campaign).where(Campaign.fund_item_id == item.id)).all()
    assert (campaign.kind, campaign.enterprise_id) == ("reevaluation", late.id)
    [alert] = session.scalars(
        select(Alert).where(Alert.kind == "archive_ineligible", Alert.ref.like(f"case:%:import:{first.id}"))
    ).all()
    assert "不会自动追回" in alert.message and alert.status == "open"
    session.refresh(paid)
    assert session.scalar(select(Case.status).where(Case.enterprise_id == paid.id)) == "paid"  # never clawed back
    second = archive.import_file(session=session, scope=ADMIN, source_name="social", file_name="s2.csv",
                                 data=csv_bytes(social, [[late.uscc, 60]]))  # fmt: skip
    assert (second.status, second.reevaluations) == ("succeeded", 0)
    assert session.scalar(select(func.count()).select_from(Campaign).where(Campaign.fund_item_id == item.id)) == 1
    assert (
        session.scalar(
            select(func.count()).select_from(ArchiveImport).where(ArchiveImport.id.in_([first.id, second.id]))
        )
        == 2
    )
