"""FundItemConfig: every cross-field rule reported at its field, with its rule code, in Chinese."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from cli.demo import DEMO_CONFIG, DEMO_ITEMS, NO_APPLICATION_CONFIG, REVIEW_CONFIG
from schemas.fund_items import (
    EXAMPLE_INSTANT,
    EXAMPLE_NO_APPLICATION,
    EXAMPLE_REVIEW,
    ConfigInvalid,
    FundItemConfig,
    FundItemCreate,
    explain_errors,
    field_label,
    validate_config,
)

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def errors_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        FundItemConfig.model_validate(data)
    return explain_errors(info.value.errors(include_url=False))


def mutated(base: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    change(data)
    return data


# ---------------------------------------------------------------- valid configurations


@pytest.mark.parametrize(
    "data", [EXAMPLE_INSTANT, EXAMPLE_REVIEW, EXAMPLE_NO_APPLICATION, *[cfg for _, _, cfg in DEMO_ITEMS]]
)
def test_examples_and_demo_configs_are_valid_and_round_trip(data: dict[str, Any]) -> None:
    config = FundItemConfig.model_validate(data)
    stored = config.to_json()
    assert FundItemConfig.model_validate(stored) == config
    # The case activities read these keys straight from the stored JSON.
    assert {"conditions", "standard", "pay_summary_code", "fund_source", "officer"} <= stored.keys()
    assert stored["fund_source"] and stored["officer"]


def test_derived_fields_and_finance_auto_approval() -> None:
    instant = FundItemConfig.model_validate(DEMO_CONFIG)
    assert instant.officer == "市经信局中小企业科 0717-6222001"
    assert instant.finance_auto_approval  # fixed amount: fully quantified
    review = FundItemConfig.model_validate(REVIEW_CONFIG)
    assert review.fund_source == "市级财政"  # the first funding source
    assert review.officer == "市经信局投资与技术改造科刘洋 0717-6222018"
    assert not review.finance_auto_approval  # amount set by reviewers: finance approves by hand
    assert [len(s.departments) for s in review.approval.stages] == [1, 2]
    stable = FundItemConfig.model_validate(NO_APPLICATION_CONFIG)
    assert stable.finance_auto_approval
    assert stable.no_application and stable.no_application.consent
    assert stable.no_application.consent.on_no_answer == "pay_on_file"


def test_funding_amounts_follow_the_shares_and_the_last_takes_the_remainder() -> None:
    data = mutated(
        EXAMPLE_REVIEW,
        lambda d: d["budget"].update(
            total_fen=100_001, sources=[{"name": "市级财政", "share_bp": 6000}, {"name": "区级财政", "share_bp": 4000}]
        ),
    )
    budget = FundItemConfig.model_validate(data).budget
    assert [s.amount_fen for s in budget.sources] == [60_000, 40_001]
    given = mutated(data, lambda d: d["budget"]["sources"][0].update(amount_fen=60_001))
    assert [s.amount_fen for s in FundItemConfig.model_validate(given).budget.sources] == [60_001, 40_000]


# ---------------------------------------------------------------- rule errors: field, rule, Chinese message


def _stage(**kw: Any) -> dict[str, Any]:
    return {"key": "first_review", "name": "初审", "departments": ["YC-JXJ"], "deadline_working_days": 5,
            "on_timeout": "auto_reject"} | kw  # fmt: skip


RULE_CASES: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], None], tuple, str, str]] = [
    # (id, base, change, loc, rule, words the message must contain)
    ("window order", EXAMPLE_INSTANT, lambda d: d.update(window={"start": "2026-06-01", "end": "2026-05-01"}),
     ("window", "end"), "window_order", "早于申报起始日"),
    ("shares not 100%", EXAMPLE_REVIEW,
     lambda d: d["budget"].update(sources=[{"name": "市级财政", "share_bp": 6000}, {"name": "区级财政", "share_bp": 3000}]),
     ("budget", "sources"), "shares_sum", "合计须为 10000"),
    ("amount against share", EXAMPLE_REVIEW, lambda d: d["budget"]["sources"][1].update(amount_fen=1),
     ("budget", "sources", 1, "amount_fen"), "amount_share", "与分担比例"),
    ("amounts not summing", EXAMPLE_REVIEW,
     lambda d: d["budget"].update(total_fen=100, sources=[{"name": "市级财政", "share_bp": 5000, "amount_fen": 50},
                                                         {"name": "区级财政", "share_bp": 5000, "amount_fen": 49}]),
     ("budget", "sources"), "amounts_sum", "不等于预算总额"),
    ("duplicate source", EXAMPLE_REVIEW,
     lambda d: d["budget"].update(sources=[{"name": "市级财政", "share_bp": 5000}, {"name": "市级财政", "share_bp": 5000}]),
     ("budget", "sources", 1, "name"), "source_duplicate", "重复"),
    ("instant with stages", EXAMPLE_INSTANT, lambda d: d["approval"].update(stages=[_stage()]),
     ("approval", "stages"), "instant_no_stages", "即申即享事项不设部门审核环节"),
    ("instant with publicity", EXAMPLE_INSTANT, lambda d: d["approval"].update(publicity={"working_days": 5}),
     ("approval", "publicity"), "instant_no_publicity", "不设公示"),
    ("instant finance by hand", EXAMPLE_INSTANT, lambda d: d["approval"]["finance"].update(auto_when_quantified=False),
     ("approval", "finance", "auto_when_quantified"), "instant_finance_auto", "财政自动审核"),
    ("instant manual amount", EXAMPLE_INSTANT, lambda d: d.update(standard={"kind": "manual", "max_fen": 100}),
     ("standard",), "standard_not_quantified", "完全量化"),
    ("instant without window", EXAMPLE_INSTANT, lambda d: d.update(window=None),
     ("window",), "window_required", "申报期"),
    ("instant with no_application options", EXAMPLE_INSTANT,
     lambda d: d.update(no_application=EXAMPLE_NO_APPLICATION["no_application"]),
     ("no_application",), "no_application_options_unused", "不使用免申即享选项"),
    ("review without stages", EXAMPLE_REVIEW, lambda d: d["approval"].update(stages=[]),
     ("approval", "stages"), "review_needs_stages", "至少需要一个部门审核环节"),
    ("review without materials", EXAMPLE_REVIEW, lambda d: d["guide"].update(materials=[]),
     ("guide", "materials"), "review_needs_materials", "申报材料"),
    ("no_application with stages", EXAMPLE_NO_APPLICATION, lambda d: d["approval"].update(stages=[_stage()]),
     ("approval", "stages"), "no_application_no_stages", "免申即享事项不设部门审核环节"),
    ("no_application with supplement", EXAMPLE_NO_APPLICATION, lambda d: d["approval"].update(supplement={}),
     ("approval", "supplement"), "no_application_no_supplement", "不退回补正"),
    ("no_application without options", EXAMPLE_NO_APPLICATION, lambda d: d.update(no_application=None),
     ("no_application",), "no_application_options_required", "意愿确认"),
    ("name without region", EXAMPLE_INSTANT, lambda d: d.update(name="专精特新中小企业一次性奖励"),
     ("name",), "name_region", "行政区划“宜昌市”"),
    ("escalate without target", EXAMPLE_REVIEW,
     lambda d: d["approval"]["stages"][0].update(on_timeout="escalate", escalate_to=None),
     ("approval", "stages", 0, "escalate_to"), "escalate_needs_target", "须填写上报部门"),
    ("target without escalate", EXAMPLE_REVIEW, lambda d: d["approval"]["stages"][0].update(escalate_to="YC-SJJ"),
     ("approval", "stages", 0, "escalate_to"), "escalate_target_unused", "不应填写上报部门"),
    ("escalate to itself", EXAMPLE_REVIEW, lambda d: d["approval"]["stages"][1].update(escalate_to="YC-FGW"),
     ("approval", "stages", 1, "escalate_to"), "escalate_to_self", "本环节的审核部门"),
    ("reminder after deadline", EXAMPLE_REVIEW,
     lambda d: d["approval"]["stages"][0].update(remind_before_working_days=5),
     ("approval", "stages", 0, "remind_before_working_days"), "reminder_before_deadline", "须小于办理时限"),
    ("duplicate stage key", EXAMPLE_REVIEW, lambda d: d["approval"]["stages"][1].update(key="first_review"),
     ("approval", "stages", 1, "key"), "stage_key_duplicate", "重复"),
    ("duplicate joint department", EXAMPLE_REVIEW,
     lambda d: d["approval"]["stages"][1].update(departments=["YC-CZJ", "YC-CZJ"]),
     ("approval", "stages", 1, "departments", 1), "stage_department_duplicate", "重复"),
    ("shortfall order missing", EXAMPLE_NO_APPLICATION,
     lambda d: d["no_application"]["shortfall"].update(order_by=[]),
     ("no_application", "shortfall", "order_by"), "shortfall_order_required", "须写明兑付顺序"),
    ("pro rata with order", EXAMPLE_NO_APPLICATION, lambda d: d["no_application"]["shortfall"].update(policy="pro_rata"),
     ("no_application", "shortfall", "order_by"), "shortfall_order_unused", "不使用兑付顺序"),
    ("unknown sort key", EXAMPLE_NO_APPLICATION,
     lambda d: d["no_application"]["shortfall"].update(order_by=[{"key": "tags"}]),
     ("no_application", "shortfall", "order_by", 0, "key"), "sort_key_unknown", "排序依据"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "base", "change", "loc", "rule", "words"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule_errors_name_field_and_rule(
    case: str, base: dict, change: Callable, loc: tuple, rule: str, words: str
) -> None:
    errors = errors_of(mutated(base, change))
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, rule)], errors
    message = errors[0]["msg"]
    assert words in message and CHINESE.search(message)
    # The message names the field it concerns.
    assert any(part in message for part in loc if isinstance(part, str)), message


def test_several_problems_are_reported_at_once() -> None:
    def change(d: dict[str, Any]) -> None:
        d["approval"]["stages"][0].update(on_timeout="escalate", escalate_to=None, remind_before_working_days=9)
        d["window"] = {"start": "2026-06-01", "end": "2026-05-01"}
        d["budget"]["sources"][0]["share_bp"] = 1

    errors = errors_of(mutated(EXAMPLE_REVIEW, change))
    assert {e["type"] for e in errors} == {
        "escalate_needs_target",
        "reminder_before_deadline",
        "window_order",
        "shares_sum",
    }


def test_condition_and_standard_errors_keep_their_chinese_wording() -> None:
    bad = mutated(EXAMPLE_INSTANT, lambda d: d.update(conditions={"field": "employes", "op": "ge", "value": 5}))
    [error] = errors_of(bad)
    assert error["loc"][0] == "conditions"
    assert error["msg"].startswith("未知的条件字段 field='employes'")
    bad = mutated(EXAMPLE_INSTANT, lambda d: d.update(conditions={"op": "all", "items": []}))
    assert "不能为空" in errors_of(bad)[0]["msg"]
    bad = mutated(EXAMPLE_INSTANT, lambda d: d.update(standard={"kind": "rate", "base": "employees", "rate": "0.1"}))
    assert "不是金额字段" in errors_of(bad)[0]["msg"]


def test_builtin_errors_are_worded_in_chinese_with_the_field_title() -> None:
    data = mutated(EXAMPLE_INSTANT, lambda d: (d.pop("policy"), d.update(mode="online", colour="red")))
    errors = {e["loc"]: e for e in errors_of(data)}
    assert errors[("policy",)]["msg"] == "政策依据文件（policy）：缺少必填项（规则：missing）"
    assert errors[("mode",)]["msg"].startswith("兑付方式（mode）：取值必须是 'no_application', 'instant' or 'review'")
    assert errors[("colour",)]["type"] == "extra_forbidden" and "不认识的字段" in errors[("colour",)]["msg"]
    assert field_label(FundItemConfig, ["approval", "stages", 0, "deadline_working_days"]) == "办理时限（工作日）"
    assert field_label(FundItemCreate, ["body", "config", "window", "start"]) is None  # "body" is not a field
    assert field_label(FundItemCreate, ["config", "window", "start"]) == "申报起始日"


def test_validate_config_raises_config_invalid_with_every_problem() -> None:
    with pytest.raises(ConfigInvalid) as info:
        validate_config(mutated(EXAMPLE_INSTANT, lambda d: d["approval"].update(stages=[_stage()])))
    assert info.value.errors[0]["type"] == "instant_no_stages"
    assert "approval.stages：即申即享事项不设部门审核环节" in str(info.value)


def test_sms_template_overrides_are_keyed_by_known_stages() -> None:
    ok = mutated(EXAMPLE_INSTANT, lambda d: d.update(sms_templates={"paid": "SMS_154950909"}))
    assert FundItemConfig.model_validate(ok).sms_templates == {"paid": "SMS_154950909"}
    bad = mutated(EXAMPLE_INSTANT, lambda d: d.update(sms_templates={"payday": "SMS_1"}))
    [error] = errors_of(bad)
    assert error["loc"][:2] == ("sms_templates", "payday") and error["type"] == "enum"
