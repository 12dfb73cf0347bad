"""The vocabulary: every value has a Chinese label, values are unique, and actors read as people read them."""

from __future__ import annotations

import re

import pytest

from schemas import vocabulary
from schemas.vocabulary import CaseStatus, EventKind, Vocabulary, event_label, render_actor

VOCABULARIES = [v for v in vars(vocabulary).values() if isinstance(v, type) and issubclass(v, Vocabulary) and v is not Vocabulary]
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("vocab", VOCABULARIES, ids=lambda v: v.__name__)
def test_every_value_has_a_chinese_label(vocab: type[Vocabulary]) -> None:
    assert list(vocab), vocab
    for member in vocab:
        assert HAN.search(member.label), f"{vocab.__name__}.{member.name} has no Chinese label: {member.label!r}"
    assert len(set(vocab.values())) == len(vocab), "values must be unique"


def test_final_case_statuses() -> None:
    assert CaseStatus.PAID.is_final and CaseStatus.REJECTED.is_final
    assert not CaseStatus.PAYING.is_final and not CaseStatus.AWAITING_CORRECTION.is_final
    assert CaseStatus.finals() >= {CaseStatus.WITHDRAWN, CaseStatus.REVOKED, CaseStatus.LAPSED}


def test_values_are_plain_strings() -> None:
    assert CaseStatus.PAID == "paid" and f"{CaseStatus.PAID}" == "paid"
    assert CaseStatus.label_of("nonsense") == "—" and CaseStatus.label_of(None) == "—"


def test_legacy_event_kind_reads_as_its_new_name() -> None:
    assert event_label("objection_received") == EventKind.OBJECTION_FILED.label
    assert event_label("matched") == "数据比对匹配"


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("system:rules", "系统自动核验"),
        ("system:treasury", "国库支付系统"),
        ("system:unknown-part", "系统"),
        ("department:YC-JXJ", "宜昌市经济和信息化局"),
        ("department:YC-JXJ:张三", "宜昌市经济和信息化局（张三）"),
        ("department:NOPE", "主管部门"),
        ("enterprise:91420500MA4F0Q1X5K", "宜昌测试企业有限公司"),
        ("finance:YC-CZJ", "财政部门"),
    ],
)
def test_actors_render_without_codes(actor: str, expected: str) -> None:
    names = {"YC-JXJ": "宜昌市经济和信息化局", "91420500MA4F0Q1X5K": "宜昌测试企业有限公司"}
    assert render_actor(actor, names=names) == expected
