"""Infections and cancers as real-world (Synthea-shaped) charts carry them: an infection coded by a SNOMED CT
descendant, or named only in a diagnosis's words, is no "none documented"; a generic chronic-pain reason
beside an active cancer is cancer pain too.

Review s19 (synthea19, H1 and H2): each test failed on the code as reviewed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from service.catalog import load_catalog
from service.demo.synthea import SYNTHEA_DIRS, synthea_files
from service.engine.model import Outcome
from service.terminology import ValueSetError
from tests.builders import (
    ICD,
    SCT,
    concept,
    condition,
    determine,
    meeting_chart,
    oxycodone,
    problem_list_unread,
    result_of,
    service_request,
    statuses,
    without_codes,
)
from tests.catalog_support import copy_policies, edit_yaml

CHRONIC_PAIN_REASON = [concept(SCT, "82423001", "Chronic pain")]
CYSTITIS = ("307426000", "Acute infective cystitis (disorder)")
POLICIES_WITH_INFECTION = {
    "geha-idds-chronic-pain": "geha.ci.infection",
    "kpwa-implanted-infusion-pumps": "kpwa.ci.infection",
    "cms-ncd-280-14": "ncd280.ci.infection",
}
MARGARETTE = "ts_Margarette.json"


def test_an_active_acute_infective_cystitis_is_a_current_infection() -> None:
    """Synthea codes a urinary infection as SNOMED 307426000 "Acute infective cystitis" (ts_Margarette:
    active, with active doxycycline orders). It is a kind of 68566005 "Urinary tract infectious disease",
    which the infection value set lists; contract §0: codes "in the same standard group ... MUST also
    count", and the policies' reading: "Current means an infection diagnosis that is marked active"."""
    chart = [*meeting_chart(), condition(SCT, CYSTITIS[0], "2026-11-01", CYSTITIS[1])]
    for policy_id, criterion in POLICIES_WITH_INFECTION.items():
        d = determine(chart, policy_id=policy_id)
        assert statuses(d)[criterion] == "not-met", (policy_id, d.explanation)


@pytest.mark.skipif(
    not any(p.name == MARGARETTE for p in synthea_files()),
    reason=f"the Synthea fixtures are not beside the repository ({SYNTHEA_DIRS[0]})",
)
def test_margarettes_active_cystitis_is_not_read_as_no_infection() -> None:
    """The Synthea chart itself: an active 307426000 since 2006, never abated, and doxycycline orders."""
    path = next(p for p in synthea_files() if p.name == MARGARETTE)
    chart = [e["resource"] for e in json.loads(path.read_text(encoding="utf-8"))["entry"]]
    order = service_request("62362", reason=CHRONIC_PAIN_REASON)
    for policy_id, criterion in POLICIES_WITH_INFECTION.items():
        d = determine(chart, order=order, policy_id=policy_id)
        assert statuses(d)[criterion] == "not-met", (policy_id, d.explanation)


def test_generic_chronic_pain_beside_an_active_primary_cancer_is_not_judged_as_non_malignant_pain() -> None:
    """Florentino (Synthea): active "Primary malignant neoplasm of colon" (SNOMED 93761005, in the
    malignancy set) and a 62362 order whose reason is the generic SNOMED "Chronic pain".
    criteria-and-codes.md §4.3.2: any active malignancy makes it cancer pain (both, when a non-malignant
    cause is coded too). GEHA does not address cancer pain (policies/geha.yaml scope: "GEHA review is
    manual"), so GEHA must not answer "not covered" on its non-malignant criteria; today it does (one
    30-day opioid course falls short of its criterion B)."""
    chart = [
        *without_codes(meeting_chart(), "M96.1", "1049683", "892531"),
        oxycodone(start="2025-01-10", end="2025-02-09"),  # one 30-day course: GEHA B falls short
        condition(SCT, "82423001", "2020-01-01", "Chronic pain"),
        condition(SCT, "93761005", "2024-05-18", "Primary malignant neoplasm of colon"),
    ]
    order = service_request("62362", reason=CHRONIC_PAIN_REASON)
    d = determine(chart, order=order, policy_id="geha-idds-chronic-pain")
    assert d.indication != "non-malignant-pain" or d.outcome != Outcome.DOES_NOT_MEET, d.explanation


