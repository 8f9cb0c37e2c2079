"""GEHA criteria A-H and exclusions, evaluated by the pure engine on charts built in the test."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cards.items import Episode
from cards.render import detail, summary
from service.engine.model import Outcome, Status
from service.record import CLINICAL_TYPES
from tests.builders import (
    CPT,
    GEHA_CRITERIA,
    ICD,
    OXYCODONE_TABLET,
    SCT,
    STEROID_RXCUIS,
    allergy,
    assessment,
    card_line,
    coded_assessment,
    concept,
    condition,
    determine,
    device,
    device_removal_charts,
    documentation_steps,
    drug_failure_forms,
    finding_of,
    infusate_request,
    med_request,
    med_statement,
    meeting_chart,
    oxycodone,
    pain,
    payer_coverage,
    problem_list_unread,
    procedure,
    result_of,
    service_request,
    sign_request,
    statuses,
    steroid_injection,
    without_codes,
)
from tests.calls import sign_with_chart
from tests.support import assertion_of


def without(chart: list[dict[str, Any]], predicate: Any) -> list[dict[str, Any]]:
    return [r for r in chart if not predicate(r)]


def test_meeting_chart_meets_every_criterion() -> None:
    d = determine(meeting_chart())
    assert d.outcome == Outcome.MEETS
    assert d.request_kind == "permanent-implant"
    assert d.indication == "non-malignant-pain"
    found = statuses(d)
    assert [found[c] for c in GEHA_CRITERIA] == ["met"] * len(GEHA_CRITERIA)
    assert all(r.citation.startswith("GEHA, Implantable Intrathecal") for r in d.criteria)


def test_every_criterion_carries_the_policy_words() -> None:
    d = determine(meeting_chart())
    texts = {r.id: r.text for r in d.criteria}
    assert texts["geha.ci.infection"] == "No current infection"
    assert texts["geha.chronic-pain.opioid-failure-6wk"].startswith(
        "Failure of, or unacceptable side effects"
    )


def test_empty_chart_is_insufficient_never_not_met() -> None:
    d = determine([])
    assert d.outcome == Outcome.INSUFFICIENT
    found = statuses(d)
    assert "not-met" not in found.values()
    assert found["geha.chronic-pain.duration-6mo"] == "not-documented"
    assert found["geha.ci.infection"] == "met"  # absence rule
    infection = next(r for r in d.criteria if r.id == "geha.ci.infection")
    assert infection.finding == "none documented"


@pytest.mark.parametrize(
    ("onset", "expected"),
    [("2026-05-20", "met"), ("2026-05-21", "not-met"), ("2026-08-01", "not-met")],
)
def test_chronic_pain_strictly_more_than_six_months(onset: str, expected: str) -> None:
    chart = [
        condition(ICD, "M96.1", onset),
        *without(meeting_chart(), lambda r: r["resourceType"] == "Condition"),
    ]
    assert statuses(determine(chart))["geha.chronic-pain.duration-6mo"] == expected


@pytest.mark.parametrize(
    ("onset", "expected", "since"),
    [
        ("2026-05-20T22:00:00-05:00", "met", "since 20 May 2026"),  # 21 May in UTC
        ("2026-05-21T01:00:00+09:00", "not-met", "since 21 May 2026"),  # 20 May in UTC
    ],
)
def test_a_condition_is_dated_by_the_day_the_chart_wrote(onset: str, expected: str, since: str) -> None:
    """Contract §3: today (21 Nov 2026) minus the condition's date, the date as written with its offset;
    more than 6 months needs a date before 21 May."""
    chart = [
        condition(ICD, "M96.1", onset),
        *without(meeting_chart(), lambda r: r["resourceType"] == "Condition"),
    ]
    d = determine(chart)
    assert statuses(d)["geha.chronic-pain.duration-6mo"] == expected
    assert since in finding_of(d, "geha.chronic-pain.duration-6mo")


@pytest.mark.parametrize(
    ("onset", "expected", "finding"),
    [
        ("2025", "met", "at least 10 months 21 days since 2025 (needs more than 6 months)"),
        ("2026-04", "met", "at least 6 months 21 days since April 2026 (needs more than 6 months)"),
        (
            "2026",
            "not-documented",
            "dated only to 2026: lasted 0 days to 10 months 20 days (needs more than 6 months); record the "
            "onset's day",
        ),
        (
            "2026-05",
            "not-documented",
            "dated only to May 2026: lasted 5 months 21 days to 6 months 20 days (needs more than 6 months); "
            "record the onset's day",
        ),
        ("2026-06", "not-met", "at most 5 months 20 days since June 2026 (needs more than 6 months)"),
    ],
)
def test_a_diagnosis_dated_to_a_month_or_a_year_has_lasted_what_every_day_of_it_gives(
    onset: str, expected: str, finding: str
) -> None:
    """review25c: a diagnosis dated "2026" read as 1 January 2026, so on 21 Nov 2026 it had lasted more
    than six months though it may date from last week: met only when its last possible day gives the
    months, not met when even its first falls short, else the chart does not tell."""
    chart = [
        condition(ICD, "M96.1", onset),
        *without(meeting_chart(), lambda r: r["resourceType"] == "Condition"),
    ]
    d = determine(chart)
    assert statuses(d)["geha.chronic-pain.duration-6mo"] == expected
    assert finding_of(d, "geha.chronic-pain.duration-6mo") == finding


@pytest.mark.parametrize(
    ("onset", "said"), [("2027", "2027"), ("2027-01", "January 2027"), ("2026-12-01", "1 Dec 2026")]
)
def test_a_diagnosis_dated_after_today_has_not_lasted_at_all(onset: str, said: str) -> None:
    """review25 LOW: an onset still to come read "at most 0 days since 2027", a duration it is not: no
    time has passed since it, which falls short of any threshold (not met), and its date wants checking."""
    chart = [
        condition(ICD, "M96.1", onset),
        *without(meeting_chart(), lambda r: r["resourceType"] == "Condition"),
    ]
    d = determine(chart)
    assert statuses(d)["geha.chronic-pain.duration-6mo"] == "not-met"
    assert finding_of(d, "geha.chronic-pain.duration-6mo") == (
        f"dated {said}, after today: it has not lasted any time (needs more than 6 months); check the "
        "onset's date"
    )


def test_a_diagnosis_dated_to_a_day_is_not_hidden_by_one_of_its_code_dated_to_the_year() -> None:
    """review25d: record grouped one code's diagnoses under the earliest first instant, "2026" (1 January),
    which may be any day of 2026, and hid the one dated 1 March 2026 that proves more than six months."""
    chart = [
        condition(ICD, "M96.1", "2026"),
        condition(ICD, "M96.1", "2026-03-01"),
        *without(meeting_chart(), lambda r: r["resourceType"] == "Condition"),
    ]
    assert statuses(determine(chart))["geha.chronic-pain.duration-6mo"] == "met"


def test_one_code_dated_to_a_day_a_month_and_a_year_is_one_diagnosis_on_the_card() -> None:
    """review25e: grouping one code's diagnoses per date precision (756b48e) made three facts of M96.1
    dated 1 Mar 2023, March 2023 and 2022: the known cause cited it three times, and Cohere's "not only
    non-malignant" finding named it thrice, leaving out the G89.29 beside it. Duration still reads the
    day-dated one (it dates the pain by 1 March 2026 at the latest)."""
    rest = without(meeting_chart(), lambda r: r["resourceType"] == "Condition")
    dated = [
        condition(ICD, "M96.1", "2023-03-01"),
        condition(ICD, "M96.1", "2023-03"),
        condition(ICD, "M96.1", "2022"),
    ]
    chart = [*dated, condition(ICD, "G89.29", "2024-06-01"), *rest]
    assert [e.text for e in result_of(determine(chart), "geha.chronic-pain.known-cause").evidence] == [
        "ICD10CM M96.1 (onset 2022)"
    ]
    cohere = determine(chart, policy_id="cohere-intrathecal-pain-pumps")
    assert finding_of(cohere, "cohere.cancer.applies") == (
        "documented: ICD10CM M96.1 (onset 2022); ICD10CM G89.29 (onset 1 Jun 2024)"
    )
    day_and_year = [condition(ICD, "M96.1", "2026"), condition(ICD, "M96.1", "2026-03-01"), *rest]
    assert finding_of(determine(day_and_year), "geha.chronic-pain.duration-6mo") == (
        "8 months 20 days since 1 Mar 2026 (needs more than 6 months)"
    )


@pytest.mark.parametrize(("recorded", "expected"), [("2026-10-01", "not-met"), ("2025-10-01", "met")])
def test_a_diagnosis_without_onset_is_dated_by_its_recorded_date(recorded: str, expected: str) -> None:
    """Contract §3: a Condition's date is its onset, else its recorded date; a pain history that falls
    short of six months by that date fails the criterion ("falling short"), it is not undocumented."""
    chart = [condition(ICD, "M96.1", onset=None, recorded=recorded)]
    d = determine(chart)
    assert statuses(d)["geha.chronic-pain.duration-6mo"] == expected


def test_snomed_only_chronic_pain_counts_for_duration_but_not_cause() -> None:
    chart = [condition(SCT, "82423001", "2020-01-01", "Chronic pain")]
    found = statuses(determine(chart))
    assert found["geha.chronic-pain.duration-6mo"] == "met"
    assert found["geha.chronic-pain.known-cause"] == "not-documented"


def test_undotted_icd_and_icd10_alias_match() -> None:
    chart = [condition("http://hl7.org/fhir/sid/icd-10", "M961", "2020-01-01")]
    assert statuses(determine(chart))["geha.chronic-pain.known-cause"] == "met"


def test_refuted_and_resolved_conditions_do_not_count() -> None:
    refuted = condition(ICD, "M96.1", "2020-01-01")
    refuted["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    resolved = condition(ICD, "M47.816", "2020-01-01", status="resolved")
    assert statuses(determine([refuted, resolved]))["geha.chronic-pain.known-cause"] == "not-documented"


@pytest.mark.parametrize("status", ["active", "recurrence", "relapse"])
def test_a_recurring_or_relapsed_infection_is_current(status: str) -> None:
    """Contract §3: a Condition counts when its clinicalStatus is active, recurrence or relapse."""
    chart = [*meeting_chart(), condition(ICD, "L03.115", "2026-11-01", status=status)]
    d = determine(chart)
    assert statuses(d)["geha.ci.infection"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_an_infection_recorded_twice_is_current_when_either_record_says_active() -> None:
    """Duplicates of one diagnosis are one fact dated by the earliest; it is explicitly active when
    any of them says so, so an old infection still active is not outside the 30-day window."""
    chart = [
        *meeting_chart(),
        condition(ICD, "L03.115", "2025-01-01", status=None),
        condition(ICD, "L03.115", "2025-06-01", status="active"),
    ]
    assert statuses(determine(chart))["geha.ci.infection"] == "not-met"


def test_a_failure_is_not_final_when_the_pain_may_be_cancer_pain_geha_does_not_address() -> None:
    """GEHA addresses non-malignant pain only; with the problem list unread the morphine pump's pain may
    be cancer pain, for which GEHA has no criteria (manual review). A failed exclusion judged under the
    default was "not covered" (Synthea A/B review, U1); read as non-malignant pain it is."""
    chart = [*meeting_chart(), device({"text": "Cardiac pacemaker"})]
    drugs = (infusate_request(),)
    unread = determine(problem_list_unread(chart), drugs=drugs, unavailable={"Condition": "HTTP 503"})
    assert statuses(unread)["geha.excl.programmable-device"] == "not-met"
    assert unread.outcome == Outcome.INSUFFICIENT
    assert determine(chart, drugs=drugs).outcome == Outcome.DOES_NOT_MEET


def test_a_trial_with_the_problem_list_unread_asks_for_no_criterion_that_may_not_apply() -> None:
    """No drug, no reason, the problem list unread: the trial may be a baclofen trial, which GEHA does
    not address, so its missing psychiatric evaluation is no gap to close yet: the card says the data
    could not be read, and DTR is not launched (Synthea A/B review 36, F1)."""
    chart = without_codes(meeting_chart(), "90791")
    call = sign_request(service_request("62324"), coverage=payer_coverage("geha"))
    _, response = sign_with_chart(chart, body=call, failing=("Condition",))
    decision = response["cards"][0]
    assert decision["summary"] == "GEHA: 62324 could not be checked — the EHR's data was not available"
    assert "Psychiatric evaluation" not in decision["detail"]
    assert "doc-needed" not in assertion_of(response["systemActions"][0])


def test_the_coverage_information_of_a_failure_under_a_default_indication_names_it() -> None:
    """The payer reads what failed under the default, beside what could not be read (late review 2, F4)."""
    call = sign_request(service_request("62362"), infusate_request(), coverage=payer_coverage("geha"))
    chart = [*meeting_chart(), device({"text": "Cardiac pacemaker"})]
    _, response = sign_with_chart(chart, body=call, failing=("Condition",))
    [pump] = [a for a in response["systemActions"] if a["resource"]["resourceType"] == "ServiceRequest"]
    reason = assertion_of(pump)["reason"]["text"]
    assert "not met under the criteria judged by default: No other implanted programmable device" in reason


def test_an_intrathecal_opioid_is_no_systemic_opioid_course() -> None:
    """The policies' drug trials are systemic: an intrathecal morphine order in the chart is the pump
    drug, and its months do not count toward the > 6 weeks of opioids (criterion B)."""
    intrathecal = med_request(
        "morphine sulfate 10 MG/ML Injectable Solution",
        "2025-01-01",
        "2025-06-01",
        "completed",
        code="892531",
        route="Intrathecal",
    )
    assert statuses(determine([intrathecal]))["geha.chronic-pain.opioid-failure-6wk.duration"] == (
        "not-documented"
    )


@pytest.mark.parametrize(("end", "expected"), [("2025-02-21", "not-met"), ("2025-02-22", "met")])
def test_opioids_strictly_more_than_42_days(end: str, expected: str) -> None:
    chart = [
        med_request(
            "Oxycodone 5 MG Oral Tablet", "2025-01-10", "2025-01-20", "stopped", reason="ineffective"
        ),
        med_request(
            "morphine sulfate 10 MG/ML Injectable Solution",
            "2025-01-20",
            end,
            "stopped",
            code="892531",
            reason="nausea",
        ),
    ]
    found = statuses(determine(chart))
    assert found["geha.chronic-pain.opioid-failure-6wk.duration"] == expected  # ended: 42 days is short
    assert found["geha.chronic-pain.opioid-failure-6wk.routes"] == "met"


def test_a_running_opioid_course_is_not_documented_yet_and_asks_for_nothing_it_cannot_be() -> None:
    running = [med_request("Oxycodone 5 MG Oral Tablet", "2026-10-17", "2027-01-15", "active")]
    d = determine(running)
    assert statuses(d)["geha.chronic-pain.opioid-failure-6wk.duration"] == "not-documented"
    line = card_line(d, "geha.chronic-pain.opioid-failure-6wk.duration")
    assert "5 weeks so far (since 17 Oct 2026), needs more than 6 weeks" in line
    ended = [med_request("Oxycodone 5 MG Oral Tablet", "2026-10-17", "2026-11-21", "completed")]
    d = determine(ended)
    assert statuses(d)["geha.chronic-pain.opioid-failure-6wk.duration"] == "not-met"
    assert "the course ended after 5 weeks" in card_line(d, "geha.chronic-pain.opioid-failure-6wk.duration")
    # a course that did not happen is never asked for: the ended one gets no "record ... 42 days" step
    assert not any(step.startswith("B. Opioids > 6 weeks:") for step in documentation_steps(d))
    assert any(step.startswith("B. Opioids > 6 weeks:") for step in documentation_steps(determine(running)))


def test_an_order_still_active_past_its_computed_end_is_not_said_to_have_ended() -> None:
    """An active order's end is computed (authoredOn + 30 days, contract §3): short of the bar, it is
    not met, and the card says what the orders cover rather than that the course ended, and that the
    end is the default, not charted (Synthea review, F5: before, the assumed end read as a fact)."""
    stale = [
        med_request(
            "Acetaminophen 300 MG / HYDROcodone Bitartrate 5 MG Oral Tablet", "2015-07-03", status="active"
        )
    ]
    d = determine(stale)
    assert statuses(d)["geha.chronic-pain.opioid-failure-6wk.duration"] == "not-met"
    line = card_line(d, "geha.chronic-pain.opioid-failure-6wk.duration")
    assert (
        "the orders cover 4 weeks 2 days if the last ran 30 days (3 Jul 2015 → 2 Aug 2015; it gives no "
        "supply length), needs more than 6 weeks"
    ) in line
    # the summary drops the dates first (cards/render.py): the assumption is not among them (late review)
    assert summary(Episode.of([d])).endswith(
        "B. Opioids > 6 weeks: the orders cover 4 weeks 2 days if the last ran 30 days, "
        "needs more than 6 weeks"
    ), summary(Episode.of([d]))
    [evidence] = result_of(d, "geha.chronic-pain.opioid-failure-6wk.duration").evidence
    assert evidence.text.endswith("4 weeks 2 days, no supply length: 30 days counted)"), evidence.text


def test_a_course_met_only_by_an_assumed_end_says_so() -> None:
    """Six weeks are reached only if the last order, which gives no supply length, ran the contract's
    30 days: met, and the finding says on what (late review; before, the end read as charted)."""
    oxycodone_text, oxycodone_code = OXYCODONE_TABLET
    chart = [
        med_request(oxycodone_text, "2026-01-01", "2026-02-01", code=oxycodone_code),
        med_request(oxycodone_text, "2026-02-01", code=oxycodone_code),
    ]
    d = determine(chart)
    assert statuses(d)["geha.chronic-pain.opioid-failure-6wk.duration"] == "met"
    assert finding_of(d, "geha.chronic-pain.opioid-failure-6wk.duration").startswith(
        "8 weeks 5 days documented if the last ran 30 days, 1 Jan 2026 → 3 Mar 2026"
    )


def test_oral_only_opioids_leave_injectable_undocumented() -> None:
    chart = [
        med_request(
            "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
            "2025-01-01",
            "2025-06-01",
            "stopped",
            reason="ineffective",
        )
    ]
    d = determine(chart)
    found = statuses(d)
    assert found["geha.chronic-pain.opioid-failure-6wk.routes"] == "not-documented"
    assert found["geha.chronic-pain.opioid-failure-6wk.duration"] == "met"
    assert found["geha.chronic-pain.opioid-failure-6wk"] == "not-documented"


def test_a_schedule_in_an_oral_opioids_name_is_no_injectable_course() -> None:
    """review20: "IV" says a route where a dosage's route says it ('IV', no code: injectable), not in
    a drug's name, where a local display's DEA schedule "(C-IV)" met "oral and injectable" with one
    oral tramadol tablet (the route value sets' 'iv', added for service/codes.py's neuraxial_route)."""
    oral = med_request(
        "Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-06-01", "stopped", reason="ineffective"
    )
    tramadol = med_request(
        "Tramadol Hydrochloride 50 MG Oral Tablet (C-IV)",
        "2025-01-10",
        "2025-03-10",
        "stopped",
        code="836466",
    )
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    assert statuses(determine([oral, tramadol]))[routes] == "not-documented"
    typed = med_request("morphine sulfate 4 MG/ML", "2025-04-15", "2025-06-15", "stopped", code="892531")
    typed["dosageInstruction"] = [{"route": {"text": "IV"}}]
    assert statuses(determine([oral, typed]))[routes] == "met"


def _opioid_routed(name: str, route: str | None) -> dict[str, Any]:
    """A stopped morphine order of spring 2025 named `name`, its dosage's route typed `route` (None: no
    route)."""
    order = med_request(name, "2025-04-15", "2025-06-15", "stopped", reason="nausea", code="892531")
    if route is not None:
        order["dosageInstruction"] = [{"route": {"text": route}}]
    return order


@pytest.mark.parametrize("route", ["IM", "SC", "SQ", "sc", " IM ", "i.m.", "s.c.", "IM (deltoid)", "Deep IM"])
def test_a_route_typed_as_an_injectable_routes_abbreviation_is_injectable(route: str) -> None:
    """s29 F1 (contract29): a dosage's route typed "IM", "SC" or "SQ" (intramuscular, subcutaneous) said
    nothing, so a morphine order so given was no injectable course and GEHA's "oral and injectable
    opioids" was not documented. route-injectable's words hold them, as they hold "IV": a whole word of the
    route's text."""
    oral = med_request(
        "Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-04-01", "stopped", reason="ineffective"
    )
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    assert statuses(determine([oral, _opioid_routed("morphine sulfate 10 MG", route)]))[routes] == "met"


