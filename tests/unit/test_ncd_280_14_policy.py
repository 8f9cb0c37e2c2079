"""CMS NCD 280.14 (as quoted in the GEHA seed): intrathecal opioids for nonmalignant pain, Kaiser's Medicare
members' policy. Each scenario is one patient with per-criterion assertions; the NCD borrows no other payer's
thresholds (no 50 % relief, no psychiatric or substance-use criteria, no opioid-reduction agreement)."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import pytest

from cards.items import FOR_REVIEWER, Episode, Step, missing, to_document
from cards.render import detail, next_steps, summary
from service.catalog import load_catalog
from service.engine.model import Determination, Outcome
from service.questionnaires import publications
from service.record import CLINICAL_TYPES
from tests.builders import (
    ICD,
    LOINC,
    OXYCODONE_TABLET,
    SCT,
    SOPT,
    allergy,
    assessment,
    card_line,
    cards_of,
    coded_assessment,
    condition,
    determine,
    device,
    device_removal_charts,
    drug_failure_forms,
    finding_of,
    infusate_request,
    life_expectancy,
    med_request,
    observation,
    oxycodone,
    pain_trial,
    payer_coverage,
    procedure,
    service_request,
    sign_request,
    statuses,
    steroid_injection,
    without_codes,
)
from tests.calls import sign_with_chart

NCD = "cms-ncd-280-14"
TRIAL = "2025-10-01T09:00:00Z"
TOP = [
    "ncd280.it-opioid",
    "ncd280.severe-intractable-nonmalignant",
    "ncd280.le-3mo",
    "ncd280.noninvasive-history",
    "ncd280.trial-catheter",
    "ncd280.ci.allergy",
    "ncd280.ci.infection",
    "ncd280.ci.body-size",
    "ncd280.ci.programmable-device",
]
TRIAL_PARTS = [
    "ncd280.trial-catheter.catheter",
    "ncd280.trial-catheter.relief",
    "ncd280.trial-catheter.side-effects",
    "ncd280.trial-catheter.acceptance",
]


def medicare(
    chart: list[dict[str, Any]],
    drugs: tuple[dict[str, Any], ...] | None = None,
    order: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Determination:
    return determine(chart, order=order, drugs=drugs, policy_id=NCD, **kwargs)


def nstatus(chart: list[dict[str, Any]], criterion: str, **kwargs: Any) -> str:
    return statuses(medicare(chart, **kwargs))[criterion]


catheter_trial = partial(pain_trial, when=TRIAL)


def ncd_chart() -> list[dict[str, Any]]:
    """Failed back surgery syndrome meeting the NCD text for a morphine pump (with only 25 % trial relief)."""
    return [
        condition(ICD, "M96.1", "2023-03-01", "Postlaminectomy syndrome"),
        oxycodone(),
        observation(LOINC, "75327-7", "2026-10-01", valueQuantity={"value": 10, "code": "a"}),
        *catheter_trial(),
        coded_assessment("it-trial-side-effects", "acceptable"),
        assessment("it-trial-patient-acceptance", valueBoolean=True),
    ]


# --------------------------------------------------------------------------- patient 1: meets


def test_ncd_patient_meets_every_criterion() -> None:
    d = medicare(ncd_chart())
    assert (d.outcome, d.request_kind, d.indication) == (
        Outcome.MEETS,
        "permanent-implant",
        "non-malignant-pain",
    )
    found = statuses(d)
    assert [found[c] for c in [*TOP, *TRIAL_PARTS]] == ["met"] * (len(TOP) + len(TRIAL_PARTS))
    relief = next(c for r in d.criteria for c in r.children if c.id == "ncd280.trial-catheter.relief")
    assert relief.finding.startswith("62 % relief")
    assert all(r.citation.startswith("Centers for Medicare & Medicaid Services (CMS)") for r in d.criteria)


def test_a_newer_loinc_life_expectancy_confirms_a_terminal_code() -> None:
    """Cross-payer review 1: the newer estimate of at least 3 months clears, as the assessment does."""
    terminal = condition(SCT, "300936002", "2026-01-01", "Terminal illness")
    assert (
        nstatus([terminal, life_expectancy(1, "a", "2026-11-10")], "ncd280.le-3mo.no-terminal-conflict")
        == "met"
    )


def test_no_other_payers_criteria_leak_into_the_ncd() -> None:
    chart = [
        *ncd_chart(),
        condition(ICD, "F10.20", "2024-01-01"),  # GEHA / Kaiser substance-use criterion
        condition(ICD, "R45.851", "2026-10-01"),  # GEHA / Kaiser psychiatric criterion
    ]
    d = medicare(chart)
    assert d.outcome == Outcome.MEETS
    ids = {c.id for c in load_catalog().policies[NCD].all_criteria()}
    assert all(i.startswith("ncd280.") for i in ids)


KPWA = "kpwa-implanted-infusion-pumps"


def sopt(code: str, system: str = SOPT, **fields: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": system, "code": code}], **fields}}


def plan(name: str) -> dict[str, Any]:
    return {"class": [{"type": {"text": "plan"}, "value": "KP-1", "name": name}]}


@pytest.mark.parametrize(
    ("product", "policy"),
    [
        (sopt("1"), NCD),
        (sopt("121", "https://nahdo.org/sopt"), NCD),
        ({**sopt("5", text="Medicare Advantage"), **plan("Kaiser Medicare Advantage")}, KPWA),
        (plan("Kaiser Medicare Advantage"), NCD),
        (plan("Kaiser Commercial (non-Medicare)"), KPWA),
    ],
)
def test_a_kaiser_member_is_judged_by_the_ncd_only_for_a_medicare_product(
    product: dict[str, Any], policy: str
) -> None:
    """Through a real order-sign: the coded Coverage type decides, names only when no type is coded."""
    call = sign_request(service_request(), infusate_request(), coverage=payer_coverage("kpwa", **product))
    _, response = sign_with_chart(ncd_chart(), body=call)
    links = [link["url"] for card in cards_of(response["cards"], "guideline") for link in card["links"]]
    assert links and links[0].endswith(f"/policies/{policy}")
    label = {c["source"]["label"] for c in cards_of(response["cards"])}
    assert label == {"Kaiser Permanente Washington"}


# --------------------------------------------------------------------------- patient 2: trial


@pytest.mark.parametrize(
    ("after", "expected", "outcome"),
    [
        (8, "not-met", Outcome.DOES_NOT_MEET),
        (9, "not-met", Outcome.DOES_NOT_MEET),
        (7, "not-documented", Outcome.INSUFFICIENT),  # 12.5 %: adequacy is for the reviewer
        (5, "not-documented", Outcome.INSUFFICIENT),  # 37.5 %
        (4, "met", Outcome.MEETS),  # 50 %
        (0, "met", Outcome.MEETS),
    ],
)
def test_the_trial_must_relieve_pain(after: int, expected: str, outcome: Outcome) -> None:
    chart = [*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, after)]
    d = medicare(chart)
    assert statuses(d)["ncd280.trial-catheter.relief"] == expected
    assert d.outcome == outcome


@pytest.mark.parametrize(
    ("after", "words"),
    [
        (4, "50 % relief (at least 50 %, read as acceptable: the policy sets no number)"),
        (9, "needs more than 0 %"),
    ],
)
def test_the_relief_finding_states_the_bar_that_settles_it(after: int, words: str) -> None:
    """Met from 50 % (below it the reviewer judges), not met at no relief at all; the 50 % is the
    service's reading, not a number the NCD sets."""
    chart = [*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, after)]
    assert words in finding_of(medicare(chart), "ncd280.trial-catheter.relief")


