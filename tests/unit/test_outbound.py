"""Outbound requests only where the caller may send them, and each call only its share of the pool.

The admission rules (normalised allow-list, userinfo, internal addresses) against plain values and
against a real loopback server that counts the connections it receives; the pool's per-call and
per-server limits against a stand-in client whose queries block until released.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from service.app import create_app
from service.fhir import transport
from service.fhir.client import OUT_OF_TIME, FhirClient, FhirError, SearchResult
from service.fhir.outbound import (
    NO_ANSWER,
    TargetRefused,
    connectable_address,
    ip_literal,
    is_internal,
    normalise_base,
    origin,
    refusal,
    within_base,
)
from service.fhir.queries import Query
from service.fhir.query_pool import QueryPool
from service.fhir.transport import guarded_session
from service.order_devices import DeviceReader
from service.settings import FhirSettings, SettingsError, settings_from_mapping
from tests.builders import catalog
from tests.fuzz_support import seeded
from tests.hostile_support import FLOOD_BYTES, HostileFhirServer, tls_server
from tests.support import (
    SELECT_URL,
    AskingClient,
    assert_outcome,
    open_settings,
    post_json,
    select_body,
    with_fhir,
)

EHR = "https://ehr.example.org/fhir"


@pytest.mark.parametrize(
    "spelling",
    [
        "https://ehr.example.org/fhir",
        "https://ehr.example.org/fhir/",
        "HTTPS://EHR.Example.ORG/fhir",
        "https://ehr.example.org:443/fhir",
        " https://ehr.example.org/fhir/ ",
    ],
)
def test_spellings_of_one_base_normalise_alike(spelling: str) -> None:
    assert normalise_base(spelling) == EHR
    assert refusal(spelling, [EHR]) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/fhir/r4",  # another path below the listed base
        "https://ehr.example.org/fhi",
        "https://ehr.example.org",
        "http://ehr.example.org/fhir",  # another scheme
        "https://ehr.example.org:8443/fhir",  # another port
        "https://ehr.example.org.evil.example/fhir",
        "https://evil.example/ehr.example.org/fhir",
        "https://EHR.example.org/FHIR",  # paths are case-sensitive
    ],
)
def test_anything_but_a_listed_base_is_refused(url: str) -> None:
    assert refusal(url, [EHR]) == "fhirServer is not a FHIR server this client is registered to name"


@pytest.mark.parametrize(
    ("url", "mention"),
    [
        ("https://user:pass@ehr.example.org/fhir", "credentials"),
        ("https://user@ehr.example.org/fhir", "credentials"),
        ("https://@ehr.example.org/fhir", "credentials"),
        ("https://ehr.example.org/fhir?x=1", "query"),
        ("https://ehr.example.org/fhir#top", "query or fragment"),
        ("ftp://ehr.example.org/fhir", "http(s)"),
        ("file:///etc/passwd", "http(s)"),
        ("gopher://127.0.0.1:6379/_INFO", "http(s)"),
    ],
)
def test_credentials_queries_and_other_schemes_are_refused_even_when_listed(url: str, mention: str) -> None:
    reason = refusal(url, [url, EHR])
    assert reason is not None and mention in reason


def test_no_fhir_server_needs_no_admission() -> None:
    assert refusal(None, []) is None


def test_nothing_is_open_when_nothing_is_listed() -> None:
    assert refusal(EHR, []) is not None


@pytest.mark.parametrize(
    "spelling", ["127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001", "127.000.000.001"]
)
def test_ip_spellings_are_read_as_the_address_they_spell(spelling: str) -> None:
    assert ip_literal(spelling) == ipaddress.ip_address("127.0.0.1")
    assert normalise_base(f"http://{spelling}:8080/fhir") == "http://127.0.0.1:8080/fhir"


@pytest.mark.parametrize("name", ["ehr.example.org", "1e100.de", "cafe", "localhost", "0x7g.1"])
def test_host_names_are_not_addresses(name: str) -> None:
    assert ip_literal(name) is None


def test_an_ip_spelling_of_an_unlisted_address_is_refused() -> None:
    assert refusal("http://2130706433:8080/fhir", ["http://10.0.0.7:8080/fhir"]) is not None
    assert refusal("http://[::ffff:127.0.0.1]:8080/fhir", ["http://127.0.0.1:8080/fhir"]) is not None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "0.1.2.3",  # "this network"
        "fd00:ec2::254",  # AWS's IPv6 metadata endpoint
        "100.100.100.200",  # Alibaba's metadata endpoint
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "::127.0.0.1",  # IPv4-compatible
    ],
)
def test_loopback_link_local_and_unspecified_are_internal(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["10.0.0.7", "192.168.1.20", "93.184.216.34", "2001:db8::1", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_other_addresses_are_not_internal(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))


def _resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "addresses",
    [("127.0.0.1",), ("93.184.216.34", "127.0.0.1"), ("::ffff:169.254.169.254",), ("fe80::1",), ("0.0.0.0",)],
)
def test_a_name_resolving_to_an_internal_address_is_not_connected_to(
    monkeypatch: pytest.MonkeyPatch, addresses: tuple[str, ...]
) -> None:
    _resolving_to(monkeypatch, *addresses)
    with pytest.raises(TargetRefused):
        connectable_address("ehr.example.org", 443)


def test_a_name_resolving_to_an_ordinary_address_connects_to_that_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "93.184.216.34", "93.184.216.35")
    assert connectable_address("ehr.example.org", 443) == "93.184.216.34"


def test_an_address_is_connected_to_as_written_once_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch)  # no resolution happens for an address
    assert connectable_address("2130706433", 80) == "127.0.0.1"
    assert connectable_address("[::1]", 80) == "::1"


# Through the service: admission happens before any network I/O.


def _call(allowed: tuple[str, ...], named: str) -> Any:
    client = create_app(open_settings(*allowed), catalog()).test_client()
    return post_json(client, SELECT_URL, with_fhir(select_body(), server=named))


@pytest.mark.parametrize(
    "named",
    [
        "{base}/other",
        "http://localhost:{port}/fhir",  # the same server by a name the list does not hold
        "http://127.0.0.2:{port}/fhir",
        "http://user:pw@127.0.0.1:{port}/fhir",
        "http://127.0.0.1:{port}/fhir?_format=json",
    ],
)
def test_a_call_naming_a_server_it_may_not_gets_400_and_no_connection_is_made(named: str) -> None:
    with HostileFhirServer("quiet") as server:
        response = _call((server.base_url,), named.format(base=server.base_url, port=server.port))
    assert_outcome(response, 400, "fhirServer")
    assert server.connections == 0


def test_an_unlisted_server_is_refused_even_when_the_call_prefetched_everything() -> None:
    with HostileFhirServer("quiet") as server:
        response = _call((), server.base_url)
    assert_outcome(response, 400, "fhirServer")
    assert server.connections == 0


def test_a_listed_server_is_called() -> None:
    with HostileFhirServer("quiet") as server:
        response = _call((server.base_url,), server.base_url)
    assert response.status_code == 200
    assert server.connections > 0


def test_a_listed_name_that_resolves_to_loopback_is_not_connected_to() -> None:
    """`localhost` is listed by name, not by address: it resolves to loopback, so no connection."""
    with HostileFhirServer("quiet") as server:
        by_name = f"http://localhost:{server.port}/fhir"
        response = _call((by_name,), by_name)
    assert response.status_code == 200
    assert NO_ANSWER in response.get_json()["cards"][0]["detail"]
    assert server.connections == 0


# Reads: only the resource asked for, of the call's patient.


@responses.activate
def test_a_device_of_another_patient_is_not_used() -> None:
    responses.get(
        f"{EHR}/Device/mine",
        json={"resourceType": "Device", "id": "mine", "patient": {"reference": "Patient/p1"}},
    )
    responses.get(f"{EHR}/Device/loose", json={"resourceType": "Device", "id": "loose"})
    responses.get(
        f"{EHR}/Device/theirs",
        json={"resourceType": "Device", "id": "theirs", "patient": {"reference": "Patient/p2"}},
    )
    read = DeviceReader(FhirClient(EHR, None, 2.0), "p1")
    assert read("Device/mine") is not None
    assert read("Device/loose") is not None
    assert read("Device/theirs") is None


# The pool: per-call and per-server shares.


class BlockingClient(AskingClient):
    """Answers every search once `release` is set, and counts how many it holds at once."""

    def __init__(
        self, origin: str, counter: dict[str, int], lock: threading.Lock, release: threading.Event
    ) -> None:
        self.origin = origin
        self._counter, self._lock, self._release = counter, lock, release

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        with self._lock:
            self._counter["now"] += 1
            self._counter["most"] = max(self._counter["most"], self._counter["now"])
        try:
            self._release.wait(10)
            return SearchResult([], [], 1)
        finally:
            with self._lock:
                self._counter["now"] -= 1


def _queries(count: int) -> list[Query]:
    return [Query(f"q{i}", "Condition", {"patient": "p1"}) for i in range(count)]


def _run_calls(
    pool: QueryPool,
    clients: list[BlockingClient],
    counter: dict[str, int],
    share: int,
    release: threading.Event,
) -> list[Any]:
    """Run one call per client (6 queries each); once `share` queries are held, give the calls a
    moment to take more than their share (they must not), then let every query finish."""
    results: list[Any] = [None] * len(clients)
    deadline = time.monotonic() + 20

    def one(i: int) -> None:
        results[i] = pool.run(clients[i], _queries(6), deadline)  # type: ignore[arg-type]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    while counter["now"] < share and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(15)
    return results


def test_one_call_holds_at_most_its_share_of_the_pool() -> None:
    counter, lock, release = {"now": 0, "most": 0}, threading.Lock(), threading.Event()
    with ThreadPoolExecutor(max_workers=8) as executor:
        pool = QueryPool(executor, per_call=2, per_server=6)
        [outcomes] = _run_calls(pool, [BlockingClient(EHR, counter, lock, release)], counter, 2, release)
    assert counter["most"] == 2
    assert all(o.error is None for o in outcomes.values()) and len(outcomes) == 6


def test_all_calls_to_one_server_hold_at_most_its_share_of_the_pool() -> None:
    counter, lock, release = {"now": 0, "most": 0}, threading.Lock(), threading.Event()
    with ThreadPoolExecutor(max_workers=8) as executor:
        pool = QueryPool(executor, per_call=4, per_server=3)
        clients = [BlockingClient(EHR, counter, lock, release) for _ in range(3)]
        results = _run_calls(pool, clients, counter, 3, release)
    assert counter["most"] == 3
    assert all(o.error is None for outcomes in results for o in outcomes.values())


def test_queries_that_cannot_start_or_finish_by_the_deadline_say_so() -> None:
    counter, lock, release = {"now": 0, "most": 0}, threading.Lock(), threading.Event()
    with ThreadPoolExecutor(max_workers=8) as executor:
        pool = QueryPool(executor, per_call=2, per_server=6)
        client = BlockingClient(EHR, counter, lock, release)
        outcomes = pool.run(client, _queries(5), time.monotonic() + 0.3)  # type: ignore[arg-type]
        release.set()
    errors = [o.error for o in outcomes.values()]
    assert (errors.count(NO_ANSWER), errors.count(OUT_OF_TIME)) == (2, 3)


def test_a_server_may_not_take_the_whole_pool() -> None:
    with pytest.raises(SettingsError, match="max_concurrent_per_server"):
        FhirSettings(max_workers=8, max_concurrent_per_server=8)


# Each request: cut at its deadline, however slowly the server drips; cut at the size cap.


@pytest.mark.parametrize("mode", ["drip", "stall"])
def test_a_request_is_cut_at_the_deadline_not_at_each_read(mode: str) -> None:
    with HostileFhirServer(mode) as server:
        client = FhirClient(server.base_url, None, 30.0, deadline=time.monotonic() + 0.5)
        with pytest.raises(FhirError) as caught:
            client.search("Condition", {"patient": "p1"})
        assert caught.value.reason == NO_ANSWER
        assert server.wait_until_idle()
        assert server.cut == 1


def test_a_flood_is_cut_at_the_size_cap() -> None:
    with HostileFhirServer("flood") as server:
        client = FhirClient(server.base_url, None, 30.0, max_response_bytes=256 * 1024)
        with pytest.raises(FhirError, match="too large"):
            client.search("Condition", {"patient": "p1"})
        assert server.wait_until_idle()
    assert 0 < server.most_sent < FLOOD_BYTES


def test_tls_checks_the_listed_name_while_connecting_to_the_checked_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []

    def to_loopback(host: str, port: int) -> str:
        checked.append(host)
        return "127.0.0.1"

    monkeypatch.setattr(transport, "connectable_address", to_loopback)
    with tls_server("ehr.test") as (port, ca_file):
        answer = guarded_session().get(
            f"https://ehr.test:{port}/fhir/metadata", verify=str(ca_file), timeout=5
        )
        assert answer.text == "ok"
        with pytest.raises(requests.exceptions.SSLError):
            guarded_session().get(f"https://other.test:{port}/fhir/metadata", verify=str(ca_file), timeout=5)
    assert checked == ["ehr.test", "other.test"]


def test_the_outbound_limits_are_read_from_the_configuration() -> None:
    fhir = settings_from_mapping(
        {
            "fhir": {
                "max_response_bytes": 1048576,
                "max_concurrent_per_call": 2,
                "max_concurrent_per_server": 3,
            }
        }
    ).fhir
    assert (fhir.max_response_bytes, fhir.max_concurrent_per_call, fhir.max_concurrent_per_server) == (
        1048576,
        2,
        3,
    )
    with pytest.raises(SettingsError, match=r"fhir\.max_response_bytes"):
        settings_from_mapping({"fhir": {"max_response_bytes": 0}})
    with pytest.raises(SettingsError, match=r"fhir\.max_concurrent_per_server"):
        settings_from_mapping({"fhir": {"max_workers": 4}})


def test_no_cookie_of_one_call_rides_along_on_the_next() -> None:
    with HostileFhirServer("cookie") as server:
        app = create_app(open_settings(server.base_url), catalog())
        for token in ("token-of-dr-A", "token-of-dr-B"):
            body = with_fhir(select_body(), token=token, server=server.base_url)
            assert post_json(app.test_client(), SELECT_URL, body).status_code == 200
    assert len(server.cookies) >= 2  # both calls asked, and were handed cookies
    assert server.cookies == [None] * len(server.cookies)


TENANT_BASE = "https://ehr.example.org/tenant-a/fhir"
# `..;` is `..` to a servlet container (Tomcat drops the path parameter first): another tenant's base
DOTS_WITH_A_PATH_PARAMETER = [
    "https://ehr.example.org/tenant-a/fhir/..;/..;/tenant-b/fhir/Condition?patient=1",
    "https://ehr.example.org/tenant-a/fhir/%2e%2e;/%2E%2E;x/tenant-b/fhir/Condition",
    "https://ehr.example.org/tenant-a/fhir/.;/..%3B/tenant-b/fhir/Condition",
]


@pytest.mark.parametrize("link", DOTS_WITH_A_PATH_PARAMETER)
def test_a_dot_segment_with_a_path_parameter_is_not_under_the_base(link: str) -> None:
    assert not within_base(link, TENANT_BASE)


def test_a_segment_merely_holding_dots_and_a_parameter_stays_under_the_base() -> None:
    assert within_base(f"{TENANT_BASE}/Condition;x=..?page=2", TENANT_BASE)
    assert within_base(f"{TENANT_BASE}/...;x/Condition", TENANT_BASE)


@responses.activate
def test_a_client_normalises_its_base_once_and_each_link_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every FHIR request asks whether its URL lies under the client's base: the base is normalised
    when the client is made, the URL once (before: the URL twice and the base twice, a seventh of a
    search's CPU, perf26b)."""
    from service.fhir import outbound

    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    responses.get(f"{TENANT_BASE}/Condition", json=bundle)
    responses.get(f"{TENANT_BASE}/Procedure", json=bundle)
    client = FhirClient(TENANT_BASE, None, 2.0)
    normalised: list[str] = []
    real = outbound.normalise_base
    monkeypatch.setattr(outbound, "normalise_base", lambda url: normalised.append(url) or real(url))
    client.search("Condition", {"patient": "1"})
    client.search("Procedure", {"patient": "2"})
    assert normalised == [f"{TENANT_BASE}/Condition", f"{TENANT_BASE}/Procedure"]