# The infections Synthea's modules code (urinary_tract_infections, sinusitis, sore_throat), SNOMED CT
# descendants of the listed 68566005 "Urinary tract infectious disease" and 40733004 "Infectious disease".
SYNTHEA_INFECTIONS = [
    ("307426000", "Acute infective cystitis (disorder)"),
    ("45816000", "Pyelonephritis (disorder)"),
    ("197927001", "Recurrent urinary tract infection (disorder)"),
    ("444814009", "Viral sinusitis (disorder)"),
    ("75498004", "Acute bacterial sinusitis (disorder)"),
    ("195662009", "Acute viral pharyngitis (disorder)"),
    ("43878008", "Streptococcal sore throat (disorder)"),
]


@pytest.mark.parametrize(("code", "display"), SYNTHEA_INFECTIONS)
def test_each_infection_synthea_codes_is_a_current_infection(code: str, display: str) -> None:
    """Coded without a display too: the code decides, not the words."""
    chart = [*meeting_chart(), condition(SCT, code, "2026-11-01")]
    d = determine(chart)
    assert statuses(d)["geha.ci.infection"] == "not-met", (code, display, d.explanation)


WORDED = "Infection of tooth (disorder)"  # SNOMED 427898007 is not listed; its words name an infection


def test_an_active_diagnosis_whose_words_name_an_infection_is_left_to_the_reviewer() -> None:
    """Contract §3: a "no X" criterion is met only when no evidence of X is found. A diagnosis the value
    set does not code but whose words plainly name an infection is evidence to weigh, not "none
    documented": the reviewer gets it, with the record named."""
    infection = condition(SCT, "427898007", "2006-01-01", WORDED)
    chart = [*meeting_chart(), infection]
    for policy_id, criterion in POLICIES_WITH_INFECTION.items():
        result = result_of(determine(chart, policy_id=policy_id), criterion)
        assert (result.status.value, result.for_reviewer) == ("not-documented", True), policy_id
        assert [e.reference for e in result.evidence] == [f"Condition/{infection['id']}"]
        assert (
            result.finding
            == "Infection of tooth (disorder) documented, under a code this service does not list"
        )


def test_a_diagnosis_named_only_in_words_counts_as_its_code_would() -> None:
    """An EHR's own code with the text "Urinary tract infection" (no standard coding): the words alone."""
    local = {"coding": [{"system": "urn:ehr:local", "code": "UTI1"}], "text": "Urinary tract infection"}
    worded = {**condition(SCT, "x", "2026-11-20"), "code": local}
    chart = [*meeting_chart(), worded]
    assert result_of(determine(chart), "geha.ci.infection").for_reviewer


def test_the_words_net_reads_the_first_thousand_characters_of_a_diagnosis_text() -> None:
    """Its cost grows with the text (attack20 L1: four diagnoses of a megabyte cost seconds of CPU):
    past WORDS_READ characters, which no diagnosis name reaches, its words are not read."""
    from service.engine.checks.common import WORDS_READ

    def worded(text: str) -> dict[str, object]:
        local = {"coding": [{"system": "urn:ehr:local", "code": "UTI1"}], "text": text}
        return {**condition(SCT, "x", "2026-11-20"), "code": local}

    within = "x" * (WORDS_READ - len(" Urinary tract infection")) + " Urinary tract infection"
    beyond = "x" * WORDS_READ + " Urinary tract infection"
    assert result_of(determine([*meeting_chart(), worded(within)]), "geha.ci.infection").for_reviewer
    assert not result_of(determine([*meeting_chart(), worded(beyond)]), "geha.ci.infection").for_reviewer


