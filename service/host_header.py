"""The Host a request names, checked once at the HTTP edge, and the URL root a policy link is built on.

RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request with no Host, to one with more than one
Host line, and to one whose Host is not a valid value. Where no `public_base_url` is configured the
policy links take the Host the EHR called, so a Host werkzeug cannot read (it reads `a b`, an empty one,
`bücher.example` or a port 99999 as no host at all) gave the link `http:/policies/<id>`, a punycode host
came back in its Unicode form (review31d L1), and a bracketed text its pattern takes that is no IPv6
address (`[1::2::3]`) made its URL root raise: the pump call was a 500. Every request is now checked
here first, discovery and the probes included (docs/api.md), and the link is built on the Host as sent.
The probes alone answer an HTTP/1.1 request with no Host at all (one with an invalid Host they refuse):
HAProxy's `option httpchk GET /healthz HTTP/1.1`, still in its tutorials, sends none, and a load
balancer that reads the 400 as down would take every replica out after an upgrade (review31g); a probe
builds no link, so nothing is read from a Host it lacks.

A valid Host (RFC 9110 §7.2: uri-host [":" port], host as RFC 3986 §3.2.2) is a registered name of ASCII
letters, digits, `-`, `.`, `_`, `~` and percent-encoded octets (punycode, `xn--…`, included: kept as sent),
or an IPv4 address (a registered name by its characters), or an IPv6 address in brackets; then
optionally a port of at most 65535. A name's sub-delimiters (`!$&'()*+,;=`), which RFC 3986 allows but no
host name in DNS holds, are refused: a comma is what two Host lines joined into one look like (Werkzeug's
development server joins them so; gunicorn refuses them itself). So are an IPvFuture literal and an IPv6
zone, which no deployed IP version uses in a URL. An empty Host is refused: an `http` URI never has an
empty host (RFC 9110 §4.2.1). A request with no Host at all is refused only in HTTP/1.1; an HTTP/1.0 one
may lack it, and its links are then built on the server's own address, as werkzeug builds them.

The check is one compiled regular expression matched over the value, whatever its length in linear time.

Behind a reverse proxy the Host and the scheme the EHR called are the proxy's to tell. They are read
from X-Forwarded-Host and X-Forwarded-Proto only when the request comes from a configured proxy
(`trusted_proxies`, addresses or networks; none by default, so nobody else can make the links point
elsewhere), each header's last value (the one the nearest proxy wrote), by `TrustedProxies`, before
the request is read, so every reader (the links, the sandbox, the auth guard's endpoint) sees the
same. gunicorn's own reading of X-Forwarded-Proto, which trusts loopback by default, is off
(`service.serving`). A forwarded value that is invalid is refused naming the header at fault
(`http.X-Forwarded-Host`, `http.X-Forwarded-Proto`), not `http.Host` (review31g L3).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flask import Request

from service.settings import unmapped

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FIELD = "http.Host"  # FHIR's name for an HTTP header in an OperationOutcome: "http." + its name
FORWARDED_HOST = "http.X-Forwarded-Host"
FORWARDED_PROTO = "http.X-Forwarded-Proto"
FIELDS = (FIELD, FORWARDED_HOST, FORWARDED_PROTO)  # what a refusal of the called address may name
_HOST_FROM = "idds_crd.host_from"  # environ: the header HTTP_HOST was taken from, when not Host
_SCHEME_REFUSED = "idds_crd.scheme_refused"  # environ: a trusted proxy's X-Forwarded-Proto, invalid
SCHEMES = ("http", "https")
FORWARDED = {"HTTP_X_FORWARDED_PROTO": "X-Forwarded-Proto", "HTTP_X_FORWARDED_HOST": "X-Forwarded-Host"}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"


def _ipv6() -> str:
    """RFC 3986's IPv6address, its nine forms: n groups before `::` (at most 7 - after), `after` after it."""
    forms = [rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}"]
    for before, after in ((0, 4), (1, 3), (2, 2), (3, 1), (4, 0)):
        head = rf"(?:(?:{_H16}:){{0,{before}}}{_H16})?" if before else rf"(?:{_H16})?"
        forms.append(rf"{head}::(?:{_H16}:){{{after}}}{_LS32}")
    forms.append(rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}")
    forms.append(rf"(?:(?:{_H16}:){{0,6}}{_H16})?::")
    return "(?:" + "|".join(forms) + ")"


_REG_NAME = r"(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+"
# RFC 3986's port is any run of digits (empty too); its value at most 65535, leading zeros allowed
_PORT = r"0*(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})?"
HOST = re.compile(rf"(?:\[{_ipv6()}\]|{_REG_NAME})(?::{_PORT})?", re.ASCII)
_DEFAULT_PORTS = {"http": (":80", ":"), "https": (":443", ":")}


