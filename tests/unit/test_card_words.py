"""Card text speaks a clinician's language (issue 11, point 3): no assessment code, no FHIR element or
resource-type name, no id of a document the project does not ship, no raw day count, no ISO date.

Two scans: the texts the cards are made of (every Determination's explanation, labels, findings,
evidence, what-to-document steps and could-not-check reasons, for every policy and scenario chart),
whatever layout renders them; and the rendered cards and coverage-information reasons of every
packaged sample request and every scenario call (tests/card_scenarios.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.demo.runner import request_files
from service.engine.model import CriterionResult, Determination
from service.fhirdates import human_date, human_days, human_span, parse_datetime
from service.policy import CardWords, PolicyError
from tests.builders import catalog
from tests.calls import answer
from tests.card_scenarios import answer_with_chart, determinations, scenarios

FHIR_NAMES = (
    "statusReason",
    "reasonCode",
    "reasonReference",
    "valueQuantity",
    "valueBoolean",
    "valueInteger",
    "valueString",
    "valueCodeableConcept",
    "clinicalStatus",
    "verificationStatus",
    "authoredOn",
    "recordedDate",
    "onsetDateTime",
    "effectiveDateTime",
    "performedDateTime",
    "dispenseRequest",
    "validityPeriod",
    "fhirServer",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "QuestionnaireResponse",
    "DocumentReference",
    "ServiceRequest",
)
# Resource types that are also English words and parts of names ("National Coverage Determination",
# "Device status"): the type name is the capitalised one after an article ("no active Coverage").
TYPE_WORDS = ("Observation", "Condition", "Device", "Procedure", "Coverage", "Encounter", "Appointment")
UNSHIPPED_DOCUMENT = re.compile(r"\bAMB-\d")
DAY_COUNT = re.compile(r"\b\d+ days since\b")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# Ids the card layout prints (order and evidence references such as ServiceRequest/abc): identifiers,
# not words; the card layout decides whether a card shows them.
REFERENCE = re.compile(r"\b[A-Z][A-Za-z]+/[A-Za-z0-9.\-]+")


def assessment_codes() -> list[str]:
    return sorted(catalog().assessments.codes, key=len, reverse=True)


NOTHING_MET = re.compile(r"✅ 0 of \d+")
# a plural after a one: "1 criteria", and a quantity's unit written in the plural ("1 points": s29 F2)
PLURAL_OF_ONE = re.compile(r"(?<![\d.,])\b1 (?:criteria|points|grades|months|weeks|days|hours|years)\b")
# a whole number written with a decimal ("2.0 months recorded": s29 F2); the cards say "2 months"
WHOLE_AS_DECIMAL = re.compile(r"(?<![\d.,])\b\d+\.0\b(?!\.\d)")


def problems(text: str, iso_dates: bool = True) -> list[str]:
    """What in `text` a clinician should not have to read."""
    found = [
        f"assessment code {c!r}" for c in assessment_codes() if re.search(rf"(?<![\w-]){c}(?![\w-])", text)
    ]
    found += [f"FHIR name {n!r}" for n in FHIR_NAMES if re.search(rf"\b{n}\b", text)]
    found += [
        f"resource type {t!r}"
        for t in TYPE_WORDS
        if re.search(rf"\b(?:a|an|the|active|any|no|each|every|one)\s+{t}s?\b", text)
    ]
    for pattern, what in ((UNSHIPPED_DOCUMENT, "unshipped document id"), (DAY_COUNT, "raw day count")):
        found += [f"{what} {m.group(0)!r}" for m in pattern.finditer(text)]
    if iso_dates:
        found += [f"ISO date {m.group(0)!r}" for m in ISO_DATE.finditer(text)]
    found += [f"a check mark over nothing met {m.group(0)!r}" for m in NOTHING_MET.finditer(text)]
    found += [f"a plural of one {m.group(0)!r}" for m in PLURAL_OF_ONE.finditer(text)]
    found += [f"a whole number as a decimal {m.group(0)!r}" for m in WHOLE_AS_DECIMAL.finditer(text)]
    return found


def criterion_texts(c: CriterionResult) -> Iterator[tuple[str, str]]:
    yield f"{c.id} label", c.label
    yield f"{c.id} finding", c.finding
    if c.how_to_document:
        yield f"{c.id} how_to_document", c.how_to_document
    if c.unchecked_reason:
        yield f"{c.id} unchecked", c.unchecked_reason
    for e in (*c.evidence, *c.overruled):
        yield f"{c.id} evidence", e.text
    for child in c.children:
        yield from criterion_texts(child)


def determination_texts(d: Determination) -> Iterator[tuple[str, str]]:
    yield "explanation", d.explanation
    for c in d.criteria:
        yield from criterion_texts(c)


@pytest.fixture(scope="module")
def every_determination() -> dict[str, Determination]:
    return determinations()


def test_the_scenarios_reach_every_outcome_of_every_policy(
    every_determination: dict[str, Determination],
) -> None:
    """The scan below is only as good as the texts it sees: every policy meets, fails and misses something."""
    for policy_id in catalog().policies:
        seen = {d.outcome.value for name, d in every_determination.items() if name.startswith(policy_id)}
        assert {"meets", "does-not-meet", "insufficient"} <= seen, (policy_id, seen)


def test_texts_the_cards_are_made_of_use_a_clinicians_words(
    every_determination: dict[str, Determination],
) -> None:
    found = sorted(
        {
            f"{problem}: {where}: {text[:160]}"
            for name, d in every_determination.items()
            for where, text in determination_texts(d)
            for problem in problems(text)
        }
    )
    assert found == [], f"{len(found)} texts:\n" + "\n".join(found[:60])


def card_texts(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every card's summary and detail, and every coverage-information reason text."""
    for card in body.get("cards", []):
        yield "summary", card["summary"]
        yield "detail", card.get("detail", "")
    for action in body.get("systemActions", []):
        for extension in action.get("resource", {}).get("extension", []):
            for sub in extension.get("extension", []):
                if sub.get("url") == "reason":
                    yield "reason", sub["valueCodeableConcept"].get("text", "")