@pytest.mark.parametrize(
    "words",
    [
        "History of pneumonia (situation)",
        "Screening for infection",
        "At risk for infection (finding)",
        "Infection prevention",
        "No evidence of infection",
        "Non-infective cystitis",
        "Exposure to infectious disease",
        "Post-infectious glomerulonephritis",
        "Chronic sinusitis (disorder)",
        "Ruled-out sepsis",
    ],
)
def test_words_that_name_no_current_infection_leave_the_criterion_met(words: str) -> None:
    """A history, a screening, a prevention, a risk, an exposure, a negation or an after-effect of an
    infection is not one; nor is a diagnosis whose words name none (Synthea models chronic sinusitis as
    an inflammation, not an infection)."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    assert statuses(determine(chart))["geha.ci.infection"] == "met"


def test_a_worded_infection_outside_the_window_and_not_marked_active_is_not_current() -> None:
    """GEHA's reading: current is marked active, or dated within 30 days when no status is given."""
    old = condition(SCT, "427898007", "2026-01-01", WORDED, status=None)
    assert statuses(determine([*meeting_chart(), old]))["geha.ci.infection"] == "met"
    recent = condition(SCT, "427898007", "2026-11-20", WORDED, status=None)
    assert statuses(determine([*meeting_chart(), recent]))["geha.ci.infection"] == "not-documented"


def cancer_chart(*causes: dict[str, object]) -> list[dict[str, object]]:
    """Florentino's shape: generic chronic pain and an active primary colon cancer, GEHA's B short."""
    return [
        *without_codes(meeting_chart(), "M96.1", "1049683", "892531"),
        oxycodone(start="2025-01-10", end="2025-02-09"),
        condition(SCT, "82423001", "2020-01-01", "Chronic pain"),
        condition(SCT, "93761005", "2024-05-18", "Primary malignant neoplasm of colon"),
        *causes,
    ]


def test_generic_chronic_pain_beside_an_active_cancer_is_cancer_pain_for_every_payer_on_the_call() -> None:
    """criteria-and-codes.md §4.3.2: any active malignancy makes it cancer pain. GEHA does not address
    cancer pain (manual review); Cohere's card names the indication it judges, and it is the cancer
    block's metastatic site it asks for (before: "for chronic non-malignant pain" in its header)."""
    order = service_request("62362", reason=CHRONIC_PAIN_REASON)
    geha = determine(cancer_chart(), order=order)
    assert (geha.indication, geha.outcome) == ("cancer-pain", Outcome.NOT_APPLICABLE)
    cohere = determine(cancer_chart(), order=order, policy_id="cohere-intrathecal-pain-pumps")
    assert cohere.indication == "cancer-pain"
    assert "non-malignant" not in cohere.indication_words


def test_a_coded_cause_of_pain_beside_the_cancer_keeps_the_pain_non_malignant() -> None:
    """AMB-11: only a coded non-malignant cause outweighs the malignancy (then Cohere judges both
    blocks), on the problem list as in the order's reason."""
    order = service_request("62362", reason=CHRONIC_PAIN_REASON)
    fbss = condition(ICD, "M96.1", "2023-03-01", "Postlaminectomy syndrome")
    assert determine(cancer_chart(fbss), order=order).indication == "non-malignant-pain"
    by_reason = service_request("62362", reason=[concept(ICD, "M96.1", "Postlaminectomy syndrome")])
    assert determine(cancer_chart(), order=by_reason).indication == "non-malignant-pain"
    no_cancer = without_codes(cancer_chart(), "93761005")
    assert determine(no_cancer, order=order).indication == "non-malignant-pain"


def test_a_generic_chronic_pain_reason_with_the_problem_list_unread_does_not_tell_which_pain() -> None:
    """The problem list that would show a cancer could not be read: the morphine pump is for pain, and
    which kind is the question the card asks (before: judged as non-malignant pain, told by the reason)."""
    order = service_request("62362", reason=CHRONIC_PAIN_REASON)
    d = determine(
        problem_list_unread(cancer_chart()),
        order=order,
        unavailable={"Condition": "HTTP 503"},
        policy_id="kpwa-implanted-infusion-pumps",
    )
    assert d.kind_unread == "Whether the pain is cancer-related"


