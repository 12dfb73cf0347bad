"""Tags as rules over archive fields (Yichang rules art. 27): enterprises meeting a rule carry its tag at once, an
import that changes a field the rule uses re-tags them, and `rule_tags` works in conditions like any field."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Enterprise
from db.repositories import archive as repo
from db.sql.conditions import compile_where
from rules.conditions import evaluate
from schemas.fields import FIELDS
from services import archive
from services.errors import Conflict, Forbidden, Invalid
from tests.archive.support import ADMIN, DEPT, ENTERPRISE, csv_bytes
from tests.factories import new_enterprise

SMALL_MAKERS = {"op": "all", "items": [
    {"field": "industry_code", "op": "prefix", "value": "C"},
    {"field": "size_class", "op": "in", "value": ["small", "micro"]},
    {"field": "region_code", "op": "prefix", "value": "420527"},
]}  # fmt: skip


def test_a_tag_rule_tags_now_retags_on_import_and_is_a_condition_field(session: Session) -> None:
    maker = new_enterprise(session, region_code="420527", industry_code="C3484", size_class="small")
    shop = new_enterprise(session, region_code="420527", industry_code="F5211", size_class="small")
    rule = archive.create_tag_rule(session=session, scope=DEPT, name="秭归制造业小微企业", condition=SMALL_MAKERS)
    assert rule.tagged == 1 and rule.department_code == "YC-KJJ"
    session.refresh(maker)
    session.refresh(shop)
    assert (maker.rule_tags, shop.rule_tags) == (["秭归制造业小微企业"], None)
    assert "rule_tags" in FIELDS and FIELDS["rule_tags"].label == "规则标签"
    tagged = {"field": "rule_tags", "op": "has_tag", "value": "秭归制造业小微企业"}
    found = session.scalars(select(Enterprise.id).where(Enterprise.id.in_([maker.id, shop.id]), compile_where(tagged)))
    assert list(found) == [maker.id]
    assert evaluate(tagged, maker).eligible and not evaluate(tagged, shop).eligible
    # The market registration says the shop now makes things: the import re-tags it, with history.
    market = ["uscc", "region_code", "industry_code", "size_class", "registered_on"]
    done = archive.import_file(session=session, scope=ADMIN, source_name="market", file_name="m.csv",
                               data=csv_bytes(market, [[shop.uscc, "420527", "C1499", "小型", "2020-05-01"]]))  # fmt: skip
    assert done.status == "succeeded", done.errors
    session.refresh(shop)
    assert shop.rule_tags == ["秭归制造业小微企业"]
    [history] = repo.history(session=session, enterprise_id=shop.id, field="rule_tags")
    assert (history.source, history.import_id, history.value) == ("tag_rules", done.id, ["秭归制造业小微企业"])
    listed = {r.name: r.tagged for r in archive.tag_rules(session=session, scope=ADMIN)}
    assert listed["秭归制造业小微企业"] == 2


def test_tag_rules_are_checked(session: Session) -> None:
    with pytest.raises(Forbidden):
        archive.create_tag_rule(session=session, scope=ENTERPRISE, name="x", condition=SMALL_MAKERS)
    with pytest.raises(Invalid, match="长度规则"):
        archive.create_tag_rule(session=session, scope=ADMIN, name="", condition=SMALL_MAKERS)
    with pytest.raises(Invalid, match="condition"):
        archive.create_tag_rule(session=session, scope=ADMIN, name="坏规则", condition={"field": "nope", "op": "eq"})
    with pytest.raises(Invalid, match="不能引用规则标签本身"):
        archive.create_tag_rule(session=session, scope=ADMIN, name="套娃",
                                condition={"field": "rule_tags", "op": "has_tag", "value": "x"})  # fmt: skip
    archive.create_tag_rule(session=session, scope=ADMIN, name="重复标签", condition=SMALL_MAKERS)
    with pytest.raises(Conflict):
        archive.create_tag_rule(session=session, scope=ADMIN, name="重复标签", condition=SMALL_MAKERS)
    with pytest.raises(Forbidden, match="数据来源归属规则"):
        archive.refuse_foreign(fields=("rule_tags",), by="tech")  # computed, never edited
