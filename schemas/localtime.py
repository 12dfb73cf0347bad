"""The one local time zone: users read Beijing time; the database and the API keep UTC moments with their offset.

Set ZHIDA_TIMEZONE (an IANA name) for a deployment elsewhere; everything that shows, parses or cuts days by local time
uses LOCAL_TZ from here.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo(os.environ.get("ZHIDA_TIMEZONE", "Asia/Shanghai"))


def aware(moment: datetime) -> datetime:
    """A moment with its offset; a naive one is taken as UTC (how the database stores moments)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def to_local(moment: datetime) -> datetime:
    """The moment in local time."""
    return aware(moment).astimezone(LOCAL_TZ)


def local_date(moment: datetime) -> date:
    """The local calendar day of a moment (deadlines and statements cut days by local time)."""
    return to_local(moment).date()


def format_local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S", empty: str = "—") -> str:
    """A moment as users read it, in local time."""
    if moment is None:
        return empty
    if fmt == _SECONDS:  # the usual form, through isoformat (C, a fifth of strftime's cost: exports write millions)
        local = to_local(moment)
        if local.year >= 1000:
            return local.isoformat(" ", "seconds")[:19]
    return to_local(moment).strftime(fmt)


_SECONDS = "%Y-%m-%d %H:%M:%S"


def last_local_day(due_at: datetime | None) -> date | None:
    """The last local day a deadline leaves: one at local midnight closes the day before (as the SMS states it)."""
    return None if due_at is None else local_date(aware(due_at) - timedelta(microseconds=1))


def format_deadline(due_at: datetime | None, empty: str = "—") -> str:
    """A deadline as a person reads it: 2026年12月8日 for one at local midnight (the whole day is left, as in the SMS
    "请于12月8日前"), otherwise 2026年12月8日 15:30."""
    if due_at is None:
        return empty
    local = to_local(due_at)
    day = last_local_day(due_at)
    assert day is not None
    text = f"{day.year}年{day.month}月{day.day}日"
    return text if (local.hour, local.minute, local.second) == (0, 0, 0) else f"{text} {local:%H:%M}"
