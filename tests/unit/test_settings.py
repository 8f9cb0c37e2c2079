"""Configuration loading: documented keys, defaults, the environment variable, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import CONFIG_ENV_VAR, Settings, SettingsError, load_settings
from tests.support import uncommented_entries


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    settings = load_settings()
    assert settings == Settings()
    assert settings.fhir.timeout_seconds == 2.5
    assert settings.fhir.deadline_seconds == 3.5
    assert settings.auth.required is True  # secure by default: no trusted client, no call answered
    assert settings.auth.trusted_clients == ()
    assert settings.public_base_url is None


def test_trusted_clients_and_the_store(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "only_orders_with_rules: true\n"
        "public_base_url: https://crd.example.org\n"
        "store:\n  url: postgresql+psycopg://crd@db/crd\n"
        "auth:\n  trusted_clients:\n"
        "    - iss: https://ehr.example.org\n"
        "      jwks_url: https://ehr.example.org/.well-known/jwks.json\n"
        "      algorithms: [ES384]\n"
        "      fhir_servers: [https://ehr.example.org/fhir/r4]\n",
    )
    settings = load_settings(path)
    assert settings.only_orders_with_rules is True
    assert settings.store.url == "postgresql+psycopg://crd@db/crd"
    (client,) = settings.auth.trusted_clients
    assert client.iss == "https://ehr.example.org"
    assert client.algorithms == ("ES384",)
    assert client.fhir_servers == ("https://ehr.example.org/fhir/r4",)


@pytest.mark.parametrize(
    ("client", "named"),
    [
        ("{jwks_url: https://k}", "iss"),
        ("{iss: https://ehr}", "jwks_url, jwks or jku_allowed"),
        ("{iss: https://ehr, jwks_url: https://k, algorithms: [HS256]}", "HS256 not accepted"),
        ("{iss: https://ehr, jwks_url: https://k, algorithms: [none]}", "none not accepted"),
        ("{iss: https://ehr, jwks: [1]}", "jwks: expected a mapping"),
        ("{iss: https://ehr, jwks_url: https://k, fhir_servers: https://f}", "fhir_servers: expected a list"),
    ],
)
def test_a_malformed_trusted_client_is_refused(tmp_path: Path, client: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(write(tmp_path, f"auth:\n  trusted_clients: [{client}]\n"))


def test_every_documented_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "public_base_url: https://crd.example.org/\nfhir:\n  timeout_seconds: 2\nauth:\n  required: true\n",
    )
    settings = load_settings(path)
    assert settings.public_base_url == "https://crd.example.org"
    assert settings.fhir.timeout_seconds == 2.0
    assert settings.auth.required is True


def test_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV_VAR, str(write(tmp_path, "fhir:\n  timeout_seconds: 1.5\n")))
    assert load_settings().fhir.timeout_seconds == 1.5


def test_explicit_path_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path / "missing.yaml"))
    assert load_settings(write(tmp_path, "fhir:\n  timeout_seconds: 3\n")).fhir.timeout_seconds == 3.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unknown_key: 1\n", "unknown key(s) unknown_key"),
        ("fhir:\n  timeout: 3\n", "fhir: unknown key(s) timeout"),
        ("fhir:\n  timeout_seconds: -1\n", "fhir.timeout_seconds: expected a positive number"),
        ("fhir:\n  timeout_seconds: true\n", "fhir.timeout_seconds: expected a positive number"),
        ("auth:\n  required: 'yes'\n", "auth.required: expected true or false"),
        ("auth: [1]\n", "auth: expected a mapping"),
        ("public_base_url: crd.example.org\n", "public_base_url: must be an absolute http(s) URL"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("fhir: {timeout_seconds: [\n", "not valid YAML"),
        ("cache:\n  ttl: 3\n", "cache: unknown key(s) ttl"),
        ("cache:\n  ttl_seconds: 0\n", "cache.ttl_seconds: expected a positive number"),
        ("cache:\n  max_bytes: -5\n", "cache.max_bytes: expected a positive whole number"),
        ("cache:\n  enabled: 'no'\n", "cache.enabled: expected true or false"),
        ("cache:\n  url: http://redis:6379\n", "cache.url: expected a Redis URL"),
        ("cache:\n  timeout_seconds: 2\n", "cache.timeout_seconds: at most 1 second"),
        ("cache:\n  key_prefix: ''\n", "cache.key_prefix: must not be empty"),
        (  # an uncommented line above the default it meant to replace: refused, not the last one kept
            "cors_origins: [https://sandbox.cds-hooks.org]\ncors_origins: []\n",
            "config.yaml:2 is not valid YAML: 'cors_origins' is given twice (first on line 1)",
        ),
        ("auth:\n  required: false\n  required: true\n", "'required' is given twice (first on line 2)"),
        (
            "auth:\n  trusted_clients:\n    - iss: https://ehr.example.org\n"
            "      jwks_url: https://ehr.example.org/jwks\n      algorithms:\n",
            "auth.trusted_clients[0].algorithms: name at least one",
        ),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, text))
    assert message in str(caught.value)
    assert "config.yaml" in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")) == Settings()


SHIPPED = Path(__file__).resolve().parents[2] / "docker" / "config.yaml"


def test_the_container_configuration_loads() -> None:
    shipped = load_settings(SHIPPED)
    assert shipped.store.url == "sqlite:////var/lib/idds-crd/idds-crd.sqlite3"
    assert shipped.public_base_url == "https://crd.example.org"
    assert (shipped.cors_origins, shipped.auth.trusted_clients) == ((), ())


def test_its_commented_entries_load_once_uncommented(tmp_path: Path) -> None:
    """The README's public-sandbox steps: uncomment the sandbox's origin and its trusted client (here
    every commented entry) and the copy loads, with each of them."""
    copy = write(tmp_path, uncommented_entries(SHIPPED.read_text(encoding="utf-8")))
    settings = load_settings(copy)
    assert settings.cors_origins == ("https://sandbox.cds-hooks.org",)
    assert [c.iss for c in settings.auth.trusted_clients] == [
        "https://ehr.example.org",
        "https://sandbox.cds-hooks.org",
        "https://inferno.healthit.gov/suites/custom/crd_server",
        "https://inferno.healthit.gov/suites/custom/crd_server_v221",
    ]


def test_the_timezone_is_an_iana_name_checked_at_start(tmp_path: Path) -> None:
    """Whose calendar day a call is on (review s16 OPS-2): default UTC, a known IANA name accepted,
    anything else refused naming the key, in the file or in code."""
    assert Settings().timezone == "UTC"
    assert load_settings(write(tmp_path, "timezone: America/New_York\n")).timezone == "America/New_York"
    for wrong in ("America/New_Yrok", "EST-ish", "../../etc/passwd", ""):
        with pytest.raises(SettingsError, match=r": timezone: .* is not an IANA time zone name"):
            load_settings(write(tmp_path, f"timezone: '{wrong}'\n"))
    with pytest.raises(SettingsError, match=r": timezone: expected a string"):
        load_settings(write(tmp_path, "timezone: 5\n"))
    with pytest.raises(SettingsError, match=r"^timezone: "):
        Settings(timezone="Mars/Olympus_Mons")
