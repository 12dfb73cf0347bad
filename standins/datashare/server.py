"""The stand-in as a real HTTP server on a port of its own (the OS picks a free one unless one is given), in a thread
of the calling process or as `zhida datashare-sim`; and the signed admin client (records, faults)."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from gateways.datashare import canonical_path, signed_headers
from standins.datashare.app import DataShareStandIn, Faults, create_app
from standins.datashare.data import generate


class DataShareServer:
    """uvicorn serving the stand-in on 127.0.0.1 until stop(); `port=0` binds a free port chosen by the OS."""

    def __init__(self, state: DataShareStandIn, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.host, self.port = self.socket.getsockname()[:2]
        config = uvicorn.Config(create_app(state), log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> DataShareServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"data-sharing stand-in did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> DataShareServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class DataShareAdmin:
    """Signed admin calls to a running stand-in: set faults, add or change records."""

    def __init__(self, base_url: str, app_key: str, app_secret: str) -> None:
        self.base_url, self.app_key, self.secret = base_url.rstrip("/"), app_key, app_secret
        self.http = httpx.Client(base_url=self.base_url, timeout=10, verify=False)  # loopback HTTP: no CA bundle

    def _send(self, method: str, path: str, payload: Any) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = signed_headers(self.app_key, self.secret, method, canonical_path(path, {}), body)
        r = self.http.request(method, path, content=body, headers=headers)
        r.raise_for_status()
        return r.json()

    def faults(self, **rules: Any) -> dict[str, Any]:
        return self._send("PUT", "/admin/faults", Faults(**rules).model_dump())

    def put(self, dataset: str, records: list[dict[str, Any]]) -> int:
        return int(self._send("POST", f"/admin/records/{dataset}", records)["changed"])


def serve(*, app_key: str, app_secret: str, usccs: list[str], host: str, port: int, seed: int = 18) -> None:
    """Run the stand-in in the foreground with generated records for `usccs` (`zhida datashare-sim`)."""
    state = DataShareStandIn(apps={app_key: app_secret})
    for dataset, records in generate(usccs, seed=seed).items():
        state.put(dataset, records)
    server = DataShareServer(state, host=host, port=port)
    print(f"政务数据共享交换平台（模拟）: {server.url}  ({len(usccs)} enterprises, app key {app_key})", flush=True)
    server.socket.listen()
    server.server.run(sockets=[server.socket])
