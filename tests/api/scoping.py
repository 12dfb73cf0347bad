"""The shared format of the role × endpoint × owner tables (tests/api/test_scoping*.py).

A table is a list of `Row`s: one endpoint (method and the route path exactly as the app declares it), how to fill the
path's placeholders from the test's world, an optional body or query, and the callers that get through. Every other
caller is refused: anonymous and the unknown department with 401 (pages: anonymous is sent to the login page, 303),
the rest with one of `denied` (403 wrong role, 404 outside its scope).

Callers are named, not built here: each test module makes a `World` with a token per caller and the ids its rows
need. The standard cast (both test modules use it, so one world fixture can serve both):
  admin · dept_a, dept_b (two policy departments, each owning one item) · finance_yc (420500 宜昌), finance_wh
  (420100 武汉) · ent_a, ent_b (two enterprises) · unknown (a department token for a code that does not exist) ·
  anonymous (no token).
Each test module exposes its rows as a module-level `TABLE` (a list of Row); `tables()` collects the TABLE of every
tests/api/test_scoping*.py module, `covered_routes` lists their (method, path) pairs and `app_routes` every route of
the app, so one test proves that no route is missing from all tables. Page rows (`auth="cookie"`) send the caller's
token as the sign-in cookie instead of the Authorization header.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

CALLERS: tuple[str, ...] = (
    "admin",
    "dept_a",
    "dept_b",
    "finance_yc",
    "finance_wh",
    "ent_a",
    "ent_b",
    "unknown",
    "anonymous",
)
STAFF = frozenset({"admin", "dept_a", "dept_b", "finance_yc", "finance_wh"})
ENTERPRISES = frozenset({"ent_a", "ent_b"})
EVERYONE_KNOWN = STAFF | ENTERPRISES


@dataclass
class World:
    """What the rows need: a header set per caller (anonymous: none) and named ids (`case_a`, `item_b`, …)."""

    headers: dict[str, dict[str, str]]
    ids: dict[str, Any] = field(default_factory=dict)
    # The app's signing key: page rows that change something send the CSRF token computed from it.
    secret: str = ""

    def fill(self, text: str) -> str:
        return text.format(**self.ids)


Body = dict[str, Any] | Callable[[World, str], dict[str, Any]] | None
Form = dict[str, str] | Callable[[World, str], dict[str, str]] | None


@dataclass(frozen=True)
class Row:
    """One endpoint and who may call it.

    `path` is the route as declared ("/api/v1/cases/{case_id}"); `fill` maps each placeholder to a key of World.ids
    ({"case_id": "case_a"}). `allowed` callers must get one of `ok` (a status that shows the caller got past the
    scope check: 200/201/202, or 409/422 when the call is in scope but refused by the state of the case);
    every other caller of CALLERS must get one of `denied`, except the unknown department and anonymous, who get
    `unknown` and `anonymous`. `body` is JSON, or a function of (world, caller) for bodies that differ per caller.
    """

    method: str
    path: str
    allowed: frozenset[str]
    fill: dict[str, str] = field(default_factory=dict)
    body: Body = None
    query: dict[str, Any] = field(default_factory=dict)
    form: Form = None
    auth: str = "bearer"  # or "cookie" for the web pages
    ok: tuple[int, ...] = (200,)
    denied: tuple[int, ...] = (403, 404)
    unknown: tuple[int, ...] = (401,)
    anonymous: tuple[int, ...] = (401,)
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.method.upper(), self.path)

    def url(self, world: World) -> str:
        return self.path.format(**{name: world.ids[ref] for name, ref in self.fill.items()})

    def expected(self, caller: str) -> tuple[int, ...]:
        if caller in self.allowed:
            return self.ok
        if caller == "anonymous":
            return self.anonymous
        if caller == "unknown":
            return self.unknown
        return self.denied

    def request_kwargs(self, world: World, caller: str) -> dict[str, Any]:
        """Keyword arguments for httpx/TestClient `request(method, url, **kwargs)`."""
        headers = dict(world.headers.get(caller, {}))
        if self.auth == "cookie" and "Authorization" in headers:
            headers = {"Cookie": f"zhida_token={headers.pop('Authorization').removeprefix('Bearer ')}"}
        if self.auth == "cookie" and self.method.upper() in {"POST", "PUT", "PATCH", "DELETE"} and world.secret:
            headers |= csrf_headers(world.secret, headers.get("Cookie", "").removeprefix("zhida_token="))
        kwargs: dict[str, Any] = {"headers": headers}
        if self.query:
            kwargs["params"] = self.query
        if self.form is not None:
            kwargs["data"] = self.form(world, caller) if callable(self.form) else self.form
        elif self.body is not None:
            kwargs["json"] = self.body(world, caller) if callable(self.body) else self.body
        return kwargs

    def label(self, caller: str) -> str:
        return f"{self.method.upper()} {self.path} as {caller}"


def csrf_headers(secret: str, session_token: str = "") -> dict[str, str]:
    """What a page form carries: the CSRF token of the signed-in session, or (before sign-in) of an anonymous seed
    cookie sent along."""
    from api.security import ANON_COOKIE, csrf_token

    if session_token:
        return {"X-CSRF-Token": csrf_token(secret, session_token)}
    seed = "anonymous-seed-for-tests"
    return {"X-CSRF-Token": csrf_token(secret, seed), "Cookie": f"{ANON_COOKIE}={seed}"}


def cases_of(rows: Iterable[Row], callers: Iterable[str] = CALLERS) -> list[tuple[Row, str]]:
    """(row, caller) pairs for pytest.mark.parametrize, with the caller last so refusals run before any success."""
    order = sorted(callers, key=lambda c: c == "admin")
    return [(row, caller) for row in rows for caller in order]


def ids_of(pairs: Iterable[tuple[Row, str]]) -> list[str]:
    return [row.label(caller) for row, caller in pairs]


def check(client: Any, row: Row, world: World, caller: str) -> Any:
    """Call the endpoint as `caller` and assert the status the table expects; returns the response."""
    cookies = getattr(client, "cookies", None)
    if cookies is not None:
        cookies.clear()  # a sign-in row leaves its cookie in the client: each call is only its caller
    response = client.request(row.method.upper(), row.url(world), **row.request_kwargs(world, caller))
    expected = row.expected(caller)
    assert response.status_code in expected, (
        f"{row.label(caller)}: expected {expected}, got {response.status_code}: {response.text[:300]}"
    )
    return response


def covered_routes(*tables: Iterable[Row]) -> set[tuple[str, str]]:
    return {row.key for table in tables for row in table}


def tables() -> dict[str, list[Row]]:
    """The TABLE of every tests/api/test_scoping*.py module, by module name."""
    import importlib
    from pathlib import Path

    found: dict[str, list[Row]] = {}
    for path in sorted(Path(__file__).parent.glob("test_scoping*.py")):
        module = importlib.import_module(f"tests.api.{path.stem}")
        found[path.stem] = list(getattr(module, "TABLE", []))
    return found


def _flatten(routes: Iterable[Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(full path, route) of every route, inside included routers too (FastAPI may keep them as included routers)."""
    for route in routes:
        included = getattr(route, "include_context", None)
        if included is not None:
            yield from _flatten(route.original_router.routes, prefix + (included.prefix or ""))
        elif getattr(route, "path", None) is not None:
            yield prefix + route.path, route


