"""Who may use the archive's routes: the sources (anyone known), imports (administrators and departments; a
department sees its own imports only), an enterprise's facts with source and date (as for its other data), and the
import pages. Uses the world of tests/api/test_scoping.py (same cast, its own database for this module)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from db.models import AuditRecord
from db.session import transaction
from schemas.archive_sources import SOURCES
from schemas.principal import Principal
from schemas.vocabulary import ArchiveSource, AuditKind
from services import archive
from services.scope import Scope
from settings import Settings
from tests.api.scoping import EVERYONE_KNOWN, STAFF, Row, World, cases_of, check, ids_of
from tests.api.test_scoping import DEPT_A, client, settings, world  # noqa: F401 (fixtures)

IMPORTERS = frozenset({"admin", "dept_a", "dept_b"})
SOCIAL_SENDERS = frozenset({"admin", "dept_a"})  # in this world dept A sends 人社社保参保 (see archive_world)
TAGGERS = frozenset({"admin", "dept_a", "dept_b"})  # define tags; finance only reads them
OWNER = frozenset({"admin", "dept_a"})  # the department that made the import, and the administrators
NOT_B = EVERYONE_KNOWN - {"ent_b"}
SEES_A = frozenset({"admin", "dept_a", "finance_yc", "ent_a"})  # case A: its item's department, region, enterprise
JSON_ROWS = {"source": "social", "file_name": "rows.json"}
PAGE = {"auth": "cookie", "anonymous": (303,)}


def _rule(caller: str) -> dict:
    return {"name": f"范围测试标签{caller}", "condition": {"field": "region_code", "op": "prefix", "value": "4205"}}


TABLE = [
    Row("GET", "/api/v1/archive/sources", EVERYONE_KNOWN),
    Row("POST", "/api/v1/archive/imports", SOCIAL_SENDERS, query=JSON_ROWS, body=[], ok=(200, 201)),
    Row("GET", "/api/v1/archive/imports", IMPORTERS),
    Row("GET", "/api/v1/archive/imports/{import_id}", OWNER, fill={"import_id": "import_a"}),
    Row("GET", "/api/v1/archive/imports/{import_id}/errors.csv", OWNER, fill={"import_id": "import_a"}),
    Row("GET", "/api/v1/archive/enterprises/{uscc}/facts", NOT_B, fill={"uscc": "uscc_a"}),
    Row("GET", "/api/v1/archive/cases/{case_id}/provenance", SEES_A, fill={"case_id": "case_a"}),
    Row("GET", "/api/v1/archive/tag-rules", STAFF),
    Row("POST", "/api/v1/archive/tag-rules", IMPORTERS, body=lambda _w, caller: _rule(caller), ok=(201,)),
    Row("POST", "/api/v1/archive/tag-rules/preview", TAGGERS, body=lambda _w, caller: _rule(caller), ok=(200,)),
    Row("GET", "/web/archive/tags", STAFF, **PAGE),
    Row("POST", "/web/archive/tags/preview", TAGGERS, form={"name": "预览", "kind": "rule"}, ok=(200,), **PAGE),
    Row("POST", "/web/archive/tags", TAGGERS, form={"name": "", "kind": "rule"}, ok=(422,), **PAGE),
    Row("GET", "/web/archive", IMPORTERS, **PAGE),
    Row("POST", "/web/archive/imports", IMPORTERS, form={"source": "social"}, ok=(422,), **PAGE),  # no file: 422 first
    Row("GET", "/web/archive/imports/{import_id}", OWNER, fill={"import_id": "import_a"}, **PAGE),
    Row("GET", "/web/archive/imports/{import_id}/errors.csv", OWNER, fill={"import_id": "import_a"}, **PAGE),
]


@pytest.fixture(scope="module")
def archive_world(world: World, settings: Settings) -> Iterator[World]:  # noqa: F811
    # Only a source's own department (and administrators) may import it: dept A plays the social security bureau.
    social = SOURCES[ArchiveSource.SOCIAL]
    patch = pytest.MonkeyPatch()
    patch.setitem(SOURCES, ArchiveSource.SOCIAL, dataclasses.replace(social, department_code=DEPT_A))
    scope = Scope(principal=Principal(role="department", subject=DEPT_A), department_code=DEPT_A)
    with transaction(settings.db_url) as s:
        failed = archive.import_file(session=s, scope=scope, source_name="social", file_name="a.csv",
                                     data=b"uscc,employees\nBAD,1\n")  # fmt: skip
    world.ids["import_a"] = failed.id
    yield world
    patch.undo()


PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, archive_world: World, row: Row, caller: str) -> None:  # noqa: F811
    check(client, row, archive_world, caller)


def test_an_import_over_http_reports_rows_and_the_csv_report(client: TestClient, archive_world: World,  # noqa: F811
                                                             settings: Settings) -> None:  # noqa: F811
    admin = archive_world.headers["admin"]
    uscc = archive_world.ids["uscc_a"]
    body = f"uscc,employees\n{uscc},77\n{uscc[:-1]}0,1\n".encode()
    r = client.post("/api/v1/archive/imports", params={"source": "social", "file_name": "s.csv"}, content=body,
                    headers=admin)  # fmt: skip
    assert r.status_code == 201 and r.json()["status"] == "failed", r.text
    report = client.get(f"/api/v1/archive/imports/{r.json()['id']}/errors.csv", headers=admin)
    assert report.headers["content-type"].startswith("text/csv") and "第" not in report.text.splitlines()[0]
    assert "校验码规则" in report.text or "长度规则" in report.text
    with transaction(settings.db_url) as session:  # the download is an audited export
        exported = session.scalars(select(AuditRecord).where(
            AuditRecord.kind == AuditKind.EXPORT, AuditRecord.subject == f"archive_import:{r.json()['id']}")).all()  # fmt: skip
        assert [(e.actor.split(":")[0], e.data["export"], e.data["rows"]) for e in exported] == [
            ("admin", "archive_errors_csv", 1)]  # fmt: skip
    ok = client.post("/api/v1/archive/imports", params={"source": "social", "file_name": "s.csv"},
                     content=f"uscc,employees\n{uscc},77\n".encode(), headers=admin)  # fmt: skip
    assert ok.json()["status"] == "succeeded"
    facts = {f["field"]: f for f in client.get(f"/api/v1/archive/enterprises/{uscc}/facts", headers=admin).json()}
    assert (facts["employees"]["value"], facts["employees"]["import_id"]) == (77, ok.json()["id"])
    assert facts["employees"]["source_label"] == "人社社保参保"
    past = client.get(f"/api/v1/archive/enterprises/{uscc}/facts", params={"as_of": "2020-01-01"}, headers=admin)
    assert past.json() == []
    refused = client.patch(f"/api/v1/enterprises/{uscc}/archive", json={"employees": 5}, params={"source": "tax"},
                           headers=admin)  # fmt: skip
    assert refused.status_code == 403 and "人社社保参保" in refused.text


def test_a_case_names_the_import_behind_its_evidence(client: TestClient, archive_world: World, settings: Settings) -> None:  # noqa: F811
    from db.models import Case

    with transaction(settings.db_url) as s:
        case = s.get(Case, archive_world.ids["case_a"])
        case.evidence = {"values": {"employees": 10}}
    r = client.get(world_path := f"/api/v1/archive/cases/{archive_world.ids['case_a']}/provenance",
                   headers=archive_world.headers["ent_a"])  # fmt: skip
    assert r.status_code == 200, (world_path, r.text)
    assert r.json() == {"employees": {"label": "从业人数", "import_id": None, "archive_change_id": None, "source": None,
                                      "source_label": "—", "source_date": None, "frozen": False}}  # fmt: skip


def test_a_department_imports_only_the_sources_it_sends(client: TestClient, archive_world: World) -> None:  # noqa: F811
    uscc = archive_world.ids["uscc_a"]
    tax = f"uscc,revenue_yuan,tax_paid_yuan\n{uscc},1,1\n".encode()
    refused = client.post("/api/v1/archive/imports", params={"source": "tax", "file_name": "t.csv"}, content=tax,
                          headers=archive_world.headers["dept_a"])  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert "只有该部门和管理员可以导入" in refused.text and "国家税务总局宜昌市税务局" in refused.text
    other = client.post("/api/v1/archive/imports", params={"source": "social", "file_name": "s.csv"},
                        content=f"uscc,employees\n{uscc},9\n".encode(), headers=archive_world.headers["dept_b"])  # fmt: skip
    assert other.status_code == 403 and "source_owner" in other.text
    token = archive_world.headers["dept_a"]["Authorization"].removeprefix("Bearer ")
    page = client.get("/web/archive", headers={"Cookie": f"zhida_token={token}"})
    choices = page.text.split('id="source">')[1].split("</select>")[0]
    assert page.status_code == 200 and "人社社保参保" in choices and "税务年度纳税" not in choices
