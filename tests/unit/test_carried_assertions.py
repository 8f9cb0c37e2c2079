"""An order that arrives carrying another system's approval (`satisfied`, a PA number this service
did not issue) for a Coverage the call judges. The answer keeps that approval (an approval issued
elsewhere is never taken back), but it must not describe the opposite, and the audit trail must mark
it as carried, not issued, and not export it as this call's determination (UM review, UM-5)."""

from __future__ import annotations

import json
from typing import Any

from service.app import create_app
from service.catalog import Catalog
from service.metrics import metric_data
from service.settings import StoreSettings
from tests.audit_support import two_coverages_sign
from tests.builders import carried_approval
from tests.support import no_client, open_settings, post_json

GEHA = "Coverage/demo-two-coverages-coverage-geha"
THEIR_PA = "PAS-778899"


def _carrying_their_approval() -> dict[str, Any]:
    """The two-coverages patient on order-sign (GEHA: documentation needed; CBC: meets), its pump
    order carrying a GEHA approval from the payer's PA system."""
    body, order = two_coverages_sign()
    order["extension"] = [carried_approval(GEHA, THEIR_PA, "2026-11-01", "their-assertion")]
    return body


def test_a_kept_approval_is_described_as_kept_and_not_recorded_as_issued(compiled_catalog: Catalog) -> None:
    app = create_app(
        open_settings(store=StoreSettings(url="sqlite://")), compiled_catalog, client_factory=no_client
    )
    body = _carrying_their_approval()
    answer = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body).get_json()
    [action] = [a for a in answer["systemActions"] if a["resource"]["resourceType"] == "ServiceRequest"]
    assert THEIR_PA in json.dumps(action["resource"]), "the approval issued elsewhere is kept"
    geha_part = next(p for p in action["description"].split(" | ") if "GEHA" in p)
    assert "documentation needed" not in geha_part, action["description"]
    assert THEIR_PA in geha_part

    trail = app.extensions["idds_crd"].stores.audit
    [record] = trail.find(body["hookInstance"])
    assert trail.find(THEIR_PA) == [record] == trail.find("their-assertion")  # where it was seen
    carried = [a for a in record["assertions"] if a.get("satisfied_pa_id") == THEIR_PA]
    assert carried and all(a.get("carried") for a in carried), record["assertions"]
    exported = json.dumps(list(metric_data(record)))
    assert THEIR_PA not in exported and "their-assertion" not in exported
