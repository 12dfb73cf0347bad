"""The fund item editor refuses every invalid configuration the API refuses, with the same Chinese messages: each
case below is one editor form; the page gets the form, the API gets the configuration the form stands for
(services/item_editor.config_from_form), and both must list the same messages."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint
from cli.demo import ensure_demo
from db.migrate import upgrade
from db.session import engine_for
from schemas.fund_items import FundItemConfig
from services.item_editor import STAGE_COLUMNS, Form, config_from_form, form_from_config
from settings import Settings
from tests.api.scoping import csrf_headers

VALID: dict[str, Any] = {
    "mode": "instant",
    "name": "宜昌市2026年度规上工业企业研发投入奖励（即申即享）",
    "policy_doc_number": "宜经信发〔2026〕30号",
    "policy_title": "宜昌市支持企业加大研发投入若干措施",
    "policy_level": "city",
    "policy_issuer": "宜昌市经济和信息化局",
    "region_code": "420500",
    "region_name": "宜昌市",
    "window_start": "2026-12-28",
    "window_end": "2027-03-31",
    "guide_policy_basis": "《宜昌市支持企业加大研发投入若干措施》第二条",
    "guide_conditions_text": "在宜昌市注册、研发投入强度不低于3%的工业企业",
    "guide_standard_text": "一次性奖励5万元",
    "guide_process": "在线申报，系统自动核验，即时兑付",
    "budget_year": "2026",
    "budget_total_yuan": "1,000,000.00",
    "source_name": ["市级财政"],
    "source_share": ["100"],
    "standard_kind": "fixed",
    "standard_amount_yuan": "50,000.00",
    "cond_group": "all",
    "cond_field": ["region_code", "rd_ratio_bp"],
    "cond_op": ["prefix", "ge"],
    "cond_value": ["4205", "3"],
    "finance_department": "YC-CZJ",
    "finance_days": "5",
    "finance_auto": "on",
    "officer_name": "王敏",
    "officer_phone": "0717-6222001",
    "officer_office": "市经信局中小企业科",
}
REVIEW = VALID | {
    "mode": "review",
    "stage_key": ["first_review"],
    "stage_name": ["初审"],
    "stage_departments": ["YC-JXJ"],
    "stage_joint": ["all"],
    "stage_days": ["5"],
    "stage_timeout": ["escalate"],
    "material_name": ["项目申报书"],
    "material_requirement": ["按示范文本填写并加盖公章"],
    "material_sample": ["附件1-项目申报书.docx"],
    "stage_escalate_to": ["YC-SJJ"],
    "standard_kind": "manual",
    "standard_max_yuan": "200,000.00",
    "standard_note": "按评审结果核定",
    "reject_unmet": "on",
}
INVALID: dict[str, dict[str, Any]] = {
    "window ends before it starts": {"window_end": "2026-12-01"},
    "name too short": {"name": "奖励"},
    "shares do not add up to 100%": {"source_share": ["60"]},
    "fixed standard without an amount": {"standard_amount_yuan": ""},
    "unknown finance department": {"finance_department": "YC-NOPE"},
    "operator not allowed for the field": {"cond_op": ["prefix", "has_tag"]},
    "no condition at all": {"cond_field": [], "cond_op": [], "cond_value": []},
    "budget year out of range": {"budget_year": "1999"},
    "review item without stages": REVIEW | {key: [] for key in STAGE_COLUMNS},
    "escalation without a department": REVIEW | {"stage_escalate_to": [""]},
    "review stage with an unknown department": REVIEW | {"stage_departments": ["YC-NOPE"]},
    "officer without a phone": {"officer_phone": ""},
    "reject at once on an instant item": {"reject_unmet": "on"},
    "review item without materials": REVIEW | {"material_name": [], "material_requirement": [], "material_sample": []},
}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict]]:
    # The messages do not depend on the database engine: one SQLite database of its own, on every run.
    folder: Path = tmp_path_factory.mktemp("editor")
    url = f"sqlite:///{folder / 'editor.db'}"
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, jwt_secret="editor-test-secret-" + "x" * 24)
    ensure_demo(settings)
    token = mint(settings.jwt_key(), role="department", subject="YC-JXJ")
    page = {"Cookie": f"zhida_token={token}"} | csrf_headers(settings.jwt_key(), token)  # a signed-in page form
    yield TestClient(create_app(settings)), {"Authorization": f"Bearer {token}", "cookie": token, "page": page}
    engine_for(url).dispose()


def _form(data: dict[str, Any]) -> Form:
    single = {k: v for k, v in data.items() if isinstance(v, str)}
    multi = {k: v for k, v in data.items() if isinstance(v, list)}
    return Form(single, multi)


def _page_messages(client: TestClient, page: dict[str, str], data: dict[str, Any]) -> tuple[int, list[str]]:
    client.cookies.clear()
    r = client.post("/web/workbench/editor/new", data=data, headers=page,
                    follow_redirects=False)  # fmt: skip
    return r.status_code, [html.unescape(m) for m in re.findall(r'<li class="error-item">(.*?)</li>', r.text, re.S)]


def _api_messages(client: TestClient, headers: dict, code: str, data: dict[str, Any]) -> tuple[int, list[str]]:
    built = config_from_form(_form(data))
    assert not built.errors, built.errors  # these cases are typed correctly: only the configuration is wrong
    r = client.post("/api/v1/fund-items", json={"code": code, "config": built.config},
                    headers={"Authorization": headers["Authorization"]})  # fmt: skip
    return r.status_code, [e["message"] for e in r.json().get("error", {}).get("errors", [])]


@pytest.mark.parametrize("case", list(INVALID))
def test_the_editor_refuses_what_the_api_refuses_with_the_same_words(app_client, case: str) -> None:
    client, headers = app_client
    data = (VALID if INVALID[case].get("mode") is None else {}) | INVALID[case]
    code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
    api_status, api = _api_messages(client, headers, code, data)
    page_status, page = _page_messages(client, headers["page"], data | {"code": code})
    assert api_status in (409, 422) and api, (api_status, api)
    assert all(re.search(r"[\u4e00-\u9fff]", m) for m in api), api  # Chinese for users, never pydantic's English
    assert page_status == 422 and page == api


def test_a_valid_form_is_saved_as_the_api_would_save_it(app_client) -> None:
    client, headers = app_client
    for data in (VALID, REVIEW):
        code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
        client.cookies.clear()
        r = client.post("/web/workbench/editor/new", data=data | {"code": code},
                        headers=headers["page"], follow_redirects=False)  # fmt: skip
        assert r.status_code == 303, re.findall(r'<li class="error-item">(.*?)</li>', r.text)
        saved = client.get(f"/api/v1/fund-items/{code}", headers={"Authorization": headers["Authorization"]}).json()
        assert saved["status"] == "draft" and saved["budget_total_fen"] == 100_000_000
        config = saved["version"]["config"]
        assert config["conditions"]["items"][1] == {"field": "rd_ratio_bp", "op": "ge", "value": 300}  # 3% in bp


def test_typing_errors_name_the_field(app_client) -> None:
    client, headers = app_client
    status, page = _page_messages(client, headers["page"], VALID | {"code": "YC-T-TYPO", "budget_total_yuan": "十万"})
    assert status == 422 and page == ["预算总额：“十万”不是元金额，应为如 100,000.00 的数字"]


def _as_post(values: dict[str, str], rows: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """The editor's fields and rows as the browser posts them (each row column a repeated name)."""
    data: dict[str, Any] = {k: v for k, v in values.items() if v != ""}
    for kind_rows in rows.values():
        for row in kind_rows:
            for name, value in row.items():
                data.setdefault(name, []).append(value)
    return data


