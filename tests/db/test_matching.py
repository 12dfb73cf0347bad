"""The dry run in SQL equals Python's evaluate + compute_amount over the same rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from cli.generate import generate_enterprises
from db.models import Enterprise
from db.repositories.matching import DryRunResult, dry_run, matched_ids
from db.sql.amounts import MAX_FEN
from rules.amounts import compute_amount
from rules.conditions import evaluate
from tests.db.test_sql_amounts import standards
from tests.db.test_sql_conditions import conditions

CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _replace_archive(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(delete(Enterprise))
    session.expunge_all()
    if rows:
        session.execute(insert(Enterprise), rows)


def _sort_key(order_by: list[dict[str, str]], amount: dict[int, int]) -> Any:
    """Python's version of the stated order: each key with NULLs last, then the USCC bytewise."""

    def key(e: Enterprise) -> tuple[Any, ...]:
        parts: list[Any] = []
        for item in order_by:
            value = amount[e.id] if item["key"] == "amount_fen" else getattr(e, item["key"])
            if isinstance(value, date):
                value = value.toordinal()
            desc = item.get("direction") == "desc"
            parts += [value is None, 0 if value is None else (-value if desc else value)]
        return (*parts, e.uscc.encode())

    return key


ORDERS: list[list[dict[str, str]]] = [
    [{"key": "registered_on"}],
    [{"key": "amount_fen", "direction": "desc"}],
    [{"key": "employees", "direction": "desc"}, {"key": "registered_on", "direction": "desc"}],
    [],
]


Priced = tuple[int, list[Enterprise], dict[int, Any]]


def _priced(session: Session, cond: dict[str, Any], standard: dict[str, Any]) -> Priced:
    """Archive size, the enterprises evaluate() calls eligible, and compute_amount() for each of them."""
    everyone = list(session.scalars(select(Enterprise)))
    matched = [e for e in everyone if evaluate(cond, e).eligible]
    return len(everyone), matched, {e.id: compute_amount(standard, e) for e in matched}


def _reference(priced: Priced, budget: int, order_by: list[dict[str, str]] = ORDERS[0]) -> dict[str, Any]:
    """The dry run computed row by row in Python, the way the SQL is specified."""
    archive_size, matched, results = priced
    amount = {key: min(r.amount_fen, MAX_FEN) for key, r in results.items()}
    ordered = sorted(matched, key=_sort_key(order_by, amount))
    covered: list[Enterprise] = []
    running = 0
    for e in ordered:
        running += amount[e.id]
        if running > budget:
            break
        covered.append(e)
    covered_ids = {e.id for e in covered}

    def groups(key: Any) -> dict[str, tuple[int, int, int]]:
        out: dict[str, list[int]] = {}
        for e in matched:
            sums = out.setdefault(key(e), [0, 0, 0])
            sums[0] += 1
            sums[1] += amount[e.id]
            sums[2] += e.id in covered_ids
        return {k: tuple(v) for k, v in out.items()}

    return {
        "enterprises": archive_size,
        "matched": len(matched),
        "total": sum(amount.values()),
        "unquantified": sum(not r.quantified for r in results.values()),
        "covered": len(covered),
        "covered_amount": sum(amount[e.id] for e in covered),
        "by_region": groups(lambda e: e.region_code[:6]),
        "by_size": groups(lambda e: e.size_class),
    }


def _check(result: DryRunResult, expected: dict[str, Any], budget: int) -> None:
    assert result.enterprises == expected["enterprises"]
    assert result.matched == expected["matched"]
    assert result.total_amount_fen == expected["total"]
    assert result.unquantified == expected["unquantified"]
    assert result.budget.covered == expected["covered"]
    assert result.budget.covered_amount_fen == expected["covered_amount"]
    assert result.budget.uncovered == expected["matched"] - expected["covered"]
    assert result.budget.remaining_fen == budget - expected["covered_amount"]
    assert result.budget.shortfall_fen == max(0, expected["total"] - budget)
    assert result.budget.fully_covered == (budget >= expected["total"])
    assert {g.key: (g.matched, g.amount_fen, g.covered) for g in result.by_region} == expected["by_region"]
    assert {g.key: (g.matched, g.amount_fen, g.covered) for g in result.by_size} == expected["by_size"]
    # the distributions add up to the totals
    for groups in (result.by_region, result.by_size):
        assert sum(g.matched for g in groups) == result.matched
        assert sum(g.amount_fen for g in groups) == result.total_amount_fen
        assert sum(g.covered for g in groups) == result.budget.covered


# --------------------------------------------------------------------------- realistic archive

