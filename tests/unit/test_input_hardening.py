"""Hostile and broken input at the HTTP edge (issue 10, point 4): strict JSON, FHIR ids, bounds,
media types, body size and CORS. Every refusal is the right 4xx with an OperationOutcome naming
the place; nothing non-finite gets in from a FHIR server or out in an answer."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from service import routes
from service.app import create_app
from service.fhir.client import FhirClient, FhirError
from service.hooks.models import MAX_ORDERS, MAX_PREFETCH_ENTRIES, MAX_PREFETCH_LINKS
from service.http_input import REQUEST_LIMITS
from service.settings import SettingsError, settings_from_mapping
from service.strict_json import dumps
from tests.builders import catalog
from tests.support import (
    REQUESTS_DIR,
    SELECT_URL,
    SIGN_URL,
    CountedItems,
    assert_outcome,
    load_sample,
    no_client,
    open_settings,
    post_json,
    select_body,
    serving,
    sign_body,
)

DISPATCH_URL = "/cds-services/idds-crd-order-dispatch"
APPOINTMENT_URL = "/cds-services/idds-crd-appointment-book"
FEEDBACK_URL = f"{SIGN_URL}/feedback"


def post_raw(client: FlaskClient, url: str, raw: str | bytes, content_type: str = "application/json") -> Any:
    return client.post(url, data=raw, content_type=content_type)


def _with_order_value(raw_value: str) -> str:
    """The order-sign sample, its first draft order's quantity set to `raw_value` (JSON text)."""
    body = sign_body()
    body["context"]["draftOrders"]["entry"][0]["resource"]["quantityQuantity"] = {"value": "PLACEHOLDER"}
    return json.dumps(body).replace('"PLACEHOLDER"', raw_value)


# --------------------------------------------------------------------------- strict JSON