def test_the_editor_opens_a_saved_draft_and_saves_it_again(app_client) -> None:
    client, headers = app_client
    for data in (VALID, REVIEW):
        code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
        stored = config_from_form(_form(data)).config
        r = client.post("/api/v1/fund-items", json={"code": code, "config": stored},
                        headers={"Authorization": headers["Authorization"]})  # fmt: skip
        assert r.status_code == 201, r.text
        config = r.json()["version"]["config"]
        values, rows = form_from_config(config)
        again = config_from_form(_form(_as_post(values, rows))).config
        assert FundItemConfig.model_validate(again) == FundItemConfig.model_validate(config)  # the round trip holds

        client.cookies.clear()
        cookie = headers["page"]
        page = client.get(f"/web/workbench/items/{code}/edit", headers=cookie)
        assert page.status_code == 200 and 'value="1,000,000.00"' in page.text  # yuan, never fen, on the page
        changed = _as_post(values | {"name": "宜昌市2026年度研发投入奖励（修改后的名称）"}, rows)
        r = client.post(f"/web/workbench/items/{code}/edit", data=changed, headers=cookie, follow_redirects=False)
        assert r.status_code == 303, re.findall(r'<li class="error-item">(.*?)</li>', r.text)
        saved = client.get(f"/api/v1/fund-items/{code}", headers={"Authorization": headers["Authorization"]}).json()
        assert saved["version"]["config"]["name"] == "宜昌市2026年度研发投入奖励（修改后的名称）"


