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

import time
from collections.abc import Mapping
from typing import Any

from service.fhir.client import FhirClient
from service.fhir.prefetch import PrefetchState, interpret
from service.fhir.queries import Query
from service.fhir.query_pool import FhirUse, QueryPool, log_failures
from service.hooks.models import HookRequest, malformed_order
from service.modifiers import MODIFIER
from service.references import belongs_to_patient, parse_reference
from service.registry import ENCOUNTER_PREFETCH
from service.shapes import reference_of

[ENCOUNTER_KEY] = ENCOUNTER_PREFETCH
# R4 Encounter.status (1..1, required binding to encounter-status) but for what was never or will never be
# had, where an assertion about its coverage would be about nothing (`cancelled`; `entered-in-error`: the
# record itself is a mistake). Any other status ("bogus", "", none) is not valid R4 and cannot be sent back
# conformant to CRD's profile-encounter (§resp-47), so it gets nothing either (review29a L1)
HELD = ("planned", "arrived", "triaged", "in-progress", "onleave", "finished", "unknown")


def hook_encounter(
    request: HookRequest,
    client: FhirClient | None,
    pool: QueryPool,
    deadline: float,
    budget: float,
    use: FhirUse,
) -> dict[str, Any] | None:
    """The call's Encounter (context.encounterId) as the EHR gives it, when it may carry coverage
    information (`may_carry`). Prefetched under `encounter` (a resource, or a Bundle holding it); else,
    unless the EHR said it has none (`null`), read from its FHIR server within `budget` seconds (never
    past the call's `deadline`): it is never needed data, so a slow Encounter endpoint costs the answer at
    most that (`fhir.encounter_read_seconds`, review29a: one that hung held every encounter answer until
    the per-request timeout). The read is counted where every query of the call is (`use`)."""
    encounter_id = request.context.encounter_id
    if encounter_id is None:
        return None
    reference = f"Encounter/{encounter_id}"
    given = interpret(request.prefetch, ENCOUNTER_KEY)
    if given.state is PrefetchState.EMPTY:  # known to be none: never asked again (CDS Hooks prefetch)
        return None
    found = next((r for r in given.resources if reference_of(r) == reference), None)
    if found is None and client is not None:
        found = _read(reference, client, pool, min(deadline, time.monotonic() + budget), use)
    if found is None or not may_carry(found, request.context.patient_id, request.fhir.server):
        return None
    return found


def _read(
    reference: str, client: FhirClient, pool: QueryPool, deadline: float, use: FhirUse
) -> dict[str, Any] | None:
    """The Encounter read from the EHR's FHIR server by `deadline`, counted as every query of the call is
    (`FhirUse.count`: the FHIR query metric, the token outcome); None when the server does not have it
    or fails (a warning says why)."""
    query = Query(ENCOUNTER_KEY, "Encounter", reference=reference)
    # the request itself ends by `deadline` (review29f: left to the per-request timeout, a hanging read held
    # its worker, the server's slot and its connection past the answer, and the next calls waited for them)
    bounded = client.bounded(deadline)
    outcome = pool.run(bounded, [query], deadline)[query.key]
    client.refused += bounded.refused  # a read held back is the call's (the held-back metric)
    use.count(query, outcome, focal=True)  # the hook's focal resource (CRDMetricData's resources)
    if outcome.error is not None:
        log_failures({outcome.error: [query.key]})
        return None
    return next((r for r in outcome.resources if reference_of(r) == reference), None)


def may_carry(encounter: Mapping[str, Any], patient_id: str, server: str | None) -> bool:
    """Whether the answer may send this Encounter back with coverage information added: the call's
    patient's (its `subject` names Patient/`patient_id`: another patient's is not this call's, and one
    naming none cannot be told, nor sent back conformant to CRD's profile-encounter, where the subject
    is required, §resp-47; with no FHIR server named by the call, its subject written as an absolute URL
    names a server the call did not name, so whose it is cannot be told either, review29a L6); its status
    one of R4's but cancelled or entered in error (`HELD`); no `modifierExtension`
    (one may change what its status means, and FHIR forbids reading a resource past a modifier not
    understood); and one that can be sent back as it came, valid (`malformed_order`: an `extension`
    that is no array of extensions, an element null or empty, §resp-37 and §resp-47)."""
    return (
        encounter.get("resourceType") == "Encounter"
        and encounter.get("status") in HELD
        and MODIFIER not in encounter
        and belongs_to_patient(encounter, patient_id, unlinked=False, server=server)
        and (server is not None or _relative(encounter.get("subject")))
        and malformed_order(encounter) is None
    )


def _relative(subject: Any) -> bool:
    """Whether a subject `belongs_to_patient` read as the patient's names them relatively (`Patient/id`):
    read by `parse_reference`, the one reading of a reference, whose `base` is the server an absolute one
    names."""
    parsed = parse_reference(subject)
    return parsed is not None and parsed.base is None
