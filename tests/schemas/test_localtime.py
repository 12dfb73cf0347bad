from datetime import UTC, date, datetime

from rules import sms_templates
from schemas.localtime import format_deadline, format_local, last_local_day, local_date, to_local


def test_local_time_is_beijing_by_default() -> None:
    moment = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    assert to_local(moment).utcoffset().total_seconds() == 8 * 3600
    assert local_date(moment).isoformat() == "2027-01-01"
    assert format_local(datetime(2026, 12, 1, 0, 0)) == "2026-12-01 08:00:00"  # naive moments are UTC
    assert format_local(None) == "—"


def test_a_deadline_at_local_midnight_reads_as_the_day_it_closes_like_the_sms() -> None:
    # due 2026-12-09 00:00 Beijing = 2026-12-08 16:00 UTC: the SMS says "请于2026年12月8日前", so does the page
    midnight = datetime(2026, 12, 8, 16, 0, tzinfo=UTC)
    assert format_deadline(midnight) == "2026年12月8日"
    assert last_local_day(midnight) == date(2026, 12, 8)
    assert sms_templates.stage_params(deadline=last_local_day(midnight))["deadline"] == format_deadline(midnight)
    assert format_deadline(datetime(2026, 12, 8, 7, 30, tzinfo=UTC)) == "2026年12月8日 15:30"
    assert format_deadline(None) == "—"