def _tree(*nodes: tuple[str, str, str, str, str, str]) -> dict[str, list[str]]:
    """Condition rows as the tree editor posts them: (id, parent, kind, field, op, value) in document order."""
    columns = ("cond_id", "cond_parent", "cond_kind", "cond_field", "cond_op", "cond_value")
    return {name: [node[i] for node in nodes] for i, name in enumerate(columns)}


TREE = _tree(
    ("root", "", "all", "", "", ""),
    ("n1", "root", "leaf", "region_code", "prefix", "4205"),
    ("g1", "root", "not", "", "", ""),
    ("n2", "g1", "leaf", "credit_status", "eq", "dishonest"),
    ("n3", "g1", "leaf", "tags", "has_tag", "环保处罚"),
    ("g2", "root", "any", "", "", ""),
    ("n4", "g2", "leaf", "rd_ratio_bp", "ge", "3"),
    ("n5", "g2", "leaf", "revenue_fen", "ge", "20,000,000.00"),
    ("n6", "g2", "leaf", "", "", ""),  # a blank row left on the page
)
TREE_CONFIG = {
    "op": "all",
    "items": [
        {"field": "region_code", "op": "prefix", "value": "4205"},
        {
            "op": "not",
            "item": {
                "op": "any",
                "items": [
                    {"field": "credit_status", "op": "eq", "value": "dishonest"},
                    {"field": "tags", "op": "has_tag", "value": "环保处罚"},
                ],
            },
        },
        {
            "op": "any",
            "items": [
                {"field": "rd_ratio_bp", "op": "ge", "value": 300},
                {"field": "revenue_fen", "op": "ge", "value": 2_000_000_000},
            ],
        },
    ],
}


def test_the_condition_tree_with_a_not_group_is_saved_and_opened_again(app_client) -> None:
    client, headers = app_client
    flat = {k: v for k, v in VALID.items() if not k.startswith("cond_")}
    data = flat | TREE
    assert config_from_form(_form(data)).config["conditions"] == TREE_CONFIG
    code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
    client.cookies.clear()
    r = client.post("/web/workbench/editor/new", data=data | {"code": code}, headers=headers["page"],
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, re.findall(r'<li class="error-item">(.*?)</li>', r.text)
    saved = client.get(f"/api/v1/fund-items/{code}", headers={"Authorization": headers["Authorization"]}).json()
    assert saved["version"]["config"]["conditions"] == TREE_CONFIG
    values, rows = form_from_config(saved["version"]["config"])
    assert config_from_form(_form(_as_post(values, rows))).config["conditions"] == TREE_CONFIG  # round trip
    page = client.get(f"/web/workbench/items/{code}/edit", headers=headers["page"])
    assert page.status_code == 200
    assert page.text.count('class="cond-group') == 3 and 'data-kind="not"' in page.text
    # a lone item in a `not` group is negated as it is
    single = _tree(("root", "", "not", "", "", ""), ("n1", "root", "leaf", "employees", "lt", "10"))
    negated = config_from_form(_form(flat | single)).config["conditions"]
    assert negated == {"op": "not", "item": {"field": "employees", "op": "lt", "value": 10}}


def test_the_guide_text_is_generated_from_the_tree(app_client) -> None:
    client, headers = app_client
    flat = {k: v for k, v in VALID.items() if not k.startswith("cond_")}
    client.cookies.clear()
    r = client.post("/web/workbench/editor/conditions-text", data=flat | TREE, headers=headers["page"])
    assert r.status_code == 200
    text = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", r.text, re.S).group(1))
    assert text == (
        "申报单位须同时满足以下条件：\n"
        "（一）注册地行政区划 以 4205 开头；\n"
        "（二）不得存在以下任一情形：1. 信用状态 = 失信；2. 资质标签 具有“环保处罚”；\n"
        "（三）满足以下条件之一：1. 研发投入占比 ≥ 3.00%；2. 营业收入 ≥ 20,000,000.00 元。"
    )
    # a wrong tree: the API's message for the same tree, and the text typed so far is kept
    bad = flat | TREE | {"cond_op": [*TREE["cond_op"][:4], "prefix", *TREE["cond_op"][5:]], "guide_conditions_text": "旧文字"}
    r = client.post("/web/workbench/editor/conditions-text", data=bad, headers=headers["page"])
    messages = [html.unescape(m) for m in re.findall(r'<p class="error field-error"[^>]*>(.*?)</p>', r.text)]
    assert len(messages) == 1 and "资质标签" in messages[0] and "prefix" in messages[0], messages
    assert ">旧文字</textarea>" in r.text
    code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
    _, api = _api_messages(client, headers, code, bad)
    assert api == messages
