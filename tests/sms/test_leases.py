"""Leases of notices being sent: short enough that a killed dispatcher's notices go out again within a minute,
renewed while a live round sends, so a slow round never loses them to another dispatcher."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from gateways.sms import SendResult, SmsProvider
from settings import Settings
from tests.sms.support import NOON, Clock, dispatcher, notice, queue


class Slow(SmsProvider):
    """Each send takes `seconds` on the test clock; while sending the k-th message it lets another dispatcher try
    to claim, as a second worker's round would."""

    name = "slow-carrier"

    def __init__(self, clock: Clock, seconds: float, rival=None) -> None:
        self.clock, self.seconds, self.rival = clock, seconds, rival
        self.sent: list[int] = []
        self.rival_claims: list[int] = []

    def send(self, message):
        self.clock.now += timedelta(seconds=self.seconds)
        if self.rival is not None:
            self.rival_claims.append(self.rival.dispatch_due().claimed)
        self.sent.append(message.notice_id)
        return SendResult(ok=True, provider_msg_id=f"m{message.notice_id}")


class Dead(SmsProvider):
    """A dispatcher killed mid-round: the notices were claimed, then nothing was recorded."""

    name = "dead"

    def send(self, message):
        raise SystemExit("killed")


def test_a_slow_round_renews_its_leases_and_no_other_round_takes_its_notices(settings, world) -> None:
    clock = Clock(NOON)
    ids = [queue(settings, world, phone=f"1390000{n:04d}") for n in range(6)]
    rival_provider = Slow(clock, 0)
    rival = dispatcher(settings, rival_provider, clock)
    slow = Slow(clock, 25, rival=rival)  # 6 × 25 s = 150 s of sending, far past a 60 s lease
    report = dispatcher(settings, slow, clock, lease_seconds=60, lease_renew_seconds=20).dispatch_due()
    assert report.claimed == 6 and report.sent == 6
    assert slow.rival_claims == [0] * 6 and rival_provider.sent == []  # the live round's notices stayed its own
    assert all(notice(settings, i).status == "sent" and notice(settings, i).attempts == 1 for i in ids)


def test_without_renewal_the_same_round_would_have_lost_them(settings, world) -> None:
    """The test above is not vacuous: with renewal effectively off, the rival takes the notices mid-round."""
    clock = Clock(NOON)
    for n in range(3):
        queue(settings, world, phone=f"1370000{n:04d}")
    rival_provider = Slow(clock, 0)
    slow = Slow(clock, 40, rival=dispatcher(settings, rival_provider, clock))
    dispatcher(settings, slow, clock, lease_seconds=60, lease_renew_seconds=10_000).dispatch_due()
    assert sum(slow.rival_claims) > 0 and rival_provider.sent


def test_a_killed_dispatchers_notices_go_out_again_after_one_lease(settings, world) -> None:
    clock = Clock(NOON)
    nid = queue(settings, world, phone="13600001111")
    with pytest.raises(SystemExit):
        dispatcher(settings, Dead(), clock, lease_seconds=Settings().sms_lease_seconds).dispatch_due()
    assert notice(settings, nid).status == "sending"
    live = Slow(clock, 0)
    clock.now += timedelta(seconds=30)
    assert dispatcher(settings, live, clock).dispatch_due().claimed == 0  # still leased
    clock.now += timedelta(seconds=31)  # one minute after the kill, not five
    assert dispatcher(settings, live, clock).dispatch_due().sent == 1
    assert live.sent == [nid] and notice(settings, nid).attempts == 2


def test_a_renewal_slower_than_half_the_lease_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="sms_lease_renew_seconds"):
        Settings(sms_lease_seconds=30, sms_lease_renew_seconds=20)


class DiesAfter(SmsProvider):
    """Sends `n` messages, then the process is killed."""

    name = "dies-after"

    def __init__(self, n: int) -> None:
        self.n, self.sent = n, 0

    def send(self, message):
        if self.sent == self.n:
            raise SystemExit("killed")
        self.sent += 1
        return SendResult(ok=True, provider_msg_id=f"m{message.notice_id}")


def test_a_round_killed_mid_way_has_recorded_what_it_sent_in_earlier_chunks(settings, world) -> None:
    clock = Clock(NOON)
    ids = [queue(settings, world, phone=f"1350000{n:04d}") for n in range(12)]
    with pytest.raises(SystemExit):
        dispatcher(settings, DiesAfter(7), clock, record_every=5).dispatch_due()
    statuses = [notice(settings, i).status for i in ids]
    assert statuses == ["sent"] * 5 + ["sending"] * 7  # sends 6–7 are lost with the process; their lease resends