@pytest.mark.parametrize(
    ("name", "route"),
    [
        (
            "morphine sulfate 10 MG IM",
            None,
        ),  # a name's words: the route's own abbreviations are not read there
        ("morphine sulfate 10 MG (SC) stock", None),
        ("Morphine Sulfate 15 MG Oral Tablet SQ", None),
        ("morphine sulfate 10 MG", "Misc"),  # inside a word of the route's text
        ("morphine sulfate 10 MG", "Scalp"),
        ("morphine sulfate 10 MG", "Imbibe"),
        ("morphine sulfate 10 MG", "Squeeze into mouth"),
        ("morphine sulfate 10 MG", "not IM"),
    ],
)
def test_an_injectable_routes_abbreviation_is_read_only_as_a_word_of_a_route(
    name: str, route: str | None
) -> None:
    """The abbreviations say a route in a dosage's route alone, as a whole word, never in a drug's name
    (review20 H1, route_text_only: a local display's "(C-IV)") nor inside another word."""
    oral = med_request(
        "Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-04-01", "stopped", reason="ineffective"
    )
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    assert statuses(determine([oral, _opioid_routed(name, route)]))[routes] == "not-documented"


@pytest.mark.parametrize(
    "route",
    ["SubQ", "subq", "Sub-Q", "sub q", "subcut", "Subcut.", "SUBCUT", "S.Q.", "\uff33\uff35\uff22\uff31"],
)
def test_a_route_typed_subq_or_subcut_is_injectable(route: str) -> None:
    """review29d (s29 F1 continued): ISMP's list of error-prone abbreviations asks for "subcut" (or
    "SubQ" in US use) in place of "SC" and "SQ", which 08e2805 added; a morphine order whose route was
    typed so was still no injectable course, and GEHA's "oral and injectable opioids" not documented.
    Read as "SC" is: a whole word of the route's text, never of a drug's name."""
    oral = med_request(
        "Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-04-01", "stopped", reason="ineffective"
    )
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    assert statuses(determine([oral, _opioid_routed("morphine sulfate 10 MG", route)]))[routes] == "met"
    named = _opioid_routed(f"morphine sulfate 10 MG {route} kit", None)
    assert statuses(determine([oral, named]))[routes] == "not-documented"


