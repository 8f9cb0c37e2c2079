"""References read one way everywhere (service/references.py): `belongs_to_patient`'s shortcut for a
plainly written `Patient/id` answers exactly as reading the reference does, and so does `patients_own`,
which works that shortcut out once for a whole chart."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from service.references import (
    PATIENT_LINKS,
    belongs_to_patient,
    local_reference,
    parse_reference,
    patients_own,
)
from tests.fuzz_support import seeded

IDS = st.sampled_from(["p1", "demo-meets", "a.b", "..", ".", "", "a_b", "x" * 64, "x" * 65, "é", "p1 "])
REFERENCES = st.one_of(
    IDS.map(lambda i: f"Patient/{i}"),
    IDS.map(lambda i: f"https://ehr.example.org/fhir/Patient/{i}"),
    IDS.map(lambda i: f"Patient/{i}/_history/2"),
    IDS.map(lambda i: f" Patient/{i}"),
    IDS.map(lambda i: f"Group/{i}"),
    st.text(max_size=12),
)
LINK_VALUES = st.one_of(
    REFERENCES.map(lambda r: {"reference": r}),
    REFERENCES,
    st.none(),
    st.integers(),
    st.just({"display": "no reference"}),
)


def _by_reading(resource: dict[str, Any], patient_id: str, unlinked: bool) -> bool:
    for link in PATIENT_LINKS:
        if link in resource:
            parsed = parse_reference(resource[link])
            return parsed is not None and parsed.local == f"Patient/{patient_id}"
    return unlinked


@seeded(300)
@given(
    st.dictionaries(st.sampled_from([*PATIENT_LINKS, "performer"]), LINK_VALUES, max_size=3),
    IDS,
    st.booleans(),
)
def test_belongs_to_patient_answers_as_reading_the_reference_does(
    resource: dict[str, Any], patient_id: str, unlinked: bool
) -> None:
    assert belongs_to_patient(resource, patient_id, unlinked) == _by_reading(resource, patient_id, unlinked)


@seeded(300)
@given(
    st.lists(st.dictionaries(st.sampled_from([*PATIENT_LINKS, "performer"]), LINK_VALUES, max_size=3)),
    IDS,
    st.booleans(),
)
def test_a_charts_resources_are_the_patients_own_as_each_is_read_alone(
    resources: list[dict[str, Any]], patient_id: str, unlinked: bool
) -> None:
    """`patients_own` keeps, in their order, the resources `belongs_to_patient` says are the patient's."""
    kept = patients_own(resources, patient_id, unlinked)
    assert kept == [r for r in resources if _by_reading(r, patient_id, unlinked)]
    alone = [r for r in resources if belongs_to_patient(r, patient_id, unlinked)]
    assert [id(r) for r in kept] == [id(r) for r in alone]  # the same objects, not copies


def test_a_plain_reference_to_the_patient_belongs_and_one_to_another_does_not() -> None:
    assert belongs_to_patient({"subject": {"reference": "Patient/p1"}}, "p1", unlinked=False)
    assert not belongs_to_patient({"subject": {"reference": "Patient/p2"}}, "p1", unlinked=False)
    assert not belongs_to_patient({"subject": {"reference": "Patient/a_b"}}, "a_b", unlinked=True)


def test_an_absolute_link_belongs_only_when_it_names_the_calls_fhir_server() -> None:
    """The same id on another server is another person; the call's own server however it is written."""
    server = "https://ehr.example.org/fhir/r4"

    def linked(reference: str) -> dict[str, Any]:
        return {"subject": {"reference": reference}}

    for own in (
        "https://ehr.example.org/fhir/r4/Patient/p1",
        "https://EHR.Example.org/fhir/r4/Patient/p1",
        "https://ehr.example.org:443/fhir/r4/Patient/p1",
        "https://ehr.example.org./fhir/r4/Patient/p1",
        "http://ehr.example.org/fhir/r4/Patient/p1",  # written by the EHR behind its TLS proxy
    ):
        assert belongs_to_patient(linked(own), "p1", unlinked=False, server=server + "/"), own
    assert not belongs_to_patient(
        linked("https://ehr.example.org:8443/fhir/r4/Patient/p1"), "p1", False, server
    )
    elsewhere = linked("https://elsewhere.example/fhir/Patient/p1")
    assert not belongs_to_patient(elsewhere, "p1", unlinked=False, server=server)
    assert not belongs_to_patient(linked("https://ehr.example.org/fhir/r5/Patient/p1"), "p1", False, server)
    assert belongs_to_patient(linked("Patient/p1"), "p1", unlinked=False, server=server)
    assert belongs_to_patient(elsewhere, "p1", unlinked=False)  # no server named: nothing to tell it by


def test_a_reference_has_its_local_form_only_on_the_calls_fhir_server() -> None:
    """`Type/id` names a resource of the call's server: written relative, or as that server's URL
    (scheme and host in any case, a trailing slash); another server's of the same id is none."""
    server = "https://ehr.example.org/fhir/"
    for own in (
        "Coverage/c1",
        "https://ehr.example.org/fhir/Coverage/c1",
        "HTTPS://EHR.Example.org/fhir/Coverage/c1/_history/2",
        "https://ehr.example.org/fhir/Coverage/c1/",
    ):
        assert local_reference(own, server) == "Coverage/c1", own
        assert local_reference({"reference": own}, server.rstrip("/")) == "Coverage/c1", own
    elsewhere = "https://other-ehr.example.com/fhir/Coverage/c1"
    assert local_reference(elsewhere, server) is None
    assert local_reference(elsewhere) == "Coverage/c1"  # no server named: nothing to tell it by
