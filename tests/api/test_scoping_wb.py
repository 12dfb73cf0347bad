"""Role × endpoint rows for the editor's htmx helpers added by helper "wb" (#12): the guide text generated from the
condition tree, the worked example of the support standard, the SMS preview and the live validation of a section.
They read the form and answer a fragment; they save nothing. The editor is the policy departments'."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.scoping import Row, World, cases_of, check, ids_of
from tests.api.test_scoping import client, settings, world  # noqa: F401  (the shared app and world)

EDITORS = frozenset({"admin", "dept_a", "dept_b"})

# fmt: off
TABLE: list[Row] = [
    Row("POST", "/web/workbench/editor/conditions-text", EDITORS, form={"mode": "instant"}, auth="cookie",
        anonymous=(303,), denied=(403,)),
    Row("POST", "/web/workbench/editor/example", EDITORS, form={"mode": "instant", "standard_kind": "fixed",
        "standard_amount_yuan": "50,000.00"}, auth="cookie", anonymous=(303,), denied=(403,)),
    Row("POST", "/web/workbench/editor/validate", EDITORS, query={"section": "window"}, form={"mode": "instant"},
        auth="cookie", anonymous=(303,), denied=(403,)),
    Row("POST", "/web/workbench/editor/sms-preview", EDITORS, form={"mode": "instant"}, auth="cookie",
        anonymous=(303,), denied=(403,)),
]
# fmt: on
PAIRS = cases_of(TABLE)


@pytest.mark.parametrize(("row", "caller"), PAIRS, ids=ids_of(PAIRS))
def test_who_gets_through(client: TestClient, world: World, row: Row, caller: str) -> None:  # noqa: F811
    check(client, row, world, caller)