@pytest.mark.parametrize(
    ("route", "injectable"),
    [
        ("no IM", False),
        ("NO IM", False),
        ("avoid IM", False),
        ("never IM", False),
        ("without IM", False),
        ("no IM/SC", False),
        ("not I.M.", False),
        ("no IM, give orally", False),
        ("IM not IV", True),  # the control: what a negation leaves stands
        ("no IV, IM", True),
        ("not IV but IM", True),
        ("not only IM", True),  # review30c L1: "only" is no route word, so the negation takes back nothing
        ("non-preserved IM", True),  # a hyphened prefix negates its own word alone
        ("IM: avoid", False),  # review30c L2: after the words it negates
        ("IM contraindicated", False),
        ("do not administer IM", False),  # review30h: how it is given is in the negation's scope
        ("not intended for IM use", False),
        ("not for IV push or IM", False),
        ("IV discontinued", True),  # review30h: given IV, then stopped: an injectable course that failed
        ("SC; IM discontinued", True),
        ("no oral - IM only", True),  # review30h: a dash between spaces ends what a negation says
        ("SC\u2014IM contraindicated", True),  # review30h: so does an em dash with none
        ("SC (IM contraindicated)", True),  # review30h: a bracket ends the phrase before the negation's
        ("IV - IM: avoid", True),
        ("not for inj. IV", False),  # review30j: "inj." is how it is given, no sentence's end
        ("Do not admin. IM", False),
        ("IV and IM contraindicated", False),  # review30h L2: a list of routes is negated whole
        ("Not for IV, IM, or SC use", False),  # review30h L3: across its commas
        ("no IV, IM", True),  # a comma no list word closes still ends the scope
        ("IM / IV contraindicated", False),  # a slash lists routes whatever its spaces (s31)
        ("IM/IV contraindicated", False),
        ("neither IV nor IM", False),  # route32: "neither" is a negation (review31b L5)
        ("neither IM nor SC, oral", False),
        ("Not for IV drip, IM, or SC use", False),  # review31e L1, L2: a list of three, taken back whole
        ("Not for IV administration, IM, or SC", False),
        ("Not for intravenous (IV), intramuscular (IM), or subcutaneous (SC) use", False),
        ("Not for IV administration, IM or SC", True),  # two after the comma: may be another clause
        # the lead's decision, s32 (review32c B): a list of three after a negation is taken back whole only
        # where it ends its phrase
        ("Avoid PO use, IV, IM, or SC acceptable", True),
        ("No oral route, IV, IM, or SC instead", True),
        ("Not for IV administration, IM, or SC use", False),
        # a negation after its words ends its phrase at its sentence's end (s32's stop note)
        ("IM contraindicated. Give orally", False),
        ("IM: no. Oral only", False),
        ("Oral. IM contraindicated. SC OK", True),
        ("1) IM contraindicated. 2) 5 mg PO", False),  # a number after the dot (review33c)
    ],
)
def test_a_route_word_a_negation_takes_back_is_no_route(route: str, injectable: bool) -> None:
    """review29d L3: only "non" and "not" negated a route's words, so a morphine order whose route said
    "no IM" or "avoid IM" was an injectable course and GEHA's "oral and injectable opioids" met. A
    negation takes back the words after it, to the next mark that ends a phrase (or "but")."""
    oral = med_request(
        "Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-04-01", "stopped", reason="ineffective"
    )
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    said = statuses(determine([oral, _opioid_routed("morphine sulfate 10 MG", route)]))[routes]
    assert said == ("met" if injectable else "not-documented")


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("Buprenorphine 8 MG Sublingual Tablet", None),
        ("Fentanyl 0.1 MG Buccal Tablet", None),
        ("Buprenorphine 8 MG Sublingual Tablet", "37839007"),
        ("Buprenorphine 8 MG Tablet, Sublingual", None),
        ("Buprenorphine 8 MG Tablet Sublingual", None),
        ("Fentanyl 100 MCG Tablet, Buccal", None),
    ],
)
def test_a_sublingual_or_buccal_tablet_is_no_oral_form(name: str, route: str | None) -> None:
    """words23: "tablet", an oral dose form's word (route-oral: RxNorm's "Oral Tablet", "Chewable Tablet"),
    read a "Sublingual Tablet" or "Buccal Tablet" (RxNorm dose forms of the sublingual and buccal routes) as
    oral, even beside its dosage route coded SNOMED CT 37839007 Sublingual route, which is not oral: GEHA's
    "oral and injectable" was met with no oral course. The route value set's `not_this` says which words
    before a dose form's word make it another route's, and which after it, across a comma ("Tablet,
    Sublingual": words24, review23b L4)."""
    injectable = med_request(
        "Morphine Sulfate 2 MG/ML Injectable Solution", "2025-01-01", "2025-06-01", "stopped"
    )
    course = med_request(name, "2025-02-01", "2025-06-01", "stopped", code="1819")
    if route:
        course["dosageInstruction"] = [{"route": concept(SCT, route, "Sublingual route")}]
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    assert statuses(determine([injectable, course]))[routes] == "not-documented"
    chewable = med_request("Morphine Sulfate 15 MG Chewable Tablet", "2025-02-01", "2025-06-01", "stopped")
    assert statuses(determine([injectable, chewable]))[routes] == "met"