@pytest.mark.parametrize(
    "words",
    [
        "Surgical site infection s/p laminectomy",
        "Pump pocket infection status post intrathecal pump implant",
        "Infection of intrathecal catheter, history of pump revision",
        "Methicillin resistant Staphylococcus aureus carrier with cellulitis",
        "Pneumonia, high risk patient",
    ],
)
def test_an_infection_named_beside_a_history_or_status_post_goes_to_the_reviewer(words: str) -> None:
    """Only words before an infection word that govern it make it another thing ("history of X"); a
    "s/p" or "history of" about something else in the same text does not (review19 M1)."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize("words", ["Infection control precautions", "Infectious disease screening"])
def test_words_naming_a_practice_about_infection_leave_the_criterion_met(words: str) -> None:
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    assert statuses(determine(chart))["geha.ci.infection"] == "met"


def test_a_fear_of_infection_is_no_infection() -> None:
    """words20 (debt 1): "Fear of infection" names the patient's worry, a finding as "At risk for
    infection" is, not an infection: GEHA's criterion is met (before: left to the payer's reviewer)."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", "Fear of infection (finding)")]
    assert statuses(determine(chart))["geha.ci.infection"] == "met"


@pytest.mark.parametrize(
    "words", ["Concern for infection", "Suspected sepsis", "Fear of falling, wound infection"]
)
def test_a_suspected_infection_still_goes_to_the_reviewer(words: str) -> None:
    """A clinician's "concern for" an infection is a suspicion of one, not a worry about catching one; a
    fear of something else beside an infection does not reach it."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words",
    [
        "Fear of falling after infection",
        "Fear of pain from infection",
        "Non-healing infected wound",
        "Post-operative wound infection",
        "Post op infection",
        "s/p laminectomy wound infection",
        "Status post pump implant pocket abscess",
    ],
)
def test_a_prefix_or_a_fear_governs_only_the_word_right_after_it(words: str) -> None:
    """review20 L4 (words22): "fear of", "non", "post", "s/p" and "status post" reached three words, so an
    infection named after another word read as none ("Fear of falling after infection", "Post-operative
    wound infection"): the criterion was met where it goes to the reviewer. Right before the infection word
    they still make it none ("Fear of infection", "Non-infective cystitis", "Post-infectious ...")."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words",
    [
        "Fear of contracting COVID-19",
        "Fear of getting an infection",
        "Fear of catching pneumonia",
        "Fear of developing sepsis",
    ],
)
def test_a_fear_of_catching_an_infection_is_no_infection(words: str) -> None:
    """review22a: with "fear of" governing only the next word, the patient's worry of catching an infection
    named after a verb went to the reviewer, where "Fear of infection" is met (words20); "fear of
    contracting", "catching", "getting", "developing" reach it as any `before` word does."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    assert statuses(determine(chart))["geha.ci.infection"] == "met"


def test_the_words_that_govern_only_the_next_word_are_the_value_sets_data(tmp_path: Path) -> None:
    """Which `before` words reach no further than the next word is `not_this.next_word_only`, each one of
    the `before` words (a word listed there alone would never be read)."""
    fear = "Fear of falling after infection"
    assert load_catalog().terminology["infection"].names_in_words(fear)
    root = copy_policies(tmp_path)
    edit_yaml(
        root / "valuesets" / "infection.yaml",
        lambda raw: [raw["not_this"].pop(key) for key in ("next_word_only", "whole_name")],
    )
    assert not load_catalog(root).terminology["infection"].names_in_words(fear)
    edit_yaml(
        root / "valuesets" / "infection.yaml", lambda raw: raw["not_this"].update(next_word_only=["lack of"])
    )
    with pytest.raises(ValueSetError, match=r"not_this\.next_word_only: lack of not among its before words"):
        load_catalog(root)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2 (disorder)"),
        ("999999999", "COVID-19"),
    ],
)
def test_an_active_covid_19_is_a_current_infection(code: str, words: str) -> None:
    """Synthea's covid19 module codes SNOMED 840539006 (review19 M2): listed; the same words under
    another code go to the reviewer."""
    chart = [*meeting_chart(), condition(SCT, code, "2026-11-20", words)]
    assert statuses(determine(chart))["geha.ci.infection"] != "met"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("1119303003", "Post-acute COVID-19"),
        ("1119303003", "Post-acute COVID-19 (disorder)"),
        ("999999999", "Post acute COVID-19 syndrome"),
        ("999999999", "Post\u2011acute COVID-19"),
        ("999999999", "Long COVID"),
    ],
)
def test_a_post_acute_covid_19_is_no_current_infection(code: str, words: str) -> None:
    """review22a M1: SNOMED CT 1119303003 |Post-acute COVID-19 (disorder)| (ICD-10-CM U09.9, "Post COVID-19
    condition"), listed by no value set, is read by its words: the after-effects of an infection that is
    over, as "Post-infectious" and "sequelae" are (criteria-and-codes §3.1.14 keeps G09 sequelae out of
    VS-ICD-INFECTION), so the three "no infection" criteria are met, none documented. Before: "post" governed
    only "acute", a `not_this` word could hold no hyphen, and the COVID went to the payer's reviewer."""
    chart = [*meeting_chart(), condition(SCT, code, "2026-11-20", words)]
    for policy_id, criterion in POLICIES_WITH_INFECTION.items():
        result = result_of(determine(chart, policy_id=policy_id), criterion)
        assert result.status.value == "met", (policy_id, words, result.finding)


@pytest.mark.parametrize(
    "words",
    [
        "Status post COVID-19 infection",
        "Status post COVID-19 pneumonia",
        "s/p covid infection",
        "Fear of COVID infection",
    ],
)
def test_status_post_an_infection_named_in_two_of_its_words_is_one_that_is_over(words: str) -> None:
    """review22a M1: "Status post COVID-19" read as none, "Status post COVID-19 infection" went to the
    reviewer, "status post" governing only the next word. It governs an infection's name of two of the
    value set's words as one (`not_this.whole_name`); another word between still names a current one
    ("s/p laminectomy wound infection", above)."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert result.status.value == "met", result.finding


@pytest.mark.parametrize(
    "words",
    ["Non-COVID pneumonia", "Post-COVID pneumonia", "Post-acute care, COVID-19 pneumonia", "Acute COVID-19"],
)
def test_a_prefix_before_a_two_word_infection_name_still_goes_to_the_reviewer(words: str) -> None:
    """ "Non-COVID pneumonia" is a pneumonia, and "Post-COVID pneumonia" may be a pneumonia after the COVID
    (as a post-influenzal pneumonia is): "non" and "post" govern the next word only, never the name."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize("words", ["Rule-out sepsis", "Rule out sepsis", "rule\u2010out meningitis"])
def test_a_hyphen_in_a_not_this_word_stands_for_any_hyphen_or_space(words: str) -> None:
    """A `not_this` word may hold a hyphen, standing for any hyphen or white space: "rule-out" reads
    "Rule-out sepsis" as "Rule out sepsis" (before: a ruled-out sepsis written with a hyphen went to the
    reviewer)."""
    assert not load_catalog().terminology["infection"].names_in_words(words)


def test_the_words_that_govern_a_whole_name_are_the_value_sets_data(tmp_path: Path) -> None:
    """Which next-word-only words govern a two-word infection name is `not_this.whole_name`, each one of
    `next_word_only`."""
    words = "Status post COVID-19 infection"
    assert not load_catalog().terminology["infection"].names_in_words(words)
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "infection.yaml", lambda raw: raw["not_this"].pop("whole_name"))
    assert load_catalog(root).terminology["infection"].names_in_words(words)
    edit_yaml(
        root / "valuesets" / "infection.yaml", lambda raw: raw["not_this"].update(whole_name=["history"])
    )
    with pytest.raises(ValueSetError, match=r"not_this\.whole_name: history not among its next_word_only"):
        load_catalog(root)