def test_a_single_shot_trial_is_not_a_catheter_trial() -> None:
    chart = [*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, 2, code="62323")]
    d = medicare(chart)
    found = statuses(d)
    assert found["ncd280.trial-catheter.relief"] == "met"
    assert found["ncd280.trial-catheter.catheter"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_a_steroid_infusion_through_a_catheter_is_not_a_catheter_trial() -> None:
    """62324 that infused methylprednisolone is an epidural steroid injection (AMB-34), not the
    preliminary opioid trial (xpayer finding 3)."""
    _, *scores = catheter_trial()
    esi = steroid_injection("62324", TRIAL, "methylprednisolone")
    d = medicare([*without_codes(ncd_chart(), "62324", "72514-3"), esi, *scores])
    found = statuses(d)
    assert found["ncd280.trial-catheter.relief"] == "not-documented"
    assert found["ncd280.trial-catheter.catheter"] == "not-documented"
    assert "epidural steroid injection" in finding_of(d, "ncd280.trial-catheter.catheter")


@pytest.mark.parametrize(
    ("recorded", "part", "expected"),
    [
        (coded_assessment("it-trial-side-effects", "none", "2025-10-03"), "side-effects", "met"),
        (coded_assessment("it-trial-side-effects", "minimal", "2025-10-03"), "side-effects", "met"),
        (coded_assessment("it-trial-side-effects", "unacceptable", "2025-10-03"), "side-effects", "not-met"),
        (
            assessment("it-trial-patient-acceptance", "2025-10-03", valueBoolean=False),
            "acceptance",
            "not-met",
        ),
    ],
)
def test_side_effects_and_acceptance(recorded: dict[str, Any], part: str, expected: str) -> None:
    d = medicare([*ncd_chart(), recorded])
    assert statuses(d)[f"ncd280.trial-catheter.{part}"] == expected
    assert d.outcome == (Outcome.MEETS if expected == "met" else Outcome.DOES_NOT_MEET)


def test_missing_trial_answers_are_not_documented() -> None:
    chart = without_codes(ncd_chart(), "it-trial-side-effects", "it-trial-patient-acceptance")
    found = statuses(medicare(chart))
    assert found["ncd280.trial-catheter.side-effects"] == "not-documented"
    assert found["ncd280.trial-catheter.acceptance"] == "not-documented"
    assert found["ncd280.trial-catheter"] == "not-documented"


# --------------------------------------------------------------------------- patient 3: request kinds


def test_a_trial_request_is_judged_without_the_trial_results() -> None:
    before_the_trial = ncd_chart()[:3]
    d = medicare(before_the_trial, order=service_request("62325"))
    assert d.request_kind == "trial"
    assert "ncd280.trial-catheter" not in statuses(d)
    assert d.outcome == Outcome.MEETS
    assert medicare(before_the_trial).outcome == Outcome.INSUFFICIENT


def test_the_implantation_contraindications_do_not_judge_a_trial() -> None:
    """The NCD: "The implantation of an infusion pump is contraindicated in the following"."""
    pacemaker = condition(ICD, "Z95.0", "2019-01-01", "Presence of cardiac pacemaker")
    trial = medicare([*ncd_chart()[:3], pacemaker], order=service_request("62326"))
    assert trial.request_kind == "trial"
    assert not any(criterion.startswith("ncd280.ci.") for criterion in statuses(trial))
    assert trial.outcome == Outcome.MEETS
    assert nstatus([*ncd_chart(), pacemaker], "ncd280.ci.programmable-device") == "not-met"


def test_replacement_is_judged_like_an_implant() -> None:
    d = medicare([*ncd_chart(), device({"text": "SynchroMed II intrathecal pump"})])
    assert d.request_kind == "replacement"
    assert statuses(d)["ncd280.trial-catheter"] == "met"
    assert statuses(d)["ncd280.ci.programmable-device"] == "met"


@pytest.mark.parametrize(("code", "kind"), [("95991", "refill-analysis"), ("62355", "removal")])
def test_refill_and_removal_are_not_addressed(code: str, kind: str) -> None:
    d = medicare(ncd_chart(), order=service_request(code))
    assert (d.request_kind, d.outcome) == (kind, Outcome.NOT_APPLICABLE)
    assert "NCD 280.14" in d.explanation


# --------------------------------------------------------------------------- patient 4: indications


@pytest.mark.parametrize(
    ("chart", "drug", "indication"),
    [
        (
            [condition(ICD, "C61", "2024-01-01"), condition(ICD, "C79.51", "2025-01-01")],
            infusate_request(),
            "cancer-pain",
        ),
        (
            [condition(ICD, "G80.0", "2010-01-01")],
            infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),
            "spasticity",
        ),
        (
            [condition(ICD, "G24.1", "2019-01-01")],
            infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),
            "dystonia",
        ),
    ],
)
def test_only_nonmalignant_pain_is_in_the_quoted_text(
    chart: list[dict[str, Any]], drug: dict[str, Any], indication: str
) -> None:
    d = medicare(chart, drugs=(drug,))
    assert (d.indication, d.outcome) == (indication, Outcome.NOT_APPLICABLE)
    assert "manual" in d.explanation and "AMB-" not in d.explanation
    assert d.criteria == ()


