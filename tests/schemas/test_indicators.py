"""Budget indicators (指标) on a fund item's funding sources: optional, each code checked against its code list (data
files that state their source), shown with names; an unknown code is refused at its field, in Chinese."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.codelists import LISTS, code_list
from schemas.fund_items import Budget, FundingSource

CITY = {
    "name": "市级财政",
    "share_bp": 6000,
    "indicator_no": "宜财企指〔2026〕12号",
    "budget_level": "3",
    "exp_func_code": "2150806",
    "gov_eco_code": "50799",
    "dep_eco_code": "31299",
    "fund_type_code": "1",
}
DISTRICT = CITY | {"name": "区级财政", "share_bp": 4000, "indicator_no": "西财企指〔2026〕3号", "budget_level": "4"}


def test_every_code_list_states_its_source_and_holds_the_enterprise_subsidy_codes() -> None:
    for key in LISTS:
        codes = code_list(key)
        assert codes.name and ("财政" in codes.source or "预算法" in codes.source)
        assert codes.codes and all(isinstance(n, str) and n for n in codes.codes.values())
    assert code_list("exp_func").name_of("21508") == "支持中小企业发展和管理支出"
    assert code_list("gov_eco").name_of("507") == code_list("dep_eco").name_of("312") == "对企业补助"


def test_a_shared_budget_carries_one_indicator_per_source_shown_with_names() -> None:
    budget = Budget(year=2026, total_fen=10_000_000, sources=[CITY, DISTRICT])
    city, district = budget.sources
    assert (city.amount_fen, district.amount_fen) == (6_000_000, 4_000_000)
    assert city.indicator_names() == {
        "指标文号": "宜财企指〔2026〕12号",
        "预算级次": "3 市级",
        "功能分类科目": "2150806 中小企业发展专项",
        "政府经济分类": "50799 其他对企业补助",
        "部门经济分类": "31299 其他对企业补助",
        "资金性质": "1 一般公共预算资金",
    }
    assert district.indicator_names()["预算级次"] == "4 县（区）级"


def test_indicator_fields_are_optional() -> None:
    plain = FundingSource(name="市级财政", share_bp=10000)
    assert plain.indicator_no is None and plain.indicator_names() == {}


@pytest.mark.parametrize(
    ("field", "code", "list_name"),
    [
        ("exp_func_code", "2150807", "支出功能分类科目"),
        ("gov_eco_code", "312", "政府预算支出经济分类科目"),
        ("dep_eco_code", "507", "部门预算支出经济分类科目"),
        ("fund_type_code", "9", "资金性质"),
        ("budget_level", "6", "预算级次"),
    ],
)
def test_an_unknown_code_is_refused_at_its_field(field: str, code: str, list_name: str) -> None:
    with pytest.raises(ValidationError) as info:
        FundingSource(**(CITY | {field: code}))
    (error,) = info.value.errors()
    assert error["loc"] == (field,) and error["type"] == "code_unknown"
    assert f"“{code}”不在{list_name}" in error["msg"] and "市级财政" in error["msg"]
