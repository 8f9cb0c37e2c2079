"""Where a hook call may send its FHIR requests (and the EHR's access token with them).

Every call names its EHR's FHIR server (`fhirServer`) and the service sends that EHR's bearer
token there. Unchecked, that would make the service a proxy into whatever network it runs in,
carrying credentials. So:

- A call may name only the FHIR base URLs its caller is registered with (a trusted client's
  `fhir_servers`, or `auth.open_fhir_servers` when authentication is not required). Both sides
  are compared normalised: scheme and host in lower case, the default port dropped, a trailing
  slash dropped, an IP address in its canonical spelling (`2130706433` and `0x7f.1` are
  127.0.0.1). Anything else is refused with 400 before any network I/O (`refusal`).
- URLs with credentials (userinfo), a query or a fragment, or a scheme other than http(s) are
  never admitted.
- Loopback, link-local and unspecified addresses (127/8, ::1, 169.254/16, fe80::/10, 0.0.0.0,
  ::, and their IPv4-mapped forms) are reached only when a client's list names them by address.
  A listed host NAME is resolved when the connection is made and refused when any of its
  addresses is one of those (`connectable_address`), so a DNS answer cannot turn a listed name
  into a path to the service's own host; the connection then goes to the address checked.

Whatever goes wrong on the way to a server (refused here at connection time, no route, closed
port, timeout) reads the same to the caller: `NO_ANSWER`. A caller cannot use the service to
tell an open port from a closed one.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
NO_ANSWER = "the FHIR server did not answer"
# What inet_aton also reads as an IPv4 address: 2130706433, 0x7f.1, 0177.0.0.1, 127.1.
NUMERIC_HOST = re.compile(r"[0-9][0-9a-fA-FxX.]*")


class TargetRefused(OSError):
    """A connection that must not be made: a listed name resolving to an internal address."""


def ip_literal(host: str) -> IpAddress | None:
    """The IP address `host` spells, in any spelling the resolver would accept; None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if NUMERIC_HOST.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


# Besides loopback, link-local and unspecified: "this network" (0.0.0.0/8), cloud metadata endpoints
# that are neither (AWS's IPv6 one, Alibaba's in the shared address space).
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("0.0.0.0/8", "100.100.100.200/32", "fd00:ec2::/32")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped, NAT64 or (deprecated) IPv4-compatible."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_internal(address: IpAddress) -> bool:
    """Loopback, link-local, unspecified or a metadata endpoint, also when an IPv6 address carries
    such an IPv4 address (mapped, NAT64, IPv4-compatible)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            address = embedded
    if any(address in network for network in INTERNAL_NETWORKS if network.version == address.version):
        return True
    return address.is_loopback or address.is_link_local or address.is_unspecified


def _url_host(host: str) -> str:
    address = ip_literal(host)
    if address is None:
        return host
    return f"[{address}]" if address.version == 6 else str(address)


def normalise_base(url: str) -> str | None:
    """The canonical form of an http(s) FHIR base URL; None when it cannot be one (another scheme,
    userinfo, a query or fragment, no host or one holding a space or control character, a malformed
    port, a path ending in a space). A normalised URL is its own normal form, and its origin is its
    own text up to the path (`under_normalised_base` relies on it)."""
    return _normal_form(url)[0]


def _normal_form(url: str) -> tuple[str, None] | tuple[None, str]:
    """`normalise_base(url)` and None, or None and why `url` is no base: what follows the URL's name in
    `refusal`'s answer (' must …', "'s host …")."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None, " must be an http(s) URL with a well-formed host and port"
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        return None, " must be an http(s) base URL"
    if not parts.hostname:
        return None, " must name a host"
    if "@" in parts.netloc:
        return None, " must not carry credentials (user information) in its URL"
    if " " in parts.hostname or not parts.hostname.isprintable():  # a host no request can reach
        return None, f"'s host holds {_unprintable(parts.hostname)}, which no host name can hold"
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        return None, " must be an http(s) base URL without query or fragment"
    path = parts.path.rstrip("/")
    if path[-1:].isspace():  # 'https://h/fhir /': stripped, it would normalise again to '…/fhir'
        return None, "'s path ends in a space: no FHIR base URL does"
    netloc = _url_host(parts.hostname)
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{path}", None


