"""The hook's Encounter as the audit row's response keeps it (service/audit_entry.py,
`_annotated_reference`): not its content (review29a L5), but what ties it to exactly what was sent (its
`meta.versionId` and `meta.lastUpdated`, and the SHA-256 of its JSON as it stands in the answer, which an
Encounter without `meta`, as the Inferno presets send it, had nothing else to tie it by), and every
coverage-information repetition sent on it, another source's marked `carried` (review30b L5: dropped)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from service.app import create_app
from service.strict_json import dumps
from tests.audit_support import kept_as_carried
from tests.builders import catalog
from tests.calls import sample
from tests.support import RecordingFactory, RecordingFhirClient, open_settings, post_json, with_fhir

ENCOUNTER = "Encounter/demo-meets-encounter"
COVERAGE_INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"


def another_sources(coverage: str) -> dict[str, Any]:
    """A coverage-information repetition another CRD service put on the Encounter for `coverage`."""
    subs = [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": "covered"},
        {"url": "date", "valueDate": "2026-01-05"},
        {"url": "coverage-assertion-id", "valueString": "another-service-6"},
    ]
    return {"url": COVERAGE_INFO, "extension": subs}


def answered_and_recorded(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The answer's text (as the EHR got it) to an encounter call, and its audit record."""
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(RecordingFhirClient()))
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", with_fhir(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    return response.get_data(as_text=True), record


def encounter_of(answer: dict[str, Any]) -> dict[str, Any]:
    [resource] = [
        a["resource"]
        for a in answer.get("systemActions", [])
        if f"{a['resource']['resourceType']}/{a['resource']['id']}" == ENCOUNTER
    ]
    return resource


@pytest.mark.parametrize(
    "meta", [None, {"lastUpdated": "2026-11-20T09:00:00Z"}], ids=["no-meta", "no-version"]
)
def test_an_encounter_without_a_version_is_kept_tied_to_what_was_sent(meta: dict[str, Any] | None) -> None:
    """With no versionId the row's Encounter keeps `meta.lastUpdated` when it came with one, and always
    the SHA-256 of the Encounter's JSON exactly as the answer sent it: two calls on the same Encounter
    differing in content only are told apart (review30b L5: both were kept as the id alone)."""
    kept = []
    for ward in ("4B", "5C"):
        body = sample("encounter-start-demo-meets")
        encounter = body["prefetch"]["encounter"]
        encounter.pop("meta", None)
        if meta is not None:
            encounter["meta"] = meta
        encounter["extension"] = [{"url": "http://ehr.example.org/ward", "valueString": ward}]
        text, record = answered_and_recorded(body)
        sent = encounter_of(json.loads(text))
        written = dumps(sent)
        assert written in text  # its JSON as it stands in the answer the EHR got
        resource = encounter_of(record["response"])
        assert resource["sent_sha256"] == hashlib.sha256(written.encode("utf-8")).hexdigest()
        assert resource.get("meta") == meta
        kept.append(resource)
    assert kept[0]["sent_sha256"] != kept[1]["sent_sha256"]
    assert "4B" not in str(kept) and "5C" not in str(kept)


def test_another_sources_assertion_sent_on_the_encounter_is_kept_marked_carried() -> None:
    """A repetition another source put on the Encounter, for a Coverage this call does not judge, went back
    in the update sent: the row's Encounter keeps it, marked `carried`, beside the call's own (review30b L5:
    dropped, so the row did not show all the update said), as its coverage, assertion id and digest; it is
    not indexed as this call's assertion (as another payer's on an order is not)."""
    body = sample("encounter-start-demo-meets")
    theirs = another_sources("Coverage/other-plan")
    body["prefetch"]["encounter"]["extension"] = [theirs]
    text, record = answered_and_recorded(body)
    assert dumps(theirs) in text  # sent back as it came
    repetitions = [e for e in encounter_of(record["response"])["extension"] if e["url"] == COVERAGE_INFO]
    assert kept_as_carried(theirs) in repetitions
    [own] = [e for e in repetitions if "carried" not in e]
    assert own != theirs
    assert all(a.get("assertion_id") != "another-service-6" for a in record["assertions"])


@pytest.mark.parametrize(
    "extra",
    [
        [{"url": "note", "valueString": "SSN 123-45-6789"}],
        [{"url": "note", "valueString": "A" * 400_000}],
        [{"url": f"n{i}", "valueString": "x"} for i in range(20_000)],
        [{"url": "reason", "valueCodeableConcept": {"text": "SSN 123-45-6789"}}],
        [{"url": "contact", "valueContactDetail": {"name": "SSN 123-45-6789"}}],
    ],
    ids=["pii-in-a-note", "400-kb", "20000-sub-extensions", "pii-in-a-crd-reason", "pii-in-a-crd-contact"],
)
def test_another_sources_assertion_reaches_the_row_as_its_coverage_assertion_id_and_digest(
    extra: list[dict[str, Any]],
) -> None:
    """Whatever another source's repetition holds beside its coverage and assertion id (a sub-extension of
    its own or of CRD's), the row keeps neither that nor its size: it was kept whole, so an SSN, 400 KB of
    text or 20,000 sub-extensions reached every row of every call on that Encounter (review30i b). The
    digest still ties the row to exactly what was sent."""
    body = sample("encounter-start-demo-meets")
    theirs = another_sources("Coverage/other-plan")
    theirs["extension"] += extra
    body["prefetch"]["encounter"]["extension"] = [theirs]
    text, record = answered_and_recorded(body)
    assert dumps(theirs) in text  # sent back whole, as it came
    response = json.dumps(record["response"])
    assert "123-45-6789" not in response and len(response) < 8_000
    repetitions = [e for e in encounter_of(record["response"])["extension"] if e.get("carried")]
    assert repetitions == [kept_as_carried(theirs)]


@pytest.mark.parametrize("where", ["coverage", "coverage-assertion-id"])
def test_a_carried_assertions_coverage_or_id_is_kept_cut_to_a_bound(where: str) -> None:
    """A coverage reference or assertion id of 400 KB is kept as its first characters, enough to find the
    assertion by (the index holds fewer), not whole."""
    body = sample("encounter-start-demo-meets")
    theirs = another_sources("Coverage/other-plan")
    [sub] = [s for s in theirs["extension"] if s["url"] == where]
    if where == "coverage":
        sub["valueReference"]["reference"] += "A" * 400_000
    else:
        sub["valueString"] += "A" * 400_000
    body["prefetch"]["encounter"]["extension"] = [theirs]
    _, record = answered_and_recorded(body)
    [kept] = [e for e in encounter_of(record["response"])["extension"] if e.get("carried")]
    [value] = [s for s in kept["extension"] if s["url"] == where]
    written = json.dumps(value)
    assert ("another-service-6" in written or "Coverage/other-plan" in written) and len(written) < 2_000
