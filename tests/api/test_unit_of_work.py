"""The request's unit of work commits before the response leaves: a client that reads right after a write sees it.

Closing an alert once answered 200 `closed` while its transaction was still open (the session dependency committed
after the response was sent); on PostgreSQL the finance user's next read still listed the alert as open.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from api.app import create_app
from api.auth import mint
from db.repositories import fund_items, reconciliation
from db.session import transaction
from settings import Settings


@pytest.fixture(scope="module")
def settings(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder: Path = tmp_path_factory.mktemp("unit-of-work")
    return Settings(data_dir=folder, database_url=module_db_url, jwt_secret="unit-of-work-test-secret-" + "x" * 24)


class Order:
    """An ASGI wrapper and a session listener that write down, in order, commits and response bodies sent."""

    def __init__(self, app) -> None:
        self.app = app
        self.log: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        async def recording_send(message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.log.append("response sent")
            await send(message)

        await self.app(scope, receive, recording_send if scope["type"] == "http" else send)

    def committed(self, _session: Session) -> None:
        self.log.append("committed")


def test_a_write_is_committed_before_its_response_is_sent(settings: Settings) -> None:
    with transaction(settings.db_url) as session:
        fund_items.add_department(session=session, code="YC-CZJ", name="宜昌市财政局", region_code="420500", kind="finance")
        alert_id = reconciliation.raise_alert(session=session, kind="recon_missing_ours", ref="uow:1", message="x").id
    order = Order(create_app(settings))
    finance = {"Authorization": f"Bearer {mint(settings.jwt_key(), role='finance', subject='YC-CZJ')}"}
    event.listen(Session, "after_commit", order.committed)
    try:
        with TestClient(order) as client:
            closed = client.post(f"/api/v1/alerts/{alert_id}/close", json={"note": "已与国库核实"}, headers=finance)
    finally:
        event.remove(Session, "after_commit", order.committed)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert "committed" in order.log and order.log.index("committed") < order.log.index("response sent"), order.log
    with transaction(settings.db_url) as session:
        assert reconciliation.count_open_alerts(session=session) == 0
