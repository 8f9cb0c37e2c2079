"""What the synthea review s19 found a clinician could not read in ten seconds on real charts: cuts
inside a number, a date or a code (M2), an Instructions card repeating one instruction per criterion
(M1), LOINC codes without the words for them (L2), a refill with no pump on the chart said nothing
of it (L3)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from cards.items import Episode
from cards.render import SUMMARY_LIMIT, decision_card, instructions_card, next_steps
from cards.shortening import shortened
from service.catalog import load_catalog
from service.engine.classify import no_pump_words
from service.engine.model import CriterionResult, Determination, Outcome, Status
from service.orders import load_order_codes
from service.record import build_record
from service.terminology import Terminology
from tests.builders import (
    ICD,
    PATIENT,
    PUMP_IN_PLACE,
    catalog,
    condition,
    determine,
    infusate_request,
    meeting_chart,
    service_request,
)
from tests.catalog_support import copy_policies, edit_yaml

# a word that is part of a number, a date or a code, or continues one ("30 days", "6 Dec 2025")
NUMBERISH = re.compile(r"^(\S*\d\S*|>=|<=|[<>→-]|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|CPT|LOINC)$")
UNIT = re.compile(r"^(days?|weeks?|months?|years?|hours?|%)$")


def failing_with(label: str, finding: str, payer: str = "eviCore CMM-210") -> Determination:
    """A determination of `payer` that is not covered for one criterion, with its label and finding."""
    result = CriterionResult("x.one", label, "", "s", "c", "required", Status.NOT_MET, finding)
    return dataclasses.replace(determine([]), payer=payer, outcome=Outcome.DOES_NOT_MEET, criteria=(result,))


def open_with(label: str, finding: str, todo: str) -> Determination:
    """A determination with one criterion to document."""
    result = CriterionResult(
        "x.one", label, "", "s", "c", "required", Status.NOT_DOCUMENTED, finding, how_to_document=todo
    )
    return dataclasses.replace(determine([]), outcome=Outcome.INSUFFICIENT, criteria=(result,))


def continues(word: str, following: str) -> bool:
    """Whether `following`, after a space, continues the group `word` is part of."""
    following = following.strip("(),;:")
    return bool(NUMBERISH.match(word)) and bool(NUMBERISH.match(following) or UNIT.match(following))


def cut_well(shown: str, full: str) -> bool:
    """Whether `shown`, cut from `full` with "…", ends on a whole word of it that no number, date or
    code group goes on past ("30" before "days", "Dec" before "2025", "CPT" before "62320-62327"):
    where `full` goes on from what is kept, else (the summary's asides left out) wherever the word is."""
    kept = shown.split("…", 1)[0].rstrip()
    last = re.split(r"[\s(]", kept)[-1]
    at = full.find(kept[-25:])
    if at >= 0:
        rest = full[at + len(kept[-25:]) :]
        if rest[:1].isalnum():
            return False  # cut inside a word
        return not (rest.startswith(" ") and continues(last, rest.split()[0]))
    if last.strip("(),;:") not in {w.strip("(),;:") for w in full.split()}:
        return False
    return not any(
        not m.group(1) and continues(last, m.group(2))
        for m in re.finditer(re.escape(last) + r"(\S*) (\S+)", full)
    )


CUT_FINDINGS = [
    (  # Eliseo, CMM-210: "... the orders cover 3 months 29 days if the last ran 30…"
        "Opioids or other analgesics for at least 6 months",
        "the orders cover 3 months 29 days if the last ran 30 days (4 Apr 2015 → 2 Aug 2015; it gives "
        "no supply length), needs at least 6 months",
    ),
    (  # Bradly, Cohere: "... none in the last 12 months (since 6 Dec…"
        "Pharmacological modalities (>= 6 months within the last year)",
        "none in the last 12 months (since 6 Dec 2025): the last course, oxycodone 5 MG oral tablet, "
        "ended 3 Mar 2020 if it ran 30 days, needs at least 6 months",
    ),
    (  # Margarette, Cohere: "... no intrathecal trial procedure (CPT 62320-6232…"
        "Trial improvement >= 50 %",
        "trial result not documented: no intrathecal trial procedure (CPT 62320-62327) found",
    ),
]


@pytest.mark.parametrize(("label", "finding"), CUT_FINDINGS)
def test_a_summary_is_never_cut_inside_a_number_a_date_or_a_code(label: str, finding: str) -> None:
    """Wherever the limit falls (payers' names of every length), a summary cut short ends on a whole
    word, before a number, a date or a code rather than inside it (synthea review s19, M2)."""
    for padding in range(40):
        payer = "P" * padding + " Health"
        summary = decision_card(Episode.of([failing_with(label, finding, payer)]))["summary"]
        assert len(summary) <= SUMMARY_LIMIT
        assert "…" not in summary or cut_well(summary, f"{label} {finding}"), summary


@pytest.mark.parametrize(("label", "finding"), CUT_FINDINGS)
def test_a_decision_card_line_is_never_cut_inside_a_number_a_date_or_a_code(label: str, finding: str) -> None:
    """Wherever the room for what the chart shows ends (instructions of every length), the finding cut
    short ends on a whole word, not inside "6 Dec 2025" or "CPT 62320-62327" (synthea review s19, M2)."""
    for words in range(1, 20):
        todo = "Record " + " ".join(["the visits"] * words) + "."
        detail = decision_card(Episode.of([open_with(label, finding, todo)]))["detail"]
        [line] = [x for x in detail.splitlines() if x.startswith("- ❔")]
        shown = line.split("**: ", 1)[1].split(" — ", 1)[0]
        assert "…" not in shown or cut_well(shown, finding), line


def test_a_summary_keeps_the_amount_the_chart_shows_rather_than_a_hedge_cut_short() -> None:
    """Eliseo, CMM-210 (synthea review s19, M2): the hedge goes, what the orders cover stays whole."""
    d = failing_with(
        "Opioids or other analgesics for at least 6 months",
        "the orders cover 3 months 29 days if the last ran 30 days (4 Apr 2015 → 2 Aug 2015; it gives "
        "no supply length), needs at least 6 months",
    )
    summary = decision_card(Episode.of([d]))["summary"]
    assert summary.endswith("at least 6 months: the orders cover 3 months 29 days…"), summary


def test_a_summary_naming_its_top_item_is_not_cut_inside_its_threshold() -> None:
    """Fletcher, Kaiser (synthea review s19, M2): "… — 3.b Life expectancy recorded >= 3…"."""
    label = "3.b Life expectancy recorded >= 3 months"
    for padding in range(100):
        payer = "P" * padding + " Health"
        d = dataclasses.replace(open_with(label, "not recorded", "Record it."), payer=payer)
        summary = decision_card(Episode.of([d]))["summary"]
        assert len(summary) <= SUMMARY_LIMIT
        full = f"{payer}: 1 item to document for 62362 — {label}"
        assert "…" not in summary or cut_well(summary, full), summary


def instruction_steps(d: Determination) -> list[str]:
    """The numbered steps of the Instructions card beside `d`'s decision card, without their numbers."""
    episode = Episode.of([d])
    detail = instructions_card(episode, *next_steps(episode))["detail"]
    return [line.split(". ", 1)[1] for line in detail.splitlines() if re.match(r"\d+\. ", line)]


def test_the_instructions_card_gives_one_step_per_thing_to_do_naming_the_criteria_it_serves() -> None:
    """Synthea review s19, M1 (Cohere, Fletcher: 20 items, one 250-character instruction printed under
    five criteria, "Opioid failure or intolerable side effects" twice): criteria sharing what to do
    are one step naming each of them once; every criterion the decision card names is still on a step."""
    d = determine([], policy_id="cohere-intrathecal-pain-pumps")
    steps = instruction_steps(d)
    todos = [step.rsplit(": ", 1)[1] for step in steps]
    assert len(todos) == len(set(todos)), steps
    conservative = [s for s in steps if "Record the analgesic prescriptions of the last year" in s]
    assert len(conservative) == 1 and conservative[0].startswith(
        "Pharmacological modalities (>= 6 months within the last year); Physical therapy; "
        "Home exercise program; "
    ), steps
    opioid_failure = [s for s in steps if "Opioid failure or intolerable side effects" in s]
    assert len(opioid_failure) == 1 and opioid_failure[0].count("Opioid failure or intolerable") == 1
    episode = Episode.of([d])
    assert all(any(item.label in step for step in steps) for item in episode.missing)
    assert len(steps) < len(episode.missing)


LOINC = re.compile(r"LOINC \d")


def named_before(text: str) -> bool:
    """Whether every LOINC code `text` names stands in parentheses after the words for it ("no life
    expectancy estimate (LOINC 75327-7) recorded"), not bare ("no LOINC 75327-7 result recorded") nor
    as the only words of an aside ("(or LOINC 75327-7 with a unit)")."""
    for m in LOINC.finditer(text):
        before = text[: m.start()]
        words = re.findall(r"[\w-]+", before)
        if before.count("(") <= before.count(")") or not words or words[-1].lower() in BARE:
            return False
    return True


BARE = {"no", "or", "a", "an", "the", "and", "of"}


@pytest.mark.parametrize("policy_id", sorted(catalog().policies))
@pytest.mark.parametrize("chart", [[], [condition(ICD, "C34.90", "2025-01-01")]], ids=["empty", "cancer"])
def test_a_clinician_reads_what_a_loinc_code_is_before_its_code(policy_id: str, chart: list) -> None:
    """Synthea review s19, L2: "no LOINC 21901-4, 21907-1 result recorded", "(or LOINC 75327-7 with a
    unit)" told a clinician nothing in ten seconds: the words for what is missing come first."""
    d = determine(chart, policy_id=policy_id)
    texts = [
        text
        for top in d.criteria
        for result in top.walk()
        for text in (result.finding, result.how_to_document or "")
    ]
    episode = Episode.of([d])
    texts += [decision_card(episode)["detail"], instructions_card(episode, *next_steps(episode))["detail"]]
    assert all(named_before(text) for text in texts), [t for t in texts if not named_before(t)]


def test_the_charts_excluded_pump_drug_is_named_and_said_to_be_the_charts() -> None:
    """Contract audit C19-F3: a catheter ordered with no drug is judged by the pump's drug in the chart
    (contract §2); its exclusion line said "an excluded infusate is ordered", naming neither the drug
    nor where it was read."""
    heparin = infusate_request("heparin sodium 100 UNT/ML Injectable Solution", "5224", status="active")
    d = determine([*meeting_chart(), heparin], order=service_request("62350"), drugs=())
    [excluded] = [
        r for top in d.criteria for r in top.walk() if r.status == Status.NOT_MET and not r.children
    ]
    assert "is ordered" not in excluded.finding
    assert "heparin" in excluded.finding and "in the chart" in excluded.finding, excluded.finding


NO_PUMP = "No intrathecal pump is on the chart"


@pytest.mark.parametrize("policy_id", sorted(catalog().policies))
def test_a_refill_for_a_patient_with_no_pump_on_the_chart_says_so(policy_id: str) -> None:
    """Synthea review s19, L3: a refill (95990) for a patient with no pump on record got only "no
    criteria — manual review"; the card says no pump is on the chart (contract §2's "pump in place":
    no pump device, no implant without a later removal, no Z45.1, no earlier refill), and says
    nothing of the kind when one is."""
    refill = service_request("95990")
    d = determine(meeting_chart(), order=refill, drugs=(), policy_id=policy_id)
    if d.outcome == Outcome.NOT_APPLICABLE:
        assert NO_PUMP in d.explanation and NO_PUMP in decision_card(Episode.of([d]))["detail"]
    with_pump = determine([*meeting_chart(), PUMP_IN_PLACE], order=refill, drugs=(), policy_id=policy_id)
    assert NO_PUMP not in with_pump.explanation
    assert NO_PUMP not in decision_card(Episode.of([with_pump]))["detail"]


def test_a_refill_says_nothing_of_a_pump_when_the_records_that_show_one_were_not_read() -> None:
    """Devices that could not be read are not a chart with no pump on it."""
    refill = service_request("95990")
    d = determine([], order=refill, drugs=(), unavailable={"Device": "the search failed"})
    assert d.outcome == Outcome.NOT_APPLICABLE and NO_PUMP not in d.explanation


@pytest.mark.parametrize("policy_id", sorted(catalog().policies))
def test_a_pump_removal_for_a_patient_with_no_pump_on_the_chart_says_so(policy_id: str) -> None:
    """Session 20, defect 2: a removal of a pump (CPT 62365, "Removal of subcutaneous reservoir or pump
    previously implanted": criteria-and-codes.md §3.4.1) with no pump on the chart said nothing of it,
    where a refill does; a catheter removal (62355, "Removal of previously implanted IT/epidural
    catheter") needs no pump, and says nothing of one."""
    removal = determine(meeting_chart(), order=service_request("62365"), drugs=(), policy_id=policy_id)
    assert removal.outcome == Outcome.NOT_APPLICABLE
    assert NO_PUMP in removal.explanation and NO_PUMP in decision_card(Episode.of([removal]))["detail"]
    catheter = determine(meeting_chart(), order=service_request("62355"), drugs=(), policy_id=policy_id)
    assert catheter.outcome == Outcome.NOT_APPLICABLE and NO_PUMP not in catheter.explanation
    pumped = [*meeting_chart(), PUMP_IN_PLACE]
    with_pump = determine(pumped, order=service_request("62365"), drugs=(), policy_id=policy_id)
    assert NO_PUMP not in with_pump.explanation


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ('codes: ["62365"]', r"on_a_pump code 62999 is not an order code of `kinds`"),
        ("kinds: [refill-analysis]", r"on_a_pump kind 'refills' is not a kind of `kinds`"),
    ],
)
def test_the_codes_on_a_pump_are_order_codes(tmp_path: Path, written: str, said: str) -> None:
    table = (Path(__file__).resolve().parents[2] / "policies" / "order-codes.yaml").read_text()
    broken = tmp_path / "order-codes.yaml"
    wrong = written.replace("62365", "62999").replace("refill-analysis", "refills")
    broken.write_text(table.replace(written, wrong), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"order-codes.yaml:\d+: {said}"):
        load_order_codes(broken, catalog().vocabulary, catalog().terminology.ingredient_finder)
    assert catalog().order_codes.on_a_pump >= {"62365", "95990", "J2274"}
    assert "62355" not in catalog().order_codes.on_a_pump


