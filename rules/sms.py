"""Pure SMS rules: template parameters, per-phone rate limits, quiet hours, retry backoff (phone numbers are parsed by
schemas.phone, which the API bodies validate with; its names are part of these rules too)."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.phone import Phone, PhoneError, mask, parse_phone

__all__ = [
    "Phone",
    "PhoneError",
    "QuietHours",
    "RateLimits",
    "TemplateParamError",
    "backoff",
    "check_param",
    "mask",
    "next_allowed",
    "opt_out_word",
    "parse_phone",
    "phone_hash",
    "provider_params",
    "quiet_until",
    "shorten",
]

# -- template parameters -----------------------------------------------------------------------------------------

MAX_PARAM_CHARS = 35  # Alibaba Cloud: a variable of a notification template holds at most 35 characters
_URL = re.compile(r"(https?://|www\.|[a-z0-9-]+\.(com|cn|net|org|gov|top|xyz|io|cc)\b)", re.IGNORECASE)
_FORBIDDEN = set("【】[]<>{}\\^`|")
_PLAIN_TEXT = re.compile(r"[\u4e00-\u9fffA-Za-z0-9 ，。、；：？！（）“”‘’《》—…·.,;:?!()%+\-/&*#@~_'\"=￥$]+")


class TemplateParamError(ValueError):
    """Template parameters the providers would refuse; `errors` names each field."""

    def __init__(self, template_key: str, errors: dict[str, str]) -> None:
        self.template_key = template_key
        self.errors = errors
        detail = "；".join(f"{k}：{v}" for k, v in errors.items())
        super().__init__(f"短信模板 {template_key} 参数不合法：{detail}")


def check_param(value: object, *, max_chars: int = MAX_PARAM_CHARS) -> str | None:
    """Why a variable value would be refused (None when fine): empty, too long, a URL, odd characters."""
    if not isinstance(value, str):
        return f"应为文本，实际为 {type(value).__name__}"
    if not value.strip():
        return "不能为空"
    if len(value) > max_chars:
        return f"长度 {len(value)} 超过 {max_chars} 个字符"
    if _URL.search(value):
        return "变量中不能含有网址链接"
    if _PLAIN_TEXT.fullmatch(value):  # Chinese, letters, digits and common punctuation: nothing to look at
        return None
    for ch in value:
        cat = unicodedata.category(ch)
        if ch in _FORBIDDEN or cat.startswith("C") or cat == "So" or ord(ch) > 0xFFFF:
            return f"含有不允许的字符 {ch!r}"
    return None


def shorten(value: str, max_chars: int = MAX_PARAM_CHARS) -> str:
    """Free text (reasons, names) cut to fit a variable, ending in 等 when cut."""
    value = " ".join(str(value).split())
    return value if len(value) <= max_chars else value[: max_chars - 1].rstrip("，、；。, ") + "等"


def provider_params(
    template_key: str,
    names: tuple[str, ...],
    params: dict[str, object],
    *,
    free_text: tuple[str, ...] = (),
    max_chars: int = MAX_PARAM_CHARS,
) -> dict[str, str]:
    """Exactly the template's variables, free text shortened, every value checked; raises TemplateParamError."""
    errors: dict[str, str] = {}
    out: dict[str, str] = {}
    for name in names:
        if name not in params or params[name] is None:
            errors[name] = "缺少参数"
            continue
        value = params[name]
        if name in free_text and isinstance(value, str):
            value = shorten(value, max_chars)
        problem = check_param(value, max_chars=max_chars)
        if problem:
            errors[name] = problem
        else:
            out[name] = value  # type: ignore[assignment]
    if errors:
        raise TemplateParamError(template_key, errors)
    return out


# -- rate limits ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimits:
    """Sends allowed to one phone number per window (all templates together), as carriers enforce them."""

    per_minute: int = 1
    per_hour: int = 5
    per_day: int = 10

    def windows(self) -> tuple[tuple[timedelta, int], ...]:
        return (
            (timedelta(minutes=1), self.per_minute),
            (timedelta(hours=1), self.per_hour),
            (timedelta(days=1), self.per_day),
        )


def next_allowed(recent: list[datetime], now: datetime, limits: RateLimits) -> datetime | None:
    """None when a send is allowed now, else the earliest time it will be (the oldest send leaving a window)."""
    later: datetime | None = None
    for span, cap in limits.windows():
        if cap <= 0:
            continue
        inside = sorted(t for t in recent if now - span < t <= now)
        if len(inside) >= cap:
            free_at = inside[len(inside) - cap] + span
            later = free_at if later is None or free_at > later else later
    return later


# -- quiet hours -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    start: time = time(22, 0)
    end: time = time(8, 0)
    tz: str = "Asia/Shanghai"

    @classmethod
    def parse(cls, start: str, end: str, tz: str = "Asia/Shanghai") -> QuietHours:
        return cls(time.fromisoformat(start), time.fromisoformat(end), tz)


def quiet_until(now: datetime, quiet: QuietHours | None) -> datetime | None:
    """None when `now` is outside quiet hours, else when they end (an aware datetime in the same zone)."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local = now.astimezone(ZoneInfo(quiet.tz))
    t = local.timetz().replace(tzinfo=None)
    # Quiet hours may span midnight, e.g. 22:00–08:00.
    inside = quiet.start <= t < quiet.end if quiet.start < quiet.end else t >= quiet.start or t < quiet.end
    if not inside:
        return None
    day = local.date() if t < quiet.end else local.date() + timedelta(days=1)
    return datetime.combine(day, quiet.end, tzinfo=ZoneInfo(quiet.tz))


# -- replies (上行短信) ----------------------------------------------------------------------------------------------

# Replies that refuse pushes, as carriers require them honoured: R (our pushes end with 拒收请回复R), TD and 退订.
OPT_OUT_WORDS = frozenset({"R", "TD", "退订"})
_REPLY_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def opt_out_word(text: str) -> str | None:
    """The opt-out word a reply is (case, width and punctuation ignored: "r", "ｔｄ。", " 退订 "), else None."""
    word = _REPLY_NOISE.sub("", unicodedata.normalize("NFKC", text or "")).upper()
    return word if word in OPT_OUT_WORDS else None


def phone_hash(key: str, e164: str) -> str:
    """A keyed hash of the number: rate limits and opt-outs count per phone without storing it in the clear."""
    return hmac.new(key.encode(), e164.encode(), hashlib.sha256).hexdigest()


# -- retries -----------------------------------------------------------------------------------------------------


def backoff(attempt: int, *, base_seconds: float = 30.0, cap_seconds: float = 3600.0) -> timedelta:
    """Delay before try `attempt + 1`: base · 2^(attempt−1), capped (30 s, 60 s, 2 min, … 1 h)."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempt - 1)))