@pytest.mark.parametrize(
    "name", ["Oxycodone 5 MG Non-Oral Tablet", "Oxycodone 5 MG Nonoral Tablet", "Oxycodone Non Oral Capsule"]
)
def test_a_tablet_said_to_be_non_oral_is_no_oral_form(name: str) -> None:
    """review23b L4: "non" took "oral" out of "Non-Oral Tablet", but "tablet", an oral dose form's word,
    still named it: GEHA's "oral and injectable" met with no oral course. "non-oral" and "nonoral" before a
    dose form's word make it none of the oral route's (route-oral's `not_this`)."""
    injectable = med_request(
        "Morphine Sulfate 2 MG/ML Injectable Solution", "2025-01-01", "2025-06-01", "stopped"
    )
    course = med_request(name, "2025-02-01", "2025-06-01", "stopped", code="7804")
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    assert statuses(determine([injectable, course]))[routes] == "not-documented"


@pytest.mark.parametrize(
    ("name", "route", "words", "name_says"),
    [
        ("Buprenorphine 8 MG Tablet", "37839007", "Sublingual route", "met"),
        # the name says its route itself, after the tablet (words24): no oral form with no route said
        ("Buprenorphine 8 MG Tablet, Sublingual", "37839007", "Sublingual route", "not-documented"),
        ("Fentanyl 100 MCG Tablet", "54471007", "Buccal route", "met"),
        ("Morphine Sulfate 15 MG Tablet", None, "sublingual", "met"),
    ],
)
def test_a_tablet_given_by_another_route_than_its_dosage_names_is_no_oral_form(
    name: str, route: str | None, words: str, name_says: str
) -> None:
    """review23b: a name saying only "Tablet" (as NDC product names and formularies write it) read as oral
    beside a dosage route coded SNOMED CT 37839007 Sublingual or 54471007 Buccal route, or typed
    "sublingual": GEHA's "oral and injectable" met with no oral course. The dosage's route, where it names
    one, says how the drug was given; a name's dose form counts only where it names none."""
    injectable = med_request(
        "Morphine Sulfate 2 MG/ML Injectable Solution", "2025-01-01", "2025-06-01", "stopped"
    )
    course = med_request(name, "2025-02-01", "2025-06-01", "stopped", code="1819")
    course["dosageInstruction"] = [
        {"route": concept(SCT, route, words) if route else {"text": words}},
    ]
    routes = "geha.chronic-pain.opioid-failure-6wk.routes"
    assert statuses(determine([injectable, course]))[routes] == "not-documented"
    oral = med_request(name, "2025-02-01", "2025-06-01", "stopped", code="1819")
    oral["dosageInstruction"] = [{"route": {"text": "by mouth"}}]
    assert statuses(determine([injectable, oral]))[routes] == "met"
    unsaid = med_request(name, "2025-02-01", "2025-06-01", "stopped", code="1819")
    unsaid["dosageInstruction"] = [{"route": {"text": "per protocol"}}]  # names no route: the name's tablet
    assert statuses(determine([injectable, unsaid]))[routes] == name_says


def test_product_code_is_read_by_ingredient_name() -> None:
    chart = [
        med_request("Oxycodone Hydrochloride 10 MG Oral Tablet", "2025-01-01", "2025-06-01", code="1049683")
    ]
    d = determine(chart)
    b = next(r for r in d.criteria if r.id == "geha.chronic-pain.opioid-failure-6wk")
    duration = next(c for c in b.children if c.id.endswith(".duration"))
    assert duration.status == Status.MET
    assert "Oxycodone" in duration.evidence[0].text


def test_non_opioid_is_not_an_opioid() -> None:
    chart = [med_request("Ibuprofen 400 MG Oral Tablet", "2025-01-01", "2025-12-01", code="197806")]
    assert statuses(determine(chart))["geha.chronic-pain.opioid-failure-6wk.duration"] == "not-documented"


