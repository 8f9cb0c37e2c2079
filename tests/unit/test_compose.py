"""docker/compose.yaml: the whole deployment on one host. Docker's engine does not run here, so the
file is checked by compose itself (`config`: schema, references, build paths) and as data: the
services the README names, the ports, the configuration each replica loads, and the scripts it runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.catalog import load_catalog
from service.settings import Settings, load_settings, settings_from_mapping
from tests.postgres_support import in_ci
from tests.support import replica_mounts, uncommented_entries

DOCKER = Path(__file__).resolve().parents[2] / "docker"
README = (DOCKER.parent / "README.md").read_text(encoding="utf-8")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def test_the_services_of_a_deployment() -> None:
    services = compose()["services"]
    assert set(services) == {"certificate", "proxy", "crd", "postgres", "redis", "fhir", "fhir-loader"}
    assert services["crd"]["deploy"]["replicas"] == 2
    assert services["proxy"]["ports"] == ["8443:443"]
    assert services["crd"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["crd"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["redis"]["image"].startswith("redis:7")
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert "/readyz" in " ".join(services["crd"]["healthcheck"]["test"])
    for name in services:
        assert f"`{name}`" in README, f"the README does not name the compose service {name}"
    one_shots = {"certificate", "fhir-loader"}
    assert {name for name, service in services.items() if service.get("restart") == "unless-stopped"} == (
        set(services) - one_shots
    )


def replica_settings() -> Settings:
    """The settings each replica loads: the file compose mounts where IDDS_CRD_CONFIG points."""
    return load_settings(replica_mounts()[compose()["services"]["crd"]["environment"]["IDDS_CRD_CONFIG"]])


def test_each_replica_loads_a_valid_configuration_on_the_shared_database() -> None:
    settings = replica_settings()
    assert settings.store.url.startswith("postgresql+psycopg://idds:")
    assert settings.store.url.endswith("@postgres/idds_crd")
    assert settings.auth.required is True
    assert settings.public_base_url == "https://localhost:8443"
    postgres = compose()["services"]["postgres"]["environment"]
    assert f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@" in settings.store.url


def test_the_replicas_judge_by_the_policies_folder_mounted_into_them() -> None:
    """An operator swaps the mount for their own folder: no image rebuild for a policy or a payer."""
    folder = replica_settings().policies
    assert folder is not None and str(folder) in replica_mounts()
    assert f":{folder}:ro" in " ".join(compose()["services"]["crd"]["volumes"])
    catalog = load_catalog(replica_mounts()[str(folder)])
    assert catalog.directory == (DOCKER.parent / "policies").resolve() and catalog.payers
    assert "`policies`" in README


def test_the_scripts_it_runs_are_shipped() -> None:
    for name in ("certificate", "fhir-loader"):
        script = compose()["services"][name]["command"][1].removeprefix("/compose/")
        assert (DOCKER / "compose" / script).is_file()
    assert (DOCKER / "compose" / "nginx.conf").read_text(encoding="utf-8").count("ssl_certificate") == 2


def compose_validator() -> tuple[list[str], str]:
    """The command that checks a compose file given on stdin, and the file as that command takes it:
    the docker compose plugin, else Debian's docker-compose (1.29, installed by make test), which checks
    the same schema, references and build paths but predates the top-level `name`."""
    whole = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose", "-f", "-", "config", "--quiet"], whole
    if shutil.which("docker-compose"):
        unnamed = "".join(line for line in whole.splitlines(keepends=True) if not line.startswith("name:"))
        return ["docker-compose", "-f", "-", "config", "--quiet"], unnamed
    if in_ci():
        pytest.fail("docker-compose is required in CI (make test installs Debian's: .ci/debian-packages)")
    pytest.skip("neither the docker compose plugin nor docker-compose is installed here")


def test_docker_compose_accepts_the_file() -> None:
    command, text = compose_validator()
    result = subprocess.run(command, input=text, cwd=DOCKER, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert compose()["name"] == "idds-crd"


def test_docker_compose_refuses_a_broken_file() -> None:
    """The check is real: a dependency on a state compose does not know is refused."""
    command, text = compose_validator()
    broken = text.replace("condition: service_healthy", "condition: service_happy")
    assert broken != text
    result = subprocess.run(command, input=broken, cwd=DOCKER, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "service_happy" in result.stderr


def test_the_replicas_share_the_patient_data_cache_in_redis() -> None:
    cache = replica_settings().cache
    assert cache.enabled and cache.url == "redis://redis:6379/0"
    redis = compose()["services"]["redis"]
    assert redis["command"][redis["command"].index("--save") + 1] == ""  # nothing persisted
    assert "`redis`" in README and "cache.url" in README


def test_the_commented_ehr_entries_are_valid_settings_once_uncommented() -> None:
    """What an integrator uncomments to register an EHR (or the public sandbox) loads, and lets its
    calls name the compose file's FHIR server as the replicas reach it."""
    text = uncommented_entries((DOCKER / "compose" / "config.yaml").read_text(encoding="utf-8"))
    raw = yaml.safe_load(text)
    auth = settings_from_mapping(raw).auth
    by_iss = {client.iss: client for client in auth.trusted_clients}
    assert set(by_iss) == {"https://ehr.example.org", "https://sandbox.cds-hooks.org"}
    fhir = compose()["services"]["fhir"]
    assert fhir["image"].startswith("hapiproject/hapi") and by_iss[
        "https://ehr.example.org"
    ].fhir_servers == ("http://fhir:8080/fhir",)
    assert by_iss["https://sandbox.cds-hooks.org"].jku_allowed == (
        "https://sandbox.cds-hooks.org/.well-known/jwks.json",
    )
