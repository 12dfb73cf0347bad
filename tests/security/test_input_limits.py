"""Bad input is refused before any work, with a Chinese message naming the field and the rule — never a 500."""

from __future__ import annotations

import pydantic
import pytest

from schemas.conditions import MAX_DEPTH, MAX_LEAVES, parse_condition
from schemas.standards import RateOfBase
from schemas.text import clean_name
from tests.security.conftest import DEPT, World

HUGE = str(2**70)
LEAF = {"field": "employees", "op": "ge", "value": 1}


def _nested(depth: int) -> dict:
    tree = LEAF
    for _ in range(depth - 1):
        tree = {"op": "not", "item": tree}
    return tree


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/cases/{HUGE}",
        f"/api/v1/reconciliation/runs/{HUGE}/export.xlsx",
        f"/api/v1/sms/stats/{HUGE}/failures",
        f"/api/v1/reconciliation/runs/{HUGE}",
        "/api/v1/cases/0",
        "/api/v1/cases/-5",
    ],
)
def test_ids_beyond_int64_or_below_one_are_422(client, world: World, path: str) -> None:
    r = client.get(path, headers=world.bearer())
    assert r.status_code == 422, (path, r.status_code, r.text[:200])
    error = r.json()["error"]["errors"][0]
    assert error["rule"] in ("int_range", "greater_than_equal") and not error["message"].isascii()


def test_bodies_with_integers_beyond_their_range_are_422(client, world: World) -> None:
    path = f"/api/v1/enterprises/{world.uscc}/archive"
    for body, rule in (({"employees": 2**70}, "int_range"), ({"tax_paid_fen": 10**15}, "less_than_equal"),
                       ({"rd_ratio_bp": 10_001}, "less_than_equal")):  # fmt: skip
        r = client.patch(path, json=body, headers=world.bearer())
        assert r.status_code == 422, r.text
        [error] = r.json()["error"]["errors"]
        assert error["field"] == next(iter(body)) and error["rule"] == rule and not error["message"].isascii()


def test_dates_outside_1900_to_2200_are_422(client, world: World) -> None:
    r = client.get("/api/v1/calendar/deadline", params={"start": "9999-12-20", "days": 5}, headers=world.bearer())
    assert r.status_code == 422, r.text
    [error] = r.json()["error"]["errors"]
    assert (error["field"], error["rule"]) == ("query.start", "date_range") and "1900" in error["message"]


def test_condition_trees_have_a_depth_and_a_leaf_limit(client, world: World) -> None:
    parse_condition(_nested(MAX_DEPTH))
    with pytest.raises(pydantic.ValidationError, match="层级超过上限"):
        parse_condition(_nested(MAX_DEPTH + 1))
    with pytest.raises(pydantic.ValidationError, match="条件数量超过上限"):
        parse_condition({"op": "any", "items": [LEAF] * (MAX_LEAVES + 1)})
    # Through the API: 200 levels deep is a 422 naming the rule, not a 500.
    body = {"conditions": _nested(200), "standard": {"kind": "fixed", "amount_fen": 100}}
    r = client.post("/api/v1/dry-runs", json=body, headers=world.bearer("department", DEPT))
    assert r.status_code == 422, r.text
    assert "层级超过上限" in r.json()["error"]["message"]
    wide = {"conditions": {"op": "any", "items": [LEAF] * 5000}, "standard": {"kind": "fixed", "amount_fen": 100}}
    r = client.post("/api/v1/dry-runs", json=wide, headers=world.bearer("department", DEPT))
    assert r.status_code == 422 and "条件数量超过上限" in r.json()["error"]["message"]


def test_the_schema_states_the_condition_limits(client) -> None:
    assert f"最多 {MAX_DEPTH} 层" in client.get("/openapi.json").text


def test_rates_are_bounded() -> None:
    for rate in ("1e999999", "1" + "0" * 60, "0." + "0" * 60 + "1"):
        with pytest.raises(pydantic.ValidationError, match="超出范围"):
            RateOfBase(kind="rate", base="tax_paid_fen", rate=rate)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("宜昌\u202e司公限有", "text_chars"),  # right-to-left override
        ("宜昌\u200b科技有限公司", "text_chars"),  # zero-width space
        ("宜昌\x00科技有限公司", "text_chars"),
        ("宜昌科技\r\n有限公司", "text_chars"),
        ("宜昌\u2066科技\u2069有限公司", "text_chars"),  # bidi isolates
        ("   ", "name_blank"),
    ],
)
def test_names_with_invisible_or_control_characters_are_refused(client, world: World, name: str, rule: str) -> None:
    from tests.factories import fresh_uscc

    body = {"uscc": fresh_uscc(), "name": name, "region_code": "420502"}
    r = client.post("/api/v1/enterprises", json=body, headers=world.bearer())
    assert r.status_code == 422, r.text
    [error] = r.json()["error"]["errors"]
    assert (error["field"], error["rule"]) == ("name", rule) or (error["field"], error["rule"]) == (
        "name",
        "string_too_short",
    )
    assert not error["message"].isascii()


def test_names_are_trimmed_and_normalised() -> None:
    assert clean_name("  Cafe\u0301 宜昌  ") == "Café 宜昌"
