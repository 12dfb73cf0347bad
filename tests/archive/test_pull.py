"""Pulls from the data-sharing platform against its real stand-in (HTTP on a free port, signed requests, pages after a
watermark): the records go through the same import (validation, history); a timeout, a partial page, schema drift
(a renamed or a retyped field), a refused signature or a bad row stores nothing but the failed pull with a Chinese
reason, and the watermark stays where it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import ArchiveImport, ArchivePull, ArchiveValue, Enterprise
from gateways.datashare import DataShareClient
from services import archive_pull
from services.errors import Forbidden
from standins.datashare import DataShareAdmin, DataShareServer, DataShareStandIn
from tests.archive.support import ADMIN, DEPT
from tests.factories import new_enterprise

KEY, SECRET = "zhida-test", "s3cret-of-the-test-app"


@pytest.fixture(scope="module")
def datashare() -> Iterator[DataShareServer]:
    with DataShareServer(DataShareStandIn(apps={KEY: SECRET})) as server:
        yield server


@pytest.fixture
def platform(datashare: DataShareServer) -> Iterator[DataShareAdmin]:
    datashare.state.datasets.clear()
    admin = DataShareAdmin(datashare.url, KEY, SECRET)
    admin.faults()
    yield admin
    admin.faults()


def _client(server: DataShareServer, *, secret: str = SECRET, timeout: float = 5.0) -> DataShareClient:
    return DataShareClient(server.url, KEY, secret, timeout=timeout, page_size=2)


def _people(session: Session, platform: DataShareAdmin, n: int = 5) -> list[Enterprise]:
    people = [new_enterprise(session, employees=1) for _ in range(n)]
    platform.put("social_insurance", [{"uscc": e.uscc, "employees": 10 + i, "data_date": "2026-11-30"}
                                      for i, e in enumerate(people)])  # fmt: skip
    return people


def _pull(session: Session, server: DataShareServer, **kw) -> archive_pull.PullResult:
    client = _client(server, **kw)
    try:
        return archive_pull.pull(session=session, scope=ADMIN, client=client, source_name="social")
    finally:
        client.close()


def _employees(session: Session, people: list[Enterprise]) -> list[int | None]:
    session.expire_all()
    return [session.get(Enterprise, e.id).employees for e in people]


def _stored_nothing(session: Session, people: list[Enterprise]) -> None:
    assert _employees(session, people) == [1] * len(people)
    ids = [e.id for e in people]
    assert (
        session.scalar(select(func.count()).select_from(ArchiveValue).where(ArchiveValue.enterprise_id.in_(ids))) == 0
    )


def test_a_signed_paged_pull_imports_everything_then_only_what_changed_after_the_watermark(
    session: Session, datashare: DataShareServer, platform: DataShareAdmin
) -> None:
    people = _people(session, platform)
    first = _pull(session, datashare)
    assert (first.status, first.pages, first.records, first.since) == ("succeeded", 3, 5, "")
    assert _employees(session, people) == [10, 11, 12, 13, 14]
    history = session.scalars(select(ArchiveValue).where(ArchiveValue.enterprise_id == people[0].id)).all()
    assert [(h.field, h.value, h.source, h.import_id, str(h.source_date)) for h in history] == [
        ("employees", 10, "social", first.import_id, "2026-11-30")
    ]
    platform.put("social_insurance", [{"uscc": people[3].uscc, "employees": 99, "data_date": "2026-12-01"}])
    second = _pull(session, datashare)
    assert (second.status, second.since, second.records, second.pages) == ("succeeded", first.watermark, 1, 1)
    assert second.watermark > first.watermark and second.import_id != first.import_id
    assert _employees(session, people) == [10, 11, 12, 99, 14]
    third = _pull(session, datashare)
    assert (third.status, third.records, third.import_id, third.reason) == ("succeeded", 0, None, "没有新数据")
    assert third.watermark == second.watermark


def test_a_page_that_times_out_is_a_failed_pull_that_stores_nothing_and_keeps_the_watermark(
    session: Session, datashare: DataShareServer, platform: DataShareAdmin
) -> None:
    people = _people(session, platform)
    platform.faults(timeout_pages=[2], delay_seconds=1.0)
    failed = _pull(session, datashare, timeout=0.3)
    assert (failed.status, failed.failure, failed.retryable, failed.since) == ("failed", "timeout", True, "")
    assert "未应答" in failed.reason and "第 2 页" in failed.reason
    _stored_nothing(session, people)
    platform.faults()
    done = _pull(session, datashare)
    assert (done.status, done.since, done.records) == ("succeeded", "", 5)


def test_a_partial_page_is_refused_whole(
    session: Session, datashare: DataShareServer, platform: DataShareAdmin
) -> None:
    people = _people(session, platform)
    platform.faults(short_pages=[2])
    failed = _pull(session, datashare)
    assert (failed.status, failed.failure, failed.retryable) == ("failed", "partial_page", True)
    assert failed.reason == "数据集 social_insurance 第 2 页不完整：应有 2 条，收到 1 条（分页不完整）"
    _stored_nothing(session, people)


def test_schema_drift_a_renamed_field_is_reported_not_swallowed(
    session: Session, datashare: DataShareServer, platform: DataShareAdmin
) -> None:
    people = _people(session, platform)
    platform.faults(drift=[{"dataset": "social_insurance", "rename": {"employees": "insured_count"}, "from_record": 4}])
    failed = _pull(session, datashare)
    assert (failed.status, failed.failure, failed.retryable, failed.import_id) == (
        "failed",
        "schema_drift",
        False,
        None,
    )
    assert "缺少约定字段：employees（参保人数，自第 4 条起）" in failed.reason
    assert "出现未约定字段：insured_count（自第 4 条起）" in failed.reason
    _stored_nothing(session, people)
    assert session.scalar(select(func.count()).select_from(ArchiveImport).where(ArchiveImport.source == "social")) == 0
    row = session.get(ArchivePull, failed.id)
    assert (row.status, row.failure, row.watermark) == ("failed", "schema_drift", "")


def test_schema_drift_a_retyped_field_is_reported(
    session: Session, datashare: DataShareServer, platform: DataShareAdmin
) -> None:
    people = _people(session, platform)
    platform.faults(drift=[{"dataset": "social_insurance", "retype": {"employees": "string"}}])
    failed = _pull(session, datashare)
    assert failed.failure == "schema_drift"
    assert "字段类型改变：employees（参保人数）应为整数，第 1 条为字符串" in failed.reason
    _stored_nothing(session, people)


def test_a_wrong_signature_is_refused_by_the_platform(
    session: Session, datashare: DataShareServer, platform: DataShareAdmin
) -> None:
    people = _people(session, platform, n=1)
    failed = _pull(session, datashare, secret="not-the-secret")
    assert (failed.failure, failed.retryable) == ("refused", False)
    assert "HTTP 401" in failed.reason and "签名 X-Signature 不符" in failed.reason
    _stored_nothing(session, people)


def test_a_record_that_fails_validation_fails_the_pull_through_the_import_report(
    session: Session, datashare: DataShareServer, platform: DataShareAdmin
) -> None:
    people = _people(session, platform, n=3)
    platform.put("social_insurance", [{"uscc": people[1].uscc, "employees": -3, "data_date": "2026-11-30"}])
    failed = _pull(session, datashare)
    assert (failed.status, failed.failure) == ("failed", "invalid_rows")
    imported = session.get(ArchiveImport, failed.import_id)
    assert (imported.status, imported.error_count) == ("failed", 1)
    assert "应为不小于0的整数" in failed.reason
    _stored_nothing(session, people)


def test_a_department_may_pull_only_the_sources_it_sends(session: Session, datashare: DataShareServer) -> None:
    client = _client(datashare)
    with pytest.raises(Forbidden, match="人力资源和社会保障局报送"):
        archive_pull.pull(session=session, scope=DEPT, client=client, source_name="social")
    client.close()
