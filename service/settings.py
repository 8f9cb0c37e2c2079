"""Runtime settings: one immutable object built from a YAML file, passed to `create_app`.

The service reads no configuration at import time; the CLI (or a WSGI entry point) loads the
settings and hands them over, so tests can build any number of differently configured apps.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.call_day import DEFAULT_TIME_ZONE, UnknownTimeZone, time_zone
from service.log_buffer import DEFAULT_BUFFER_BYTES

CONFIG_ENV_VAR = "IDDS_CRD_CONFIG"


class SettingsError(ValueError):
    """The configuration file is unreadable or holds a key or value the service does not accept."""


@dataclass(frozen=True)
class FhirSettings:
    """How the service talks to the EHR's FHIR server.

    `deadline_seconds` bounds all FHIR work of one hook call (CRD asks for an answer within 5 s);
    `timeout_seconds` bounds each single HTTP request within it; `max_response_bytes` bounds each
    answer and `max_call_bytes` all answers of one call together (pages and queries). The
    `max_workers` threads of the query pool are shared by every call; one call holds at
    most `max_concurrent_per_call` of them, and all calls to one FHIR server together at most
    `max_concurrent_per_server`, which must leave some of the pool to the other servers. With
    `batch`, the searches and reads of one round go to the server as one FHIR batch request. Under
    `idds-crd serve`, the calls asking FHIR servers hold at most all but one of a worker's threads,
    those asking one server all but two; a call past that waits `share_wait_seconds`, from when the
    limit was reached, for a place, and is otherwise not sent (service/fhir/server_share.py).
    `encounter_read_seconds` bounds the encounter hooks' read of their Encounter, which no answer needs
    (service/encounters.py): a slow Encounter endpoint costs each such call at most that.
    """

    deadline_seconds: float = 3.5
    timeout_seconds: float = 2.5
    page_size: int = 500
    max_pages: int = 10
    max_workers: int = 16
    max_response_bytes: int = 4 * 1024 * 1024
    max_call_bytes: int = 16 * 1024 * 1024
    max_concurrent_per_call: int = 8
    max_concurrent_per_server: int = 8
    batch: bool = True
    share_wait_seconds: float = 0.2
    encounter_read_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not self.encounter_read_seconds > 0:
            raise SettingsError(
                f"fhir.encounter_read_seconds: must be more than 0, got {self.encounter_read_seconds!r}"
            )
        if self.max_concurrent_per_server >= self.max_workers:
            raise SettingsError(
                f"fhir.max_concurrent_per_server: {self.max_concurrent_per_server} must be below "
                f"fhir.max_workers ({self.max_workers}), so that one FHIR server cannot take the whole pool"
            )


SUPPORTED_ALGORITHMS = ("ES384", "RS384", "ES256", "RS256", "PS384")
DEFAULT_ALGORITHMS = ("ES384", "RS384")


@dataclass(frozen=True)
class TrustedClient:
    """One EHR (JWT issuer) allowed to call the service, its keys, and the FHIR servers it may name.

    Keys come from `jwks` (inline JWK Set), from `jwks_url`, or from a JWT header's `jku` when that
    URL is listed in `jku_allowed` or is the `jwks_url`. A `jku` naming any other URL is never fetched:
    a client with `jwks` has it ignored, its token verified with those keys (the Inferno CRD kit sends
    a `jku` on every token), any other client's token is refused. With `token_reuse` a token of this
    client is accepted again until it expires (its `jti` not refused as a replay): for a conformance
    tester that sends several calls with one token, as the Inferno CRD test kit does, never for an EHR.
    """

    iss: str
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = None
    jku_allowed: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    fhir_servers: tuple[str, ...] = ()
    token_reuse: bool = False


@dataclass(frozen=True)
class AuthSettings:
    """Authentication of the EHR calling the service (CDS Hooks JWT bearer, digest section 5.2).

    With `required` false (development only) calls are not authenticated and may name only the
    `open_fhir_servers`.
    """

    required: bool = True
    protect_discovery: bool = False
    clock_skew_seconds: float = 60.0
    jwks_cache_seconds: float = 300.0
    trusted_clients: tuple[TrustedClient, ...] = ()
    open_fhir_servers: tuple[str, ...] = ()

    @property
    def claims_tokens(self) -> bool:
        """Whether calls' JWTs are claimed in the replay store (`seen_tokens`): calls are
        authenticated and some trusted client's tokens are refused a second use (a `token_reuse`
        client's never are: service/auth/verify.py)."""
        return self.required and any(not c.token_reuse for c in self.trusted_clients)