def test_default_order_length_is_30_days_and_supply_duration_is_used() -> None:
    thirty = [med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01")]
    supplied = [med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01", supply_days=60)]
    assert statuses(determine(thirty))["geha.chronic-pain.opioid-failure-6wk.duration"] == "not-met"
    assert statuses(determine(supplied))["geha.chronic-pain.opioid-failure-6wk.duration"] == "met"


@pytest.mark.parametrize(
    ("outcome", "expected"), [("ineffective", "met"), ("intolerable", "met"), ("effective", "not-met")]
)
def test_opioid_outcome_assessment_decides_failure(outcome: str, expected: str) -> None:
    chart = [coded_assessment("opioid-trial-outcome", outcome)]
    assert statuses(determine(chart))["geha.chronic-pain.opioid-failure-6wk.failure"] == expected


def test_opioid_intolerance_allergy_is_failure() -> None:
    chart = [allergy("Morphine", "7052", kind="intolerance")]
    assert statuses(determine(chart))["geha.chronic-pain.opioid-failure-6wk.failure"] == "met"


def test_underlying_treatment_needs_a_spine_procedure_not_a_trial() -> None:
    assert statuses(determine([procedure("62322", "2025-01-01")]))[
        "geha.chronic-pain.underlying-tx-failed"
    ] == ("not-documented")
    assert (
        statuses(determine([procedure("63047", "2022-01-01")]))["geha.chronic-pain.underlying-tx-failed"]
        == "met"
    )


@pytest.mark.parametrize(("post", "expected"), [(4, "met"), (5, "not-met"), (3, "met")])
def test_trial_relief_is_50_percent_or_better(post: int, expected: str) -> None:
    chart = [
        procedure("62324", "2025-10-01T09:00:00Z"),
        pain(8, "2025-09-30T15:00:00Z"),
        pain(post, "2025-10-01T15:00:00Z"),
    ]
    assert statuses(determine(chart))["geha.trial.relief-ge50"] == expected


def test_explicit_relief_assessment_wins_over_scores() -> None:
    chart = [
        procedure("62324", "2025-10-01T09:00:00Z"),
        pain(8, "2025-09-30T15:00:00Z"),
        pain(8, "2025-10-01T15:00:00Z"),
        assessment("it-trial-pain-relief-pct", valueQuantity={"value": 60, "unit": "%"}),
    ]
    assert statuses(determine(chart))["geha.trial.relief-ge50"] == "met"


@pytest.mark.parametrize(
    ("value", "finding", "evidence"),
    [
        (-0.0, "0 % relief (needs at least 50 %)", "recorded relief 0 %"),
        (0.4, "0 % relief (needs at least 50 %)", "recorded relief 0.4 %"),  # the control
    ],
)
def test_a_recorded_trial_relief_of_zero_is_never_said_with_a_minus_sign(
    value: float, finding: str, evidence: str
) -> None:
    """review30c L3: a recorded relief of -0.0 % showed on the card as "-0 % relief" (a negative one is
    not read as recorded: the scores decide): the trial checks formatted their numbers themselves, not
    through `wording.number`, the one place that writes a zero unsigned."""
    chart = [
        procedure("62324", "2025-10-01T09:00:00Z"),
        pain(8, "2025-09-30T15:00:00Z"),
        pain(8, "2025-10-01T15:00:00Z"),
        assessment("it-trial-pain-relief-pct", valueQuantity={"value": value, "unit": "%"}),
    ]
    result = result_of(determine(chart), "geha.trial.relief-ge50")
    assert result.finding == finding
    assert [e.text for e in result.evidence] == [evidence]


def test_trial_without_baseline_is_undocumented_not_failed() -> None:
    chart = [
        procedure("62324", "2025-10-01T09:00:00Z"),
        pain(8, "2025-08-01T15:00:00Z"),
        pain(2, "2025-10-01T15:00:00Z"),
    ]
    d = determine(chart)
    relief = next(r for r in d.criteria if r.id == "geha.trial.relief-ge50")
    assert relief.status == Status.NOT_DOCUMENTED
    assert "30 days" in relief.finding


def test_trial_criteria_do_not_apply_to_a_trial_order() -> None:
    d = determine(meeting_chart(), order=service_request("62324"))
    assert d.request_kind == "trial"
    assert "geha.trial.relief-ge50" not in statuses(d)
    assert d.outcome == Outcome.MEETS


@pytest.mark.parametrize(
    ("value", "expected"), [("none", "met"), ("minimal", "not-met"), ("unacceptable", "not-met")]
)
def test_side_effects_must_be_none(value: str, expected: str) -> None:
    assert (
        statuses(determine([coded_assessment("it-trial-side-effects", value)]))["geha.trial.no-side-effects"]
        == expected
    )


def test_patient_refusal_is_not_met() -> None:
    chart = [assessment("it-trial-patient-acceptance", valueBoolean=False)]
    assert statuses(determine(chart))["geha.trial.patient-acceptance"] == "not-met"


def test_a_psych_clearance_answered_no_clears_nothing() -> None:
    """Criterion G: only a psych-clearance of yes, dated after the condition, clears it; a recorded "no"
    leaves the recent suicidal ideation a contraindication."""
    recent = condition(ICD, "R45.851", "2026-10-01")
    refused = [recent, assessment("psych-clearance", "2026-10-15", valueBoolean=False)]
    assert statuses(determine(refused))["geha.ci.psych-instability"] == "not-met"


def test_an_undated_psych_condition_is_cleared_by_a_clearance() -> None:
    """An undated condition cannot be placed in the 90-day window; a clearance of yes settles it."""
    undated = condition(ICD, "R45.851", None)
    assert statuses(determine([undated]))["geha.ci.psych-instability"] == "not-documented"
    cleared = [undated, assessment("psych-clearance", "2026-10-15", valueBoolean=True)]
    assert statuses(determine(cleared))["geha.ci.psych-instability"] == "met"


def test_recent_suicidal_ideation_fails_and_clearance_restores() -> None:
    recent = condition(ICD, "R45.851", "2026-10-01")
    assert statuses(determine([recent]))["geha.ci.psych-instability"] == "not-met"
    cleared = [recent, assessment("psych-clearance", "2026-10-15", valueBoolean=True)]
    assert statuses(determine(cleared))["geha.ci.psych-instability"] == "met"
    old = condition(ICD, "F31.2", "2019-01-01")
    assert statuses(determine([old]))["geha.ci.psych-instability"] == "not-documented"  # active: ask
    old_cleared = [old, assessment("psych-clearance", "2025-01-01", valueBoolean=True)]
    assert statuses(determine(old_cleared))["geha.ci.psych-instability"] == "met"
    resolved = condition(ICD, "F31.2", "2019-01-01", status=None)
    assert (
        statuses(determine([resolved]))["geha.ci.psych-instability"] == "met"
    )  # status not given, outside window


def test_bipolar_in_remission_is_not_acute() -> None:
    assert statuses(determine([condition(ICD, "F31.71", "2026-10-01")]))["geha.ci.psych-instability"] == "met"


def test_active_infection_fails_and_old_unstated_infection_does_not() -> None:
    assert statuses(determine([condition(ICD, "L03.115", "2026-11-01")]))["geha.ci.infection"] == "not-met"
    assert statuses(determine([condition(SCT, "91302008", "2020-01-01")]))["geha.ci.infection"] == "not-met"
    old = condition(ICD, "N39.0", "2024-01-01", status=None)
    assert statuses(determine([old]))["geha.ci.infection"] == "met"


def test_a_contraindication_found_is_named_on_the_card_as_words() -> None:
    """The clinician reads which diagnosis blocks the order, and the chart's words stay words."""
    cellulitis = condition(ICD, "L03.115", "2026-11-04", display="Cellulitis [see](https://x.example) <b>")
    d = determine([cellulitis])
    assert statuses(d)["geha.ci.infection"] == "not-met"
    words = "documented: Cellulitis [see](https://x.example) <b> (onset 4 Nov 2026)"
    assert card_line(d, "geha.ci.infection").endswith(words)
    assert r"documented: Cellulitis \[see\](https\://x.example) \<b> (onset 4 Nov 2026)" in detail(
        Episode.of([d])
    )


def test_sud_is_not_documented_until_its_treatment_is_and_nicotine_counts_for_geha() -> None:
    """GEHA G, "No diagnosed substance-related disorder, or patient currently receiving active treatment": a
    disorder found leaves it open until the treatment is documented, never "not met" by the
    treatment's absence (contract §3: absent, not disproved; AMB-20's in-treatment fact)."""
    assert statuses(determine([]))["geha.ci.sud"] == "met"
    for diagnosis in (condition(ICD, "F11.20", "2024-01-01"), condition(ICD, "F17.210", "2024-01-01")):
        assert statuses(determine([diagnosis]))["geha.ci.sud"] == "not-documented"
    abuse = determine([condition(SCT, "5602001", "2024-01-01", "Opioid abuse")])
    assert statuses(abuse)["geha.ci.sud"] == "not-documented"
    found = "documented (Opioid abuse); no active treatment of it documented"
    assert finding_of(abuse, "geha.ci.sud") == found
    assert abuse.outcome == Outcome.INSUFFICIENT
    treated = [
        condition(ICD, "F11.20", "2024-01-01"),
        med_request("Buprenorphine 8 MG Sublingual Tablet", "2026-10-01", status="active", code="1819"),
    ]
    assert statuses(determine(treated))["geha.ci.sud"] == "met"


def test_a_past_course_of_sud_treatment_is_not_active_treatment() -> None:
    """GEHA G: "currently receiving active treatment": a completed buprenorphine course is history."""
    past = [
        condition(ICD, "F11.20", "2024-01-01"),
        med_request("Buprenorphine 8 MG Sublingual Tablet", "2024-03-01", status="completed", code="1819"),
    ]
    assert statuses(determine(past))["geha.ci.sud"] == "not-documented"


@pytest.mark.parametrize(("onset", "expected"), [("2026-10-22", "not-met"), ("2026-10-21", "met")])
def test_an_infection_30_days_old_is_current_and_one_31_days_old_is_not(onset: str, expected: str) -> None:
    """GEHA F: no infection within 30 days of the request (21 Nov 2026): the 30th day before counts;
    the infection's clinical status is not given, so only its date places it."""
    chart = [*meeting_chart(), condition(ICD, "L03.115", onset, status=None)]
    assert statuses(determine(chart))["geha.ci.infection"] == expected


@pytest.mark.parametrize(
    ("status", "reason"), [("completed", "ineffective"), ("active", "ineffective"), ("stopped", None)]
)
def test_only_a_stopped_order_with_a_reason_records_a_drug_failure(status: str, reason: str | None) -> None:
    """Contract §3: drug failure is a stopped MedicationRequest with a statusReason; the same reason on
    an order that ran its course (or still runs), or a stop without a reason, records no failure."""
    display, code = OXYCODONE_TABLET
    course = med_request(display, "2025-01-10", "2025-04-10", status, reason=reason, code=code)
    assert statuses(determine([course]))["geha.chronic-pain.opioid-failure-6wk.failure"] == "not-documented"


def test_an_allergy_is_not_an_intolerance_that_records_a_drug_failure() -> None:
    """Contract §3: an AllergyIntolerance of type intolerance records a failure; an allergy does not."""
    assert statuses(determine([allergy("Morphine", "7052")]))[
        "geha.chronic-pain.opioid-failure-6wk.failure"
    ] == ("not-documented")
    intolerant = allergy("Morphine", "7052", kind="intolerance")
    assert statuses(determine([intolerant]))["geha.chronic-pain.opioid-failure-6wk.failure"] == "met"


def test_allergy_to_ordered_infusate_fails() -> None:
    chart = [allergy("Morphine", "7052")]
    assert statuses(determine(chart))["geha.ci.allergy-agent"] == "not-met"
    ziconotide_order = (infusate_request("ziconotide 100 MCG/ML Injectable Solution", "0"),)
    d = determine(chart, drugs=ziconotide_order)
    assert statuses(d)["geha.ci.allergy-agent"] == "met"
    assert next(r.finding for r in d.criteria if r.id == "geha.ci.allergy-agent") == (
        "no allergy to ziconotide documented"
    )
    assert statuses(determine([allergy("Penicillin V", "7984")]))["geha.ci.allergy-agent"] == "met"


def test_an_allergy_to_one_of_the_pumps_drugs_names_that_drug_alone() -> None:
    """Morphine with bupivacaine in the pump and an allergy to bupivacaine: the finding names the drug
    the allergy hit, not both (fix-r's loose end, s18)."""
    drugs = (infusate_request(), infusate_request("bupivacaine 7.5 MG/ML Injectable Solution", "1815"))
    d = determine([allergy("Bupivacaine")], drugs=drugs)
    assert statuses(d)["geha.ci.allergy-agent"] == "not-met"
    assert finding_of(d, "geha.ci.allergy-agent") == "allergy to bupivacaine documented"


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_a_refuted_allergy_to_the_infusate_does_not_count(verification: str) -> None:
    """Contract §3: an allergy to the infusate counts when it is not refuted (or entered in error)."""
    morphine = allergy("Morphine", "7052")
    morphine["verificationStatus"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": verification,
            }
        ]
    }
    assert statuses(determine([morphine]))["geha.ci.allergy-agent"] == "met"


def test_allergy_unknown_infusate_with_it_drug_allergy_is_undocumented() -> None:
    assert (
        statuses(determine([allergy("Morphine", "7052")], drugs=()))["geha.ci.allergy-agent"]
        == "not-documented"
    )
    assert statuses(determine([], drugs=()))["geha.ci.allergy-agent"] == "met"


