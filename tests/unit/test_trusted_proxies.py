"""The address the EHR called, behind a reverse proxy (review31g L1, L3): X-Forwarded-Proto and
X-Forwarded-Host are read only from a configured proxy (`trusted_proxies`, none by default), each its
last value; an invalid one is a 400 naming the header at fault, not `http.Host`."""

from __future__ import annotations

import ipaddress

import pytest
from flask import Flask

from service.app import create_app
from service.catalog import Catalog
from service.settings import SettingsError, settings_from_mapping
from tests.host_support import links, refused_naming, sent
from tests.support import no_client, open_settings

POLICY = "geha-idds-chronic-pain"
PROXY = "10.0.0.5"


@pytest.fixture(scope="module")
def proxied(compiled_catalog: Catalog) -> Flask:
    """The service behind the proxy at 10.0.0.5 and any proxy of fd00::/64."""
    networks = (ipaddress.ip_network(PROXY), ipaddress.ip_network("fd00::/64"))
    return create_app(open_settings(trusted_proxies=networks), compiled_catalog, client_factory=no_client)


def _forwarded(proto: str | None = None, host: str | None = None, peer: str = PROXY) -> dict[str, str]:
    headers = {"REMOTE_ADDR": peer}
    if proto is not None:
        headers["HTTP_X_FORWARDED_PROTO"] = proto
    if host is not None:
        headers["HTTP_X_FORWARDED_HOST"] = host
    return headers


def test_a_trusted_proxys_forwarded_scheme_and_host_are_the_links(proxied: Flask) -> None:
    answered = sent(proxied, "crd:8080", **_forwarded("https", "crd.example.org:8443"))
    assert links(answered) == {f"https://crd.example.org:8443/policies/{POLICY}"}
    # the last value is the nearest proxy's: a client's own earlier one is not read
    answered = sent(proxied, "crd:8080", **_forwarded("http, https", "evil.example, crd.example.org"))
    assert links(answered) == {f"https://crd.example.org/policies/{POLICY}"}
    # a proxy that forwards the Host as sent (nginx's $http_host) and only the scheme
    assert links(sent(proxied, "crd.example.org:8443", **_forwarded("HTTPS"))) == {
        f"https://crd.example.org:8443/policies/{POLICY}"
    }
    for peer in ("fd00::7", "::ffff:10.0.0.5"):  # a network; an IPv4 peer as a dual-stack socket gives it
        assert links(sent(proxied, "crd:8080", **_forwarded("https", "crd.example.org", peer))) == {
            f"https://crd.example.org/policies/{POLICY}"
        }


def test_a_proxy_listed_by_its_ipv4_mapped_address_is_trusted(compiled_catalog: Catalog) -> None:
    """Before, a peer was matched by its IPv4 address only, so a network written IPv4-mapped (as a
    dual-stack socket shows the proxy: `::ffff:10.0.0.5`) was accepted and matched no peer at all."""
    for listed in ("::ffff:10.0.0.5", "::ffff:10.0.0.0/104"):
        settings = settings_from_mapping({"trusted_proxies": [listed]})
        networks = settings.trusted_proxies
        app = create_app(open_settings(trusted_proxies=networks), compiled_catalog, client_factory=no_client)
        for peer in ("10.0.0.5", "::ffff:10.0.0.5"):
            answered = sent(app, "crd:8080", **_forwarded("https", "crd.example.org", peer))
            assert links(answered) == {f"https://crd.example.org/policies/{POLICY}"}, (listed, peer)
        answered = sent(app, "crd:8080", **_forwarded("https", "crd.example.org", "192.0.2.5"))
        assert links(answered) == {f"http://crd:8080/policies/{POLICY}"}, listed


@pytest.mark.parametrize("trusted", [False, True], ids=["none-configured", "another-peer"])
def test_forwarded_headers_from_anyone_else_are_ignored(app: Flask, proxied: Flask, trusted: bool) -> None:
    """By default no peer is trusted (gunicorn's own default trusted loopback: tests/integration/
    test_serving.py), and a configured list trusts none but its own."""
    service = proxied if trusted else app
    for peer in ("127.0.0.1", "10.0.0.6", "fd01::1", "not an address"):
        answered = sent(service, "crd:8080", **_forwarded("https", "evil.example", peer))
        assert links(answered) == {f"http://crd:8080/policies/{POLICY}"}, peer
        assert sent(service, "crd:8080", **_forwarded("ftp", "a b", peer)).status == 200, peer


