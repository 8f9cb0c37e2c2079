"""CRDMetricData's `resources` (service/metrics.py, `_resource_use`) leave out the hook's focal resources
the call read: the IG defines them as the information "other than the 'focal' resources (orders,
encounter, appointment) for the hook" the payer accessed. The audit row lists every read, a query
entry's `focal` saying how many of its count were the hook's focal resources (`FhirUse.focal`: the
encounter hooks' Encounter, the dispatched and booked orders); review30i: the metric listed them."""

from __future__ import annotations

from typing import Any

from service.app import create_app
from service.fhir.client import SearchResult
from service.metrics import metric_data
from tests.builders import catalog, meeting_chart
from tests.calls import sample
from tests.support import RecordingFactory, RecordingFhirClient, open_settings, post_json, with_fhir

ENCOUNTER = "Encounter/demo-meets-encounter"


class EncounterServer(RecordingFhirClient):
    """A FHIR server holding the meeting chart and the hook's Encounter."""

    def __init__(self, encounter: dict[str, Any]) -> None:
        super().__init__()
        self.encounter = encounter

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        super().search(resource_type, params)
        return SearchResult([r for r in meeting_chart() if r["resourceType"] == resource_type], [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        return self.encounter if reference == ENCOUNTER else None


def encounter_start_record() -> dict[str, Any]:
    """The audit record of an encounter-start whose Encounter was not prefetched, so read."""
    body = sample("encounter-start-demo-meets")
    server = EncounterServer(body["prefetch"].pop("encounter"))
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
    response = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", with_fhir(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert ("read", ENCOUNTER) in server.calls
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    return record


def test_the_hooks_encounter_read_is_in_the_row_but_not_in_crd_metric_data() -> None:
    """The encounter-start's Encounter, read from the EHR, is in the row's resources as this call's query,
    marked focal; CRDMetricData's resources leave it out, and keep every other type the row lists."""
    record = encounter_start_record()
    [listed] = [r for r in record["fhir_access"]["resources"] if r["type"] == "Encounter"]
    assert listed == {"type": "Encounter", "count": 1, "prefetch": False, "source": "query", "focal": 1}
    [metric] = metric_data(record)
    kinds = {r["type"] for r in metric["resources"]}
    assert kinds == {r["type"] for r in record["fhir_access"]["resources"]} - {"Encounter"}
    assert "Patient" in kinds


def test_a_row_written_before_sources_and_focal_exports_as_it_did() -> None:
    """A row with no `source` or `focal` (written before review30b L4) exports each entry as it stands."""
    record = encounter_start_record()
    old = [
        {"type": "Condition", "count": 3, "prefetch": False},
        {"type": "Patient", "count": 1, "prefetch": True},
    ]
    record["fhir_access"]["resources"] = old
    [metric] = metric_data(record)
    assert metric["resources"] == old
