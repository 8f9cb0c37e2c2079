"""'Order the trial first': proposed only when an implant is ordered and no trial happened anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cards.items import Episode
from cards.render import next_steps
from service.engine.model import Determination
from service.fhirdates import human_date
from service.next_steps import TRIAL_TEST_TYPES, missing_trial, trial_may_cover
from service.orders import load_order_codes
from tests.builders import (
    ICD,
    SCT,
    assessment,
    cards_of,
    catalog,
    coded_assessment,
    condition,
    context,
    determine,
    infusate_request,
    meeting_chart,
    oxycodone,
    payer_coverage,
    procedure,
    service_request,
    sign_request,
    without_codes,
)
from tests.calls import cards_for as answer
from tests.calls import configured, prefetch_app, sample, sign_with_chart
from tests.demo_support import packaged_sample
from tests.support import numbered_steps, post_json, sign_body

NO_TRIAL = without_codes(meeting_chart(), "62324")


def missing(
    chart: list[dict[str, Any]],
    order: dict[str, Any] | None = None,
    companions: tuple[dict[str, Any], ...] = (),
    unavailable: dict[str, str] | None = None,
    policy_id: str = "geha-idds-chronic-pain",
) -> tuple[str, ...]:
    ctx = context(chart, order, companions=companions, unavailable=unavailable)
    d: Determination = determine(
        chart, order, companions=companions, unavailable=unavailable, policy_id=policy_id
    )
    return tuple(r.id for r in missing_trial(d, catalog().policies[policy_id], ctx.record, ctx.episode_kinds))


def test_an_implant_with_no_trial_anywhere_needs_the_trial_first() -> None:
    assert missing(NO_TRIAL) == ("geha.trial.relief-ge50",)


def test_not_when_the_trial_is_on_the_chart() -> None:
    assert missing(meeting_chart()) == ()
    # a trial whose result is undocumented is a documentation gap, not a missing trial
    assert missing([*NO_TRIAL[:3], procedure("62324", "2025-10-01T09:00:00Z")]) == ()
    undated = procedure("62324", "2025-10-01T09:00:00Z")
    del undated["performedDateTime"]  # its date cannot be read: still a trial that happened
    assert missing([*NO_TRIAL, undated]) == ()


def test_not_when_the_trial_is_among_the_draft_orders() -> None:
    assert missing(NO_TRIAL, companions=(service_request("62324"),)) == ()


def test_not_when_the_policy_waives_the_trial() -> None:
    """Cross-payer review 1: CMM-210's cancer-pain waiver met, its criteria ask for no trial."""
    cancer = [
        condition(ICD, "C50.911", "2024-01-01", "Malignant neoplasm of right female breast"),
        condition(ICD, "C79.51", "2025-06-01", "Secondary malignant neoplasm of bone"),
        oxycodone(),
        coded_assessment("trial-waiver-reason", "high-procedural-risk", "2026-11-01"),
    ]
    terminal = condition(SCT, "300936002", "2026-10-01", "Terminal illness")
    implant = service_request("62362")
    assert missing([*cancer, terminal], implant, policy_id="cmm-210-idds") == ()
    assert missing(cancer, implant, policy_id="cmm-210-idds") == (
        "cmm210.cancer.permanent.relief-ge50.trial",
    )


def test_not_for_a_trial_or_catheter_order() -> None:
    assert missing(NO_TRIAL, order=service_request("62324")) == ()
    assert missing(NO_TRIAL, order=service_request("62350")) == ()


def test_not_when_the_procedures_could_not_be_read() -> None:
    assert missing(NO_TRIAL, unavailable={"Procedure": "HTTP 500"}) == ()


def test_trial_codes_must_be_trial_codes(tmp_path: Path) -> None:
    table = (Path(__file__).resolve().parents[2] / "policies" / "order-codes.yaml").read_text()
    broken = tmp_path / "order-codes.yaml"
    broken.write_text(table.replace('code: "62326"', 'code: "62362"'), encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"order-codes.yaml:\d+: trial_first code 62362 is not a CPT trial code"
    ):
        load_order_codes(broken, catalog().vocabulary, catalog().terminology.ingredient_finder)
    assert [c.code for c in catalog().order_codes.trial_first] == ["62322", "62326"]