@pytest.mark.parametrize(
    "words",
    [
        "No improvement in cellulitis",
        "Not improving pneumonia",
        "No change in osteomyelitis",
        "No resolution of pneumonia",
        "No response to sepsis treatment",
    ],
)
def test_a_negation_of_an_infections_course_does_not_reach_the_infection(words: str) -> None:
    """words23: "no" and "not" reach three words, so "No improvement in cellulitis" read as no cellulitis and
    the criterion was met, none documented, on a current infection (contract §3: met only when no evidence
    is found). A word of its course stops the reach (`not_across`): the reviewer reads it."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words",
    ["Week-long cellulitis", "Weeks-long cellulitis", "Month-long sepsis", "Life\u2011long infection"],
)
def test_a_prefix_word_joined_to_the_word_before_it_governs_nothing(words: str) -> None:
    """review23b: "long" governs the next word ("Long COVID"), and a word joined to the one before it by a
    hyphen is part of it: "Week-long cellulitis" names a cellulitis of a week, not its after-effects. Before,
    read as none (GEHA F met, none documented, on a current cellulitis)."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize("words", ["Status-post COVID-19", "Status-post COVID-19 infection", "Long COVID"])
def test_status_post_written_with_a_hyphen_is_one_that_is_over(words: str) -> None:
    """Guard for the rule above: "Status-post" is the one word "status post" ("post" joined to "Status"
    governs nothing on its own), and "Long COVID" is still the after-effects."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert result.status.value == "met", result.finding


@pytest.mark.parametrize(
    "words",
    [
        "Not improved pneumonia",
        "No healing of infected wound",
        "No worsening of cellulitis",
        "No clearance of bacteremia",
        "No spread of cellulitis",
        "No decrease in abscess",
    ],
)
def test_any_form_of_a_word_of_an_infections_course_stops_a_negations_reach(words: str) -> None:
    """review23b: words23 listed "improvement" and "improving", not "improved"; nor healing, worsening,
    clearance, spread or decrease. "Not improved pneumonia" read as no infection (GEHA F met, none
    documented, on a current pneumonia). The course's words are stems (`improv*`), as `not_this` allows."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words",
    [
        "s/p sepsis bacteremia",
        "s/p covid septic shock",
        "Status post abscess cellulitis",
        "Status post infection abscess of back",
        "Fear of covid sepsis",
    ],
)
def test_a_whole_name_ends_in_a_word_that_closes_one(words: str) -> None:
    """review23b L1: `whole_name` read any two of the value set's words as one name, so "s/p sepsis
    bacteremia" (a bacteremia after a sepsis, the comma left out) read as an infection that is over: GEHA F
    met, none documented, on a current bacteremia. A name of two words ends in one that closes a name
    (`not_this.name_ends`: "COVID-19 infection", "COVID-19 pneumonia"); others go to the reviewer."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words", ["post-acute sepsis", "Post acute pneumonia", "Long pneumonia", "post-acute infection"]
)
def test_the_after_effects_of_covid_are_no_other_infections(words: str) -> None:
    """review23b L2: "post-acute" and "long" are listed for a post-acute COVID-19 (SNOMED CT 1119303003,
    U09.9, "Long COVID"), yet governed any infection word: "post-acute sepsis" read as none. They govern
    the words of COVID-19 only (`not_this.governs_only`)."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words",
    [
        "Not resolved pneumonia",
        "Not yet resolved sepsis",
        "not healed abscess",
        "Never resolved osteomyelitis",
        "Not ruled out sepsis",
        "Not ruled-out sepsis",
        "Not yet ruled-out pneumonia",
        "not r/o sepsis",
    ],
)
def test_a_negated_resolution_names_a_current_infection(words: str) -> None:
    """review23b L3: "resolved" (a `before` word) right before the infection read "Not resolved pneumonia"
    as one that is over: GEHA F met, none documented, on a current pneumonia. A negation right before such
    a word turns it around (`not_this.turned`, `turned_by`): the reviewer reads it. review24c: "ruled-out"
    hyphened and "r/o" as "ruled out" is ("Not ruled-out sepsis" read as none)."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words",
    [
        "Status post COVID-19 infection",
        "s/p covid pneumonia",
        "Post-acute COVID-19",
        "Long COVID",
        "Resolved pneumonia",
        "Not at risk for infection",
        "Ruled out sepsis",
    ],
)
def test_the_narrowed_words_still_read_what_they_were_listed_for(words: str) -> None:
    """Guards for the three rules above: what `whole_name`, "post-acute", "long" and "resolved" were listed
    for still reads as no current infection."""
    assert not load_catalog().terminology["infection"].names_in_words(words), words


NARROWING = ("name_ends", "governs_only", "turned", "turned_by")


def test_the_narrowing_words_are_the_value_sets_data(tmp_path: Path) -> None:
    """`name_ends`, `governs_only` and `turned` are data: without them, the three texts read as before."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "infection.yaml", lambda raw: [raw["not_this"].pop(k) for k in NARROWING])
    loose = load_catalog(root).terminology["infection"]
    for words in ("s/p sepsis bacteremia", "post-acute sepsis", "Not resolved pneumonia"):
        assert not loose.names_in_words(words), words


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("name_ends", ["fever"], r"name_ends: fever not among the value set's text"),
        ("governs_only", {"long": ["fever"]}, r"governs_only\.long: fever not among the value set's text"),
        ("governs_only", {"lack of": ["covid"]}, r"governs_only: lack of not among its before words"),
        ("turned", ["lack of"], r"turned: lack of not among its before words"),
    ],
)
def test_a_narrowing_word_names_the_value_sets_own_words(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    """Each narrowing key names words of the value set (a word listed that it does not hold would never be
    read): refused, naming the key."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "infection.yaml", lambda raw: raw["not_this"].update({key: value}))
    with pytest.raises(ValueSetError, match=rf"not_this\.{message}"):
        load_catalog(root)


@pytest.mark.parametrize(
    "words",
    [
        "COVID-19 test positive",
        "Positive COVID-19 test",
        "Sepsis screening positive",
        "Positive screen for sepsis",
        "Detected COVID-19 test result",
        "COVID-19 test result positive",
        "Positive screening for sepsis",
    ],
)
def test_a_positive_test_or_screen_for_an_infection_goes_to_the_reviewer(words: str) -> None:
    """words24: "test*" and "screen*" are a practice about an infection ("COVID-19 test"), and read
    "COVID-19 test positive" as no infection: GEHA F met, none documented, where the chart's own words give
    evidence of one (contract §3, Absence: met only when no evidence of X is found). A result word of
    `not_this.found` beside a practice of `found_by` says the practice found it: the reviewer reads it."""
    chart = [*meeting_chart(), condition(SCT, "999999999", "2026-11-20", words)]
    result = result_of(determine(chart), "geha.ci.infection")
    assert (result.status.value, result.for_reviewer) == ("not-documented", True), result.finding


@pytest.mark.parametrize(
    "words",
    [
        "COVID-19 test negative",
        "Negative COVID-19 test",
        "Sepsis screening",
        "Screen for sepsis",
        "History of positive COVID-19 test",
        "No positive COVID-19 test",
        "Positive history of pneumonia",
        "COVID-19 exposure positive",
    ],
)
def test_a_negative_or_unresulted_test_or_screen_is_still_no_infection(words: str) -> None:
    """Guards for the rule above: a result word turns around a practice only, and only a positive one; a
    history or negation before the whole still governs it."""
    assert not load_catalog().terminology["infection"].names_in_words(words), words


FOUND = ("found", "found_by")


def test_the_result_words_are_the_value_sets_data(tmp_path: Path) -> None:
    """`found` and `found_by` are data: without them, a positive test reads as a practice again."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "infection.yaml", lambda raw: [raw["not_this"].pop(k) for k in FOUND])
    loose = load_catalog(root).terminology["infection"]
    for words in ("COVID-19 test positive", "Positive COVID-19 test", "Positive screen for sepsis"):
        assert not loose.names_in_words(words), words


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda words: words.update(found_by=["biopsy"]),
            r"\.found_by: biopsy not among its before or after words",
        ),
        (
            lambda words: words.update(found=["positive", "tested positive"]),
            r"\.found: tested positive is not one",
        ),
        (lambda words: words.pop("found_by"), r": found and found_by go together"),
    ],
)
def test_a_result_word_names_the_value_sets_own_practice(
    tmp_path: Path, edit: Callable[[dict], object], message: str
) -> None:
    """`found_by` names practices the value set lists (`before` or `after`); `found` is one word each (read
    right before the infection's word, at a fixed width); neither without the other."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "infection.yaml", lambda raw: edit(raw["not_this"]))
    with pytest.raises(ValueSetError, match=rf"not_this{message}"):
        load_catalog(root)
