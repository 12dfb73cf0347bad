"""Schemathesis against the live OpenAPI of a running API, as every role: no 5xx, no answer outside its schema.

`run_fuzz` is shared by the default test suite (a bounded, seeded run: tests/api/test_fuzz.py) and `zhida fuzz
--minutes N` (a private stack in a temporary folder, seeds one after another until the time is spent).

Each operation is called with positive and negative data (hypothesis, seeded, no example database) under a fresh
token of each role, so a logout in one example never revokes the next one's token. Two checks run on every answer:
`not_a_server_error` (no 5xx) and `response_schema_conformance` (a declared status code answers with a body its
schema allows). Failures are collected, not raised, so one run lists them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# The subjects of the demo data each role acts as (cli/demo.py).
ROLE_SUBJECTS = {"admin": "admin", "department": "YC-JXJ", "finance": "YC-CZJ"}


@dataclass
class Finding:
    role: str
    operation: str
    status: int
    check: str
    message: str
    curl: str


@dataclass
class FuzzReport:
    requests: int = 0
    operations: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    positive_only: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "requests": self.requests,
            "seconds": round(self.seconds, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "findings": len(self.findings),
            "positive_only": sorted(self.positive_only),
        }


def role_tokens(secret: str, enterprise_uscc: str) -> dict[str, Callable[[], str]]:
    """A token factory per role (a fresh jti for every call)."""
    from api.auth import mint

    subjects = ROLE_SUBJECTS | {"enterprise": enterprise_uscc}
    return {role: (lambda r=role, s=subject: mint(secret, role=r, subject=s)) for role, subject in subjects.items()}


def run_fuzz(
    base_url: str,
    tokens: dict[str, Callable[[], str]],
    *,
    max_examples: int,
    seed: int,
    roles: Iterable[str] | None = None,
    until: float | None = None,
    request_timeout: float = 20.0,
) -> FuzzReport:
    """Fuzz every operation of `base_url`/openapi.json as each role; stops early at monotonic time `until`."""
    import hypothesis
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.errors import InvalidSchema
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{base_url.rstrip('/')}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    report = FuzzReport(operations=len(operations))
    started = time.monotonic()
    session = requests.Session()
    checks = [not_a_server_error, response_schema_conformance]

    def _examples(operation: Any, strategy: Any, role: str, token: Callable[[], str]) -> Callable[[], None]:
        seen: set[tuple[str, str]] = set()

        @hypothesis.seed(seed)
        @hypothesis.settings(
            max_examples=max_examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(case=strategy)
        def one(case: Any) -> None:
            headers = {"Authorization": f"Bearer {token()}"}
            try:
                response = case.call(base_url=base_url, session=session, headers=headers, timeout=request_timeout)
            except requests.RequestException as exc:
                report.findings.append(Finding(role, case.operation.label, 0, "transport", str(exc), ""))
                return
            report.requests += 1
            report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except (Failure, FailureGroup) as exc:
                failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
                for failure in failures:
                    key = (type(failure).__name__, case.operation.label)
                    if key in seen:  # one finding per kind and operation is enough to read
                        continue
                    seen.add(key)
                    report.findings.append(
                        Finding(
                            role,
                            case.operation.label,
                            response.status_code,
                            type(failure).__name__,
                            f"{failure.title}: {failure.message}"[:2000],
                            case.as_curl_command(headers={"Authorization": "Bearer …"})[:2000],
                        )
                    )

        return one

    for role in roles or tokens:
        for operation in operations:
            if until is not None and time.monotonic() > until:
                break
            positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
            try:
                negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
                _examples(operation, st.one_of(positive, negative), role, tokens[role])()
            except InvalidSchema as exc:
                # Schemathesis cannot always build invalid data for a schema (e.g. an array of exactly one item):
                # that operation gets valid data only, and the report says so.
                report.positive_only.add(f"{operation.label}: {str(exc).splitlines()[0][:120]}")
                _examples(operation, positive, role, tokens[role])()
    report.seconds = time.monotonic() - started
    return report


def fuzz_command(minutes: float, examples: int, seed: int) -> int:
    """`zhida fuzz`: a private stack (temporary folder, free ports), then seeded rounds until `minutes` are spent."""
    import json
    import tempfile
    from pathlib import Path

    from rich.console import Console

    from cli.demo import demo_enterprise_uscc
    from cli.embedded import Supervisor, isolated_settings, start_stack

    console = Console()
    with tempfile.TemporaryDirectory(prefix="zhida-fuzz-") as folder:
        settings = isolated_settings(Path(folder), log_level="WARNING")
        sup = Supervisor(Path(folder) / "logs")
        try:
            start_stack(settings, sup, load_demo=True, quiet=True)
            base = f"http://{settings.api_host}:{settings.api_port}"
            tokens = role_tokens(settings.jwt_key(), demo_enterprise_uscc())
            until = time.monotonic() + minutes * 60
            total = FuzzReport()
            rounds = 0
            while time.monotonic() < until:
                part = run_fuzz(base, tokens, max_examples=examples, seed=seed + rounds, until=until)
                rounds += 1
                total.operations = part.operations
                total.requests += part.requests
                total.seconds += part.seconds
                for status, n in part.statuses.items():
                    total.statuses[status] = total.statuses.get(status, 0) + n
                total.findings += part.findings
                total.positive_only |= part.positive_only
                console.print(f"第 {rounds} 轮（种子 {seed + rounds - 1}）：{part.summary()}")
        finally:
            sup.stop()
    for f in total.findings:
        console.print(f"[red]{f.role} {f.operation} → {f.status} {f.check}[/]\n{f.message}\n{f.curl}\n")
    Path("reports").mkdir(exist_ok=True)
    body = total.summary() | {"rounds": rounds, "seed": seed, "findings": [f.__dict__ for f in total.findings]}
    Path("reports/fuzz.json").write_text(json.dumps(body, ensure_ascii=False, indent=2))
    console.print(f"共 {rounds} 轮：{total.summary()}；报告 reports/fuzz.json")
    return 1 if total.findings else 0
