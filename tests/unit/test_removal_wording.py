"""How the cards word a pump or another programmable device that a removal record not read may have
removed (review30a's LOWs L3-L7): an instruction that is a condition of its own joins whether the pump is
still in place; the decision card keeps what to do of an either/or asked only of a pump in place; an implant
is named by the code system it was matched in, the latest of several first, on the card's line where it
fits; the criteria met only because the pump reads as in place are said so where the met line names them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cards.items import ANY_ONE, IF_IN_PLACE, IF_NONE_IN_PLACE, Episode, Step, missing, none_documented, steps
from cards.render import AS_ABOVE, AS_BELOW, ITEM_LIMIT, detail, next_steps, summary
from service.engine.model import Pending, and_more
from tests.builders import (
    SCT,
    assessment,
    coded_assessment,
    determine,
    device,
    finding_of,
    infusate_request,
    meeting_chart,
    modified,
    payer_coverage,
    procedure,
    service_request,
)
from tests.contract_support import call
from tests.policy_charts import cancer_chart, cohere

DEVICE = "geha.excl.programmable-device"
CMM210 = "cmm-210-idds"
CAUSE = "(1 record(s) carry a modifier extension this service does not understand)"


def unread_pump() -> dict[str, Any]:
    """A pump Device whose status is none of FHIR R4's codes: no pump found, one may be in place."""
    return {**device({"text": "SynchroMed II implanted infusion pump"}), "status": "Active"}


def pump_maybe_removed() -> list[dict[str, Any]]:
    return [procedure("62362", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]


def line_of(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if f"**{label}**" in line)


def met_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("✅"))


def test_an_implant_is_named_by_the_code_system_it_was_matched_in() -> None:
    """review30a L7: an implant Procedure matched by a SNOMED CT code of the value set read "implant CPT
    441509002 (2 Feb 2019)"."""
    removal = modified(procedure("33233", "2020-02-02"))
    snomed = determine([*meeting_chart(), procedure("441509002", "2019-02-02", system=SCT), removal])
    assert finding_of(snomed, DEVICE) == (
        f"could not be checked: implant SNOMED 441509002 (2 Feb 2019), but some of the EHR's later removals "
        f"could not be read {CAUSE}"
    )
    line = line_of(
        detail(Episode.of([snomed])), "“No other implanted programmable device” could not be checked"
    )
    assert "CPT 441509002" not in line
    # named on the line by its code where its day leaves why no room (167 characters against 166)
    assert (
        f": implant SNOMED 441509002, but some of the EHR's later removals could not be read {CAUSE} — "
        in line
    )
    cpt = determine([*meeting_chart(), procedure("33206", "2019-02-02"), removal])
    assert finding_of(cpt, DEVICE).startswith("could not be checked: implant CPT 33206 (2 Feb 2019), but")


def test_of_several_implants_the_card_names_the_latest_and_counts_the_others_where_they_fit() -> None:
    """review30a L6, removal30's open point: with two implants the line (170 characters against 166) named
    neither, only why. The latest is named, and "and 1 more" where it fits; why is kept whole."""
    implants = [procedure("33207", "2019-03-03"), procedure("33206", "2019-02-02")]
    label = "“No other implanted programmable device” could not be checked"
    removal = modified(procedure("33233", "2020-02-02"))
    two = determine([*meeting_chart(), *reversed(implants), removal])
    assert finding_of(two, DEVICE).startswith(
        "could not be checked: implant CPT 33207 (3 Mar 2019) and 1 more"
    )
    line = line_of(detail(Episode.of([two])), label)
    # review30f: where the count did not fit it was dropped, and a clinician who confirms the latest implant
    # was removed may stop there; the day goes first, the count said in fewer words (the engine's parts,
    # `CriterionResult.pending`, not a cut of its words)
    assert (
        f": implant CPT 33207 +1 more, but some of the EHR's later removals could not be read {CAUSE} — "
        in line
    )
    # the parts the card composes it from: the latest implant, its day, how many others
    parts = [(p.named, p.when, p.more) for top in two.criteria for r in top.leaves() if (p := r.pending)]
    assert parts == [("implant CPT 33207", "3 Mar 2019", 1)]
    broken = procedure("33233", "2020-02-02")
    broken["status"] = ["completed"]  # unreadable: a shorter cause leaves the count room
    short = determine([*meeting_chart(), *implants, broken])
    line = line_of(detail(Episode.of([short])), label)
    assert (
        ": implant CPT 33207 (3 Mar 2019) and 1 more, but some of the EHR's procedure history could not"
        in line
    )
    assert line.endswith(" — check those records in the chart: calling again reads the same")


