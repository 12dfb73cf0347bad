"""The data-sharing platform (政务数据共享交换平台) over signed HTTP: an app key and an HMAC-SHA256 signature over the
method, path, timestamp, nonce and body of every request; datasets read page by page, incrementally after a watermark.
The protocol is docs/datashare-protocol.md; the stand-in that speaks it is standins/datashare/.

The client fetches every page of a pull before anything is imported, and refuses a pull whose pages do not add up
(a short page, a total that changed under it): the import then sees all the records or none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import ValidationError

from schemas.datashare import Page

HEADER_APP_KEY = "X-App-Key"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_NONCE = "X-Nonce"
HEADER_SIGNATURE = "X-Signature"
RECORDS_PATH = "/share/v1/datasets/{dataset}/records"


class DataShareError(Exception):
    """A pull that cannot be completed; `reason` is Chinese (stored on the failed pull), `kind` stable for code."""

    kind = "error"
    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DataShareUnavailable(DataShareError):
    """Timeout, connection refused, 5xx: worth trying again later."""

    kind = "timeout"
    retryable = True


class DataSharePartial(DataShareError):
    """A page with fewer records than it says, or pages that do not add up to the total: try again later."""

    kind = "partial_page"
    retryable = True


class DataShareRefused(DataShareError):
    """The platform refused the request (signature, app key, unknown dataset): fix the configuration."""

    kind = "refused"


def canonical_path(path: str, params: dict[str, Any]) -> str:
    """The path with its query parameters sorted by name: what is signed."""
    query = urlencode(sorted((k, str(v)) for k, v in params.items()))
    return f"{path}?{query}" if query else path


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """METHOD \\n canonical path \\n timestamp \\n nonce \\n sha256 hex of the body (empty body: of b"")."""
    return "\n".join((method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest())).encode()


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of the string to sign, keyed with the app secret."""
    return hmac.new(secret.encode(), string_to_sign(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def signed_headers(app_key: str, secret: str, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    return {
        HEADER_APP_KEY: app_key,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature(secret, method, path, timestamp, nonce, body),
    }


@dataclass
class Pulled:
    """Every record of one pull, in the platform's order, and the watermark to pull after next time."""

    dataset: str
    since: str
    records: list[dict[str, Any]] = field(default_factory=list)
    watermark: str = ""
    pages: int = 0


class DataShareClient:
    """Reads datasets of the platform; one instance per process (its httpx client keeps connections)."""

    def __init__(
        self, base_url: str, app_key: str, app_secret: str, *, timeout: float = 10.0, page_size: int = 1000
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self.page_size = page_size
        # Loading the CA bundle costs ~0.1 s per client; a plain-HTTP platform (inside 政务外网) never uses it.
        plain = self.base_url.startswith("http://")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, verify=not plain)

    def close(self) -> None:
        self._http.close()

    def _page(self, dataset: str, since: str, page: int) -> Page:
        path = RECORDS_PATH.format(dataset=dataset)
        params = {"since": since, "page": page, "page_size": self.page_size}
        headers = signed_headers(self.app_key, self._secret, "GET", canonical_path(path, params))
        try:
            response = self._http.get(path, params=params, headers=headers)
        except httpx.TimeoutException:
            raise DataShareUnavailable(
                f"数据共享平台在 {self._http.timeout.read} 秒内未应答（数据集 {dataset} 第 {page} 页，超时）"
            ) from None
        except httpx.TransportError as exc:
            raise DataShareUnavailable(f"无法连接数据共享平台 {self.base_url}：{exc}（连接失败）") from None
        if response.status_code >= 500:
            raise DataShareUnavailable(f"数据共享平台暂时不可用（HTTP {response.status_code}，第 {page} 页）")
        if response.status_code != 200:
            reason = _reason(response)
            raise DataShareRefused(f"数据共享平台拒绝了请求（HTTP {response.status_code}）：{reason}")
        try:
            return Page.model_validate_json(response.content)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise DataShareRefused(f"数据共享平台的应答不是约定的分页格式：{where} {first.get('msg', '')}") from None

    def pull(self, dataset: str, since: str = "") -> Pulled:
        """Every page of the records changed after `since`; DataSharePartial if the pages do not add up."""
        out = Pulled(dataset=dataset, since=since)
        page = self._page(dataset, since, 1)
        total = page.total
        while True:
            expected = min(page.page_size, total - (page.page - 1) * page.page_size)
            if page.total != total:
                raise DataSharePartial(
                    f"数据集 {dataset} 在分页读取中总数由 {total} 变为 {page.total}（第 {page.page} 页，分页不一致）"
                )
            if len(page.records) != page.count or page.count != max(expected, 0):
                raise DataSharePartial(
                    f"数据集 {dataset} 第 {page.page} 页不完整：应有 {max(expected, 0)} 条，"
                    f"收到 {len(page.records)} 条（分页不完整）"
                )
            out.records.extend(page.records)
            out.pages = page.page
            out.watermark = page.watermark or out.watermark
            if page.page >= page.pages:
                break
            page = self._page(dataset, since, page.page + 1)
        if len(out.records) != total:
            raise DataSharePartial(f"数据集 {dataset} 共 {total} 条，只收到 {len(out.records)} 条（分页不完整）")
        return out


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message") or body.get("detail") or body)[:200] if isinstance(body, dict) else str(body)[:200]