@pytest.mark.parametrize(
    ("drugs", "expected"),
    [
        ((infusate_request(),), "met"),
        ((infusate_request("hydromorphone 10 MG/ML Injectable Solution", "3423"),), "met"),
        ((infusate_request(), infusate_request("bupivacaine 7.5 MG/ML Injectable Solution", "1815")), "met"),
        ((), "not-documented"),
        ((infusate_request("gentamicin 40 MG/ML Injectable Solution", "0"),), "not-documented"),
    ],
)
def test_the_pump_administers_an_intrathecal_opioid(drugs: tuple[dict[str, Any], ...], expected: str) -> None:
    assert nstatus(ncd_chart(), "ncd280.it-opioid", drugs=drugs) == expected


# --------------------------------------------------------------------------- patient 5: life expectancy


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ({"value": 3, "code": "mo"}, "met"),
        ({"value": 2.9, "code": "mo"}, "not-met"),
        ({"value": 13, "code": "wk"}, "not-met"),
        ({"value": 1, "code": "a"}, "met"),
        ({"value": 120, "code": "d"}, "met"),
        ({"value": 6}, "not-documented"),
    ],
)
def test_life_expectancy_of_3_months_or_more(quantity: dict[str, Any], expected: str) -> None:
    chart = [observation(LOINC, "75327-7", "2026-11-01", valueQuantity=quantity)]
    found = statuses(medicare(chart))
    # the estimate alone decides: a short one is a documented failure (contract §3), not a missing fact
    assert found["ncd280.le-3mo.recorded"] == expected
    assert found["ncd280.le-3mo"] == expected


