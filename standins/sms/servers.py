"""Local HTTP servers answering in each SMS provider's documented format (tests and demos only).

One `FakeSmsServer` serves three dialects on one port:
- Alibaba Cloud Dysmsapi 2017-05-25: `x-acs-action: SendSms` (or `Action=`), parameters in the query, reply
  `{"Code": "OK", "Message": "OK", "BizId": ..., "RequestId": ...}` or an `isv.*` / `isp.*` code;
- Tencent Cloud SMS 2021-01-11: `X-TC-Action: SendSms` header with a JSON body, reply
  `{"Response": {"SendStatusSet": [{"SerialNo", "PhoneNumber", "Fee", "SessionContext", "Code", "Message",
  "IsoCode"}], "RequestId": ...}}`, or `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`;
- the generic JSON provider: `POST /send` → `{"message_id": ...}`, 4xx/5xx with `{"code", "message"}`.

Behaviour is scripted: `fail_next(code, times)` makes the next sends answer an error code; `phone_codes`
maps a phone number to an error code for every send. Every request is counted per idempotency key
(Alibaba OutId, Tencent SessionContext, generic Idempotency-Key) so tests can prove no duplicate send.

Delivery reports for polling (the fallback when callbacks do not arrive):
- Alibaba `QuerySendDetails` (PhoneNumber, SendDate yyyyMMdd, optional BizId, PageSize, CurrentPage) →
  `{"Code": "OK", "TotalCount", "SmsSendDetailDTOs": {"SmsSendDetailDTO": [{"PhoneNum", "SendStatus"
  (1 waiting, 2 failed, 3 delivered), "ErrCode", "TemplateCode", "Content", "SendDate", "ReceiveDate",
  "OutId"}]}}`;
- Tencent `PullSmsSendStatus` (SmsSdkAppId, Limit) → `{"Response": {"PullSmsSendStatusSet": [{"UserReceiveTime"
  (UNIX seconds), "CountryCode", "SubscriberNumber", "PhoneNumber", "SerialNo", "ReportStatus" SUCCESS|FAIL,
  "Description", "SessionContext"}], "RequestId"}}`; each report is pulled once (`duplicate_reports` queues it
  twice, as providers resend).
`report_codes` maps a phone to a failure report (e.g. "MK:0001"); phones in `pending_phones` have no report yet.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

# Error codes that the real services return with HTTP 200 and a business code.
ALIYUN_MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发号码天级流控Permits:10",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板变量缺少对应参数值",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.PARAM_LENGTH_LIMIT": "参数超出长度限制",
    "isp.SYSTEM_ERROR": "系统错误",
}
TENCENT_MESSAGES = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": "单个手机号30秒内下发短信条数超过设定的上限",
    "LimitExceeded.PhoneNumberOneHourLimit": "单个手机号1小时内下发短信条数超过设定的上限",
    "LimitExceeded.PhoneNumberDailyLimit": "单个手机号日下发短信条数超过设定的上限",
    "InvalidParameterValue.IncorrectPhoneNumber": "手机号格式错误",
    "FailedOperation.TemplateIncorrectOrUnapproved": "模板未审批或内容不匹配",
    "FailedOperation.InsufficientBalanceInSmsPackage": "套餐包余量不足",
    "InternalError.Timeout": "请求下发短信超时",
    "InvalidParameterValue.TemplateParameterLengthLimit": "单个模板变量字符数超过12个",
}
BEIJING = timezone(timedelta(hours=8))
REPORT_DESCRIPTIONS = {"MK:0001": "空号", "MK:0005": "用户关机", "MK:0012": "停机", "DB:0141": "黑名单"}
# Tencent request-level errors come back as Response.Error (the SDK raises).
TENCENT_REQUEST_ERRORS = {"AuthFailure.SignatureFailure", "InternalError", "RequestLimitExceeded"}


@dataclass
class Sent:
    dialect: str
    key: str | None
    phone: str
    template: str
    params: Any
    sign: str
    answer: str
    msg_id: str = ""  # Tencent SerialNo of an accepted send


@dataclass
class FakeSmsServer:
    host: str = "127.0.0.1"
    port: int = 0
    phone_codes: dict[str, str] = field(default_factory=dict)
    requests: list[Sent] = field(default_factory=list)
    by_key: Counter = field(default_factory=Counter)
    delivered_by_key: Counter = field(default_factory=Counter)
    report_codes: dict[str, str] = field(default_factory=dict)
    pending_phones: set[str] = field(default_factory=set)
    duplicate_reports: bool = False
    clock: Callable[[], datetime] | None = None  # the time sends are stamped with (tests move it); default now
    queries: Counter = field(default_factory=Counter)  # polling calls per action
    _details: list[dict] = field(default_factory=list)  # Alibaba sends, for QuerySendDetails
    _pull: deque = field(default_factory=deque)  # Tencent reports not yet pulled
    _script: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, code: str, times: int = 1) -> None:
        with self._lock:
            self._script.extend([code] * times)

    def _answer_code(self, phone: str) -> str:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.phone_codes.get(phone, "OK")

    def _record(
        self, dialect: str, key: str | None, phone: str, template: str, params: Any, sign: str, code: str, msg_id: str = ""
    ) -> None:
        with self._lock:
            self.requests.append(Sent(dialect, key, phone, template, params, sign, code, msg_id))
            self.by_key[key] += 1
            if code in ("OK", "Ok"):
                self.delivered_by_key[key] += 1

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> FakeSmsServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")  # the Tencent SDK compares it exactly
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if raw and "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    query |= {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                action = query.get("Action") or self.headers.get("x-acs-action")
                tc_action = self.headers.get("X-TC-Action")
                if action == "SendSms" and not tc_action:
                    self._reply(*server._aliyun(query))
                elif action == "QuerySendDetails" and not tc_action:
                    self._reply(*server._aliyun_query(query))
                elif tc_action == "SendSms":
                    self._reply(*server._tencent(json.loads(raw or b"{}")))
                elif tc_action == "PullSmsSendStatus":
                    self._reply(*server._tencent_pull(json.loads(raw or b"{}")))
                elif url.path == "/send":
                    self._reply(*server._generic(json.loads(raw or b"{}"), self.headers))
                else:
                    self._reply(404, {"code": "NotFound", "message": self.path})

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    # -- dialects -------------------------------------------------------------------------------------------

    def _aliyun(self, q: dict[str, str]) -> tuple[int, dict]:
        request_id = str(uuid.uuid4()).upper()
        phone = q.get("PhoneNumbers", "")
        code = self._answer_code(phone)
        params = json.loads(q["TemplateParam"]) if q.get("TemplateParam") else {}
        self._record("aliyun", q.get("OutId"), phone, q.get("TemplateCode", ""), params, q.get("SignName", ""), code)
        if code == "OK":
            biz_id = f"{uuid.uuid4().int % 10**15:015d}^0"
            with self._lock:
                self._details.append(
                    {"phone": phone, "biz_id": biz_id, "out_id": q.get("OutId", ""), "template": q.get("TemplateCode", ""),
                     "sent": self._now()}
                )  # fmt: skip
            return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}
        return 200, {"Code": code, "Message": ALIYUN_MESSAGES.get(code, code), "RequestId": request_id}

    def _tencent(self, body: dict) -> tuple[int, dict]:
        request_id = str(uuid.uuid4())
        phones = body.get("PhoneNumberSet") or [""]
        code = self._answer_code(phones[0])
        code = "Ok" if code == "OK" else code
        if code in TENCENT_REQUEST_ERRORS:
            self._record("tencent", body.get("SessionContext"), phones[0], "", None, "", code)
            return 200, {"Response": {"Error": {"Code": code, "Message": code}, "RequestId": request_id}}
        statuses = []
        for phone in phones:
            ok = code == "Ok"
            serial = f"2433:{uuid.uuid4().int % 10**20}" if ok else ""
            self._record(
                "tencent",
                body.get("SessionContext"),
                phone,
                body.get("TemplateId", ""),
                body.get("TemplateParamSet"),
                body.get("SignName", ""),
                code,
                serial,
            )
            if ok and phone.removeprefix("+86") not in self.pending_phones:
                self._queue_report(phone, serial, body.get("SessionContext", ""))
            statuses.append(
                {
                    "SerialNo": serial,
                    "PhoneNumber": phone,
                    "Fee": 1 if ok else 0,
                    "SessionContext": body.get("SessionContext", ""),
                    "Code": code,
                    "Message": "send success" if ok else TENCENT_MESSAGES.get(code, code),
                    "IsoCode": "CN",
                }
            )
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}

    def _now(self) -> datetime:
        return (self.clock() if self.clock else datetime.now(BEIJING)).astimezone(BEIJING)

    def _aliyun_query(self, q: dict[str, str]) -> tuple[int, dict]:
        """QuerySendDetails: the sends to one phone on one day (optionally one BizId), with their report state."""
        self.queries["QuerySendDetails"] += 1
        request_id = str(uuid.uuid4()).upper()
        phone, day = q.get("PhoneNumber", ""), q.get("SendDate", "")
        if not phone or len(day) != 8:
            return 200, {"Code": "isv.INVALID_PARAMETERS", "Message": "参数异常", "RequestId": request_id}
        with self._lock:
            rows = [d for d in self._details if d["phone"] == phone and d["sent"].strftime("%Y%m%d") == day]
        if q.get("BizId"):
            rows = [d for d in rows if d["biz_id"] == q["BizId"]]
        dtos = []
        for d in rows:
            code = self.report_codes.get(phone, "DELIVERED")
            waiting = phone in self.pending_phones
            dtos.append(
                {
                    "PhoneNum": phone,
                    "SendStatus": 1 if waiting else (3 if code == "DELIVERED" else 2),
                    "ErrCode": "" if waiting else code,
                    "TemplateCode": d["template"],
                    "Content": "【惠企直达】…",
                    "SendDate": d["sent"].strftime("%Y-%m-%d %H:%M:%S"),
                    "ReceiveDate": "" if waiting else (d["sent"] + timedelta(seconds=3)).strftime("%Y-%m-%d %H:%M:%S"),
                    "OutId": d["out_id"],
                }
            )
        return 200, {"Code": "OK", "Message": "OK", "RequestId": request_id, "TotalCount": len(dtos),
                     "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}}  # fmt: skip

    def _queue_report(self, phone: str, serial: str, context: str) -> None:
        code = self.report_codes.get(phone.removeprefix("+86"))
        report = {
            "UserReceiveTime": int(self._now().timestamp()),
            "CountryCode": "86",
            "SubscriberNumber": phone.removeprefix("+86"),
            "PhoneNumber": phone,
            "SerialNo": serial,
            "ReportStatus": "FAIL" if code else "SUCCESS",
            "Description": REPORT_DESCRIPTIONS.get(code, code) if code else "用户接收成功",
            "SessionContext": context,
        }
        with self._lock:
            self._pull.extend([report] * (2 if self.duplicate_reports else 1))

    def release_pending(self, phone: str) -> None:
        """The carrier's report for a pending phone arrives now (Tencent: it joins the pull queue)."""
        self.pending_phones.discard(phone)
        with self._lock:
            sent = [r for r in self.requests if r.dialect == "tencent" and r.phone.removeprefix("+86") == phone]
        for r in sent:
            if r.answer in ("OK", "Ok"):
                self._queue_report(r.phone, r.msg_id, r.key or "")

    def _tencent_pull(self, body: dict) -> tuple[int, dict]:
        self.queries["PullSmsSendStatus"] += 1
        limit = int(body.get("Limit") or 100)
        with self._lock:
            reports = [self._pull.popleft() for _ in range(min(limit, len(self._pull)))]
        return 200, {"Response": {"PullSmsSendStatusSet": reports, "RequestId": str(uuid.uuid4())}}

    def _generic(self, body: dict, headers: Any) -> tuple[int, dict]:
        code = self._answer_code(body.get("phone", ""))
        key = headers.get("Idempotency-Key")
        self._record("http", key, body.get("phone", ""), body.get("template", ""), body.get("params"), "", code)
        if code == "OK":
            return 200, {"message_id": f"m-{uuid.uuid4().hex[:16]}"}
        status = int(code) if code.isdigit() else 400
        return status, {"code": code, "message": f"provider answered {code}"}

    def __enter__(self) -> FakeSmsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