@dataclass(frozen=True)
class StoreSettings:
    """Where the audit trail and the JWT replay store live: one SQLAlchemy database URL shared by
    every replica (PostgreSQL for several replicas, an embedded SQLite file by default); how many
    days audit records are kept (`idds-crd audit purge` removes older ones); how long one use of a
    database server may take before it is given up (the call is then answered 503), and for how
    long after such a failure uses fail at once before one tries the server again."""

    url: str = "sqlite:///idds-crd.sqlite3"
    retention_days: int = 2555  # seven years
    timeout_seconds: float = 2.0
    retry_after_seconds: float = 1.0


@dataclass(frozen=True)
class MetricsSettings:
    """`GET /metrics` (Prometheus text format), open on the service port; false answers it 404."""

    enabled: bool = True


CACHE_URL_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class CacheSettings:
    """The patient-data cache between hook calls (see service/fhir/cache.py): the answers of a
    call's FHIR queries, kept `ttl_seconds` for the next call of the same client, user and patient.

    In the process by default, bounded by `max_entries` answers and `max_bytes` of their JSON;
    in Redis when `url` is set (several replicas share it), where each lookup or write waits at
    most `timeout_seconds` and `key_prefix` begins every key.
    """

    enabled: bool = True
    ttl_seconds: float = 60.0
    max_entries: int = 5000
    max_bytes: int = 16 * 1024 * 1024
    url: str | None = None
    timeout_seconds: float = 0.1
    key_prefix: str = "idds-crd:patient-data:"

    def __post_init__(self) -> None:
        if self.url is not None and urlsplit(self.url).scheme not in CACHE_URL_SCHEMES:
            raise SettingsError(
                f"cache.url: expected a Redis URL such as redis://redis:6379/0 "
                f"(scheme {', '.join(CACHE_URL_SCHEMES)}), got {_without_password(self.url)!r}"
            )
        if not self.key_prefix:
            raise SettingsError("cache.key_prefix: must not be empty (it keeps the cache's keys apart)")
        if self.timeout_seconds > 1:
            raise SettingsError(
                f"cache.timeout_seconds: at most 1 second (a cache must never cost more than the query "
                f"it saves), got {self.timeout_seconds!r}"
            )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@dataclass(frozen=True)
class SandboxSettings:
    """The built-in sandbox page (`/sandbox`): off unless enabled, and for demos and trials only,
    since whoever reaches it can have calls signed as `issuer`. It lists the patients of
    `fhir_server` (read with `fhir_access_token`, which its calls also hand the service as
    fhirAuthorization) and signs its calls with the private key in `signing_key_file` as `issuer`,
    a trusted client of this deployment (both may be left out when auth is not required)."""

    enabled: bool = False
    fhir_server: str | None = None
    fhir_access_token: str | None = None
    issuer: str | None = None
    signing_key_file: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with; every key is documented in docs/configuration.md."""

    public_base_url: str | None = None
    only_orders_with_rules: bool = False  # behind a payer's CRD gateway: no answer for orders without rules
    fhir: FhirSettings = field(default_factory=FhirSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    max_request_bytes: int = 5 * 1024 * 1024  # larger bodies are answered 413
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call; empty: no CORS headers at all
    # the reverse proxies whose X-Forwarded-Proto and X-Forwarded-Host are read (service.host_header)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    log_format: str = "json"  # "json": one JSON object per line (what `serve` writes); or "text"
    log_level: str = "INFO"
    log_buffer_bytes: int = DEFAULT_BUFFER_BYTES  # log lines held for a stderr not read (service.log_buffer)
    policies: Path | None = None  # the operator's policy directory (None: the policies installed with it)
    timezone: str = DEFAULT_TIME_ZONE  # whose calendar day a call is on (service/call_day.py)

    def __post_init__(self) -> None:
        try:
            time_zone(self.timezone)
        except UnknownTimeZone as exc:
            raise SettingsError(f"timezone: {exc}") from None


def _section(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: expected a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        path = f"{where}.{name}" if where else name
        if name == "trusted_clients":
            clients = _list(value, path)
            values[name] = tuple(_trusted_client(item, f"{path}[{i}]") for i, item in enumerate(clients))
        elif name == "jwks":
            values[name] = _mapping(value, path)
        elif isinstance(known[name].default, tuple):
            values[name] = tuple(_string_list(value, path))
        else:
            default = known[name].default
            values[name] = _coerce(value, None if default is MISSING else default, path)
    return cls(**values)


def _list(value: Any, where: str) -> list[Any]:
    """A list; a key given with nothing under it (every entry commented out) is an empty one."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SettingsError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise SettingsError(f"{where}[{i}]: expected a non-empty string, got {item!r}")
    return items