def _unprintable(host: str) -> str:
    """The first space, control or invisible character of `host`, by code point and name."""
    character = next(c for c in host if c == " " or not c.isprintable())
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X}" + (f" ({name})" if name else "")


def origin(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, normalised; None when the URL could not be a FHIR base."""
    base = normalise_base(url.split("?", 1)[0].split("#", 1)[0])
    return None if base is None else _normalised_origin(base)


def within_base(url: str, base: str) -> bool:
    """Whether `url` is the FHIR base `base` or lies under it: the same scheme, host and port, and the
    base's path segments leading its own. Trust is registered per base URL and one host may serve
    several (a tenant each), so a link sharing only the origin could carry the token to another's.
    A dot segment (also one with a path parameter, `..;`), or one hiding a slash or backslash behind
    percent-encoding, is never under a base: the server could resolve it to a path outside."""
    return under_normalised_base(url, normalise_base(base))


def under_normalised_base(url: str, home: str | None) -> bool:
    """`within_base(url, base)` for the base already normalised (`normalise_base(base)`): the FHIR
    client normalises its base once, not at every request. The link is normalised once: a
    normalised URL's origin is its text up to the path (`normalise_base`) (before,
    each request normalised the link twice and the base twice: 0.24 M instructions of a 1.84 M
    search, perf26b)."""
    link = normalise_base(url.split("?", 1)[0].split("#", 1)[0])
    if link is None or home is None or _normalised_origin(link) != _normalised_origin(home):
        return False
    link_segments, home_segments = _path_segments(link), _path_segments(home)
    if any(_may_leave_its_place(segment) for segment in link_segments):
        return False
    return link_segments[: len(home_segments)] == home_segments


def _normalised_origin(normalised: str) -> str:
    """`origin` of a URL `normalise_base` wrote."""
    scheme, _, rest = normalised.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _path_segments(normalised: str) -> list[str]:
    """The path segments of a normalised base URL (`https://h/r4/fhir` has `r4` and `fhir`)."""
    path = urlsplit(normalised).path
    return path.split("/")[1:] if path else []


def _may_leave_its_place(segment: str) -> bool:
    """A path segment a server could resolve to another place: `.` or `..`, also followed by a path
    parameter (`..;`, `%2e%2e;x`: a servlet container such as Tomcat drops the `;` part, then resolves
    the dots), or one that decodes to a slash or backslash (`%2e%2e`, `..%2F..`)."""
    decoded = unquote(segment)
    return decoded.split(";", 1)[0] in (".", "..") or "/" in decoded or "\\" in decoded


def refusal(server: str | None, allowed: Iterable[str]) -> str | None:
    """Why a call may not name `server` as its fhirServer (None: it may, or it names none)."""
    if server is None:
        return None
    if "@" in server.split("//", 1)[-1].split("/", 1)[0]:
        return "fhirServer must not carry credentials (user information) in its URL"
    normalised, problem = _normal_form(server)
    if normalised is None:
        return f"fhirServer{problem}"
    if normalised not in {normalise_base(a) for a in allowed}:
        return "fhirServer is not a FHIR server this client is registered to name"
    return None


def connectable_address(host: str, port: int) -> str:
    """The address to connect to for `host`: an IP literal as is (only listed servers get this
    far), a name resolved now and refused (`TargetRefused`) when any address it resolves to is
    internal. Raises `socket.gaierror` when the name does not resolve."""
    literal = ip_literal(host)
    if literal is not None:
        return str(literal)
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
    if not addresses or any(is_internal(a) for a in addresses):
        raise TargetRefused(f"{host} resolves to an internal address")
    return str(addresses[0])
