"""Documentation Questionnaires: for each policy, a FHIR Questionnaire asking for the project
assessments its criteria read (clinical-data-contract.md §5). Each item's linkId is the assessment
code, so a QuestionnaireResponse that comes back is read as evidence by the PatientRecord.

A call names the form that asks only what its chart did not show: the policy's form cut to the
items its undocumented criteria read. Such a form's id is the policy form's id, the digest of the
policy form's version and a hexadecimal mask over its items
(`geha-idds-chronic-pain-documentation-efb47b5c-18`), so any subset can be served later without
storing anything, the same gaps always give the same canonical, and a part made for an earlier
version of the form (its items changed, so the mask's bits mean others) names no form at all."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from service.assessments import AssessmentCodeSystem, AssessmentConcept, qualifier_link
from service.catalog import Catalog
from service.engine.checks import TEST_TYPES
from service.engine.model import Determination
from service.policy import CriterionSpec, Policy
from service.wording import aside

QUESTIONNAIRE_BASE = "http://idds-crd.org/fhir/Questionnaire"
MASK = re.compile(r"[1-9a-f][0-9a-f]{0,15}")  # a part's items, as bits over the whole form's
DIGEST = re.compile(r"[0-9a-f]{8}")  # the whole form's version digest, as a part id names it


@dataclass(frozen=True)
class Publications:
    """The FHIR resources the service publishes, built once at start-up (never per request)."""

    code_system: dict[str, Any]
    questionnaires: Mapping[str, dict[str, Any]]  # the policies' whole forms, by Questionnaire id
    criterion_codes: Mapping[str, Mapping[str, tuple[str, ...]]]  # policy id → criterion id → codes

    def questionnaire(self, resource_id: str) -> dict[str, Any] | None:
        """A policy's form, or the part of it a mask in the id selects; None for any other id."""
        if resource_id in self.questionnaires:
            return self.questionnaires[resource_id]
        whole, digest, mask = self._parted(resource_id)
        if whole is None or digest != _digest(whole) or not MASK.fullmatch(mask):
            return None
        bits = int(mask, 16)
        if bits >= (1 << len(whole["item"])) - 1:
            return None  # the whole form has one id only; larger masks name no item
        return _part(whole, resource_id, bits)

    def earlier_part(self, resource_id: str) -> str | None:
        """The current canonical of the form `resource_id` is a part of, when that part was made for
        another version of it (whose items differ: the mask cannot be read against today's), or named
        before parts named their version (`…-documentation-6`: which items it meant is not known)."""
        whole, digest, mask = self._parted(resource_id)
        if whole is not None and digest != _digest(whole) and DIGEST.fullmatch(digest):
            return canonical_of(whole)
        unversioned = self.questionnaires.get(resource_id.rpartition("-")[0])
        if unversioned is not None and MASK.fullmatch(mask):
            return canonical_of(unversioned)
        return None

    def _parted(self, resource_id: str) -> tuple[dict[str, Any] | None, str, str]:
        """(the whole form a part id names, the form version digest in it, its mask)."""
        rest, _, mask = resource_id.rpartition("-")
        base, _, digest = rest.rpartition("-")
        return self.questionnaires.get(base), digest, mask

    def form_for(self, determination: Determination, asked: Collection[str]) -> dict[str, Any] | None:
        """The form asking what this determination lacks (the whole form or a part of it): the
        criteria `asked` (those its cards ask to document: never what the chart records for the
        payer's reviewer, what could not be read, or the criteria of an indication the order may not
        be for); None when none of them can be answered on a form."""
        codes_of = self.criterion_codes.get(determination.policy_id, {})
        wanted = {code for criterion in asked for code in codes_of.get(criterion, ())}
        whole = self.questionnaires[f"{determination.policy_id}-documentation"]
        bits = sum(1 << i for i, item in enumerate(whole["item"]) if item["linkId"] in wanted)
        if bits == 0:
            return None
        if bits == (1 << len(whole["item"])) - 1:
            return whole
        return _part(whole, f"{whole['id']}-{_digest(whole)}-{bits:x}", bits)


