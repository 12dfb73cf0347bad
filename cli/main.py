"""The `zhida` command line (typer).

Commands import what they need when they run: `zhida --help` and `zhida token` must start at once, so this module
and the sub-apps it registers import no database, Temporal, web framework or benchmark code at module level
(tests/cli/test_startup.py holds it).
"""

from __future__ import annotations

import typer
from rich.console import Console

from cli import archive as archive_cli
from cli import audit as audit_cli
from cli import calendar as calendar_cli
from cli import campaign as campaign_cli
from cli import generate
from cli import keys as keys_cli
from cli import reconcile as reconcile_cli
from settings import Settings, get_settings

app = typer.Typer(help="惠企直达 Zhida: subsidy disbursement on Temporal", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations")
app.add_typer(db_app, name="db")
app.add_typer(archive_cli.app, name="archive")
app.add_typer(calendar_cli.app, name="calendar")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(campaign_cli.app, name="campaign")
app.add_typer(reconcile_cli.app, name="reconcile")
app.add_typer(generate.app, name="generate")
console = Console()


def configure_logging(settings: Settings) -> None:
    """Structured logs for a long-running process, in the format settings ask for."""
    import logs

    logs.configure(log_format=settings.log_format, level=settings.log_level)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Benchmarks: figures to reports/bench-NAME.json and .md (`zhida bench --help` lists them)."""
    # Loaded only here: the benchmarks import most of Zhida, which no other command should pay for.
    from bench import app as bench_app

    bench_app(args=ctx.args, prog_name=f"{ctx.find_root().info_name or 'zhida'} bench", standalone_mode=True)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def soak(ctx: typer.Context) -> None:
    """Fault-injection soak: all three modes under worker kills, Temporal restarts, treasury and SMS faults
    (`zhida soak --help`; reports/soak.json)."""
    from bench import app as bench_app

    bench_app(args=["soak", *ctx.args], prog_name=f"{ctx.find_root().info_name or 'zhida'}", standalone_mode=True)


@app.command()
def fuzz(
    minutes: float = typer.Option(5.0, min=0.1, help="how long to fuzz"),
    examples: int = typer.Option(20, min=1, help="examples per operation, role and round"),
    seed: int = typer.Option(20261201, help="the first round's seed (each round takes the next)"),
) -> None:
    """Schemathesis against the live OpenAPI of a private stack, as every role: no 5xx, no schema violation
    (needs the dev extra; reports/fuzz.json)."""
    from cli.fuzz import fuzz_command

    raise typer.Exit(fuzz_command(minutes, examples, seed))


@app.command()
def run(demo: bool = typer.Option(True, help="Load demo data into an empty database")) -> None:
    """Start the embedded stack: Temporal dev server, treasury stand-in, worker, API."""
    from cli.embedded import run as run_embedded

    raise typer.Exit(run_embedded(get_settings(), load_demo=demo))


@app.command()
def api() -> None:
    """Serve the HTTP API and web pages."""
    import uvicorn

    import tracing
    from api.app import create_app

    settings = get_settings()
    configure_logging(settings)
    tracing.configure(settings, "zhida-api")
    web = create_app(settings)
    freeze_startup_heap()  # no full collection walks the imported app in the middle of a request
    # No uvicorn access log: it writes raw paths, USCCs included; api/request_log.py logs route templates instead.
    uvicorn.run(
        web, host=settings.api_host, port=settings.api_port, log_level="warning", log_config=None, access_log=False
    )


def freeze_startup_heap() -> None:
    """Move everything imported at startup out of the collector's sight (gc.freeze): a batch of thousands of rows
    otherwise sets off full collections that walk the whole imported heap, a sixth of a campaign worker's time."""
    import gc

    gc.collect()
    gc.freeze()


@app.command()
def worker() -> None:
    """Run a Temporal worker for cases."""
    import asyncio
    import contextlib
    import signal

    import tracing
    from cli.archive import ensure_archive_pull_schedules
    from cli.audit import ensure_audit_schedule_from
    from cli.reconcile import ensure_reconciliation_schedule
    from cli.worker import build_worker, deliver_receipts_forever, dispatch_notices_forever
    from gateways.factory import build_gateways
    from workflows.client import connect

    settings = get_settings()
    configure_logging(settings)
    tracing.configure(settings, "zhida-worker")

    async def _main() -> None:
        client = await connect(settings, attempts=60, interceptors=tracing.interceptors())
        gateways = build_gateways(settings)
        if settings.worker_metrics_port:
            from prometheus_client import start_http_server

            # Treasury errors and SMS refusals this worker saw (gateways/metrics.py), with the process figures.
            start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        worker = build_worker(client, settings, gateways=gateways)
        freeze_startup_heap()
        await ensure_reconciliation_schedule(client, settings)
        await ensure_archive_pull_schedules(client, settings)
        await ensure_audit_schedule_from(client, settings)
        # SIGTERM/SIGINT: stop polling, let running activities finish, then exit.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.shutdown()))
        dispatcher = asyncio.create_task(dispatch_notices_forever(settings, provider=gateways.sms))
        receipts = asyncio.create_task(deliver_receipts_forever(settings, client, gateways))
        try:
            await worker.run()
        finally:
            dispatcher.cancel()
            receipts.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


@app.command("treasury-sim")
def treasury_sim() -> None:
    """Run the treasury stand-in (国库集中支付模拟)."""
    from standins.treasury import serve

    settings = get_settings()
    configure_logging(settings)
    freeze_startup_heap()
    serve(settings)


@app.command("datashare-sim")
def datashare_sim(
    port: int = typer.Option(0, help="port (0: a free one, printed at start)"),
    host: str = typer.Option("127.0.0.1"),
    from_archive: bool = typer.Option(True, help="serve records for the enterprises of the application database"),
) -> None:
    """Run the data-sharing platform stand-in (政务数据共享交换平台模拟), protocol in docs/datashare-protocol.md."""
    from standins.datashare import serve

    settings = get_settings()
    usccs: list[str] = []
    if from_archive:
        from db.repositories.enterprises import usccs as known_usccs
        from db.session import transaction

        with transaction(settings.db_url) as session:
            usccs = sorted(known_usccs(session=session))
    serve(app_key=settings.datashare_app_key, app_secret=settings.datashare_secret(), usccs=usccs, host=host, port=port)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply Alembic migrations."""
    from db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.db_url, revision)
    console.print(f"数据库已迁移至 {revision}")


@db_app.command("rebuild-cockpit")
def db_rebuild_cockpit() -> None:
    """Recount the finance cockpit's summaries from the cases (after a bulk load with the triggers off, or a restore)."""
    from db.session import transaction
    from services import cockpit

    settings = get_settings()
    with transaction(settings.db_url) as session:
        cockpit.rebuild_summaries(session=session)
    console.print("财政看板汇总已按办件重新统计")


@app.command()
def demo() -> None:
    """Load demo data (only into an empty database)."""
    from cli.demo import ensure_demo
    from db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.db_url)
    console.print("已载入演示数据" if ensure_demo(settings) else "数据库已有数据，未载入演示数据")


@app.command()
def token(
    role: str = typer.Option(..., help="enterprise | department | finance | admin"),
    subject: str = typer.Option("dev", help="USCC for an enterprise, department code otherwise"),
    name: str = typer.Option("", help="display name"),
) -> None:
    """Mint a development token for a role. No database is opened here: the token's audit record (令牌首次使用:
    subject, role, jti, issued-at, expiry) is written when the API first accepts it."""
    from api.auth import mint

    settings = get_settings()
    try:
        typer.echo(
            mint(settings.jwt_key(), role=role, subject=subject, name=name, ttl_seconds=settings.jwt_ttl_seconds)
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from exc
