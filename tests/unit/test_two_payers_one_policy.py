"""Two payers routed to one policy: a deployment's payers.yaml may send both payers' Medicare members to
the NCD (here GEHA given Kaiser's `medicare_policy`). Each payer's decision is its own: its card, named
by it, and its Coverages' coverage information; the policy is evaluated once per order all the same.
There was one determination per policy, labelled by its first payer: one card "GEHA: …" judged the
Kaiser Coverage too, no card named Kaiser, and the Kaiser Coverage's coverage information said "GEHA:"
(cards25 MEDIUM). The shipped payers.yaml routes no two payers to one policy (the goldens are its answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service import pipeline
from service.catalog import Catalog, load_catalog
from tests.builders import SOPT, cards_of, life_expectancy, meeting_chart, payer_coverage, without_codes
from tests.calls import sign_with_chart
from tests.catalog_support import copy_policies, edit_yaml, name_policy
from tests.conformance import COVERAGE_INFO
from tests.support import sign_body

MEDICARE = {"coding": [{"system": SOPT, "code": "1"}]}
GEHA, KAISER = "GEHA", "Kaiser Permanente Washington"
COVERAGES = {"Coverage/cov-geha-medicare": GEHA, "Coverage/cov-kp-medicare": KAISER}
NCD = "National Coverage Determination for Infusion Pumps (280.14)"


def _catalog(tmp: Path, dtr: bool = True, approving: str | None = None) -> Catalog:
    """The shipped policies but GEHA's Medicare members go to the NCD, as Kaiser's do (`dtr` False:
    neither payer uses DTR, so each asks for its form on a form-completion card; `approving`: the key of
    the payer that approves what meets its policy)."""
    root = copy_policies(tmp)
    name_policy(root, "geha", "cms-ncd-280-14", key="medicare_policy")
    if not dtr:
        edit_yaml(root / "payers.yaml", lambda raw: [p.update(dtr=False) for p in raw["payers"]])
    if approving is not None:
        edit_yaml(
            root / "payers.yaml",
            lambda raw: [p.update(auto_approval=True) for p in raw["payers"] if p["key"] == approving],
        )
    return load_catalog(root)


@pytest.fixture(scope="module")
def shared_ncd(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return _catalog(tmp_path_factory.mktemp("ncd"))


def _answer(
    catalog: Catalog, chart: list[dict[str, Any]] | None = None, coverages: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """order-sign of the sample implant (62362, 62350, E0783) for a patient with `coverages` (a GEHA and
    a Kaiser Medicare Coverage), on `chart` (by default one lacking one NCD item: life expectancy)."""
    body = sign_body()
    coverages = coverages or [
        payer_coverage("geha", id="cov-geha-medicare", type=MEDICARE),
        payer_coverage("kpwa", id="cov-kp-medicare", type=MEDICARE),
    ]
    for coverage in coverages:
        coverage["beneficiary"] = {"reference": f"Patient/{body['context']['patientId']}"}
    entries = [{"resource": c} for c in coverages]
    body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    body["prefetch"].pop("payerOrganizations", None)
    return sign_with_chart(meeting_chart() if chart is None else chart, catalog, body=body)[1]


def _said_per_coverage(answer: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(order, Coverage, what its coverage information says) for every repetition the answer writes."""
    for action in answer.get("systemActions", []):
        resource = action["resource"]
        for extension in resource.get("extension", []):
            if extension["url"] != COVERAGE_INFO:
                continue
            parts = {s["url"]: s for s in extension["extension"]}
            coverage = parts["coverage"]["valueReference"]["reference"]
            yield f"{resource['resourceType']}/{resource['id']}", coverage, str(parts.get("reason", ""))


def test_each_payer_gets_its_own_decision_card(shared_ncd: Catalog) -> None:
    answer = _answer(shared_ncd)
    decisions = cards_of(answer["cards"])
    assert [c["source"]["label"] for c in decisions] == [GEHA, KAISER], [c["summary"] for c in decisions]
    for card, payer in zip(decisions, (GEHA, KAISER), strict=True):
        assert card["summary"].startswith(f"{payer}: 1 item to document for 62362, 62350, E0783"), card[
            "summary"
        ]
        assert NCD in card["detail"]


def test_each_coverage_is_answered_in_its_own_payers_name(shared_ncd: Catalog) -> None:
    said = list(_said_per_coverage(_answer(shared_ncd)))
    assert {coverage for _, coverage, _ in said} == set(COVERAGES)
    for order, coverage, reason in said:
        payer = COVERAGES[coverage]
        other = next(p for p in COVERAGES.values() if p != payer)
        assert f"{payer}: documentation needed for {NCD}" in reason, (order, coverage, reason)
        assert other not in reason, (order, coverage, reason)


def test_the_policy_is_linked_once_naming_both_payers(shared_ncd: Catalog) -> None:
    [link] = cards_of(_answer(shared_ncd)["cards"], "guideline")
    assert link["summary"].startswith(f"{GEHA} and {KAISER} policy: {NCD}"), link["summary"]
    assert link["links"][0]["url"].endswith("/policies/cms-ncd-280-14")


