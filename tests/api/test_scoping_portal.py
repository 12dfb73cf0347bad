"""Who may call the enterprise side (企业端): the payout account and calculator API, and the /web/me pages.

The world is tests/api/test_scoping.py's (its fixtures are reused): ent_a applies with an account on file, ent_b has
none. The pages are the enterprise's own: staff are refused (403, they have the workbench), the other enterprise's
case is not found (404), nobody signed in goes to the login page (303). Actions that pass the scope answer by sending
the enterprise back to its page (303) with the service's answer (the stand-in Temporal knows no workflow).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import stat
import zipfile
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from db.models import Case, CaseMaterial, Department, FundItem
from db.session import transaction
from gateways.storage import store_for
from schemas.vocabulary import CaseStatus
from settings import Settings
from tests.api.scoping import CALLERS, ENTERPRISES, Row, World, cases_of, check, csrf_headers, ids_of, page_headers
from tests.api.test_scoping import FakeTemporal, _item, client, settings, world  # noqa: F401  (the shared world and client fixtures)

OWN_A = frozenset({"admin", "ent_a"})
ACCOUNT_A = {"acct_name": "宜昌甲科技有限公司", "acct_no": "6222020200112233", "bank_name": "中国工商银行宜昌分行",
             "bank_code": "102526000012"}  # fmt: skip
CASE_A = {"case_id": "case_a"}


def _page(method: str, path: str, allowed: frozenset[str], **kw) -> Row:
    return Row(method, path, allowed, auth="cookie", anonymous=(303,), **kw)


TABLE: list[Row] = [
    Row("PUT", "/api/v1/enterprises/{uscc}/payout-account", OWN_A, fill={"uscc": "uscc_a"}, body=ACCOUNT_A),
    Row("GET", "/api/v1/enterprises/{uscc}/calculator", OWN_A, fill={"uscc": "uscc_a"}),
    _page("GET", "/web/me", ENTERPRISES),
    _page("GET", "/web/me/policies", ENTERPRISES),
    # The world's items have no stored configuration, so no enterprise finds them listed: in scope, not found.
    _page("GET", "/web/me/policies/{code}", ENTERPRISES, fill={"code": "apply_code"}, ok=(404,)),
    _page("POST", "/web/me/policies/{code}/apply", ENTERPRISES, fill={"code": "apply_code"}, ok=(303,)),
    _page("GET", "/web/me/cases/{case_id}", frozenset({"ent_a"}), fill=CASE_A),
    _page("GET", "/web/me/cases/{case_id}/status", frozenset({"ent_a"}), fill=CASE_A),
    _page("POST", "/web/me/cases/{case_id}/withdraw", frozenset({"ent_a"}), fill=CASE_A, form={}, ok=(303,)),
    _page("POST", "/web/me/cases/{case_id}/supplement", frozenset({"ent_a"}), fill=CASE_A, form={"comment": "补"},
          ok=(303,)),
    _page("POST", "/web/me/cases/{case_id}/account", frozenset({"ent_a"}), fill=CASE_A, form=ACCOUNT_A, ok=(303,)),
    _page("GET", "/web/me/enterprise", ENTERPRISES),
    _page("POST", "/web/me/enterprise/account", ENTERPRISES, form=ACCOUNT_A, ok=(303,)),  # ent_b: refused by name
    _page("POST", "/web/me/enterprise/push", ENTERPRISES, form={"opt_out": "0"}, ok=(303,)),
]

PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:  # noqa: F811
    check(client, row, world, caller)


def test_another_enterprise_s_account_is_refused_by_name(client: TestClient, world: World) -> None:  # noqa: F811
    """ent_b filing ent_a's name as its own account holder: the name rule, in Chinese, on the page."""
    client.cookies.clear()
    r = client.post("/web/me/enterprise/account", data=ACCOUNT_A, headers=page_headers(world, "ent_b"))
    assert r.status_code == 303 and "%E4%B8%8D%E4%B8%80%E8%87%B4" in r.headers["location"]  # 不一致


