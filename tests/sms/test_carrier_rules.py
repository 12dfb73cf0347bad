"""SMS as Chinese carriers require: the registered 【签名】 first, pushes ending in 拒收请回复R and sent only from
08:00 to 21:00 Beijing time (case notices at any time), per-number caps from settings (every template counts),
and replies from phones (上行短信) from Alibaba and Tencent processed: R / TD / 退订 opt the number out of pushes,
the reply kept as the record of when and how."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from activities.notices import Dispatcher
from api.app import create_app
from db import crypto
from db.models import Notice, SmsReply
from db.session import transaction
from rules import sms_templates
from rules.sms import opt_out_word
from schemas.vocabulary import NoticeCategory, NoticeStatus
from tests.sms.conftest import RECEIPT_HEADERS
from tests.sms.support import NOON, Clock, aliyun, dispatcher, notice, queue


def queue_push(settings, world, phone: str) -> int:
    """A listing push (a marketing-type template) to `phone`, as services.notices queues them."""
    params = {"enterprise": "宜昌某科技有限公司", "item": "高企奖励", "deadline": "2026年6月30日"}
    with transaction(settings.db_url) as s:
        n = Notice(
            dedupe_key=f"t:{uuid.uuid4().hex}",
            enterprise_id=world["ent"],
            fund_item_id=world["item"],
            template_key="policy_push_listed",
            category=NoticeCategory.PUSH,
            params=params,
            content=sms_templates.render("policy_push_listed", params),
            phone_enc=crypto.encrypt(world["key"], phone),
            status=NoticeStatus.QUEUED,
        )
        s.add(n)
        s.flush()
        return n.id


def test_pushes_carry_the_signature_first_and_the_opt_out_last() -> None:
    for key in sms_templates.MARKETING:
        text = sms_templates.get(key).text
        assert text.endswith("拒收请回复R"), key
    rendered = sms_templates.render("policy_push_listed", {"enterprise": "甲公司", "item": "乙", "deadline": "丙"})
    assert rendered.startswith("【惠企直达】") and rendered.endswith("拒收请回复R")
    assert all(not sms_templates.get(k).text.endswith("拒收请回复R") for k in sms_templates.TEMPLATES.keys() - sms_templates.MARKETING)


def test_opt_out_words() -> None:
    for text in ("R", "r", " R ", "ｒ", "TD", "td。", "退订", "退订！"):
        assert opt_out_word(text), text
    for text in ("好的", "RR", "谢谢，已收到", "", "T D 是什么"):
        assert opt_out_word(text) is None, text


def test_a_push_at_2230_waits_until_0800_while_a_case_notice_goes_at_once(settings, world, fake) -> None:
    night = Clock(datetime(2026, 5, 6, 14, 30, tzinfo=UTC))  # 22:30 in Beijing
    push = queue_push(settings, world, "13100000021")
    case = queue(settings, world, stage="approved", phone="13100000022")
    d = dispatcher(settings, aliyun(fake), night)  # the defaults: pushes 08:00–21:00, case notices any time
    report = d.dispatch_due()
    assert (report.sent, report.deferred) == (1, 1)
    assert notice(settings, case).status == NoticeStatus.SENT
    waiting = notice(settings, push)
    assert waiting.status == NoticeStatus.QUEUED
    assert waiting.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 5, 7, 0, 0, tzinfo=UTC)  # 08:00 Beijing
    night.now = datetime(2026, 5, 6, 23, 59, tzinfo=UTC)  # 07:59: still waiting
    assert d.dispatch_due().sent == 0
    night.now = datetime(2026, 5, 7, 0, 0, 1, tzinfo=UTC)
    assert d.dispatch_due().sent == 1
    assert notice(settings, push).status == NoticeStatus.SENT
    sent = [r for r in fake.requests if r.key == str(push)][-1]
    assert sent.template == "SMS_ZHIDA_POLICY_PUSH_LISTED"


def test_a_reply_r_stops_the_next_push_to_that_number_only(settings, world, fake) -> None:
    phone, other = "13100000031", "13100000032"
    with TestClient(create_app(settings), headers=RECEIPT_HEADERS) as client:  # the configured receipt secret
        r = client.post(
            "/api/v1/sms/uplink/aliyun",
            json=[{"phone_number": phone, "send_time": "2026-05-06 11:58:07", "content": "R", "sign_name": "惠企直达",
                   "dest_code": "1234", "sequence_id": 1}],
        )
        assert r.status_code == 200 and r.json() == {"code": 0, "msg": "成功"}
        # The same reply pushed again is kept once; Tencent's reply callback; a reply that is not an opt-out.
        client.post("/api/v1/sms/uplink/aliyun", json=[{"phone_number": phone, "send_time": "2026-05-06 11:58:07",
                                                        "content": "R", "sign_name": "惠企直达"}])  # fmt: skip
        r = client.post(
            "/api/v1/sms/uplink/tencent",
            json={"extend": "", "mobile": other, "nationcode": "86", "sign": "惠企直达", "text": "好的，谢谢", "time": 1778040000},
        )
        assert r.status_code == 200 and r.json() == {"result": 0, "errmsg": "OK"}
        bad = client.post("/api/v1/sms/uplink/tencent", json={"text": "R"})
        assert bad.status_code == 400 and "缺少字段" in bad.json()["errmsg"]

    with transaction(settings.db_url) as s:
        rows = s.scalars(select(SmsReply).where(SmsReply.phone_masked.in_(["131****0031", "131****0032"]))).all()
        record = [(x.provider, x.phone_masked, x.content, x.opt_out_word) for x in rows]
        received = {x.phone_masked: x.received_at for x in rows}
    assert sorted(record) == [("aliyun", "131****0031", "R", "R"), ("tencent", "131****0032", "好的，谢谢", None)]
    assert received["131****0031"].astimezone(UTC) == datetime(2026, 5, 6, 3, 58, 7, tzinfo=UTC)  # when, Beijing time

    stopped = queue_push(settings, world, phone)
    still = queue_push(settings, world, other)
    case = queue(settings, world, stage="approved", phone=phone)  # case notices are never optional
    report = dispatcher(settings, aliyun(fake), Clock(NOON + timedelta(days=1))).dispatch_due()
    assert report.cancelled == 1 and report.sent == 2
    n = notice(settings, stopped)
    assert n.status == NoticeStatus.CANCELLED and "退订" in n.fail_reason
    assert not [r for r in fake.requests if r.key == str(stopped)]
    assert notice(settings, still).status == NoticeStatus.SENT
    assert notice(settings, case).status == NoticeStatus.SENT


def test_tencent_td_opts_out_too(settings, world, fake) -> None:
    phone = "13100000041"
    with TestClient(create_app(settings), headers=RECEIPT_HEADERS) as client:  # the configured receipt secret
        r = client.post("/api/v1/sms/uplink/tencent", json=[{"mobile": phone, "nationcode": "86", "text": "TD",
                                                             "sign": "惠企直达", "time": 1778040000}])  # fmt: skip
        assert r.status_code == 200
    push = queue_push(settings, world, phone)
    assert dispatcher(settings, aliyun(fake), Clock(NOON + timedelta(days=2))).dispatch_due().cancelled == 1
    assert notice(settings, push).status == NoticeStatus.CANCELLED


def test_caps_count_every_send_to_a_number_whatever_the_template(settings, world, fake) -> None:
    capped = settings.model_copy(update={"sms_rate_per_minute": 1, "sms_rate_per_hour": 2, "sms_rate_per_day": 3})
    clock = Clock(NOON + timedelta(days=3))
    d = Dispatcher.from_settings(capped, provider=aliyun(fake))
    d.clock = clock
    phone = "13100000051"
    first = queue(settings, world, stage="approved", phone=phone)
    assert d.dispatch_due().sent == 1
    second = queue(settings, world, stage="paid", phone=phone)  # another template, the same number
    report = d.dispatch_due()
    assert (report.sent, report.deferred) == (0, 1)
    assert notice(settings, second).next_attempt_at.replace(tzinfo=UTC) == notice(settings, first).sent_at.replace(
        tzinfo=UTC
    ) + timedelta(minutes=1)
    clock.now += timedelta(minutes=1, seconds=1)
    assert d.dispatch_due().sent == 1
    third = queue(settings, world, stage="payment_failed", phone=phone, reason="户名不符", officer="张三 0717-1234567")
    clock.now += timedelta(minutes=2)
    report = d.dispatch_due()
    assert (report.sent, report.deferred) == (0, 1)  # two in the hour already
    assert notice(settings, third).next_attempt_at.replace(tzinfo=UTC) == notice(settings, first).sent_at.replace(
        tzinfo=UTC
    ) + timedelta(hours=1)
