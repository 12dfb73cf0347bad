"""Each archive value's origin (source, source date, import or manual change) is kept on the enterprise by imports and
edits, frozen into a case's evidence when the case is decided, and shown per fact by the case provenance API."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from db.models import Case
from schemas.campaigns import EnterpriseUpdate
from services import archive
from services import enterprises as enterprise_service
from tests.archive.support import ADMIN, csv_bytes
from tests.campaigns.support import add_enterprises, add_item, item_config, listing
from tests.campaigns.test_bulk_sql import _match_all

KEY = "ZnJvemVuLWV2aWRlbmNlLXRlc3Qta2V5LTMyYnl0ZXM="


def _import(session: Session, source: str, header: list[str], rows: list[list], **kw) -> archive.ImportResult:
    data = csv_bytes(header, rows)
    return archive.import_file(session=session, scope=ADMIN, source_name=source, file_name=f"{source}.csv", data=data,
                               **kw)  # fmt: skip


def test_imports_and_edits_keep_each_fields_origin_on_the_enterprise(session: Session) -> None:
    [ent] = add_enterprises(session, KEY, 1, seed=1801, region="420502")
    tax = _import(session, "tax", ["uscc", "revenue_yuan", "tax_paid_yuan", "data_date"],
                  [[ent.uscc, "100", "10", "2025-12-31"]])  # fmt: skip
    social = _import(session, "social", ["uscc", "employees"], [[ent.uscc, "77"]], source_date=date(2026, 11, 30))
    enterprise_service.update_archive(
        session=session, scope=ADMIN, uscc=ent.uscc, body=EnterpriseUpdate(tags=["专精特新"]), source="tech"
    )
    session.refresh(ent)
    origin = ent.provenance
    assert origin["revenue_fen"] == {"source": "tax", "source_date": "2025-12-31", "import_id": tax.id}
    assert origin["tax_paid_fen"]["import_id"] == tax.id
    assert origin["employees"] == {"source": "social", "source_date": "2026-11-30", "import_id": social.id}
    assert origin["tags"]["source"] == "tech" and origin["tags"]["archive_change_id"] is not None


def test_a_matched_case_freezes_the_import_of_each_fact_and_the_api_shows_it(session: Session) -> None:
    item = add_item(session, "T18-FROZEN-001", item_config(budget_fen=10**9, region="420503"))
    [ent] = add_enterprises(session, KEY, 1, seed=1802, region="420503")
    supplied = _import(session, "social", ["uscc", "employees"], [[ent.uscc, "40"]], source_date=date(2026, 11, 30))
    [case_id] = _match_all(session, listing(session, item))
    # A later import changes the archive, not what the decided case was decided on.
    later = _import(session, "social", ["uscc", "employees"], [[ent.uscc, "41"]])
    case = session.get(Case, case_id)
    session.refresh(case)
    assert case.evidence["provenance"]["employees"]["import_id"] == supplied.id
    shown = archive.provenance(session=session, scope=ADMIN, case_id=case_id)
    assert shown["employees"] == {
        "label": "从业人数",
        "import_id": supplied.id,
        "archive_change_id": None,
        "source": "social",
        "source_label": "人社社保参保",
        "source_date": "2026-11-30",
        "frozen": True,
    }
    assert later.id != supplied.id
    assert shown["region_code"]["frozen"] is False  # never imported: looked up (recorded before history began)


def test_an_instant_case_evidence_names_its_facts_origin() -> None:
    case = Case(evidence={"conditions": [{"field": "employees"}, {"field": "tags"}],
                          "provenance": {"employees": {"source": "social", "source_date": "2026-11-30", "import_id": 7},
                                         "tags": {"source": "tech", "source_date": "2026-06-01", "archive_change_id": 3}}})  # fmt: skip
    shown = archive.case_provenance(session=None, case=case)  # type: ignore[arg-type]  # everything frozen: no lookup
    assert (shown["employees"]["import_id"], shown["employees"]["source_label"]) == (7, "人社社保参保")
    assert (shown["tags"]["archive_change_id"], shown["tags"]["import_id"], shown["tags"]["frozen"]) == (3, None, True)