def test_the_most_recent_form_of_life_expectancy_decides() -> None:
    older_no = [*ncd_chart(), assessment("life-expectancy-ge-3mo", "2025-01-01", valueBoolean=False)]
    d = medicare(older_no)  # the 10-year estimate of 2026-10-01 is newer than the "no"
    assert statuses(d)["ncd280.le-3mo.recorded"] == "met"
    assert "overrules life expectancy at least 3 months: no (1 Jan 2025" in card_line(
        d, "ncd280.le-3mo.recorded"
    )
    recent_short = [
        *older_no[:-1],
        assessment("life-expectancy-ge-3mo", "2026-09-01", valueBoolean=True),
        life_expectancy(8, "wk", "2026-11-15"),
    ]
    d = medicare(recent_short)
    assert statuses(d)["ncd280.le-3mo"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_life_expectancy_answer_and_terminal_codes() -> None:
    answered_no = [*ncd_chart(), assessment("life-expectancy-ge-3mo", "2026-11-01", valueBoolean=False)]
    d = medicare(answered_no)
    assert statuses(d)["ncd280.le-3mo"] == "not-met"  # the answer beats the older 10-year estimate
    assert d.outcome == Outcome.DOES_NOT_MEET
    terminal = condition(SCT, "300936002", "2026-10-15", "Terminal illness")
    found = statuses(medicare([*ncd_chart(), terminal]))
    assert found["ncd280.le-3mo.recorded"] == "met"
    assert found["ncd280.le-3mo.no-terminal-conflict"] == "not-documented"
    confirmed = [
        *ncd_chart(),
        terminal,
        assessment("life-expectancy-ge-3mo", "2026-11-01", valueBoolean=True),
    ]
    assert nstatus(confirmed, "ncd280.le-3mo") == "met"


# --------------------------------------------------------------------------- patient 6: noninvasive methods


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ([coded_assessment("opioid-trial-outcome", "ineffective")], "met"),
        ([coded_assessment("opioid-trial-outcome", "intolerable")], "met"),
        ([coded_assessment("opioid-trial-outcome", "effective")], "not-met"),
        ([allergy("Hydrocodone", "5489", kind="intolerance")], "met"),
        (
            [med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-06-01", "completed")],
            "not-documented",
        ),
        (
            [med_request("Naproxen 500 MG Oral Tablet", "2025-01-01", "2025-03-01", "stopped", "GI upset")],
            "not-documented",
        ),
        ([], "not-documented"),
    ],
)
def test_history_of_no_adequate_response_to_systemic_opioids(
    chart: list[dict[str, Any]], expected: str
) -> None:
    assert nstatus(chart, "ncd280.noninvasive-history") == expected


