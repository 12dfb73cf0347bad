"""Tags as the page defines them: every validation error named by its field, a preview count that stores nothing,
imported lists, and scoping (a department sees and defines its own tags; finance reads them all; enterprises none)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Enterprise, TagRule
from db.sql.conditions import compile_where
from schemas.principal import Principal
from services import archive
from services.errors import Forbidden, Invalid
from services.scope import Scope
from tests.archive.support import ADMIN, DEPT, csv_bytes
from tests.factories import new_enterprise

OTHER = Scope(principal=Principal(role="department", subject="YC-RSJ"), department_code="YC-RSJ")
FINANCE = Scope(principal=Principal(role="finance", subject="YC-CZJ"), department_code="YC-CZJ")
SMALL = {"op": "all", "items": [{"field": "employees", "op": "le", "value": 3}, {"field": "region_code", "op": "prefix",
                                                                                "value": "420527"}]}  # fmt: skip


def _people(session: Session) -> list[Enterprise]:
    return [new_enterprise(session, region_code="420527", employees=n) for n in (1, 2, 3, 50)]


def test_every_error_of_a_draft_names_its_field(session: Session) -> None:
    bad = {"op": "all", "items": [{"field": "employees", "op": "ge", "value": "很多"}, {"field": "rule_tags",
                                                                                      "op": "has_tag", "value": "x"}]}  # fmt: skip
    draft = archive.check_tag_rule(session=session, scope=DEPT, name="", condition=bad)
    fields = [e["field"] for e in draft.errors]
    assert fields[0] == "name" and "1–40 个字" in draft.errors[0]["message"]
    assert "condition" in fields and any("从业人数" in e["message"] and "整数" in e["message"] for e in draft.errors)
    with pytest.raises(Invalid, match=r"^name：标签名称应为 1–40 个字"):
        archive.store_tag_rule(session=session, scope=DEPT, draft=draft)
    recursive = archive.check_tag_rule(session=session, scope=DEPT, name="自引用",
                                       condition={"field": "rule_tags", "op": "has_tag", "value": "x"})  # fmt: skip
    assert [e["rule"] for e in recursive.errors] == ["no_recursion"]
    [ent] = _people(session)[:1]
    rows = [[ent.uscc], ["91420500MA4K0000X1"], [ent.uscc], ["914205007700000008"]]
    listed = archive.check_tag_rule(session=session, scope=DEPT, name="名单", kind="list",
                                    list_file=("名单.csv", csv_bytes(["统一社会信用代码"], rows)))  # fmt: skip
    by_row = {e["field"]: e["message"] for e in listed.errors}
    assert set(by_row) == {"第3行", "第4行", "第5行"}
    assert "与第2行重复" in by_row["第4行"]
    no_file = archive.check_tag_rule(session=session, scope=DEPT, name="名单2", kind="list")
    assert [e["field"] for e in no_file.errors] == ["file"]


def test_the_preview_counts_without_storing_and_saving_tags_them(session: Session) -> None:
    people = _people(session)
    draft = archive.check_tag_rule(session=session, scope=DEPT, name="秭归微型企业", condition=SMALL)
    assert draft.errors == []
    assert archive.preview_tag_rule(session=session, scope=DEPT, draft=draft) == 3
    assert session.scalar(select(func.count()).select_from(TagRule).where(TagRule.name == "秭归微型企业")) == 0
    rule = archive.store_tag_rule(session=session, scope=DEPT, draft=draft)
    assert (rule.tagged, rule.kind, rule.department_code) == (3, "rule", "YC-KJJ")
    tagged = compile_where({"field": "rule_tags", "op": "has_tag", "value": "秭归微型企业"})
    ids = set(session.scalars(select(Enterprise.id).where(tagged)))
    assert ids == {p.id for p in people[:3]}


def test_an_imported_list_tags_exactly_its_enterprises(session: Session) -> None:
    people = _people(session)
    data = csv_bytes(["uscc"], [[people[0].uscc], [people[3].uscc]])
    rule = archive.create_tag_rule(session=session, scope=DEPT, name="重点联系企业", kind="list",
                                   list_file=("list.csv", data))  # fmt: skip
    assert (rule.kind, rule.members, rule.tagged, rule.condition) == ("list", 2, 2, None)
    session.refresh(people[3])
    assert "重点联系企业" in people[3].rule_tags
    assert people[3].provenance["rule_tags"]["source"] == "tag_rules"


def test_tags_are_scoped_to_their_department(session: Session) -> None:
    _people(session)
    mine = archive.create_tag_rule(session=session, scope=DEPT, name="科技局的标签", condition=SMALL)
    theirs = archive.create_tag_rule(session=session, scope=OTHER, name="人社局的标签", condition=SMALL)
    seen = {r.name for r in archive.tag_rules(session=session, scope=DEPT)}
    assert mine.name in seen and theirs.name not in seen
    assert {mine.name, theirs.name} <= {r.name for r in archive.tag_rules(session=session, scope=FINANCE)}
    assert {mine.name, theirs.name} <= {r.name for r in archive.tag_rules(session=session, scope=ADMIN)}
    with pytest.raises(Forbidden):
        archive.check_tag_rule(session=session, scope=FINANCE, name="财政的标签", condition=SMALL)
    with pytest.raises(Forbidden):
        archive.tag_rules(session=session, scope=Scope(principal=Principal(role="enterprise", subject="x")))
