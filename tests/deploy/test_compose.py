"""compose.yaml: PostgreSQL, the schema migrated once before any replica starts, two replicas behind
nginx, and the `citus` profile. No container engine runs in CI, so these read the file as Compose
would (YAML with its anchors and merge keys, `${VAR:-default}` at its defaults) and check what a
deployment depends on: the order of start, the names nginx proxies to, the settings the replicas get."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from todo_api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = ("api-1", "api-2")
API_PORT = 8000
DEFAULT = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolated(value: str) -> str:
    """A value as Compose reads it with no variable set: `${NAME:-default}` is the default."""
    return DEFAULT.sub(lambda match: match["default"] or "", value)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services: dict[str, Any] = compose["services"]
    return services


def condition(service: dict[str, Any], dependency: str) -> str | None:
    depends_on = service.get("depends_on", {})
    return None if dependency not in depends_on else str(depends_on[dependency]["condition"])


def test_the_schema_is_migrated_once_before_any_replica_starts(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert condition(migrate, "postgres") == "service_healthy"
    assert "healthcheck" in services["postgres"]
    for replica in REPLICAS:
        assert condition(services[replica], "migrate") == "service_completed_successfully"


def test_two_replicas_run_the_image_as_it_is(services: dict[str, Any]) -> None:
    for replica in REPLICAS:
        assert services[replica]["build"] == "."
        assert services[replica]["image"] == services["migrate"]["image"]
        # The image's own `todo serve` on 0.0.0.0:8000, and its HEALTHCHECK, which nginx waits for.
        assert "command" not in services[replica] and "entrypoint" not in services[replica]
        assert condition(services["nginx"], replica) == "service_healthy"


def test_the_replicas_reach_the_database_with_its_own_credentials(services: dict[str, Any]) -> None:
    database = services["postgres"]["environment"]
    for name in ("migrate", *REPLICAS):
        url = urlsplit(interpolated(services[name]["environment"]["TODO_DATABASE_URL"]))
        assert url.scheme == "postgresql"
        assert url.hostname == "postgres" and url.port == 5432
        assert url.username == database["POSTGRES_USER"]
        assert url.password == interpolated(database["POSTGRES_PASSWORD"])
        assert url.path == f"/{database['POSTGRES_DB']}"


def test_every_setting_passed_to_the_service_is_one_it_reads(services: dict[str, Any]) -> None:
    known = {f"TODO_{field.upper()}" for field in Settings.model_fields}
    for name in ("migrate", *REPLICAS):
        assert set(services[name]["environment"]) <= known, f"{name}: {set(services[name]['environment']) - known}"


def test_a_secret_is_passed_on_from_the_shell_never_written_here(services: dict[str, Any]) -> None:
    environment = services["api-1"]["environment"]
    for secret in ("TODO_JWT_SECRET", "TODO_CURSOR_SECRET", "TODO_JWKS_URL"):
        assert secret in environment and environment[secret] is None


def test_nginx_serves_its_config_from_deploy_nginx(services: dict[str, Any]) -> None:
    nginx = services["nginx"]
    # A template, which the image renders (envsubst) into /etc/nginx/nginx.conf at start.
    assert "./deploy/nginx/nginx.conf:/etc/nginx/templates/nginx.conf.template:ro" in nginx["volumes"]
    assert nginx["environment"]["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert nginx["ports"], "nginx publishes no port"


def test_nginx_is_given_every_variable_its_template_names(services: dict[str, Any]) -> None:
    environment = services["nginx"]["environment"]
    named = set(re.findall(r"\$\{(\w+)\}", nginx_config()))
    assert named == {"TODO_MAX_IMPORT_BYTES"}
    # The image substitutes the variables of its environment that match its filter, and no
    # others: nginx's own ($host, $scheme) must stay as they are.
    substituted = re.compile(environment["NGINX_ENVSUBST_FILTER"])
    assert all(substituted.search(name) for name in named)
    assert not [name for name in re.findall(r"\$(\w+)", nginx_config()) if substituted.search(name)]


def test_nginx_lets_through_every_import_the_replicas_accept(services: dict[str, Any]) -> None:
    limit = services["nginx"]["environment"]["TODO_MAX_IMPORT_BYTES"]
    for replica in REPLICAS:
        assert services[replica]["environment"]["TODO_MAX_IMPORT_BYTES"] == limit
    assert int(interpolated(limit)) == Settings.model_fields["max_import_bytes"].default


def test_replicas_that_believe_any_proxy_can_be_reached_only_through_this_files_network(
    services: dict[str, Any],
) -> None:
    for replica in REPLICAS:
        assert services[replica]["environment"]["TODO_FORWARDED_ALLOW_IPS"] == "*"
        assert "ports" not in services[replica] and "network_mode" not in services[replica]


def nginx_config() -> str:
    return (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()


def test_nginx_proxies_to_both_replicas_by_their_service_names() -> None:
    servers = set(re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx_config(), re.MULTILINE))
    assert servers == {(replica, str(API_PORT)) for replica in REPLICAS}


def test_the_published_port_is_the_one_nginx_listens_on(services: dict[str, Any]) -> None:
    (listen,) = re.findall(r"^\s*listen\s+(\d+)\s*;", nginx_config(), re.MULTILINE)
    assert [interpolated(port).rsplit(":", 1)[1] for port in services["nginx"]["ports"]] == [listen]


def test_nginx_can_write_its_pid_file(services: dict[str, Any]) -> None:
    (pid_file,) = re.findall(r"^\s*pid\s+(\S+)\s*;", nginx_config(), re.MULTILINE)
    # The nginx image has no such directory: the service mounts one.
    assert str(Path(pid_file).parent) in services["nginx"]["tmpfs"]


def test_the_citus_profile_distributes_the_tables_after_migrating_and_before_the_replicas(
    services: dict[str, Any],
) -> None:
    citus, distribute = services["citus"], services["citus-distribute"]
    assert citus["profiles"] == ["citus"] and distribute["profiles"] == ["citus"]
    assert citus["image"].startswith("citusdata/citus:")
    assert "./deploy/citus/distribute.sql:/deploy/citus/distribute.sql:ro" in distribute["volumes"]
    assert "--file=/deploy/citus/distribute.sql" in distribute["command"]
    assert distribute["environment"]["PGHOST"] == "citus"
    assert condition(distribute, "migrate") == "service_completed_successfully"
    assert condition(services["migrate"], "citus") == "service_healthy"
    for replica in REPLICAS:
        assert condition(services[replica], "citus-distribute") == "service_completed_successfully"
        # Without the profile, Compose must not require the service it does not start.
        assert services[replica]["depends_on"]["citus-distribute"]["required"] is False
    assert services["migrate"]["depends_on"]["citus"]["required"] is False


def test_every_dependency_names_a_service(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