@pytest.mark.parametrize(
    "evidence",
    [
        condition(ICD, "Z95.0", "2020-01-01"),
        device(
            {"coding": [{"system": SCT, "code": "706004007", "display": "Implantable cardiac pacemaker"}]}
        ),
        device({"text": "Spinal cord stimulator, rechargeable"}),
        procedure("63685", "2021-01-01", CPT),
    ],
)
def test_other_programmable_device_excludes(evidence: dict[str, Any]) -> None:
    d = determine([*meeting_chart(), evidence])
    assert statuses(d)["geha.excl.programmable-device"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize("status", [None, "active", "inactive", "entered-in-error", "unknown"])
def test_only_a_device_whose_status_is_active_is_in_place(status: str | None) -> None:
    """Contract §2 and §3, "an active `Device`", and criteria-and-codes' common filters ("Device `status` =
    active"): a Device with no status is not active (s29, Q3; it was read as in place before). One reading
    for every use of a chart's Device: neither the pump in place (the implant is no replacement) nor
    another programmable device, nor either's evidence on the card."""
    pacemaker = device({"text": "Cardiac pacemaker"})
    pump = device({"text": "SynchroMed II intrathecal pump"})
    for found in (pacemaker, pump):
        if status is None:
            del found["status"]
        else:
            found["status"] = status
    active = status == "active"
    with_pacemaker = determine([*meeting_chart(), pacemaker])
    assert statuses(with_pacemaker)["geha.excl.programmable-device"] == ("not-met" if active else "met")
    assert (with_pacemaker.outcome == Outcome.DOES_NOT_MEET) is active
    assert ("Cardiac pacemaker" in detail(Episode.of([with_pacemaker]))) is active
    with_pump = determine([*meeting_chart(), pump])
    assert with_pump.request_kind == ("replacement" if active else "permanent-implant")
    assert ("SynchroMed II" in detail(Episode.of([with_pump]))) is active


@pytest.mark.parametrize("status", ["Active", "ACTIVE", "retired", ["active"], 1, None])
def test_a_device_whose_status_is_none_of_r4_s_codes_could_not_be_read(status: Any) -> None:
    """review29d L6: a Device.status that is not one of R4's codes (active, inactive, entered-in-error,
    unknown), or not a string (null is none in FHIR JSON), made the Device silently no device: a pacemaker
    so written left GEHA's exclusion met and the 62362 "meets all 14". Such a Device is a record that
    could not be read (record._read, as a malformed date is): the exclusion could not be checked, and
    the card says so, and what was wrong, once (review30c L5: "some of the EHR's implanted devices could not
    be read (1 record(s) could not be read)"); a pump so written is not read as in place either."""
    pacemaker = device({"text": "Cardiac pacemaker"})
    pacemaker["status"] = status
    found = determine([*meeting_chart(), pacemaker])
    [excluded] = [c for c in found.criteria if c.id == "geha.excl.programmable-device"]
    assert excluded.unchecked_reason == (
        "could not be checked: some of the EHR's implanted devices could not be read "
        "(1 record(s) with a status none of FHIR R4's codes)"
    )
    assert detail(Episode.of([found])).count("could not be read") == 1
    assert found.outcome == Outcome.INSUFFICIENT
    assert "could not be checked" in summary(Episode.of([found]))
    pump = device({"text": "SynchroMed II intrathecal pump"})
    pump["status"] = status
    assert determine([*meeting_chart(), pump]).request_kind == "permanent-implant"


def test_removed_stimulator_and_inactive_device_do_not_exclude() -> None:
    chart = [
        *meeting_chart(),
        procedure("63685", "2021-01-01"),
        procedure("63688", "2022-01-01"),
        device({"text": "Cardiac pacemaker"}, status="inactive"),
    ]
    assert statuses(determine(chart))["geha.excl.programmable-device"] == "met"


@pytest.mark.parametrize(
    "text", ["SynchroMed II intrathecal pump", "Implanted infusion pump", "Implantable drug pump"]
)
def test_existing_intrathecal_pump_is_a_replacement_not_an_exclusion(text: str) -> None:
    """Contract §2: an implant is a replacement when "an active Device that is an implanted infusion
    pump" is in place, however its type names it."""
    chart = [*meeting_chart(), device({"text": text})]
    d = determine(chart)
    assert d.request_kind == "replacement"
    assert statuses(d)["geha.excl.programmable-device"] == "met"


def test_an_external_infusion_pump_is_not_a_pump_in_place() -> None:
    chart = [*meeting_chart(), device({"text": "Ambulatory infusion pump"})]
    assert determine(chart).request_kind == "permanent-implant"


@pytest.mark.parametrize(
    ("display", "code"),
    [
        ("Insulin Regular, Human 100 UNT/ML Injectable Solution", "253182"),
        ("Heparin sodium 1000 UNT/ML Injectable Solution", "5224"),
    ],
)
def test_excluded_infusate_does_not_meet(display: str, code: str) -> None:
    d = determine(meeting_chart(), drugs=(infusate_request(display, code),))
    assert statuses(d)["geha.excl.infusate"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_psych_evaluation_documentation() -> None:
    assert statuses(determine([procedure("90791", "2025-01-01")]))["geha.doc.psych-eval"] == "met"
    assert statuses(determine([assessment("psych-clearance", valueBoolean=False)]))[
        "geha.doc.psych-eval"
    ] == ("not-met")
    assert statuses(determine([]))["geha.doc.psych-eval"] == "not-documented"


def test_a_visit_with_no_result_does_not_overrule_a_recorded_not_cleared() -> None:
    """A 90791 records that an evaluation was done, not that it cleared the patient (contract §5
    psych-clearance: "evaluation done and patient cleared"): a later visit never makes a recorded "no"
    a "yes" (xpayer finding 4), but the "no" answered for the earlier evaluation only: the later one's
    result is not documented, never "not covered" on a stale answer (session review s36, #5). A "no"
    given the day of the visit is that visit's result."""
    refused = assessment("psych-clearance", "2025-01-01", valueBoolean=False)
    re_evaluated = determine([refused, procedure("90791", "2026-06-01")])
    found = statuses(re_evaluated)
    assert (found["geha.doc.psych-eval"], found["geha.doc.psych-eval.done"]) == ("not-documented", "met")
    assert "overrules" not in card_line(re_evaluated, "geha.doc.psych-eval")
    assert finding_of(re_evaluated, "geha.doc.psych-eval.cleared") == (
        "recorded no (1 Jan 2025), before the later CPT 90791 (1 Jun 2026), whose result is not recorded"
    )
    same_day = [
        assessment("psych-clearance", "2026-06-01", valueBoolean=False),
        procedure("90791", "2026-06-01"),
    ]
    assert statuses(determine(same_day))["geha.doc.psych-eval"] == "not-met"
    cleared_later = [refused, assessment("psych-clearance", "2026-06-01", valueBoolean=True)]
    assert statuses(determine(cleared_later))["geha.doc.psych-eval"] == "met"
    refused_after = [
        procedure("90791", "2025-01-01"),
        assessment("psych-clearance", "2026-06-01", valueBoolean=False),
    ]
    assert statuses(determine(refused_after))["geha.doc.psych-eval"] == "not-met"


@pytest.mark.parametrize(
    ("answered", "visited", "status"),
    [
        ("2026-06-01T23:00:00-05:00", "2026-06-02T01:00:00Z", "not-met"),  # the visit 3 h before: its result
        ("2026-06-01T10:00:00Z", "2026-06-02T15:00:00Z", "not-documented"),  # a visit on a later day
        ("2026-06-01", "2026-06-01", "not-met"),  # the day of the visit: its result
        ("2026-06", "2026-06-20", "not-documented"),  # the visit may have followed an answer dated June
        ("2026-06-20", "2026", "not-documented"),  # a visit dated to the answer's year may have followed it
        ("2026-06-20", "2025", "not-met"),  # a visit in an earlier year did not
    ],
)
def test_a_visit_supersedes_an_answer_only_on_a_day_that_is_or_may_be_later(
    answered: str, visited: str, status: str
) -> None:
    """pump25 LOW 6: days taken each in its own offset put a visit three hours before the answer on a
    later day; and a visit dated to a month or a year read as its first day."""
    chart = [assessment("psych-clearance", answered, valueBoolean=False), procedure("90791", visited)]
    assert statuses(determine(chart))["geha.doc.psych-eval"] == status


@pytest.mark.parametrize("answer", [True, False])
def test_an_evaluation_answer_cannot_be_trusted_while_the_procedures_are_unread(answer: bool) -> None:
    """A psych-clearance answer holds only for evaluations before it: with the procedures unread, a
    later evaluation could have superseded it, so it is neither met nor not met but could not be
    checked (the card offers to call again); read, the same answer decides."""
    chart = [assessment("psych-clearance", "2025-01-01", valueBoolean=answer)]
    unread = determine(chart, unavailable={"Procedure": "HTTP 503"})
    cleared = next(r for top in unread.criteria for r in top.walk() if r.id == "geha.doc.psych-eval.cleared")
    assert cleared.status == Status.NOT_DOCUMENTED
    assert cleared.unchecked_reason is not None and "procedure history" in cleared.unchecked_reason
    assert statuses(determine(chart))["geha.doc.psych-eval"] == ("met" if answer else "not-met")
    no_answer = determine([], unavailable={"Procedure": "HTTP 503"})
    assert statuses(no_answer)["geha.doc.psych-eval.cleared"] == "met"  # nothing to supersede


@pytest.mark.parametrize(
    ("chart", "drug", "indication"),
    [
        (
            [condition(ICD, "G35.A", "2019-01-01")],
            infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),
            "spasticity",
        ),
        (
            [condition(ICD, "C61", "2024-01-01"), condition(ICD, "C79.51", "2025-01-01")],
            infusate_request(),
            "cancer-pain",
        ),
        (
            [condition(ICD, "G24.1", "2019-01-01")],
            infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),
            "dystonia",
        ),
    ],
)
def test_geha_does_not_address_other_indications(
    chart: list[dict[str, Any]], drug: dict[str, Any], indication: str
) -> None:
    d = determine(chart, drugs=(drug,))
    assert d.indication == indication
    assert d.outcome == Outcome.NOT_APPLICABLE
    assert d.criteria == ()
    assert "GEHA" in d.explanation


def test_cancer_with_a_non_malignant_cause_is_evaluated_as_non_malignant() -> None:
    d = determine([condition(ICD, "C61", "2024-01-01"), condition(ICD, "M96.1", "2023-01-01")])
    assert d.indication == "non-malignant-pain"
    assert d.outcome != Outcome.NOT_APPLICABLE


def test_refill_is_not_addressed_by_geha() -> None:
    d = determine(meeting_chart(), order=service_request("95990"))
    assert d.request_kind == "refill-analysis"
    assert d.outcome == Outcome.NOT_APPLICABLE
    assert "refills" in d.explanation