def test_an_invalid_forwarded_value_is_a_400_naming_its_header(proxied: Flask) -> None:
    """Before (review31g L3, a deployer's ProxyFix), a bad X-Forwarded-Host was a 400 naming http.Host."""
    for host in ("a b", "", "ex.org:99999", "crd.example.org, bücher.example"):
        refused = sent(proxied, "crd:8080", **_forwarded(host=host))
        assert refused_naming(refused, "structure", "http.X-Forwarded-Host"), host
        assert "X-Forwarded-Host header" in refused.json()["issue"][0]["diagnostics"]
    for proto in ("ftp", "", "https, javascript"):
        refused = sent(proxied, "crd:8080", **_forwarded(proto, "crd.example.org"))
        assert refused_naming(refused, "structure", "http.X-Forwarded-Proto"), proto
    # the Host itself, with nothing forwarded, is still named as such; on a probe too
    assert refused_naming(sent(proxied, "a b", **_forwarded()), "structure", "http.Host")
    probe = sent(proxied, None, "/healthz", "GET", **_forwarded(host="a b"))
    assert refused_naming(probe, "structure", "http.X-Forwarded-Host")


def test_trusted_proxies_are_addresses_or_networks_and_none_by_default() -> None:
    assert settings_from_mapping({}).trusted_proxies == ()
    chosen = settings_from_mapping({"trusted_proxies": ["10.0.0.5", "10.1.0.0/16", "::1"]}).trusted_proxies
    assert [str(n) for n in chosen] == ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]
    for wrong in (["*"], ["crd-proxy"], ["10.0.0.1/16"], "10.0.0.5", [""]):
        with pytest.raises(SettingsError, match=r"trusted_proxies"):
            settings_from_mapping({"trusted_proxies": wrong})


@pytest.mark.parametrize("every", ["0.0.0.0/0", "::/0", "::ffff:0:0/96"])
def test_a_network_of_every_address_is_refused_at_start_up(every: str) -> None:
    """Before, `0.0.0.0/0` was taken without a word: anyone could then say the links' scheme and host
    (review32a L2). A proxy's network narrower than that is taken."""
    with pytest.raises(SettingsError, match=r"trusted_proxies\[1\]: .* is every address"):
        settings_from_mapping({"trusted_proxies": ["10.0.0.5", every]})
    assert settings_from_mapping({"trusted_proxies": ["::ffff:0:0/97", "0.0.0.0/1"]}).trusted_proxies


def test_forwarded_headers_read_by_nothing_are_said_once_in_the_log(
    compiled_catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    """A deployment behind a proxy with neither public_base_url nor trusted_proxies set gets links naming
    the address the proxy called (review32a M1): the first forwarded request of a worker says so, naming
    the headers and never their values; one with either setting says nothing."""
    quiet = create_app(open_settings(), compiled_catalog, client_factory=no_client)
    sent(quiet, "crd:8080")
    warned = create_app(open_settings(), compiled_catalog, client_factory=no_client)
    configured = [
        create_app(open_settings(public_base_url="https://crd.example.org"), compiled_catalog, no_client),
        create_app(
            open_settings(trusted_proxies=(ipaddress.ip_network(PROXY),)), compiled_catalog, no_client
        ),
    ]
    with caplog.at_level("WARNING", logger="service.host_header"):
        sent(quiet, "crd:8080")
        for app in configured:
            sent(app, "crd:8080", **_forwarded("https", "evil.example", "192.0.2.9"))
        assert not _said(caplog)
        for _ in range(3):
            sent(warned, "crd:8080", **_forwarded("https", "evil.example", "192.0.2.9"))
    said = _said(caplog)
    assert len(said) == 1, said
    assert "X-Forwarded-Proto and X-Forwarded-Host" in said[0] and "public_base_url" in said[0]
    assert "evil.example" not in said[0] and "https," not in said[0]


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "service.host_header"]
