"""Receipt polling, the fallback when delivery callbacks do not come: Alibaba QuerySendDetails and Tencent
PullSmsSendStatus through the official SDKs against the fake server, applied through the same code path as the
callbacks, idempotent for reports seen twice (a callback and a poll, or a pull that answers twice)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gateways.sms import SendResult, SmsProvider
from gateways.sms.base import ReceiptQuery
from standins.sms.servers import FakeSmsServer
from tests.sms.conftest import RECEIPT_HEADERS
from tests.sms.support import NOON, Clock, aliyun, dispatcher, notice, queue, tencent

WAIT = 600.0


@pytest.fixture
def clock(fake: FakeSmsServer) -> Iterator[Clock]:
    """The test's clock, shared with the fake server (QuerySendDetails looks sends up by their date)."""
    clock = Clock(NOON)
    fake.clock = clock
    yield clock
    fake.clock = None


@pytest.fixture
def own_fake(db_url: str) -> Iterator[FakeSmsServer]:
    """A fake of its own: a Tencent pull drains every report the server holds."""
    with FakeSmsServer() as server:
        yield server


def test_aliyun_polls_reports_without_callbacks(settings, world, fake, clock) -> None:
    delivered = queue(settings, world, phone="18600000001")
    unreachable = queue(settings, world, phone="18600000002")
    waiting = queue(settings, world, phone="18600000003")
    fake.report_codes["18600000002"] = "MK:0001"
    fake.pending_phones.add("18600000003")
    d = dispatcher(settings, aliyun(fake), clock, receipt_wait_seconds=WAIT, receipt_max_polls=3)
    assert d.dispatch_due().sent == 3
    n = notice(settings, delivered)
    assert n.status == "sent" and n.next_attempt_at.replace(tzinfo=UTC) == NOON + timedelta(seconds=WAIT)

    before = fake.queries["QuerySendDetails"]
    assert d.poll_receipts().polled == 0  # nothing is asked before the wait is over
    assert fake.queries["QuerySendDetails"] == before

    clock.now += timedelta(seconds=WAIT + 1)
    report = d.poll_receipts()
    assert (report.polled, report.applied, report.pending) == (3, 2, 1)
    assert fake.queries["QuerySendDetails"] == before + 3
    n = notice(settings, delivered)
    assert n.status == "delivered" and n.receipt_code == "DELIVERED" and n.delivered_at is not None
    n = notice(settings, unreachable)
    assert n.status == "failed" and "MK:0001" in n.fail_reason
    n = notice(settings, waiting)
    assert n.status == "sent" and n.receipt_polls == 1
    assert n.next_attempt_at.replace(tzinfo=UTC) == clock.now + timedelta(seconds=2 * WAIT)  # backs off

    # The callback comes late for a notice the poll already settled: a duplicate, nothing changes.
    ok = notice(settings, delivered)
    late = [{"phone_number": "18600000001", "send_time": "2026-05-06 12:00:00", "report_time": "2026-05-06 12:20:00",
             "success": False, "err_code": "MK:0005", "err_msg": "关机", "biz_id": ok.provider_msg_id,
             "out_id": str(delivered)}]  # fmt: skip
    with TestClient(create_app(settings), headers=RECEIPT_HEADERS) as client:
        assert client.post("/api/v1/sms/receipts/aliyun", json=late).json() == {"code": 0, "msg": "成功"}
    assert notice(settings, delivered).status == "delivered"

    # The carrier's report arrives; the next poll settles the last one, and nothing is polled again.
    fake.pending_phones.discard("18600000003")
    clock.now += timedelta(seconds=2 * WAIT + 1)
    assert d.poll_receipts().applied == 1
    assert notice(settings, waiting).status == "delivered"
    clock.now += timedelta(days=1)
    assert d.poll_receipts().polled == 0


def test_polls_stop_after_the_limit_and_a_timeout_is_settled_by_a_poll(settings, world, fake, clock) -> None:
    silent = queue(settings, world, phone="18600000004")
    fake.pending_phones.add("18600000004")
    d = dispatcher(settings, aliyun(fake), clock, receipt_wait_seconds=WAIT, receipt_max_polls=2)
    d.dispatch_due()
    clock.now += timedelta(seconds=WAIT + 1)
    assert d.poll_receipts().pending == 1
    clock.now += timedelta(seconds=2 * WAIT + 1)
    assert d.poll_receipts().gave_up == 1
    n = notice(settings, silent)
    assert (n.status, n.receipt_polls, n.next_attempt_at) == ("sent", 2, None)  # 已发送, delivery unknown
    clock.now += timedelta(days=1)
    assert d.poll_receipts().polled == 0


class TimesOutButSends(SmsProvider):
    """The request reached Alibaba but the answer timed out: the poll finds the send by OutId."""

    name = "aliyun"

    def __init__(self, fake: FakeSmsServer) -> None:
        self.real = aliyun(fake)

    def send(self, message):
        self.real.send(message)
        return SendResult(ok=False, code="Timeout", message="read timeout", ambiguous=True)

    def query_receipts(self, queries: list[ReceiptQuery]):
        return self.real.query_receipts(queries)


def test_ambiguous_send_is_settled_by_polling_without_resending(settings, world, fake, clock) -> None:
    nid = queue(settings, world, phone="18600000005")
    d = dispatcher(settings, TimesOutButSends(fake), clock, receipt_wait_seconds=WAIT)
    assert d.dispatch_due().uncertain == 1
    clock.now += timedelta(seconds=WAIT + 1)
    assert d.poll_receipts().applied == 1
    n = notice(settings, nid)
    assert n.status == "delivered" and n.fail_reason is None
    assert fake.by_key[str(nid)] == 1  # sent once, never again


def test_tencent_pull_applies_each_report_once(settings, world, own_fake) -> None:
    clock = Clock(NOON)
    own_fake.duplicate_reports = True  # every report is answered twice, as providers resend
    own_fake.report_codes["18600000007"] = "MK:0012"
    ok, bad = queue(settings, world, phone="18600000006"), queue(settings, world, phone="18600000007")
    d = dispatcher(settings, tencent(own_fake), clock, receipt_wait_seconds=WAIT)
    assert d.dispatch_due().sent == 2
    clock.now += timedelta(seconds=WAIT + 1)
    report = d.poll_receipts()
    assert (report.polled, report.applied, report.duplicate) == (2, 2, 2)
    n = notice(settings, ok)
    assert n.status == "delivered" and n.receipt_code == "DELIVRD"
    n = notice(settings, bad)
    assert n.status == "failed" and "停机" in n.fail_reason
    assert own_fake.queries["PullSmsSendStatus"] == 1
    # A pending report is pulled by a later poll.
    own_fake.duplicate_reports = False
    own_fake.pending_phones.add("18600000008")
    late = queue(settings, world, phone="18600000008")
    d.dispatch_due()
    clock.now += timedelta(seconds=WAIT + 1)
    assert d.poll_receipts().pending == 1
    own_fake.release_pending("18600000008")
    clock.now += timedelta(seconds=2 * WAIT + 1)
    assert d.poll_receipts().applied == 1 and notice(settings, late).status == "delivered"
