"""Cards that carry suggestions: draft orders the clinician can accept with one click (CRD
"Identify Additional Orders": only `create` actions, no links)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from cards.render import card
from service.codes import CANONICAL_SYSTEM, CPT, Code
from service.engine.model import CriterionResult, Determination
from service.wording import aside, listing


def trial_order(
    trial: Code,
    patient_id: str,
    implant_codes: str,
    today: date,
    requester: str | None = None,
    encounter_id: str | None = None,
) -> dict[str, Any]:
    """A draft ServiceRequest for the intrathecal trial, naming the implant it comes before, with
    what the CRD ServiceRequest profile requires (status, intent, code, subject, authoredOn, and
    the calling user as requester)."""
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"trial-{trial.code}-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": CANONICAL_SYSTEM[CPT], "code": trial.code, "display": trial.display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": today.isoformat(),
    }
    if requester:
        order["requester"] = {"reference": requester}
    if encounter_id:
        order["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return {
        **order,
        "note": [
            {
                "text": f"Intrathecal trial before the permanent implant ({implant_codes}), "
                "as the payer's coverage criteria require."
            }
        ],
    }


def trial_first_card(
    missing: Sequence[tuple[str, Determination, Sequence[CriterionResult]]],
    trials: Sequence[Code],
    patient_id: str,
    today: date,
    requester: str | None = None,
    encounter_id: str | None = None,
) -> dict[str, object]:
    """The implant orders with no trial anywhere: propose each trial code as a draft order.

    `missing` names each Determination (order and payer) as the decision cards name its payer (with
    its plan, when the answer judges two of one payer's: "GEHA, Medicare plan") beside its undocumented
    trial criteria; a criterion is said once, naming every payer it is missing for: two payers routed to
    one policy (both sending Medicare members to the NCD) miss the same one, which read twice, once per
    payer (payer25). The title and the label name each payer once, listed as the detail lists them.
    """
    payers = listing(list(dict.fromkeys(d.payer for _, d, _ in missing)))
    orders = [d.order_reference for _, d, _ in missing]
    codes = ", ".join(dict.fromkeys(d.billing_code for _, d, _ in missing))
    asking: dict[tuple[str, str], dict[str, None]] = {}  # per criterion (label, section), its payers
    for named, _, criteria in missing:
        for c in criteria:
            asking.setdefault((c.label, c.section), {})[named] = None
    policies = "; ".join(
        f"{listing(list(named))}: {label} {aside(section)}" for (label, section), named in asking.items()
    )
    detail = (
        f"No intrathecal trial is on the chart or among the draft orders, and the coverage criteria "
        f"for the permanent implant ({codes}) ask for a successful trial — {policies}. "
        "Choose the trial to add it as a draft order."
    )
    return card(
        f"{payers}: order the trial before {codes}",
        detail,
        payers,
        "clinical-reminder",
        orders,
        indicator="warning",
        selectionBehavior="at-most-one",
        suggestions=[
            {
                "label": f"Order trial: CPT {trial.code} {trial.display or ''}".strip(),
                "uuid": str(uuid.uuid4()),
                "actions": [
                    {
                        "type": "create",
                        "description": f"Add a draft order for the intrathecal trial (CPT {trial.code}).",
                        "resource": trial_order(trial, patient_id, codes, today, requester, encounter_id),
                    }
                ],
            }
            for trial in trials
        ],
    )
