"""Documentation Questionnaires: for each policy, a FHIR Questionnaire asking for the project
assessments its criteria read (clinical-data-contract.md §5). Each item's linkId is the assessment
code, so a QuestionnaireResponse that comes back is read as evidence by the PatientRecord."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.assessments import AssessmentCodeSystem, AssessmentConcept
from service.catalog import Catalog
from service.engine.evaluators import TEST_TYPES
from service.policy import CriterionSpec, Policy

QUESTIONNAIRE_BASE = "http://idds-crd.org/fhir/Questionnaire"


@dataclass(frozen=True)
class Publications:
    """The FHIR resources the service publishes, built once at start-up (never per request)."""

    code_system: dict[str, Any]
    questionnaires: Mapping[str, dict[str, Any]]  # by Questionnaire id
    canonicals: Mapping[str, str]  # policy id → the Questionnaire canonical with version


def publications(catalog: Catalog, version: str) -> Publications:
    policies = catalog.policies.values()
    return Publications(
        catalog.assessments.resource(version),
        {questionnaire_id(p): questionnaire(p, catalog.assessments, version) for p in policies},
        {p.id: canonical(p, version) for p in policies},
    )


_CODE_PARAM_KINDS = ("assessment-code", "scale-code", "scale-codes")


def questionnaire_id(policy: Policy) -> str:
    return f"{policy.id}-documentation"


def canonical(policy: Policy, version: str) -> str:
    """The canonical (with version) that coverage information names in `questionnaire`."""
    return f"{QUESTIONNAIRE_BASE}/{questionnaire_id(policy)}|{version}"


def asked_codes(policy: Policy) -> list[tuple[str, CriterionSpec]]:
    """Each assessment code the policy's criteria read, once, with the first criterion reading it."""
    found: dict[str, CriterionSpec] = {}
    for criterion in policy.all_criteria():
        if criterion.test_type is None:
            continue
        test_type = TEST_TYPES[criterion.test_type]
        codes = list(test_type.asks)
        for name, value in criterion.params.items():
            param = test_type.params.get(name)
            if param is not None and param.kind in _CODE_PARAM_KINDS:
                codes += value if isinstance(value, list) else [value]
        for code in codes:
            found.setdefault(code, criterion)
    return list(found.items())


def _item(concept: AssessmentConcept, system: str, criterion: CriterionSpec) -> dict[str, Any]:
    item: dict[str, Any] = {
        "linkId": concept.code,
        "code": [{"system": system, "code": concept.code, "display": concept.display}],
        "prefix": criterion.section,
        "text": f"{concept.display[0].upper()}{concept.display[1:]} ({criterion.label})",
        "type": concept.answer_type,
    }
    if concept.answer_type == "quantity":
        item["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
                "valueCoding": {"system": "http://unitsofmeasure.org", "code": concept.unit},
            }
        ]
    if concept.options:
        item["answerOption"] = [
            {"valueCoding": {"system": system, "code": option, "display": option}}
            for option in concept.options
        ]
    return item


def questionnaire(policy: Policy, assessments: AssessmentCodeSystem, version: str) -> dict[str, Any]:
    """The policy's documentation Questionnaire as a FHIR R4 resource."""
    return {
        "resourceType": "Questionnaire",
        "id": questionnaire_id(policy),
        "url": f"{QUESTIONNAIRE_BASE}/{questionnaire_id(policy)}",
        "version": version,
        "name": "".join(part.capitalize() for part in questionnaire_id(policy).split("-") if part.isalnum()),
        "title": f"{policy.payer}: documentation for {policy.title}",
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "idds-crd",
        "description": f"What {policy.payer}'s criteria ({policy.version}) read from the chart as project "
        "assessments; answer what the chart does not show.",
        "item": [
            _item(assessments.concept(code), assessments.url, criterion)
            for code, criterion in asked_codes(policy)
        ],
    }
