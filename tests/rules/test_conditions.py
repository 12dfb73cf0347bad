"""Condition trees: parsing with clear errors, per-leaf explanations (不足之处) and Kleene logic."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from db.models import Enterprise
from rules.conditions import evaluate, facts_of
from schemas.conditions import (
    CONDITION_ADAPTER,
    EXAMPLE_CONDITION,
    AllOf,
    Condition,
    Leaf,
    dump_condition,
    parse_condition,
)
from schemas.fields import FIELDS, LEAF_OPERATORS, OPERATORS_BY_TYPE, field_catalogue

BASE_FACTS: dict[str, Any] = {
    "region_code": "420502",
    "industry_code": "C3911",
    "size_class": "small",
    "registered_on": date(2020, 5, 8),
    "employees": 32,
    "revenue_fen": 150_000_000,
    "tax_paid_fen": 1_234_567,
    "rd_ratio_bp": 250,
    "tags": ["高新技术企业", "专精特新"],
    "credit_status": "good",
    "rule_tags": [],
}


def leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def one(cond: dict[str, Any], **facts: Any) -> Any:
    """The single leaf result of evaluating `cond` on BASE_FACTS changed by `facts`."""
    result = evaluate(cond, {**BASE_FACTS, **facts})
    assert len(result.items) == 1
    return result.items[0]


# ---------------------------------------------------------------- every operator: met / unmet / missing

# (field, op, value, a fact that meets it, a fact that does not); None facts are "missing" for all but tags.
OPERATOR_CASES = [
    ("region_code", "eq", "420502", "420502", "420503"),
    ("region_code", "ne", "420502", "420503", "420502"),
    ("region_code", "in", ["420502", "420503"], "420503", "110101"),
    ("region_code", "not_in", ["110101"], "420502", "110101"),
    ("region_code", "prefix", "4205", "420502001", "420602"),
    ("industry_code", "prefix", "C39", "C3911", "C27"),
    ("size_class", "eq", "small", "small", "medium"),
    ("size_class", "ne", "large", "small", "large"),
    ("size_class", "in", ["small", "micro"], "micro", "medium"),
    ("size_class", "not_in", ["large"], "medium", "large"),
    ("credit_status", "eq", "good", "good", "dishonest"),
    ("employees", "eq", 50, 50, 49),
    ("employees", "ne", 50, 49, 50),
    ("employees", "gt", 50, 51, 50),
    ("employees", "ge", 50, 50, 49),
    ("employees", "lt", 50, 49, 50),
    ("employees", "le", 50, 50, 51),
    ("employees", "between", [10, 50], 10, 51),
    ("revenue_fen", "ge", 1_000_000_000, 1_000_000_000, 999_999_999),
    ("tax_paid_fen", "between", [100, 200], 200, 99),
    ("rd_ratio_bp", "ge", 300, 300, 299),
    ("registered_on", "le", date(2023, 12, 31), date(2023, 12, 31), date(2024, 1, 1)),
    ("registered_on", "gt", date(2020, 1, 1), date(2020, 1, 2), date(2020, 1, 1)),
    ("registered_on", "between", [date(2020, 1, 1), date(2020, 12, 31)], date(2020, 6, 1), date(2021, 1, 1)),
    ("registered_on", "eq", date(2020, 1, 1), date(2020, 1, 1), date(2020, 1, 2)),
    ("registered_on", "ne", date(2020, 1, 1), date(2020, 1, 2), date(2020, 1, 1)),
    ("registered_on", "ge", date(2020, 1, 1), date(2020, 1, 1), date(2019, 12, 31)),
    ("registered_on", "lt", date(2020, 1, 1), date(2019, 12, 31), date(2020, 1, 1)),
    ("tags", "has_tag", "专精特新", ["专精特新"], ["高新技术企业"]),
    ("tags", "has_any_tags", ["专精特新", "小巨人"], ["小巨人"], ["高新技术企业"]),
    ("tags", "has_all_tags", ["专精特新", "小巨人"], ["小巨人", "专精特新", "x"], ["小巨人"]),
]


def test_every_operator_is_covered() -> None:
    covered = {(FIELDS[f].type, op) for f, op, *_ in OPERATOR_CASES}
    wanted = {(t, op) for t, ops in OPERATORS_BY_TYPE.items() for op in ops}
    missing_types = {op for op in LEAF_OPERATORS if op not in {op for _, op in covered}}
    assert not missing_types
    # each operator is tried on at least one field type that allows it
    assert {op for _, op in covered} == {op for _, op in wanted}


@pytest.mark.parametrize(("field", "op", "value", "good", "bad"), OPERATOR_CASES)
def test_operator_met_unmet_missing(field: str, op: str, value: Any, good: Any, bad: Any) -> None:
    cond = leaf(field, op, value)
    met = one(cond, **{field: good})
    unmet = one(cond, **{field: bad})
    missing = one(cond, **{field: None})
    assert (met.status, unmet.status) == ("met", "unmet")
    assert met.text.endswith("符合") and met.label == FIELDS[field].label
    assert evaluate(cond, {**BASE_FACTS, field: good}).eligible
    assert not evaluate(cond, {**BASE_FACTS, field: bad}).eligible
    if field == "tags":  # no tags and NULL tags are the same: definitely not held
        assert missing.status == "unmet"
    else:
        assert missing.status == "missing"
        assert missing.text.endswith("暂无数据，无法判断")
        assert evaluate(cond, {**BASE_FACTS, field: None}).outcome == "unknown"


# ---------------------------------------------------------------- explanations


def test_explanation_of_a_shortfall_matches_the_calculator_wording() -> None:
    item = one(leaf("employees", "ge", 50), employees=32)
    assert item.text == "从业人数 ≥ 50 人：实际 32 人，不足 18 人"
    assert item.shortfall == 18
    assert (item.expected, item.actual) == (50, 32)


def test_money_is_shown_in_yuan_with_two_decimals_and_shortfall_in_fen() -> None:
    item = one(leaf("revenue_fen", "ge", 2_000_000_000), revenue_fen=1_500_000_050)
    assert item.text == "营业收入 ≥ 20,000,000.00 元：实际 15,000,000.50 元，不足 4,999,999.50 元"
    assert item.shortfall == 499_999_950


def test_strict_bounds_count_the_smallest_step() -> None:
    assert one(leaf("employees", "gt", 50), employees=50).shortfall == 1
    assert one(leaf("employees", "lt", 50), employees=50).text == "从业人数 < 50 人：实际 50 人，超出 1 人"
    assert one(leaf("revenue_fen", "gt", 100), revenue_fen=100).text.endswith("不足 0.01 元")


def test_ratio_is_shown_in_percent() -> None:
    item = one(leaf("rd_ratio_bp", "ge", 300), rd_ratio_bp=250)
    assert item.text == "研发投入占比 ≥ 3.00%：实际 2.50%，不足 0.50 个百分点"
    assert item.shortfall == 50


def test_dates_are_shown_in_chinese_and_gaps_in_days() -> None:
    late = one(leaf("registered_on", "le", "2023-12-31"), registered_on=date(2024, 3, 1))
    assert late.text == "成立日期 ≤ 2023年12月31日：实际 2024年03月01日，晚 61 天"
    assert late.shortfall == 61
    early = one(leaf("registered_on", "ge", "2020-01-10"), registered_on=date(2020, 1, 1))
    assert early.text.endswith("早 9 天") and early.shortfall == 9


def test_between_reports_the_side_it_misses() -> None:
    below = one(leaf("employees", "between", [10, 100]), employees=4)
    above = one(leaf("employees", "between", [10, 100]), employees=130)
    assert below.text == "从业人数 介于 10 人 至 100 人（含）：实际 4 人，不足 6 人"
    assert above.text.endswith("超出 30 人") and above.shortfall == 30
    assert one(leaf("employees", "eq", 10), employees=13).text.endswith("超出 3 人")


def test_enum_and_string_texts_use_labels_and_have_no_shortfall() -> None:
    item = one(leaf("size_class", "in", ["small", "micro"]), size_class="medium")
    assert item.text == "企业规模 属于 小型、微型：实际 中型，不符合"
    assert item.shortfall is None
    assert one(leaf("region_code", "prefix", "4205"), region_code="420602").text == (
        "注册地行政区划 位于 宜昌市：实际 襄阳市其他地区，不符合"
    )
    assert one(leaf("industry_code", "eq", "C3911"), industry_code="").text.endswith("实际 （空），不符合")


def test_tag_texts_name_what_is_missing() -> None:
    item = one(leaf("tags", "has_all_tags", ["高新技术企业", "小巨人"]), tags=["高新技术企业"])
    assert item.text == "资质标签 同时具有：高新技术企业、小巨人：实际 高新技术企业，缺少 小巨人"
    assert one(leaf("tags", "has_tag", "小巨人"), tags=[]).text == "资质标签 具有“小巨人”：实际 无，不符合"


def test_missing_data_is_named() -> None:
    item = one(leaf("tax_paid_fen", "ge", 100), tax_paid_fen=None)
    assert item.text == "纳税额 ≥ 1.00 元：暂无数据，无法判断"
    assert (item.status, item.actual, item.shortfall) == ("missing", None, None)


def test_negation_is_explained_as_the_requirement_to_meet() -> None:
    inverse = one({"op": "not", "item": leaf("employees", "ge", 50)}, employees=60)
    assert inverse.text == "从业人数 < 50 人：实际 60 人，超出 11 人"
    assert (inverse.op, inverse.negated, inverse.status) == ("ge", True, "unmet")
    dishonest = one({"op": "not", "item": leaf("credit_status", "eq", "dishonest")}, credit_status="dishonest")
    assert dishonest.text == "信用状态 ≠ 失信：实际 失信，不符合"
    no_tag = one({"op": "not", "item": leaf("tags", "has_tag", "失信联合惩戒")}, tags=["失信联合惩戒"])
    assert no_tag.text == "资质标签 不具有“失信联合惩戒”：实际 失信联合惩戒，不符合"
    outside = one({"op": "not", "item": leaf("employees", "between", [10, 20])}, employees=15)
    assert outside.text.startswith("从业人数 不介于 10 人 至 20 人（含）") and outside.shortfall is None
    double = one({"op": "not", "item": {"op": "not", "item": leaf("employees", "ge", 50)}}, employees=60)
    assert (double.status, double.negated) == ("met", False)
    assert one({"op": "not", "item": leaf("region_code", "prefix", "42")}).text.startswith(
        "注册地行政区划 不位于 湖北省"
    )


# ---------------------------------------------------------------- Kleene logic and 不足之处


def kleene(cond: dict[str, Any], **facts: Any) -> str:
    return evaluate(cond, {**BASE_FACTS, **facts}).outcome


T = leaf("size_class", "eq", "small")  # true on BASE_FACTS
F = leaf("size_class", "eq", "large")  # false
U = leaf("tax_paid_fen", "ge", 1)  # unknown when tax_paid_fen is missing


@pytest.mark.parametrize(
    ("cond", "outcome"),
    [
        ({"op": "all", "items": [T, U]}, "unknown"),
        ({"op": "all", "items": [F, U]}, "false"),
        ({"op": "all", "items": [T, T]}, "true"),
        ({"op": "any", "items": [T, U]}, "true"),
        ({"op": "any", "items": [F, U]}, "unknown"),
        ({"op": "any", "items": [F, F]}, "false"),
        ({"op": "not", "item": U}, "unknown"),
        ({"op": "not", "item": {"op": "all", "items": [F, U]}}, "true"),
        ({"op": "not", "item": {"op": "any", "items": [F, U]}}, "unknown"),
        ({"op": "not", "item": {"op": "any", "items": [T, U]}}, "false"),
    ],
)
def test_three_valued_logic(cond: dict[str, Any], outcome: str) -> None:
    result = evaluate(cond, {**BASE_FACTS, "tax_paid_fen": None})
    assert result.outcome == outcome
    assert result.eligible is (outcome == "true")


def test_unmet_texts_are_the_leaves_that_block_eligibility() -> None:
    cond = {
        "op": "all",
        "items": [
            leaf("employees", "ge", 50),
            {"op": "any", "items": [leaf("tags", "has_tag", "小巨人"), leaf("rd_ratio_bp", "ge", 200)]},
            {"op": "any", "items": [leaf("tags", "has_tag", "小巨人"), leaf("tax_paid_fen", "ge", 1)]},
        ],
    }
    result = evaluate(cond, {**BASE_FACTS, "tax_paid_fen": None})
    assert not result.eligible
    assert [i.status for i in result.items] == ["unmet", "unmet", "met", "unmet", "missing"]
    # the first `any` holds, so its unmet tag is no reason; the second fails with both of its items
    assert result.unmet_texts() == [
        "从业人数 ≥ 50 人：实际 32 人，不足 18 人",
        "资质标签 具有“小巨人”：实际 高新技术企业、专精特新，不符合",
        "纳税额 ≥ 0.01 元：暂无数据，无法判断",
    ]
    assert [i.blocking for i in result.items] == [True, False, False, True, True]


def test_an_eligible_enterprise_has_no_unmet_texts() -> None:
    cond = {"op": "any", "items": [leaf("employees", "ge", 50), leaf("size_class", "eq", "small")]}
    result = evaluate(cond, BASE_FACTS)
    assert result.eligible and result.unmet_texts() == []
    assert result.items[0].status == "unmet"


def test_evaluation_serialises_to_json() -> None:
    result = evaluate(EXAMPLE_CONDITION, BASE_FACTS)
    data = result.model_dump(mode="json")
    assert data["items"][4]["expected"] == "2023-12-31"
    assert data["items"][4]["actual"] == "2020-05-08"


# ---------------------------------------------------------------- facts


def test_facts_of_an_enterprise_row_and_of_a_dict_agree() -> None:
    row = Enterprise(
        uscc="91420500MA4F0Q1X2K",
        name="宜昌某某科技有限公司",
        tags=None,
        **{k: v for k, v in BASE_FACTS.items() if k != "tags"},
    )
    facts = facts_of(row)
    assert facts == {**BASE_FACTS, "tags": []}
    assert facts_of({**BASE_FACTS, "registered_on": "2020-05-08", "extra": 1}) == BASE_FACTS
    assert facts_of({})["employees"] is None and facts_of({})["tags"] == []
    assert evaluate(leaf("employees", "ge", 30), row).eligible


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("employees", "32"),
        ("employees", True),
        ("tags", "专精特新"),
        ("registered_on", "2020/05/08"),
        ("size_class", 1),
    ],
)
def test_facts_of_rejects_wrongly_typed_data(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        facts_of({**BASE_FACTS, field: value})


# ---------------------------------------------------------------- validation errors


def error_of(data: Any) -> str:
    with pytest.raises(ValidationError) as info:
        parse_condition(data)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (leaf("staff", "ge", 1), ["staff", "未知的条件字段", "employees"]),
        ({"op": "ge", "value": 1}, ["field", "不是条件组"]),
        ({"op": "some", "items": []}, ["some", "不是条件组"]),
        (leaf("employees", "gte", 1), ["employees", "从业人数", "gte", "无效", "允许的运算符"]),
        (leaf("employees", "prefix", "1"), ["employees", "从业人数", "不支持运算符 prefix", "eq、ne、gt"]),
        (leaf("region_code", "ge", "42"), ["region_code", "不支持运算符 ge", "prefix"]),
        (leaf("tags", "eq", "专精特新"), ["tags", "资质标签", "不支持运算符 eq", "has_tag"]),
        (leaf("size_class", "prefix", "s"), ["size_class", "不支持运算符 prefix"]),
        (leaf("employees", "ge", "50"), ["employees", "运算符 ge", "必须是整数", "'50'"]),
        (leaf("employees", "ge", 50.0), ["employees", "必须是整数"]),
        (leaf("employees", "ge", True), ["employees", "必须是整数"]),
        (leaf("revenue_fen", "ge", 2**63), ["revenue_fen", "超出 64 位整数范围"]),
        (leaf("registered_on", "ge", "2020/01/01"), ["registered_on", "成立日期", "YYYY-MM-DD"]),
        (leaf("registered_on", "ge", "2020-02-30"), ["registered_on", "YYYY-MM-DD"]),
        (leaf("registered_on", "ge", 20200101), ["registered_on", "YYYY-MM-DD"]),
        (leaf("region_code", "eq", 420502), ["region_code", "必须是文本"]),
        (leaf("region_code", "prefix", ""), ["region_code", "prefix", "不能为空"]),
        (leaf("tags", "has_tag", ""), ["tags", "has_tag", "不能为空"]),
        (leaf("tags", "has_any_tags", "专精特新"), ["tags", "has_any_tags", "必须是列表"]),
        (leaf("tags", "has_all_tags", []), ["tags", "has_all_tags", "列表不能为空"]),
        (leaf("region_code", "in", []), ["region_code", "运算符 in", "列表不能为空"]),
        (leaf("region_code", "not_in", ["42", 1]), ["region_code", "not_in", "必须是文本"]),
        (leaf("size_class", "eq", "huge"), ["size_class", "企业规模", "'huge'", "不在允许值", "micro（微型）"]),
        (leaf("credit_status", "in", ["good", "bad"]), ["credit_status", "'bad'", "不在允许值"]),
        (leaf("employees", "between", [100, 50]), ["employees", "between", "下限不大于上限", "100 > 上限 50"]),
        (leaf("registered_on", "between", ["2021-01-01", "2020-01-01"]), ["registered_on", "下限不大于上限"]),
        (leaf("employees", "between", [1, 2, 3]), ["employees", "between", "[下限, 上限]"]),
        (leaf("employees", "between", 5), ["employees", "between", "[下限, 上限]"]),
        ({"field": "employees", "op": "ge"}, ["employees", "缺少取值 value"]),
        ({"op": "all", "items": []}, ["all", "items 不能为空"]),
        ({"op": "any", "items": []}, ["any", "items 不能为空"]),
        ({"op": "not", "item": {"op": "all", "items": [leaf("x", "eq", 1)]}}, ["not.item.all.items.0", "'x'"]),
        ({**leaf("employees", "ge", 1), "note": "x"}, ["note", "Extra inputs are not permitted"]),
    ],
)
def test_validation_errors_name_the_field_and_the_rule(data: Any, words: list[str]) -> None:
    message = error_of(data)
    for word in words:
        assert word in message


def test_example_round_trips_and_dates_are_parsed() -> None:
    tree = parse_condition(EXAMPLE_CONDITION)
    assert isinstance(tree, AllOf)
    dated = tree.items[4]
    assert isinstance(dated, Leaf) and dated.value == date(2023, 12, 31)
    assert dump_condition(tree) == EXAMPLE_CONDITION
    assert parse_condition(tree) == tree


def test_condition_is_a_pydantic_field_type_with_examples() -> None:
    class FundItemRules(BaseModel):
        conditions: Condition

    schema = FundItemRules.model_json_schema()
    assert schema["properties"]["conditions"]["examples"] == [EXAMPLE_CONDITION]
    assert set(schema["$defs"]) == {"AllOf", "AnyOf", "NotOf", "Leaf"}
    assert "examples" in CONDITION_ADAPTER.json_schema()
    assert FundItemRules(conditions=EXAMPLE_CONDITION).conditions == parse_condition(EXAMPLE_CONDITION)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_condition_as_a_fastapi_body_gives_a_422_naming_the_field() -> None:
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.post("/check")
    def check(cond: Condition) -> dict[str, bool]:
        return {"eligible": evaluate(cond, BASE_FACTS).eligible}

    client = TestClient(app)
    assert client.post("/check", json=leaf("employees", "ge", 30)).json() == {"eligible": True}
    bad = client.post("/check", json={"op": "all", "items": [leaf("employees", "ge", "thirty")]})
    assert bad.status_code == 422
    assert "employees" in bad.text and "必须是整数" in bad.text
    schema = client.get("/openapi.json").json()
    assert "examples" in str(schema)


def test_field_catalogue_lists_labels_units_and_operators() -> None:
    catalogue = {entry["name"]: entry for entry in field_catalogue()}
    assert catalogue["employees"]["label"] == "从业人数" and catalogue["employees"]["unit"] == "人"
    assert [op["op"] for op in catalogue["tags"]["operators"]] == ["has_tag", "has_any_tags", "has_all_tags"]
    assert catalogue["size_class"]["choices"][0] == {"value": "large", "label": "大型"}
    assert {FIELDS[name].column for name in catalogue} <= set(Enterprise.__table__.c.keys())