def test_chronic_pain_diagnosis() -> None:
    assert nstatus([condition(ICD, "G89.4", "2020-01-01")], "ncd280.severe-intractable-nonmalignant") == "met"
    assert nstatus([], "ncd280.severe-intractable-nonmalignant") == "not-documented"


# --------------------------------------------------------------------------- patient 7: contraindications


@pytest.mark.parametrize(
    ("evidence", "criterion"),
    [
        (allergy("Morphine", "7052"), "ncd280.ci.allergy"),
        (allergy("morphine sulfate 15 MG Oral Tablet", "0", kind="allergy"), "ncd280.ci.allergy"),
        (condition(ICD, "T85.735A", "2026-11-10"), "ncd280.ci.infection"),
        (assessment("body-size-adequate", "2026-11-01", valueBoolean=False), "ncd280.ci.body-size"),
        (condition(ICD, "Z96.41", "2018-01-01", "Presence of insulin pump"), "ncd280.ci.programmable-device"),
        (device({"text": "Cochlear implant"}), "ncd280.ci.programmable-device"),
    ],
)
def test_each_contraindication_does_not_meet(evidence: dict[str, Any], criterion: str) -> None:
    d = medicare([*ncd_chart(), evidence])
    assert statuses(d)[criterion] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("Implantable pulse generator, spinal cord stimulation", "not-met"),
        ("Vagus nerve stimulator", "not-met"),
        ("Sacral nerve stimulator (InterStim)", "not-met"),
        ("Deep brain stimulation system", "not-met"),
        ("Spinal cord stimulators (Medtronic Intellis)", "not-met"),
        ("Transcutaneous electrical nerve stimulator", "met"),  # a TENS unit: not implanted
        ("Spinal cord stimulation trial lead", "met"),  # a lead, not the programmable generator
        ("Non-implantable pulse generator", "met"),  # external
    ],
)
def test_a_device_type_naming_a_neurostimulator_in_common_words_is_one(words: str, expected: str) -> None:
    """Contract §3: an active Device "whose type says so (SNOMED or text)"."""
    assert nstatus([*ncd_chart(), device({"text": words})], "ncd280.ci.programmable-device") == expected


def test_a_device_coded_only_in_snomed_is_named_by_its_code() -> None:
    defibrillator = device({"coding": [{"system": SCT, "code": "72506001"}]})
    d = medicare([*ncd_chart(), defibrillator])
    assert statuses(d)["ncd280.ci.programmable-device"] == "not-met"
    assert finding_of(d, "ncd280.ci.programmable-device") == "documented: SNOMED 72506001"


