"""Helpers of the SMS tests: a settable clock, queuing a notice, reading it back, dispatchers and SDK providers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from activities.notices import DispatchConfig, Dispatcher
from db import crypto
from db.models import Notice
from db.session import transaction
from gateways.sms import SmsProvider
from gateways.sms.aliyun import AliyunProvider
from gateways.sms.tencent import TencentProvider
from rules import sms_templates
from settings import Settings
from standins.sms.servers import FakeSmsServer

NOON = datetime(2026, 5, 6, 4, 0, tzinfo=UTC)  # 12:00 Asia/Shanghai
KEY = "k" * 43 + "="


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def queue(settings: Settings, world: dict, stage: str = "paid", phone: str = "13800138000", **extra: object) -> int:
    params = sms_templates.stage_params(
        enterprise="宜昌某科技有限公司", item="高企奖励", acct_tail="1234", amount_fen=12_345_600, **extra
    )
    with transaction(settings.db_url) as s:
        n = Notice(
            dedupe_key=f"t:{uuid.uuid4().hex}",
            enterprise_id=world["ent"],
            case_id=None,
            fund_item_id=world["item"],
            template_key=stage,
            params=params,
            content="测试通知",
            phone_enc=crypto.encrypt(world["key"], phone) if phone else None,
            phone_masked=None,
            status="queued",
        )
        s.add(n)
        s.flush()
        return n.id


def notice(settings: Settings, notice_id: int) -> Notice:
    with transaction(settings.db_url) as s:
        return s.get(Notice, notice_id)


def dispatcher(settings: Settings, provider: SmsProvider, clock: Clock, **cfg: object) -> Dispatcher:
    config = DispatchConfig(**cfg) if cfg else DispatchConfig()
    return Dispatcher(db_url=settings.db_url, fernet_key=settings.fernet_key(), provider=provider, config=config,
                      clock=clock)  # fmt: skip


def aliyun(fake: FakeSmsServer) -> AliyunProvider:
    return AliyunProvider(access_key_id="ak", access_key_secret="sk", endpoint=fake.endpoint, protocol="http")


def tencent(fake: FakeSmsServer) -> TencentProvider:
    return TencentProvider(secret_id="id", secret_key="key", sdk_app_id="1400000001", endpoint=fake.endpoint,
                           protocol="http")  # fmt: skip
