"""The hook's Encounter, read so that it can carry coverage information (encounter-start/-discharge).

CRD allows `ext-coverage-information` on an Encounter, and the Inferno Da Vinci CRD kit's
encounter-start and encounter-discharge groups look for it there: a service whose behaviour says so
(`HookBehaviour.on_encounter`, service/registry.py) annotates the call's Encounter beside the pump
orders it judges. This module is the gather side of that: the Encounter from the EHR's prefetch under
CRD's own key (`ENCOUNTER_PREFETCH`), else one read from the EHR's FHIR server within the call's
deadline, and whether it is one the answer may send back. It is never required data: an Encounter
that cannot be had, or may not be sent back, gets no coverage information and the call is answered
as it was (no 412, no card: it is not a pump order, and the clinician has nothing to do about it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.fhir.client import FhirClient
from service.fhir.prefetch import PrefetchState, interpret
from service.fhir.queries import Query
from service.fhir.query_pool import QueryPool, log_failures
from service.hooks.models import HookRequest, malformed_order
from service.modifiers import MODIFIER
from service.observability import observe_fhir_query
from service.references import belongs_to_patient
from service.registry import ENCOUNTER_PREFETCH
from service.shapes import reference_of

[ENCOUNTER_KEY] = ENCOUNTER_PREFETCH
# an Encounter in these states was never or will never be had: an assertion about its coverage would be
# about nothing (R4 encounter-status; `entered-in-error`: the record itself is a mistake)
NOT_HELD = ("cancelled", "entered-in-error")


def hook_encounter(
    request: HookRequest, client: FhirClient | None, pool: QueryPool, deadline: float
) -> dict[str, Any] | None:
    """The call's Encounter (context.encounterId) as the EHR gives it, when it may carry coverage
    information (`may_carry`); None otherwise. Prefetched under `encounter` (a resource, or a Bundle
    holding it); else, unless the EHR said it has none (`null`), read from its FHIR server."""
    encounter_id = request.context.encounter_id
    if encounter_id is None:
        return None
    reference = f"Encounter/{encounter_id}"
    given = interpret(request.prefetch, ENCOUNTER_KEY)
    if given.state is PrefetchState.EMPTY:  # known to be none: never asked again (CDS Hooks prefetch)
        return None
    found = next((r for r in given.resources if reference_of(r) == reference), None)
    if found is None and client is not None:
        found = _read(reference, client, pool, deadline)
    server = request.fhir.server
    return found if found is not None and may_carry(found, request.context.patient_id, server) else None


def _read(reference: str, client: FhirClient, pool: QueryPool, deadline: float) -> dict[str, Any] | None:
    """The Encounter read from the EHR's FHIR server within the call's deadline, timed and counted as
    any query is; None when the server does not have it or fails (a warning says why)."""
    query = Query(ENCOUNTER_KEY, "Encounter", reference=reference)
    outcome = pool.run(client, [query], deadline)[query.key]
    observe_fhir_query(query.resource_type, outcome.seconds, failed=outcome.error is not None)
    if outcome.error is not None:
        log_failures({outcome.error: [query.key]})
        return None
    return next((r for r in outcome.resources if reference_of(r) == reference), None)


def may_carry(encounter: Mapping[str, Any], patient_id: str, server: str | None) -> bool:
    """Whether the answer may send this Encounter back with coverage information added: the call's
    patient's (its `subject` names Patient/`patient_id`: another patient's is not this call's, and one
    naming none cannot be told, nor sent back conformant to CRD's profile-encounter, where the subject
    is required, §resp-47); not cancelled or entered in error (`NOT_HELD`); no `modifierExtension`
    (one may change what its status means, and FHIR forbids reading a resource past a modifier not
    understood); and one that can be sent back as it came, valid (`malformed_order`: an `extension`
    that is no array of extensions, an element null or empty, §resp-37 and §resp-47)."""
    return (
        encounter.get("resourceType") == "Encounter"
        and encounter.get("status") not in NOT_HELD
        and MODIFIER not in encounter
        and belongs_to_patient(encounter, patient_id, unlinked=False, server=server)
        and malformed_order(encounter) is None
    )