def test_the_card_proposes_each_trial_as_a_draft_order_for_the_implant_lines() -> None:
    request, response = sign_with_chart(NO_TRIAL)
    proposals = [c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" in c]
    assert len(proposals) == 1
    card = proposals[0]
    # the catheter placed with the pump is part of the implant (contract §2), so it is named too
    assert card["summary"] == "GEHA: order the trial before 62362, 62350, E0783"
    assert card["selectionBehavior"] == "at-most-one"
    assert "links" not in card
    assert "D. Trial relief >= 50 %" in card["detail"]
    refs = sorted(r["reference"] for r in card["extension"]["davinci-crd.associated-resource"])
    assert refs == [
        "DeviceRequest/demo-meets-sign-dr-e0783",
        "ServiceRequest/demo-meets-sign-sr-62350",
        "ServiceRequest/demo-meets-sign-sr-62362",
    ]
    created = [a["resource"] for s in card["suggestions"] for a in s["actions"]]
    assert all(a["type"] == "create" for s in card["suggestions"] for a in s["actions"])
    assert [r["code"]["coding"][0]["code"] for r in created] == ["62322", "62326"]
    assert {r["subject"]["reference"] for r in created} == {f"Patient/{request['context']['patientId']}"}
    assert {(r["status"], r["intent"]) for r in created} == {("draft", "order")}
    assert len({r["id"] for r in created}) == 2


def test_the_proposal_follows_the_clinical_reminder_option() -> None:
    cards = answer(configured(sign_body(), **{"clinical-reminder": False}))
    assert not any("suggestions" in c for c in cards)


def test_a_chart_with_the_trial_gets_no_proposal() -> None:
    _, response = sign_with_chart(meeting_chart())
    [decision] = cards_of(response["cards"])
    assert decision["summary"].endswith("meet all 14 coverage criteria")
    assert not any("suggestions" in c for c in response["cards"])


PACEMAKER = condition(ICD, "Z95.0", "2018-01-01", "Presence of cardiac pacemaker")


def proposals(chart: list[dict[str, Any]]) -> list[str]:
    _, response = sign_with_chart(chart)
    return [c["summary"] for c in response["cards"] if "suggestions" in c]


def test_no_trial_is_proposed_for_an_implant_not_covered_for_a_reason_no_trial_changes() -> None:
    """Stop note 42: a pacemaker excludes the pump (GEHA, "not covered", item B) whatever a trial shows."""
    assert proposals(NO_TRIAL) == ["GEHA: order the trial before 62362, 62350, E0783"]
    assert proposals([*NO_TRIAL, PACEMAKER]) == []
    _, response = sign_with_chart([*NO_TRIAL, PACEMAKER])
    [decision] = cards_of(response["cards"])
    assert decision["summary"].startswith("GEHA: not covered — No other implanted programmable device")


@pytest.mark.parametrize(
    "answer",
    [
        coded_assessment("it-trial-side-effects", "unacceptable"),
        assessment("it-trial-patient-acceptance", valueBoolean=False),
    ],
    ids=["side-effects", "acceptance"],
)
def test_the_trial_is_still_proposed_when_what_fails_is_what_the_trial_shows(answer: dict[str, Any]) -> None:
    """GEHA's criterion D is what the preliminary trial confirms (relief, lack of side effects, the
    patient's acceptance): a trial ordered now answers it."""
    assert proposals([*NO_TRIAL, answer]) == ["GEHA: order the trial before 62362, 62350, E0783"]


def test_no_trial_is_proposed_when_the_policys_conditions_for_a_trial_fail() -> None:
    """CMM-210: the permanent pump needs "the above criteria for a preliminary trial" met; a trial for a
    patient who refuses the 50 % opioid reduction before it cannot make the implant covered."""
    implant = service_request("62362")
    refused = [*NO_TRIAL, assessment("opioid-reduction-agreement", valueBoolean=False)]
    d = determine(refused, implant, policy_id="cmm-210-idds")
    assert missing(refused, implant, policy_id="cmm-210-idds") == ("cmm210.pain.permanent.relief-ge50-8h",)
    assert not trial_may_cover(d, catalog().policies["cmm-210-idds"])


def test_every_trial_result_criterion_is_one_a_trial_answers() -> None:
    """The trial's relief or response criteria (the ones the proposal names) are marked `trial_result`
    in every policy, so a failure of theirs never holds the proposal back."""
    for policy in catalog().policies.values():
        trial_ids = {i for t in TRIAL_TEST_TYPES for i in policy.ids_by_test_type.get(t, ())}
        assert trial_ids <= policy.trial_answers, policy.id
        assert trial_ids, policy.id


@pytest.mark.parametrize(
    ("sample", "proposed"),
    [
        ("order-select-62362-demo-cmm210-short-course", False),  # 8 weeks of analgesics, not 6 months
        ("order-select-62362-demo-insufficient", True),  # GEHA: only documentation is missing
        ("order-select-62362-demo-cbc-insufficient", True),
    ],
)
def test_the_demo_patients_get_the_proposal_only_where_a_trial_could_make_the_implant_covered(
    sample: str, proposed: bool
) -> None:
    """Stop note 42 on the demo patients: CMM-210's short-course patient is not covered because the
    non-invasive care lasted 8 weeks, not the six months CMM-210 asks before a trial; a trial changes
    nothing of that, and the answer proposed one."""
    body = packaged_sample(sample)
    cards = post_json(prefetch_app().test_client(), f"/cds-services/idds-crd-{body['hook']}", body).get_json()
    assert any("suggestions" in c for c in cards["cards"]) == proposed


def test_what_to_do_for_the_trial_criterion_starts_with_ordering_the_trial_the_answer_proposes() -> None:
    """cards21: beside the card proposing the trial, the trial criterion's step said "Document the
    trial: pain score before and after the 62320-62327 trial", as if one had been done; it is now an
    order step naming the trials proposed, then what to document once it is done."""
    _, response = sign_with_chart(NO_TRIAL)
    [decision] = cards_of(response["cards"])
    assert "— Order the trial first (CPT 62322 or 62326): once done, document the trial" in decision["detail"]
    # its one item, its own step, said whole there: no Instructions card says it again (cards23 LOW)
    assert [c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" not in c] == []


def test_without_the_proposal_the_trial_criterion_is_still_to_document() -> None:
    """With the clinical-reminder cards turned off no trial is proposed, so no step says to order it;
    it says no trial has been done, then what to document once one is."""
    _, response = sign_with_chart(NO_TRIAL, **{"clinical-reminder": False})
    [decision] = cards_of(response["cards"])
    assert "Order the trial first" not in decision["detail"]
    assert "— No completed trial on the chart yet: once done, document the trial" in decision["detail"]


def test_where_no_trial_is_proposed_what_the_trial_shows_is_not_to_document_as_if_one_were_done() -> None:
    """review21 L4: a pacemaker rules the pump out, so no trial is proposed; the trial's relief and side
    effects still read "Document the trial: pain score before and after the trial" and "Record “side
    effects of the trial”", as if a trial had been done."""
    _, response = sign_with_chart([*NO_TRIAL, PACEMAKER])
    [decision] = cards_of(response["cards"])
    lines = [line for line in decision["detail"].splitlines() if "D. Trial" in line]
    assert lines and all("No completed trial on the chart yet: once done, " in line for line in lines), lines


@pytest.mark.parametrize(
    "lead", ["Order the trial first (CPT 62322 or 62326)", "Trial already ordered (62323, 30 Nov 2026)"]
)
def test_the_trials_criteria_that_share_one_instruction_stay_one_step(lead: str) -> None:
    """Cohere asks the trial's relief, side effects and the patient's tolerance in one instruction, one
    step; said first of the relief alone, the trial was split into two steps saying the same thing (the
    first draft of the step above, on Jacki, Synthea)."""
    d = determine([], policy_id="cohere-intrathecal-pain-pumps")
    episode = Episode.of([d], awaiting={"cohere.pain.permanent-trial-ge50.relief": lead})
    texts = [text for _, text in next_steps(episode)[1] if "ocument the trial" in text]
    assert len(texts) == 1, texts
    assert texts[0].startswith(
        f"{lead}; once the trial is done:\n   - Trial improvement >= 50 %; Minimal side effects; Patient "
        "tolerance: Document the trial"
    ), texts
    trial = [
        i for i in episode.missing if any(c.startswith("cohere.pain.permanent-trial") for c in i.criteria)
    ]
    assert len(trial) == 3 and all(i.todo and i.todo.startswith(lead) for i in trial), trial


@pytest.mark.parametrize(
    ("payer", "trials"),
    [("kpwa", ["62326"]), ("cbc", ["62322", "62326"]), ("geha", ["62322", "62326"])],
)
def test_only_a_trial_the_payers_criteria_accept_is_proposed(payer: str, trials: list[str]) -> None:
    """cards21 (Jacki, Synthea, Kaiser): KPWA's criterion 3.g asks for a trial "with a temporary
    intrathecal/epidural catheter" (CPT 62324-62327), yet the card offered the single shot 62322 too,
    and the step said to order either."""
    body = sign_request(service_request("62362"), infusate_request(), coverage=payer_coverage(payer))
    _, response = sign_with_chart(NO_TRIAL, body=body)
    [proposal] = [c for c in response["cards"] if "suggestions" in c]
    created = [
        a["resource"]["code"]["coding"][0]["code"] for s in proposal["suggestions"] for a in s["actions"]
    ]
    assert created == trials
    # on the Instructions card, or on the decision card alone where it shows every item (cards23 LOW)
    listings = [c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" not in c]
    [said] = listings or cards_of(response["cards"])
    assert f"Order the trial first (CPT {' or '.join(trials)})" in said["detail"], said["detail"]


def test_every_result_the_proposed_trial_is_to_show_is_ordered_first() -> None:
    """review21: beside the card proposing the trial, GEHA D's relief said "Order the trial first", but
    its lack of side effects and the patient's acceptance, which the policy marks as what the trial shows
    too (`trial_result`), still said "Record 'side effects of the trial'" among the Document steps, as if
    a trial had been done (Synthea Bradly, CMM-210's "function increased during the trial" likewise)."""
    chart = without_codes(NO_TRIAL, "it-trial-side-effects", "it-trial-patient-acceptance")
    _, response = sign_with_chart(chart)
    [listing] = [c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" not in c]
    [step] = [s for s in numbered_steps(listing["detail"]) if "Order the trial first" in s]
    assert step.startswith("1. Order the trial first (CPT 62322 or 62326); once the trial is done:\n"), step
    assert "\n   - D. Trial without side effects: Record" in step, step
    assert "\n   - D. Patient accepts the procedure: Ask the patient" in step, step
    assert listing["detail"].count("D. Trial without side effects") == 1, listing["detail"]
    assert listing["detail"].index("**Order**") < listing["detail"].index("D. Trial without side effects")


def test_a_trial_under_way_is_not_said_to_be_absent_from_the_chart() -> None:
    """review21b L2: order-dispatch of the implant while the trial is under way (its Procedure in
    progress, as a days-long catheter trial is) said "No trial on the chart yet" beside a trial on the
    chart: the record read completed trials only. It names the trial under way (review21b M2), whose
    result is to be documented once it is done."""
    yesterday = datetime.now(UTC) - timedelta(days=1)
    under_way = procedure("62324", yesterday.isoformat(), status="in-progress")
    _, response = sign_with_chart([*NO_TRIAL, under_way], body=sample("order-dispatch-62362-demo-meets"))
    [decision] = cards_of(response["cards"])
    lines = [line for line in decision["detail"].splitlines() if "D. Trial relief" in line]
    assert lines and "No trial on the chart" not in decision["detail"], decision["detail"]
    words = f"Trial under way (CPT 62324, since {human_date(yesterday)}): once done, "
    assert all(words in line for line in lines), lines


def test_what_the_policy_asks_before_the_trial_comes_before_the_step_ordering_it() -> None:
    """Kaiser Permanente Washington 1.c: "Patient agrees to a 50% reduction in systemic opiates prior to
    undergoing an intrathecal opiate trial" (seeds/001, line 50). With the trial proposed, the
    Instructions card's step 1 was "Order the trial first (CPT 62326)" and the agreement its last step,
    under "Ask the patient": worked down in order, the trial came before what it depends on."""
    body = sign_request(service_request("62362"), infusate_request(), coverage=payer_coverage("kpwa"))
    _, response = sign_with_chart(without_codes(NO_TRIAL, "opioid-reduction-agreement"), body=body)
    [listing] = [c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" not in c]
    steps = numbered_steps(listing["detail"])
    [agree] = [i for i, s in enumerate(steps) if "3.c Agrees to a 50 % systemic opioid reduction" in s]
    [trial] = [i for i, s in enumerate(steps) if "Order the trial first (CPT 62326)" in s]
    assert agree < trial, listing["detail"]
    assert listing["detail"].startswith("**Before going ahead**\n\n1. 3.c Agrees"), listing["detail"]


def _days_from_now(days: int) -> str:
    """Nine in the morning (UTC), `days` after the call's day; before it when negative."""
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def _open_trial_order() -> dict[str, Any]:
    """A 62324 trial ordered in the EHR six days ago, not yet done (`openTrialOrders`)."""
    return {**service_request("62324"), "status": "active", "authoredOn": _days_from_now(-6)[:10]}


_KPWA = sign_request(service_request("62362"), infusate_request(), coverage=payer_coverage("kpwa"))
_NO_AGREEMENT = without_codes(NO_TRIAL, "opioid-reduction-agreement")


def _agreement_and_trial_steps(chart: list[dict[str, Any]], body: dict[str, Any]) -> tuple[int, int, str]:
    """(the agreement's step, the trial's step, the Instructions card's text) of an answer."""
    _, response = sign_with_chart(chart, body=body)
    [listing] = [c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" not in c]
    steps = numbered_steps(listing["detail"])
    [agree] = [i for i, s in enumerate(steps) if "Agrees to a 50 % systemic opioid reduction" in s]
    [trial] = [i for i, s in enumerate(steps) if "once the trial is done" in s]
    return agree, trial, listing["detail"]


@pytest.mark.parametrize(
    ("chart", "body", "trial"),
    [
        (_NO_AGREEMENT, _KPWA, "Order the trial first (CPT 62326)"),
        ([*_NO_AGREEMENT, _open_trial_order()], _KPWA, "Trial already ordered (62324, "),
        (
            [*_NO_AGREEMENT, procedure("62324", _days_from_now(2), status="preparation")],
            _KPWA,
            "Trial in preparation (CPT 62324, ",
        ),
        (
            [],
            packaged_sample("order-select-62362-demo-cmm210-short-course"),
            "No completed trial on the chart",
        ),
    ],
    ids=["kpwa-trial-proposed", "kpwa-trial-ordered", "kpwa-trial-in-preparation", "cmm210-none-proposed"],
)
def test_the_agreement_comes_before_the_trial_whenever_no_trial_has_begun(
    chart: list[dict[str, Any]], body: dict[str, Any], trial: str
) -> None:
    """KPWA 3.c and CMM-210: "… agrees to a 50% reduction in systemic opiates prior to undergoing an
    intrathecal opiate trial" (seeds/001 l.50, seeds/004 l.50). review22b L4: the agreement came
    before the trial's step only where the answer proposed the trial; with a trial ordered in the EHR,
    one in preparation, or none proposed (CMM-210's short course: "No completed trial on the chart
    yet; once the trial is done", step 5, the agreement step 6), the patient had not undergone a trial
    either, and the card had the trial before what it depends on."""
    agree, step, text = _agreement_and_trial_steps(chart, body)
    assert agree < step, text
    assert numbered_steps(text)[step].split(". ", 1)[1].startswith(trial), text
    assert text.index("**Before going ahead**") < text.index("Agrees to a 50 %"), text


def test_the_agreement_stays_after_a_trial_already_begun() -> None:
    """Guard: a trial in progress is one the patient is undergoing; "prior to undergoing" is past, and
    nothing goes before it: the agreement stays where the patient is asked."""
    begun = procedure("62324", _days_from_now(-1), status="in-progress")
    agree, step, text = _agreement_and_trial_steps([*_NO_AGREEMENT, begun], _KPWA)
    assert step < agree and "**Before going ahead**" not in text, text
    assert numbered_steps(text)[step].split(". ", 1)[1].startswith("Trial under way (CPT 62324, since"), text


def test_every_opioid_reduction_agreement_is_asked_before_the_trial() -> None:
    """The agreement is, by its code's meaning (contract §5: "patient agrees to a 50 % systemic opioid
    reduction before the trial") and by both policies that ask it (KPWA 3.c, CMM-210), one to have
    before the trial: a policy reading it is marked so (data guard)."""
    asking = {
        (policy_id, c.id)
        for policy_id, policy in catalog().policies.items()
        for c in policy.all_criteria()
        if any(t.params.get("code") == "opioid-reduction-agreement" for t in c.tests)
    }
    assert asking and all(c in catalog().policies[p].before_trial for p, c in asking), asking