def _digest(whole: Mapping[str, Any]) -> str:
    """The digest of a whole form's items that its version carries (`0.1.0+efb47b5c`)."""
    return str(whole["version"]).rpartition("+")[2]


def canonical_of(form: Mapping[str, Any]) -> str:
    """The canonical (url|version) by which coverage information and Tasks name a form."""
    return f"{form['url']}|{form['version']}"


def publications(catalog: Catalog, version: str) -> Publications:
    policies = catalog.policies.values()
    return Publications(
        catalog.assessments.resource(version),
        {questionnaire_id(p): questionnaire(p, catalog.assessments, version) for p in policies},
        {p.id: {c.id: tuple(codes_read(c)) for c in p.all_criteria()} for p in policies},
    )


def _part(whole: dict[str, Any], resource_id: str, bits: int) -> dict[str, Any]:
    items = [item for i, item in enumerate(whole["item"]) if bits >> i & 1]
    return {
        **whole,
        "id": resource_id,
        "url": f"{QUESTIONNAIRE_BASE}/{resource_id}",
        "name": f"{whole['name']}{bits:X}",
        "title": f"{whole['title']} (what the chart did not show)",
        "derivedFrom": [f"{whole['url']}|{whole['version']}"],
        "item": items,
    }


def questionnaire_id(policy: Policy) -> str:
    return f"{policy.id}-documentation"


def codes_read(criterion: CriterionSpec) -> list[str]:
    """The assessment codes one criterion reads: per test (each evidence form), its type's own and
    those its parameters name."""
    return [code for test in criterion.tests for code in TEST_TYPES[test.type].codes_named(test.params)]


def asked_codes(policy: Policy) -> list[tuple[str, CriterionSpec]]:
    """Each assessment code the policy's criteria read, once, with the first criterion reading it."""
    found: dict[str, CriterionSpec] = {}
    for criterion in policy.all_criteria():
        for code in codes_read(criterion):
            found.setdefault(code, criterion)
    return list(found.items())


def _item(concept: AssessmentConcept, system: str, criterion: CriterionSpec) -> dict[str, Any]:
    item: dict[str, Any] = {
        "linkId": concept.code,
        "code": [{"system": system, "code": concept.code, "display": concept.display}],
        "prefix": criterion.section,
        # the criterion set apart as the cards set it: its label may hold parentheses of its own (review28d)
        "text": f"{concept.display[0].upper()}{concept.display[1:]} {aside(criterion.label)}",
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
        item["answerOption"] = _options(system, concept.options)
    if concept.qualifier:  # answered under the value, as its Observation's component carries it
        item["item"] = [
            {
                "linkId": qualifier_link(concept.code, concept.qualifier),
                "text": concept.qualifier.capitalize(),
                "type": "choice",
                "answerOption": _options(system, concept.qualifier_options),
            }
        ]
    return item


def _options(system: str, options: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"valueCoding": {"system": system, "code": option, "display": option}} for option in options]


def questionnaire(policy: Policy, assessments: AssessmentCodeSystem, version: str) -> dict[str, Any]:
    """The policy's documentation Questionnaire as a FHIR R4 resource. Its version is the service
    version plus a digest of the items, so a canonical never names two different sets of questions
    (a policy edited without a new release gets a new version, and so do its parts)."""
    items = [
        _item(assessments.concept(code), assessments.url, criterion)
        for code, criterion in asked_codes(policy)
    ]
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:8]
    return {
        "resourceType": "Questionnaire",
        "id": questionnaire_id(policy),
        "url": f"{QUESTIONNAIRE_BASE}/{questionnaire_id(policy)}",
        "version": f"{version}+{digest}",
        "name": "".join(part.capitalize() for part in questionnaire_id(policy).split("-") if part.isalnum()),
        "title": f"{policy.payer}: documentation for {policy.title}",
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "idds-crd",
        "description": f"What {policy.payer}'s criteria {aside(policy.version)} read from the chart as "
        "project assessments; answer what the chart does not show.",
        "item": items,
    }
