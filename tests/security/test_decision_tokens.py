"""Decision tokens (workflows/decisions.py): bound to the workflow, the update, the actor, the decision's content
and an expiry; anything else is refused with a Chinese reason. (The refusal by a real workflow, for an update sent
with the `temporal` CLI and with a client without the signer, is in tests/e2e/test_history_secrets.py.)"""

from __future__ import annotations

import os

from schemas.cases import DecisionIn
from workflows.decisions import DECISION_UPDATES, check, sign

KEY = os.urandom(32)
DECISION = DecisionIn(stage_key="first_review", department="YC-JXJ", decision="approve", actor="department:YC-JXJ")
WF = "case:YC-2026-JSGZ-001:0123456789abcdef01234567"


def _check(token: str, **changes) -> str | None:
    args = {"workflow_id": WF, "update": "decide", "arg": DECISION, "now": 1_000} | changes
    return check(changes.pop("key", KEY), token, **{k: v for k, v in args.items() if k != "key"})


def test_a_token_admits_exactly_its_decision_until_it_expires() -> None:
    token = sign(KEY, workflow_id=WF, update="decide", arg=DECISION, expires=1_120)
    assert _check(token) is None
    assert "签名" in _check(token, workflow_id=WF + "x")
    assert "签名" in _check(token, update="rule_objection")
    assert "签名" in _check(token, arg=DECISION.model_copy(update={"decision": "reject", "comment": "不符合"}))
    assert "签名" in _check(token, arg=DECISION.model_copy(update={"actor": "department:YC-FGW"}))
    assert "签名" in _check(token, arg=DECISION.model_copy(update={"amount_fen": 1}))
    assert "过期" in _check(token, now=1_121)
    assert "签名" in _check(token, key=os.urandom(32))
    # A later expiry cannot be written into a token: it is under the MAC.
    assert "签名" in _check(token.replace("v1.1120.", "v1.9999999999."), now=2_000)


def test_missing_malformed_or_keyless_tokens_are_refused() -> None:
    assert "缺少" in _check("")
    assert "格式" in _check("v2.1.abc")
    assert "格式" in _check("v1.soon.abc")
    assert "未配置" in _check("v1.1120.abc", key=b"")
    assert {"decide", "rule_objection", "finance_decision", "rule", "decide_budget", "correct_account"} <= (
        DECISION_UPDATES
    )