def test_body_size_proxies_only_ask() -> None:
    cachexia = condition(ICD, "R64", "2026-09-01", "Cachexia")
    d = medicare([*ncd_chart(), cachexia])
    assert statuses(d)["ncd280.ci.body-size"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT
    confirmed = [*ncd_chart(), cachexia, assessment("body-size-adequate", "2026-10-01", valueBoolean=True)]
    assert nstatus(confirmed, "ncd280.ci.body-size") == "met"


def test_old_infection_and_removed_stimulator_do_not_count() -> None:
    chart = [
        *ncd_chart(),
        condition(ICD, "N39.0", "2024-01-01", status=None),
        procedure("63685", "2021-01-01"),
        procedure("63688", "2022-01-01"),
    ]
    found = statuses(medicare(chart))
    assert found["ncd280.ci.infection"] == "met"
    assert found["ncd280.ci.programmable-device"] == "met"


# --------------------------------------------------------------------------- patient 8: nothing recorded


def test_empty_chart_is_insufficient_and_absence_meets_the_contraindications() -> None:
    d = medicare([])
    found = statuses(d)
    assert d.outcome == Outcome.INSUFFICIENT
    assert "not-met" not in found.values()
    for criterion in TOP[5:]:
        assert found[criterion] == "met", criterion


def test_unavailable_data_never_counts_as_absence() -> None:
    d = medicare([], unavailable={t: "HTTP 503" for t in CLINICAL_TYPES})
    found = statuses(d)
    for criterion in ("ncd280.ci.infection", "ncd280.ci.programmable-device", "ncd280.ci.allergy"):
        assert found[criterion] == "not-documented", criterion


# --------------------------------------------------------------------------- the policy file itself


@pytest.mark.parametrize(("chart", "expected"), drug_failure_forms(OXYCODONE_TABLET, "opioid-trial-outcome"))
def test_the_most_recent_form_of_opioid_failure_decides(chart: list[dict[str, Any]], expected: str) -> None:
    assert nstatus(chart, "ncd280.noninvasive-history") == expected


@pytest.mark.parametrize(("chart", "expected"), device_removal_charts())
def test_the_most_recent_of_a_device_and_its_removal_decides(
    chart: list[dict[str, Any]], expected: str
) -> None:
    assert nstatus(chart, "ncd280.ci.programmable-device") == expected


def test_a_documented_relief_the_ncd_leaves_to_the_reviewer_asks_for_nothing_more() -> None:
    """12.5 % relief: the NCD names no figure ("adequately acceptable"), so the payer's reviewer judges
    it. The cards neither ask to document what is recorded nor call the order undocumented."""
    d = medicare([*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, 7)])
    assert d.outcome == Outcome.INSUFFICIENT
    assert summary(Episode.of([d])).startswith(f"{d.payer}: 1 item left to the payer's reviewer for 62362")
    text = detail(Episode.of([d]))
    assert text.startswith("**Left to the payer's reviewer**") and "item to document" not in text
    assert f"— {FOR_REVIEWER}" in text
    headline, steps = next_steps(Episode.of([d]))
    assert headline == "how to leave 1 item to the payer's reviewer for {orders}"
    assert [step for step, _ in steps] == [Step.REVIEW]


def test_a_reviewer_item_beside_items_to_document_is_counted_apart() -> None:
    chart = [*without_codes(ncd_chart(), "62324", "72514-3", "75327-7"), *catheter_trial(8, 7)]
    d = medicare(chart)
    headline, steps = next_steps(Episode.of([d]))
    reviewer = "how to document 1 item and leave 1 to the payer's reviewer for {orders}"
    assert headline == reviewer, [s for s in steps]
    assert detail(Episode.of([d])).startswith("**Documentation needed**")


