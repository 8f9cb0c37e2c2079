"""A Coverage's payor referenced as `urn:uuid:…`: a bundle-local reference, to the entry of the request's
Bundles with that fullUrl (review23b L5)."""

from __future__ import annotations

import copy
from typing import Any

from service.app import create_app
from tests.demo_support import packaged_sample
from tests.support import open_settings, post_json

MEETS = "order-select-62362-demo-meets"  # a GEHA member (payer-id geha), every criterion met
GEHA_MEETS = "GEHA: 62362 meets all 14 coverage criteria"


def _body(payor: dict[str, Any], name: str = MEETS, payers_sent: bool = False) -> dict[str, Any]:
    """`name`'s sample with no fhirServer, each Coverage's payor as `payor`, `payerOrganizations` sent
    only with `payers_sent`."""
    body = copy.deepcopy(packaged_sample(name))
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    for entry in body["prefetch"]["coverage"]["entry"]:
        entry["resource"]["payor"] = [copy.deepcopy(payor)]
    if not payers_sent:
        del body["prefetch"]["payerOrganizations"]
    return body


def _call(body: dict[str, Any]) -> Any:
    app = create_app(open_settings()).test_client()
    return post_json(app, f"/cds-services/idds-crd-{body['hook']}", body)


def _first_summary(response: Any) -> str:
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["cards"][0]["summary"])


def test_a_payor_named_by_urn_uuid_is_the_entry_of_that_full_url() -> None:
    """A payor referenced as `urn:uuid:…`, the `fullUrl` of the Organization's entry in
    `payerOrganizations` (review23b L5): routed by that Organization (before: "unnamed payer: no
    intrathecal pump coverage rules here")."""
    uuid = "urn:uuid:1b8c2f7e-0000-4000-8000-000000000001"
    body = _body({"reference": uuid}, payers_sent=True)
    body["prefetch"]["payerOrganizations"]["entry"][0]["fullUrl"] = uuid
    assert _first_summary(_call(body)) == GEHA_MEETS