REALISTIC: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {
            "op": "all",
            "items": [
                {"field": "region_code", "op": "prefix", "value": "4205"},
                {"op": "not", "item": {"field": "credit_status", "op": "eq", "value": "dishonest"}},
                {
                    "op": "any",
                    "items": [
                        {"field": "tags", "op": "has_any_tags", "value": ["高新技术企业", "科技型中小企业"]},
                        {"field": "rd_ratio_bp", "op": "ge", "value": 300},
                    ],
                },
            ],
        },
        {
            "kind": "sum",
            "cap_fen": 50_000_000,
            "parts": [
                {"kind": "fixed", "amount_fen": 2_000_000},
                {"kind": "rate", "base": "tax_paid_fen", "rate": "0.1", "floor_fen": 1_000_000},
                {
                    "kind": "tiers",
                    "base": "revenue_fen",
                    "tiers": [
                        {"at_least": 2_000_000_000, "amount_fen": 5_000_000},
                        {"at_least": 10_000_000_000, "rate_bp": 25},
                    ],
                },
            ],
        },
    ),
    ({"field": "tags", "op": "has_tag", "value": "专精特新"}, {"kind": "fixed", "amount_fen": 10_000_000}),
    (
        {"field": "employees", "op": "ge", "value": 20},
        {"kind": "tiers", "base": "employees", "tiers": [{"at_least": 50, "amount_fen": 300_000}]},
    ),
    ({"field": "size_class", "op": "in", "value": ["large", "medium"]}, {"kind": "manual", "max_fen": 1}),
]


@pytest.mark.parametrize("case", range(len(REALISTIC)))
def test_dry_run_equals_python_over_a_generated_archive(session: Session, case: int) -> None:
    _replace_archive(session, list(generate_enterprises(400, seed=7)))
    cond, standard = REALISTIC[case]
    priced = _priced(session, cond, standard)
    for budget in (0, 123_456_789, 10**15):
        for order_by in ORDERS:
            expected = _reference(priced, budget, order_by)
            result = dry_run(
                session=session, conditions=cond, standard=standard, budget_total_fen=budget, order_by=order_by
            )
            _check(result, expected, budget)
    assert result.matched > 0


# --------------------------------------------------------------------------- property: random trees and rows

REGIONS = ["420502", "420503", "420502001", "420602", "4205", "110101"]


@st.composite
def archive_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 12))
    codes = draw(st.lists(st.text(CODE_CHARS, min_size=10, max_size=10), min_size=count, max_size=count, unique=True))
    rows = []
    for code in codes:
        rows.append(
            {
                "uscc": "91420500" + code,
                "name": "测试企业",
                "region_code": draw(st.sampled_from(REGIONS)),
                "industry_code": draw(st.sampled_from(["C3911", "I6513", ""])),
                "size_class": draw(st.sampled_from(["large", "medium", "small", "micro"])),
                "credit_status": draw(st.sampled_from(["good", "warning", "dishonest"])),
                # few dates, so ties are frequent and the USCC decides
                "registered_on": draw(st.none() | st.sampled_from([date(2020, 1, 1), date(2021, 6, 1)])),
                "employees": draw(st.none() | st.sampled_from([0, 10, 49, 50, 300])),
                "revenue_fen": draw(st.none() | st.integers(-(10**9), 10**12)),
                "tax_paid_fen": draw(st.none() | st.integers(0, 10**9)),
                "rd_ratio_bp": draw(st.none() | st.sampled_from([0, 299, 300, 1000])),
                "tags": draw(
                    st.lists(st.sampled_from(["高新技术企业", "专精特新", "小巨人"]), max_size=2, unique=True)
                ),
            }
        )
    return rows


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=archive_rows(),
    cond=conditions,
    standard=standards,
    budget=st.integers(0, 10**9) | st.just(0),
    order_by=st.sampled_from(ORDERS),
)
def test_dry_run_equals_python_for_random_trees(
    session: Session,
    rows: list[dict[str, Any]],
    cond: dict[str, Any],
    standard: dict[str, Any],
    budget: int,
    order_by: list[dict[str, str]],
) -> None:
    _replace_archive(session, rows)
    expected = _reference(_priced(session, cond, standard), budget, order_by)
    run = {"session": session, "conditions": cond, "standard": standard, "budget_total_fen": budget}
    if expected["total"] > MAX_FEN and session.get_bind().dialect.name == "sqlite":
        with pytest.raises(ValueError, match="64 位整数范围"):  # SQLite sums in 64 bits; PostgreSQL in NUMERIC
            dry_run(**run, order_by=order_by)
    else:
        _check(dry_run(**run, order_by=order_by), expected, budget)
    wanted = {e.id for e in session.scalars(select(Enterprise)) if evaluate(cond, e).eligible}
    assert set(matched_ids(session=session, conditions=cond)) == wanted


# --------------------------------------------------------------------------- budget coverage edges


