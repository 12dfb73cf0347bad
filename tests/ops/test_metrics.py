"""/metrics: the figures of a known dataset read back from the exposition, and who may read it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from api.app import create_app
from db.models import Enterprise, Notice, PaymentInstruction
from db.session import reading, transaction
from schemas.vocabulary import NoticeStatus, PaymentStatus
from services import metrics
from settings import Settings
from tests.db import cockpit_dataset
from tests.db.cockpit_dataset import bj


@pytest.fixture(scope="module")
def dataset(module_db_url: str) -> cockpit_dataset.Dataset:
    with transaction(module_db_url) as session:
        data = cockpit_dataset.build(session)
        # Every paid instruction took 4 s from creation to settlement; one case has two notices waiting, one failed.
        for row in session.scalars(select(PaymentInstruction).where(PaymentInstruction.status == PaymentStatus.PAID)):
            row.created_at = row.settled_at - timedelta(seconds=4)
        ent = session.get(Enterprise, data.ids["e1"])
        for n, status in enumerate((NoticeStatus.QUEUED, NoticeStatus.SENDING, NoticeStatus.FAILED)):
            session.add(Notice(dedupe_key=f"metrics:{data.tag}:{n}", enterprise_id=ent.id, case_id=data.ids["c1"],
                               template_key="paid", params={}, content="…", status=status, phone_masked="138****0000",
                               phone_enc="secret-phone"))  # fmt: skip
    return data


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_the_exposition_holds_the_known_figures(module_db_url: str, dataset: cockpit_dataset.Dataset) -> None:
    with reading(module_db_url) as session:
        text = metrics.exposition(session=session, now=bj(2026, 9, 20, 12)).decode()
    got = samples(text)
    assert got[("zhida_cases", (("mode", "instant"), ("status", "paid")))] == 4  # c1 c2 c3 c9
    assert got[("zhida_cases", (("mode", "review"), ("status", "paid")))] == 2  # c6 c8
    assert got[("zhida_cases", (("mode", "review"), ("status", "finance_review")))] == 1
    assert got[("zhida_cases", (("mode", "no_application"), ("status", "paid")))] == 0  # zero pairs are there too
    assert got[("zhida_payments", (("status", "paid"),))] == 6
    assert got[("zhida_payments", (("status", "returned"),))] == 1
    # c1 and c7 timed out; on 20 September c5's review (due 10 September) is overdue, c7's joint stage (30th) not yet.
    assert got[("zhida_stage_deadlines_missed", (("state", "timed_out"),))] == 2
    assert got[("zhida_stage_deadlines_missed", (("state", "open_overdue"),))] == 1
    assert got[("zhida_outbox_depth", ())] == 2
    assert got[("zhida_notices", (("category", "case"), ("status", "failed")))] == 1
    assert got[("zhida_payment_latency_seconds_count", ())] == 6
    assert got[("zhida_payment_latency_seconds_sum", ())] == pytest.approx(24, abs=0.01)
    assert got[("zhida_payment_latency_seconds_bucket", (("le", "2.5"),))] == 0
    assert got[("zhida_payment_latency_seconds_bucket", (("le", "5.0"),))] == 6
    # Counts only: no name, phone, account or USCC reaches the exposition.
    with reading(module_db_url) as session:
        names = [e.name for e in session.scalars(select(Enterprise))] + [
            e.uscc for e in session.scalars(select(Enterprise))
        ]
    for secret in [*names, "138****0000", "secret-phone", "6222****0001"]:
        assert secret not in text


def _client(url: str, tmp_path: Path, client_host: str, **settings: str) -> TestClient:
    app = create_app(Settings(data_dir=tmp_path, database_url=url, **settings))
    return TestClient(app, client=(client_host, 50000))


def test_without_a_token_only_this_host_may_read_metrics(module_db_url: str, dataset, tmp_path: Path) -> None:
    with _client(module_db_url, tmp_path, "127.0.0.1") as local:
        response = local.get("/metrics")
        assert response.status_code == 200 and "zhida_cases" in response.text
    with _client(module_db_url, tmp_path, "10.1.2.3") as remote:
        response = remote.get("/metrics")
        assert response.status_code == 403 and "本机" in response.json()["error"]["message"]


def test_with_a_token_configured_metrics_need_it(module_db_url: str, dataset, tmp_path: Path) -> None:
    with _client(module_db_url, tmp_path, "10.1.2.3", metrics_token="scrape-" + "s" * 30) as remote:
        assert remote.get("/metrics").status_code == 401
        assert remote.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        response = remote.get("/metrics", headers={"Authorization": "Bearer scrape-" + "s" * 30})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    with _client(module_db_url, tmp_path, "127.0.0.1", metrics_token="scrape-" + "s" * 30) as local:
        assert local.get("/metrics").status_code == 401  # a token configured: loopback is no exception


def test_the_worker_counts_treasury_errors_and_sms_refusals(tmp_path: Path) -> None:
    """What only the calling process sees goes to its own registry (the worker's endpoint)."""
    from prometheus_client import REGISTRY

    from gateways.metrics import sms_failed
    from gateways.treasury import HttpTreasuryGateway, TreasuryUnavailable
    from tests.support import free_port

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("zhida_treasury_errors_total", kind="unreachable")
    settings = Settings(data_dir=tmp_path)
    gateway = HttpTreasuryGateway(f"http://127.0.0.1:{free_port()}", settings.zhida_private_pem(), "zhida-1")
    with gateway, pytest.raises(TreasuryUnavailable):
        gateway.query("ZD000000000001A01")
    assert value("zhida_treasury_errors_total", kind="unreachable") == before + 1
    before = value("zhida_sms_send_failures_total", provider="aliyun", code="isv.BUSINESS_LIMIT_CONTROL")
    sms_failed("aliyun", "isv.BUSINESS_LIMIT_CONTROL")
    assert value("zhida_sms_send_failures_total", provider="aliyun", code="isv.BUSINESS_LIMIT_CONTROL") == before + 1
