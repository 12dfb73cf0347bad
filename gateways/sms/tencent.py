"""Tencent Cloud SMS (2021-01-11) through the official SDK: ordered TemplateParamSet, SessionContext = notice id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from gateways.sms.base import (
    Receipt,
    ReceiptFormatError,
    ReceiptQuery,
    SendResult,
    SmsMessage,
    SmsProvider,
    Uplink,
    beijing_report_time,
    notice_id_of,
)
from logs import get_logger

log = get_logger("zhida.sms")
PULL_LIMIT = 100  # PullSmsSendStatus answers at most 100 reports per call

# SendStatus codes and request errors: (retryable, rate_limited). Unlisted codes are permanent.
CODES: dict[str, tuple[bool, bool]] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": (True, True),
    "LimitExceeded.PhoneNumberOneHourLimit": (True, True),
    "LimitExceeded.PhoneNumberDailyLimit": (True, True),
    "LimitExceeded.PhoneNumberSameContentDailyLimit": (True, True),
    "LimitExceeded.DeliveryFrequencyLimit": (True, True),
    "LimitExceeded.AppDailyLimit": (True, True),
    "RequestLimitExceeded": (True, True),
    "InternalError": (True, False),
    "InternalError.Timeout": (True, False),
    "InternalError.OtherError": (True, False),
    "InternalError.SendAndRecvFail": (True, False),
    "FailedOperation.InsufficientBalanceInSmsPackage": (True, False),
    "FailedOperation.PhoneNumberInBlacklist": (False, False),
    "FailedOperation.TemplateIncorrectOrUnapproved": (False, False),
    "FailedOperation.SignatureIncorrectOrUnapproved": (False, False),
    "FailedOperation.ContainSensitiveWord": (False, False),
    "InvalidParameterValue.IncorrectPhoneNumber": (False, False),
    "InvalidParameterValue.TemplateParameterFormatError": (False, False),
    "InvalidParameterValue.TemplateParameterLengthLimit": (False, False),
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": (False, False),
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": (False, False),
    "AuthFailure.SignatureFailure": (False, False),
    "AuthFailure.SecretIdNotFound": (False, False),
}


def classify(code: str, message: str | None) -> SendResult:
    retryable, limited = CODES.get(code, (False, False))
    return SendResult(ok=False, code=code, message=message, retryable=retryable, rate_limited=limited)


def parse_uplinks(body: Any) -> list[Uplink]:
    """Tencent's reply callback (短信回复): {extend, mobile, nationcode, sign, text, time} (time in Unix seconds),
    one object or a list of them."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise ReceiptFormatError("腾讯云短信回复应为 JSON 对象或数组")
    out = []
    for item in body:
        if not isinstance(item, dict) or not item.get("mobile") or "text" not in item:
            raise ReceiptFormatError(f"腾讯云短信回复缺少字段：{item!r}"[:200])
        nation = str(item.get("nationcode") or "86")
        moment = item.get("time")
        out.append(
            Uplink(
                provider="tencent",
                phone=f"+{nation}{item['mobile']}" if nation != "86" else str(item["mobile"]),
                content=str(item["text"] or ""),
                received_at=datetime.fromtimestamp(int(moment), UTC) if isinstance(moment, int | str) and str(moment).isdigit() else None,
                sign_name=item.get("sign"),
                raw=item,
            )
        )
    return out


