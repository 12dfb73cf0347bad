"""Every fault of the treasury stand-in, injected over HTTP, against the gateway Zhida's activities use.

Whatever goes wrong, no VoucherNo is ever paid twice: the stand-in's ledger has at most one paid line per
voucher (its database refuses a second), and a resend always returns the first result.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gateways.treasury import HttpTreasuryGateway, TreasuryUnavailable
from schemas.treasury import InstructionResult, PaymentInstruction
from standins.treasury import (
    REASON_ACTIVE_RETURN,
    REASON_NO_ACCOUNT,
    STATEMENT_TZ,
    FaultRule,
    StandInAdmin,
    ledger_lines,
)
from tests.gateways.test_treasury_sim import (
    TREASURY_PUBS,
    ZHIDA_KEY,
    ZHIDA_KID,
    Receiver,
    instruction,
    path_of,
    serving,
    stand_in,
    wait_for,
)
from tests.support import eventually_sync


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def sim_app(tmp_path_factory: pytest.TempPathFactory):
    return stand_in(tmp_path_factory.mktemp("faults") / "treasury.db")


@pytest.fixture(scope="module")
def url(sim_app) -> Iterator[str]:
    with serving(sim_app) as base:
        yield base


@pytest.fixture
def admin(url: str) -> Iterator[StandInAdmin]:
    with StandInAdmin(url, ZHIDA_KEY, ZHIDA_KID) as client:
        yield client
        client.set_faults()  # every test leaves the stand-in without faults


@pytest.fixture(scope="module")
def gateway(url: str) -> Iterator[HttpTreasuryGateway]:
    with HttpTreasuryGateway(url, ZHIDA_KEY, ZHIDA_KID, timeout=2.0, treasury_public_pems=TREASURY_PUBS) as gw:
        yield gw


def paid_lines(sim_app, voucher: str) -> list[dict]:
    return [line for line in ledger_lines(sim_app.state.sim.engine, voucher) if line["entry"] == "paid"]


def test_timeout_after_storing_then_resend_returns_the_first_result(
    url: str, admin: StandInAdmin, receiver: Receiver, sim_app
) -> None:
    instr = instruction(receiver)
    admin.set_faults(FaultRule(Kind="timeout", VoucherNo=instr.VoucherNo, DelaySeconds=1.0))
    with HttpTreasuryGateway(url, ZHIDA_KEY, ZHIDA_KID, timeout=0.3, treasury_public_pems=TREASURY_PUBS) as impatient:
        with pytest.raises(TreasuryUnavailable):
            impatient.submit(instr)  # the answer is late, but the treasury did store it
        again = impatient.submit(instr)
    assert again.Status in ("accepted", "paid") and again.TreasuryRef
    [paid] = wait_for(lambda: receiver.delivered(path_of(instr)))
    assert paid.Status == "paid" and paid.TreasuryRef == again.TreasuryRef
    assert len(paid_lines(sim_app, instr.VoucherNo)) == 1


def test_5xx_stores_nothing_and_the_retry_succeeds(
    gateway: HttpTreasuryGateway, admin: StandInAdmin, receiver: Receiver, sim_app
) -> None:
    instr = instruction(receiver)
    admin.set_faults(FaultRule(Kind="error_5xx", VoucherNo=instr.VoucherNo, Times=2))
    for _ in range(2):
        with pytest.raises(TreasuryUnavailable, match="503"):
            gateway.submit(instr)
    assert gateway.query(instr.VoucherNo) is None
    assert gateway.submit(instr).Status == "accepted"
    wait_for(lambda: receiver.delivered(path_of(instr)))
    assert len(paid_lines(sim_app, instr.VoucherNo)) == 1


def test_duplicate_callbacks_carry_the_same_result(
    gateway: HttpTreasuryGateway, admin: StandInAdmin, receiver: Receiver
) -> None:
    instr = instruction(receiver)
    admin.set_faults(FaultRule(Kind="duplicate_callback", VoucherNo=instr.VoucherNo, Copies=3))
    gateway.submit(instr)
    delivered = wait_for(lambda: (d := receiver.delivered(path_of(instr))) and len(d) >= 3 and d)
    assert len(delivered) == 3 and len(set(delivered)) == 1 and delivered[0].Status == "paid"


def test_out_of_order_sends_a_stale_accepted_after_paid(
    gateway: HttpTreasuryGateway, admin: StandInAdmin, receiver: Receiver
) -> None:
    instr = instruction(receiver)
    admin.set_faults(FaultRule(Kind="out_of_order", VoucherNo=instr.VoucherNo))
    gateway.submit(instr)
    delivered = wait_for(lambda: (d := receiver.delivered(path_of(instr))) and len(d) >= 2 and d)
    assert [d.Status for d in delivered] == ["paid", "accepted"]
    assert gateway.query(instr.VoucherNo).Status == "paid"  # the treasury itself never went backwards


def test_passive_return_after_paid_posts_a_return_line(
    gateway: HttpTreasuryGateway, admin: StandInAdmin, receiver: Receiver, sim_app
) -> None:
    instr = instruction(receiver)
    admin.set_faults(
        FaultRule(Kind="passive_return", VoucherNo=instr.VoucherNo, DelaySeconds=0.3, Reason=REASON_NO_ACCOUNT)
    )
    gateway.submit(instr)
    paid, returned = wait_for(lambda: (d := receiver.delivered(path_of(instr))) and len(d) >= 2 and d)
    assert (paid.Status, paid.PaidAmt) == ("paid", instr.PayAmt)
    assert (returned.Status, returned.PaidAmt, returned.ReturnedAmt) == ("returned", 0, instr.PayAmt)
    assert (returned.ReturnType, returned.Reason) == ("passive", REASON_NO_ACCOUNT)
    assert returned.SettledAt == paid.SettledAt and returned.ReturnedAt > returned.SettledAt
    assert [(x["entry"], x["amount"]) for x in ledger_lines(sim_app.state.sim.engine, instr.VoucherNo)] == [
        ("paid", instr.PayAmt),
        ("returned", instr.PayAmt),
    ]
    statement = admin.statement(datetime.now(STATEMENT_TZ).date())
    mine = [(x.LineType, x.Amount) for x in statement.Lines if x.VoucherNo == instr.VoucherNo]
    assert mine == [("paid", instr.PayAmt), ("returned", instr.PayAmt)]


def test_a_batch_with_failed_lines_pays_the_rest(
    gateway: HttpTreasuryGateway, admin: StandInAdmin, receiver: Receiver, sim_app
) -> None:
    batch = [instruction(receiver, NotifyUrl=None) for _ in range(10)]
    bad = {batch[3].VoucherNo, batch[7].VoucherNo}
    admin.set_faults(*(FaultRule(Kind="fail", VoucherNo=v) for v in sorted(bad)))
    assert {i.Outcome for i in gateway.submit_batch(batch)} == {"accepted"}
    results = wait_for(
        lambda: (r := gateway.query_many([i.VoucherNo for i in batch])) and all(x.final for x in r.values()) and r
    )
    for voucher, result in results.items():
        if voucher in bad:
            assert (result.Status, result.PaidAmt, result.Reason) == ("failed", 0, REASON_NO_ACCOUNT)
            assert paid_lines(sim_app, voucher) == []
        else:
            assert (result.Status, result.PaidAmt) == ("paid", batch[0].PayAmt)
    statement = admin.statement(datetime.now(STATEMENT_TZ).date())
    failed = {x.VoucherNo: (x.Amount, x.Reason) for x in statement.Lines if x.LineType == "failed"}
    assert {v: failed[v] for v in bad} == {v: (0, REASON_NO_ACCOUNT) for v in bad}


def test_active_return_is_an_admin_action_once(
    gateway: HttpTreasuryGateway, admin: StandInAdmin, receiver: Receiver, sim_app
) -> None:
    instr = instruction(receiver)
    gateway.submit(instr)
    wait_for(lambda: receiver.delivered(path_of(instr)))
    returned = admin.active_return(instr.VoucherNo)
    assert (returned.Status, returned.ReturnType, returned.Reason) == ("returned", "active", REASON_ACTIVE_RETURN)
    with pytest.raises(httpx.HTTPStatusError) as info:
        admin.active_return(instr.VoucherNo)
    assert info.value.response.status_code == 409
    [_, callback] = wait_for(lambda: (d := receiver.delivered(path_of(instr))) and len(d) >= 2 and d)
    assert callback == returned == gateway.query(instr.VoucherNo)
    assert [x["entry"] for x in ledger_lines(sim_app.state.sim.engine, instr.VoucherNo)] == ["paid", "returned"]


def test_statement_faults_drop_and_alter_lines(
    gateway: HttpTreasuryGateway, admin: StandInAdmin, receiver: Receiver
) -> None:
    dropped, altered = instruction(receiver, NotifyUrl=None), instruction(receiver, NotifyUrl=None)
    gateway.submit_batch([dropped, altered])
    wait_for(lambda: all(r.final for r in gateway.query_many([dropped.VoucherNo, altered.VoucherNo]).values()))
    today = datetime.now(STATEMENT_TZ).date()
    before = admin.statement(today)
    admin.set_faults(
        FaultRule(Kind="statement_drop", VoucherNo=dropped.VoucherNo),
        FaultRule(Kind="statement_amount", VoucherNo=altered.VoucherNo, AmountDelta=-100),
    )
    after = admin.statement(today)
    assert {x.VoucherNo for x in before.Lines} - {x.VoucherNo for x in after.Lines} == {dropped.VoucherNo}
    [line] = [x for x in after.Lines if x.VoucherNo == altered.VoucherNo]
    assert line.Amount == altered.PayAmt - 100
    assert after.TotalPaidAmt == before.TotalPaidAmt - dropped.PayAmt - 100 and after.LineCount == before.LineCount - 1


def test_faults_are_refused_when_unsigned_or_malformed(url: str, admin: StandInAdmin) -> None:
    assert httpx.put(f"{url}/admin/faults", json={"Rules": []}).status_code == 401
    with pytest.raises(httpx.HTTPStatusError) as info:
        admin._call("PUT", "/admin/faults", b'{"Rules":[{"Kind":"fail"}]}')
    assert info.value.response.status_code == 422
    assert "VoucherNo" in info.value.response.text


def test_random_faults_never_pay_twice_and_ledgers_agree(tmp_path: Path, receiver: Receiver) -> None:
    """Every fault by rate at once; the sender retries like the activities do until every result is final."""
    app = stand_in(tmp_path / "treasury.db")
    engine = app.state.sim.engine
    with serving(app) as base, StandInAdmin(base, ZHIDA_KEY, ZHIDA_KID) as admin:
        admin.set_faults(
            FaultRule(Kind="error_5xx", Rate=0.2),
            FaultRule(Kind="timeout", Rate=0.1, DelaySeconds=0.5),
            FaultRule(Kind="duplicate_callback", Rate=0.3, Copies=2),
            FaultRule(Kind="out_of_order", Rate=0.3),
            FaultRule(Kind="fail", Rate=0.15),
            FaultRule(Kind="passive_return", Rate=0.15, DelaySeconds=0.2),
            seed=7,
        )
        batch = [instruction(receiver, VoucherNo=f"ZDRND{n:04d}") for n in range(30)]  # fixed: the draws are too
        with HttpTreasuryGateway(base, ZHIDA_KEY, ZHIDA_KID, timeout=0.25, treasury_public_pems=TREASURY_PUBS) as gw:
            for instr in batch:
                first = _submit_until_answered(gw, instr)
                again = _submit_until_answered(gw, instr)  # a resend, as after a lost answer: the first result
                assert again.TreasuryRef == first.TreasuryRef and again.AcceptedAt == first.AcceptedAt
            wait_for(lambda: _quiet(engine), timeout=15)
            results = _query_until_answered(gw, [i.VoucherNo for i in batch])
        statuses = {r.Status for r in results.values()}
        assert statuses == {"paid", "failed", "returned"}
        lines = ledger_lines(engine)
        paid_vouchers = [x["voucher_no"] for x in lines if x["entry"] == "paid"]
        assert len(paid_vouchers) == len(set(paid_vouchers))  # never twice
        expected_net = sum(i.PayAmt for i in batch if results[i.VoucherNo].Status == "paid")
        expected_gross = sum(i.PayAmt for i in batch if results[i.VoucherNo].Status in ("paid", "returned"))
        [account] = admin.ledger().Accounts
        assert (account.NetAmt, account.PaidAmt) == (expected_net, expected_gross)
        for instr in batch:  # every callback received is this voucher's, final or an earlier state of it
            final = results[instr.VoucherNo]
            delivered = wait_for(lambda i=instr: receiver.delivered(path_of(i)))
            assert all(d.TreasuryRef == final.TreasuryRef for d in delivered)
            assert final in delivered


def _quiet(engine) -> bool:
    """Nothing left to settle, return or call back at the stand-in."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return (
            not conn.execute(
                text("SELECT count(*) FROM tsim_instruction WHERE status = 'accepted' OR return_due_at IS NOT NULL")
            ).scalar()
            and not conn.execute(text("SELECT count(*) FROM tsim_callback WHERE state = 'pending'")).scalar()
        )


def _submit_until_answered(gw: HttpTreasuryGateway, instr: PaymentInstruction) -> InstructionResult:
    return eventually_sync(
        lambda: gw.submit(instr), what=f"the treasury to answer {instr.VoucherNo}", every=0.05, ignore=(TreasuryUnavailable,)
    )


def _query_until_answered(gw: HttpTreasuryGateway, vouchers: list[str]) -> dict[str, InstructionResult]:
    return eventually_sync(
        lambda: gw.query_many(vouchers),
        lambda _answer: True,
        what="the treasury to answer a query",
        every=0.05,
        ignore=(TreasuryUnavailable,),
    )
