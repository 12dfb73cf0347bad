"""Request guards that run before any route: body size limits, the Origin check and CSRF tokens for the pages.

One pure ASGI middleware, so a refusal costs no parsing and no database:
- Body size: Content-Length over the path's limit is refused at once (413); a body without one is streamed and cut
  off at the limit. Receipts and callbacks are small; the limits are stated in `BODY_LIMITS`.
- Origin: a state-changing request whose Origin (or, without one, Referer) is not this site is refused (403).
- CSRF: a state-changing page request (/web/…) must carry `csrf_token` (form field) or `X-CSRF-Token` (header)
  equal to HMAC(key, the sign-in cookie — or, before sign-in, the `zhida_csrf` cookie the pages hand out). A foreign
  site can make the browser send our cookies but can neither read them nor compute the HMAC.
The JSON API reads only the Authorization header (api/deps.py), so a cookie alone gets nowhere there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from starlette.datastructures import Headers
from starlette.requests import Request

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

SESSION_COOKIE = "zhida_token"
ANON_COOKIE = "zhida_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KIB = 1024
# (path prefix, most bytes a request body may hold); the first matching prefix wins.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/v1/sms/receipts/", 64 * KIB),
    ("/api/v1/treasury/callbacks", 64 * KIB),
    ("/web/login", 16 * KIB),
    ("/web/logout", 4 * KIB),
)
DEFAULT_BODY_LIMIT = 2 * KIB * KIB
# Where application materials are uploaded: these take up to the material limits (files per case × bytes per file).
UPLOAD_PATHS = re.compile(
    r"^(/api/v1/applications|/api/v1/cases/\d+/(materials|supplement)|/web/me/policies/[^/]+/apply"
    r"|/web/me/cases/\d+/supplement)$"
)


def body_limit(path: str, upload_limit: int | None = None) -> int:
    if upload_limit and UPLOAD_PATHS.match(path):
        return max(upload_limit, DEFAULT_BODY_LIMIT)
    return next((limit for prefix, limit in BODY_LIMITS if path.startswith(prefix)), DEFAULT_BODY_LIMIT)


def _too_large(limit: int) -> str:
    return f"请求体超过上限 {limit // KIB} KB" if limit < KIB * KIB else f"请求体超过上限 {limit / (KIB * KIB):.0f} MB"


def csrf_token(secret: str, seed: str) -> str:
    """The CSRF token for a page whose visitor holds `seed` (the sign-in cookie, or the anonymous CSRF cookie)."""
    return hmac.new(secret.encode(), b"csrf|" + seed.encode(), hashlib.sha256).hexdigest()[:40]


def request_csrf_token(request: Request) -> str:
    """The token the page being rendered must embed in its forms."""
    seed = request.cookies.get(SESSION_COOKIE) or getattr(request.state, "csrf_seed", "")
    return csrf_token(request.app.state.settings.jwt_key(), seed)


def csrf_field(context) -> Markup:  # a Jinja global: {{ csrf_field() }} inside every <form method="post">
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(request_csrf_token(context["request"]))}">')


class TooLarge(Exception):
    pass


def _refuse(status: int, message: str, rule: str) -> tuple[int, bytes]:
    body = {
        "error": {
            "code": "refused",
            "message": message,
            "errors": [{"field": "body", "message": message, "rule": rule}],
        }
    }
    return status, json.dumps(body, ensure_ascii=False).encode()


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The ASGI middleware (installed in api/app.py, outermost but for the access log of api/request_log.py)."""

    def __init__(
        self,
        app,
        *,
        secret: Callable[[], str],
        allowed_origins: tuple[str, ...] = (),
        secure: bool = False,
        upload_limit: int | None = None,
        path_origins: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.app = app
        self.upload_limit = upload_limit
        # (path prefix, a foreign origin admitted there): the Temporal Web UI calls the codec endpoint.
        self.path_origins = tuple((prefix, o.rstrip("/")) for prefix, o in path_origins)
        self.secure = secure
        self.secret = secret
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path, method = scope["path"], scope["method"]
        limit = body_limit(path, self.upload_limit)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_json(send, *_refuse(413, _too_large(limit), "body_size"))
            return
        received = 0

        async def capped() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise TooLarge
            return message

        refusal = self._origin_refusal(headers, scope) if method in UNSAFE else None
        if refusal:
            await _send_json(send, *refusal)
            return
        anon = _cookie(headers, ANON_COOKIE)
        seed = anon or secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf_seed"] = seed
        downstream = capped
        try:
            if method in UNSAFE and path.startswith("/web/"):
                body = await _read_all(capped)
                downstream = _replay(body)
                if not await self._csrf_ok(scope, headers, body, seed):
                    await _send_json(send, *_refuse(403, "页面已过期或请求来源不明（CSRF 校验失败），请刷新页面后重试",
                                                    "csrf"))  # fmt: skip
                    return
            await self.app(
                scope,
                downstream,
                _with_cookie(send, seed, self.secure) if not anon and path.startswith("/web") else send,
            )
        except TooLarge:
            await _send_json(send, *_refuse(413, _too_large(limit), "body_size"))

    def _origin_refusal(self, headers: Headers, scope: Scope) -> tuple[int, bytes] | None:
        origin = headers.get("origin") or origin_of(headers.get("referer", ""))
        if not origin:
            return None  # not a browser (browsers send Origin on every cross-site POST): CSRF and bearer rules apply
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        if origin.rstrip("/") == own or origin.rstrip("/") in self.allowed_origins:
            return None
        if any(scope["path"].startswith(p) and origin.rstrip("/") == o for p, o in self.path_origins):
            return None
        return _refuse(403, "请求来源不受信任（Origin 不是本站）", "origin")

    async def _csrf_ok(self, scope: Scope, headers: Headers, body: bytes, seed: str) -> bool:
        given = headers.get(HEADER, "")
        if not given:
            request = Request(scope, _replay(body))
            try:
                form = await request.form()
                given = str(form.get(FIELD, ""))
                await form.close()
            except Exception:  # not a form: the header was required
                return False
        cookie = _cookie(headers, SESSION_COOKIE) or seed
        secret = self.secret()
        # The anonymous seed is accepted too: the sign-in form was rendered before the session cookie existed.
        return any(hmac.compare_digest(given, csrf_token(secret, s)) for s in {cookie, seed} if s)


def _cookie(headers: Headers, name: str) -> str:
    from http.cookies import SimpleCookie

    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:
        return ""
    return jar[name].value if name in jar else ""


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _with_cookie(send: Send, seed: str, secure: bool) -> Send:
    """Hand the anonymous CSRF cookie to a visitor who has none yet."""

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            cookie = f"{ANON_COOKIE}={seed}; Path=/web; HttpOnly; SameSite=Lax{'; Secure' if secure else ''}".encode()
            message = message | {"headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
        await send(message)

    return wrapped
