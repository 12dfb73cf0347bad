"""The case events' fast canonical JSON (db/repositories/audit.canonical) is byte for byte the encoder's, so every
chain hashed either way verifies the other way."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from db.repositories.audit import canonical
from schemas.vocabulary import CaseStatus, SystemActor

ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
text = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["国库支付成功", 'a"b\\c', "\u2028", "\x00"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
data = st.one_of(st.none(), st.dictionaries(st.text(max_size=6), st.one_of(scalars, st.lists(scalars, max_size=3))))


@settings(max_examples=300, deadline=None)
@given(
    case_id=st.one_of(st.integers(min_value=0), st.booleans(), st.text(max_size=3)),
    seq=st.integers(min_value=0),
    actor=st.one_of(text, st.sampled_from(list(SystemActor)), st.integers()),
    status=st.one_of(text, st.sampled_from(list(CaseStatus))),
    reason=text,
    key=text,
    data=data,
)
def test_event_bodies_encode_as_the_encoder_does(case_id, seq, actor, status, reason, key, data) -> None:
    body = {"case_id": case_id, "seq": seq, "key": key, "kind": "paid", "from_status": None, "to_status": status,
            "actor": actor, "reason": reason, "data": data, "created_at": "2026-12-01T14:00:00+00:00"}  # fmt: skip
    assert canonical(body) == ENCODER.encode(body)


def test_other_bodies_go_through_the_encoder() -> None:
    body = {"seq": 1, "kind": "config", "actor": "x", "subject": "s", "data": {"b": 1, "a": [1]}, "alg": "h"}
    assert canonical(body) == ENCODER.encode(body)