def test_an_order_not_covered_is_said_so_whatever_is_left_open() -> None:
    """Not met beside criteria the EHR's data left unchecked: the card opens "not covered", never
    "could not be checked" (it did, when every open item was one to check again)."""
    chart = [*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, 9)]
    d = medicare(chart, unavailable={"AllergyIntolerance": "the FHIR server did not answer"})
    assert d.outcome == Outcome.DOES_NOT_MEET
    assert all(i.step == Step.RECHECK for i in missing(d)) and missing(d)
    assert detail(Episode.of([d])).startswith("**Not covered as ordered**")


def reviewer_and_acceptance_open() -> list[dict[str, Any]]:
    """12.5 % relief (for the reviewer) and the patient's acceptance not recorded (to document)."""
    chart = without_codes(ncd_chart(), "62324", "72514-3", "it-trial-patient-acceptance")
    return [*chart, *catheter_trial(8, 7)]


def test_the_summary_names_an_item_to_act_on_before_one_left_to_the_reviewer() -> None:
    d = medicare(reviewer_and_acceptance_open())
    labels = [i.label for i in missing(d)]
    assert labels.index("Trial relieved pain") < labels.index("Patient accepts the pump"), labels
    assert "for 62362 — Patient accepts" in summary(Episode.of([d]))


def test_the_form_asks_nothing_the_reviewer_is_left_to_judge() -> None:
    forms = publications(load_catalog(), "test")
    review_only = medicare([*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, 7)])
    assert forms.form_for(review_only, to_document(review_only)) is None
    open_ones = medicare(reviewer_and_acceptance_open())
    form = forms.form_for(open_ones, to_document(open_ones))
    assert form is not None
    asked = [item["linkId"] for item in form["item"]]
    assert asked == ["it-trial-patient-acceptance"], asked


def test_the_crd_reason_keeps_what_is_left_to_the_reviewer_apart() -> None:
    call = sign_request(
        service_request(),
        infusate_request(),
        coverage=payer_coverage("kpwa", **plan("Kaiser Medicare Advantage")),
    )
    _, response = sign_with_chart(reviewer_and_acceptance_open(), body=call)
    reasons = [
        sub["valueCodeableConcept"]["text"]
        for action in response["systemActions"]
        for extension in action["resource"].get("extension", [])
        for sub in extension.get("extension", [])
        if sub["url"] == "reason"
    ]
    assert reasons and all("left to the payer's reviewer: Trial relieved pain" in r for r in reasons), reasons
    assert all(r.index("Patient accepts the pump") < r.index("left to the payer's reviewer") for r in reasons)


def test_another_order_line_left_to_the_reviewer_is_said_so() -> None:
    review_only = medicare([*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, 7)])
    not_covered = medicare([*without_codes(ncd_chart(), "62324", "72514-3"), *catheter_trial(8, 9)])
    text = detail(Episode.of([not_covered, dataclasses.replace(review_only, order_name="62350 catheter")]))
    assert "62350 catheter: left to the payer's reviewer." in text


def test_a_card_led_by_one_line_names_what_only_its_other_lines_leave_open() -> None:
    """A trial line listed before the pump, both needing the life expectancy: the card speaks for the
    pump (judged against more criteria), and the reviewer item only the pump has stands on both cards,
    naming the line it concerns."""
    chart = [*without_codes(ncd_chart(), "62324", "72514-3", "75327-7"), *catheter_trial(8, 6)]
    trial, pump = medicare(chart, order=service_request("62324")), medicare(chart)
    assert (trial.outcome, pump.outcome) == (Outcome.INSUFFICIENT, Outcome.INSUFFICIENT)
    episode = Episode.of([trial, pump])
    assert episode.lead is pump
    text = detail(episode)
    assert "❔ **Trial relieved pain (for 62362 only)**" in text
    assert "❔ **Life expectancy recorded >= 3 months**:" in text
    assert "62324" in text.splitlines()[0] and "documentation needed." not in text
    headline, steps = next_steps(episode)
    assert headline == "how to document 1 item and leave 1 to the payer's reviewer for {orders}"
    assert (Step.REVIEW, f"Trial relieved pain (for 62362 only): {FOR_REVIEWER}") in steps