def app_routes(
    app: FastAPI, *, ignore: Iterable[str] = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
) -> set[tuple[str, str]]:
    """Every (method, path) the app serves (API and /web pages), without FastAPI's own docs routes."""
    skip = set(ignore)
    out: set[tuple[str, str]] = set()
    for path, route in _flatten(app.routes):
        methods = getattr(route, "methods", None)
        if not methods or path in skip or (not isinstance(route, APIRoute) and path.startswith("/static")):
            continue
        out |= {(method, path) for method in methods if method != "HEAD"}
    return out


def route_of(routes: Iterable[tuple[str, str]], method: str, path: str) -> tuple[str, str] | None:
    """The declared (method, route path) a concrete request hits: `/api/v1/cases/7` → `/api/v1/cases/{case_id}`."""
    import re

    for m, template in routes:
        if m == method and re.fullmatch(re.sub(r"\{[^}]+\}", r"[^/]+", template), path.split("?")[0]):
            return m, template
    return None


def page_headers(world: World, caller: str) -> dict[str, str]:
    """What a signed-in page form sends: the sign-in cookie and its CSRF token."""
    token = world.headers[caller]["Authorization"].removeprefix("Bearer ")
    return {"Cookie": f"zhida_token={token}"} | csrf_headers(world.secret, token)
