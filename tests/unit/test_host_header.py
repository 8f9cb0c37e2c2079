"""The Host a request names (review31d L1): 400 naming it when it is missing in HTTP/1.1 or invalid (RFC 9112
§3.2), on every route; a valid one, punycode included, is the policy links' host as sent."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from service.app import create_app
from service.catalog import Catalog
from tests.demo_support import packaged_sample
from tests.host_support import Answer, refused_naming
from tests.host_support import linked as _linked
from tests.host_support import links as _links
from tests.host_support import sent as _sent
from tests.support import SELECT_URL, no_client, open_settings

POLICY = "geha-idds-chronic-pain"
SAMPLE = "order-select-62362-demo-meets"
FIELD = ["http.Host"]  # FHIR names an HTTP header in an OperationOutcome "http." + its name
INVALID = {
    "a space": "a b",
    "empty": "",
    "non-ASCII": "bücher.example",
    "port over 65535": "ex.org:99999",
    "port not digits": "ex.org:http",
    "two Host lines joined (the development server's way)": "a.example,b.example",
    "a path": "ex.org/policies",
    "user information": "user@ex.org",
    "a bad percent-encoding": "h%4g.example",
    "IPv6 unbracketed": "::1",
    "IPv6 not closed": "[::1",
    "IPv6 with two ::": "[1::2::3]",
    "IPv6 zone": "[fe80::1%25eth0]",
    "IPvFuture": "[v1.x]",
    "a sub-delimiter": "ex.org;x=1",
}
# each Host as sent, and the base its links must have (a default port left out, as werkzeug leaves it)
VALID = {
    "localhost:5000": "http://localhost:5000",
    "[::1]:8443": "http://[::1]:8443",
    "[2001:DB8::1]": "http://[2001:DB8::1]",
    "[::ffff:192.0.2.1]:80": "http://[::ffff:192.0.2.1]",
    "xn--bcher-kva.example": "http://xn--bcher-kva.example",
    "XN--BCHER-KVA.example:8080": "http://XN--BCHER-KVA.example:8080",
    "127.0.0.1:8080": "http://127.0.0.1:8080",
    "h%41st.example": "http://h%41st.example",
    "crd_service:8080": "http://crd_service:8080",
    "crd.example.org.": "http://crd.example.org.",
    "ex.org:0": "http://ex.org:0",
    "ex.org:065535": "http://ex.org:065535",
    "ex.org:80": "http://ex.org",
}


def _with_version(version: str) -> dict[str, Any]:
    """The demo's pump order-select as filed (prefetch whole: its 2.2 answer holds a policy-link detail)."""
    body = packaged_sample(SAMPLE)
    body.setdefault("extension", {})["davinci-crd.requestedVersion"] = version
    return body


def _call(app: Flask, host: str | None, body: dict[str, Any] | None = None, **environ: str) -> Answer:
    return _sent(app, host, body=body, **environ)


def _refused_naming_host(answer: Answer, code: str) -> bool:
    return refused_naming(answer, code, FIELD[0])


def test_a_hook_call_with_an_invalid_host_is_a_400_naming_it(app: Flask) -> None:
    """Before, each was answered 200, its policy links `http:/policies/<id>` (werkzeug read no host), or,
    for a bracketed text that is no IPv6 address, 500 (the URL root raised)."""
    answered = {name: _call(app, host) for name, host in INVALID.items()}
    not_refused = {name: a.status for name, a in answered.items() if not _refused_naming_host(a, "structure")}
    assert not_refused == {}


def test_a_crd_2_2_call_with_an_invalid_host_is_a_400_too(app: Flask) -> None:
    """Its policy-link detail (`valueUrl`) read `http:/policies/<id>` too."""
    answered = {host: _call(app, host, _with_version("2.2")) for host in ("a b", "", "ex.org:99999")}
    assert {host: a.status for host, a in answered.items() if not _refused_naming_host(a, "structure")} == {}