# -- application materials (申报材料) --------------------------------------------------------------------------------
# Added to the world: a material on case_a (ent_a's case on dept_a's item, in review) and on case_joint (ent_a's case
# on dept_b's item that dept_a co-reviews, 联审), and ent_a's cases that still take materials (受理, 补正) plus an
# instant one. The enterprise itself and the reviewing departments open a material; finance is refused (403), another
# enterprise or department does not find it (404).

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def _ofd() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("OFD.xml", "<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
        archive.writestr("Doc_0/Document.xml", "<ofd:Document/>")
    return buffer.getvalue()


@dataclasses.dataclass(frozen=True)
class FileRow(Row):
    """A row whose request uploads files (multipart)."""

    files: tuple[tuple[str, bytes], ...] = ()

    def request_kwargs(self, w: World, caller: str) -> dict[str, Any]:
        kwargs = super().request_kwargs(w, caller)
        if self.files:
            kwargs["files"] = [("files", (name, content)) for name, content in self.files]
        return kwargs


READERS_A = frozenset({"admin", "dept_a", "ent_a"})  # finance_yc sees the case but not its materials
READERS_JOINT = frozenset({"admin", "dept_a", "dept_b", "ent_a"})  # both departments of the 联审
PAGE = {"auth": "cookie", "anonymous": (303,)}

MATERIAL_ROWS: list[Row] = [
    # case_a is under review: in scope, the upload is refused by the case's state (409)
    FileRow("POST", "/api/v1/cases/{case_id}/materials", frozenset({"ent_a"}), fill={"case_id": "case_a"},
            files=(("a.pdf", PDF),), ok=(409,)),
    Row("GET", "/api/v1/cases/{case_id}/materials", READERS_A, fill={"case_id": "case_a"}),
    Row("GET", "/api/v1/cases/{case_id}/materials/{material_id}", READERS_A,
        fill={"case_id": "case_a", "material_id": "material_a"}),
    Row("GET", "/web/cases/{case_id}/materials/{material_id}", READERS_A,
        fill={"case_id": "case_a", "material_id": "material_a"}, **PAGE),
    # 政策自测 is open to anyone, signed in or not (it reads nobody's data)
    Row("GET", "/web/self-test", frozenset(CALLERS), auth="cookie", anonymous=(200,), unknown=(200,)),
]  # fmt: skip
# Not in TABLE (every route has its rows in MATERIAL_ROWS): the 联审 case, read by both departments.
JOINT: list[Row] = [
    Row("GET", "/api/v1/cases/{case_id}/materials/{material_id}", READERS_JOINT,
        fill={"case_id": "case_joint", "material_id": "material_joint"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def materials_world(world: World, settings: Settings) -> World:  # noqa: F811
    """The shared world with a stored material on case_a and case_joint, and ent_a's cases open for materials."""
    store = store_for(settings.data_dir, settings.materials_dir)
    key = store.put(PDF)
    with transaction(settings.db_url) as s:
        a = s.get(Case, world.ids["case_a"])
        joint = s.get(Case, world.ids["case_joint"])
        made = {}
        for name, case in (("material_a", a), ("material_joint", joint)):
            row = CaseMaterial(case_id=case.id, purpose="application", file_name="项目申报书.pdf", content_type="pdf",
                               size_bytes=len(PDF), sha256=hashlib.sha256(PDF).hexdigest(), storage_key=key,
                               uploaded_by=f"enterprise:{world.ids['uscc_a']}")  # fmt: skip
            s.add(row)
            s.flush()
            made[name] = row.id
        department = s.get(Department, s.get(FundItem, a.fund_item_id).department_id)
        for name, mode, status in (("case_open", "review", CaseStatus.COMPLETENESS),
                                   ("case_supplement", "review", CaseStatus.SUPPLEMENT),
                                   ("case_instant", "instant", CaseStatus.RECEIVED)):  # fmt: skip
            item = _item(s, f"M-{name}-{a.id}", department, mode=mode)
            extra = Case(fund_item_id=item.id, fund_item_version=1, enterprise_id=a.enterprise_id, mode=mode,
                         status=status, workflow_id=f"case:{item.code}", paid_fen=0)  # fmt: skip
            s.add(extra)
            s.flush()
            made[name] = extra.id
    return dataclasses.replace(world, ids=world.ids | made)


MATERIAL_PAIRS = cases_of(MATERIAL_ROWS + JOINT)
TABLE = TABLE + MATERIAL_ROWS  # every route's rows in the module's TABLE (the coverage test reads it)


@pytest.mark.parametrize(("row", "caller"), MATERIAL_PAIRS, ids=ids_of(MATERIAL_PAIRS))
def test_who_gets_through_to_materials(client: TestClient, materials_world: World, row: Row, caller: str) -> None:  # noqa: F811
    check(client, row, materials_world, caller)


# -- what an upload accepts and refuses --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(settings: Settings) -> TestClient:  # noqa: F811
    """The same world behind an app with small limits: 2 KB a file, 3 files a case."""
    app = create_app(settings.model_copy(update={"materials_max_file_bytes": 2048, "materials_max_files": 3}))
    app.state.temporal = FakeTemporal()
    return TestClient(app, follow_redirects=False)


def _upload(app: TestClient, w: World, case: str, files: list[tuple[str, bytes]], caller: str = "ent_a"):
    app.cookies.clear()
    return app.post(f"/api/v1/cases/{w.ids[case]}/materials", headers=w.headers[caller],
                       files=[("files", f) for f in files])  # fmt: skip


def _message(response) -> str:
    return response.json()["error"]["message"]


def test_upload_keeps_the_file_outside_the_database_with_its_sha256(
    small: TestClient, materials_world: World, settings: Settings  # noqa: F811
) -> None:
    r = _upload(small, materials_world, "case_open", [("申报书.PDF", PDF), ("营业执照.png", PNG)])
    assert r.status_code == 201, r.text
    got = r.json()
    assert [(m["file_name"], m["content_type"], m["purpose"]) for m in got] == [
        ("申报书.PDF", "pdf", "application"), ("营业执照.png", "png", "application")]  # fmt: skip
    assert got[0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    path = settings.data_dir / "materials" / got[1]["sha256"][:2] / got[1]["sha256"]
    assert path.read_bytes() == PNG and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # the enterprise and the department open it, byte for byte, as an attachment with its sniffed type
    for caller in ("ent_a", "dept_a"):
        small.cookies.clear()
        d = small.get(got[0]["href"], headers=materials_world.headers[caller])
        assert d.status_code == 200 and d.content == PDF and d.headers["content-type"] == "application/pdf"
        assert d.headers["content-disposition"].startswith("attachment;") and d.headers["x-content-type-options"]
    # finance sees the case but not its materials; the other enterprise does not find them
    small.cookies.clear()
    assert small.get(got[0]["href"], headers=materials_world.headers["finance_yc"]).status_code == 403
    assert small.get(got[0]["href"], headers=materials_world.headers["ent_b"]).status_code == 404
    # a material is reached only through its own case
    wrong = f"/api/v1/cases/{materials_world.ids['case_a']}/materials/{got[0]['id']}"
    assert small.get(wrong, headers=materials_world.headers["ent_a"]).status_code == 404


def test_refusals_name_the_file_and_the_rule(small: TestClient, materials_world: World) -> None:
    w = materials_world
    r = _upload(small, w, "case_supplement", [("报告.pdf", b"PK\x03\x04 not really a pdf"), ("照片.jpg", JPEG)])
    assert r.status_code == 422 and "“报告.pdf”的文件类型不允许" in _message(r) and "按文件内容识别" in _message(r)
    r = _upload(small, w, "case_supplement", [("扫描件.pdf", PDF + b"0" * 3000)])
    assert r.status_code == 422 and "“扫描件.pdf”太大" in _message(r) and "不得超过 2 KB" in _message(r)
    r = _upload(small, w, "case_supplement", [(f"{i}.pdf", PDF) for i in range(4)])
    assert r.status_code == 422 and "每个办件最多 3 个文件" in _message(r)
    r = _upload(small, w, "case_supplement", [("空.pdf", b"")])
    assert r.status_code == 422 and "空文件" in _message(r)
    # nothing of a refused upload was kept; then a good one (an OFD and a JPEG) is kept as 补正材料
    assert small.get(f"/api/v1/cases/{w.ids['case_supplement']}/materials", headers=w.headers["ent_a"]).json() == []
    r = _upload(small, w, "case_supplement", [("签章.ofd", _ofd()), ("照片.jpg", JPEG)])
    assert r.status_code == 201 and [m["content_type"] for m in r.json()] == ["ofd", "jpeg"]
    assert {m["purpose"] for m in r.json()} == {"supplement"}
    # the count limit counts what the case already holds
    r = _upload(small, w, "case_supplement", [("a.pdf", PDF), ("b.pdf", PDF)])
    assert r.status_code == 422 and "已有 2 个，本次 2 个" in _message(r)
    # an instant case takes no materials; a case under review no longer does
    r = _upload(small, w, "case_instant", [("a.pdf", PDF)])
    assert r.status_code == 409 and "申报审批" in _message(r)
    r = _upload(small, w, "case_a", [("a.pdf", PDF)])
    assert r.status_code == 409 and "不能再上传材料" in _message(r)


def test_supplement_answer_takes_materials_over_multipart(small: TestClient, materials_world: World) -> None:
    """The 补正 answer path keeps the new files, then asks the workflow to resume (the stand-in Temporal knows no
    workflow: 409 after the files were kept); JSON still works as before."""
    w = materials_world
    url = f"/api/v1/cases/{w.ids['case_supplement']}/supplement"
    before = len(small.get(f"/api/v1/cases/{w.ids['case_supplement']}/materials", headers=w.headers["ent_a"]).json())
    r = small.post(url, headers=w.headers["ent_a"], data={"comment": "已补充发票"}, files=[("files", ("发票.pdf", PDF))])
    assert r.status_code == 409, r.text
    after = small.get(f"/api/v1/cases/{w.ids['case_supplement']}/materials", headers=w.headers["ent_a"]).json()
    assert len(after) == before + 1 and after[-1]["file_name"] == "发票.pdf", r.text
    r = small.post(url, headers=w.headers["ent_a"], data={"comment": "x" * 2001}, files=[("files", ("a.pdf", PDF))])
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["field"] == "comment"
    assert small.post(url, headers=w.headers["ent_a"], json={"comment": "好"}).status_code == 409
    # answering 补正 with files on a case that is not in 补正 is refused before anything is kept
    r = small.post(f"/api/v1/cases/{w.ids['case_open']}/supplement", headers=w.headers["ent_a"],
                   files=[("files", ("a.pdf", PDF))])  # fmt: skip
    assert r.status_code == 409 and "不在补正环节" in _message(r)


def test_the_review_screen_and_the_case_page_link_the_materials(client: TestClient, materials_world: World) -> None:  # noqa: F811
    w = materials_world
    for caller, path in (("dept_a", f"/web/workbench/cases/{w.ids['case_a']}"), ("ent_a", f"/web/me/cases/{w.ids['case_a']}")):
        client.cookies.clear()
        token = w.headers[caller]["Authorization"].removeprefix("Bearer ")
        page = client.get(path, headers={"Cookie": f"zhida_token={token}"})
        assert page.status_code == 200, page.text[:300]
        link = f"/web/cases/{w.ids['case_a']}/materials/{w.ids['material_a']}"
        assert link in page.text and "项目申报书.pdf" in page.text
        client.cookies.clear()
        d = client.get(link, headers={"Cookie": f"zhida_token={token}"})
        assert d.status_code == 200 and d.content == PDF


def test_an_oversized_body_is_refused_before_the_route(small: TestClient, materials_world: World) -> None:
    """The request guard lets an upload path take the material limits (files × bytes, at least the 2 MB of any
    request), no more."""
    w = materials_world
    r = _upload(small, w, "case_open", [("big.pdf", PDF + b"0" * (2 * 1024 * 1024 + 1))])
    assert r.status_code == 413 and "请求体超过上限 2 MB" in _message(r)


def test_page_upload_carries_csrf_and_shows_the_rule(small: TestClient, materials_world: World) -> None:
    w = materials_world
    token = w.headers["ent_a"]["Authorization"].removeprefix("Bearer ")
    small.cookies.clear()
    r = small.post(f"/web/me/cases/{w.ids['case_supplement']}/supplement",
                   headers={"Cookie": f"zhida_token={token}", **csrf_headers(w.secret, token)},
                   data={"comment": "补"}, files=[("files", ("说明.docx", b"PK\x03\x04word"))])  # fmt: skip
    assert r.status_code == 303
    assert "“说明.docx”的文件类型不允许" in unquote(r.headers["location"])


def test_an_official_reading_a_material_is_an_audit_record(client: TestClient, materials_world: World) -> None:  # noqa: F811
    from sqlalchemy import select

    from db.models import AuditRecord

    w = materials_world
    url = f"/api/v1/cases/{w.ids['case_a']}/materials/{w.ids['material_a']}"
    subject = f"material:{w.ids['material_a']}"

    def records(db_url: str) -> list[tuple[str, dict]]:
        with transaction(db_url) as s:
            rows = s.scalars(select(AuditRecord).where(AuditRecord.subject == subject).order_by(AuditRecord.seq))
            return [(r.actor, r.data) for r in rows]

    db_url = client.app.state.settings.db_url
    before = records(db_url)
    client.cookies.clear()
    assert client.get(url, headers=w.headers["dept_a"]).content == PDF
    assert client.get(url, headers=w.headers["ent_a"]).content == PDF  # the enterprise reading its own: no export
    [(actor, data)] = records(db_url)[len(before):]
    assert actor.startswith("department:") and data["case_id"] == w.ids["case_a"] and data["sha256"]