def test_an_instruction_that_is_a_condition_of_its_own_joins_whether_the_pump_is_in_place() -> None:
    """review30a L4: CMM-210's abuse or neglect item read "If the pump is still in place, if the device was
    not abused or neglected, nothing is needed; …"."""
    abused = coded_assessment("device-abuse-neglect", "true")
    d = determine([*meeting_chart(), *pump_maybe_removed(), abused], policy_id=CMM210)
    # review30f L1: "If the pump is still in place and the device was not abused or neglected, nothing is
    # needed; record … otherwise" asked a removed pump too for the record: the condition now scopes it all
    joined = (
        "If the pump is still in place, nothing is needed while there is no evidence to suggest the "
        "device has been abused or neglected; record “evidence the existing device was abused or neglected” "
        "if there is."
    )
    text = detail(Episode.of([d]))
    # the decision card says the condition once, each line what to do under it (wording31)
    assert text.splitlines()[0].endswith(" Items to document are asked only if the pump is still in place.")
    said = joined.removeprefix(f"{IF_IN_PLACE}, ")
    said = f"{said[:1].upper()}{said[1:]}"
    assert line_of(text, "No evidence of abuse or neglect of the device").endswith(f" — {said}")
    assert any(step.endswith(f": {joined}") for _, step in steps(missing(d)))
    assert "place, if " not in text and all("place, if " not in step for _, step in steps(missing(d)))
    # an instruction that is no condition still follows it, on the Instructions card
    state = "If the pump is still in place, record “state of the existing pump” from the pump interrogation"
    assert any(f": {state}" in step for _, step in steps(missing(d)))


def test_an_either_or_asked_only_of_a_pump_in_place_keeps_what_to_do_on_the_decision_card() -> None:
    """review30a L5: Cohere's replacement reasons are one item whose instruction, after "If the pump is still
    in place, ", left less than MIN_FINDING for its finding: the finding was kept whole and what to do cut
    ("…; Replaced for a recall…"), said only on the Instructions card. It now says its few words ("any one
    is enough": each way's lack is what the instruction records) and what to do whole."""
    d = cohere([*cancer_chart(), *pump_maybe_removed()])
    item = next(
        i for i in missing(d) if i.label == "Replacement: not functioning, recalled, or impending failure"
    )
    assert item.todo and item.todo.startswith("If the pump is still in place, record")
    line = line_of(detail(Episode.of([d])), item.label)  # the condition said once on the card (wording31)
    bare = item.unconditioned or ""
    assert item.todo == f"{IF_IN_PLACE}, {bare[:1].lower()}{bare[1:]}"
    assert line == f"- ❔ **{item.label}**: any one is enough — {bare}"
    assert len(line) <= ITEM_LIMIT + 2


def test_the_met_line_says_which_criteria_only_a_pump_in_place_brings() -> None:
    """review30a L3: "3 of 4 criteria met" named "No evidence of abuse or neglect of the device" and "Not a
    replacement of a functional pump" as met while the pump may have been removed (a first implant is
    judged by other criteria): where the met line names them, it says so."""
    unsure = determine([*meeting_chart(), *pump_maybe_removed()], policy_id=CMM210)
    assert set(unsure.in_place_only) >= {
        "cmm210.replace.no-abuse-neglect",
        "cmm210.replace.not-if-functional",
    }
    met = met_line(detail(Episode.of([unsure])))
    assert met == (
        "✅ 3 of 4 criteria met, 3 with none documented against them: Not a pump for insulin, antibiotics or "
        "heparin; No evidence of abuse or neglect of the device (if the pump is still in place); Not a "
        "replacement of a functional pump (if the pump is still in place)."
    )
    sure = determine([*meeting_chart(), procedure("62362", "2020-02-02")], policy_id=CMM210)
    assert "(if the pump is still in place)" not in detail(Episode.of([sure]))
    # where the names do not all fit, fewer are named, the rest counted, within the line's room
    crowded = cohere([*cancer_chart(), *pump_maybe_removed()])
    met = met_line(detail(Episode.of([crowded])))
    assert "Replacement not for patient convenience (if the pump is still in place)" in met
    assert len(met) <= ITEM_LIMIT and met.endswith("more.")


