"""Two Coverages of one call sharing one id (review29d L8).

Coverage information names its Coverage by `Coverage/<id>`. A prefetch Bundle (or a search) listing
the same Coverage twice was answered twice: two coverage-information repetitions naming one Coverage on
each order and on the hook's Encounter. The same Coverage given twice as written is one, answered
once. Two written otherwise under one id (another payer, another status) are ambiguous input: which
of the two the coverage information names cannot be told. Prefetched, a 400 naming the second one's
`.id`; read from the EHR's FHIR server, a 412 saying so, as for any Coverage that cannot be answered
for as written (routing.unanswerable_of)."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from service.app import create_app
from tests.builders import catalog
from tests.contract_support import ChartServer
from tests.demo_support import packaged_sample
from tests.support import RecordingFactory, no_client, open_settings, post_json, with_fhir

SAMPLES = {"order-sign": "order-sign-implant-demo-meets", "encounter-start": "encounter-start-demo-meets"}
COVERAGE_INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
PAYER_ID = "http://idds-crd.org/fhir/sid/payer-id"


def _posted(hook: str, body: dict[str, Any], read: str, v22: bool) -> Any:
    """`body` posted to `hook`, its Coverages prefetched or `read` from the EHR's FHIR server."""
    if v22:
        body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    factory: Any = no_client
    if read == "searched":
        body = with_fhir(body)
        coverages = [e["resource"] for e in body["prefetch"].pop("coverage")["entry"]]
        organizations = [
            e["resource"] for e in body["prefetch"].get("payerOrganizations", {}).get("entry", [])
        ]
        factory = RecordingFactory(ChartServer(coverages + organizations))
    app = create_app(open_settings(), catalog(), client_factory=factory)
    return post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)


def _twice(hook: str, change: Any = None) -> dict[str, Any]:
    """`hook`'s sample whose prefetch Bundle lists its Coverage twice, the second changed by `change`."""
    body = packaged_sample(SAMPLES[hook])
    entries = body["prefetch"]["coverage"]["entry"]
    second = copy.deepcopy(entries[0]["resource"])
    if change is not None:
        change(second)
    entries.append({"resource": second})
    return body


def _named(response: Any) -> Counter[tuple[str, str]]:
    """How many coverage-information repetitions name each (resource, Coverage) in the answer."""
    found: Counter[tuple[str, str]] = Counter()
    for action in response.get_json().get("systemActions", []):
        resource = action["resource"]
        for extension in resource.get("extension", []):
            if extension.get("url") != COVERAGE_INFO:
                continue
            [coverage] = [
                s["valueReference"]["reference"] for s in extension["extension"] if s["url"] == "coverage"
            ]
            found[(f"{resource['resourceType']}/{resource['id']}", coverage)] += 1
    return found


@pytest.mark.parametrize("v22", [False, True], ids=["2.0.1", "2.2"])
@pytest.mark.parametrize("read", ["prefetched", "searched"])
@pytest.mark.parametrize("hook", list(SAMPLES))
def test_the_same_coverage_given_twice_is_answered_once(hook: str, read: str, v22: bool) -> None:
    response = _posted(hook, _twice(hook), read, v22)
    assert response.status_code == 200, response.get_data(as_text=True)
    named = _named(response)
    assert named and set(named.values()) == {1}, named
    if hook == "encounter-start":  # the hook's Encounter too
        assert any(resource.startswith("Encounter/") for resource, _ in named), named


def _version_2(coverage: dict[str, Any]) -> None:
    coverage["meta"] = {"versionId": "2", "lastUpdated": "2026-12-01T00:00:00Z", "tag": [{"code": "x"}]}


def _narrated(coverage: dict[str, Any]) -> None:
    coverage["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">GEHA</div>'}


@pytest.mark.parametrize("change", [_version_2, _narrated], ids=["meta", "text"])
@pytest.mark.parametrize("read", ["prefetched", "searched"])
@pytest.mark.parametrize("hook", list(SAMPLES))
def test_two_versions_of_one_coverage_differing_in_meta_or_text_alone_are_answered_once(
    hook: str, read: str, change: Any
) -> None:
    """review30c: two versions a server returned (a paged search an update straddled), or one with its
    narrative and one without, are one Coverage: answered once, not a 400 or 412 refusing the call."""
    response = _posted(hook, _twice(hook, change), read, False)
    assert response.status_code == 200, response.get_data(as_text=True)
    named = _named(response)
    assert named and set(named.values()) == {1}, named


def _kaiser(coverage: dict[str, Any]) -> None:
    coverage["payor"] = [{"identifier": {"system": PAYER_ID, "value": "kpwa"}}]


def _cancelled(coverage: dict[str, Any]) -> None:
    coverage["status"] = "cancelled"


@pytest.mark.parametrize("v22", [False, True], ids=["2.0.1", "2.2"])
@pytest.mark.parametrize("change", [_kaiser, _cancelled], ids=["another payer", "cancelled"])
@pytest.mark.parametrize("hook", list(SAMPLES))
def test_two_coverages_written_otherwise_under_one_id_are_a_400_naming_the_second(
    hook: str, change: Any, v22: bool
) -> None:
    """Both were answered (GEHA's and Kaiser's determinations each naming the one Coverage), or the
    active one alone where the other is cancelled: which of the two the EHR holds as that Coverage
    cannot be told."""
    response = _posted(hook, _twice(hook, change), "prefetched", v22)
    assert response.status_code == 400, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["prefetch.coverage.entry[1].resource.id"]
    assert "another Coverage of the call, written otherwise" in issue["diagnostics"]


@pytest.mark.parametrize("hook", list(SAMPLES))
def test_two_coverages_written_otherwise_under_one_id_read_from_the_server_are_a_412(hook: str) -> None:
    """Both were read from the server: the 412 says so, never that the Coverage "could not be read from the
    EHR's FHIR server" (review30c L6), and asks for it as prefetch, not for a reachable server."""
    response = _posted(hook, _twice(hook, _kaiser), "searched", False)
    assert response.status_code == 412, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["prefetch.coverage"]
    said = issue["diagnostics"]
    assert "written otherwise" in said and "as the EHR's FHIR server holds it" in said
    assert said.startswith("coverage was read from the EHR's FHIR server but cannot be answered for (")
    assert "could not be read" not in said and said.endswith("; send it as prefetch")


def test_two_coverages_of_two_ids_are_answered_each_as_before() -> None:
    """The control: another id is another Coverage (CRD 2.0.1 answers each; 2.2 refuses two)."""
    body = _twice("order-sign", lambda c: c.update(id=f"{c['id']}-other"))
    response = _posted("order-sign", copy.deepcopy(body), "prefetched", False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len({coverage for _, coverage in _named(response)}) == 2
    assert _posted("order-sign", body, "prefetched", True).status_code == 400
