"""The project's assessment CodeSystem (clinical-data-contract.md §5), loaded from
`policies/assessment-codes.yaml`: the one list of assessment codes, which the policy compiler checks
against and which the service publishes as a FHIR CodeSystem resource."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.yamlsource import SourceError, check_schema, load


class AssessmentCodesError(SourceError):
    """The assessment-codes file is invalid; the message names the file, line and element."""


@dataclass(frozen=True)
class AssessmentConcept:
    code: str
    display: str
    value: str
    answer_type: str  # boolean, integer, quantity or choice: how a Questionnaire asks for it
    unit: str | None = None
    options: tuple[str, ...] = ()
    qualifier: str | None = None  # a component qualifying the value (contract §5: a reduction's `scale`)
    qualifier_options: tuple[str, ...] = ()
    # each qualifier option with the assessment code it names (`scale` ashworth: ashworth-score)
    qualifier_codes: tuple[tuple[str, str], ...] = ()


def qualifier_link(code: str, qualifier: str) -> str:
    """The linkId of the sub-question qualifying an assessment's answer in a documentation
    Questionnaire (`it-trial-scale-reduction.scale`): a form answer carries no Observation component."""
    return f"{code}.{qualifier}"


@dataclass(frozen=True)
class AssessmentCodeSystem:
    url: str
    name: str
    title: str
    concepts: tuple[AssessmentConcept, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.concepts)

    @property
    def displays(self) -> dict[str, str]:
        """code → display: the words a card uses for each assessment."""
        return {c.code: c.display for c in self.concepts}

    @property
    def qualified(self) -> dict[str, dict[str, str]]:
        """code → its qualifier's options → the assessment code each names (`it-trial-scale-reduction`:
        `ashworth` → `ashworth-score`), for the codes whose qualifier names codes."""
        return {c.code: dict(c.qualifier_codes) for c in self.concepts if c.qualifier_codes}

    def concept(self, code: str) -> AssessmentConcept:
        return next(c for c in self.concepts if c.code == code)

    def resource(self, version: str) -> dict[str, Any]:
        """The FHIR R4 CodeSystem resource, complete, for serving at /fhir/CodeSystem/{id}."""
        return {
            "resourceType": "CodeSystem",
            "id": self.url.rsplit("/", 1)[-1],
            "url": self.url,
            "version": version,
            "name": self.name,
            "title": self.title,
            "status": "active",
            "experimental": False,
            "publisher": "idds-crd",
            "description": "Assessments that document intrathecal drug delivery coverage criteria: used as "
            "Observation.code and as the item codes of the documentation Questionnaires.",
            "caseSensitive": True,
            "content": "complete",
            "count": len(self.concepts),
            "concept": [
                {
                    "code": c.code,
                    "display": c.display,
                    "definition": f"{c.display}. Value: {c.value.replace('`', '')}.",
                }
                for c in self.concepts
            ],
        }


def load_assessment_codes(path: Path) -> AssessmentCodeSystem:
    """Load and schema-check the assessment codes; a code listed twice is an error."""
    try:
        source = load(path)
        check_schema(source, "assessment-codes.schema.json")
    except SourceError as exc:
        raise AssessmentCodesError(str(exc)) from None
    raw = source.data
    concepts = tuple(
        AssessmentConcept(
            c["code"],
            c["display"],
            c["value"],
            c["answer"]["type"],
            c["answer"].get("unit"),
            tuple(c["answer"].get("options", ())),
            c["answer"].get("qualifier", {}).get("name"),
            tuple(c["answer"].get("qualifier", {}).get("options", ())),
            tuple(c["answer"].get("qualifier", {}).get("codes", {}).items()),
        )
        for c in raw["concepts"]
    )
    seen: set[str] = set()
    for i, concept in enumerate(concepts):
        if concept.code in seen:
            raise AssessmentCodesError(f"{source.at(('concepts', i, 'code'))}: code '{concept.code}' twice")
        seen.add(concept.code)
    for i, concept in enumerate(concepts):
        named = dict(concept.qualifier_codes)
        where = source.at(("concepts", i, "answer", "qualifier", "codes")) if named else ""
        if named and sorted(named) != sorted(concept.qualifier_options):
            raise AssessmentCodesError(
                f"{where}: codes must name a code for each option ({', '.join(concept.qualifier_options)}), "
                f"and only those; they name {', '.join(named)}"
            )
        unknown = [code for code in named.values() if code not in seen]
        if unknown:
            raise AssessmentCodesError(f"{where}: {', '.join(unknown)} not among the assessment codes")
    return AssessmentCodeSystem(raw["url"], raw["name"], raw["title"], concepts)