class TencentProvider(SmsProvider):
    name = "tencent"

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        region: str = "ap-guangzhou",
        endpoint: str = "sms.tencentcloudapi.com",
        protocol: str = "https",
        timeout_seconds: float = 10.0,
    ) -> None:
        http = HttpProfile(endpoint=endpoint, protocol=protocol, reqTimeout=int(max(1, timeout_seconds)))
        self.client = sms_client.SmsClient(
            credential.Credential(secret_id, secret_key), region, ClientProfile(httpProfile=http)
        )
        self.sdk_app_id = sdk_app_id

    def send(self, message: SmsMessage) -> SendResult:
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [message.phone_e164]
        request.SmsSdkAppId = self.sdk_app_id
        request.TemplateId = message.template_id
        request.SignName = message.sign_name
        request.TemplateParamSet = [message.params[name] for name in message.param_order]
        request.SessionContext = str(message.notice_id)
        try:
            response = self.client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "ClientError"
            text = str(exc.get_message())[:300]
            if code in CODES:
                return classify(code, text)
            if "timed out" in text.lower() or "timeout" in text.lower():
                return SendResult(ok=False, code="Timeout", message=text, ambiguous=True)
            # ServerNetworkError / ClientNetworkError: the request did not complete.
            return SendResult(ok=False, code=code, message=text, retryable=code.endswith("NetworkError"))
        except Exception as exc:  # pragma: no cover - the SDK wraps everything, this is a last guard
            return SendResult(ok=False, code=type(exc).__name__, message=str(exc)[:300], retryable=True)
        statuses = response.SendStatusSet or []
        if not statuses:
            return SendResult(ok=False, code="EmptyResponse", message="SendStatusSet 为空", retryable=True)
        status = statuses[0]
        if status.Code == "Ok":
            return SendResult(ok=True, provider_msg_id=status.SerialNo)
        return classify(status.Code, status.Message)

    def query_receipts(self, queries: list[ReceiptQuery], max_pulls: int = 20) -> list[Receipt]:
        """PullSmsSendStatus: drains the app's pending status reports (each is answered once), matched by
        SessionContext or SerialNo; reports of notices not asked about are returned too (applying them is safe)."""
        if not queries:
            return []
        receipts: list[Receipt] = []
        for _ in range(max_pulls):
            request = models.PullSmsSendStatusRequest()
            request.SmsSdkAppId = self.sdk_app_id
            request.Limit = PULL_LIMIT
            try:
                response = self.client.PullSmsSendStatus(request)
            except TencentCloudSDKException as exc:  # the next poll tries again
                log.warning("tencent_pull_failed", code=exc.get_code(), message=exc.get_message())
                break
            reports = response.PullSmsSendStatusSet or []
            for report in reports:
                success = report.ReportStatus == "SUCCESS"
                receipts.append(
                    Receipt(
                        provider="tencent",
                        delivered=success,
                        notice_id=notice_id_of(report.SessionContext),
                        provider_msg_id=report.SerialNo,
                        phone=report.PhoneNumber,
                        code="DELIVRD" if success else "FAIL",
                        message=None if success else report.Description,
                        reported_at=_epoch(report.UserReceiveTime),
                        raw={"SerialNo": report.SerialNo, "ReportStatus": report.ReportStatus},
                    )
                )
            if len(reports) < PULL_LIMIT:
                break
        return receipts

    @staticmethod
    def parse_receipts(body: Any) -> list[Receipt]:  # type: ignore[override]
        """Tencent's status report push: [{user_receive_time, mobile, report_status, errmsg, description, sid, ext}]."""
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            raise ReceiptFormatError("腾讯云回执应为 JSON 数组")
        receipts = []
        for item in body:
            if not isinstance(item, dict) or "report_status" not in item or not (item.get("sid") or item.get("ext")):
                raise ReceiptFormatError(f"腾讯云回执缺少字段：{item!r}"[:200])
            success = item["report_status"] == "SUCCESS"
            receipts.append(
                Receipt(
                    provider="tencent",
                    delivered=success,
                    notice_id=notice_id_of(item.get("ext")),
                    provider_msg_id=item.get("sid"),
                    phone=item.get("mobile"),
                    code=item.get("errmsg") or ("DELIVRD" if success else "UNKNOWN"),
                    message=item.get("description"),
                    reported_at=beijing_report_time(item.get("user_receive_time")),
                    raw=item,
                )
            )
        return receipts


def _epoch(value: object) -> datetime | None:
    """PullSmsSendStatus gives UserReceiveTime as a UNIX timestamp in seconds."""
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
