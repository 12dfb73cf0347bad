"""amount_expr computes in the database exactly what compute_amount computes in Python, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import Enterprise
from db.sql.amounts import MAX_FEN, amount_expr, limb_plan, unquantified_expr
from rules.amounts import compute_amount

MONEY_FIELDS = ["tax_paid_fen", "revenue_fen"]
INT_FIELDS = ["employees", "rd_ratio_bp"]
INT32_MAX = 2**31 - 1

# Boundaries that matter: zero, ±1, half-fen cases, limb boundaries, the BIGINT extremes.
BIG = [0, 1, 2, 3, 5, 25, 1005, 1050, 2**32 - 1, 2**32, 2**32 + 1, 2**62, 10**18 + 1, MAX_FEN, MAX_FEN - 1]
money = st.sampled_from(BIG) | st.integers(-(10**12), 10**12) | st.integers(0, MAX_FEN) | st.sampled_from([-1, -5])
small_int = st.sampled_from([0, 1, 49, 50, 300, 301, 10_000]) | st.integers(0, INT32_MAX)

RATE_TEXTS = ["0", "1", "0.5", "0.05", "0.125", "0.4999999999", "0.5000000001", "0.0000000001", "2.5", "0.03"]
rate_text = st.sampled_from(RATE_TEXTS) | st.builds(
    lambda places, value: f"{Decimal(value).scaleb(-places):f}",
    st.integers(0, 16),
    st.integers(0, 3 * 10**16),
)


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def rates(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"rate": draw(rate_text)}
    return {"rate_bp": draw(st.integers(0, 30_000))}


fen = st.sampled_from([0, 1, 10_000_000, MAX_FEN]) | st.integers(0, 10**12)


@st.composite
def rate_standards(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": "rate", "base": draw(st.sampled_from(MONEY_FIELDS)), **draw(rates())}
    floor, cap = draw(nullable(fen)), draw(nullable(fen))
    if floor is not None and cap is not None and floor > cap:
        floor, cap = cap, floor
    if floor is not None:
        data["floor_fen"] = floor
    if cap is not None:
        data["cap_fen"] = cap
    return data


@st.composite
def tier_standards(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(st.sampled_from(MONEY_FIELDS + INT_FIELDS))
    values = st.integers(-(10**6), 10**13) if base in MONEY_FIELDS else st.integers(-5, 20_000)
    thresholds = sorted(draw(st.sets(values, min_size=1, max_size=4)))
    tiers = []
    for at_least in thresholds:
        if base in MONEY_FIELDS and draw(st.booleans()):
            tiers.append({"at_least": at_least, **draw(rates())})
        else:
            tiers.append({"at_least": at_least, "amount_fen": draw(fen)})
    data: dict[str, Any] = {"kind": "tiers", "base": base, "tiers": tiers}
    cap = draw(nullable(fen))
    if cap is not None:
        data["cap_fen"] = cap
    return data


leaf_standards = st.one_of(
    st.builds(lambda amount: {"kind": "fixed", "amount_fen": amount}, fen),
    st.just({"kind": "manual", "max_fen": 50_000_000}),
    rate_standards(),
    tier_standards(),
)


def _sum(parts: list[dict[str, Any]], cap: int | None) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": "sum", "parts": parts}
    if cap is not None:
        data["cap_fen"] = cap
    return data


standards = st.recursive(
    leaf_standards,
    lambda children: st.builds(_sum, st.lists(children, min_size=1, max_size=3), nullable(fen)),
    max_leaves=5,
)

enterprises = st.fixed_dictionaries(
    {
        "tax_paid_fen": nullable(money),
        "revenue_fen": nullable(money),
        "employees": nullable(small_int),
        "rd_ratio_bp": nullable(small_int),
    }
)


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    session.execute(delete(Enterprise))
    session.expunge_all()
    objects = [
        Enterprise(uscc=f"91420500MA{i:08d}", name=f"测试企业{i}", region_code="420502", **row)
        for i, row in enumerate(rows)
    ]
    session.add_all(objects)
    session.flush()
    return [obj.id for obj in objects]


def _sql_amounts(session: Session, standard: dict[str, Any]) -> dict[int, tuple[int, bool]]:
    query = select(Enterprise.id, amount_expr(standard), unquantified_expr(standard))
    return {row[0]: (row[1], bool(row[2])) for row in session.execute(query)}


def _expected(standard: dict[str, Any], row: dict[str, Any]) -> tuple[int, bool]:
    result = compute_amount(standard, row)
    return min(result.amount_fen, MAX_FEN), not result.quantified


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(enterprises, min_size=1, max_size=8), trees=st.lists(standards, min_size=1, max_size=3))
def test_sql_amounts_equal_python_amounts(
    session: Session, rows: list[dict[str, Any]], trees: list[dict[str, Any]]
) -> None:
    ids = _insert(session, rows)
    for standard in trees:
        got = _sql_amounts(session, standard)
        for oid, row in zip(ids, rows, strict=True):
            assert got[oid] == _expected(standard, row), (standard, row)
            assert type(got[oid][0]) is int


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=rate_text, multiple=st.integers(0, MAX_FEN), offset=st.sampled_from([-1, 0, 1]))
def test_exact_half_fen_rounds_up(session: Session, text: str, multiple: int, offset: int) -> None:
    """Bases where base × rate ends in exactly half a fen (and their neighbours), anywhere in the BIGINT range."""
    rate = Fraction(Decimal(text))
    num, den = rate.numerator, rate.denominator
    if den % 2 == 0:
        first = den // 2 * pow(num, -1, den) % den  # base × num ≡ den / 2 (mod den): a half fen
        base = min(max(first + multiple // den * den + offset, 0), MAX_FEN)
    else:
        base = multiple
    standard = {"kind": "rate", "base": "tax_paid_fen", "rate": text}
    [oid] = _insert(session, [{"tax_paid_fen": base}])
    assert _sql_amounts(session, standard)[oid] == _expected(standard, {"tax_paid_fen": base}), (text, base)


@pytest.mark.parametrize(
    ("base_fen", "rate_text", "expected"),
    [
        (1, "0.5", 1),
        (5, "0.5", 3),
        (25, "0.1", 3),
        (24, "0.1", 2),
        (1005, "0.01", 10),
        (1050, "0.01", 11),
        (1, "0.4999999999", 0),
        (1, "0.5000000001", 1),
        (2**62, "0.0000000001", 461_168_602),
        (10**18 + 1, "0.5", 5 * 10**17 + 1),
        (MAX_FEN, "0.9999999999999999", 9_223_372_036_854_774_885),
        (MAX_FEN, "1", MAX_FEN),
        (MAX_FEN, "2", MAX_FEN),  # saturates: 2^64 fen cannot be stored
        (-100, "0.05", 0),
    ],
)
def test_rounding_cases(session: Session, base_fen: int, rate_text: str, expected: int) -> None:
    standard = {"kind": "rate", "base": "tax_paid_fen", "rate": rate_text}
    [oid] = _insert(session, [{"tax_paid_fen": base_fen}])
    assert _sql_amounts(session, standard)[oid] == (expected, False)
    assert min(compute_amount(standard, {"tax_paid_fen": base_fen}).amount_fen, MAX_FEN) == expected


def test_floor_cap_and_missing_data(session: Session) -> None:
    standard = {"kind": "rate", "base": "tax_paid_fen", "rate": "0.05", "floor_fen": 100, "cap_fen": 1000}
    rows = [{"tax_paid_fen": None}, {"tax_paid_fen": -5}, {"tax_paid_fen": 10_000}, {"tax_paid_fen": 10**9}]
    ids = _insert(session, rows)
    got = _sql_amounts(session, standard)
    # missing data counts 0 (not the floor); a loss counts 0 then the floor; the cap holds after rounding
    assert [got[i] for i in ids] == [(0, True), (100, False), (500, False), (1000, False)]


def test_sum_overflow_saturates_to_the_cap(session: Session) -> None:
    standard = {
        "kind": "sum",
        "cap_fen": 123,
        "parts": [{"kind": "fixed", "amount_fen": MAX_FEN}, {"kind": "fixed", "amount_fen": MAX_FEN}],
    }
    [oid] = _insert(session, [{}])
    assert _sql_amounts(session, standard)[oid] == (123, False)
    uncapped = {"kind": "sum", "parts": standard["parts"]}
    assert _sql_amounts(session, uncapped)[oid] == (MAX_FEN, False)


def test_manual_counts_zero_and_is_unquantified(session: Session) -> None:
    [oid] = _insert(session, [{"tax_paid_fen": 5}])
    assert _sql_amounts(session, {"kind": "manual"})[oid] == (0, True)
    fixed_plus_manual = {"kind": "sum", "parts": [{"kind": "fixed", "amount_fen": 7}, {"kind": "manual"}]}
    assert _sql_amounts(session, fixed_plus_manual)[oid] == (7, True)


def test_limb_plan_bounds() -> None:
    assert limb_plan(10_000) == 32
    assert limb_plan(10**16) is not None
    assert limb_plan(10**18) is None
    for den in (3, 10**4, 10**9, 2**31, 10**12, 10**16, 10**17):
        bits = limb_plan(den)
        assert bits is not None
        limbs = -(-63 // bits)
        assert (2**bits - 1) * (den - 1) < 2**63 and 2 * limbs * (den - 1) + den < 2**63


def test_a_rate_too_fine_for_sqlite_says_so(session: Session) -> None:
    rate = "0." + "0" * 17 + "3"  # 3 × 10^-18: denominator beyond SQLite's exact range
    standard = {"kind": "rate", "base": "tax_paid_fen", "rate": rate}
    [oid] = _insert(session, [{"tax_paid_fen": MAX_FEN}])
    expected = compute_amount(standard, {"tax_paid_fen": MAX_FEN}).amount_fen
    assert expected == round(Fraction(MAX_FEN) * Fraction(rate))
    if session.get_bind().dialect.name == "sqlite":
        with pytest.raises(ValueError, match="小数位数过多"):
            _sql_amounts(session, standard)
    else:
        assert _sql_amounts(session, standard)[oid] == (expected, False)