def readable(text: str) -> str:
    return REFERENCE.sub("«reference»", text)


def calls() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in request_files():
        yield path.stem, answer(path.stem)[0]
    for name, (request, chart) in scenarios().items():
        yield name, answer_with_chart(request, chart)


def test_rendered_cards_use_a_clinicians_words() -> None:
    """The cards as an EHR shows them."""
    found = sorted(
        {
            f"{problem}: {name} {where}: {line.strip()[:200]}"
            for name, body in calls()
            for where, text in card_texts(body)
            for line in readable(text).splitlines()
            for problem in problems(line)
        }
    )
    assert found == [], f"{len(found)} lines:\n" + "\n".join(found[:60])


# --- the mechanisms behind the words ----------------------------------------------------------------

DISPLAYS = {"it-trial-side-effects": "side effects of the trial", "psych-clearance": "patient cleared"}


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Record the it-trial-side-effects assessment.", "Record “side effects of the trial”."),
        ("Record its psych-clearance result.", "Record its “patient cleared” result."),
        (
            "Record the it-trial-side-effects and psych-clearance assessments.",
            "Record “side effects of the trial” and “patient cleared”.",
        ),
        ("Ask whether the {assessment:psych-clearance}.", "Ask whether the patient cleared."),
        ("A not-psych-clearance-like word stays", "A not-psych-clearance-like word stays"),
    ],
)
def test_the_compiler_names_assessments_by_their_display(written: str, read: str) -> None:
    assert CardWords(DISPLAYS)(written, "here") == read


def test_a_reading_keeps_its_codes_for_the_reviewer() -> None:
    assert (
        CardWords(DISPLAYS)("the psych-clearance answer", "here", card=False) == "the psych-clearance answer"
    )


@pytest.mark.parametrize(
    ("written", "refused"),
    [
        ("Manual review (AMB-12).", "'AMB-12' names a document"),
        ("Record {assessment:nope}.", "'{assessment:nope}'"),
    ],
)
def test_the_compiler_refuses_unshipped_ids_and_unknown_codes(written: str, refused: str) -> None:
    with pytest.raises(PolicyError) as caught:
        CardWords(DISPLAYS)(written, "geha.yaml:12: criteria.0.label")
    assert refused in str(caught.value) and "geha.yaml:12" in str(caught.value)


def test_shipped_steps_name_the_assessment_by_its_current_display() -> None:
    spec = next(
        c
        for c in catalog().policies["geha-idds-chronic-pain"].all_criteria()
        if c.id == "geha.trial.no-side-effects"
    )
    display = catalog().assessments.concept("it-trial-side-effects").display
    assert spec.how_to_document == f"Record “{display}”."


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        ("2023-04-20", "2026-11-21", "3 years 7 months"),
        ("2025-01-01", "2025-05-01", "4 months"),
        ("2025-01-31", "2025-06-15", "4 months 15 days"),
        ("2026-09-26", "2026-11-21", "8 weeks"),
        ("2026-10-17", "2026-11-21", "5 weeks"),
        ("2025-01-01", "2025-01-31", "4 weeks 2 days"),
        ("2026-11-11", "2026-11-21", "10 days"),
        ("2026-11-20", "2026-11-21", "1 day"),
    ],
)
def test_durations_read_as_a_person_writes_them(start: str, end: str, words: str) -> None:
    assert human_span(parse_datetime(start), parse_datetime(end)) == words  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("days", "words"),
    [(10, "10 days"), (42, "6 weeks"), (182, "26 weeks"), (183, "183 days"), (365, "1 year")],
)
def test_day_thresholds_are_never_rounded(days: float, words: str) -> None:
    assert human_days(days) == words


def test_dates_are_short_and_unambiguous() -> None:
    assert human_date(date(2023, 4, 20)) == "20 Apr 2023"


@given(st.dates() | st.datetimes())
def test_a_date_reads_as_the_c_locale_writes_it(moment: date) -> None:
    """Day, English month abbreviation and year, as `strftime` writes them in the C locale."""
    assert human_date(moment) == f"{moment.day} {moment:%b %Y}"