def _five_enterprises(session: Session) -> list[int]:
    """Amounts 100, 200, 0, 300, 400 fen (by employees) in registration order."""
    rows = [
        {
            "uscc": f"9142050000000000{i}X",
            "name": f"企业{i}",
            "region_code": "420502",
            "registered_on": day,
            "employees": amount,
            "size_class": "small",
        }
        for i, (day, amount) in enumerate(
            [
                (date(2020, 1, 1), 100),
                (date(2020, 1, 2), 200),
                (date(2020, 1, 3), 0),
                (date(2020, 1, 4), 300),
                (date(2020, 1, 5), 400),
            ]
        )
    ]
    _replace_archive(session, rows)
    return [100, 200, 0, 300, 400]


AMOUNT_IS_EMPLOYEES = {
    "kind": "tiers",
    "base": "employees",
    "tiers": [{"at_least": 100 * k, "amount_fen": 100 * k} for k in range(1, 5)],
}
EVERYONE = {"field": "region_code", "op": "prefix", "value": "42"}


@pytest.mark.parametrize(
    ("budget", "covered", "covered_amount"),
    [
        (0, 0, 0),
        (99, 0, 0),
        (100, 1, 100),  # exactly enough for the first
        (299, 1, 100),
        (300, 3, 300),  # exactly enough for two; the third costs nothing and fits too
        (599, 3, 300),
        (600, 4, 600),
        (999, 4, 600),
        (1000, 5, 1000),  # exactly the total
        (10**12, 5, 1000),
    ],
)
def test_budget_coverage_stops_at_the_first_that_does_not_fit(
    session: Session, budget: int, covered: int, covered_amount: int
) -> None:
    amounts = _five_enterprises(session)
    result = dry_run(session=session, conditions=EVERYONE, standard=AMOUNT_IS_EMPLOYEES, budget_total_fen=budget)
    assert (result.matched, result.total_amount_fen) == (5, sum(amounts))
    assert (result.budget.covered, result.budget.covered_amount_fen) == (covered, covered_amount)
    assert result.budget.uncovered == 5 - covered
    assert result.budget.remaining_fen == budget - covered_amount
    assert result.budget.fully_covered == (budget >= 1000)
    assert result.budget.shortfall_fen == max(0, 1000 - budget)
    assert result.budget.ratio == f"{budget / 1000:.4f}"


def test_a_smaller_enterprise_later_in_the_order_does_not_jump_the_queue(session: Session) -> None:
    _five_enterprises(session)
    # 100 + 200 + 0 = 300 used, 350 left: the 4th (300) fits, the 5th (400) does not; stop there
    result = dry_run(session=session, conditions=EVERYONE, standard=AMOUNT_IS_EMPLOYEES, budget_total_fen=650)
    assert (result.budget.covered, result.budget.covered_amount_fen, result.budget.remaining_fen) == (4, 600, 50)
    assert result.budget.pro_rata_ratio == "0.6500"


def test_order_in_words() -> None:
    from db.repositories.matching import OrderKey, order_text

    assert (
        order_text([OrderKey(key="registered_on")])
        == "按成立日期从早到晚，并列时按统一社会信用代码排序；无数据的排在最后"
    )
    keys = [OrderKey(key="amount_fen", direction="desc"), OrderKey(key="employees")]
    assert order_text(keys).startswith("按核定金额从大到小、从业人数从小到大，并列时")
    assert order_text([]) == "按统一社会信用代码排序；无数据的排在最后"


def test_nobody_matches(session: Session) -> None:
    _five_enterprises(session)
    cond = {"field": "region_code", "op": "prefix", "value": "11"}
    result = dry_run(session=session, conditions=cond, standard={"kind": "fixed", "amount_fen": 5}, budget_total_fen=9)
    assert (result.enterprises, result.matched, result.total_amount_fen) == (5, 0, 0)
    assert (result.by_region, result.by_size) == ([], [])
    assert (result.budget.ratio, result.budget.pro_rata_ratio, result.budget.fully_covered) == (None, "1.0000", True)


def test_distribution_labels_and_order(session: Session) -> None:
    _replace_archive(session, list(generate_enterprises(300, seed=11)))
    result = dry_run(
        session=session, conditions=EVERYONE, standard={"kind": "fixed", "amount_fen": 1}, budget_total_fen=0
    )
    sizes = [g.key for g in result.by_size]
    assert sizes == [s for s in ("large", "medium", "small", "micro") if s in sizes]
    assert {g.key: g.label for g in result.by_size}.get("micro") == "微型"
    counts = [g.matched for g in result.by_region]
    assert counts == sorted(counts, reverse=True)
    assert all(len(g.key) == 6 for g in result.by_region)
    assert Counter(e.region_code[:6] for e in session.scalars(select(Enterprise))) == {
        g.key: g.matched for g in result.by_region
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_total_fen": -1}, "budget_total_fen"),
        ({"budget_total_fen": 1.5}, "budget_total_fen"),
        ({"budget_total_fen": 1, "order_by": [{"key": "name"}]}, "order_by"),
    ],
)
def test_bad_arguments_name_the_field(session: Session, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dry_run(session=session, conditions=EVERYONE, standard={"kind": "fixed", "amount_fen": 1}, **kwargs)