def test_the_policy_is_evaluated_once_per_order(shared_ncd: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated: list[str] = []

    def counted(policy: Any, ctx: Any) -> Any:
        evaluated.append(policy.id)
        return evaluate(policy, ctx)

    evaluate = pipeline.evaluate_order
    monkeypatch.setattr(pipeline, "evaluate_order", counted)
    _answer(shared_ncd)
    assert evaluated == ["cms-ncd-280-14"] * 3  # the three order lines, whichever payers judge them


def test_each_payer_without_dtr_asks_for_its_form_as_its_requester(tmp_path: Path) -> None:
    forms = cards_of(_answer(_catalog(tmp_path, dtr=False))["cards"], "clinical-reminder")
    asking = [c for c in forms if "complete the documentation form" in c["summary"]]
    assert [c["source"]["label"] for c in asking] == [GEHA, KAISER], [c["summary"] for c in forms]
    for card, key in zip(asking, ("geha", "kpwa"), strict=True):
        [task] = [
            a["resource"]
            for s in card["suggestions"]
            for a in s["actions"]
            if a["resource"]["resourceType"] == "Task"
        ]
        assert task["requester"]["identifier"]["value"] == key
        assert len(task["basedOn"]) == 3


def test_only_the_approving_payer_says_approved(tmp_path: Path) -> None:
    """GEHA approves what meets the NCD, Kaiser does not: GEHA's Instructions card says approved, as its
    Coverage's coverage information does, and Kaiser's asks a prior authorization (the one card, GEHA's,
    asked it of GEHA: an approval counted only when every Coverage of both payers held one)."""
    chart = [*meeting_chart(), life_expectancy(12, "mo", "2025-10-02")]
    answer = _answer(_catalog(tmp_path, approving="geha"), chart)
    steps = {c["source"]["label"]: c["summary"] for c in cards_of(answer["cards"], "clinical-reminder")}
    assert steps == {
        GEHA: f"{GEHA}: approved, no prior authorization request needed for 62362, 62350, E0783",
        KAISER: f"{KAISER}: request prior authorization for 62362, 62350, E0783",
    }, steps


def test_the_trial_first_card_says_the_policys_trial_criterion_once_naming_both_payers(
    shared_ncd: Catalog,
) -> None:
    """payer25 LOW: with no trial on the chart, the one card proposing it said the NCD's trial criterion
    once per payer ("GEHA: Trial relieved pain (…); Kaiser Permanente Washington: Trial relieved pain
    (…)"); it is one criterion of one policy, said once naming both payers, as the policy-link card names
    them. Each Coverage's coverage information is still its own payer's (one per order and Coverage)."""
    chart = without_codes(meeting_chart(), "62324", "it-trial-side-effects", "it-trial-patient-acceptance")
    answer = _answer(shared_ncd, chart)
    [trial] = [c for c in cards_of(answer["cards"], "clinical-reminder") if c.get("suggestions")]
    assert trial["detail"].count("Trial relieved pain") == 1, trial["detail"]
    assert f"{GEHA} and {KAISER}: Trial relieved pain [" in trial["detail"], trial["detail"]
    said = list(_said_per_coverage(answer))
    assert {coverage for _, coverage, _ in said} == set(COVERAGES)
    assert all(COVERAGES[coverage] in reason for _, coverage, reason in said), said


NO_TRIAL = ("62324", "it-trial-side-effects", "it-trial-patient-acceptance")


def test_the_trial_first_cards_title_and_label_list_the_payers_as_its_detail_does(
    shared_ncd: Catalog,
) -> None:
    """cards26 / review26a: its title and label joined the payers with ", " ("GEHA, Kaiser Permanente
    Washington: order the trial …"), its detail with "and": one way, the detail's."""
    answer = _answer(shared_ncd, without_codes(meeting_chart(), *NO_TRIAL))
    [trial] = [c for c in cards_of(answer["cards"], "clinical-reminder") if c.get("suggestions")]
    assert trial["summary"].startswith(f"{GEHA} and {KAISER}: order the trial before "), trial["summary"]
    assert trial["source"]["label"] == f"{GEHA} and {KAISER}"


def test_the_trial_first_card_names_the_plan_as_the_decision_cards_do(shared_ncd: Catalog) -> None:
    """review26a LOW: GEHA's Medicare Coverage judged under the NCD and its other one under GEHA's own
    criteria read "GEHA: Trial relieved pain (…); GEHA: D. Trial relief >= 50 % (…)", one payer named
    twice; the decision cards beside it name the plans ("GEHA, Medicare plan"). The title names GEHA once."""
    coverages = [
        payer_coverage("geha", id="cov-geha-medicare", type=MEDICARE),
        payer_coverage("geha", id="cov-geha-other"),
    ]
    answer = _answer(shared_ncd, without_codes(meeting_chart(), *NO_TRIAL), coverages)
    decisions = [c["summary"] for c in cards_of(answer["cards"])]
    assert any(s.startswith(f"{GEHA}, Medicare plan: ") for s in decisions), decisions
    [trial] = [c for c in cards_of(answer["cards"], "clinical-reminder") if c.get("suggestions")]
    assert f"{GEHA}, Medicare plan: Trial relieved pain [" in trial["detail"], trial["detail"]
    assert f"{GEHA}, plan not coded as Medicare: D. Trial relief" in trial["detail"], trial["detail"]
    assert trial["summary"].startswith(f"{GEHA}: order the trial before "), trial["summary"]
