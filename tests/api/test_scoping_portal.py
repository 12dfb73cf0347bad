"""Who may call the enterprise side (企业端): the payout account and calculator API, and the /web/me pages.

The world is tests/api/test_scoping.py's (its fixtures are reused): ent_a applies with an account on file, ent_b has
none. The pages are the enterprise's own: staff are refused (403, they have the workbench), the other enterprise's
case is not found (404), nobody signed in goes to the login page (303). Actions that pass the scope answer by sending
the enterprise back to its page (303) with the service's answer (the stand-in Temporal knows no workflow).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.scoping import ENTERPRISES, Row, World, cases_of, check, ids_of, page_headers
from tests.api.test_scoping import client, settings, world  # noqa: F401  (the shared world and client fixtures)

OWN_A = frozenset({"admin", "ent_a"})
ACCOUNT_A = {"acct_name": "宜昌甲科技有限公司", "acct_no": "6222020200112233", "bank_name": "中国工商银行宜昌分行",
             "bank_code": "102526000012"}  # fmt: skip
CASE_A = {"case_id": "case_a"}


def _page(method: str, path: str, allowed: frozenset[str], **kw) -> Row:
    return Row(method, path, allowed, auth="cookie", anonymous=(303,), **kw)


TABLE: list[Row] = [
    Row("PUT", "/api/v1/enterprises/{uscc}/payout-account", OWN_A, fill={"uscc": "uscc_a"}, body=ACCOUNT_A),
    Row("GET", "/api/v1/enterprises/{uscc}/calculator", OWN_A, fill={"uscc": "uscc_a"}),
    _page("GET", "/web/me", ENTERPRISES),
    _page("GET", "/web/me/policies", ENTERPRISES),
    # The world's items have no stored configuration, so no enterprise finds them listed: in scope, not found.
    _page("GET", "/web/me/policies/{code}", ENTERPRISES, fill={"code": "apply_code"}, ok=(404,)),
    _page("POST", "/web/me/policies/{code}/apply", ENTERPRISES, fill={"code": "apply_code"}, ok=(303,)),
    _page("GET", "/web/me/cases/{case_id}", frozenset({"ent_a"}), fill=CASE_A),
    _page("GET", "/web/me/cases/{case_id}/status", frozenset({"ent_a"}), fill=CASE_A),
    _page("POST", "/web/me/cases/{case_id}/withdraw", frozenset({"ent_a"}), fill=CASE_A, form={}, ok=(303,)),
    _page("POST", "/web/me/cases/{case_id}/supplement", frozenset({"ent_a"}), fill=CASE_A, form={"comment": "补"},
          ok=(303,)),
    _page("POST", "/web/me/cases/{case_id}/account", frozenset({"ent_a"}), fill=CASE_A, form=ACCOUNT_A, ok=(303,)),
    _page("GET", "/web/me/enterprise", ENTERPRISES),
    _page("POST", "/web/me/enterprise/account", ENTERPRISES, form=ACCOUNT_A, ok=(303,)),  # ent_b: refused by name
    _page("POST", "/web/me/enterprise/push", ENTERPRISES, form={"opt_out": "0"}, ok=(303,)),
]

PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:  # noqa: F811
    check(client, row, world, caller)


def test_another_enterprise_s_account_is_refused_by_name(client: TestClient, world: World) -> None:  # noqa: F811
    """ent_b filing ent_a's name as its own account holder: the name rule, in Chinese, on the page."""
    client.cookies.clear()
    r = client.post("/web/me/enterprise/account", data=ACCOUNT_A, headers=page_headers(world, "ent_b"))
    assert r.status_code == 303 and "%E4%B8%8D%E4%B8%80%E8%87%B4" in r.headers["location"]  # 不一致
