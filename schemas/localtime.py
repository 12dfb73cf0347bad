"""The one local time zone: users read Beijing time; the database and the API keep UTC moments with their offset.

Set ZHIDA_TIMEZONE (an IANA name) for a deployment elsewhere; everything that shows, parses or cuts days by local time
uses LOCAL_TZ from here.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
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
