"""SMS providers behind one interface; `provider_for(settings)` picks the configured one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateways.sms.base import Receipt, ReceiptFormatError, ReceiptQuery, SendResult, SmsMessage, SmsProvider
from gateways.sms.outbox import OutboxProvider

if TYPE_CHECKING:
    from settings import Settings

__all__ = [
    "OutboxProvider",
    "Receipt",
    "ReceiptFormatError",
    "ReceiptQuery",
    "SendResult",
    "SmsMessage",
    "SmsProvider",
    "provider_for",
    "provider_named",
]


def _secret(value) -> str:
    return value.get_secret_value() if value is not None else ""


def provider_named(name: str, settings: Settings) -> SmsProvider:
    """A provider by name with credentials and endpoint from settings (imports the SDK only when used)."""
    if name == "outbox":
        return OutboxProvider()
    if name == "aliyun":
        from gateways.sms.aliyun import AliyunProvider

        return AliyunProvider(
            access_key_id=settings.sms_aliyun_access_key_id,
            access_key_secret=_secret(settings.sms_aliyun_access_key_secret),
            endpoint=settings.sms_aliyun_endpoint,
            protocol=settings.sms_aliyun_protocol,
            timeout_seconds=settings.sms_timeout_seconds,
        )
    if name == "tencent":
        from gateways.sms.tencent import TencentProvider

        return TencentProvider(
            secret_id=settings.sms_tencent_secret_id,
            secret_key=_secret(settings.sms_tencent_secret_key),
            sdk_app_id=settings.sms_tencent_sdk_app_id,
            region=settings.sms_tencent_region,
            endpoint=settings.sms_tencent_endpoint,
            protocol=settings.sms_tencent_protocol,
            timeout_seconds=settings.sms_timeout_seconds,
        )
    if name == "http":
        from gateways.sms.http import HttpProvider

        return HttpProvider(
            url=settings.sms_http_url,
            token=_secret(settings.sms_http_token),
            timeout_seconds=settings.sms_timeout_seconds,
        )
    raise ValueError(f"未知的短信服务商 / unknown SMS provider {name!r}")


def provider_for(settings: Settings) -> SmsProvider:
    return provider_named(settings.sms_provider, settings)