def _trusted_client(raw: Any, where: str) -> TrustedClient:
    if not isinstance(_mapping(raw, where).get("iss"), str) or not raw["iss"]:
        raise SettingsError(f"{where}.iss: required, the issuer (iss claim) of the client's JWTs")
    client: TrustedClient = _section(TrustedClient, raw, where)
    if not client.algorithms:
        raise SettingsError(f"{where}.algorithms: name at least one (the default is ES384, RS384)")
    unsupported = sorted(set(client.algorithms) - set(SUPPORTED_ALGORITHMS))
    if unsupported:
        raise SettingsError(
            f"{where}.algorithms: {', '.join(unsupported)} not accepted "
            f"(choose from {', '.join(SUPPORTED_ALGORITHMS)}; 'none' and HMAC never)"
        )
    if client.jwks_url is None and client.jwks is None and not client.jku_allowed:
        raise SettingsError(f"{where}: give the client's keys as jwks_url, jwks or jku_allowed")
    if client.jwks_url is not None:
        _check_key_url(client.jwks_url, f"{where}.jwks_url")
    for i, url in enumerate(client.jku_allowed):
        _check_key_url(url, f"{where}.jku_allowed[{i}]")
    if client.jwks is not None:
        _check_inline_jwks(client.jwks, f"{where}.jwks")
    _check_fhir_servers(client.fhir_servers, f"{where}.fhir_servers")
    return client


def _is_loopback(host: str) -> bool:
    """`localhost`, or a loopback address written as an address (a name such as 127.example.org
    that merely starts like one is not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_key_url(url: str, where: str) -> None:
    """A URL keys are fetched from: https, or http only on loopback (a test or a sidecar)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise SettingsError(f"{where}: must be an https URL (http only on loopback), got {url!r}")


def _check_inline_jwks(jwks: Mapping[str, Any], where: str) -> None:
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise SettingsError(f"{where}.keys: expected a non-empty list of JWKs")
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key["kid"]:
            raise SettingsError(f"{where}.keys[{i}]: expected a JWK with a kid")
        if "d" in key:
            raise SettingsError(f"{where}.keys[{i}]: holds a private key; give the public key only")


def _check_fhir_servers(urls: tuple[str, ...], where: str) -> None:
    """FHIR base URLs a caller may name: absolute http(s), no credentials, query or fragment."""
    for i, url in enumerate(urls):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"{where}[{i}]: must be an absolute http(s) URL, got {url!r}")
        if parts.username is not None or "?" in url or "#" in url:
            raise SettingsError(f"{where}[{i}]: must not hold credentials, a query or a fragment")


def check_public_base_url(auth: AuthSettings, public_base_url: str | None) -> None:
    """Calls from trusted clients need the URL they call: a JWT's aud must equal it."""
    if auth.required and auth.trusted_clients and not public_base_url:
        raise SettingsError(
            "public_base_url: required when auth.trusted_clients are configured, because a JWT's aud "
            "must equal the URL the EHR calls, which the Host header of a request cannot be trusted to tell"
        )