@pytest.mark.parametrize("raw_value", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_non_finite_numbers_are_refused_naming_the_place(client: FlaskClient, raw_value: str) -> None:
    response = post_raw(client, SIGN_URL, _with_order_value(raw_value))
    issue = assert_outcome(
        response, 400, "context.draftOrders.entry[0].resource.quantityQuantity.value", mention=raw_value
    )
    assert issue["code"] == "structure"


def test_a_finite_number_in_the_same_place_is_accepted(client: FlaskClient) -> None:
    assert post_raw(client, SIGN_URL, _with_order_value("1e300")).status_code == 200


def test_duplicate_keys_are_refused_naming_the_object_and_key(client: FlaskClient) -> None:
    text = json.dumps(select_body())
    nested = text.replace('"patientId": "demo-meets"', '"patientId": "demo-meets", "patientId": "other"')
    assert nested != text
    assert_outcome(post_raw(client, SELECT_URL, nested), 400, "context", mention="'patientId'")
    at_root = "{" + '"hook": "order-select", ' + text[1:]
    assert_outcome(post_raw(client, SELECT_URL, at_root), 400, "$", mention="'hook'")


def test_unpaired_surrogates_are_refused(client: FlaskClient) -> None:
    text = json.dumps(select_body()).replace('"demo-meets"', '"demo-\\ud800"', 1)
    response = post_raw(client, SELECT_URL, text)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["diagnostics"].endswith("which is not text")


@pytest.mark.parametrize("url", [SELECT_URL, SELECT_URL + "/feedback"])
def test_a_repeated_key_that_is_no_text_is_refused_as_no_text(client: FlaskClient, url: str) -> None:
    """The refusal of a repeated key quotes it: an unpaired surrogate in it could not be written out."""
    text = json.dumps(select_body()).replace('"context": {', '"context": {"\\udfff": 1, "\\udfff": 2, ', 1)
    assert_outcome(post_raw(client, url, text), 400, "context", mention="too long or not text")


def test_an_integer_longer_than_python_reads_is_refused_naming_it(client: FlaskClient) -> None:
    text = json.dumps(select_body()).replace('"context": {', '"context": {"n": [1, ' + "9" * 4301 + "], ", 1)
    issue = assert_outcome(post_raw(client, SELECT_URL, text), 400, "context.n[1]", mention="4301 digits")
    assert "set_int_max_str_digits" not in issue["diagnostics"]


@pytest.mark.parametrize(
    ("encoding", "mention"),
    [("utf-16-le", "not valid JSON"), ("utf-16", "not UTF-8"), ("utf-32", "not UTF-8")],
)
def test_a_body_in_another_unicode_encoding_is_refused_before_reading(
    client: FlaskClient, encoding: str, mention: str
) -> None:
    """Python's reader would take UTF-16/32; a body padded so that its UTF-16 bytes look like as many
    keys as it decodes (U+3A22 is `":` in UTF-16LE) would otherwise hide a repeated key."""
    text = json.dumps(select_body()).replace('"context": {', '"context": {"patientId": "someone-else", ', 1)
    padded = text[:-1] + ',"pad":"' + "\u3a22" * 40 + '"}'
    response = post_raw(client, SELECT_URL, padded.encode(encoding))
    issue = assert_outcome(response, 400, "$", mention=mention)  # ASCII in UTF-16LE is UTF-8 with NULs
    assert issue["code"] == "structure"


def test_an_encoded_unpaired_surrogate_or_a_byte_order_mark_is_refused(client: FlaskClient) -> None:
    text = json.dumps(select_body())
    encoded_surrogate = text.replace('"demo-meets"', '"demo-\ud800"', 1).encode("utf-8", "surrogatepass")
    assert_outcome(post_raw(client, SELECT_URL, encoded_surrogate), 400, "$", mention="not UTF-8")
    with_bom = "\ufeff".encode() + text.encode()
    assert_outcome(post_raw(client, SELECT_URL, with_bom), 400, "$", mention="byte order mark")


def test_nesting_inside_a_resource_is_bounded(client: FlaskClient) -> None:
    def nested(repeats: int) -> dict[str, Any]:
        """The resource's meta nests 3 * `repeats` objects and arrays (the resource is 5 deep)."""
        body = sign_body()
        value: Any = "deep"
        for _ in range(repeats):
            value = {"extension": [{"url": "http://x", "valueString": "v", "x": value}]}
        body["context"]["draftOrders"]["entry"][0]["resource"]["meta"] = value
        return body

    assert post_json(client, SIGN_URL, nested(11)).status_code == 200  # 34 levels inside the resource
    response = post_json(client, SIGN_URL, nested(12))
    issue = assert_outcome(response, 400, None)
    assert issue["expression"][0].startswith("context.draftOrders.entry[0].resource.meta.extension[0].x")
    assert f"more than {REQUEST_LIMITS.max_depth} levels" in issue["diagnostics"]


def test_strings_are_bounded(client: FlaskClient) -> None:
    body = sign_body()
    body["context"]["draftOrders"]["entry"][0]["resource"]["note"] = [
        {"text": "x" * (REQUEST_LIMITS.max_string + 1)}
    ]
    assert_outcome(
        post_json(client, SIGN_URL, body),
        400,
        "context.draftOrders.entry[0].resource.note[0].text",
        mention="longer than",
    )


def test_answers_never_carry_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        dumps({"value": float("nan")})
    with pytest.raises(ValueError):
        dumps([float("inf")])
    assert dumps({"a": [1.5, "é"]}) == '{"a":[1.5,"é"]}'


@responses.activate
@pytest.mark.parametrize("raw_value", ["NaN", "Infinity", "1e999"])
def test_a_fhir_resource_with_a_non_finite_number_counts_as_a_failed_read(raw_value: str) -> None:
    responses.get(
        "https://ehr.example.org/fhir/Observation/o1",
        body=f'{{"resourceType": "Observation", "id": "o1", "valueQuantity": {{"value": {raw_value}}}}}',
        content_type="application/fhir+json",
    )
    client = FhirClient("https://ehr.example.org/fhir", None, 2.0)
    with pytest.raises(FhirError, match="not JSON"):
        client.read("Observation/o1")


# --------------------------------------------------------------------------- FHIR ids


def _dispatch_body() -> dict[str, Any]:
    return load_sample("order-dispatch-62362-demo-meets.json")


ID_CASES = [
    *(
        pytest.param(
            SIGN_URL, sign_body, ("context", "patientId"), bad, "context.patientId", id=f"patientId-{name}"
        )
        for name, bad in [("dot", "."), ("dotdot", ".."), ("slash", "a/b"), ("too-long", "x" * 65)]
    ),
    pytest.param(
        SIGN_URL, sign_body, ("context", "encounterId"), "..", "context.encounterId", id="encounterId-dotdot"
    ),
    pytest.param(
        SIGN_URL, sign_body, ("context", "userId"), "Practitioner/..", "context.userId", id="userId-dotdot"
    ),
    pytest.param(
        SIGN_URL,
        sign_body,
        ("context", "draftOrders", "entry", 1, "resource", "id"),
        "..",
        "context.draftOrders.entry[1].resource.id",
        id="order-id-dotdot",
    ),
    pytest.param(
        SELECT_URL,
        select_body,
        ("context", "selections", 0),
        "ServiceRequest/..",
        "context.selections[0]",
        id="selection-dotdot",
    ),
    pytest.param(
        DISPATCH_URL,
        _dispatch_body,
        ("context", "dispatchedOrders", 0),
        "ServiceRequest/.",
        "context.dispatchedOrders[0]",
        id="dispatched-dot",
    ),
]


@pytest.mark.parametrize(("url", "make", "path", "value", "expression"), ID_CASES)
def test_ids_must_be_fhir_ids_and_never_dot_segments(
    client: FlaskClient, url: str, make: Any, path: tuple[Any, ...], value: str, expression: str
) -> None:
    body = make()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert_outcome(post_json(client, url, body), 400, expression)


# --------------------------------------------------------------------------- bounds


def _many_orders(count: int) -> dict[str, Any]:
    body = sign_body()
    template = body["context"]["draftOrders"]["entry"][3]
    entries = [json.loads(json.dumps(template)) for _ in range(count)]
    for i, entry in enumerate(entries):
        entry["resource"]["id"] = f"infusate-{i}"
    body["context"]["draftOrders"]["entry"] = entries
    return body


def test_order_count_is_bounded(client: FlaskClient) -> None:
    assert post_json(client, SIGN_URL, _many_orders(MAX_ORDERS)).status_code == 200
    too_many = post_json(client, SIGN_URL, _many_orders(MAX_ORDERS + 1))
    assert_outcome(too_many, 400, "context.draftOrders.entry")


def test_selection_and_dispatched_counts_are_bounded(client: FlaskClient) -> None:
    body = select_body()
    body["context"]["selections"] = body["context"]["selections"] * (MAX_ORDERS + 1)
    assert_outcome(post_json(client, SELECT_URL, body), 400, "context.selections")
    dispatch = _dispatch_body()
    dispatch["context"]["dispatchedOrders"] = [f"ServiceRequest/sr-{i}" for i in range(MAX_ORDERS + 1)]
    assert_outcome(post_json(client, DISPATCH_URL, dispatch), 400, "context.dispatchedOrders")


def test_appointment_count_is_bounded(client: FlaskClient) -> None:
    body = load_sample("appointment-book-62362-demo-meets.json")
    entry = body["context"]["appointments"]["entry"][0]
    body["context"]["appointments"]["entry"] = [entry] * (MAX_ORDERS + 1)
    assert_outcome(post_json(client, APPOINTMENT_URL, body), 400, "context.appointments.entry")


def _past_the_bound(body: dict[str, Any], key: str) -> dict[str, Any]:
    """`body` with its prefetched `key` Bundle holding one entry more than the bound, each its own resource
    (a long chart's pain scores: a valid request, as its template's query would return them)."""
    bundle = body["prefetch"][key]
    first = bundle["entry"][0]
    bundle["entry"] = [
        {**first, "fullUrl": f"{first['fullUrl']}-{i}", "resource": {**first["resource"], "id": f"r-{i}"}}
        for i in range(MAX_PREFETCH_ENTRIES + 1)
    ]
    bundle["total"] = len(bundle["entry"])
    return body


def test_a_prefetched_bundle_past_the_bound_counts_as_not_prefetched(client: FlaskClient) -> None:
    """A Bundle of more entries than the service reads from prefetch is a valid request (CDS Hooks: the
    key holds what its template's query returns): it is not refused 400, it counts as a prefetch that
    failed (queried where a fhirServer is given), so only what needed it is unavailable (conform33)."""
    whole = json.loads((REQUESTS_DIR / "order-sign-implant-demo-meets.json").read_text())  # every key sent
    response = post_json(client, SIGN_URL, _past_the_bound(whole, "painScores"))
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert f"holds more than {MAX_PREFETCH_ENTRIES} entries" in text  # the card says why scores are unread
    coverage = _past_the_bound(sign_body(), "coverage")
    assert_outcome(post_json(client, SIGN_URL, coverage), 412, "prefetch.coverage", mention="more than")


def _device_coded(body: dict[str, Any]) -> None:
    """The pump's DeviceRequest coded by a Device it names (`codeReference`) that the call holds nowhere:
    the Device is looked for among everything prefetched (service/order_devices.py)."""
    for entry in body["context"]["draftOrders"]["entry"]:
        if entry["resource"]["resourceType"] == "DeviceRequest":
            del entry["resource"]["codeCodeableConcept"]
            entry["resource"]["codeReference"] = {"reference": "Device/pump-1"}


def _coverage_unanswerable(body: dict[str, Any]) -> None:
    """The Coverage's `period.end` written as R4 does not allow, prefetched after the long Bundle: where the
    400 points is looked for in the keys before it (service/hooks/models.py `held_at`)."""
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["period"] = {**coverage.get("period", {}), "end": "2030-1-1"}
    body["prefetch"] = {"painScores": body["prefetch"].pop("painScores"), **body["prefetch"]}


def _pain_scores_decoded_with(monkeypatch: pytest.MonkeyPatch, field: str, items: CountedItems) -> None:
    """Every body decoded from here on holds `items` as its painScores Bundle's `field`, as if sent: a list
    that counts its items read, which no body written as JSON can carry."""
    decode = routes.decode_json_body

    def decoded(raw: bytes) -> Any:
        body = decode(raw)
        body["prefetch"]["painScores"][field] = items
        return body

    monkeypatch.setattr(routes, "decode_json_body", decoded)


@pytest.mark.parametrize(
    ("sample", "url", "change", "status"),
    [
        pytest.param("order-sign-implant-demo-meets", SIGN_URL, None, 200, id="order-sign"),
        pytest.param("order-sign-implant-demo-meets", SIGN_URL, _device_coded, 200, id="device-looked-for"),
        pytest.param("order-sign-implant-demo-meets", SIGN_URL, _coverage_unanswerable, 400, id="held-at"),
        pytest.param("order-dispatch-62362-demo-meets", DISPATCH_URL, None, 200, id="dispatched-looked-for"),
        pytest.param("order-sign-implant-demo-meets", SELECT_URL, None, 400, id="refused-body"),
    ],
)
def test_nothing_walks_the_entries_of_a_prefetched_bundle_past_the_bound(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    sample: str,
    url: str,
    change: Callable[[dict[str, Any]], None] | None,
    status: int,
) -> None:
    """No reader of the raw prefetch walks a Bundle of more entries than are read from prefetch, as
    decoded from the body (a 5 MiB body holds one of 1.7 million `{}` entries): not the key's reading,
    the Device or dispatched-order lookups among everything prefetched, nor the audit row (a refused
    body's too), which says how many entries the key's Bundle held instead (prefetch33: each walked them
    all once conform33 took such a body in rather than refusing it)."""
    entries = CountedItems(
        [
            {"resource": {"resourceType": "Observation", "id": f"o{i}"}}
            for i in range(MAX_PREFETCH_ENTRIES + 1)
        ]
    )
    _pain_scores_decoded_with(monkeypatch, "entry", entries)
    body = json.loads((REQUESTS_DIR / f"{sample}.json").read_text())
    body["hookInstance"] = str(uuid.uuid4())
    if change is not None:
        change(body)
    response = post_json(app.test_client(), url, body)
    assert response.status_code == status, response.get_data(as_text=True)
    assert entries.read == 0
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    kept = record["request"]["prefetch"]["painScores"]
    assert (
        kept["entry"] == f"[{MAX_PREFETCH_ENTRIES + 1} entries, not read (more than {MAX_PREFETCH_ENTRIES})]"
    )
    assert kept["resourceType"] == "Bundle"


def test_nothing_walks_the_links_of_a_prefetched_bundle_past_the_bound(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A searchset's `link` holds a handful of links (self, next, ...); a prefetched Bundle holding more than
    are read is not read at all, as one of too many entries: no reader walks its links (whether it is page
    one of several was asked of all of them, twice a key; a 5 MiB body holds 1.7 million `{}` links), what
    needed the key could not be checked, and the audit row keeps how many links and entries it held
    (review33e: 0.28 s of CPU a call, the row keeping every link)."""
    links = CountedItems([{"relation": "self", "url": "https://ehr.example.org/fhir/x"}] + [{}] * 9_999)
    _pain_scores_decoded_with(monkeypatch, "link", links)
    body = json.loads((REQUESTS_DIR / "order-sign-implant-demo-meets.json").read_text())
    body["hookInstance"] = str(uuid.uuid4())
    held = len(body["prefetch"]["painScores"]["entry"])
    response = post_json(app.test_client(), SIGN_URL, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert links.read == 0
    assert "prefetch 'painScores' holds more than 100 links" in response.get_data(as_text=True)
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    kept = record["request"]["prefetch"]["painScores"]
    assert kept["link"] == "[10000 links, not read (more than 100)]"
    assert kept["entry"] == f"[{held} entries, not read]"


def test_a_prefetched_bundle_at_the_bounds_is_read(app: Flask) -> None:
    """A Bundle of as many entries and links as are read from prefetch is read whole: the bounds are "more
    than" (review33e: a bound one lower went unnoticed by every test)."""
    body = _past_the_bound(
        json.loads((REQUESTS_DIR / "order-sign-implant-demo-meets.json").read_text()), "painScores"
    )
    bundle = body["prefetch"]["painScores"]
    bundle["entry"] = bundle["entry"][:MAX_PREFETCH_ENTRIES]
    bundle["total"] = MAX_PREFETCH_ENTRIES
    bundle["link"] = [
        {"relation": "self", "url": f"https://ehr.example.org/fhir/o{i}"} for i in range(MAX_PREFETCH_LINKS)
    ]
    body["hookInstance"] = str(uuid.uuid4())
    response = post_json(app.test_client(), SIGN_URL, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "holds more than" not in response.get_data(as_text=True)
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    kept = record["request"]["prefetch"]["painScores"]
    assert len(kept["entry"]) == MAX_PREFETCH_ENTRIES and kept["link"] == bundle["link"]


def test_body_size_is_a_setting_and_too_large_is_413() -> None:
    app = create_app(open_settings(max_request_bytes=2000), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), SIGN_URL, sign_body())
    issue = assert_outcome(response, 413, None)
    assert issue["code"] == "too-costly"
    assert "2000 bytes" in issue["diagnostics"]


def test_max_request_bytes_is_read_from_the_configuration() -> None:
    assert settings_from_mapping({"max_request_bytes": 1024}).max_request_bytes == 1024
    with pytest.raises(SettingsError, match="max_request_bytes"):
        settings_from_mapping({"max_request_bytes": 0})


# --------------------------------------------------------------------------- media types


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
        "application/json; charset=latin-1",
        "application/jsonp",
    ],
)
@pytest.mark.parametrize("url", [SIGN_URL, FEEDBACK_URL])
def test_bodies_that_are_not_json_are_415(client: FlaskClient, url: str, content_type: str) -> None:
    response = client.post(url, data=json.dumps(sign_body()), headers={"Content-Type": content_type})
    issue = assert_outcome(response, 415, "$", mention="application/json")
    assert issue["code"] == "not-supported"


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate, gzip"])
@pytest.mark.parametrize("url", [SIGN_URL, FEEDBACK_URL])
def test_compressed_bodies_are_415_naming_the_coding(client: FlaskClient, url: str, coding: str) -> None:
    """Not "not UTF-8" or a 200 on bytes read as they came: the coding is named."""
    raw = json.dumps(sign_body()).encode()
    sent = gzip.compress(raw) if coding == "gzip" else raw
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    issue = assert_outcome(client.post(url, data=sent, headers=headers), 415, "$", mention=coding)
    assert issue["code"] == "not-supported"