BASES = [
    EHR,
    TENANT_BASE,
    "http://127.0.0.1:8080/fhir",
    "https://[::1]:8443/r4",
    "HTTPS://EHR.Example.org:443/fhir/",
]
LINKS = [
    *[f"{base}/Condition?patient=1" for base in BASES],
    *DOTS_WITH_A_PATH_PARAMETER,
    "https://ehr.example.org/fhir",
    "https://ehr.example.org/fhir/../other/Condition",
    "https://ehr.example.org:443/fhir/Observation#frag",
    "https://ehr.example.org:8443/fhir/Observation",
    "http://ehr.example.org/fhir/Observation",
    "https://user:pw@ehr.example.org/fhir/Observation",
    "https://ehr.example.org/fhirx/Observation",
    "https://ehr.example.org/fhir/%2e%2e/x",
    "https://[::1]:8443/r4/Patient/1",
    "https://0x7f.1:8080/fhir/Patient/1",
    "ftp://ehr.example.org/fhir",
    "https://ehr.example.org:99999/fhir",
    " https://ehr.example.org/fhir/Patient ",
    "https://ehr.example.org /?page=2",
    "https://ehr.example.org\u3000/fhir/Patient",
    "https://ehr.example.org\u00a0",
    "https://ehr.example.org\x85/fhir",
]


