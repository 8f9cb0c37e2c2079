"""The Request Form Completion card (CRD): for a payer that does not run DTR, a suggestion that puts
the documentation form in the chart as a Task (CRD profile-taskquestionnaire), with the form
itself created only if the EHR does not have it yet (`davinci-crd.if-none-exist`).

CRD forbids this where DTR applies (§resp-59), so it is offered only for payers configured with
`dtr: false`; the answers come back as a QuestionnaireResponse that the next call reads. Pure:
dicts in, dicts out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cards.coverage_information import CRD_TEMP
from cards.render import card
from service.engine.model import Determination
from service.questionnaires import canonical_of

TASK_PROFILE = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/profile-taskquestionnaire"
SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"


@dataclass(frozen=True)
class FormRequest:
    """One form a payer without DTR needs completed, for these orders of this patient."""

    form: Mapping[str, Any]
    determinations: Sequence[Determination]
    requester: Mapping[str, Any]  # the payer Organization
    patient_id: str
    encounter_id: str | None
    today: date

    @property
    def codes(self) -> str:
        return ", ".join(dict.fromkeys(d.billing_code for d in self.determinations))

    @property
    def canonical(self) -> str:
        return canonical_of(self.form)


def form_task(request: FormRequest) -> dict[str, Any]:
    """A Task asking for the form to be completed for prior authorization of the orders."""
    form, determinations = request.form, request.determinations
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"form-{uuid.uuid4().hex[:12]}",
        "meta": {"profile": [TASK_PROFILE]},
        "basedOn": [{"reference": ref} for ref in dict.fromkeys(d.order_reference for d in determinations)],
        "status": "ready",
        "intent": "order",
        "code": {"coding": [{"system": SDC_TEMP, "code": "complete-questionnaire"}]},
        "description": f"Complete '{form['title']}' for {request.codes}",
        "for": {"reference": f"Patient/{request.patient_id}"},
        "authoredOn": request.today.isoformat(),
        "requester": dict(request.requester),
        "reasonCode": {"coding": [{"system": CRD_TEMP, "code": "reason-prior-auth"}]},
        "input": [
            {
                "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire"}], "text": "questionnaire"},
                "valueCanonical": request.canonical,
            },
            {
                "type": {"coding": [{"system": CRD_TEMP, "code": "after-completion-action"}]},
                "valueCodeableConcept": {"coding": [{"system": CRD_TEMP, "code": "prior-auth-include"}]},
            },
        ],
    }
    if request.encounter_id:
        task["encounter"] = {"reference": f"Encounter/{request.encounter_id}"}
    return task


def form_completion_card(request: FormRequest) -> dict[str, object]:
    """One card per payer form: the questions, and the Task (and form) to add to the chart."""
    form, first, codes, canonical = request.form, request.determinations[0], request.codes, request.canonical
    questions = [f"{i}. {item['text']}" for i, item in enumerate(form["item"], 1)]
    detail = "\n".join(
        [
            f"{first.payer} needs answers the chart does not show for {codes}, and takes them on its own "
            "form rather than through DTR. Accept to add the form to the chart as a task; the answers, "
            "once saved, are read on the next order-sign.",
            "",
            *questions,
        ]
    )
    return card(
        f"{first.payer}: complete the documentation form for {codes} ({len(questions)} question(s))",
        detail,
        first.payer,
        "clinical-reminder",
        [d.order_reference for d in request.determinations],
        selectionBehavior="at-most-one",
        suggestions=[
            {
                "label": f"Add the {first.payer} documentation form to the chart",
                "uuid": str(uuid.uuid4()),
                "actions": [
                    {
                        "type": "create",
                        "description": f"Ask for the form {canonical} to be completed (Task).",
                        "resource": form_task(request),
                    },
                    {
                        "type": "create",
                        "description": f"Add the form {canonical} if the EHR does not hold it yet.",
                        "resource": dict(form),
                        "extension": {
                            "davinci-crd.if-none-exist": f"url={form['url']}&version={form['version']}"
                        },
                    },
                ],
            }
        ],
    )
