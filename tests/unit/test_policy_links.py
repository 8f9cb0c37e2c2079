"""The cards beside the decision: the policy link, the policy page it opens, and what to document next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Request

import policies
from cards import next_steps
from cards.items import Episode, Step
from cards.render import LineApproval, decision_card, instructions_card
from service import routes
from service.engine.model import Status
from service.fhir.server_share import NOT_ASKED, NOT_ASKED_OTHERS
from service.host_header import url_root
from tests.builders import (
    HCPCS,
    ICD,
    cards_of,
    catalog,
    condition,
    determine,
    documentation_steps,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import cards_for as answer
from tests.calls import configured, sign_with_chart
from tests.support import (
    SELECT_URL,
    non_pump_body,
    numbered_steps,
    open_settings,
    select_body,
    sign_body,
)

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
POLICY_IDS = sorted(catalog().policies)


# --------------------------------------------------------------------------- the policy page


@pytest.mark.parametrize("policy_id", POLICY_IDS)
def test_every_policy_page_shows_every_criterion_and_the_source(app: Flask, policy_id: str) -> None:
    policy = catalog().policies[policy_id]
    response = app.test_client().get(f"/policies/{policy_id}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert policy.version in page
    for criterion in (c for top in policy.criteria for c in top.walk()):
        assert f'id="{criterion.id}"' in page, criterion.id
    source = (policies.directory() / "sources" / Path(policy.source).name).read_text(encoding="utf-8")
    first_line = next(
        line for line in source.splitlines() if line.strip() and "&" not in line and "<" not in line
    )
    assert first_line.strip() in page
    assert "The source document is not shipped" not in page


def test_unknown_policy_is_a_404_operation_outcome(app: Flask) -> None:
    response = app.test_client().get("/policies/no-such-policy")
    assert response.status_code == 404
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"
    assert "no-such-policy" in body["issue"][0]["diagnostics"]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the shared seeds folder is not beside this checkout")
def test_shipped_sources_are_the_seeds_word_for_word() -> None:
    shipped = sorted((policies.directory() / "sources").glob("*.txt"))
    assert [p.name for p in shipped] == sorted(p.name for p in SEEDS.glob("*.txt"))
    for path in shipped:
        assert path.read_bytes() == (SEEDS / path.name).read_bytes(), path.name


def test_every_policy_names_a_shipped_source() -> None:
    for policy in catalog().policies.values():
        assert (policies.directory() / "sources" / Path(policy.source).name).is_file(), policy.id


# --------------------------------------------------------------------------- the guideline card


def test_policy_link_uses_the_configured_public_url() -> None:
    cards = answer(select_body(), SELECT_URL, open_settings(public_base_url="https://crd.example.org/"))
    guideline = cards_of(cards, "guideline")
    assert len(guideline) == 1
    link = guideline[0]["links"][0]
    assert link == {
        "label": link["label"],
        "url": "https://crd.example.org/policies/geha-idds-chronic-pain",
        "type": "absolute",
    }
    assert "GEHA" in link["label"]


def test_the_policy_card_says_what_its_page_holds_in_plain_words() -> None:
    """cards24 LOW 5: "the readings this service applies" is the project's word for how it reads a
    criterion (the policy page's "Reading:" lines); the card says so in plain words."""
    [guideline] = cards_of(answer(select_body(), SELECT_URL), "guideline")
    assert (
        "with the policy's own words, how this service reads each criterion and the source text ("
        in (guideline["detail"])
    ), guideline["detail"]
    assert "readings" not in guideline["detail"]


def test_policy_link_falls_back_to_the_host_the_ehr_called() -> None:
    link = cards_of(answer(select_body(), SELECT_URL), "guideline")[0]["links"][0]
    assert link["url"] == "http://localhost/policies/geha-idds-chronic-pain"


def test_the_host_the_ehr_called_is_read_only_for_an_answer_linking_a_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The call's URL root (`service.host_header.url_root`, werkzeug's `url_root` before host31) is worked
    out only when the answer links a policy page: never for an order no policy judges (perf31), still
    for a pump order."""
    asked: list[str] = []

    def counted(request: Request) -> str:
        asked.append(request.path)
        return url_root(request)

    monkeypatch.setattr(routes, "url_root", counted)
    assert cards_of(answer(non_pump_body(), SELECT_URL), "guideline") == []
    assert asked == []
    link = cards_of(answer(select_body(), SELECT_URL), "guideline")[0]["links"][0]
    assert link["url"] == "http://localhost/policies/geha-idds-chronic-pain"
    assert asked and set(asked) == {SELECT_URL}


def test_the_policy_card_of_an_order_the_policy_gives_no_criteria_for_says_so() -> None:
    """Capital Blue Cross writes no trial criteria. Before, its policy card spoke of "the Capital Blue
    Cross criteria for an intrathecal trial" beside the decision card saying there are none (clinical
    review 3, L3)."""
    call = sign_request(service_request("62324"), coverage=payer_coverage("cbc"))
    _, response = sign_with_chart(meeting_chart(), body=call)
    [guideline] = cards_of(response["cards"], "guideline")
    assert guideline["detail"].startswith("The Capital Blue Cross policy in its own words, how this service")
    no_criteria = "It has no criteria for an intrathecal trial (chronic non-malignant pain)."
    assert guideline["detail"].endswith(no_criteria), guideline["detail"]


def test_one_decision_and_one_policy_link_however_many_lines_are_signed() -> None:
    cards = answer(sign_body())
    [decision] = cards_of(cards)
    # the three lines, and the pump's drug judged as them (its coverage information is theirs)
    assert len(decision["extension"]["davinci-crd.associated-resource"]) == 4
    assert len(cards_of(cards, "guideline")) == 1


@pytest.mark.parametrize(
    ("option", "topic"), [("guideline", "guideline"), ("clinical-reminder", "clinical-reminder")]
)
def test_each_extra_card_can_be_switched_off(option: str, topic: str) -> None:
    assert cards_of(answer(sign_body()), topic)  # on by default ...
    cards = answer(configured(sign_body(), **{option: False}))
    assert cards_of(cards, topic) == []  # ... off when the EHR says so
    assert len(cards_of(cards)) == 1  # the decision stays


def test_a_non_boolean_option_value_leaves_the_default() -> None:
    cards = answer(configured(sign_body(), guideline="no"))
    assert len(cards_of(cards, "guideline")) == 1


# --------------------------------------------------------------------------- what to document


def test_lines_needing_the_same_documentation_share_one_card() -> None:
    cards = answer(sign_body())  # the fake FHIR server returns nothing: every line needs the same data
    reminders = [c for c in cards_of(cards, "clinical-reminder") if "suggestions" not in c]
    assert len(reminders) == 1
    referenced = sorted(r["reference"] for r in reminders[0]["extension"]["davinci-crd.associated-resource"])
    decided = sorted(
        r["reference"] for c in cards_of(cards) for r in c["extension"]["davinci-crd.associated-resource"]
    )
    assert referenced == decided
    lines = numbered_steps(reminders[0]["detail"])  # a step's sub-items (the trial's results) are its own
    assert [line.split(". ", 1)[0] for line in lines] == [str(i) for i in range(1, len(lines) + 1)]
    assert f"in {len(lines)} steps" in reminders[0]["summary"]


def test_a_met_order_has_nothing_to_document() -> None:
    assert documentation_steps(determine(meeting_chart())) == ()


def test_an_empty_chart_lists_how_to_document_each_missing_criterion() -> None:
    d = determine([])
    steps = documentation_steps(d)
    assert steps
    assert len(steps) == len(set(steps))
    assert any(step.startswith("D. Trial relief") for step in steps)


@pytest.mark.parametrize(
    ("reason", "remedy"),
    [
        ("HTTP 500", "call again once the EHR's data is available"),
        (NOT_ASKED, "call again in a moment"),
        (NOT_ASKED_OTHERS, "call again in a moment"),
    ],
)
def test_data_the_ehr_did_not_return_is_listed_as_a_recheck(reason: str, remedy: str) -> None:
    """A FHIR server not asked (service/fhir/server_share.py) had the data: call again in a moment."""
    d = determine(meeting_chart(), unavailable={"Condition": reason})
    headline, steps = next_steps(Episode.of([d]))
    assert headline == "check again once the EHR's data is available"
    [(step, text)] = steps
    assert step == Step.RECHECK
    assert text.startswith("4 of 14 criteria could not be checked (")
    assert reason in text
    assert text.endswith(f": {remedy}")


# --------------------------------------------------------------------------- what to do next


def baclofen() -> dict[str, Any]:
    return infusate_request("baclofen 2 MG/ML Injectable Solution", "1292")


def test_a_met_order_is_told_to_request_prior_authorization() -> None:
    headline, steps = next_steps(Episode.of([determine(meeting_chart())]))
    assert headline == "request prior authorization"
    assert steps[0][1].startswith("Request prior authorization from GEHA")


def test_an_automatically_approved_order_needs_no_request() -> None:
    headline, steps = next_steps(Episode.of([determine(meeting_chart())]), auto_approved=True)
    assert headline == "approved, no prior authorization request needed"
    assert "approval number is in the order's coverage information" in steps[0][1]


def test_lines_this_call_approves_beside_ones_it_does_not_are_named_apart() -> None:
    """fix-e's leftover (s17): the implant and catheter approved in this answer, the device not; the
    card names the approved lines and asks a prior authorization for the device only."""
    pump, catheter = determine(meeting_chart()), determine(meeting_chart(), order=service_request("62350"))
    device = determine(meeting_chart(), order=service_request("E0783", HCPCS))
    episode = Episode.of([pump, catheter, device])
    partly = (
        LineApproval(pump.order_reference, ("PA-1",), True),
        LineApproval(catheter.order_reference, ("PA-2",), True),
    )
    headline, steps = next_steps(episode, partly=partly)
    assert headline == "request prior authorization"
    assert [text for _, text in steps] == [
        "GEHA approves 62362 and 62350 as ordered: the approval numbers are in their coverage information.",
        "Request prior authorization from GEHA for E0783: every criterion is met.",
        "With the request, send the chart evidence for: A. Chronic pain "
        "> 6 months; A. Known cause of pain; B. Oral and injectable opioids failed (> 6 weeks); C. Treatment "
        "of the underlying condition failed; D. Trial relief >= 50 %; D. Trial without side effects; D. "
        "Patient accepts the procedure; Psychiatric evaluation and its result. The other 6 criteria need "
        "none: nothing is documented against them.",
    ]
    assert instructions_card(episode, headline, steps, partly)["summary"] == (
        "GEHA: request prior authorization for E0783"
    )


def test_an_order_that_does_not_meet_is_told_what_fails_and_how_to_go_ahead() -> None:
    infection = condition(ICD, "L03.115", "2026-11-01", "Cellulitis of right lower limb")
    d = determine([*meeting_chart(), infection])
    headline, steps = next_steps(Episode.of([d]), auto_approved=True)
    assert headline == "before going ahead with {orders}"
    assert all(c.label in steps[0][1] for c in d.by_status(Status.NOT_MET))
    assert steps[-1][1].startswith("If the order goes ahead, give the reason when you override")


def test_an_order_needing_documentation_lists_it() -> None:
    d = determine([])
    headline, steps = next_steps(Episode.of([d]))
    assert headline == f"how to document {len(documentation_steps(d))} items for {{orders}}"
    assert tuple(text for _, text in steps) == documentation_steps(d)


def test_a_request_the_policy_does_not_address_is_sent_to_manual_review() -> None:
    d = determine([condition(ICD, "G35", "2020-01-01", "Multiple sclerosis")], drugs=(baclofen(),))
    assert d.outcome.value == "not-applicable", d.explanation
    headline, steps = next_steps(Episode.of([d]))
    assert headline == "ask for a manual review"
    assert "manual review" in steps[0][1]


def test_every_signed_answer_says_what_to_do_next() -> None:
    for chart in ([], meeting_chart()):
        _, response = sign_with_chart(chart)
        [instructions] = [
            c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" not in c
        ]
        assert "links" not in instructions
        refs = sorted(r["reference"] for r in instructions["extension"]["davinci-crd.associated-resource"])
        assert len(refs) == 4  # the three lines and the pump's drug judged as them


def test_missing_items_without_documentation_advice_are_still_listed() -> None:
    d = determine(meeting_chart(), policy_id="cms-ncd-280-14")
    assert d.outcome.value == "insufficient"
    headline, texts = next_steps(Episode.of([d]))
    steps = [text for _, text in texts]
    assert headline.startswith("how to document ")
    assert headline.endswith((" item for {orders}", " items for {orders}"))
    undocumented = [
        leaf
        for c in d.by_status(Status.NOT_DOCUMENTED)
        for leaf in c.leaves()
        if leaf.status == Status.NOT_DOCUMENTED
    ]
    assert len(steps) == len({leaf.label for leaf in undocumented}) >= 1
    assert all(any(step.startswith(leaf.label) for step in steps) for leaf in undocumented)
    assert not any("no criteria" in step for step in steps)


def test_a_decision_card_with_no_instructions_card_beside_it_says_where_prior_authorization_stands() -> None:
    """Where no Instructions card stands beside an order that meets (a scheduler's, a dispatcher's, an
    encounter's), the decision card says in one line that the prior authorization is still needed, or
    which lines hold an approval and which still need one, or that all do; beside an Instructions card
    it says none of it (that card's first step does). Before, "meets" alone read as approved (cards24
    MEDIUM)."""
    pump, catheter = determine(meeting_chart()), determine(meeting_chart(), order=service_request("62350"))
    device = determine(meeting_chart(), order=service_request("E0783", HCPCS))
    episode = Episode.of([pump, catheter, device])
    partly = (
        LineApproval(pump.order_reference, ("PA-1",), True),
        LineApproval(catheter.order_reference, ("PA-2",), False),
    )
    every = (*partly, LineApproval(device.order_reference, ("PA-1",), True))

    def second_line(approved: tuple[LineApproval, ...] = ()) -> str:
        return str(decision_card(episode, instructions=False, approved=approved)["detail"]).split("\n\n")[1]

    assert second_line() == (
        "**Prior authorization still needed** from GEHA: meeting the criteria is not an approval."
    )
    assert second_line(partly) == (
        "**Prior authorization still needed** from GEHA for E0783; 62362 and 62350 already approved "
        "(PA-1, PA-2)."
    )
    assert second_line(every) == ("**Prior authorization approved** (PA-1, PA-2): no new request is needed.")
    assert "prior authorization" not in str(decision_card(episode, approved=partly)["detail"]).lower()
