"""The guide's 申报条件 text generated from the condition tree (rules.condition_text): worded as the calculator words
each condition, numbered like an official document, `not` groups read as what must not be the case."""

from __future__ import annotations

from rules.condition_text import conditions_text, leaf_text
from rules.conditions import evaluate
from schemas.conditions import EXAMPLE_CONDITION, parse_condition


def test_the_example_tree_reads_as_a_numbered_guide_paragraph() -> None:
    assert conditions_text(EXAMPLE_CONDITION) == (
        "申报单位须同时满足以下条件：\n"
        "（一）注册地行政区划 位于 宜昌市；\n"
        "（二）企业规模 属于 小型、微型；\n"
        "（三）从业人数 ≥ 50 人；\n"
        "（四）营业收入 介于 10,000,000.00 元 至 500,000,000.00 元（含）；\n"
        "（五）成立日期 ≤ 2023年12月31日；\n"
        "（六）满足以下条件之一：1. 资质标签 具有“高新技术企业”；2. 研发投入占比 ≥ 3.00%；\n"
        "（七）信用状态 ≠ 失信。"
    )


def test_not_groups_list_what_must_not_be_the_case() -> None:
    tree = {
        "op": "all",
        "items": [
            {"field": "employees", "op": "ge", "value": 10},
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
                "op": "not",
                "item": {
                    "op": "all",
                    "items": [
                        {"field": "size_class", "op": "eq", "value": "large"},
                        {"op": "not", "item": {"field": "region_code", "op": "prefix", "value": "4205"}},
                    ],
                },
            },
        ],
    }
    assert conditions_text(tree) == (
        "申报单位须同时满足以下条件：\n"
        "（一）从业人数 ≥ 10 人；\n"
        "（二）不得存在以下任一情形：1. 信用状态 = 失信；2. 资质标签 具有“环保处罚”；\n"
        "（三）不得同时存在以下情形：1. 企业规模 = 大型；2. 注册地行政区划 不位于 宜昌市。"
    )
    root_not = {"op": "not", "item": {"field": "employees", "op": "lt", "value": 5}}
    assert conditions_text(root_not) == "申报单位须符合以下条件：从业人数 ≥ 5 人。"
    assert conditions_text({"op": "any", "items": [{"field": "employees", "op": "ge", "value": 5}]}).startswith(
        "申报单位须满足以下条件之一：\n（一）从业人数 ≥ 5 人"
    )


def test_each_condition_is_worded_exactly_as_the_calculator_explains_it() -> None:
    """The text and the decision cannot disagree: every leaf's wording is the calculator's requirement, negated or
    not, for the same tree."""
    tree = parse_condition(EXAMPLE_CONDITION)
    facts = {"employees": 10, "region_code": "420502", "size_class": "large", "credit_status": "dishonest"}
    explained = evaluate(tree, facts).items
    leaves = [leaf for leaf in _leaves(tree)]
    assert len(explained) == len(leaves)
    for result, (leaf, negated) in zip(explained, leaves, strict=True):
        assert result.text.startswith(leaf_text(leaf, negated=negated) + "："), (result.text, leaf)
        assert leaf_text(leaf, negated=negated) in conditions_text(tree)


def test_deep_levels_are_numbered_apart() -> None:
    leaf = {"field": "employees", "op": "ge", "value": 1}
    tree = {"op": "all", "items": [{"op": "any", "items": [{"op": "all", "items": [{"op": "any", "items": [leaf]}]}]}]}
    assert conditions_text(tree) == (
        "申报单位须同时满足以下条件：\n（一）满足以下条件之一：1. 同时满足以下条件：(1)满足以下条件之一：①从业人数 ≥ 1 人。"
    )


def _leaves(node, negated: bool = False):
    op = getattr(node, "op", None)
    if op == "not":
        yield from _leaves(node.item, not negated)
    elif op in ("all", "any"):
        for item in node.items:
            yield from _leaves(item, negated)
    else:
        yield node, negated


def test_codes_read_as_names_and_counts_have_thousands_separators() -> None:
    text = conditions_text(
        {
            "op": "all",
            "items": [
                {"field": "region_code", "op": "in", "value": ["420502", "420503"]},
                {"field": "industry_code", "op": "prefix", "value": "C39"},
                {"field": "industry_code", "op": "prefix", "value": "C"},
                {"field": "employees", "op": "ge", "value": 50000},
            ],
        }
    )
    assert "属于 西陵区、伍家岗区" in text and "420502" not in text
    assert "所属行业 属于 制造业 C39 大类" in text and "所属行业 属于 制造业；" in text
    assert "从业人数 ≥ 50,000 人" in text
