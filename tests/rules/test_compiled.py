"""The calculator's compiled evaluator says exactly what rules.conditions says: the same truth and the same 不足之处,
over random trees (all / any / not, every field type) and random facts with missing values, twice over (the second
pass answers from the explained-leaf cache)."""

import random
from datetime import date

from rules.compiled import compile_conditions
from rules.conditions import evaluate, facts_of, parse_condition, shortfalls, truth

LEAVES = [
    {"field": "employees", "op": "ge", "value": 50},
    {"field": "employees", "op": "between", "value": [10, 300]},
    {"field": "revenue_fen", "op": "gt", "value": 1_000_000_00},
    {"field": "rd_ratio_bp", "op": "le", "value": 500},
    {"field": "registered_on", "op": "lt", "value": "2020-01-01"},
    {"field": "region_code", "op": "prefix", "value": "4205"},
    {"field": "size_class", "op": "in", "value": ["small", "micro"]},
    {"field": "credit_status", "op": "ne", "value": "dishonest"},
    {"field": "tags", "op": "has_any_tags", "value": ["高新技术企业", "专精特新"]},
    {"field": "tags", "op": "has_all_tags", "value": ["高新技术企业", "科技型中小企业"]},
    {"field": "tags", "op": "has_tag", "value": "专精特新"},
    {"field": "credit_status", "op": "eq", "value": "good"},
    {"field": "region_code", "op": "not_in", "value": ["420100"]},
]


def _tree(rng: random.Random, depth: int) -> dict:
    if depth == 0 or rng.random() < 0.3:
        return dict(rng.choice(LEAVES))
    kind = rng.choice(["all", "any", "not"])
    if kind == "not":
        return {"op": "not", "item": _tree(rng, depth - 1)}
    return {"op": kind, "items": [_tree(rng, depth - 1) for _ in range(rng.randint(1, 3))]}


def _facts(rng: random.Random) -> dict:
    maybe = lambda value: None if rng.random() < 0.2 else value  # noqa: E731
    return facts_of({
        "employees": maybe(rng.randint(0, 400)),
        "revenue_fen": maybe(rng.randint(0, 3_000_000_00)),
        "rd_ratio_bp": maybe(rng.randint(0, 1000)),
        "registered_on": maybe(date(rng.randint(2010, 2025), 1, 1)),
        "region_code": maybe(rng.choice(["420502", "420100", "420506"])),
        "size_class": maybe(rng.choice(["small", "micro", "large"])),
        "credit_status": maybe(rng.choice(["good", "dishonest"])),
        "tags": rng.sample(["高新技术企业", "专精特新", "科技型中小企业"], rng.randint(0, 3)),
    })  # fmt: skip


def test_compiled_equals_the_rules() -> None:
    rng = random.Random(13)
    for _ in range(120):
        tree = parse_condition(_tree(rng, 3))
        compiled = compile_conditions(tree)
        for _ in range(4):
            facts = _facts(rng)
            expected = [r.text for r in shortfalls(tree, facts)]
            for _ in range(2):
                value, blocking = compiled.explain(facts)
                assert value == truth(tree, facts) == compiled.truth(facts)
                assert [b.text for b in blocking] == expected
                assert [b.missing for b in blocking] == [r.status == "missing" for r in shortfalls(tree, facts)]
            assert (value is True) == evaluate(tree, facts).eligible


def test_rate_times_base_in_integers_equals_the_exact_fraction() -> None:
    """rules.amounts computes base × rate in integers now; the result is the exact fraction rounded half-up."""
    from decimal import Decimal
    from fractions import Fraction

    from rules.amounts import _times_rate, round_half_up

    rng = random.Random(7)
    for _ in range(3000):
        base = rng.randint(-10**9, 10**12)
        rate = Decimal(rng.randint(0, 10**6)) / Decimal(10 ** rng.randint(0, 7))
        exact = Fraction(base) * Fraction(rate)
        amount, text = _times_rate(base, rate)
        assert amount == max(0, round_half_up(exact))
        assert ("基数为负" in text) == (exact < 0)
        assert ("四舍五入" in text) == (exact >= 0 and exact.denominator != 1)