def _check_auth(auth: AuthSettings) -> None:
    _check_fhir_servers(auth.open_fhir_servers, "auth.open_fhir_servers")
    issuers = [client.iss for client in auth.trusted_clients]
    repeated = sorted({iss for iss in issuers if issuers.count(iss) > 1})
    if repeated:
        raise SettingsError(f"auth.trusted_clients: issuer(s) listed twice: {', '.join(repeated)}")


def _check_sandbox(sandbox: SandboxSettings, auth: AuthSettings, public_base_url: str | None) -> None:
    """An enabled sandbox needs a FHIR server to list patients from and, when calls need a JWT, the
    issuer and key of a trusted client to sign them with, and the public URL they are signed for."""
    if not sandbox.enabled:
        return
    if sandbox.fhir_server is None:
        raise SettingsError("sandbox.fhir_server: required when the sandbox is enabled")
    _check_fhir_servers((sandbox.fhir_server,), "sandbox.fhir_server")
    if (sandbox.issuer is not None or sandbox.signing_key_file is not None) and public_base_url is None:
        raise SettingsError(
            "public_base_url: required when the sandbox signs calls (a token's aud is the service's "
            "public URL, never the Host a request names)"
        )
    if not auth.required:
        return
    if sandbox.issuer is None or sandbox.signing_key_file is None:
        raise SettingsError(
            "sandbox: issuer and signing_key_file are required when auth.required is true "
            "(the sandbox signs its calls as that trusted client)"
        )
    client = next((c for c in auth.trusted_clients if c.iss == sandbox.issuer), None)
    if client is None:
        raise SettingsError(f"sandbox.issuer: {sandbox.issuer!r} is not one of auth.trusted_clients")
    if sandbox.fhir_server not in client.fhir_servers:
        raise SettingsError(
            f"sandbox.fhir_server: {sandbox.fhir_server} is not among the fhir_servers of "
            f"{sandbox.issuer!r}, so the service would refuse every sandbox call"
        )


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SettingsError(f"{where}: expected a positive whole number, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 3600:
            raise SettingsError(f"{where}: expected a positive number (seconds, below 3600), got {value!r}")
        return float(value)
    if value is not None and not isinstance(value, str):
        raise SettingsError(f"{where}: expected a string, got {value!r}")
    return value


LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
CORS_ORIGIN = re.compile(r"https?://[^/\s?#@]+")


def _cors_origins(value: Any) -> tuple[str, ...]:
    origins = tuple(_string_list(value, "cors_origins"))
    for i, origin in enumerate(origins):
        if origin != "*" and not CORS_ORIGIN.fullmatch(origin):
            raise SettingsError(
                f"cors_origins[{i}]: expected an origin such as https://ehr.example.org "
                f"(scheme and host, no path), got {origin!r}"
            )
    if "*" in origins and len(origins) > 1:
        raise SettingsError("cors_origins: '*' (any origin) stands alone")
    return origins


def _trusted_proxies(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The proxies' addresses or networks (`10.0.0.5`, `10.0.0.0/24`, `::1`); none by default."""
    networks = []
    for i, given in enumerate(_string_list(value, "trusted_proxies")):
        try:
            network = ipaddress.ip_network(given)
        except ValueError:
            raise SettingsError(
                f"trusted_proxies[{i}]: expected an IP address or network such as 10.0.0.5 or 10.0.0.0/24, "
                f"got {given!r}"
            ) from None
        network = unmapped(network)
        if network.prefixlen == 0:
            raise SettingsError(
                f"trusted_proxies[{i}]: {given!r} is every address, so anyone could say the scheme and host "
                "the links name: list the proxies' own addresses, or set public_base_url"
            )
        networks.append(network)
    return tuple(networks)


def unmapped(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it maps: a trusted proxy's
    peer address is matched by its IPv4 address however its socket gave it (host_header.TrustedProxies),
    and `::ffff:0:0/96` is every IPv4 address as `0.0.0.0/0` is."""
    mapped = network.network_address
    ipv4 = mapped.ipv4_mapped if isinstance(mapped, ipaddress.IPv6Address) else None
    if ipv4 is not None and network.prefixlen >= 96:
        return ipaddress.ip_network((ipv4, network.prefixlen - 96))
    return network


def _folder(value: Any, where: str) -> Path | None:
    """A directory path (`~` expanded; a relative one is taken from the working directory). Whether it
    is there is for whoever reads it to say: `idds-crd serve` stops at start-up when it is not."""
    chosen = _coerce(value, None, where)
    if chosen is None:
        return None
    if not chosen.strip():
        raise SettingsError(f"{where}: expected a directory path, got an empty string")
    return Path(chosen).expanduser()


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise SettingsError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def settings_from_mapping(raw: dict[str, Any] | None) -> Settings:
    """Build settings from the parsed YAML mapping, rejecting unknown keys and wrong types."""
    raw = dict(raw or {})
    known = {
        "public_base_url",
        "only_orders_with_rules",
        "fhir",
        "auth",
        "store",
        "metrics",
        "cache",
        "sandbox",
        "max_request_bytes",
        "cors_origins",
        "trusted_proxies",
        "log_format",
        "log_level",
        "log_buffer_bytes",
        "policies",
        "timezone",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"unknown key(s) {', '.join(unknown)}")
    public_base_url = _coerce(raw.get("public_base_url"), None, "public_base_url")
    if public_base_url is not None:
        if not public_base_url.startswith(("http://", "https://")):
            raise SettingsError("public_base_url: must be an absolute http(s) URL")
        public_base_url = public_base_url.rstrip("/")
    auth: AuthSettings = _section(AuthSettings, raw.get("auth"), "auth")
    _check_auth(auth)
    check_public_base_url(auth, public_base_url)
    sandbox: SandboxSettings = _section(SandboxSettings, raw.get("sandbox"), "sandbox")
    _check_sandbox(sandbox, auth, public_base_url)
    return Settings(
        public_base_url=public_base_url,
        only_orders_with_rules=_coerce(
            raw.get("only_orders_with_rules", False), False, "only_orders_with_rules"
        ),
        fhir=_section(FhirSettings, raw.get("fhir"), "fhir"),
        auth=auth,
        store=_section(StoreSettings, raw.get("store"), "store"),
        metrics=_section(MetricsSettings, raw.get("metrics"), "metrics"),
        cache=_section(CacheSettings, raw.get("cache"), "cache"),
        sandbox=sandbox,
        max_request_bytes=_coerce(
            raw.get("max_request_bytes", Settings.max_request_bytes), 1, "max_request_bytes"
        ),
        cors_origins=_cors_origins(raw.get("cors_origins", [])),
        trusted_proxies=_trusted_proxies(raw.get("trusted_proxies", [])),
        log_format=_choice(raw.get("log_format", Settings.log_format), LOG_FORMATS, "log_format"),
        log_level=_choice(raw.get("log_level", Settings.log_level), LOG_LEVELS, "log_level"),
        log_buffer_bytes=_coerce(
            raw.get("log_buffer_bytes", Settings.log_buffer_bytes), 1, "log_buffer_bytes"
        ),
        policies=_folder(raw.get("policies"), "policies"),
        timezone=_coerce(raw.get("timezone", DEFAULT_TIME_ZONE), DEFAULT_TIME_ZONE, "timezone"),
    )


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from `path`, else from $IDDS_CRD_CONFIG, else the built-in defaults."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    if not chosen:
        return Settings()
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read config file {chosen}: {exc.strerror}") from exc
    import yaml  # only a config file needs it: a worker started with the defaults never loads it

    from service.yamlsource import strict_loader

    try:
        raw = yaml.load(text, Loader=strict_loader())  # a safe loader that refuses repeated keys
    except yaml.YAMLError as exc:
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
        where = f"{chosen}:{mark.line + 1}" if mark is not None else str(chosen)
        raise SettingsError(f"config file {where} is not valid YAML: {problem or exc}") from exc
    if raw is not None and not isinstance(raw, dict):
        raise SettingsError(f"config file {chosen}: top level must be a mapping")
    try:
        return settings_from_mapping(raw)
    except SettingsError as exc:
        raise SettingsError(f"config file {chosen}: {exc}") from exc
