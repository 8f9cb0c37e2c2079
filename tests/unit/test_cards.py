"""The decision card: one per payer and episode, a ten-second shape, no empty values anywhere."""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from cards.items import Episode, failing, missing
from cards.render import DETAIL_LIMIT, SUMMARY_LIMIT, decision_card, instructions_card, next_steps
from service.catalog import load_catalog
from service.engine.model import CriterionResult, Determination, Outcome, Status
from tests import card_scenarios
from tests.builders import (
    ICD,
    PATIENT,
    PUMP_IN_PLACE,
    SOPT,
    cards_of,
    catalog,
    codes_of,
    concept,
    condition,
    determine,
    infusate_request,
    med_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import prefetch_app, sign_with_chart
from tests.catalog_support import copy_policies, edit_yaml
from tests.demo_support import packaged_sample
from tests.markdown_support import shown_lines
from tests.support import post_json


def no_empty_values(value: Any, path: str = "card") -> None:
    assert value is not None, path
    if isinstance(value, str | list | dict):
        assert len(value) > 0, path
    if isinstance(value, dict):
        for key, item in value.items():
            no_empty_values(item, f"{path}.{key}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            no_empty_values(item, f"{path}[{i}]")


def determinations() -> list[Determination]:
    return [
        determine(meeting_chart()),
        determine([]),
        determine([*meeting_chart(), condition(ICD, "Z95.0", "2020-01-01")]),
        determine(
            [condition(ICD, "G35.A", "2019-01-01")],
            drugs=(infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),),
        ),
    ]


@pytest.mark.parametrize("d", determinations(), ids=lambda d: d.outcome.value)
def test_card_shape(d: Determination) -> None:
    card = decision_card(Episode.of([d]))
    no_empty_values(card)
    assert len(card["summary"]) <= SUMMARY_LIMIT
    # a clinician must see a warning exactly where the order does not meet the policy
    assert card["indicator"] == ("warning" if d.outcome is Outcome.DOES_NOT_MEET else "info")
    assert card["source"]["label"] == "GEHA"
    assert card["source"]["topic"]["code"] == "coverage-info"
    uuid.UUID(card["uuid"])


def test_outcomes_are_all_covered() -> None:
    assert {d.outcome for d in determinations()} == set(Outcome)


def test_long_payer_names_keep_the_summary_short() -> None:
    d = dataclasses.replace(determine([]), payer="The Extraordinarily Long Named Regional Health Plan " * 4)
    summary = decision_card(Episode.of([d]))["summary"]
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.endswith("…")


def test_a_long_summary_leaves_out_its_closing_aside_rather_than_cut_it() -> None:
    """Before: "… the orders cover 4 weeks 2 days (17 Oct 2026 → 16 Nov…" (clinical review 3, L4)."""
    reason = [concept(ICD, "G89.4", "Chronic pain syndrome")]  # the criteria are not chosen by default
    call = sign_request(service_request("62362", reason=reason), coverage=payer_coverage("cmm210"))
    _, response = sign_with_chart(card_scenarios.pain_fails(), body=call)
    [decision] = cards_of(response["cards"])
    summary = decision["summary"]
    assert summary.startswith("eviCore CMM-210: not covered — Opioids or other analgesics"), summary
    assert len(summary) <= SUMMARY_LIMIT and summary.count("(") == summary.count(")"), summary


def test_criteria_chosen_by_default_that_fail_do_not_make_the_order_not_covered() -> None:
    """Nothing read tells what the pump is for (no reason, no drug, an acute back pain): CMM-210's
    non-malignant criteria are judged by default, and their failures rest on that default (session
    review s35, R6); a failure of a criterion of every indication would not."""
    call = sign_request(service_request("62362"), coverage=payer_coverage("cmm210"))
    _, response = sign_with_chart(card_scenarios.pain_fails(), body=call)
    [decision] = cards_of(response["cards"])
    assert decision["summary"] == "eviCore CMM-210: 1 item to document for 62362 — What the pump is for"
    assert "❌ **Opioids or other analgesics" in decision["detail"]  # what fails under the default, shown


PACEMAKER = condition(ICD, "Z95.0", "2020-01-01", "Presence of cardiac pacemaker")


def test_the_detail_opens_with_the_verdict_then_only_what_fails_or_is_missing() -> None:
    d = determine([*meeting_chart(), PACEMAKER])
    lines = shown_lines(decision_card(Episode.of([d]))["detail"])
    assert lines[0].startswith("**Not covered as ordered** (GEHA) for 62362 programmable pump")
    listed = [line for line in lines if line.startswith("- ")]
    assert listed == [
        "- ❌ **No other implanted programmable device**: " + d.by_status(Status.NOT_MET)[0].finding
    ]
    assert any(
        line.startswith("✅ 13 of 14 criteria met, 5 with none documented against them: ") for line in lines
    )
    assert lines[-2].startswith("_GEHA policy: Implantable Intrathecal Infusion Pump")


def test_the_card_says_none_documented_for_what_is_met_by_absence() -> None:
    """Contract §3, Absence: a contraindication or "no X" criterion "counts as met when no evidence of
    X is found in the data above (and the card says "none documented")". Since the cards list only
    what fails or is missing, no card said it (contract review s17 F3): the line of what is met names
    them, for a clinician who knows of an infection the chart does not hold."""
    d = determine(meeting_chart())
    [met] = [line for line in decision_card(Episode.of([d]))["detail"].splitlines() if line.startswith("✅")]
    absent = [leaf.label for top in d.criteria for leaf in top.leaves() if leaf.finding == "none documented"]
    assert "F. No current infection" in absent and "No other implanted programmable device" in absent
    assert met.startswith(
        "✅ All 14 criteria met, 6 with none documented against them: E. No acute psychiatric"
    )
    assert all(label in met for label in absent)
    recorded = [leaf.label for top in d.criteria for leaf in top.leaves() if leaf.finding == "recorded yes"]
    assert recorded and not any(label in met for label in recorded)  # a documented "met" is not absence


@pytest.mark.parametrize(
    ("sample", "met"),
    [
        (
            "order-select-62362-demo-kpwa-spasticity",
            "✅ 4 of 6 criteria met, 4 with none documented against them: No allergy to the drug being used; "
            "No infection; Body size supports the device; No other implanted programmable device.",
        ),
        (
            "order-select-62362-demo-cmm210-spasticity",
            "✅ All 4 criteria met, 1 with none documented against it: Not a pump for insulin, antibiotics "
            "or heparin.",
        ),
        (
            "order-select-62362-demo-cmm210-short-course",
            "✅ 2 of 8 criteria met, 1 with none documented against it.",
        ),
    ],
)
def test_what_is_met_on_absence_reads_as_met_with_none_documented_against_it(sample: str, met: str) -> None:
    """Review2 N-9: "None documented: … Body size supports the device" read as no documentation that
    the body size supports the device, and "None documented of what 1 criterion rules out." was hard
    to parse. The line says how many of the met criteria have none documented against them, then
    names them (or only counts them, with no room)."""
    body = packaged_sample(sample)
    cards = post_json(prefetch_app().test_client(), f"/cds-services/idds-crd-{body['hook']}", body).get_json()
    [line] = [x for c in cards_of(cards["cards"]) for x in c["detail"].splitlines() if x.startswith("✅")]
    assert line == met


def test_what_none_documents_gives_way_to_what_is_open() -> None:
    """The list of what is met by absence is cut (to a count at the least) before an item to act on is
    left out of the card: here three items whose lines are long leave room for only some of it."""
    d = determine([r for r in meeting_chart() if r["resourceType"] != "Observation"])

    def met_line(pad: int) -> tuple[str, str]:
        open_long = tuple(
            dataclasses.replace(c, label=c.label + " long" * pad) if c.status != Status.MET else c
            for c in d.criteria
        )
        detail = decision_card(Episode.of([dataclasses.replace(d, criteria=open_long)]))["detail"]
        assert len(detail) <= DETAIL_LIMIT and "… and" not in detail  # no item left out
        return detail, next(line for line in detail.splitlines() if line.startswith("✅"))

    _, whole = met_line(0)
    detail, cut = met_line(40)
    assert whole.startswith(
        "✅ 11 of 14 criteria met, 6 with none documented against them: E. No acute psychiatric"
    )
    assert cut.startswith("✅ 11 of 14 criteria met, 6 with none documented against them: ") and len(
        cut
    ) < len(whole)
    assert len(detail.splitlines()) == len(met_line(0)[0].splitlines())


def test_the_summary_gives_payer_verdict_and_top_reason() -> None:
    failing = decision_card(Episode.of([determine([*meeting_chart(), PACEMAKER])]))["summary"]
    assert failing.startswith("GEHA: not covered — No other implanted programmable device: ")
    meeting = decision_card(Episode.of([determine(meeting_chart())]))["summary"]
    assert meeting == "GEHA: 62362 meets all 14 coverage criteria"


def test_missing_items_say_what_to_do() -> None:
    d = determine([med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01")])
    detail = decision_card(Episode.of([d]))["detail"]
    trial = next(line for line in detail.splitlines() if "**D. Trial relief >= 50 %**" in line)
    assert trial.startswith("- ❔ ")
    assert "— Document the trial" in trial
    assert "✅" not in trial and "❌" not in trial


def test_the_detail_keeps_within_its_budget_and_says_what_it_left_out() -> None:
    d = determine([])
    long_labels = tuple(
        dataclasses.replace(c, label=c.label + " " + "very long words " * 12) for c in d.criteria
    )
    padded = dataclasses.replace(d, criteria=long_labels)
    episode = Episode.of([padded])
    detail = decision_card(episode)["detail"]
    assert len(detail) <= DETAIL_LIMIT
    # it points to the Instructions card by the title that card shows (no card is titled "Instructions")
    listing = instructions_card(episode, *next_steps(episode))["summary"]
    assert f"more: see the card “{listing}”." in detail
    assert shown_lines(detail)[-2].startswith("_GEHA policy")


def test_an_answer_without_an_instructions_card_names_what_its_detail_left_out() -> None:
    """On a hook whose user does not place the order the answer carries no Instructions card (service/
    registry.py, `places_order`), and the policy page is not this patient's gaps: the lines left out
    for length are named, so no item is listed nowhere (session review s37, S37-4)."""
    d = determine([])
    long_labels = tuple(
        dataclasses.replace(c, label=c.label + " " + "very long words " * 6) for c in d.criteria
    )
    episode = Episode.of([dataclasses.replace(d, criteria=long_labels)])
    detail = decision_card(episode, False)["detail"]
    assert len(detail) <= DETAIL_LIMIT and "Instructions card" not in detail
    [more] = [line for line in detail.splitlines() if line.startswith("- … and ")]
    dropped = int(more.split()[3])
    open_items = (*episode.failing, *episode.missing)
    assert dropped and more.startswith(f"- … and {dropped} more: {open_items[-dropped].named[:40]}")


def test_one_card_for_the_lines_of_an_episode() -> None:
    pump, catheter = determine(meeting_chart()), determine(meeting_chart(), order=service_request("62350"))
    card = decision_card(Episode.of([pump, catheter]))
    assert [r["reference"] for r in card["extension"]["davinci-crd.associated-resource"]] == [
        pump.order_reference,
        catheter.order_reference,
    ]
    assert "for 62362 programmable pump and 62350 catheter, for chronic non-malignant pain." in card["detail"]


def test_a_line_the_payer_judges_differently_gets_its_own_short_line() -> None:
    pump = determine([*meeting_chart(), PACEMAKER])
    catheter = determine(meeting_chart(), order=service_request("62350"))
    card = decision_card(Episode.of([catheter, pump]))
    assert card["detail"].startswith("**Not covered as ordered** (GEHA)")
    assert "62350 catheter: meets the criteria." in card["detail"].splitlines()


def test_among_equally_severe_lines_the_principal_order_leads() -> None:
    """A new pump's lines with a replacement hardware line of the same payer: the implant leads (the
    vocabulary's precedence), though the replacement line is judged against more criteria."""
    implant = determine([])
    replacement = dataclasses.replace(
        implant, request_kind="replacement", criteria=(*implant.criteria, implant.criteria[0])
    )
    assert implant.outcome == replacement.outcome
    assert Episode.of([replacement, implant], catalog().vocabulary.rank).lead is implant
    assert Episode.of([replacement, implant]).lead is replacement  # no precedence given: the most criteria


def test_each_card_gets_a_fresh_uuid() -> None:
    d = determine([])
    assert decision_card(Episode.of([d]))["uuid"] != decision_card(Episode.of([d]))["uuid"]


@pytest.mark.parametrize("d", determinations(), ids=lambda d: d.outcome.value)
def test_override_reasons_only_when_the_order_does_not_clearly_meet(d: Determination) -> None:
    card = decision_card(Episode.of([d]))
    if d.outcome == Outcome.MEETS:
        assert "overrideReasons" not in card
        return
    reasons = card["overrideReasons"]
    assert len(reasons) >= 2
    assert len({r["code"] for r in reasons}) == len(reasons)
    for reason in reasons:
        assert set(reason) == {"system", "code", "display"}
        assert reason["system"] == "http://idds-crd.org/fhir/CodeSystem/idds-override-reason"
        assert reason["display"].strip()


def _result(cid: str, status: Status, *children: CriterionResult) -> CriterionResult:
    return CriterionResult(cid, cid, "", "s", "c", "required", status, f"{cid} finding", children=children)


def test_an_open_either_or_inside_an_open_group_states_the_alternative_that_fell_short() -> None:
    """Inside an either/or still open, the alternatives that fell short are stated (a trial with 40 %
    relief beside a waiver not yet documented), however deep the either/or sits."""
    either = _result(
        "g.or",
        Status.NOT_DOCUMENTED,
        _result("g.or.trial", Status.NOT_MET),
        _result("g.or.waiver", Status.NOT_DOCUMENTED),
    )
    group = _result("g", Status.NOT_DOCUMENTED, either, _result("g.other", Status.MET))
    d = dataclasses.replace(determine([]), outcome=Outcome.INSUFFICIENT, criteria=(group,))
    assert [i.criteria for i in failing(d)] == [("g.or.trial",)]


def test_a_line_no_criteria_address_does_not_lead_the_card_of_a_line_that_meets() -> None:
    meets = determine(meeting_chart())
    refill = dataclasses.replace(
        meets,
        outcome=Outcome.NOT_APPLICABLE,
        criteria=(),
        order_reference="ServiceRequest/refill",
        billing_code="95990",
    )
    assert Episode.of([refill, meets]).lead is meets


def test_items_sharing_one_instruction_say_it_once_and_keep_room_for_what_the_chart_shows() -> None:
    """Review s17 ehr L-1: Cohere's one instruction for its conservative-care criteria was repeated on
    each of their lines, cutting what the chart shows ("since 6 Dec…") to keep it, and pushing items
    off the card."""
    d = determine(meeting_chart(), policy_id="cohere-intrathecal-pain-pumps")
    lines = [
        line for line in decision_card(Episode.of([d]))["detail"].splitlines() if line.startswith("- ❔")
    ]
    todos = [line.rpartition(" — ")[2] for line in lines]
    said = [i for i, todo in enumerate(todos) if todo.startswith("Record the analgesic prescriptions")]
    run = [
        i
        for i, line in enumerate(lines)
        if "Pharmacological" in line
        or "Physical therapy" in line
        or "Home exercise" in line
        or "Cognitive behavioral" in line
    ]
    assert len(said) == 1 and said[0] in run, lines  # said once, the others of its run pointing to it
    assert all(todos[i] == ("as below" if i < said[0] else "as above") for i in run if i != said[0]), lines
    assert any(
        "Physical therapy**: no physical therapy visit (CPT 97110, 97112, 97116, 97140, 97530) found — "
        in lines[i]
        for i in run
    )
    # the drugs' finding is not cut for it before its records (wording31: it read "none in the last 12
    # months… — Record …"): whole where a later line says it, else cut after the last course's end (cards33:
    # where saying it on the Physical therapy line left out a line, the card keeps that line instead)
    [drugs] = [line for line in lines if "Pharmacological" in line]
    assert "the last course, morphine sulfate 10 MG/ML Injectable Solution, ended 15 Jun 2025" in drugs, drugs


def test_the_summary_names_only_the_orders_the_items_to_document_concern() -> None:
    """Review s17 ehr L-2: "3 items to document for 62362, 62323, E0783" read as if the trial, which
    meets its criteria, needed documents too."""
    # by code, not the resource's text: its id ('proc-1062', the builders' counter) may hold "62" too
    chart = [
        r
        for r in meeting_chart()
        if r["resourceType"] != "Procedure" or not any(c.startswith("62") for c in codes_of(r))
    ]
    implant, trial = determine(chart), determine(chart, order=service_request("62323"))
    assert (implant.outcome, trial.outcome) == (Outcome.INSUFFICIENT, Outcome.MEETS)
    summary = decision_card(Episode.of([implant, trial]))["summary"]
    assert summary == "GEHA: 1 item to document for 62362 — D. Trial relief >= 50 %"


def test_an_order_the_policy_has_no_criteria_for_gets_its_own_card_beside_the_judged_ones() -> None:
    """Sandbox review s17, S-4: a refill drafted beside the implant read "62362, 95990 meets all 14
    coverage criteria" and "request prior authorization for 62362, 95990", while the refill's own
    coverage information said GEHA reviews refills by hand."""
    call = sign_request(service_request("62362"), service_request("95990"), coverage=payer_coverage("geha"))
    _, response = sign_with_chart(meeting_chart(), body=call)
    summaries = [c["summary"] for c in response["cards"]]
    assert summaries[:3] == [
        "GEHA: 62362 meets all 14 coverage criteria",
        "GEHA: no coverage criteria for this 95990 request — manual review",
        "GEHA: request prior authorization for 62362",
    ]


def test_an_order_the_policy_has_no_criteria_for_is_said_once_with_what_to_do() -> None:
    """ehr20 C3, cardfix20 F4g: "no coverage criteria for this 95990 request — manual review" came with
    an Instructions card "ask for a manual review for 95990" whose one step said the same. The decision
    card says what to do; no second card repeats it."""
    call = sign_request(service_request("62362"), service_request("95990"), coverage=payer_coverage("geha"))
    _, response = sign_with_chart(meeting_chart(), body=call)
    summaries = [c["summary"] for c in response["cards"]]
    assert not [s for s in summaries if "ask for a manual review" in s]
    [refill] = [c for c in response["cards"] if "95990" in c["summary"]]
    assert "so GEHA review of a refill is manual." in refill["detail"]  # the policy's words say it
    assert "Ask GEHA for a manual review." not in refill["detail"]  # so the card does not again
    assert "request prior authorization for 62362" in " ".join(summaries)  # the judged line's steps stay


@pytest.mark.parametrize(
    ("payer", "code", "says", "not_said"),
    [
        ("geha", "62365", "Ask GEHA for a manual review.", None),  # the policy's words give no advice
        # its words advise already: no second advice beside them (cardfix20 F4g: the Instructions card
        # said "ask Capital Blue Cross for a manual review" under "ask Capital whether prior
        # authorization is needed")
        ("cbc", "62322", "ask Capital whether prior authorization is needed.", "manual review."),
    ],
)
def test_the_decision_card_of_an_order_without_criteria_says_what_to_do_once(
    payer: str, code: str, says: str, not_said: str | None
) -> None:
    call = sign_request(service_request(code), coverage=payer_coverage(payer))
    _, response = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=call)
    [decision] = cards_of(response["cards"])
    assert cards_of(response["cards"], "clinical-reminder") == []
    assert shown_lines(decision["detail"])[1].endswith(says)
    assert not_said is None or not_said not in decision["detail"]


def test_an_order_without_criteria_for_a_deceased_patient_keeps_its_instructions() -> None:
    """The Instructions card's first step says why no order or form is proposed: it stays."""
    patient = {"resourceType": "Patient", "id": PATIENT, "deceasedDateTime": "2021-03"}
    call = sign_request(service_request("95990"), coverage=payer_coverage("geha"))
    call["prefetch"]["patient"] = patient
    _, response = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=call)
    [steps] = cards_of(response["cards"], "clinical-reminder")
    assert "deceased" in steps["summary"]


def test_a_policy_of_two_criteria_both_met_says_both() -> None:
    """The decision card of a two-criteria policy said "✅ All 2 criteria met." under a summary saying
    "meets both coverage criteria" (cardfix20, read on the two-coverages demo)."""
    d = determine(meeting_chart(), policy_id="cbc-mp-1-058")
    assert d.outcome == Outcome.MEETS and len(d.criteria) == 2
    decision = decision_card(Episode.of([d]))
    assert decision["summary"].endswith("meets both coverage criteria")
    assert "✅ Both criteria met." in decision["detail"].splitlines()


@pytest.mark.parametrize(
    "finding",
    [
        "1.5 points on the Modified Ashworth scale; below the policy's example, for the reviewer",
        "recorded 40 %, which the policy does not address: for the reviewer",
        "the policy does not say how 1+ counts; for the reviewer",
    ],
)
def test_a_finding_left_to_the_reviewer_says_so_once(finding: str) -> None:
    """cardfix20 F4d: "…, for the reviewer — recorded, for the payer's reviewer to judge: send the
    chart …" named the reviewer twice on one line; what to do says it, the finding's own note goes."""
    d = determine([])
    assert d.outcome == Outcome.INSUFFICIENT
    leaf = CriterionResult(
        "x.review",
        "Trial response",
        "",
        "X",
        "",
        "required",
        Status.NOT_DOCUMENTED,
        finding,
        for_reviewer=True,
    )
    [item] = missing(dataclasses.replace(d, criteria=(leaf,)))
    assert "for the reviewer" not in item.finding and item.finding.startswith(finding[:20])
    [line] = [
        x
        for x in decision_card(Episode.of([dataclasses.replace(d, criteria=(leaf,))]))["detail"].splitlines()
        if "Trial response" in x
    ]
    assert line.count("reviewer") == 1


def test_the_criteria_count_says_when_one_criterion_not_met_fails_on_several_lines() -> None:
    """cardfix20 F4f: "12 of 13 criteria met" under two ❌ lines, both parts of the one criterion not
    met: a clinician counting the lines counts 14. The count says the two lines are that one."""
    d = determine(meeting_chart())
    first = d.criteria[0]
    part = CriterionResult("p.a", "Part A", "", first.section, "", "required", Status.NOT_MET, "recorded A")
    failed = dataclasses.replace(
        first, status=Status.NOT_MET, children=(part, dataclasses.replace(part, id="p.b", label="Part B"))
    )
    d = dataclasses.replace(d, outcome=Outcome.DOES_NOT_MEET, criteria=(failed, *d.criteria[1:]))
    lines = decision_card(Episode.of([d]))["detail"].splitlines()
    assert [x for x in lines if x.startswith("- ❌")] == [
        "- ❌ **Part A**: recorded A",
        "- ❌ **Part B**: recorded A",
    ]
    total = len(d.criteria)
    [count] = [x for x in lines if x.startswith("✅")]
    assert count.startswith(
        f"✅ {total - 1} of {total} criteria met (the one not met fails on both ❌ lines above)"
    )


NESTED = re.compile(r"\([^()]*\(")  # a parenthesis opened inside another


@pytest.mark.parametrize("payer", [p.key for p in catalog().payers])
def test_the_verdict_names_the_payer_once_without_nested_parentheses(payer: str) -> None:
    """cards26 item 2: the verdict line names the payer in parentheses ("**Meets the criteria** (GEHA) for
    62362 …"), and the CMM-210 payer's name carried its own: "(eviCore (CMM-210))". Each payer is named
    once there, cleanly."""
    call = sign_request(service_request("62362"), infusate_request(), coverage=payer_coverage(payer))
    _, response = sign_with_chart(meeting_chart(), body=call)
    [decision] = cards_of(response["cards"])
    verdict = decision["detail"].split("\n")[0]
    name = decision["source"]["label"]
    assert f"** ({name}) for " in verdict and verdict.count(name) == 1, verdict
    assert not NESTED.search(verdict.split(" for ")[0]), verdict


PUBLISHED = "https://policies.example.org/published"  # where a deployment says the policy is published
CMS = "Centers for Medicare & Medicaid Services (CMS)"  # the NCD's publisher, as its file names it


@pytest.mark.parametrize(
    ("payer", "coverage_type", "published_by"),
    [
        ("kpwa", {"coding": [{"system": SOPT, "code": "1"}]}, CMS),
        ("geha", None, "GEHA"),
    ],
)
def test_the_published_policy_is_labelled_by_who_publishes_it(
    tmp_path: Path, payer: str, coverage_type: dict[str, Any] | None, published_by: str
) -> None:
    """payer25 LOW: the policy-link card's link to the published policy read "Kaiser Permanente
    Washington's published policy" for the NCD a Kaiser Medicare member is judged by, which is Medicare's
    (CMS publishes it), not Kaiser's. The link names the policy as it names itself, its publisher and
    title, as its page does."""
    root = copy_policies(tmp_path)
    for name in ("ncd-280-14.yaml", "geha.yaml"):
        edit_yaml(root / name, lambda raw: raw.update(url=PUBLISHED))
    coverage = payer_coverage(payer, **({"type": coverage_type} if coverage_type else {}))
    call = sign_request(service_request("62362"), infusate_request(), coverage=coverage)
    _, response = sign_with_chart(meeting_chart(), load_catalog(root), body=call)
    [link] = cards_of(response["cards"], "guideline")
    published = link["links"][1]
    assert published["url"] == PUBLISHED
    assert published["label"].startswith(f"{published_by}: "), published["label"]
    assert "Kaiser" not in published["label"], published["label"]


def test_the_one_criterion_of_a_policy_that_could_not_be_checked_is_said_as_one() -> None:
    """review28e L3: a policy of one criterion left unchecked read "1 of 1 criteria could not be
    checked"."""
    unavailable = card_scenarios.determinations()["cbc-mp-1-058-unavailable-implant"]
    unchecked = next(c for c in unavailable.criteria if c.status == Status.NOT_DOCUMENTED)
    labels = [item.label for item in missing(dataclasses.replace(unavailable, criteria=(unchecked,)))]
    assert "its one criterion could not be checked" in labels, labels