@pytest.mark.parametrize(("label", "finding"), CUT_FINDINGS)
def test_a_cut_does_not_leave_an_aside_open(label: str, finding: str) -> None:
    """Bradly, Cohere (cardfix20): "none in the last 12 months (since… — Record …": a cut at a word
    boundary left an aside open, its date gone. Where the words before the aside fill half the room,
    the cut goes before it ("none in the last 12 months…"), wherever the limit falls."""
    for text in (finding, f"{label}: {finding}"):
        opened = text.find("(")
        for limit in range(10, len(text)):
            kept = shortened(text, limit).removesuffix("…")
            if opened - 1 >= (limit - 1) // 2 and kept != text:  # the words before it fill half the room
                assert kept.count("(") == kept.count(")"), (limit, kept)


def _no_pump_sentence(terminology: Terminology) -> str:
    return no_pump_words(build_record(PATIENT, {}, terminology), terminology, on_a_pump=True)


def test_the_no_pump_sentence_names_every_code_that_would_show_a_pump() -> None:
    """words21 (debt 4.3): the sentence was written by hand and left out the catheter and pump
    complication diagnoses (T85.610-T85.738) that `idds-in-place` counts: a chart coded so shows a pump,
    and the card said what it looked for without them. It is written from the value set now, a
    category of many codes as their count and span, not a line of eleven codes."""
    in_place = catalog().terminology["idds-in-place"]
    sentence = _no_pump_sentence(catalog().terminology)
    assert sentence.startswith(NO_PUMP)
    complications = sum(key.startswith("T85") for key in in_place.icd10_prefixes)
    # a removal answers the implants, refills, Z45.1 and the complications before it (contract §3;
    # contract23 Q4, forms23)
    assert (
        "no pump implant or refill (62360-62362, 62369, 62370, 95990, 95991, C1772, C1891, E0782, E0783, "
        "E0786) or diagnosis (Z45.1, or one of "
        f"{complications} codes T85.610-T85.738) without a later removal (62365)"
    ) in sentence


def test_the_no_pump_sentence_follows_the_value_sets_data(tmp_path: Path) -> None:
    """A code added to `idds-in-place` is named where it counts, with no change to the code: an
    analysis (62367), which no removal undoes, among the procedures that show a pump whatever follows,
    a diagnosis no removal undoes among the diagnoses that do so too."""
    root = copy_policies(tmp_path)
    edit_yaml(
        root / "valuesets" / "idds-in-place.yaml",
        lambda raw: (raw["cpt"].append("62367"), raw["icd10cm"].append("T85.79")),
    )
    sentence = _no_pump_sentence(load_catalog(root).terminology)
    assert "no earlier pump procedure (62367)" in sentence
    assert "no pump or catheter diagnosis (T85.79)" in sentence  # no removal undoes it