def test_unavailable_data_never_counts_as_absence() -> None:
    down = {t: "HTTP 503" for t in CLINICAL_TYPES}
    d = determine([], unavailable=down)
    found = statuses(d)
    assert found["geha.ci.infection"] == "not-documented"
    assert found["geha.excl.programmable-device"] == "not-documented"
    infection = next(r for r in d.criteria if r.id == "geha.ci.infection")
    assert infection.unchecked_reason is not None and "could not be checked" in infection.unchecked_reason
    assert "HTTP 503" in infection.finding
    assert d.outcome == Outcome.INSUFFICIENT


def test_positive_evidence_still_counts_when_another_query_failed() -> None:
    d = determine(meeting_chart(), unavailable={"AllergyIntolerance": "timed out"})
    found = statuses(d)
    assert found["geha.chronic-pain.known-cause"] == "met"
    assert found["geha.ci.allergy-agent"] == "not-documented"


def test_a_conditions_onset_dates_it_before_its_recorded_date() -> None:
    """Contract §3: a Condition's date is onsetDateTime, else onsetPeriod.start, else recordedDate: a pain
    present since 2024 and put on the problem list last month has lasted more than 6 months."""
    chart = [condition(ICD, "M96.1", "2024-01-01", recorded="2026-10-15")]
    assert statuses(determine(chart))["geha.chronic-pain.duration-6mo"] == "met"
    recorded_only = [condition(ICD, "M96.1", None, recorded="2026-10-15")]
    assert statuses(determine(recorded_only))["geha.chronic-pain.duration-6mo"] == "not-met"


def test_not_met_wins_over_not_documented() -> None:
    d = determine([condition(ICD, "L03.115", "2026-11-01")])
    assert d.outcome == Outcome.DOES_NOT_MEET
    assert "No current infection" in next(r.text for r in d.criteria if r.status == Status.NOT_MET)


def test_evaluation_date_is_an_input() -> None:
    chart = [condition(ICD, "M96.1", "2026-01-01")]
    assert statuses(determine(chart, today=date(2026, 6, 30)))["geha.chronic-pain.duration-6mo"] == "not-met"
    assert statuses(determine(chart, today=date(2026, 7, 2)))["geha.chronic-pain.duration-6mo"] == "met"


# --------------------------------------------------------------------------- review fixes (issue 2 review)


def test_sud_not_met_becomes_undocumented_when_treatment_data_failed() -> None:
    chart = [*meeting_chart(), condition(ICD, "F11.20", "2024-01-01")]
    d = determine(chart, unavailable={"MedicationRequest": "timed out"})
    sud = next(r for r in d.criteria if r.id == "geha.ci.sud")
    assert sud.status == Status.NOT_DOCUMENTED
    assert "could not be checked" in sud.finding
    assert d.outcome != Outcome.DOES_NOT_MEET


def test_psych_not_met_becomes_undocumented_when_clearance_data_failed() -> None:
    chart = [condition(ICD, "R45.851", "2026-10-01")]
    assert statuses(determine(chart, unavailable={"Observation": "HTTP 503"}))[
        "geha.ci.psych-instability"
    ] == ("not-documented")


def test_a_failed_medication_statement_query_does_not_hide_infections() -> None:
    d = determine(meeting_chart(), unavailable={"MedicationStatement": "HTTP 404"})
    assert statuses(d)["geha.ci.infection"] == "met"


def test_a_subcutaneous_heparin_draft_is_not_the_pump_drug() -> None:
    heparin = infusate_request("Heparin sodium 5000 UNT/ML Injectable Solution", "5224")
    heparin["dosageInstruction"] = [{"route": {"coding": [{"system": SCT, "code": "34206005"}]}}]
    d = determine(meeting_chart(), drugs=(infusate_request(), heparin))
    assert statuses(d)["geha.excl.infusate"] == "met"
    assert d.outcome == Outcome.MEETS


def test_an_oral_baclofen_draft_does_not_make_it_a_spasticity_request() -> None:
    oral = infusate_request("baclofen 10 MG Oral Tablet", "1292")
    oral["dosageInstruction"] = [{"route": {"coding": [{"system": SCT, "code": "26643006"}]}}]
    assert determine(meeting_chart(), drugs=(infusate_request(), oral)).indication == "non-malignant-pain"


def test_removing_one_device_does_not_cancel_another() -> None:
    chart = [*meeting_chart(), procedure("33208", "2015-01-01"), procedure("63688", "2020-01-01")]
    assert statuses(determine(chart))["geha.excl.programmable-device"] == "not-met"


def test_scs_trial_leads_are_treatment_not_a_programmable_device() -> None:
    chart = [
        *without(meeting_chart(), lambda r: r.get("code", {}).get("coding", [{}])[0].get("code") == "64483"),
        procedure("63650", "2024-01-01"),
    ]
    found = statuses(determine(chart))
    assert found["geha.chronic-pain.underlying-tx-failed"] == "met"
    assert found["geha.excl.programmable-device"] == "met"


def test_an_epidural_steroid_injection_is_treatment_not_a_trial() -> None:
    chart = [
        *meeting_chart(),
        steroid_injection("62321", "2025-12-01T09:00:00Z"),
        pain(6, "2025-12-01T08:00:00Z"),
        pain(5, "2025-12-01T12:00:00Z"),
    ]
    d = determine(chart)
    assert statuses(d)["geha.trial.relief-ge50"] == "met"  # still the October trial, not the injection
    only_esi = [steroid_injection("62323", "2024-01-01")]
    assert statuses(determine(only_esi))["geha.chronic-pain.underlying-tx-failed"] == "met"


@pytest.mark.parametrize("rxcui", sorted(STEROID_RXCUIS))
def test_a_steroid_recorded_by_rxnorm_code_alone_is_treatment_not_a_trial(rxcui: str) -> None:
    """s36 #6: the chart's only 62322 used methylprednisolone (or another corticosteroid, as an
    ingredient or an injectable product) recorded by its RxNorm code alone. It is an epidural steroid
    injection (AMB-34): the scores around it measure no trial, and it is the underlying treatment tried."""
    chart = [
        *without_codes(meeting_chart(), "62324", "64483"),
        steroid_injection("62322", "2025-10-01T09:00:00Z", rxcui=rxcui),
    ]
    found = statuses(determine(chart))
    assert found["geha.trial.relief-ge50"] == "not-documented"
    assert found["geha.chronic-pain.underlying-tx-failed"] == "met"


def test_snomed_coded_morphine_allergy_is_found() -> None:
    allergy_resource = allergy("x", "0")
    allergy_resource["code"] = {"coding": [{"system": SCT, "code": "373529000"}]}
    assert statuses(determine([allergy_resource]))["geha.ci.allergy-agent"] == "not-met"


def test_allergy_to_an_ordered_drug_outside_the_value_sets_is_found() -> None:
    drug = infusate_request("meperidine hydrochloride 50 MG/ML Injectable Solution", "6754")
    assert (
        statuses(determine([allergy("Meperidine", "6754")], drugs=(drug,)))["geha.ci.allergy-agent"]
        == "not-met"
    )


def test_a_coded_status_reason_counts_as_failure() -> None:
    order = med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-03-01", "stopped")
    order["statusReason"] = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ADVEVENT"}]
    }
    assert statuses(determine([order]))["geha.chronic-pain.opioid-failure-6wk.failure"] == "met"


def test_an_undated_active_psychiatric_diagnosis_is_not_documented() -> None:
    found = determine([condition(ICD, "R45.851", onset=None)])
    psych = next(r for r in found.criteria if r.id == "geha.ci.psych-instability")
    assert psych.status == Status.NOT_DOCUMENTED
    older = determine([condition(ICD, "F20.9", "2016-01-01")])
    finding = next(r.finding for r in older.criteria if r.id == "geha.ci.psych-instability")
    assert "older than 12 weeks 6 days" in finding


def test_future_validity_does_not_count_as_exposure() -> None:
    chart = [med_request("Oxycodone 5 MG Oral Tablet", "2026-11-11", "2027-11-11", status="active")]
    assert statuses(determine(chart))["geha.chronic-pain.opioid-failure-6wk.duration"] == "not-documented"


def test_statement_statuses_that_are_not_exposure_are_ignored() -> None:
    statement = med_statement({"text": "Oxycodone 5 MG Oral Tablet"}, "intended", "2025-01-01", "2025-06-01")
    assert (
        statuses(determine([statement]))["geha.chronic-pain.opioid-failure-6wk.duration"] == "not-documented"
    )


def test_buprenorphine_does_not_treat_nicotine_dependence() -> None:
    chart = [
        condition(ICD, "F17.210", "2024-01-01"),
        med_request("Buprenorphine 10 MCG/HR Transdermal System", "2026-10-01", status="active", code="1819"),
    ]
    assert statuses(determine(chart))["geha.ci.sud"] == "not-documented"


def test_pain_scores_outside_zero_to_ten_are_ignored() -> None:
    chart = [
        procedure("62324", "2025-10-01T09:00:00Z"),
        pain(80, "2025-09-30T15:00:00Z"),
        pain(4, "2025-10-01T15:00:00Z"),
    ]
    assert statuses(determine(chart))["geha.trial.relief-ge50"] == "not-documented"


def test_integer_one_is_not_patient_acceptance() -> None:
    chart = [assessment("it-trial-patient-acceptance", valueInteger=1)]
    assert statuses(determine(chart))["geha.trial.patient-acceptance"] == "not-documented"