def host_refused(environ: Mapping[str, Any], none_allowed: bool = False) -> tuple[str, str, str] | None:
    """Why the address the request called is refused (its OperationOutcome's issue code, diagnostics
    and the header at fault), else None. `none_allowed`: a request with no Host at all is answered
    whatever its HTTP version (the probes)."""
    if environ.get(_SCHEME_REFUSED):
        said = "the X-Forwarded-Proto header of a trusted proxy is neither http nor https"
        return "structure", said, FORWARDED_PROTO
    host = environ.get("HTTP_HOST")
    if host is None:
        if none_allowed or environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
            return None
        return "required", "the Host header is required in HTTP/1.1 (RFC 9112 §3.2)", FIELD
    if HOST.fullmatch(host.strip(" \t")):
        return None
    field = environ.get(_HOST_FROM, FIELD)
    return (
        "structure",
        f"the {field.removeprefix('http.')} header is not one host[:port] (RFC 9110 §7.2): a name of ASCII "
        "letters, digits, '-', '.', '_', '~' or percent-encoded octets (punycode for others), an IPv4 "
        "address or an [IPv6] address, and a port of at most 65535",
        field,
    )


def called_host(environ: Mapping[str, Any]) -> str | None:
    """The Host the request called as sent (a trusted proxy's X-Forwarded-Host in its place), its
    optional whitespace stripped; None without one. What the links and the sandbox read: werkzeug's
    `request.host` reads a Host it does not take (`localhost:0`, `localhost:08080`) as none."""
    host = environ.get("HTTP_HOST")
    return None if host is None else host.strip(" \t")


def _nearest(value: str) -> str:
    """A forwarded header's last value: the one the nearest proxy wrote (an earlier one is the client's)."""
    return value.rpartition(",")[2].strip(" \t")


class TrustedProxies:
    """WSGI middleware: a request from one of `networks` (the configured `trusted_proxies`) called the
    scheme its X-Forwarded-Proto says and the Host its X-Forwarded-Host says (each its last value);
    from any other peer both are ignored. An invalid forwarded value is refused by `host_refused`."""

    def __init__(self, app: WSGIApplication, networks: Iterable[Network]) -> None:
        self.app = app
        self.networks = tuple(unmapped(network) for network in networks)

    def trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.trusted(environ.get("REMOTE_ADDR")):
            proto = environ.get("HTTP_X_FORWARDED_PROTO")
            if proto is not None:
                scheme = _nearest(proto).lower()
                if scheme in SCHEMES:
                    environ["wsgi.url_scheme"] = scheme
                else:
                    environ[_SCHEME_REFUSED] = True
            host = environ.get("HTTP_X_FORWARDED_HOST")
            if host is not None:
                environ["HTTP_HOST"] = _nearest(host)
                environ[_HOST_FROM] = FORWARDED_HOST
        return self.app(environ, start_response)


class UnreadForwarding:
    """With neither `public_base_url` nor `trusted_proxies` set, a proxy's X-Forwarded-Proto and -Host
    are read by nothing, so behind a proxy the links name the address the proxy called (`http`, the Host
    it sent), not the one the EHR called. The first request of a worker that carries either header says
    so in the service log, once, naming the headers, never their values (review32a M1)."""

    def __init__(self) -> None:
        self.said = False

    def __call__(self, environ: Mapping[str, Any]) -> None:
        sent = [name for key, name in FORWARDED.items() if key in environ]
        if sent:
            self.said = True
            log.warning(
                "a request came with %s, which nothing reads: neither public_base_url nor trusted_proxies "
                "is set, so the links name the address the proxy called, not the one the EHR called "
                "(docs/serving.md, Behind a reverse proxy)",
                " and ".join(sent),
            )


def url_root(called: Request) -> str:
    """The URL the request reached, up to the application's root and a slash: its scheme, the Host as sent
    (checked by `host_refused`; a default port left out, as werkzeug leaves it out) and its root path.
    werkzeug's own `url_root` gives an IRI (a punycode host in Unicode) and an empty host for a name it
    does not take (`_`, `%41`, a port 0). A request with no Host (HTTP/1.0) gets werkzeug's."""
    host = called_host(called.environ)
    if host is None:
        return called.url_root
    scheme = called.scheme
    for port in _DEFAULT_PORTS.get(scheme, ()):
        host = host.removesuffix(port)
    root = quote(called.root_path.rstrip("/"), safe="!$&'()*+,/:;=@%")
    return f"{scheme}://{host}{root}/"