def test_an_http_1_1_request_with_no_host_is_a_400_an_http_1_0_one_is_answered(app: Flask) -> None:
    server = {"SERVER_NAME": "10.0.0.7", "SERVER_PORT": "8080"}
    assert _refused_naming_host(_call(app, None, SERVER_PROTOCOL="HTTP/1.1", **server), "required")
    answered = _call(app, None, SERVER_PROTOCOL="HTTP/1.0", **server)  # HTTP/1.0 needs no Host
    assert answered.status == 200
    assert _links(answered) == {f"http://10.0.0.7:8080/policies/{POLICY}"}  # the server's address


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_a_probe_with_no_host_is_answered_one_with_an_invalid_host_is_refused(app: Flask, path: str) -> None:
    """review31g: HAProxy's `option httpchk GET /healthz HTTP/1.1` sends no Host; refused 400, every
    replica would be marked down after an upgrade. The probes answer it; an invalid Host they still refuse,
    and a hook call with no Host stays a 400 (the control)."""
    answered = _sent(app, None, path, "GET", SERVER_PROTOCOL="HTTP/1.1")
    assert answered.status in (200, 503) and not _refused_naming_host(answered, "required")
    assert _refused_naming_host(_sent(app, "a b", path, "GET"), "structure")
    assert _refused_naming_host(_call(app, None, SERVER_PROTOCOL="HTTP/1.1"), "required")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cds-services"),
        ("GET", "/openapi.json"),
        ("GET", f"/policies/{POLICY}"),
        ("GET", "/fhir/CodeSystem/idds-assessment"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("POST", f"{SELECT_URL}/feedback"),
        ("OPTIONS", SELECT_URL),
        ("GET", "/no-such-page"),
    ],
)
def test_every_route_refuses_an_invalid_host_the_probes_too(app: Flask, method: str, path: str) -> None:
    """Discovery, the pages and the probes alike: the Host is the request's, not the route's (a load
    balancer's or kubelet's probe sends a valid one). The same request with a valid Host is the control."""
    refused = _sent(app, "a b", path, method)
    assert _refused_naming_host(refused, "structure"), (refused.status, refused.text[:200])
    answered = _sent(app, "xn--bcher-kva.example:8080", path, method)
    assert not _refused_naming_host(answered, "structure")


def test_a_valid_host_is_the_links_host_as_sent(app: Flask) -> None:
    """Before: a punycode host came back in Unicode (`http://bücher.example/…`, not ASCII), and a name with
    `_` or a percent-encoding, a port 0 or a port with leading zeros gave `http:/policies/<id>`."""
    for version, kinds in (("2.0", ["url"]), ("2.2", ["url", "valueUrl"])):  # 2.2: its detail beside
        expected = {host: {(k, f"{base}/policies/{POLICY}") for k in kinds} for host, base in VALID.items()}
        linked = {host: _linked(_call(app, host, _with_version(version))) for host in VALID}
        assert linked == expected, version
    # as werkzeug's URL root: https without :443, the application's root path (SCRIPT_NAME) kept
    secure = _call(app, "crd.example.org:443", **{"wsgi.url_scheme": "https", "SCRIPT_NAME": "/crd"})
    assert _links(secure) == {f"https://crd.example.org/crd/policies/{POLICY}"}


def test_with_a_public_base_url_the_host_names_no_link_and_an_invalid_one_is_still_refused(
    compiled_catalog: Catalog,
) -> None:
    configured = create_app(
        open_settings(public_base_url="https://crd.example.org/svc"),
        compiled_catalog,
        client_factory=no_client,
    )
    linked = _links(_call(configured, "xn--bcher-kva.example"))
    assert linked == {f"https://crd.example.org/svc/policies/{POLICY}"}
    assert _refused_naming_host(_call(configured, "a b"), "structure")


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    address=st.ip_addresses(v=6),
    written=st.sampled_from(["compressed", "exploded", "upper"]),
    port=st.none() | st.integers(0, 65535),
    zeros=st.integers(0, 2),
)
def test_any_ipv6_address_with_any_port_is_a_valid_host(
    app: Flask, address: ipaddress.IPv6Address, written: str, port: int | None, zeros: int
) -> None:
    """RFC 3986's nine IPv6 forms, each as `ipaddress` writes it, and any port of at most 65535, leading
    zeros allowed (werkzeug took no port 0 and no leading zero: the links lost their host)."""
    text = address.exploded if written == "exploded" else address.compressed
    host = f"[{text.upper() if written == 'upper' else text}]"
    if port is not None:
        host += ":" + "0" * zeros + str(port)
    base = host.removesuffix(":80") if port == 80 and not zeros else host
    assert _links(_call(app, host)) == {f"http://{base}/policies/{POLICY}"}


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF:.%g[]", min_size=1, max_size=45))
def test_a_bracketed_text_is_a_valid_host_only_when_it_is_an_ipv6_address(app: Flask, inside: str) -> None:
    """Before, one werkzeug's pattern took but no IPv6 address (`[1::2::3]`, `[:0]`) was a 500."""
    try:
        ipaddress.IPv6Address(inside)
        valid = "%" not in inside  # a zone: an address to `ipaddress`, never a URL's host
    except ValueError:
        valid = False
    assert _refused_naming_host(_call(app, f"[{inside}]"), "structure") is not valid, inside