def test_a_catheter_ordered_with_a_pump_is_part_of_the_implant() -> None:
    catheter = service_request("62350")
    d = determine(meeting_chart(), order=catheter, companions=(service_request("62362"),))
    assert d.request_kind == "permanent-implant"
    assert "geha.trial.relief-ge50" in statuses(d)
    alone = determine(meeting_chart(), order=service_request("62350"))
    assert alone.request_kind == "catheter"
    revision = determine(
        [*meeting_chart(), device({"text": "SynchroMed II intrathecal pump"})], order=service_request("62350")
    )
    assert revision.request_kind == "replacement"


def test_malformed_resources_are_dropped_and_mark_their_type_unreadable() -> None:
    broken = condition(ICD, "L03.115", "2026-11-01")
    broken["onsetPeriod"] = "yesterday"
    broken.pop("onsetDateTime")
    d = determine([*meeting_chart(), broken])
    infection = next(r for r in d.criteria if r.id == "geha.ci.infection")
    assert infection.status == Status.NOT_DOCUMENTED
    assert "could not be read" in infection.finding


def test_a_criterion_can_be_limited_to_indications(tmp_path: Any) -> None:
    import shutil

    import yaml

    import policies
    from service.catalog import load_catalog
    from service.engine.evaluate import evaluate_order
    from tests.builders import context

    root = tmp_path / "policies"
    shutil.copytree(policies.directory(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    raw = yaml.safe_load((root / "geha.yaml").read_text(encoding="utf-8"))
    raw["scope"]["indications"] = ["non-malignant-pain", "spasticity"]
    raw["criteria"][0]["indications"] = ["spasticity"]
    (root / "geha.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    policy = load_catalog(root).policies["geha-idds-chronic-pain"]
    pain_ids = {r.id for r in evaluate_order(policy, context(meeting_chart())).criteria}
    assert "geha.chronic-pain.duration-6mo" not in pain_ids
    assert "geha.chronic-pain.known-cause" in pain_ids


def test_an_intolerance_does_not_exclude_but_counts_as_opioid_failure() -> None:
    chart = [*meeting_chart(), allergy("Morphine", "7052", kind="intolerance")]
    found = statuses(determine(chart))
    assert found["geha.ci.allergy-agent"] == "met"
    assert found["geha.chronic-pain.opioid-failure-6wk.failure"] == "met"


def test_a_treated_opioid_dependence_does_not_clear_an_alcohol_use_disorder() -> None:
    chart = [condition(ICD, "F10.20", "2024-01-01"), condition(SCT, "1081000119105", "2024-01-01")]
    assert statuses(determine(chart))["geha.ci.sud"] == "not-documented"


def test_whether_a_disorder_no_code_here_shows_the_treatment_of_is_treated_is_for_the_reviewer() -> None:
    """No order the chart could hold counts as treating alcohol dependence here, so the card must not
    ask the clinician for one: the payer's reviewer judges the treatment. An opioid use disorder's
    treatment (buprenorphine, methadone, naltrexone) is asked for."""
    naltrexone = med_request("naltrexone 50 MG Oral Tablet", "2026-10-01", status="active", code="7243")
    alcohol_chart = [condition(ICD, "F10.20", "2024-01-01", "Alcohol dependence"), naltrexone]
    alcohol = determine(alcohol_chart)
    sud = next(r for r in alcohol.criteria if r.id == "geha.ci.sud")
    assert (sud.status, sud.for_reviewer) == (Status.NOT_DOCUMENTED, True)
    assert (
        sud.finding
        == "documented (Alcohol dependence); whether it is under active treatment is for the reviewer"
    )
    opioid = determine([condition(ICD, "F11.20", "2024-01-01")])
    assert not next(r for r in opioid.criteria if r.id == "geha.ci.sud").for_reviewer
    opioid_dependence = condition(ICD, "F11.20", "2024-01-01", "Opioid dependence")
    assert next(
        r for r in determine([opioid_dependence, *alcohol_chart]).criteria if r.id == "geha.ci.sud"
    ).for_reviewer
    both = determine([opioid_dependence, alcohol_chart[0]])  # the opioid dependence untreated
    sud = next(r for r in both.criteria if r.id == "geha.ci.sud")
    assert (sud.status, sud.for_reviewer) == (Status.NOT_DOCUMENTED, False)  # the opioid treatment is asked
    assert sud.finding == (
        "documented (Opioid dependence); no active treatment of it documented; whether Alcohol dependence "
        "is under active treatment is for the reviewer"
    )


def test_cancer_with_a_bare_chronic_pain_code_is_cancer_pain() -> None:
    chart = [
        condition(ICD, "C50.911", "2025-01-01"),
        condition(ICD, "C79.51", "2025-06-01"),
        condition(ICD, "G89.4", "2025-06-01"),
    ]
    d = determine(chart)
    assert d.indication == "cancer-pain"
    assert d.outcome == Outcome.NOT_APPLICABLE


def test_an_intrathecal_drug_order_is_not_a_systemic_opioid_trial() -> None:
    oral = oxycodone("2025-01-01", "2025-04-01", reason="ineffective")
    intrathecal = med_request(
        "morphine sulfate 25 MG/ML Injectable Solution",
        "2025-10-01",
        "2025-10-02",
        "stopped",
        reason="trial done",
        code="7052",
        route="Intrathecal route",
    )
    found = statuses(determine([oral, intrathecal]))
    assert (
        found["geha.chronic-pain.opioid-failure-6wk.routes"] == "not-documented"
    )  # no injectable systemic opioid


@pytest.mark.parametrize(("chart", "expected"), drug_failure_forms(OXYCODONE_TABLET, "opioid-trial-outcome"))
def test_the_most_recent_form_of_opioid_failure_decides(chart: list[dict[str, Any]], expected: str) -> None:
    assert statuses(determine(chart))["geha.chronic-pain.opioid-failure-6wk.failure"] == expected


def _oxycodone_stopped() -> dict[str, Any]:
    """Oxycodone from June to September 2025, stopped for inadequate relief: a documented failure."""
    return med_request(
        OXYCODONE_TABLET[0],
        "2025-06-01",
        "2025-09-01",
        "stopped",
        reason="inadequate relief",
        code=OXYCODONE_TABLET[1],
    )


def test_an_opioid_outcome_coded_in_another_system_does_not_overrule_a_documented_failure() -> None:
    """Contract §5: an assessment's coded value is in the assessment CodeSystem (or a bare text equal to
    the code). A SNOMED CT-coded "effective" a week after a stopped opioid with its reason was read as
    the outcome and overruled the failure (contract review s17 F4)."""
    stopped = _oxycodone_stopped()
    foreign = assessment(
        "opioid-trial-outcome",
        "2025-09-08",
        valueCodeableConcept={"coding": [{"system": SCT, "code": "effective"}]},
    )
    assert statuses(determine([stopped, foreign]))["geha.chronic-pain.opioid-failure-6wk.failure"] == "met"
    ours = coded_assessment("opioid-trial-outcome", "effective", "2025-09-08")
    assert statuses(determine([stopped, ours]))["geha.chronic-pain.opioid-failure-6wk.failure"] == "not-met"


def _foreign_outcome(form: str) -> dict[str, Any]:
    """A SNOMED CT-coded "effective" opioid outcome on 8 Sep 2025, as an Observation or as the answer
    to the service's own Questionnaire."""
    coding = {"system": SCT, "code": "effective"}
    if form == "Observation":
        return assessment("opioid-trial-outcome", "2025-09-08", valueCodeableConcept={"coding": [coding]})
    item = {"linkId": "opioid-trial-outcome", "answer": [{"valueCoding": coding}]}
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-foreign",
        "status": "completed",
        "authored": "2025-09-08",
        "item": [item],
    }


@pytest.mark.parametrize("form", ["Observation", "QuestionnaireResponse"])
def test_a_foreign_coded_outcome_is_the_newest_form_and_named_whichever_record_holds_it(form: str) -> None:
    """Contract §3 ("the most recent documented one decides") and §5: an outcome coded in another code
    system is kept as the newest record of the assessment and named on the card, as an answer to the
    service's Questionnaire as well as an Observation. The answer was dropped, so an older outcome
    overruled the stopped opioid the newer record leaves to decide (review s17 F-9)."""
    criterion = "geha.chronic-pain.opioid-failure-6wk.failure"
    foreign = _foreign_outcome(form)
    alone = determine([foreign])
    assert statuses(alone)[criterion] == "not-documented"
    assert finding_of(alone, criterion) == (
        "recorded “effective” in another code system: not read as an answer"
    )
    stopped = _oxycodone_stopped()
    older = coded_assessment("opioid-trial-outcome", "effective", "2025-09-04")
    assert statuses(determine([stopped, older, foreign]))[criterion] == "met"


@pytest.mark.parametrize(("chart", "expected"), device_removal_charts())
def test_the_most_recent_of_a_device_and_its_removal_decides(
    chart: list[dict[str, Any]], expected: str
) -> None:
    assert statuses(determine(chart))["geha.excl.programmable-device"] == expected


def test_a_criterion_of_several_parts_states_each_piece_of_evidence_once() -> None:
    """The opioid criterion's parts (duration, routes, failure) cite the same orders, two of them in the
    same words: the criterion lists each piece once, in the order its parts found them, and keeps
    what a part says differently about the same order."""
    d = determine(meeting_chart())
    opioids = next(r for r in d.criteria if r.id == "geha.chronic-pain.opioid-failure-6wk")
    by_parts = [e for part in opioids.children for e in part.evidence]
    assert len(by_parts) > len(set(by_parts))  # the parts repeat some evidence word for word
    assert list(opioids.evidence) == list(dict.fromkeys(by_parts))
    assert len({e.reference for e in opioids.evidence}) < len(opioids.evidence)