def test_an_identity_coding_is_no_coding(client: FlaskClient) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "identity"}
    assert client.post(SIGN_URL, data=json.dumps(sign_body()), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/fhir+json"]
)
def test_json_media_types_are_accepted(client: FlaskClient, content_type: str) -> None:
    response = client.post(SIGN_URL, data=json.dumps(sign_body()), headers={"Content-Type": content_type})
    assert response.status_code == 200


# --------------------------------------------------------------------------- CORS


def cors_app(*origins: str) -> Flask:
    return create_app(open_settings(cors_origins=origins), catalog(), client_factory=no_client)


def _cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def test_no_cors_headers_unless_origins_are_configured(client: FlaskClient) -> None:
    origin = {"Origin": "https://evil.example"}
    assert _cors_headers(client.get("/cds-services", headers=origin)) == {}
    assert _cors_headers(client.options(SIGN_URL, headers=origin)) == {}
    response = client.post(SIGN_URL, json=sign_body(), headers=origin)
    assert response.status_code == 200 and _cors_headers(response) == {}


def test_a_configured_origin_gets_cors_and_its_preflight_answered() -> None:
    client = cors_app("https://ehr.example.org", "http://localhost:3000").test_client()
    preflight = client.options(
        SIGN_URL,
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    headers = _cors_headers(preflight)
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "Access-Control-Allow-Credentials" not in headers
    assert "Origin" in preflight.headers["Vary"]
    call = client.post(SIGN_URL, json=sign_body(), headers={"Origin": "https://ehr.example.org"})
    assert call.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"


def test_an_origin_not_configured_gets_no_cors() -> None:
    client = cors_app("https://ehr.example.org").test_client()
    for origin in ("https://evil.example", "https://ehr.example.org.evil.example", "null"):
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        response = client.options(SIGN_URL, headers=preflight)
        assert _cors_headers(response) == {}, origin
        assert "Origin" in response.headers["Vary"]


def test_any_origin_is_star_and_never_with_credentials() -> None:
    client = cors_app("*").test_client()
    response = client.get("/cds-services", headers={"Origin": "https://anywhere.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "origins",
    [
        ["https://ehr.example.org/"],
        ["https://ehr.example.org/path"],
        ["ehr.example.org"],
        ["*", "https://a.org"],
    ],
)
def test_cors_origins_must_be_origins(origins: list[str]) -> None:
    with pytest.raises(SettingsError, match="cors_origins"):
        settings_from_mapping({"cors_origins": origins})
    assert settings_from_mapping({"cors_origins": ["https://a.org:8443"]}).cors_origins == (
        "https://a.org:8443",
    )


JSON_HEADER = {"Content-Type": "application/json"}


def test_a_chunked_body_over_the_limit_is_413_not_cut_and_read() -> None:
    valid = json.dumps(sign_body()).encode()
    app = create_app(open_settings(max_request_bytes=len(valid) + 5000), catalog(), client_factory=no_client)

    def chunks(padding: int) -> Iterator[bytes]:
        yield valid
        for _ in range(padding):
            yield b" " * 1000  # JSON allows trailing whitespace: only the size may refuse it

    with serving(app) as base:
        too_large = requests.post(base + SIGN_URL, data=chunks(60), headers=JSON_HEADER, timeout=30)
        small = requests.post(base + SIGN_URL, data=chunks(1), headers=JSON_HEADER, timeout=30)
    assert too_large.status_code == 413 and too_large.json()["issue"][0]["code"] == "too-costly"
    assert small.status_code == 200 and small.json()["cards"]