def test_a_failure_only_the_kind_read_brings_says_on_what_it_fails() -> None:
    """review30f: a ❌ line of a criterion only the kind read brings, while that kind could not be told, said
    bare under "Documentation needed" read as failing the order: CMM-210's "❌ Opioids or other analgesics
    for at least 6 months" beside a pump Device that could not be read (likely a pump in place, a
    replacement, which that criterion is not asked of), "❌ Not a replacement of a functional pump" beside a
    removal not read. Each says on what it fails, as the met line does; a failure of either kind stays bare,
    and so does every line where the kind is sure."""
    unread_pump = {**device({"text": "SynchroMed II implanted infusion pump"}), "status": "Active"}
    none_found = determine([*meeting_chart(), unread_pump], policy_id=CMM210)
    assert not none_found.in_place and "cmm210.pain.trial.noninvasive-6mo" in none_found.in_place_only
    text = detail(Episode.of([none_found]))
    assert "- ❌ **Opioids or other analgesics for at least 6 months (if no pump is in place)**: " in text
    assert "(if the pump is still in place)" not in text
    functional = coded_assessment("device-status", "functional")
    found = determine([*meeting_chart(), *pump_maybe_removed(), functional], policy_id=CMM210)
    assert found.in_place and "cmm210.replace.not-if-functional" in found.in_place_only
    assert "- ❌ **Not a replacement of a functional pump (if the pump is still in place)**: " in detail(
        Episode.of([found])
    )
    # a failure of either kind: a pump for insulin fails whether or not a pump is in place
    insulin = determine(
        [*meeting_chart(), unread_pump],
        drugs=(infusate_request("Insulin Regular, Human 100 UNT/ML Injectable Solution", "253182"),),
        policy_id=CMM210,
    )
    assert "cmm210.nonind.infusate" not in insulin.in_place_only
    assert any(
        line.startswith("- ❌ **Not a pump for insulin") and "in place)" not in line
        for line in detail(Episode.of([insulin])).splitlines()
    )
    sure = determine(
        [*meeting_chart(), device({"text": "SynchroMed II implanted infusion pump"})], policy_id=CMM210
    )
    assert not sure.in_place_only and "in place)**" not in detail(Episode.of([sure]))


def test_the_met_line_says_a_criterion_only_a_first_implant_brings_holds_if_no_pump_is_in_place() -> None:
    """The met line's words of a criterion of `in_place_only` follow the kind read, as what to do does
    (`_if_in_place`): where no pump was found they are "(if no pump is in place)", never "(if the pump is
    still in place)" of a pump no record showed. No policy today has a first implant's criterion met on
    absence alone, so the Determination names one (CMM-210's exclusion of insulin) as only a first
    implant's."""
    unread_pump = {**device({"text": "SynchroMed II implanted infusion pump"}), "status": "Active"}
    none_found = determine([*meeting_chart(), unread_pump], policy_id=CMM210)
    assert not none_found.in_place and none_found.in_place_unsure
    named = replace(none_found, in_place_only=(*none_found.in_place_only, "cmm210.nonind.infusate"))
    assert none_documented(named) == (
        "Not a pump for insulin, antibiotics or heparin (if no pump is in place)",
    )


def test_one_implant_procedure_coded_in_two_systems_is_named_as_one_implant() -> None:
    """review30f: one implant Procedure coded in CPT and in SNOMED CT read "implant CPT 33206, SNOMED
    441509002 (2 Feb 2019)", two implants to a reader; a Procedure is one implant, named by its first code."""
    both = procedure("33206", "2019-02-02")
    both["code"]["coding"].append({"system": SCT, "code": "441509002"})
    d = determine([*meeting_chart(), both, modified(procedure("33233", "2020-02-02"))])
    assert finding_of(d, DEVICE) == (
        f"could not be checked: implant CPT 33206 (2 Feb 2019), but some of the EHR's later removals could "
        f"not be read {CAUSE}"
    )
    assert "441509002" not in detail(Episode.of([d]))


def test_the_decision_line_says_an_order_with_no_pump_found_was_judged_as_the_kind_read() -> None:
    """review30f L3: with a pump found that a removal not read may have taken out, the decision line says
    "read as a pump replacement (a pump may be in place: …)"; with no pump found beside a pump Device that
    could not be read, it said only "for 62362 programmable pump", nothing of the first implant its ❌ lines
    judge. It now says so in few words; where the kind is sure the line is as it was."""
    unread_pump = {**device({"text": "SynchroMed II implanted infusion pump"}), "status": "Active"}
    none_found = determine([*meeting_chart(), unread_pump], policy_id=CMM210)
    assert not none_found.in_place and none_found.in_place_unsure
    head = detail(Episode.of([none_found])).splitlines()[0]
    assert head.startswith(
        "**Documentation needed** (CMM-210) for 62362 programmable pump, read as a permanent pump "
        "implant (no pump found), for "
    )
    sure = determine([*meeting_chart()], policy_id=CMM210)
    assert "read as" not in detail(Episode.of([sure])).splitlines()[0]


