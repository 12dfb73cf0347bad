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
from cli.demo import demo_enterprise_uscc, ensure_demo
from db.migrate import upgrade
from db.repositories import enterprises
from db.session import engine_for, transaction
from rules.amounts import compute_amount
from rules.money import format_yuan, to_capitals
from schemas.fund_items import FundItemConfig
from services.item_editor import SECTIONS, STAGE_COLUMNS, Form, config_from_form, form_from_config
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
    yield TestClient(create_app(settings)), {"Authorization": f"Bearer {token}", "cookie": token, "page": page,
                                             "db_url": url}  # fmt: skip
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
        "（一）注册地行政区划 位于 宜昌市；\n"
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


TIERS = {
    "standard_kind": "tiers",
    "tiers_base": "revenue_fen",
    "tiers_cap_yuan": "400,000.00",
    "tier_at_least": ["100,000,000.00", "500,000,000.00", ""],
    "tier_amount_yuan": ["200,000.00", "", ""],
    "tier_rate_percent": ["", "0.1", ""],
    "tier_label": ["营收首次突破1亿元", "营收首次突破5亿元", ""],
}
SUM = {
    "standard_kind": "sum",
    "sum_cap_yuan": "1,000,000.00",
    "part_kind": ["fixed", "rate", ""],
    "part_amount_yuan": ["100,000.00", "", ""],
    "part_base": ["", "tax_paid_fen", ""],
    "part_rate_percent": ["", "3", ""],
    "part_floor_yuan": ["", "", ""],
    "part_cap_yuan": ["", "500,000.00", ""],
}


def test_tiered_and_summed_standards_are_built_from_yuan_and_percent(app_client) -> None:
    client, headers = app_client
    tiers = config_from_form(_form(VALID | TIERS)).config["standard"]
    assert tiers == {
        "kind": "tiers",
        "base": "revenue_fen",
        "cap_fen": 40_000_000,
        "tiers": [
            {"at_least": 10_000_000_000, "amount_fen": 20_000_000, "label": "营收首次突破1亿元"},
            {"at_least": 50_000_000_000, "rate": "0.001", "label": "营收首次突破5亿元"},
        ],
    }
    summed = config_from_form(_form(VALID | SUM)).config["standard"]
    assert summed == {
        "kind": "sum",
        "cap_fen": 100_000_000,
        "parts": [
            {"kind": "fixed", "amount_fen": 10_000_000},
            {"kind": "rate", "base": "tax_paid_fen", "rate": "0.03", "cap_fen": 50_000_000},
        ],
    }
    for extra in (TIERS, SUM):  # saved as the API saves it, and opened again to the same standard
        code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
        client.cookies.clear()
        r = client.post("/web/workbench/editor/new", data=VALID | extra | {"code": code}, headers=headers["page"],
                        follow_redirects=False)  # fmt: skip
        assert r.status_code == 303, re.findall(r'<li class="error-item">(.*?)</li>', r.text)
        config = client.get(f"/api/v1/fund-items/{code}", headers={"Authorization": headers["Authorization"]}).json()
        config = config["version"]["config"]
        values, rows = form_from_config(config)
        again = config_from_form(_form(_as_post(values, rows))).config["standard"]
        assert FundItemConfig.model_validate(config | {"standard": again}) == FundItemConfig.model_validate(config)
    # a wrong tier order is refused with the API's message, on the page as in the API
    wrong = VALID | TIERS | {"tier_at_least": ["500,000,000.00", "100,000,000.00", ""]}
    code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
    _, api = _api_messages(client, headers, code, wrong)
    status, page = _page_messages(client, headers["page"], wrong | {"code": code})
    assert status == 422 and page == api and "严格递增" in api[0]


def test_the_worked_example_shows_the_arithmetic_in_yuan_for_a_chosen_enterprise(app_client) -> None:
    client, headers = app_client
    uscc = demo_enterprise_uscc()
    client.cookies.clear()
    r = client.post("/web/workbench/editor/example", data=VALID | SUM | {"example_uscc": uscc}, headers=headers["page"])
    assert r.status_code == 200
    with transaction(headers["db_url"]) as session:
        enterprise = enterprises.get_by_uscc(session=session, uscc=uscc)
        expected = compute_amount(config_from_form(_form(VALID | SUM)).config["standard"], enterprise)
        name = enterprise.name
    body = html.unescape(r.text)
    assert f'<option value="{uscc}" selected>{name}</option>' in body
    assert f"测算金额 {format_yuan(expected.amount_fen)}（{to_capitals(expected.amount_fen)}）" in body
    assert f"计算过程：{expected.explanation}" in body and "（1）定额奖补 100,000.00 元；（2）按纳税额的 3% 计" in body
    assert "纳税额：" in body and " 元" in body  # the base value used, in yuan
    bad = client.post("/web/workbench/editor/example", data=VALID | SUM | {"part_rate_percent": ["", "三", ""]},
                      headers=headers["page"])  # fmt: skip
    assert "比例：“三”不是百分数" in html.unescape(bad.text)


def test_the_sms_preview_renders_every_stage_of_the_mode_with_sample_text(app_client) -> None:
    client, headers = app_client
    client.cookies.clear()
    r = client.post("/web/workbench/editor/sms-preview", data=REVIEW | {"standard_kind": "fixed",
                    "standard_amount_yuan": "16,000.00", "supplement_days": "5"}, headers=headers["page"])  # fmt: skip
    assert r.status_code == 200
    rows = [html.unescape(t) for t in re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>", r.text)]
    texts = dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>", html.unescape(r.text)))
    assert rows and "申报受理（申报审批）" in texts and "申报受理（即申即享）" not in texts  # the item's mode only
    assert "核定金额壹万陆仟元整（16,000.00元）" in texts["审核通过"]
    assert texts["审核通过"].startswith("【惠企直达】") and REVIEW["name"] in texts["审核通过"]
    assert re.search(r"请于\d{4}年\d{1,2}月\d{1,2}日前登录平台补正", texts["退回补正"])
    assert "王敏 0717-6222001" in texts["未通过（含不足之处）"]


def test_live_validation_of_each_section_gives_the_api_messages(app_client) -> None:
    """Every invalid form of INVALID checked section by section, as the editor does on change: together the sections
    show exactly the API's messages, each next to its own section, and nothing is saved."""
    client, headers = app_client
    for case, change in INVALID.items():
        data = (VALID if change.get("mode") is None else {}) | change
        code = f"YC-T-{uuid.uuid4().hex[:8].upper()}"
        _, api = _api_messages(client, headers, f"{code}X", data)
        live: list[str] = []
        for section in SECTIONS:
            client.cookies.clear()
            r = client.post(f"/web/workbench/editor/validate?section={section}", data=data | {"code": code},
                            headers=headers["page"])  # fmt: skip
            assert r.status_code == 200, (case, section)
            live += [html.unescape(m) for m in re.findall(r'<p class="error field-error"[^>]*>(.*?)</p>', r.text)]
        assert sorted(live) == sorted(api), case
        saved = client.get(f"/api/v1/fund-items/{code}", headers={"Authorization": headers["Authorization"]})
        assert saved.status_code == 404  # checked, never saved
    client.cookies.clear()
    r = client.post("/web/workbench/editor/validate?section=window", data=VALID | {"code": "YC-T-OK"},
                    headers=headers["page"])  # fmt: skip
    assert r.status_code == 200 and "field-error" not in r.text  # a valid form shows nothing
