"""The EHR's orders come back in `update` actions with their numbers as the EHR wrote them.

CRD §resp-37: the service SHALL NOT change any element but its coverage information; FHIR R4: a
decimal's precision is significant (`2.50` is not `2.5`, `1e2` not `100.0`). Whatever hook, CRD
version and source of the order (the call's context, its prefetch, the EHR's FHIR server, the
`evaluate` command), and whether or not the answer holds a null elsewhere. The numbers' values
are judged as before.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask

from service.app import create_app
from service.cli import main
from service.fhir.cache import CacheScope, CacheStore, MemoryStore, PatientDataCache, RedisStore
from service.fhir.client import FhirClient, FhirError
from service.http_input import REQUEST_LIMITS
from service.registry import CallOptions
from service.settings import CacheSettings
from service.strict_json import (
    DecimalText,
    dumps,
    loads_exact,
    loads_request,
    loads_request_carefully,
    written_fast,
)
from tests.builders import catalog
from tests.cache_support import HandClock, cache_app, cache_settings, call, two_ehrs
from tests.demo_support import packaged_sample
from tests.number_support import (
    LITERALS,
    as_written,
    numbered_extensions,
    updated,
    with_literals,
    without_coverage_information,
)
from tests.support import FHIR_SERVER, JsonPath, no_client, open_settings, with_fhir

DRAFT, DISPATCHED, OPEN = (
    ("context", "draftOrders"),
    ("prefetch", "dispatchedServiceRequests"),
    ("prefetch", "openServiceRequests"),
)
# (sample, where the order sits in it, the order), by hook and where the order comes from
SOURCES = {
    "order-sign-context": (
        "order-sign-implant-demo-meets",
        (*DRAFT, "entry", 3, "resource"),
        "MedicationRequest/demo-meets-sign-mr-infusate",
    ),
    "order-select-context": (
        "order-select-62362-demo-meets",
        (*DRAFT, "entry", 0, "resource"),
        "ServiceRequest/demo-meets-select-sr-62362",
    ),
    "order-dispatch-prefetch": (
        "order-dispatch-62362-demo-meets",
        (*DISPATCHED, "entry", 0, "resource"),
        "ServiceRequest/demo-meets-sign-sr-62362",
    ),
    "encounter-start-prefetch": (
        "encounter-start-demo-meets",
        (*OPEN, "entry", 0, "resource"),
        "ServiceRequest/demo-meets-booked-sr-62362",
    ),
}
A_NULL = {"instantiatesUri": ["http://example.org/protocol", None], "_instantiatesUri": [None, {"id": "u2"}]}
ORDER_READ = "ServiceRequest/demo-meets-sign-sr-62362"
JSON = "application/json"


@cache
def offline_app() -> Flask:
    return create_app(open_settings(), catalog(), client_factory=no_client)


def at(body: Any, path: JsonPath) -> Any:
    for key in path:
        body = body[key]
    return body


# an integer orjson will not write, which sends the whole answer to `json`'s writer
PAST_64_BITS = "123456789012345678901234567890"


def with_numbers(
    order: dict[str, Any], null: bool, big: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """The order carrying every literal (markers in their place), a null elsewhere if `null`, and an
    integer past 64 bits if `big`."""
    extensions, literals = numbered_extensions(LITERALS + ((PAST_64_BITS,) if big else ()))
    changed = {**order, **(A_NULL if null else {}), "extension": [*order.get("extension", []), *extensions]}
    return changed, literals


@pytest.mark.parametrize("version", ["2.0", "2.2"])
@pytest.mark.parametrize(
    ("null", "big"), [(False, False), (True, False), (True, True)], ids=["no-null", "a-null", "a-big-integer"]
)
@pytest.mark.parametrize(("name", "path", "reference"), list(SOURCES.values()), ids=list(SOURCES))
def test_the_order_comes_back_with_its_numbers_as_written(
    name: str, path: JsonPath, reference: str, null: bool, big: bool, version: str
) -> None:
    body = packaged_sample(name)
    body["extension"] = {"davinci-crd.requestedVersion": version}
    order, literals = with_numbers(at(body, path), null, big)
    at(body, path[:-1])[path[-1]] = order
    raw = with_literals(body, literals)
    response = (
        offline_app()
        .test_client()
        .post(f"/cds-services/idds-crd-{body['hook']}", data=raw, content_type=JSON)
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    sent = at(as_written(raw), path)
    assert without_coverage_information(updated(response.get_data(), reference)) == sent


@responses.activate
def test_an_order_read_from_the_fhir_server_comes_back_with_its_numbers_as_written() -> None:
    body = with_fhir(packaged_sample("order-dispatch-62362-demo-meets"))
    [entry] = body["prefetch"].pop("dispatchedServiceRequests")["entry"]
    order, literals = with_numbers(entry["resource"], null=False)
    served = with_literals(order, literals)
    responses.get(f"{FHIR_SERVER}/{ORDER_READ}", body=served, content_type="application/fhir+json")
    response = (
        create_app(open_settings(), catalog())
        .test_client()
        .post("/cds-services/idds-crd-order-dispatch", json=body)
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert without_coverage_information(updated(response.get_data(), ORDER_READ)) == as_written(served)


@pytest.mark.parametrize("big", [False, True], ids=["", "a-big-integer"])
def test_evaluate_prints_the_order_with_its_numbers_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], big: bool
) -> None:
    body = packaged_sample("order-sign-implant-demo-meets")
    path = ("context", "draftOrders", "entry", 3, "resource")
    order, literals = with_numbers(at(body, path), null=True, big=big)
    at(body, path[:-1])[path[-1]] = order
    request = tmp_path / "request.json"
    request.write_bytes(with_literals(body, literals))
    assert main(["evaluate", str(request)]) == 0
    printed = capsys.readouterr().out
    assert without_coverage_information(
        updated(printed, "MedicationRequest/demo-meets-sign-mr-infusate")
    ) == at(as_written(request.read_bytes()), path)
    assert printed.startswith('{\n  "cards": [\n')  # indented as before


@responses.activate
def test_the_fhir_client_reads_numbers_as_written_and_integers_past_64_bits_exactly() -> None:
    served = b'{"resourceType":"Observation","id":"o1","value":[2.50,1e2,-0,0.000001,1.5e-7]}'
    responses.get(f"{FHIR_SERVER}/Observation/o1", body=served, content_type="application/fhir+json")
    big = b'{"resourceType":"Observation","id":"o2","value":18446744073709551616}'
    responses.get(f"{FHIR_SERVER}/Observation/o2", body=big, content_type="application/fhir+json")
    client = FhirClient(FHIR_SERVER, None, 2.0)
    assert dumps(client.read("Observation/o1")).encode() == served
    read = client.read("Observation/o2")
    assert read is not None and type(read["value"]) is int and dumps(read).encode() == big


@responses.activate
@pytest.mark.parametrize("text", ['"\\ud800"', '"a\\udc00"', '"\\ud83d\\u0041"'])
def test_a_fhir_answer_with_an_unpaired_surrogate_still_counts_as_a_failed_read(text: str) -> None:
    served = f'{{"resourceType":"Observation","id":"o1","note":[{{"text":{text}}}]}}'
    responses.get(f"{FHIR_SERVER}/Observation/o1", body=served, content_type="application/fhir+json")
    with pytest.raises(FhirError, match="not JSON"):
        FhirClient(FHIR_SERVER, None, 2.0).read("Observation/o1")


def test_a_paired_surrogate_or_an_escaped_backslash_before_one_is_read() -> None:
    assert loads_exact(b'["\\ud83d\\ude00", "\\\\ud800"]') == ["\U0001f600", "\\ud800"]


def test_the_patient_data_cache_gives_numbers_back_as_written() -> None:
    cached = PatientDataCache(MemoryStore(10, 100_000, lambda: 0.0), 60.0, "t:", clock=lambda: 0.0)
    scope = CacheScope("client", FHIR_SERVER, "user", "patient")
    answer = loads_exact(b'{"resourceType":"Bundle","entry":[{"resource":{"value":2.50,"n":-0}}]}')
    cached.keep(scope, [(("Observation", "q"), answer)], deadline=float("inf"))
    found = cached.lookup(scope, {"o": ("Observation", "q")}, deadline=float("inf"))
    assert dumps(found["o"]) == '{"resourceType":"Bundle","entry":[{"resource":{"value":2.50,"n":-0}}]}'


BIG = b'{"url":"http://example.org/x","valueInteger64":18446744073709551616}'


def _store(kind: str, request: pytest.FixtureRequest) -> CacheStore:
    if kind == "memory":
        return MemoryStore(10, 100_000, lambda: 0.0)
    return RedisStore(request.getfixturevalue("redis_server").url, 2.0)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_answer_the_cache_cannot_keep_as_read_is_asked_again_and_the_others_are_kept(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store = _store(kind, request)
    cached = PatientDataCache(store, 60.0, f"t:{uuid.uuid4()}:", clock=lambda: 0.0)
    scope = CacheScope("client", FHIR_SERVER, "user", "patient")
    big = loads_exact(b'{"resourceType":"Observation","value":2.50,"extension":[' + BIG + b"]}")
    plain = loads_exact(b'{"resourceType":"Observation","value":2.50}')
    cached.keep(scope, [(("Observation", "big"), big), (("Observation", "plain"), plain)], float("inf"))
    wanted = {"big": ("Observation", "big"), "plain": ("Observation", "plain")}
    found = cached.lookup(scope, wanted, deadline=float("inf"))
    assert list(found) == ["plain"] and dumps(found["plain"]) == '{"resourceType":"Observation","value":2.50}'
    if isinstance(store, RedisStore):
        store.close()


def _served_with_a_big_integer(request: Any) -> tuple[int, dict[str, str], bytes]:
    """The FHIR server's answers: every search empty but the Observations', which hold BIG."""
    searched = request.url.split(FHIR_SERVER, 1)[1].lstrip("/").split("?")[0]
    entries = b""
    if searched == "Observation":
        entries = b'{"resource":{"resourceType":"Observation","id":"big","status":"final",'
        entries += b'"subject":{"reference":"Patient/demo-meets"},"code":{"text":"x"},"extension":['
        entries += BIG + b"]}}"
    body = b'{"resourceType":"Bundle","type":"searchset","entry":[' + entries + b"]}"
    return 200, {"Content-Type": "application/fhir+json"}, body


@responses.activate
@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_fhir_answer_holding_an_integer_past_64_bits_is_answered_with_the_cache_on(
    kind: str, request: pytest.FixtureRequest
) -> None:
    anywhere = re.compile(re.escape(FHIR_SERVER) + ".*")
    responses.add_callback(responses.GET, anywhere, _served_with_a_big_integer)
    responses.add(responses.POST, anywhere, status=400, json={})
    body = with_fhir(packaged_sample("order-sign-implant-demo-meets"))
    del body["prefetch"]["painScores"]  # searched for on the FHIR server
    url = None if kind == "memory" else request.getfixturevalue("redis_server").url
    ehr, _ = two_ehrs()
    app = cache_app(cache_settings(FHIR_SERVER, (ehr,), CacheSettings(url=url)), catalog(), HandClock())
    searches = []
    for _ in range(2):  # the second call asks the server again for what was not kept
        response = call(app.test_client(), ehr, body)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        searches.append(sum("/Observation?" in c.request.url for c in responses.calls))
    assert searches[1] == 2 * searches[0] > 0


@responses.activate
def test_a_batch_entry_holding_an_integer_past_64_bits_is_not_taken_for_a_too_large_one() -> None:
    resource = b'{"resourceType":"Observation","id":"big","extension":[' + BIG + b"]}"
    entry = b'{"response":{"status":"200 OK"},"resource":' + resource + b"}"
    answer = b'{"resourceType":"Bundle","type":"batch-response","entry":[' + entry + b"," + entry + b"]}"
    responses.post(FHIR_SERVER, body=answer, content_type="application/fhir+json")
    client = FhirClient(FHIR_SERVER, None, 2.0, max_response_bytes=len(answer) - 1)
    entries = client.batch(["Observation/big", "Observation/big"])
    assert [dumps(e.resource).encode() for e in entries] == [resource, resource]


def test_an_integer_written_minus_zero_is_a_whole_number_where_the_request_wants_one() -> None:
    """`-0` is read as a `DecimalText` (to be written back as `-0`): a check wanting an integer takes
    it as 0, as it did when every integer was read by value."""
    body = with_fhir(packaged_sample("order-select-62362-demo-meets"))
    body["fhirAuthorization"]["expires_in"] = "<seconds>"
    raw = with_literals(body, {"<seconds>": "-0"})
    response = (
        offline_app()
        .test_client()
        .post(f"/cds-services/idds-crd-{body['hook']}", data=raw, content_type=JSON)
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    options = CallOptions.of({"max-cards": loads_exact("-0")})
    assert options.max_cards == 0 and type(options.max_cards) is int


@pytest.mark.parametrize("text", ["-0", " -0 ", "\t-0\r\n"])
def test_an_integer_minus_zero_keeps_its_text_wherever_the_text_ends(text: str) -> None:
    """Every integer is read through one hook that keeps `-0` (perf30): a `-0` that ends the text had no
    delimiter after it for the pattern that chose which integers to read so (the document alone)."""
    for read in (loads_exact(text), loads_request_carefully(text.encode(), REQUEST_LIMITS)):
        assert type(read) is DecimalText and read.text == "-0" and read == 0
        assert dumps([read]) == "[-0]"


def test_the_number_form_does_not_depend_on_a_null_or_on_escaping() -> None:
    document = loads_request(b'{"a":[1.5e-7,0.000001,2.50],"b":"\\u00e9"}', REQUEST_LIMITS)
    with_null = {**document, "c": None}
    assert dumps(document) == '{"a":[1.5e-7,0.000001,2.50],"b":"é"}'
    assert dumps(with_null) == '{"a":[1.5e-7,0.000001,2.50],"b":"é","c":null}'
    assert (
        written_fast(with_null, ensure_ascii=True) == b'{"a":[1.5e-7,0.000001,2.50],"b":"\\u00e9","c":null}'
    )


def test_a_decimal_is_its_value_in_arithmetic_and_keeps_its_text_when_copied() -> None:
    number = loads_exact("2.50")
    assert number == 2.5 and number + 1 == 3.5 and type(number + 1) is float and number < 2.51
    assert isinstance(number, DecimalText) and copy.deepcopy(number).text == "2.50"


def _answer_with_the_baseline_pain_score(score: str) -> Any:
    """The answer to the demo order-sign whose baseline pain score (the trial's reference: the pump
    meets its criterion when the scores after the trial are at least half lower) is written `score`,
    the cards' generated uuids aside."""
    body = packaged_sample("order-sign-implant-demo-meets")
    baseline = body["prefetch"]["painScores"]["entry"][0]["resource"]
    assert baseline["id"] == "demo-meets-obs-pain-baseline"
    del baseline["valueInteger"]
    baseline["valueQuantity"] = {"value": "<score>", "unit": "{score}"}
    raw = with_literals(body, {"<score>": score})
    response = (
        offline_app().test_client().post("/cds-services/idds-crd-order-sign", data=raw, content_type=JSON)
    )
    assert response.status_code == 200
    answered = json.loads(response.get_data())
    return {**answered, "cards": [{**card, "uuid": None} for card in answered["cards"]]}


def test_the_baseline_pain_score_decides_the_answer() -> None:
    """What makes the next test able to fail: a baseline of 5 (the scores after, 3, are not half
    lower) or 0 (a misread) changes the answer given for 8."""
    written_as_8 = _answer_with_the_baseline_pain_score("8")
    assert written_as_8 != _answer_with_the_baseline_pain_score("5")
    assert written_as_8 != _answer_with_the_baseline_pain_score("0")


@pytest.mark.parametrize("literal", ["8.0", "8.00", "80e-1", "0.8e1", "8.000000000000000000001"])
def test_the_engine_judges_a_pain_score_by_its_value_however_written(literal: str) -> None:
    assert _answer_with_the_baseline_pain_score(literal) == _answer_with_the_baseline_pain_score("8")


@pytest.mark.parametrize("literal", LITERALS)
def test_the_fast_and_the_careful_reading_keep_the_same_text(literal: str) -> None:
    raw = f'{{"a": [{literal}, "x-0,"], "b": {{"c": {literal}}}}}'.encode()
    written = raw.decode().replace(" ", "")
    assert dumps(loads_request(raw, REQUEST_LIMITS)) == written
    assert dumps(loads_request_carefully(raw, REQUEST_LIMITS)) == written
