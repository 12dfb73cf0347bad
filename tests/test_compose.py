"""The scale-out deployment files, checked for structure (no Docker engine needed).

docker-compose.yml, Dockerfile, .dockerignore and deploy/temporal-dynamicconfig.yaml must describe:
Temporal on PostgreSQL, its UI, a one-shot migration, the API, two or more workers and the treasury
stand-in, reaching each other by service name, with every secret coming from the environment.
"""

from __future__ import annotations

import json
import re
import shlex
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, ${NAME:+alt}
VAR_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?(?P<op>[-?+])(?P<arg>[^}]*))?\}")
LOOPBACK = ("localhost", "127.0.0.1", "[::1]", "0:0:0:0:0:0:0:1")

SETTINGS_FIELDS = set(Settings.model_fields)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


# Every SecretStr setting (jwt_secret, encryption_key, signing_key, ...): derived, so a new one is covered.
SECRET_FIELDS = {name for name, field in Settings.model_fields.items() if _is_secret(field.annotation)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


# --- helpers ---------------------------------------------------------------------------------


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(word) for word in raw]


def depends(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def published(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(host port, container port) pairs, from the short "[ip:]host:container" or the long syntax."""
    pairs = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            pairs.add((str(entry.get("published", "")), str(entry["target"])))
            continue
        parts = str(entry).split("/")[0].rsplit(":", 2)
        if len(parts) >= 2:
            pairs.add((parts[-2], parts[-1]))
    return pairs


def healthcheck_words(service: dict[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test") or []
    return [test] if isinstance(test, str) else [str(word) for word in test]


def strings(node: Any) -> typing.Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield str(node)


def with_defaults(value: str) -> str:
    """The value Compose would produce when only defaults apply (required ones become a placeholder)."""
    return VAR_REF.sub(lambda m: m.group("arg") if m.group("op") == "-" else "SECRET", value)


def is_required_ref(value: str) -> bool:
    """The whole value is one ${NAME:?message} (or ${NAME?message}) reference: no literal, no default."""
    match = VAR_REF.fullmatch(value.strip())
    return bool(match and match.group("op") == "?")


def db_url_parts(url: str) -> tuple[str, str, str]:
    """(user, password, database) of a database URL whose password may be a ${...} reference."""
    credentials, _, location = url.split("://", 1)[1].rpartition("@")
    user, _, password = credentials.partition(":")
    return user, password, location.split("/", 1)[1]


def zhida_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if command(svc)[:1] == ["zhida"]}


def services_running(services: dict[str, dict[str, Any]], *words: str) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if command(svc) == ["zhida", *words]}


def one_service_running(services: dict[str, dict[str, Any]], *words: str) -> dict[str, Any]:
    found = services_running(services, *words)
    assert len(found) == 1, f"expected one service running `zhida {' '.join(words)}`, found {sorted(found)}"
    return next(iter(found.values()))


def replicas(service: dict[str, Any]) -> int:
    return int(((service.get("deploy") or {}).get("replicas")) or 1)


# --- services and their wiring ---------------------------------------------------------------


def test_expected_services_are_present(services):
    expected = {"postgres", "temporal", "temporal-ui", "migrate", "api", "treasury-sim"}
    assert expected <= set(services), f"missing services: {sorted(expected - set(services))}"
    assert services_running(services, "worker"), "no service runs `zhida worker`"


def test_each_service_runs_the_right_command(services):
    assert command(services["migrate"]) == ["zhida", "db", "upgrade"]
    assert command(services["api"]) == ["zhida", "api"]
    assert command(services["treasury-sim"]) == ["zhida", "treasury-sim"]
    assert services["migrate"].get("restart") in (None, "no"), "the one-shot migration must not restart"


def test_at_least_two_workers(services):
    workers = services_running(services, "worker")
    total = sum(replicas(svc) for svc in workers.values())
    assert total >= 2, f"expected two or more worker containers, found {total} in {sorted(workers)}"


def test_app_services_use_the_image_built_from_this_repository(services):
    apps = zhida_services(services)
    assert set(apps) >= {"migrate", "api", "treasury-sim"}
    for name, svc in apps.items():
        build = svc.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context in (".", "./"), f"{name}: must build from the repository root"
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / dockerfile).is_file()
    assert len({svc.get("image") for svc in apps.values()}) == 1, "app services must share one image"


def test_dependencies_wait_for_what_each_service_needs(services):
    assert depends(services["temporal"]).get("postgres") == "service_healthy"
    assert depends(services["migrate"]).get("postgres") == "service_healthy"
    assert depends(services["treasury-sim"]).get("postgres") == "service_healthy"
    assert depends(services["temporal-ui"]).get("temporal") in ("service_healthy", "service_started")
    needs = {
        "migrate": "service_completed_successfully",
        "temporal": "service_healthy",
        "postgres": "service_healthy",
    }
    for name, svc in {"api": services["api"], **services_running(services, "worker")}.items():
        got = depends(svc)
        for dependency, condition in needs.items():
            assert got.get(dependency) == condition, f"{name} must depend on {dependency}: {condition}"


def test_references_point_at_defined_things(compose, services):
    for name, svc in services.items():
        for dependency in depends(svc):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for config in svc.get("configs") or []:
            source = config["source"] if isinstance(config, dict) else config
            assert source in (compose.get("configs") or {}), f"{name} uses undefined config {source}"
        for volume in svc.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing file {source}"
            else:
                assert source in (compose.get("volumes") or {}), f"{name} uses undefined volume {source}"


def test_healthchecks(services):
    for name in ("postgres", "temporal", "api"):
        words = healthcheck_words(services[name])
        assert words and words[0] in ("CMD", "CMD-SHELL"), f"{name} needs a healthcheck"
    assert any("pg_isready" in word for word in healthcheck_words(services["postgres"]))
    assert any("/readyz" in word for word in healthcheck_words(services["api"]))
    assert "temporal" in healthcheck_words(services["temporal"])[1]


def test_published_ports(services):
    assert ("8000", "8000") in published(services["api"])
    assert ("8233", "8080") in published(services["temporal-ui"])
    assert ("8100", "8100") in published(services["treasury-sim"])


def test_images_are_pinned(services):
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc.get("image", "")
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: pin the image tag ({image!r})"
    assert re.fullmatch(r"postgres:16(\.\d+)?(-[\w.]+)?", services["postgres"]["image"])
    assert re.fullmatch(r"temporalio/auto-setup:1\.[23]\d\.\d+(\.\d+)?", services["temporal"]["image"])
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")


# --- Temporal -------------------------------------------------------------------------------


def test_temporal_runs_on_postgres(services):
    temporal = env(services["temporal"])
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "postgres"
    assert temporal["DB_PORT"] == "5432"
    assert is_required_ref(temporal["POSTGRES_PWD"])
    assert env(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_temporal_dynamic_config_is_mounted_and_valid(services):
    temporal = services["temporal"]
    path = env(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    mounts = {}
    for volume in temporal.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    assert path in mounts, "DYNAMIC_CONFIG_FILE_PATH must be the mounted file"
    config = yaml.safe_load((ROOT / mounts[path]).read_text(encoding="utf-8"))
    assert isinstance(config, dict) and config
    for key, entries in config.items():
        assert isinstance(entries, list) and entries, key
        for entry in entries:
            assert "value" in entry, key


def test_app_and_temporal_agree_on_the_namespace(services):
    namespace = env(services["temporal"]).get("DEFAULT_NAMESPACE", "default")
    for name, svc in {"api": services["api"], **services_running(services, "worker")}.items():
        assert env(svc).get("ZHIDA_TEMPORAL_NAMESPACE", Settings.model_fields["temporal_namespace"].default) == (
            namespace
        ), name
    assert namespace in healthcheck_words(services["temporal"]), "temporal must be healthy once it has it"


# --- environment ----------------------------------------------------------------------------


def test_zhida_variables_are_real_settings(services):
    for name, svc in services.items():
        for key in env(svc):
            if key.startswith("ZHIDA_"):
                assert key[len("ZHIDA_") :].lower() in SETTINGS_FIELDS, f"{name}: {key} is not a Zhida setting"


def test_processes_use_the_cluster_and_listen_on_all_interfaces(services):
    for name, svc in zhida_services(services).items():
        if name != "treasury-sim":
            assert env(svc).get("ZHIDA_TEMPORAL_EMBEDDED") == "false", name
            assert env(svc).get("ZHIDA_TEMPORAL_ADDRESS") == "temporal:7233", name
    assert env(services["api"])["ZHIDA_API_HOST"] == "0.0.0.0"
    assert env(services["api"])["ZHIDA_API_PORT"] == "8000"
    assert env(services["treasury-sim"])["ZHIDA_TREASURY_SIM_HOST"] == "0.0.0.0"
    assert env(services["treasury-sim"])["ZHIDA_TREASURY_SIM_PORT"] == "8100"


def test_no_container_talks_to_loopback(compose, services):
    """Between containers localhost is the container itself: every address must be a service name."""
    for name, svc in services.items():
        # Published ports may bind the host's loopback; that is the host, not a container.
        for text in strings({k: v for k, v in svc.items() if k != "ports"}):
            for word in LOOPBACK:
                assert word not in text.lower(), f"{name}: {word} in {text!r}"
    for text in strings(compose.get("configs") or {}):
        assert not any(word in text.lower() for word in LOOPBACK)


def test_addresses_name_services(services):
    for name, svc in zhida_services(services).items():
        for key, value in env(svc).items():
            if not (key.endswith(("_URL", "_ADDRESS")) and key.startswith("ZHIDA_")):
                continue
            plain = with_defaults(value)
            host = urlsplit(plain if "://" in plain else f"//{plain}").hostname
            assert host in services, f"{name}: {key} points at {host!r}, not a service"


def test_databases_are_separate_and_on_postgres(services):
    api_url = env(services["api"])["ZHIDA_DATABASE_URL"]
    sim_url = env(services["treasury-sim"])["ZHIDA_TREASURY_SIM_DATABASE_URL"]
    for name, svc in zhida_services(services).items():
        if name != "treasury-sim":
            assert env(svc)["ZHIDA_DATABASE_URL"] == api_url, f"{name} must use the same database as api"
    zhida, sim = urlsplit(with_defaults(api_url)), urlsplit(with_defaults(sim_url))
    assert zhida.scheme == sim.scheme == "postgresql+psycopg"
    assert zhida.hostname == sim.hostname == "postgres"
    assert zhida.path != sim.path, "the treasury stand-in needs its own database"
    assert {zhida.path, sim.path}.isdisjoint({"/temporal", "/temporal_visibility"})


# --- secrets --------------------------------------------------------------------------------


def test_every_secret_is_a_required_reference(services):
    """Secrets are never literals and never defaulted: Compose refuses to start without them."""
    for name, svc in services.items():
        for key, value in env(svc).items():
            setting = key[len("ZHIDA_") :].lower() if key.startswith("ZHIDA_") else None
            secret_like = re.search(r"(PASSWORD|PWD|SECRET|_KEY)$", key)
            if setting in SECRET_FIELDS or secret_like:
                assert is_required_ref(value), f"{name}: {key} must be ${{NAME:?message}}, got {value!r}"
            if setting and setting.endswith("database_url"):
                _, password, _ = db_url_parts(value)
                assert is_required_ref(password), f"{name}: the password in {key} must be ${{NAME:?message}}"


def test_each_process_gets_the_secrets_it_uses(services):
    """A missing secret would not fail: each container would quietly make its own development key."""
    # SMS provider credentials are needed only when a cloud provider replaces the outbox (docs/deploy.md).
    optional = {name for name in SECRET_FIELDS if name.startswith("sms_")}
    treasury_side = {"treasury_signing_key", "treasury_sm2_signing_key"}  # the stand-in's own private keys
    zhida_side = SECRET_FIELDS - treasury_side - optional
    for name, svc in zhida_services(services).items():
        keys = {k[len("ZHIDA_") :].lower() for k in env(svc) if k.startswith("ZHIDA_")}
        if name == "treasury-sim":
            assert treasury_side | {"signing_key", "sm2_signing_key"} <= keys
        else:
            assert zhida_side <= keys, f"{name} lacks {sorted(zhida_side - keys)}"
            assert not treasury_side & keys, f"{name} must not hold the treasury's private keys"


def test_same_secret_everywhere(services):
    values: dict[str, set[str]] = {}
    for svc in zhida_services(services).values():
        for key, value in env(svc).items():
            if key[len("ZHIDA_") :].lower() in SECRET_FIELDS:
                values.setdefault(key, set()).add(value)
    assert values
    for key, seen in values.items():
        assert len(seen) == 1, f"{key} differs between services: {seen}"


def test_interpolated_names_do_not_shadow_settings():
    """A `.env` beside docker-compose.yml is also read by `zhida run` and the tests: keep them apart."""
    names = {m.group("name") for m in VAR_REF.finditer(COMPOSE_FILE.read_text(encoding="utf-8"))}
    shadowing = {n for n in names if n.startswith("ZHIDA_") and n[len("ZHIDA_") :].lower() in SETTINGS_FIELDS}
    assert not shadowing, f"rename these Compose variables: {sorted(shadowing)}"


def test_postgres_init_matches_the_connection_settings(compose, services):
    (init,) = [c for c in services["postgres"].get("configs") or [] if "initdb" in c["target"]]
    sql = compose["configs"][init["source"]]["content"]
    passwords = dict(re.findall(r"CREATE ROLE (\w+) .*?PASSWORD '([^']*)'", sql))
    for value in passwords.values():
        assert is_required_ref(value)
    assert is_required_ref(env(services["postgres"])["POSTGRES_PASSWORD"])
    for url in (
        env(services["api"])["ZHIDA_DATABASE_URL"],
        env(services["treasury-sim"])["ZHIDA_TREASURY_SIM_DATABASE_URL"],
    ):
        user, password, database = db_url_parts(url)
        assert passwords.get(user) == password, f"{user}: URL password and init script differ"
        assert re.search(rf"CREATE DATABASE {database} OWNER {user};", sql), f"init must create {database}"
    temporal = env(services["temporal"])
    assert passwords.get(temporal["POSTGRES_USER"]) == temporal["POSTGRES_PWD"]
    assert re.search(rf"CREATE ROLE {temporal['POSTGRES_USER']} LOGIN CREATEDB", sql), (
        "auto-setup creates Temporal's databases itself"
    )


def test_required_variables_are_documented():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = {m.group("name") for m in VAR_REF.finditer(text) if m.group("op") == "?"}
    assert required
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    missing = sorted(name for name in required if name not in doc)
    assert not missing, f"docs/deploy.md does not explain {missing}"


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_dockerfile_base_image_and_user():
    froms = [rest.split()[0] for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert froms and all(image == "python:3.11-slim" for image in froms), froms
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "the runtime stage must switch to an unprivileged user"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_runs_the_zhida_script():
    final = final_stage()
    commands = [(keyword, rest) for keyword, rest in final if keyword in ("CMD", "ENTRYPOINT")]
    assert commands, "the image needs a CMD"
    words = [word for _, rest in commands for word in json.loads(rest)]  # exec form only
    assert words[0] == "zhida"
    assert [json.loads(rest) for keyword, rest in commands if keyword == "CMD"][-1] == ["zhida", "api"]


def test_dockerfile_installs_the_project_without_dev_extras():
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    assert re.search(r"pip install\b[^&;]*\s\.(\s|$)", runs), "install the project itself with pip"
    assert "[dev]" not in runs and "-e ." not in runs and "--editable" not in runs


def test_no_secret_is_baked_into_the_image():
    for keyword, rest in dockerfile_instructions():
        if keyword in ("ENV", "ARG"):
            names = {m.lower().removeprefix("zhida_") for m in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest)}
            assert not names & SECRET_FIELDS, f"{keyword} {rest}"
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    for path in (".env", ".venv", ".git", "data"):
        assert path in ignored, f".dockerignore must exclude {path}"
