"""compile_where selects exactly the enterprises evaluate calls eligible, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import cast, delete, not_, null, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Enterprise, JSONType
from db.sql.conditions import TagMatch, compile_where
from rules.conditions import evaluate
from schemas.conditions import parse_condition
from schemas.fields import FIELDS, FieldType

# Small pools make equal values, shared prefixes and boundaries frequent; integers add the rest.
REGIONS = ["420502", "420503", "420602", "420502001", "110101", "4205", "42"]
PREFIXES = ["4", "42", "4205", "420502", "11", "420502001", "9"]
INDUSTRIES = ["C3911", "C3912", "C27", "I6510", "c3911", ""]
INDUSTRY_PREFIXES = ["C", "c", "C39", "C3911", "I", "C27"]
TAGS = ["高新技术企业", "专精特新", "小巨人", "科技型中小企业"]
QUERY_TAGS = [*TAGS, "瞪羚企业"]
INT_POOLS: dict[str, list[int]] = {
    "employees": [0, 1, 49, 50, 51, 300],
    "revenue_fen": [-100, 0, 99, 100, 10**10, 2**62],
    "tax_paid_fen": [0, 1, 5_000_000, 5_000_001],
    "rd_ratio_bp": [0, 299, 300, 301, 10_000],
}
INT_RANGE = {"employees": (0, 1000), "revenue_fen": (-(10**12), 10**12)}
DATES = [date(2019, 12, 31), date(2020, 1, 1), date(2020, 1, 2), date(2024, 2, 29)]


def values_of(field: str) -> st.SearchStrategy[Any]:
    """Values a condition on `field` compares with (also the archive values, apart from tags)."""
    spec = FIELDS[field]
    if spec.type is FieldType.ENUM:
        return st.sampled_from(spec.choice_values)
    if spec.type is FieldType.DATE:
        return st.sampled_from(DATES) | st.dates(date(2018, 1, 1), date(2026, 12, 31))
    if field == "region_code":
        return st.sampled_from(REGIONS)
    if field == "industry_code":
        return st.sampled_from(INDUSTRIES)
    lo, hi = INT_RANGE.get(field, (0, 10**7))
    return st.sampled_from(INT_POOLS[field]) | st.integers(lo, hi)


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(sorted(FIELDS)))
    op = draw(st.sampled_from(FIELDS[field].operators))
    if op == "prefix":
        value: Any = draw(st.sampled_from(PREFIXES if field == "region_code" else INDUSTRY_PREFIXES))
    elif op == "has_tag":
        value = draw(st.sampled_from(QUERY_TAGS))
    elif op in ("has_any_tags", "has_all_tags"):
        value = draw(st.lists(st.sampled_from(QUERY_TAGS), min_size=1, max_size=3))
    elif op in ("in", "not_in"):
        value = draw(st.lists(values_of(field), min_size=1, max_size=3))
    elif op == "between":
        value = sorted(draw(st.lists(values_of(field), min_size=2, max_size=2)))
    else:
        value = draw(values_of(field))
    if isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, list):
        value = [v.isoformat() if isinstance(v, date) else v for v in value]
    return {"field": field, "op": op, "value": value}


conditions = st.recursive(
    leaves(),
    lambda children: st.one_of(
        st.builds(lambda items: {"op": "all", "items": items}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda items: {"op": "any", "items": items}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda item: {"op": "not", "item": item}, children),
    ),
    max_leaves=8,
)


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


enterprises = st.fixed_dictionaries(
    {
        "region_code": values_of("region_code"),
        "industry_code": values_of("industry_code"),
        "size_class": values_of("size_class"),
        "credit_status": values_of("credit_status"),
        "registered_on": nullable(values_of("registered_on")),
        "employees": nullable(values_of("employees")),
        "revenue_fen": nullable(values_of("revenue_fen")),
        "tax_paid_fen": nullable(values_of("tax_paid_fen")),
        "rd_ratio_bp": nullable(values_of("rd_ratio_bp")),
        # None is stored as JSON null (the column is NOT NULL): it must behave like [] in both paths
        "tags": nullable(st.lists(st.sampled_from(TAGS), max_size=3, unique=True)),
    }
)


def insert(session: Session, rows: list[dict[str, Any]]) -> list[Enterprise]:
    session.execute(delete(Enterprise))
    session.expunge_all()
    objects = [Enterprise(uscc=f"91420500MA{i:08d}", name=f"测试企业{i}", **row) for i, row in enumerate(rows)]
    session.add_all(objects)
    session.flush()
    return objects


def selected(session: Session, where: Any) -> set[int]:
    return set(session.scalars(select(Enterprise.id).where(where)))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(enterprises, min_size=1, max_size=8), trees=st.lists(conditions, min_size=1, max_size=4))
def test_sql_and_python_select_the_same_enterprises(
    session: Session, rows: list[dict[str, Any]], trees: list[dict[str, Any]]
) -> None:
    objects = insert(session, rows)
    for data in trees:
        cond = parse_condition(data)
        expected = {obj.id for obj, row in zip(objects, rows, strict=True) if evaluate(cond, row).eligible}
        assert selected(session, compile_where(cond)) == expected, data
        # the complement too: NOT(tree) selects what Python calls definitely false, never the unknown ones
        negated = {"op": "not", "item": data}
        expected_false = {
            obj.id for obj, row in zip(objects, rows, strict=True) if evaluate(cond, row).outcome == "false"
        }
        assert selected(session, compile_where(negated)) == expected_false, negated


def test_examples_that_matter_most(session: Session) -> None:
    """Hand-picked cases: NULL data, JSON-null tags, case-sensitive prefixes, dates, the dishonest."""
    rows = [
        {
            "region_code": "420502",
            "industry_code": "C3911",
            "size_class": "small",
            "credit_status": "good",
            "registered_on": date(2020, 1, 1),
            "employees": 50,
            "tags": ["专精特新"],
        },
        {
            "region_code": "420602",
            "industry_code": "c3911",
            "size_class": "micro",
            "credit_status": "dishonest",
            "registered_on": None,
            "employees": None,
            "tags": None,
        },
        {
            "region_code": "420502001",
            "industry_code": "",
            "size_class": "large",
            "credit_status": "good",
            "registered_on": date(2024, 2, 29),
            "employees": 10,
            "tags": [],
        },
    ]
    a, b, c = (obj.id for obj in insert(session, rows))
    cases: list[tuple[dict[str, Any], set[int]]] = [
        ({"field": "region_code", "op": "prefix", "value": "420502"}, {a, c}),
        ({"field": "industry_code", "op": "prefix", "value": "C39"}, {a}),  # not the lower-case c3911
        ({"field": "employees", "op": "ge", "value": 50}, {a}),
        ({"op": "not", "item": {"field": "employees", "op": "ge", "value": 50}}, {c}),  # b unknown
        ({"field": "employees", "op": "ne", "value": 50}, {c}),
        ({"field": "registered_on", "op": "between", "value": ["2020-01-01", "2024-02-29"]}, {a, c}),
        ({"field": "tags", "op": "has_tag", "value": "专精特新"}, {a}),
        ({"op": "not", "item": {"field": "tags", "op": "has_any_tags", "value": ["专精特新", "x"]}}, {b, c}),
        ({"op": "not", "item": {"field": "credit_status", "op": "eq", "value": "dishonest"}}, {a, c}),
        (
            {
                "op": "any",
                "items": [
                    {"field": "employees", "op": "lt", "value": 20},
                    {"field": "size_class", "op": "eq", "value": "micro"},
                ],
            },
            {b, c},
        ),
    ]
    for data, ids in cases:
        cond = parse_condition(data)
        assert selected(session, compile_where(cond)) == ids, data
        python = {oid for oid, row in zip((a, b, c), rows, strict=True) if evaluate(cond, row).eligible}
        assert python == ids, data


def test_sql_null_tags_hold_no_tag_on_both_dialects(session: Session) -> None:
    """The column is NOT NULL, but a NULL document (e.g. from an outer join) must still mean 'no tags'."""
    for mode in ("any", "all"):
        match = TagMatch(cast(null(), JSONType), mode, ["专精特新"])
        row = session.execute(select(match.label("holds"), not_(match).label("lacks"))).one()
        assert (bool(row.holds), bool(row.lacks)) == (False, True)


# ---------------------------------------------------------------- one expression, two dialects


def test_one_where_clause_compiles_on_both_dialects() -> None:
    where = compile_where(
        {
            "op": "all",
            "items": [
                _leaf("tags", "has_any_tags", ["专精特新", "小巨人"]),
                {"op": "not", "item": _leaf("tags", "has_all_tags", ["失信", "异常"])},
                _leaf("region_code", "prefix", "4205"),
            ],
        }
    )
    stmt = select(Enterprise.id).where(where)
    pg = str(stmt.compile(dialect=postgresql.dialect()))
    lite = str(stmt.compile(dialect=sqlite.dialect()))
    assert "?|" in pg and "@>" in pg and "coalesce(enterprise.tags, '[]'::jsonb)" in pg
    assert "json_each(enterprise.tags)" in lite and "@>" not in lite
    assert "substr(enterprise.region_code" in pg and "substr(enterprise.region_code" in lite
    assert "LIKE" not in pg + lite


def test_compile_where_rejects_invalid_data_like_parse() -> None:
    with pytest.raises(ValidationError, match="employees"):
        compile_where(_leaf("employees", "prefix", "1"))


def _leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}
