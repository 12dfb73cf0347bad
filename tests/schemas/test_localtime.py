from datetime import UTC, datetime

from schemas.localtime import format_local, local_date, to_local


def test_local_time_is_beijing_by_default() -> None:
    moment = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    assert to_local(moment).utcoffset().total_seconds() == 8 * 3600
    assert local_date(moment).isoformat() == "2027-01-01"
    assert format_local(datetime(2026, 12, 1, 0, 0)) == "2026-12-01 08:00:00"  # naive moments are UTC
    assert format_local(None) == "—"