def test_the_decision_card_never_cuts_what_to_do_mid_sentence_beside_an_instructions_card() -> None:
    """review30f L2: Cohere's decision card still cut what to do where 125c6fe did not reach: with a pump
    found, the replacement either/or (a label leaving 9 characters) kept its finding and lost its instruction
    ("…no “why a replacement is ordered” recorded…"); with no pump found, "Pharmacological modalities …"
    ended "— If no pump is in place, record the analgesic prescriptions of the last…". An item with few
    words now says what to do whole without its finding; another says where what to do is whole."""
    unread_pump = {**device({"text": "SynchroMed II implanted infusion pump"}), "status": "Active"}
    for chart in ([*meeting_chart(), *pump_maybe_removed()], [*meeting_chart(), unread_pump]):
        d = cohere(chart)
        assert d.in_place_unsure
        text = detail(Episode.of([d]))
        open_lines = [
            line for line in text.splitlines() if line.startswith("- ❔ ") or line.startswith("- ❌ ")
        ]
        assert open_lines and not any(line.endswith("…") for line in open_lines)
        for item in missing(d):
            line = next((line for line in open_lines if f"**{item.named}**" in line), None)
            todo = item.unconditioned or item.todo  # its condition said once on the card (wording31)
            if line and todo:
                said = (f" — {todo}", f" — {AS_ABOVE}", f" — {AS_BELOW}")
                assert line.endswith(said) or "Instructions card" in line
    found = cohere([*meeting_chart(), *pump_maybe_removed()])
    item = next(i for i in missing(found) if i.label.startswith("Replacement: not functioning, technology"))
    line = line_of(detail(Episode.of([found])), item.label)
    assert line == f"- ❔ **{item.label}**: {ANY_ONE} — {item.unconditioned}"
    # with no Instructions card beside (a scheduler's card), nothing points to one
    assert "Instructions card" not in detail(Episode.of([cohere([*meeting_chart(), unread_pump])]), False)


def test_and_n_more_is_worded_in_one_place() -> None:
    """review30j LOW: "and N more" was built in three places (the implant a removal may undo, the device
    check's finding, the card's shorter "+N more"); `model.and_more` now words it for all three, the card's
    text unchanged (the tests above pin each form on a card)."""
    assert (and_more(0), and_more(1), and_more(2, short=True), and_more(0, short=True)) == (
        "",
        " and 1 more",
        " +2 more",
        "",
    )
    assert Pending("implant CPT 33207", "3 Mar 2019", 1).words == "implant CPT 33207 (3 Mar 2019) and 1 more"
    assert Pending("implant CPT 33207", "3 Mar 2019").words == "implant CPT 33207 (3 Mar 2019)"


def test_the_decision_card_says_the_in_place_condition_once_so_each_line_keeps_what_to_do() -> None:
    """wording30b, review30f L2: each item a first implant (or a replacement) alone brings repeated "If no
    pump is in place, …" (24 to 31 characters), so Cohere's and CMM-210's lines kept only the beginning of
    what to do, or only pointed to the Instructions card. The card now says the condition once, after the
    verdict that says what the order was read as, and each line what to do without it; the Instructions
    card, whose steps are read one by one, keeps it on each."""
    for judged in (cohere, lambda chart: determine(chart, policy_id=CMM210)):
        for chart, when in (
            ([*meeting_chart(), unread_pump()], IF_NONE_IN_PLACE),
            ([*meeting_chart(), *pump_maybe_removed()], IF_IN_PLACE),
        ):
            d = judged(chart)
            text = detail(Episode.of([d]))
            once = f"Items to document are asked only {when[:1].lower()}{when[1:]}."
            assert text.splitlines()[0].endswith(f" {once}") and text.count(once) == 1
            lines = [line for line in text.splitlines() if line.startswith("- ❔ ")]
            to_document = [i for i in missing(d) if i.step not in (Step.RECHECK, Step.REVIEW)]
            assert to_document and all(i.unconditioned for i in to_document)
            for at, line in enumerate(lines):
                assert when not in line and f"{when[:1].lower()}{when[1:]}," not in line
                item = next((i for i in to_document if f"**{i.named}**" in line), None)
                if item is None:
                    continue
                assert line.endswith((f" — {item.unconditioned}", f" — {AS_ABOVE}", f" — {AS_BELOW}")) or (
                    "Instructions card" in line
                ), line
                if line.endswith(f" — {AS_BELOW}"):  # said whole on a line below it
                    assert any(later.endswith(f" — {item.unconditioned}") for later in lines[at + 1 :])
            for step, words in steps(missing(d)):
                if step not in (Step.RECHECK, Step.REVIEW):
                    assert when in words or f"{when[:1].lower()}{when[1:]}" in words, words
    d = cohere([*meeting_chart(), unread_pump()])
    adl = next(i for i in missing(d) if i.label.startswith("Difficulty with ADLs"))
    assert line_of(detail(Episode.of([d])), adl.label).endswith(f" — {adl.unconditioned}")
    assert adl.todo == f"{IF_NONE_IN_PLACE}, {adl.unconditioned[:1].lower()}{adl.unconditioned[1:]}"


