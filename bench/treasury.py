"""`zhida bench treasury`: N instructions in signed batches through the HTTP adapter against a stand-in process."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import typer

from bench.report import app, console, print_figures, write_report


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _instructions(n: int, pay_acct_no: str, pay_acct_name: str, run: str) -> list[Any]:
    from schemas.treasury import PaymentInstruction

    return [
        PaymentInstruction(
            VoucherNo=f"ZDB{run}{i:08d}",
            AdmDivCode="420500",
            StYear=2026,
            PayAcctNo=pay_acct_no,
            PayAcctName=pay_acct_name,
            PayeeAcctNo=f"6222{i:015d}",
            PayeeAcctName=f"宜昌测试企业{i:05d}有限公司",
            PayeeAcctBankName="中国工商银行宜昌分行",
            PayeeAcctBankNo="102526000018",
            PayAmt=10_000 + i % 1000,
            PaySummaryCode="30307",
            PaySummaryName="惠企政策奖补资金",
            FundSource="市级财政",
        )
        for i in range(n)
    ]


def run_treasury(*, n: int, batch: int, concurrency: int, settle_delay: float, data_dir: Path) -> dict[str, Any]:
    """Start the stand-in as its own process (own port, own SQLite file), send, wait until all are paid, check."""
    from cli.embedded import Supervisor, isolated_settings, zhida_command
    from gateways.treasury import HttpTreasuryGateway

    saved = {k: v for k, v in os.environ.items() if k.startswith("ZHIDA_")}
    settings = isolated_settings(data_dir, treasury_sim_settle_delay_seconds=str(settle_delay), log_level="WARNING")
    sup = Supervisor(data_dir / "logs")
    sup.start("treasury", zhida_command("treasury-sim"))
    try:
        url = f"http://{settings.treasury_sim_host}:{settings.treasury_sim_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"treasury stand-in did not start; see {data_dir / 'logs' / 'treasury.log'}")
            time.sleep(0.1)
        items = _instructions(n, settings.pay_acct_no, settings.pay_acct_name, run=str(int(time.time()))[-6:])
        chunks = [items[i : i + batch] for i in range(0, n, batch)]
        gateway = HttpTreasuryGateway(
            url,
            settings.zhida_private_pem(),
            settings.signing_key_id,
            timeout=60.0,
            treasury_public_pems={settings.treasury_signing_key_id: settings.treasury_public_pem()},
            window_seconds=settings.signature_window_seconds,
        )
        latencies: list[float] = []

        def send(chunk: list[Any]) -> int:
            started = time.perf_counter()
            results = gateway.submit_batch(chunk)
            latencies.append(time.perf_counter() - started)
            return sum(1 for r in results if r.Outcome == "accepted")

        with gateway, ThreadPoolExecutor(concurrency) as pool:
            started = time.perf_counter()
            accepted = sum(pool.map(send, chunks))
            seconds = time.perf_counter() - started
            # A resend of the first batch: every item is a duplicate carrying the first result.
            resend = gateway.submit_batch(chunks[0])
            duplicates_ok = all(r.Outcome == "duplicate" for r in resend)
            vouchers = [i.VoucherNo for i in items]
            settle_deadline = time.monotonic() + 120
            while True:
                results: dict[str, Any] = {}
                for chunk in (vouchers[i : i + 1000] for i in range(0, n, 1000)):
                    results |= gateway.query_many(chunk)
                if len(results) == n and all(r.Status == "paid" for r in results.values()):
                    break
                if time.monotonic() > settle_deadline:
                    raise RuntimeError("instructions were not all paid within 120 s")
                time.sleep(0.2)
            all_paid_seconds = time.perf_counter() - started
            [account] = gateway.ledger().Accounts
        expected = sum(i.PayAmt for i in items)
        return {
            "n": n,
            "batch_size": batch,
            "concurrency": concurrency,
            "accepted": accepted,
            "seconds": round(seconds, 3),
            "instructions_per_s": round(n / seconds, 1),
            "batch_p50_ms": round(_percentile(latencies, 0.5) * 1000, 1),
            "batch_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
            "batch_mean_ms": round(statistics.fmean(latencies) * 1000, 1),
            "all_paid_seconds": round(all_paid_seconds, 3),
            "settle_delay_seconds": settle_delay,
            "ledger_paid_fen": account.PaidAmt,
            "ledger_matches": account.PaidAmt == expected and account.PaidCount == n,
            "resend_all_duplicates": duplicates_ok,
        }
    finally:
        sup.stop()
        for key in [k for k in os.environ if k.startswith("ZHIDA_")]:  # leave the caller's environment as it was
            del os.environ[key]
        os.environ.update(saved)


@app.command("treasury")
def treasury_command(
    n: int = typer.Option(10_000, "--n", min=1, help="instructions to send"),
    batch: int = typer.Option(1000, min=1, max=1000, help="instructions per signed batch request"),
    concurrency: int = typer.Option(2, min=1, help="batches in flight at once"),
    settle_delay: float = typer.Option(0.5, help="stand-in settlement delay, seconds"),
    reports_dir: Path = typer.Option(Path("reports"), help="where bench-treasury.json and .md go"),
) -> None:
    """10,000 instructions in batches through the signed HTTP adapter; goal > 2,000 instructions/s."""
    with tempfile.TemporaryDirectory(prefix="zhida-bench-treasury-") as folder:
        figures = run_treasury(n=n, batch=batch, concurrency=concurrency, settle_delay=settle_delay, data_dir=Path(folder))
    print_figures("bench treasury · stand-in on SQLite (own process)", figures)
    if not (figures["ledger_matches"] and figures["resend_all_duplicates"] and figures["accepted"] == n):
        console.print("[red]账目不符 / ledger or idempotency check failed[/red]")
        raise typer.Exit(1)
    notes = (
        "Zhida's HttpTreasuryGateway (Ed25519-signed requests, signed answers verified) sends N instructions in "
        f"batches of {batch} (POST /v1/instruction-batches), {concurrency} in flight, to the treasury stand-in "
        "started by the benchmark as its own process (`zhida treasury-sim`, own port, own SQLite file in a "
        "temporary directory, WAL). instructions_per_s = N / wall time of all submissions; batch_p50/p99_ms are "
        "per-request latencies. all_paid_seconds runs from the first send until batch queries see every "
        "instruction paid (settlement delay included). The stand-in's ledger is checked against the sent amounts "
        "(one paid line per VoucherNo, enforced by a unique constraint), and a resend of the first batch must "
        "come back as duplicates with the first results. Client, stand-in and its database share the machine."
    )
    json_path, md_path = write_report("treasury", figures, notes, database="sqlite (stand-in)", reports_dir=reports_dir)
    console.print(f"报告 / reports: {json_path} · {md_path}")
