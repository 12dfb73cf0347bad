"""The treasury stand-in through real HTTP, driven by the gateway Zhida's activities use."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gateways.signing import NonceCache, SignatureError, new_private_pem, public_pem, sign_headers
from gateways.treasury import (
    HttpTreasuryGateway,
    TreasuryRejected,
    TreasuryUnavailable,
    verify_callback,
)
from schemas.treasury import InstructionResult, PaymentInstruction
from standins.treasury import REASON_NAME_MISMATCH, create_app
from tests.support import eventually_sync

ZHIDA_KEY = new_private_pem()
TREASURY_KEY = new_private_pem()
ZHIDA_KID, TREASURY_KID = "zhida-1", "treasury-1"
TREASURY_PUBS = {TREASURY_KID: public_pem(TREASURY_KEY)}
SETTLE = 0.1


class Receiver:
    """A stand-in for Zhida's callback endpoint: records every delivery, can answer 500 on purpose."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, dict[str, str], bytes, int]] = []
        self.fail_remaining: dict[str, int] = {}  # path → how many more deliveries get a 500
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    left = receiver.fail_remaining.get(self.path, 0)
                    receiver.fail_remaining[self.path] = max(left - 1, 0)
                    status = 500 if left else 200
                    receiver.hits.append((self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def delivered(self, path: str) -> list[InstructionResult]:
        """Results delivered to `path` with a 200, each after checking the treasury's signature."""
        with self._lock:
            hits = [h for h in self.hits if h[0] == path and h[3] == 200]
        nonces = NonceCache()
        return [
            verify_callback(h, body, treasury_public_pems=TREASURY_PUBS, window_seconds=300, nonces=nonces)
            for _, h, body, _ in hits
        ]

    def attempts(self, path: str) -> list[int]:
        with self._lock:
            return [h[3] for h in self.hits if h[0] == path]


def wait_for(check: Callable[[], Any], timeout: float = 60) -> Any:
    return eventually_sync(check, what=getattr(check, "__name__", "the condition"), timeout=timeout, every=0.02)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn in a thread on a free port (bound first, so no race) and yield its URL."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that name it (else ~40 ms a request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def stand_in(db: Path, settle: float = SETTLE) -> FastAPI:
    return create_app(
        db_url=f"sqlite:///{db}",
        private_pem=TREASURY_KEY,
        key_id=TREASURY_KID,
        zhida_public_pems={ZHIDA_KID: public_pem(ZHIDA_KEY)},
        settle_delay_seconds=settle,
        callback_backoff_seconds=0.1,
    )


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def treasury_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(stand_in(tmp_path_factory.mktemp("treasury") / "treasury.db")) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(treasury_url: str) -> Iterator[HttpTreasuryGateway]:
    with HttpTreasuryGateway(treasury_url, ZHIDA_KEY, ZHIDA_KID, treasury_public_pems=TREASURY_PUBS) as gw:
        yield gw


_counter = iter(range(1, 1_000_000))


def instruction(receiver: Receiver, **changes: Any) -> PaymentInstruction:
    """A valid instruction with a fresh VoucherNo whose callback goes to its own receiver path."""
    voucher_no = f"ZD2026T{next(_counter):06d}-1"
    fields: dict[str, Any] = {
        "VoucherNo": voucher_no,
        "AdmDivCode": "420500",
        "StYear": 2026,
        "PayAcctNo": "420500000000000001",
        "PayAcctName": "宜昌市财政局零余额账户",
        "PayeeAcctNo": "6222020200112233445",
        "PayeeAcctName": "宜昌某某科技有限公司",
        "PayeeAcctBankName": "中国工商银行宜昌分行",
        "PayeeAcctBankNo": "102526000018",
        "PayAmt": 12_345_600,
        "PaySummaryCode": "30307",
        "PaySummaryName": "惠企政策奖补资金",
        "FundSource": "一般公共预算",
        "NotifyUrl": f"{receiver.base}/cb/{voucher_no}",
    }
    return PaymentInstruction(**(fields | changes))


def path_of(instr: PaymentInstruction) -> str:
    return httpx.URL(instr.NotifyUrl).path


def signed(method: str, url: str, body: bytes = b"", key: str = ZHIDA_KEY) -> httpx.Response:
    return httpx.request(method, url, content=body, headers=sign_headers(key, ZHIDA_KID, body))


def test_accepted_then_paid_with_a_verified_callback(
    gateway: HttpTreasuryGateway, receiver: Receiver
) -> None:
    instr = instruction(receiver)
    accepted = gateway.submit(instr)
    assert (accepted.Status, accepted.PaidAmt, accepted.SettledAt) == ("accepted", 0, None)
    assert accepted.TreasuryRef

    [result] = wait_for(lambda: receiver.delivered(path_of(instr)))
    assert (result.Status, result.PaidAmt, result.Reason) == ("paid", instr.PayAmt, "")
    assert result.TreasuryRef == accepted.TreasuryRef
    assert result.SettledAt is not None and result.SettledAt >= accepted.AcceptedAt
    assert gateway.query(instr.VoucherNo) == result


def test_resend_returns_the_first_result(
    gateway: HttpTreasuryGateway, receiver: Receiver, treasury_url: str
) -> None:
    instr = instruction(receiver)
    body = instr.model_dump_json().encode()
    first = signed("POST", f"{treasury_url}/v1/instructions", body)
    again = signed("POST", f"{treasury_url}/v1/instructions", body)
    assert (first.status_code, again.status_code) == (202, 200)
    # A resend answers the voucher's current state: the first acceptance, or (on a busy machine the stand-in may
    # settle between the two requests) that acceptance settled. Never a second instruction.
    settled = {"Status": "paid", "PaidAmt": instr.PayAmt, "SettledAt": again.json()["SettledAt"]}
    assert again.json() in (first.json(), first.json() | settled)
    through_gateway = gateway.submit(instr).model_dump(mode="json")
    assert through_gateway in (first.json(), first.json() | settled | {"SettledAt": through_gateway["SettledAt"]})

    wait_for(lambda: receiver.delivered(path_of(instr)))
    paid = gateway.submit(instr)  # a resend after settlement learns the outcome
    assert (paid.Status, paid.TreasuryRef) == ("paid", again.json()["TreasuryRef"])


def test_same_voucher_with_other_content_is_a_409(gateway: HttpTreasuryGateway, receiver: Receiver) -> None:
    instr = instruction(receiver)
    gateway.submit(instr)
    with pytest.raises(TreasuryRejected) as info:
        gateway.submit(instr.model_copy(update={"PayAmt": instr.PayAmt + 1}))
    assert info.value.status_code == 409
    assert instr.VoucherNo in info.value.reason


def test_bad_signatures_are_a_401(treasury_url: str, receiver: Receiver) -> None:
    instr = instruction(receiver)
    with HttpTreasuryGateway(treasury_url, new_private_pem(), ZHIDA_KID) as forger:
        with pytest.raises(TreasuryRejected) as info:
            forger.submit(instr)
        assert info.value.status_code == 401
        assert info.value.reason == "签名验证失败"
    with HttpTreasuryGateway(treasury_url, ZHIDA_KEY, "stranger") as stranger:
        with pytest.raises(TreasuryRejected) as info:
            stranger.query(instr.VoucherNo)
        assert info.value.status_code == 401
    assert httpx.get(f"{treasury_url}/v1/instructions/{instr.VoucherNo}").status_code == 401
    # A captured request cannot be replayed, even unchanged.
    body = instr.model_dump_json().encode()
    headers = sign_headers(ZHIDA_KEY, ZHIDA_KID, body)
    assert httpx.post(f"{treasury_url}/v1/instructions", content=body, headers=headers).status_code == 202
    replay = httpx.post(f"{treasury_url}/v1/instructions", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "replayed_nonce"


def test_invalid_instruction_is_a_422_naming_the_field(
    gateway: HttpTreasuryGateway, receiver: Receiver
) -> None:
    bad = PaymentInstruction.model_construct(**(instruction(receiver).model_dump() | {"PayAmt": 0}))
    with pytest.raises(TreasuryRejected) as info:
        gateway.submit(bad)
    assert info.value.status_code == 422
    assert "PayAmt" in info.value.reason
    assert gateway.query(bad.VoucherNo) is None


def test_payee_name_marked_wrong_fails_with_nothing_paid(
    gateway: HttpTreasuryGateway, receiver: Receiver
) -> None:
    instr = instruction(receiver, PayeeAcctName="宜昌错误科技有限公司")
    gateway.submit(instr)
    [result] = wait_for(lambda: receiver.delivered(path_of(instr)))
    assert (result.Status, result.PaidAmt, result.Reason) == ("failed", 0, REASON_NAME_MISMATCH)
    assert gateway.query(instr.VoucherNo) == result


def test_callback_is_retried_until_2xx(gateway: HttpTreasuryGateway, receiver: Receiver) -> None:
    instr = instruction(receiver)
    receiver.fail_remaining[path_of(instr)] = 2
    gateway.submit(instr)
    [result] = wait_for(lambda: receiver.delivered(path_of(instr)))
    assert result.Status == "paid"
    assert receiver.attempts(path_of(instr)) == [500, 500, 200]


def test_batch_submit_and_query_many(
    gateway: HttpTreasuryGateway, receiver: Receiver, treasury_url: str
) -> None:
    # Campaign style: no NotifyUrl, results are polled in bulk.
    batch = [instruction(receiver, NotifyUrl=None) for _ in range(50)]
    already = gateway.submit(batch[0])
    conflicting = batch[1].model_copy(update={"PayAmt": 1})
    items = gateway.submit_batch([*batch, batch[2], conflicting])
    assert [i.Outcome for i in items] == ["duplicate"] + ["accepted"] * 49 + ["duplicate", "conflict"]
    assert items[0].Result == already
    assert items[-1].Result is None and batch[1].VoucherNo in items[-1].Reason

    voucher_nos = [i.VoucherNo for i in batch]

    def all_final() -> dict[str, InstructionResult] | None:
        results = gateway.query_many([*voucher_nos, "NOPE-1"])
        return results if all(r.final for r in results.values()) else None

    settled = wait_for(all_final)
    assert set(settled) == set(voucher_nos)
    assert {(r.Status, r.PaidAmt) for r in settled.values()} == {("paid", batch[0].PayAmt)}
    assert not any(receiver.attempts(f"/cb/{v}") for v in voucher_nos)

    ledger = signed("GET", f"{treasury_url}/v1/ledger").json()["Accounts"]
    [account] = [a for a in ledger if a["PayAcctNo"] == batch[0].PayAcctNo]
    assert account["PaidAmt"] >= 50 * batch[0].PayAmt and account["PaidCount"] >= 50


def test_unknown_voucher_queries_as_none(gateway: HttpTreasuryGateway) -> None:
    assert gateway.query("ZD-NEVER-SENT") is None


def test_answers_must_carry_the_treasury_signature(treasury_url: str, receiver: Receiver) -> None:
    other = {TREASURY_KID: public_pem(new_private_pem())}
    gw = HttpTreasuryGateway(treasury_url, ZHIDA_KEY, ZHIDA_KID, treasury_public_pems=other)
    with gw, pytest.raises(TreasuryUnavailable):
        gw.submit(instruction(receiver))


def test_unreachable_treasury_is_unavailable(receiver: Receiver) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = HttpTreasuryGateway(f"http://127.0.0.1:{port}", ZHIDA_KEY, ZHIDA_KID, timeout=1.0)
    with gw, pytest.raises(TreasuryUnavailable):
        gw.submit(instruction(receiver))


def test_callback_rejects_tampering(receiver: Receiver) -> None:
    result = InstructionResult(VoucherNo="ZD-1", Status="accepted", PaidAmt=0, AcceptedAt=time.time())
    body = result.model_dump_json().encode()
    headers = sign_headers(TREASURY_KEY, TREASURY_KID, body)
    with pytest.raises(SignatureError):
        verify_callback(
            headers,
            body.replace(b"accepted", b"paid"),
            treasury_public_pems=TREASURY_PUBS,
            window_seconds=300,
            nonces=NonceCache(),
        )


def test_restart_resumes_settlement_and_callbacks(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "treasury.db"
    waiting = instruction(receiver)  # accepted, not yet settled when the stand-in stops
    undelivered = instruction(receiver)  # settled, but its callback failed before the stop
    receiver.fail_remaining[path_of(undelivered)] = 10**6

    with serving(stand_in(db, settle=SETTLE)) as url, HttpTreasuryGateway(url, ZHIDA_KEY, ZHIDA_KID) as gw:
        gw.submit(undelivered)
        wait_for(lambda: receiver.attempts(path_of(undelivered)))
    with serving(stand_in(db, settle=60)) as url, HttpTreasuryGateway(url, ZHIDA_KEY, ZHIDA_KID) as gw:
        assert gw.submit(waiting).Status == "accepted"
    assert not receiver.delivered(path_of(waiting)) and not receiver.delivered(path_of(undelivered))

    receiver.fail_remaining[path_of(undelivered)] = 0
    with serving(stand_in(db, settle=SETTLE)) as url, HttpTreasuryGateway(url, ZHIDA_KEY, ZHIDA_KID) as gw:
        [paid] = wait_for(lambda: receiver.delivered(path_of(waiting)))
        assert paid.Status == "paid" and gw.query(waiting.VoucherNo) == paid
        [late] = wait_for(lambda: receiver.delivered(path_of(undelivered)))
        assert late.Status == "paid"


def test_a_database_from_an_older_stand_in_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import sqlite3

    from gateways.signing import new_private_pem
    from standins.treasury import TreasuryStandIn

    path = tmp_path / "old-treasury.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tsim_instruction (voucher_no TEXT PRIMARY KEY)")
    stand_in = TreasuryStandIn(
        db_url=f"sqlite:///{path}",
        private_pem=new_private_pem(),
        key_id="treasury-1",
        zhida_public_pems={},
        settle_delay_seconds=0.1,
        window_seconds=300,
        callback_backoff_seconds=1,
        callback_backoff_max_seconds=10,
    )
    with pytest.raises(SystemExit, match="tsim_instruction 来自旧版本"):
        stand_in.create_schema()