def test_an_instruction_items_share_is_said_whole_on_the_first_line_with_room_for_it() -> None:
    """wording30b: "Pharmacological modalities …", whose finding (why) leaves no room for the instruction it
    shares with "Physical therapy", said only "what to do: see the Instructions card", and "Physical therapy
    … — as above" pointed to that. Where the card has room, the instruction is said whole on the first line
    that holds it and its finding whole, the line before it saying "as below"; the finding is never cut."""
    documented = [
        assessment("psych-clearance", "2025-08-01", valueBoolean=True),
        coded_assessment("further-treatment-status", "not-indicated"),
        assessment("adl-difficulty-months", "2026-10-20", valueInteger=14),
        assessment("home-exercise-program", "2026-10-20", valueBoolean=True),
        procedure("90834", "2026-09-01"),
    ]
    d = cohere([*meeting_chart(), unread_pump(), *documented])
    drugs, therapy = (
        next(i for i in missing(d) if i.label.startswith(label))
        for label in ("Pharmacological", "Physical therapy")
    )
    assert drugs.unconditioned == therapy.unconditioned
    for beside in (True, False):
        text = detail(Episode.of([d]), beside)
        assert line_of(text, drugs.label) == f"- ❔ **{drugs.label}**: {drugs.finding} — {AS_BELOW}"
        assert (
            line_of(text, therapy.label)
            == f"- ❔ **{therapy.label}**: {therapy.finding} — {therapy.unconditioned}"
        )


def test_the_instructions_card_counts_its_items_as_the_decision_card_does() -> None:
    """review30j: Cohere's decision card said "7 items to document and 1 to check", and its Instructions
    card "how to document 8 items", counting the one to check among those to document. Both say one count."""
    episode = Episode.of([cohere([*meeting_chart(), unread_pump()])])
    assert "7 items to document and 1 to check for 62362" in summary(episode)
    assert next_steps(episode)[0].startswith("how to document 7 items and check 1 for ")


def test_an_order_whose_name_says_the_kind_read_is_not_said_read_as_it() -> None:
    """review30f L3, wording30b: a catheter alone with no pump found read "for 62350 catheter, read as a
    catheter (no pump found)"; it now says "for 62350 catheter (no pump found)". A pump order is still said
    read as a permanent pump implant."""
    catheter = determine([*meeting_chart(), unread_pump()], order=service_request("62350"), policy_id=CMM210)
    assert catheter.in_place_unsure and not catheter.in_place
    head = detail(Episode.of([catheter])).splitlines()[0]
    assert head.startswith("**Documentation needed** (CMM-210) for 62350 catheter (no pump found), for ")
    pump = determine([*meeting_chart(), unread_pump()], policy_id=CMM210)
    assert ", read as a permanent pump implant (no pump found)" in detail(Episode.of([pump])).splitlines()[0]


def test_the_in_place_condition_is_said_once_only_over_items_no_other_line_asks_unconditioned() -> None:
    """review31a L2: Cohere, no pump found beside a pump Device that could not be read, 62362 with a 62324
    trial: "Items to document are asked only if no pump is in place." covered every item, but the trial
    line asks its items whatever is in place (the merged item kept the implant line's conditioned words).
    An item some line asks unconditioned is said so, and the sentence is not said; 62362 alone keeps it."""
    cpt = "http://www.ama-assn.org/go/cpt"
    chart = [*meeting_chart(), unread_pump()]
    pump, trial = service_request("62362", cpt), service_request("62324", cpt)
    cohere_coverage = payer_coverage("cohere")
    both = call(chart, pump, trial, infusate_request(), coverage=cohere_coverage)["cards"][0]["detail"]
    assert "asked only if" not in both
    adls = line_of(both, "Difficulty with ADLs for >= 6 months")
    assert "If no pump is in place" not in adls and " — Record “months of difficulty" in adls
    alone = call(chart, pump, infusate_request(), coverage=cohere_coverage)["cards"][0]["detail"]
    assert "Items to document are asked only if no pump is in place." in alone
