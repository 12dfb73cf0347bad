"""Providers against the fake servers, the dispatcher (limits, quiet hours, retries), receipts and statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from activities.notices import Dispatcher
from api.app import create_app
from api.auth import mint
from gateways.sms import SendResult, SmsProvider
from gateways.sms.http import HttpProvider
from rules.sms import QuietHours
from tests.sms.conftest import RECEIPT_HEADERS
from tests.sms.support import KEY, NOON, Clock, aliyun, dispatcher, notice, queue, tencent

# -- providers through the official SDKs ----------------------------------------------------------------------------


def test_aliyun_named_params_out_id_and_error_codes(settings, world, fake) -> None:
    clock = Clock(NOON)
    nid = queue(settings, world)
    report = dispatcher(settings, aliyun(fake), clock).dispatch_due()
    assert report.sent == 1
    sent = [r for r in fake.requests if r.key == str(nid)][-1]
    assert sent.dialect == "aliyun" and sent.phone == "13800138000" and sent.template == "SMS_ZHIDA_PAID"
    assert sent.params == {"enterprise": "宜昌某科技有限公司", "item": "高企奖励", "amount_caps": "壹拾贰万叁仟肆佰伍拾陆元整",
                           "amount": "123,456.00元", "acct_tail": "1234"}  # fmt: skip
    n = notice(settings, nid)
    assert n.status == "sent" and n.provider == "aliyun" and n.provider_msg_id.endswith("^0")
    assert n.phone_masked == "138****8000" and n.attempts == 1

    bad = queue(settings, world, phone="13900000001", stage="approved")
    fake.phone_codes["13900000001"] = "isv.MOBILE_NUMBER_ILLEGAL"
    assert dispatcher(settings, aliyun(fake), clock).dispatch_due().failed == 1
    assert "isv.MOBILE_NUMBER_ILLEGAL" in notice(settings, bad).fail_reason

    limited = queue(settings, world, stage="approved", phone="13700000002")
    fake.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    assert dispatcher(settings, aliyun(fake), clock).dispatch_due().retrying == 1
    n = notice(settings, limited)
    assert n.status == "queued" and n.next_attempt_at.replace(tzinfo=UTC) >= NOON + timedelta(minutes=1)


def test_tencent_ordered_params_session_context_and_errors(settings, world, fake) -> None:
    clock = Clock(NOON)
    nid = queue(settings, world, stage="paid", phone="13600000003")
    assert dispatcher(settings, tencent(fake), clock).dispatch_due().sent == 1
    sent = [r for r in fake.requests if r.key == str(nid)][-1]
    assert sent.dialect == "tencent" and sent.phone == "+8613600000003"
    assert sent.params == ["宜昌某科技有限公司", "高企奖励", "壹拾贰万叁仟肆佰伍拾陆元整", "123,456.00元", "1234"]
    assert notice(settings, nid).provider_msg_id.startswith("2433:")

    p = tencent(fake)
    msg = __import__("gateways.sms.base", fromlist=["SmsMessage"]).SmsMessage(
        notice_id=1, phone_e164="+8613600000003", template_key="paid", params={}, content="", template_id="1"
    )
    fake.fail_next("InvalidParameterValue.IncorrectPhoneNumber")
    r = p.send(msg)
    assert not r.ok and not r.retryable and r.code == "InvalidParameterValue.IncorrectPhoneNumber"
    fake.fail_next("LimitExceeded.PhoneNumberOneHourLimit")
    r = p.send(msg)
    assert r.retryable and r.rate_limited
    fake.fail_next("AuthFailure.SignatureFailure")  # request-level Response.Error: the SDK raises
    r = p.send(msg)
    assert not r.ok and not r.retryable and r.code == "AuthFailure.SignatureFailure"


def test_generic_http_provider(settings, world, fake) -> None:
    p = HttpProvider(url=f"http://{fake.endpoint}/send", token="t")
    nid = queue(settings, world, phone="13500000004")
    assert dispatcher(settings, p, Clock(NOON)).dispatch_due().sent == 1
    assert fake.by_key[f"notice-{nid}"] == 1
    msg = __import__("gateways.sms.base", fromlist=["SmsMessage"]).SmsMessage(1, "+8613500000004", "paid", {}, "c")
    fake.fail_next("503")
    assert p.send(msg).retryable
    fake.fail_next("InvalidPhone")
    assert not p.send(msg).retryable


# -- dispatcher ------------------------------------------------------------------------------------------------------


def test_retry_with_backoff_never_sends_twice(settings, world, fake) -> None:
    clock = Clock(NOON)
    nid = queue(settings, world, phone="13400000005")
    d = dispatcher(settings, aliyun(fake), clock)
    fake.fail_next("isp.SYSTEM_ERROR", times=2)
    assert d.dispatch_due().retrying == 1
    assert d.dispatch_due().claimed == 0  # not yet due
    clock.now += timedelta(seconds=31)
    assert d.dispatch_due().retrying == 1
    clock.now += timedelta(seconds=61)
    assert d.dispatch_due().sent == 1
    for _ in range(3):  # later rounds never pick it up again
        clock.now += timedelta(hours=1)
        d.dispatch_due()
    assert fake.by_key[str(nid)] == 3 and fake.delivered_by_key[str(nid)] == 1
    assert notice(settings, nid).attempts == 3


def test_gives_up_after_max_attempts(settings, world, fake) -> None:
    clock = Clock(NOON)
    nid = queue(settings, world, phone="13400000006")
    d = dispatcher(settings, aliyun(fake), clock, max_attempts=2)
    fake.fail_next("isp.SYSTEM_ERROR", times=2)
    d.dispatch_due()
    clock.now += timedelta(minutes=5)
    assert d.dispatch_due().failed == 1
    assert notice(settings, nid).status == "failed"


class Exploding(SmsProvider):
    name = "boom"

    def send(self, message):
        raise RuntimeError("provider bug")


class Timeout(SmsProvider):
    name = "slow"

    def send(self, message):
        return SendResult(ok=False, code="Timeout", message="read timeout", ambiguous=True)


def test_failing_provider_never_raises(settings, world) -> None:
    nid = queue(settings, world, phone="13300000007")
    report = dispatcher(settings, Exploding(), Clock(NOON)).dispatch_due()
    assert report.retrying == 1 and notice(settings, nid).status == "queued"
    # An ambiguous answer is not resent; it waits for the receipt.
    other = queue(settings, world, phone="13300000008")
    clock = Clock(NOON + timedelta(hours=2))
    assert dispatcher(settings, Timeout(), clock).dispatch_due().uncertain >= 1
    assert notice(settings, other).status == "sent" and "等待回执" in notice(settings, other).fail_reason
    bad = Dispatcher(db_url="sqlite:////nonexistent/dir/x.db", fernet_key=KEY, provider=Exploding())
    assert bad.dispatch_due().errors


def test_invalid_phone_or_params_fail_before_sending(settings, world, fake) -> None:
    before = len(fake.requests)
    a = queue(settings, world, phone="010-12345678")
    b = queue(settings, world, phone="")
    c = queue(settings, world, stage="rejected", phone="13200000009")  # no reasons/officer
    assert dispatcher(settings, aliyun(fake), Clock(NOON)).dispatch_due().failed == 3
    assert "不是手机号码" in notice(settings, a).fail_reason
    assert "未登记手机号" in notice(settings, b).fail_reason
    assert "reasons" in notice(settings, c).fail_reason
    assert len(fake.requests) == before


def test_rate_limit_defers_same_phone_same_template(settings, world, fake) -> None:
    clock = Clock(NOON)
    ids = [queue(settings, world, stage="policy_push_listed", phone="13100000010", deadline=NOON.date())
           for _ in range(3)]  # fmt: skip
    d = dispatcher(settings, aliyun(fake), clock)
    r = d.dispatch_due()
    assert (r.sent, r.deferred) == (1, 2)
    assert d.dispatch_due().claimed == 0
    clock.now += timedelta(minutes=1, seconds=1)
    assert d.dispatch_due().sent == 1
    clock.now += timedelta(minutes=1, seconds=1)
    assert d.dispatch_due().sent == 1
    assert all(fake.delivered_by_key[str(i)] == 1 for i in ids)


def test_quiet_hours_defer_non_urgent_only(settings, world, fake) -> None:
    night = Clock(datetime(2026, 5, 6, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    routine = queue(settings, world, stage="approved", phone="13000000011")
    urgent = queue(settings, world, stage="payment_returned", phone="13000000012", reason="户名不符",
                   deadline=NOON.date())  # fmt: skip
    d = dispatcher(settings, aliyun(fake), night, quiet=QuietHours.parse("22:00", "08:00"))
    r = d.dispatch_due()
    assert (r.sent, r.deferred) == (1, 1)
    assert notice(settings, urgent).status == "sent"
    n = notice(settings, routine)
    assert n.status == "queued" and n.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 5, 7, 0, 0, tzinfo=UTC)
    night.now = datetime(2026, 5, 7, 0, 0, 1, tzinfo=UTC)
    assert d.dispatch_due().sent == 1


def test_outbox_delivers_at_once(settings, world) -> None:
    from gateways.sms import OutboxProvider

    night = Clock(datetime(2026, 5, 6, 15, 0, tzinfo=UTC))
    ids = [queue(settings, world, phone="13800138000") for _ in range(3)]
    assert dispatcher(settings, OutboxProvider(), night).dispatch_due().delivered == 3
    assert {notice(settings, i).status for i in ids} == {"delivered"}


# -- receipts and statistics -------------------------------------------------------------------------------------------


def test_receipts_idempotent_and_stats(settings, world, fake) -> None:
    clock = Clock(NOON)
    ok_id = queue(settings, world, phone="15900000013")
    bad_id = queue(settings, world, phone="15900000014")
    tx_id = queue(settings, world, phone="15900000015")
    dispatcher(settings, aliyun(fake), clock).dispatch_due()
    ok_n, bad_n = notice(settings, ok_id), notice(settings, bad_id)
    ali = [
        {"phone_number": "15900000013", "send_time": "2026-05-06 12:00:00", "report_time": "2026-05-06 12:00:05",
         "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
         "biz_id": ok_n.provider_msg_id, "out_id": str(ok_id)},
        {"phone_number": "15900000014", "send_time": "2026-05-06 12:00:00", "report_time": "2026-05-06 12:00:05",
         "success": False, "err_code": "MK:0001", "err_msg": "空号", "sms_size": "1",
         "biz_id": bad_n.provider_msg_id, "out_id": str(bad_id)},
    ]  # fmt: skip
    app = create_app(settings)
    with TestClient(app, headers=RECEIPT_HEADERS) as client:
        for _ in range(2):  # Alibaba resends
            r = client.post("/api/v1/sms/receipts/aliyun", json=ali)
            assert r.status_code == 200 and r.json() == {"code": 0, "msg": "成功"}
        assert notice(settings, ok_id).status == "delivered"
        late = dict(ali[0], success=False, err_code="X")  # a stale contradicting resend changes nothing
        client.post("/api/v1/sms/receipts/aliyun", json=[late])
        assert notice(settings, ok_id).status == "delivered"
        failed = notice(settings, bad_id)
        assert failed.status == "failed" and "MK:0001" in failed.fail_reason and "空号" in failed.fail_reason

        tx = [{"user_receive_time": "2026-05-06 12:00:09", "nationcode": "86", "mobile": "15900000015",
               "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功",
               "sid": notice(settings, tx_id).provider_msg_id, "ext": str(tx_id)}]  # fmt: skip
        for _ in range(2):
            r = client.post("/api/v1/sms/receipts/tencent", json=tx)
            assert r.json() == {"result": 0, "errmsg": "OK"}
        assert notice(settings, tx_id).status == "delivered"  # matched by SessionContext (ext)
        assert client.post("/api/v1/sms/receipts/tencent", content=b"not json").status_code == 400
        assert client.post("/api/v1/sms/receipts/aliyun", json=[{"x": 1}]).json()["code"] == 1

        finance = mint(settings.jwt_key(), role="finance", subject=world["finance"])
        dept = mint(settings.jwt_key(), role="department", subject=world["dept"])
        other = mint(settings.jwt_key(), role="department", subject=world["other_dept"])
        unknown = mint(settings.jwt_key(), role="department", subject="NOPE")
        ent = mint(settings.jwt_key(), role="enterprise", subject=world["uscc"])
        rows = client.get("/api/v1/sms/stats", headers={"Authorization": f"Bearer {dept}"}).json()["items"]
        assert len(rows) == 1
        assert (rows[0]["delivered"], rows[0]["failed"]) == (2, 1)
        allrows = client.get("/api/v1/sms/stats", headers={"Authorization": f"Bearer {finance}"}).json()["items"]
        assert any(r["fund_item_id"] == world["item"] for r in allrows)
        url = f"/api/v1/sms/stats/{world['item']}/failures"
        fails = client.get(url, headers={"Authorization": f"Bearer {dept}"}).json()["failures"]
        assert [f["notice_id"] for f in fails] == [bad_id] and fails[0]["phone"] == "159****0014"
        assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 404  # not its item
        assert client.get(url, headers={"Authorization": f"Bearer {unknown}"}).status_code == 401
        assert client.get(url, headers={"Authorization": f"Bearer {ent}"}).status_code == 403