@pytest.mark.parametrize("base", BASES)
def test_within_base_answers_as_it_did(base: str) -> None:
    """The link's origin is read from its normalised text without normalising it again (perf26b): the
    same answer, because a normalised URL's origin is its own (review26e: a host ending in a
    space was not, 'https://ehr.example.org /' normalising to 'https://ehr.example.org ' and then to
    'https://ehr.example.org'; such a host is no base now)."""
    for link in LINKS:
        link_base = normalise_base(link.split("?", 1)[0].split("#", 1)[0])
        if link_base is not None:
            assert normalise_base(link_base) == link_base and origin(link_base) == origin(link)
            assert within_base(link, base) == (
                origin(link_base) == origin(base) and within_base(link_base, base)
            )


@pytest.mark.parametrize(
    "base", ["https://ehr.example.org /", "https://ehr\u3000.example.org/fhir", "https://e\x00hr/"]
)
def test_a_base_whose_host_holds_a_space_or_a_control_character_is_none(base: str) -> None:
    """No request can reach such a host (urllib3 refuses it): it is refused as a base, with the rest."""
    assert normalise_base(base) is None


@pytest.mark.parametrize("link", DOTS_WITH_A_PATH_PARAMETER)
@responses.activate
def test_a_next_link_through_a_dot_parameter_segment_gets_no_token(link: str) -> None:
    """A search's page whose `next` link leaves the base through `..;` (a server's answer; an EHR's
    prefetched page one is no longer followed, service/fhir/gather.py)."""
    responses.get(link, json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    page_one = {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": link}]}
    with pytest.raises(FhirError, match="another server"):
        FhirClient(TENANT_BASE, "tok-secret", 2.0).collect(page_one, "Condition")
    assert not responses.calls


@pytest.mark.parametrize(
    ("named", "character"),
    [
        ("https://ehr\u200b.example.org/fhir", "U+200B (ZERO WIDTH SPACE)"),
        ("https://ehr.example.org\ufeff/fhir", "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
        ("https://ehr\u00ad.example.org/fhir", "U+00AD (SOFT HYPHEN)"),
        ("https://ehr\x01.example.org/fhir", "U+0001"),
    ],
)
def test_a_host_holding_an_invisible_or_control_character_is_refused_naming_it(
    named: str, character: str
) -> None:
    """review26h LOW: such a host (a space or line break is refused earlier, with the URL's form) was
    refused as "without query or fragment", which it had none of: the refusal names the character."""
    with HostileFhirServer("quiet") as server:
        response = _call((server.base_url, named), named)
    diagnostics = assert_outcome(response, 400, "fhirServer")["diagnostics"]
    assert f"host holds {character}" in diagnostics and "query" not in diagnostics, diagnostics
    assert server.connections == 0


ODD_CHARACTERS = [*" \t\u00a0\u3000\u0085\u2028\u200b\ufeff\u0301\u00ad\u0130\u1e9e%/.:[]@?#", "%20", "%25"]
URL_PART = st.lists(
    st.one_of(st.sampled_from(list("abcXYZ09-.")), st.sampled_from(ODD_CHARACTERS)), max_size=8
)


@seeded(2000)
@given(
    st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    URL_PART.map("".join),
    st.sampled_from(["", ":443", ":8443", ":", ":x"]),
    st.lists(URL_PART.map("".join), max_size=3).map(lambda parts: "".join("/" + p for p in parts)),
    st.sampled_from(["", "/", " ", "/ ", " /", "\u3000/", "\u0085 //", "?q", "#f"]),
)
def test_a_normalised_base_is_its_own_normal_form(
    scheme: str, host: str, port: str, path: str, end: str
) -> None:
    """review26h LOW: a path ending in a space before its last '/' normalised to one ending in the
    space, which normalised again to a shorter one ('https://ehr.example/fhir /' to '…/fhir ', then
    '…/fhir'): about 200 in 30,000 such URLs. Such a path is no base now, as a host holding a space."""
    url = f"{scheme}://{host}{port}{path}{end}"
    normalised = normalise_base(url)
    if normalised is not None:
        assert normalise_base(normalised) == normalised
        assert origin(normalised) == origin(url)


@pytest.mark.parametrize(
    "url",
    ["https://ehr.example/fhir /", "https://ehr.example/fhir\u00a0/", "https://ehr.example/fhir\u3000 //"],
)
def test_a_path_ending_in_a_space_is_no_base(url: str) -> None:
    assert normalise_base(url) is None
    assert not within_base(url, "https://ehr.example/fhir")
    assert refusal(url, [url]) == "fhirServer's path ends in a space: no FHIR base URL does"
