"""The cards: one decision card per payer and episode, the Instructions card, and the notices.

Written for a clinician with ten seconds: the summary says the payer, the verdict and the top reason
in under 140 characters; the detail opens with the verdict and the order lines it covers, then only
what fails or is missing (one line each: the criterion, the chart's value, what to do), then one line
on what is met (naming the criteria met because none of what they rule out is documented), then the
policy. The full per-criterion checklist is on the policy page, in the audit trail and in `idds-crd
evaluate --determinations`, not in the card.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cards import items
from cards.coverage_information import CRD_TEMP
from cards.items import Episode, Item, Step
from cards.markdown import plain
from cards.shortening import ELLIPSIS, shortened
from service.appointments import ANOTHER_PATIENTS, NOT_VALID, WHOSE_UNTOLD, WITHDRAWN_ORDER, UnreadOrder
from service.engine.model import Determination, Outcome, Status
from service.fhirdates import MONTHS, human_as_written, human_month
from service.orders import PumpOrder
from service.record import dates_cannot_tell
from service.routing import Route
from service.wording import aside, listing

SERVICE_LABEL = "idds-crd"  # the label of cards no insurer stands behind
CARD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"  # CRD 2.2.1
SUMMARY_LIMIT = 139
_INDICATOR = {
    Outcome.MEETS: "info",
    Outcome.INSUFFICIENT: "info",
    Outcome.DOES_NOT_MEET: "warning",
    Outcome.NOT_APPLICABLE: "info",
}


_TOPIC_DISPLAY = {
    "coverage-info": "Coverage Information",
    "guideline": "Guideline",
    "clinical-reminder": "Clinical Reminder",
}


def topic(code: str) -> dict[str, str]:
    """A `source.topic` Coding from the CDS Hooks card-type code system."""
    return {"system": CARD_TYPE_SYSTEM, "code": code, "display": _TOPIC_DISPLAY[code]}


def in_crd_version(cards: list[dict[str, Any]], crd_version: str) -> list[dict[str, Any]]:
    """The cards with their topics in the card-type code system of the caller's CRD version: CRD
    2.2.1's terminology.hl7.org system, or for an earlier version's caller (2.0.1, 2.1) the CRD
    `temp` system its card-type value set holds the same codes in."""
    if crd_version == "2.2":
        return cards
    return [
        {**c, "source": {**c["source"], "topic": {**c["source"]["topic"], "system": CRD_TEMP}}} for c in cards
    ]


def card(
    summary: str,
    detail: str,
    label: str,
    topic_code: str,
    orders: Iterable[str] = (),
    indicator: str = "info",
    **fields: object,
) -> dict[str, object]:
    """The fields every card has (summary cut to the limit), the orders it is about, and `fields`."""
    built: dict[str, object] = {
        "uuid": str(uuid.uuid4()),
        "summary": shortened(summary, SUMMARY_LIMIT),
        "detail": detail,
        "indicator": indicator,
        "source": {"label": label, "topic": topic(topic_code)},
        **fields,
    }
    references = [{"reference": reference} for reference in dict.fromkeys(orders)]
    if references:
        built["extension"] = {"davinci-crd.associated-resource": references}
    return built


def _fitted(lead: str, reason: str) -> str:
    """`lead` + `reason` with the reason's asides in parentheses (dates, a count) left out, the last
    first, while it is longer than a summary may be: rather than cut in the middle of one. An aside
    goes with the space before it; one left out can leave the parentheses around it an aside.

    Found once, however many asides a reason holds (its words may be the chart's: a condition's name):
    they go in the order their opening parentheses come from the end, each taking with it those inside
    it, already gone. Searching the text again for its last aside after each one (and a search for
    spaces then a parenthesis, from every space of a long run) was quadratic in its length."""
    room, length = SUMMARY_LIMIT - len(lead), len(reason)
    left_out: list[tuple[int, int]] = []  # (start, end), starts falling: the top is the leftmost
    for start, end in _asides(reason):
        if length <= room:
            break
        inside = 0
        while left_out and left_out[-1][0] < end:  # begins within this one: so it lies inside it
            inner_start, inner_end = left_out.pop()
            inside += inner_end - inner_start
        left_out.append((start, end))
        length -= end - start - inside
    kept, at = [], 0
    for start, end in reversed(left_out):
        kept.append(reason[at:start])
        at = end
    return lead + "".join(kept) + reason[at:]


def _asides(text: str) -> list[tuple[int, int]]:
    """Each pair of matching parentheses of `text` as (start, end), its start where the spaces before
    it start, the pairs by their opening parenthesis from the last to the first."""
    pairs: dict[int, int] = {}
    opened: list[int] = []
    for at, character in enumerate(text):
        if character == "(":
            opened.append(at)
        elif character == ")" and opened:
            pairs[opened.pop()] = at + 1
    asides = []
    for opening in sorted(pairs, reverse=True):
        start = opening
        while start > 0 and text[start - 1].isspace():
            start -= 1
        asides.append((start, pairs[opening]))
    return asides


VERDICT = {
    Outcome.MEETS: "Meets the criteria",
    Outcome.DOES_NOT_MEET: "Not covered as ordered",
    Outcome.INSUFFICIENT: "Documentation needed",
    Outcome.NOT_APPLICABLE: "No criteria for this request",
}
DETAIL_LIMIT = 1500  # of the characters a decision card's detail shows (`shown_length`)
ITEM_LIMIT = 300
# the records showing a pump in place, on a replacement's verdict line (`in_place_shown`): two as a chart
# names them, a Device's type text and an implant's code and date, take about 110
IN_PLACE_LIMIT = 160
MIN_FINDING = 40  # the least of a finding worth keeping before what to do
_MARK = {Status.NOT_MET: "❌", Status.NOT_DOCUMENTED: "❔"}


def order_words(d: Determination) -> str:
    return d.order_name or f"{d.billing_code} {d.request_kind.replace('-', ' ')}"


def line_names(
    episode: Episode, lines: Iterable[Determination], named: Callable[[Determination], str] = order_words
) -> list[str]:
    """How a card names `lines` of the episode: by `named` (its short name, or its billing code), and
    where another line of the episode is named alike (two 62362 orders), with its order's reference
    after it, so that a clinician can tell which holds an approval and which is still to request
    (review24e: "still needed … for 62362; 62362 already approved")."""
    alike = Counter(named(x) for x in episode.lines)
    return [f"{named(x)} ({plain(x.order_reference)})" if alike[named(x)] > 1 else named(x) for x in lines]


def _verdict_names(episode: Episode) -> list[str]:
    """The episode's lines as the verdict names them, those named alike once with their count ("62362
    programmable pump (2 orders)"): they share the verdict, so their references tell a clinician
    nothing there, and ten of them outgrew DETAIL_LIMIT (review25b); the lines where two of one name
    are told apart (the prior authorization line, another verdict, the steps) name their orders."""
    alike = Counter(order_words(x) for x in episode.lines)
    return [f"{name} ({count} orders)" if count > 1 else name for name, count in alike.items()]


def _code(d: Determination) -> str:
    return d.billing_code


def _item_summary(item: Item) -> str:
    return f"{item.named}: {item.finding}" if item.finding else item.named


def open_count(open_items: Sequence[Item]) -> str:
    """How many items are open, those for the payer's reviewer counted apart (nothing to document), and
    so those to check in the chart again beside some to document (review29f A-3: "2 items to document"
    where one was whether the pump is still in place)."""
    document, check, review = open_counts(open_items)
    words = [f"{counted(document)} to document"] if document else []
    if check:
        words.append(f"{check} to check")
    if review and document:
        words.append(f"{review} for the payer's reviewer")
    elif review:
        words.append(f"{counted(review)} left to the payer's reviewer")
    return " and ".join(words)


def open_counts(open_items: Sequence[Item]) -> tuple[int, int, int]:
    """How many open items are to document, to check again and for the payer's reviewer: the one count
    the decision card's summary (`open_count`) and the Instructions card's title (`_how_to`) say, so that
    they agree (review30j: "7 items to document and 1 to check" beside "how to document 8 items")."""
    to_act, for_reviewer = items.apart(tuple(open_items))
    check = sum(1 for i in to_act if i.step == Step.RECHECK)
    check = check if check < len(to_act) else 0  # all of them to check: the summary says so already
    return len(to_act) - check, check, len(for_reviewer)


def counted(number: int) -> str:
    """`number` items, as a card says it: "1 item", "8 items"."""
    return f"{number} item{'s' if number > 1 else ''}"


def verdict(episode: Episode) -> str:
    """The card's first words; an order that is not covered is said so, whatever else is open."""
    outcome = episode.lead.outcome
    if outcome == Outcome.INSUFFICIENT and episode.open_only(Step.RECHECK):
        return "Could not be checked"
    if outcome == Outcome.INSUFFICIENT and episode.open_only(Step.REVIEW):
        return "Left to the payer's reviewer"
    return VERDICT[outcome]


def summary(episode: Episode) -> str:
    """Payer, verdict and the top reason in under 140 characters (after "patient recorded as
    deceased" when the chart says so)."""
    d = episode.lead
    # said first: a clinician reading titles only is not to miss it (cardfix20 F4h)
    lead = episode.payer_lead + ("patient recorded as deceased; " if d.deceased else "")
    codes = ", ".join(episode.codes)
    failed, open_items = episode.failing, episode.missing
    if d.outcome == Outcome.INSUFFICIENT and episode.dates_unplaced:
        text = f"{lead}{codes} could not be checked — {items.DATES_UNPLACED}"
    elif d.outcome == Outcome.INSUFFICIENT and episode.chart_unreadable:
        text = f"{lead}{codes} could not be checked — records in the chart could not be read"
    elif d.outcome == Outcome.INSUFFICIENT and episode.open_only(Step.RECHECK):
        text = f"{lead}{codes} could not be checked — the EHR's data was not available"
    elif d.outcome == Outcome.MEETS:
        verb = "meets" if len(episode.codes) == 1 else "meet"
        text = f"{lead}{codes} {verb} {_all_criteria(len(d.criteria))}"
    elif d.outcome == Outcome.DOES_NOT_MEET and failed:
        text = _fitted(f"{lead}not covered — ", _item_summary(failed[0]))
    elif d.outcome == Outcome.INSUFFICIENT and open_items:
        # whether the pump is still in place, where it decides what else is asked (`in_place_only`: checked
        # first); else one to document, when there is one, else one to act on (to check again), else the
        # reviewer's
        first = items.in_place_label(d) if d.in_place_only else None
        top = min(
            open_items,
            key=lambda i: (i.label != first, i.step == Step.REVIEW, i.step == Step.RECHECK),
        )
        concerned = tuple(dict.fromkeys(x.billing_code for x in episode.lines if x.outcome != Outcome.MEETS))
        named = top.label if set(top.only_for) == set(concerned) else top.named  # the codes said already
        text = f"{lead}{open_count(open_items)} for {', '.join(concerned)} — {named}"
    else:
        text = f"{lead}no coverage criteria for this {codes} request — manual review"
    return shortened(text, SUMMARY_LIMIT)


ORDERS = "{orders}"  # where an Instructions headline names its lines (`instructions_summary`)
AS_ABOVE = "as above"  # what to do, on the line after one that says the same
AS_BELOW = "as below"  # what to do, on a line before one that says the same (`_item_lines`)
# how far a decision card's item lines give way (`_item_line`), tried in this order (`_detail`): each saying
# what to do, whole where it fits, else its beginning beside the finding cut after its records (`SAY`); the
# same, each finding that what to do names said in its few words (`BRIEF`: `Item.brief`, where SAY leaves
# a line out); what to do whole, else pointed to beside the finding whole (`POINT`, where both do)
SAY, BRIEF, POINT = "say", "brief", "point"
FORMS = (SAY, BRIEF, POINT)


def _all_criteria(count: int) -> str:
    """How a summary says every criterion of a policy was met (sandbox review s17, S-7)."""
    if count == 1:
        return "its one coverage criterion"
    return "both coverage criteria" if count == 2 else f"all {count} coverage criteria"


def _item_lines(
    open_items: Sequence[Item],
    beside: bool = False,
    once: bool = False,
    below: bool = True,
    form: str = SAY,
    laid: dict[tuple[Item, str | None, str], str] | None = None,
) -> list[str]:
    """A line for each item; what to do said once for a run of items that share it (a policy's one
    instruction for several criteria), so that each of them keeps room for what the chart shows; what
    to do about a trial not yet done (`Item.awaits`: "Order the trial first (CPT …)") said on the first
    item that waits on it, the others saying what to do "after the trial" (stop note 43: said on each,
    it cost the card an item). `beside`: an Instructions card stands beside (`_item_line`). `once`: the
    card says the in-place condition once (`condition_said_once`), so each item to document says what to
    do without it. A run's instruction is said on its first line that holds it whole, the lines before it
    saying it is below (`below`; Cohere's "Pharmacological modalities …", whose finding leaves no room for
    it, pointed to the Instructions card, "Physical therapy … — as above" pointing there too, wording30b);
    where no line holds it, or saying it would leave more lines out (`_detail`), the lines after one that
    points to the Instructions card say "as above": what to do is there. `form`: how far the lines give way
    (`FORMS`). `laid`: the lines laid already for these items (`_detail` lays them in several forms), by
    item, what to do and form."""
    laid = {} if laid is None else laid

    def _line(item: Item, words: str | None) -> str:
        # a form that changes nothing for the line is SAY's: no few words and a finding `whole` either way (or
        # naming no record `_item_line` keeps), or no Instructions card to point to
        whole = _unconditioned(item, once)
        kept = whole or _RECORD.search(item.finding) is None
        same = (form == BRIEF and not item.brief and kept) or (
            form == POINT and not beside and item.brief != items.NOT_RECORDED
        )
        key = (item, words, SAY if same else form)
        if key not in laid:
            laid[key] = _item_line(item, words, beside, whole, form)
        return laid[key]

    lines, said, awaited = [], None, set()
    runs: list[list[int]] = []  # the items of each run sharing what to do, by index
    whole: set[int] = set()  # the runs' first items that say it whole
    for at, item in enumerate(open_items):
        todo, then = _todo_said(item, once)
        if todo is not None and todo == said:
            words: str | None = AS_ABOVE
            runs[-1].append(at)
        elif item.awaits in awaited and then:
            words = f"{AFTER_THE_TRIAL}{items.lowered(then)}"
            runs.append([at])
        else:
            words = todo
            runs.append([at])
            whole.add(at)
        lines.append(_line(item, words))
        said = todo
        awaited.add(item.awaits)
    for run in runs if below else ():
        todo = _todo_said(open_items[run[0]], once)[0]
        if (
            run[0] not in whole
            or len(run) < 2
            or todo is None
            or _holds(open_items[run[0]], lines[run[0]], todo)
        ):
            continue
        holding = [at for at in run if _holds(open_items[at], _line(open_items[at], todo), todo)]
        if holding:  # before it "as below", after it "as above"
            for at in run:
                words = AS_BELOW if at < holding[0] else todo if at == holding[0] else AS_ABOVE
                lines[at] = _line(open_items[at], words)
    return lines


def _holds(item: Item, line: str, todo: str) -> bool:
    """Whether `line` says `item`'s finding and what to do (`todo`), each whole."""
    return line.endswith(f" — {todo}") and (not item.finding or f": {plain(item.finding)} — " in line)


def _unconditioned(item: Item, once: bool) -> bool:
    """Whether `item`'s line says what to do without the in-place condition, said once on the card
    (`once`, `condition_said_once`)."""
    return once and item.unconditioned is not None and _to_document(item)


def _todo_said(item: Item, once: bool) -> tuple[str | None, str | None]:
    """What to do of `item` (and once a trial is done, `Item.then`) as its decision-card line says it
    (`_unconditioned`)."""
    if _unconditioned(item, once):
        return item.unconditioned, item.then_unconditioned
    return item.todo, item.then


def _to_document(item: Item) -> bool:
    """An item to document (or to order, or to ask the patient), as the summary counts it (`open_count`):
    not one to check again, nor one for the payer's reviewer."""
    return item.step not in (Step.RECHECK, Step.REVIEW)


def condition_said_once(episode: Episode) -> str:
    """The in-place condition said once on the decision card, where each item to document is asked only
    on it (`Item.unconditioned`: a criterion only the kind read brings, while whether a pump is in place
    could not be told): "Items to document are asked only if no pump is in place." Said on each
    item's line, it took 24 to 31 characters of each, and Cohere's and CMM-210's lines lost what to do for
    it (wording30b). "" where some item to document is asked whatever is in place: each says its own."""
    to_document = [i for i in episode.missing if _to_document(i)]
    if not to_document or any(i.unconditioned is None for i in to_document):
        return ""
    when = items.IF_IN_PLACE if episode.lead.in_place else items.IF_NONE_IN_PLACE
    return f"Items to document are asked only {items.lowered(when)}."


AFTER_THE_TRIAL = "after the trial, "  # what to do with a result of the trial named on a line above
# where what to do is whole, on a line with no room for it (`_item_line`): after its beginning, or alone
WHOLE_THERE = " (whole on the Instructions card)"
ON_THE_LISTING = " — what to do: see the Instructions card"


def _item_line(
    item: Item, todo_words: str | None, beside: bool = False, whole: bool = False, form: str = SAY
) -> str:
    """The item's line; what to do is kept whole where it fits: a long finding is cut first, where it can
    only after the records it names and their dates (`_tail_cut`), else where MIN_FINDING of it fits. The
    finding that names what it concerns (`Item.in_full`: the implant a removal not read may undo, the fullest
    form that fits) is said where it fits whole, else the finding alone, so that why is never what a cut
    takes. Where not even MIN_FINDING of the finding fits, its few words (`Item.brief`) where they fit, else,
    for an item that has them (what each way lacks is what to do records), no finding where what to do then
    fits whole, else the finding whole. What to do that still does not fit is not cut where an
    Instructions card stands beside (`beside`): its beginning, then that it is whole there, or only that
    (review30f L2: Cohere's "…no “why a replacement is ordered” recorded…" and "— If no pump is in place,
    record the analgesic prescriptions of the last…" lost what to do mid-sentence). `whole`: the finding is
    not cut for what to do either, but after its records (an item whose in-place condition the card says
    once, `_item_lines`: the room that gives its line goes to what to do, never to a cut of why). `form`
    (`FORMS`): under `BRIEF` the few words stand for every finding what to do says whole on the line names
    (a crowded card's), and a finding naming a record or a date (`_RECORD`) is `whole` (the room a card gains
    is not taken from why) unless that leaves what to do only pointed to; what to do that does not fit
    beside the finding whole is said from its beginning beside the finding cut after its records
    (`_tail_cut`), where that lets MIN_FINDING of it be said, not pointed to (under `POINT`, only beside
    the finding whole)."""
    label = f"{_MARK[item.status]} **{item.named}**"
    head = label
    # POINT is the layout before cards33 (the fallback that leaves out no more lines than before): "not
    # recorded" is not said there (review33d F2: a line pointing beside its finding whole grew longer)
    brief = "" if form == POINT and item.brief == items.NOT_RECORDED else item.brief
    if form == BRIEF and not whole and _RECORD.search(item.finding):  # not cut before the record it names,
        kept = _item_line(item, todo_words, beside, True, form)  # unless that leaves what to do pointed to
        if not kept.endswith(ON_THE_LISTING):
            return kept
    todo = f" — {todo_words}" if todo_words else ""
    found = ""
    if item.finding:
        room = ITEM_LIMIT - len(head) - len(todo) - 2
        found = plain(item.finding)
        fits = [full for full in map(plain, item.in_full) if len(full) <= room]
        own = todo_words is not None and todo_words in (item.todo, item.unconditioned)
        if fits:
            found = fits[0]
        elif brief and (len(found) > room or (form == BRIEF and own)) and len(plain(brief)) <= room:
            found = plain(brief)  # not its ways cut, nor, on a crowded card, what what to do names said twice
        elif 0 <= room < MIN_FINDING and brief:
            found = ""
        if found:  # cut first after the records it names (`_tail_cut`), else where MIN_FINDING of it fits
            tail = _tail_cut(found, room)
            if len(tail) <= room:
                found = tail
            elif room >= MIN_FINDING and not whole:
                found = shortened(found, room)
            head += ": " + found
    cut = shortened(head + todo, ITEM_LIMIT)
    if todo_words and beside and cut != head + todo:  # in no more than the cut line (the card's room)
        room = len(cut) - len(head) - len(WHOLE_THERE) - 3
        if room < MIN_FINDING and found and form != POINT:  # the finding cut after its records
            head = f"{label}: {_tail_cut(found, 0)}"
            room = ITEM_LIMIT - len(head) - len(WHOLE_THERE) - 3
        if room >= MIN_FINDING:  # its beginning, and where it is whole
            cut = f"{head} — {shortened(todo_words, room)}{WHOLE_THERE}"
        elif len(head + ON_THE_LISTING) <= len(cut):
            cut = head + ON_THE_LISTING
    return "- " + cut


# what a finding names, which a cut keeps (`_tail_cut`): a quoted name, a date, a bracket (codes, dates)
_NAMED = re.compile(rf"”|\)|\b(?:\d{{1,2}} )?(?:{'|'.join(MONTHS)})[a-z]* \d{{4}}\b|\b(?:19|20)\d\d\b")
# of those, a record's quoted name or a date, which a crowded card's cut keeps (`BRIEF`): not a bracket alone,
# which may hold examples ("(e.g. failed back surgery syndrome, CRPS, …)")
_RECORD = re.compile(rf"”|\b(?:\d{{1,2}} )?(?:{'|'.join(MONTHS)})[a-z]* \d{{4}}\b|\b(?:19|20)\d\d\b")


def _tail_cut(found: str, room: int) -> str:
    """`found` within `room` where its cut keeps every record it names and their dates (`_NAMED`: it takes
    only the words after the last one, "…, ended 15 Jun 2025, needs at least 6 months" → "…, ended 15 Jun
    2025…", "no “function increased during the trial” recorded" → "no “function increased during the
    trial”…"), else cut after the last: a finding is cut before what to do is (the lead's decision, s32),
    never by the record or the date that say what the chart showed (wording31: "none in the last 12
    months…" lost its why)."""
    kept = max((m.end() for m in _NAMED.finditer(found)), default=len(found))
    if len(found) <= room or kept >= len(found):
        return found
    cut = shortened(found, room) if room > kept else ""
    return cut if len(cut) - len(ELLIPSIS) >= kept else found[:kept] + ELLIPSIS


def _differing(episode: Episode) -> list[str]:
    """A short line for each order line whose own verdict is not the card's (the items it lacks or
    adds are named with the lines they concern)."""
    said = verdict(episode)
    own = [(d, verdict(Episode.of([d]))) for d in episode.lines if d is not episode.lead]
    return [
        f"{name}: {words.lower()}."
        for name, (_, words) in zip(line_names(episode, (d for d, _ in own)), own, strict=True)
        if words != said
    ]


def _met_line(
    d: Determination, room: int = ITEM_LIMIT, failing_lines: int = 0, open_lines: int = 0
) -> list[str]:
    """What is met in one line of at most `room` characters where it can: the count, and the criteria
    met because none of what they rule out is documented (contract §3, Absence: "the card says "none
    documented""), which a clinician who knows otherwise can correct; as many as fit, the rest
    counted (with no room, only counted). Said as met with none documented against them, so that a
    criterion worded as what must hold ("Body size supports the device") does not read as undocumented
    (review2 N-9). `failing_lines`: the ❌ lines above it, when they are all this line's: more of
    them than criteria not met (parts of one criterion) are said to be so, or a clinician counting
    "12 of 13 met" above two ❌ lines counts 14 (cardfix20 F4f). `open_lines`: likewise the items to
    document the card's title counts, when they are this line's: at least twice as many as the criteria
    not met (each of those holds several) are said to be held by those, or "10 of 12 criteria met" under
    "15 items to document" reads as nearly done where the 2 not met (Cohere's indication and its trial)
    hold all 15 (cards21); fewer ("7 of 14 met", 8 items) read right as they are, and the words would
    cost the card an item. None met, there is no line: a check mark over "0 of 12 criteria met" reads
    as good news beneath lines that already say what is not met or could not be checked."""
    met, total = items.met_count(d), len(d.criteria)
    if not met:
        return []
    line = f"✅ {_every(total)} met" if met == total else f"✅ {met} of {total} criteria met"
    if failing_lines > total - met > 0:
        unmet = "the one not met fails" if total - met == 1 else f"the {total - met} not met fail"
        line += f" ({unmet} on {'both' if failing_lines == 2 else f'all {failing_lines}'} ❌ lines above)"
    elif open_lines >= 2 * (total - met) > 0:
        unmet = "the other one holds" if total - met == 1 else f"the other {total - met} hold"
        line += f" ({unmet} the {open_lines} items)"
    absent = items.none_documented(d)
    if not absent:
        return [f"{line}."]
    counted = f"{line}, {len(absent)} with none documented against {'it' if len(absent) == 1 else 'them'}"
    for shown in range(len(absent), 0, -1):
        more = f"; and {len(absent) - shown} more" if shown < len(absent) else ""
        text = f"{counted}: {'; '.join(absent[:shown])}{more}."
        if len(text) <= room:
            return [text]
    return [f"{counted}."]


def _every(count: int) -> str:
    """How the decision card's line of what is met says every criterion is ("Both criteria", not
    "All 2 criteria", under a summary saying "meets both coverage criteria")."""
    return {1: "Its one criterion", 2: "Both criteria"}.get(count, f"All {count} criteria")


def _policy_lines(d: Determination) -> list[str]:
    lines = [f"_{d.payer} policy: {d.policy_title} {aside(d.policy_version)}._"]
    if d.review_overdue_since is not None:
        lines.append(review_overdue_line(d.payer, d.review_overdue_since))
    return lines


def detail(episode: Episode, instructions: bool = True, approved: Sequence[LineApproval] = ()) -> str:
    """Verdict (and for an order that meets with no Instructions card beside it, its prior
    authorization: `prior_authorization_line`), then only what fails or is missing (one line each),
    then what is met in one line, then the policy; within DETAIL_LIMIT characters shown, dropping the least
    decisive items' lines first (pointing to the Instructions card for them, by the title it shows,
    when the answer carries one, else naming them: this card is the only one that lists them)."""
    return _detail(episode, instructions, approved)[0]


def prior_authorization_line(episode: Episode, approved: Sequence[LineApproval]) -> str:
    """One line saying where an episode that meets stands on prior authorization, as its coverage
    information says it (`pa-needed`): approved, under the numbers its lines hold (`approved`: each
    line holding one for each of its Coverages once the answer is applied); else still to request,
    for the lines holding none. For a card no Instructions card stands beside (a scheduler's, a
    dispatcher's, an encounter's: the order was placed before), where "meets all 14 coverage criteria"
    alone reads as approved (cards24 MEDIUM)."""
    payer = episode.lead.payer
    numbers = approval_numbers(approved)
    held = f" ({numbers})" if numbers else ""
    others = _to_request(episode, approved)
    if not others:
        return f"**Prior authorization approved**{held}: no new request is needed."
    if not approved:
        return f"**Prior authorization still needed** from {payer}: meeting the criteria is not an approval."
    return (
        f"**Prior authorization still needed** from {payer} for {_codes(episode, others)}; "
        f"{approved_lines(episode, approved)} already approved{held}."
    )


def _detail(
    episode: Episode, instructions: bool, approved: Sequence[LineApproval] = ()
) -> tuple[str, int, list[str]]:
    """`detail`, how many items' lines it left out for length, and every item's line as it laid them."""
    d = episode.lead
    orders = listing([*_verdict_names(episode), *(b.name for b in episode.billed)])
    # an implant code read as a replacement: the policy card names the kind whose criteria judge it, this one
    # says why; a catheter alone beside the pump is said as what it is, its revision (`revision_words`)
    read_as = d.revision_words or d.kind_words
    read = f", read as {read_as} (a pump is already in place: {in_place_shown(d)})" if d.in_place else ""
    if d.in_place and d.in_place_unsure:  # a removal that could undo it was not read, or one read the dates
        # cannot place (engine/removals.py): the line says which (review31a L3)
        unsure = (
            "the chart's dates cannot tell whether a later removal took it out"
            if dates_cannot_tell(d.in_place_unsure)
            else "whether a later removal took it out could not be checked"
        )
        read = f", read as {read_as} (a pump may be in place: {in_place_shown(d)}; {unsure})"
    elif d.in_place_unsure:  # none found, beside records that could show one: judged by the criteria of
        # the kind read, which the line says as the pump-found one does (review30f L3: "for 62362 programmable
        # pump" alone left "❌ Trial relief …" to read as failing whatever is in place); an order its own name
        # says the kind of says only that ("62350 catheter, read as a catheter" said it twice: wording30b)
        kind = read_as.split(" ", 1)[-1]  # without its article
        named = all(f" {kind}" in f" {order_words(x)}" for x in episode.lines)
        read = " (no pump found)" if named else f", read as {read_as} (no pump found)"
    verdict_for = f"**{verdict(episode)}** ({episode.payer}) for {orders}{read}"
    if d.indication_evident:
        head = [f"{verdict_for}, for {d.indication_words or d.indication}."]
    elif items.unknown_for_now(d) or d.outcome == Outcome.DOES_NOT_MEET:  # the latter, whatever it is for
        head = [f"{verdict_for}."]
    else:
        head = [
            f"**What the pump is for is not documented** ({episode.payer}, {orders}): {d.payer}'s criteria "
            "depend on it."
        ]
    if d.outcome == Outcome.NOT_APPLICABLE:  # what to do, when no Instructions card says it (`_has_steps`)
        says_it = instructions or _SAYS_WHAT_TO_DO.search(d.explanation) is not None
        head.append(d.explanation if says_it else f"{d.explanation} Ask {d.payer} for a manual review.")
    # else its Instructions card says it, step 1; not for a patient recorded as deceased, for whom that
    # card proposes no order or form, only to check the chart first (`deceased_step`)
    if d.outcome == Outcome.MEETS and not instructions and not d.deceased:
        head.append(prior_authorization_line(episode, approved))
    if d.deceased:
        head.append(deceased_line(d.deceased_on))
    once = condition_said_once(episode)
    if once:  # with the verdict it qualifies: what the order was read as
        head[0] = f"{head[0]} {once}"
    open_items = (*episode.failing, *episode.missing)

    ends: dict[int, list[str]] = {}  # `tail` by its room: each layout tried (`FORMS`) asks for the same

    def tail(room: int) -> list[str]:
        if room not in ends:
            ends[room] = _tail(room)
        return ends[room]

    def _tail(room: int) -> list[str]:
        shown = len(episode.failing) if len(episode.lines) == 1 else 0  # another line's too: not said
        to_document = items.apart(episode.missing)[0] if d.outcome == Outcome.INSUFFICIENT else ()
        # the items the title counts, when they are all the lead's (as the ❌ lines, `shown`), and of
        # those the ones a criterion holds: what the pump is for, whether a pump is still in place, are
        # none (review29f A-3: "the other one holds the 2 items" where it held one)
        held = [i for i in to_document if i.criteria]
        mine = len(held) if all(not i.only_for for i in to_document) else 0
        judged = [*_met_line(d, room, shown, mine), *_differing(episode)]
        return [*judged, *_policy_lines(d)]

    worked_out: dict[int, str] = {}

    def more(dropped: int) -> str:
        """Where the items left out for length are: worked out only when some are, once for each count
        (`text` is tried several times a layout, several layouts a card, and the Instructions card's title is
        its whole next steps)."""
        count = 0 if instructions else dropped  # the card's title says them all, whatever their count
        if count in worked_out:
            return worked_out[count]
        if instructions:  # the headline is the one of its open items, whatever approvals are held
            listing_card = plain(instructions_summary(episode, next_steps(episode)[0]))
            worked_out[count] = f"see the card “{listing_card}”"
        else:
            left_out = "; ".join(i.named for i in open_items[len(open_items) - dropped :])
            worked_out[count] = shortened(left_out, ITEM_LIMIT)
        return worked_out[count]

    def text(kept: list[str], dropped: int, ending: list[str]) -> str:
        listing = "\n".join([*kept, *([f"- … and {dropped} more: {more(dropped)}."] if dropped else [])])
        return paragraphs([*head, listing, *ending])

    def fitted(listed: list[str]) -> tuple[str, int]:
        """The detail with `listed`, and how many of its lines it left out for length."""
        ending = tail(ITEM_LIMIT)
        over = shown_length(text(listed, 0, ending)) - DETAIL_LIMIT
        if over > 0:  # what is open goes before what none documents: that list gives way first
            ending = tail(len(ending[0]) - over)
        kept = list(listed)
        # nor a line ending "as below" with the line below it left out
        while kept and (
            shown_length(text(kept, len(listed) - len(kept), ending)) > DETAIL_LIMIT
            or kept[-1].endswith(f" — {AS_BELOW}")
        ):
            kept.pop()
        return text(kept, len(listed) - len(kept), ending), len(listed) - len(kept)

    # a shared instruction said whole on a later line (`_item_lines`), unless that leaves out more lines; each
    # line saying what to do (`SAY`), else each finding that what to do names said in its few words (`BRIEF`),
    # unless that too leaves out more lines than pointing to the Instructions card (`POINT`)
    # (each laid only while the card leaves some line out, and fitted only if no layout before laid the same)
    laid: dict[tuple[Item, str | None, str], str] = {}
    lines = _item_lines(open_items, instructions, bool(once), laid=laid)
    best = (*fitted(lines), lines)
    tried = {tuple(lines)}
    for form, below in [(f, b) for f in FORMS for b in (True, False)][1:]:
        if not best[1]:
            break
        lines = _item_lines(open_items, instructions, bool(once), below, form, laid)
        if tuple(lines) not in tried:
            tried.add(tuple(lines))
            fit = (*fitted(lines), lines)
            best = fit if fit[1] < best[1] else best
    return best


def in_place_shown(d: Determination) -> str:
    """The records showing the pump in place (`Determination.in_place`) as the verdict line says them:
    chart words (a Device by its own type text or name), so escaped (`plain`) and within IN_PLACE_LIMIT
    characters. Put in as written, a Device whose text carried a link, HTML or a blank line and a
    heading opened that link, injected that HTML and broke the verdict into blocks of the chart's
    choosing in the EHR, and a long one ran the verdict past any bound: the detail gives way in its
    items, never in its verdict (review26a HIGH)."""
    return shortened(plain(d.in_place), IN_PLACE_LIMIT)


def shown_length(markdown: str) -> int:
    """The characters of `markdown`'s lines a reader is shown, a line break between each two: the blank
    line between two paragraphs (`paragraphs`) shows no text, and counted against DETAIL_LIMIT it cost a
    deceased patient's card (verdict, warning, items, what is met, policy: four of them) an item line it
    had room to show (review25b L2). The Markdown itself is at most one character a paragraph longer;
    CDS Hooks bounds a card's summary (SUMMARY_LIMIT), not its detail."""
    return len(markdown) - markdown.count("\n\n")


def paragraphs(blocks: Iterable[str]) -> str:
    """`blocks` (the empty ones left out) as Markdown paragraphs, a blank line between each two: a
    line after another with a single line break is one paragraph with it in CommonMark (a soft break,
    shown as a space), so the verdict, the prior authorization, the deceased warning, the policy and
    its review date ran together on one line in an EHR that renders the card's Markdown (fix24); a
    list is one block, its items one to a line."""
    return "\n\n".join(block for block in blocks if block)


def says_every_step(episode: Episode) -> bool:
    """Whether the decision card alone (`detail` with no Instructions card beside it) already says all
    that the Instructions card would: the order is only to document (not "not covered", whose card
    adds how to go ahead; not a patient recorded as deceased, whose card says why nothing is proposed),
    each item is a step of its own (none shares one with another, nothing comes "before going ahead",
    as `items.steps` and `trial_first` would tell), and the decision card shows every item's line, what
    to do kept whole. Then a second card listing the same items in the same words only repeats it
    (cards23 LOW: GEHA's five items twice beside Capital Blue Cross's; "order the trial" three times)."""
    d, open_items = episode.lead, episode.missing
    if d.outcome != Outcome.INSUFFICIENT or d.deceased or not open_items:
        return False
    steps = items.steps(open_items)
    if len(steps) != len(open_items) or any(step == Step.DECIDE for step, _ in steps):
        return False
    _, dropped, laid = _detail(episode, instructions=False)
    once = bool(condition_said_once(episode))
    lines = laid[len(episode.failing) :]  # as `detail` lays them
    return dropped == 0 and all(_says_whole(i, line, once) for i, line in zip(open_items, lines, strict=True))


def _says_whole(item: Item, line: str, once: bool = False) -> bool:
    """Whether the decision card's `line` of `item` says all its Instructions step would: what to do,
    whole (its condition said once on the card, `once`), and for an item to check again the cause its step
    names too (`Item.heading`), whole."""
    said = _todo_said(item, once)[0]
    todo = not said or line.endswith(f" — {said}")
    return todo and (item.step != Step.RECHECK or plain(item.finding) in line)


# a policy's words on a request it has no criteria for that already say what to do ("so GEHA review is
# manual", "ask Capital whether prior authorization is needed"): the card adds no second advice
_SAYS_WHAT_TO_DO = re.compile(r"\b(ask|manual)\b", re.IGNORECASE)


def deceased_line(on: str) -> str:
    """One line saying the chart records the patient as deceased: no policy names it, so it changes
    no verdict (the contract is silent), but a clinician or reviewer should not miss it (review s19 L1).
    `on`: the date as the chart writes it, said no finer (a year is not "1 Jan")."""
    when = f" ({human_as_written(on)})" if on else ""
    return f"⚠ The chart records this patient as deceased{when}: check the chart before going ahead."


def review_overdue_line(payer: str, due: date) -> str:
    """One line saying a policy is past the next-review date its publisher stated."""
    when = human_month(due) if due.day == 1 else f"{due.day} {human_month(due)}"
    return (
        f"⚠ Past its review date: {payer} said it would review this policy by {when}; "
        f"check {payer} for a newer version."
    )


OVERRIDE_REASON_SYSTEM = "http://idds-crd.org/fhir/CodeSystem/idds-override-reason"
_OVERRIDE_REASONS = {
    "documented-elsewhere": "Documentation exists outside this EHR",
    "will-document": "Will document before the request is submitted",
    "clinical-judgement": "Clinically necessary: will request payer review",
    "patient-informed": "Patient informed the payer may not cover this",
}


def decision_card(
    episode: Episode, instructions: bool = True, approved: Sequence[LineApproval] = ()
) -> dict[str, object]:
    """One CDS Hooks card for a payer's decision on an episode's order lines; when they do not clearly
    meet the criteria, the reasons a clinician may give for going ahead anyway. `instructions`: the
    answer carries an Instructions card beside it; `approved`: the lines holding an approval once the
    answer is applied (`prior_authorization_line`)."""
    d = episode.lead
    text = detail(episode, instructions, approved)
    decision = card(summary(episode), text, d.payer, "coverage-info", episode.orders, _INDICATOR[d.outcome])
    if d.outcome != Outcome.MEETS:
        decision["overrideReasons"] = [
            {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
            for code, display in _OVERRIDE_REASONS.items()
        ]
    return decision


def coverage_notice_card(route: Route | None, orders: Iterable[PumpOrder]) -> dict[str, object]:
    """An info card for a Coverage no policy here judges, or for a patient with no active Coverage;
    for a product the payer's policy sends elsewhere, with a link to where its rules are when known."""
    order_list = list(orders)
    codes = ", ".join(o.code.code for o in order_list)
    links = []
    if route is None:
        summary = f"No active coverage found: coverage rules for {codes} were not checked"
        detail = (
            "The EHR holds no active insurance for this patient (none is active, or its period has "
            "ended), so no payer's intrathecal pump policy could be applied. If the patient is insured, "
            "make sure the insurance is recorded as active, with its current period."
        )
        label = SERVICE_LABEL
    elif route.elsewhere is not None:
        summary = f"{route.payer_display}: coverage rules for {codes} not checked for this plan"
        why = plain(route.elsewhere)
        detail = f"{why[:1].upper()}{why[1:]}. This service does not hold those rules."
        label = route.payer_display
        product = route.product_elsewhere
        if product is not None and product.url is not None:
            links.append({"label": product.refer_to, "url": product.url, "type": "absolute"})
    else:
        summary = f"{route.payer_display}: no intrathecal pump coverage rules here for {codes}"
        detail = (
            f"This service holds no coverage policy for {plain(route.payer_display)} ({route.matched_by}). "
            "Check the payer's own requirements for intrathecal drug delivery systems."
        )
        label = route.payer_display
    extra = {"links": links} if links else {}
    return card(summary, detail, label, "coverage-info", [o.reference for o in order_list], **extra)


def inactive_coverage_card(route: Route, orders: Sequence[str]) -> dict[str, object]:
    """An info card for the call's one Coverage, not active (`route.inactive`: "ended 2024-12-31"),
    for which every order (`orders`) is answered not covered (inferno review s18 K-1)."""
    why = route.inactive or "not active"
    summary = f"{route.payer_display}: coverage not active ({why}); no coverage information"
    detail = (
        f"The patient's {plain(route.payer_display)} coverage ({plain(route.coverage)}) is not active: "
        f"{plain(why)}. No coverage rules were checked for {plain(listing(list(orders)))}. If the patient "
        "has current insurance, record it as active, with its current period, and call again."
    )
    return card(summary, detail, route.payer_display, "coverage-info", orders)


def unread_order_card(unread: UnreadOrder, label: str, orders: Sequence[str] = ()) -> dict[str, object]:
    """An honest "could not check" card for a booked appointment whose order could not be read, a
    dispatched order that could not be, the patient's open orders an encounter hook could not search
    for, or an order (or the appointment booking it) carrying a modifier extension; `label` names the
    patient's insurer(s) when known; `orders`: for an appointment carrying one, every order it books
    (one card for them all), else the order's."""
    appointment, order = plain(unread.appointment), plain(unread.order)
    booked = plain(listing(list(orders))) if orders else order
    if unread.searched:
        which = "another intrathecal pump order" if unread.others_searched else "an intrathecal pump order"
        return card(
            f"Coverage not checked: {unread.order} could not be searched",
            f"{order[:1].upper()}{order[1:]} could not be searched ({plain(unread.reason)}), so this service "
            f"could not tell whether {which} is open for this patient, or check the payer's coverage "
            "criteria for one. Check again once the EHR's data is available, or check the payer's "
            "requirements directly.",
            label,
            "coverage-info",
        )
    if unread.device is not None:
        summary = "Coverage not checked: the device this order is for could not be read"
        what = f"{order} orders the device {plain(unread.device)}, but"
        again = "Check again once the device's record is available"
    elif unread.modifiers and unread.booked:
        summary = "Coverage not checked: the appointment carries an extension that changes its meaning"
        what = f"The appointment ({appointment}), which books {booked}, was not checked:"
        again = "Check the appointment"
    elif unread.modifiers:  # on the order, or on a record it is read through (its device, drug, reason)
        holder = unread.modifiers.holder("the order's")
        summary = f"Coverage not checked: {holder} carries an extension that changes its meaning"
        what = f"{order[:1].upper()}{order[1:]} was not checked:"
        again = f"Check {holder}"
    elif unread.not_used is not None:
        return _not_used_card(unread, label)
    elif unread.booked:
        summary = "Coverage not checked: the order this appointment is for could not be read"
        what = f"The appointment ({appointment}) is based on {order}, but"
        again = "Book again once the order is available"
    else:
        summary = "Coverage not checked: the dispatched order could not be read"
        what = f"The dispatched order ({order}) could not be used:"
        again = "Dispatch it again once the order is available"
    return card(
        summary,
        f"{what} {plain(unread.reason)}, so this service could not tell whether it is an intrathecal "
        f"pump order or check the payer's coverage criteria for it. {again}, "
        "or check the payer's requirements directly.",
        label,
        "coverage-info",
        [unread.appointment],
    )


_WHOSE_APPOINTMENT = "Check in the EHR whose appointment it is, and that it names the patient it is for."
# what to do about an order that was read and is not to be judged, by why and by which order it is
_NOT_USED_ADVICE = {
    (WITHDRAWN_ORDER, "booked"): (
        "If the appointment is still needed, base it on a current order and book again."
    ),
    (WITHDRAWN_ORDER, "dispatched"): (
        "Do not dispatch it again; if the service is still needed, place a new order."
    ),
    (ANOTHER_PATIENTS, "booked"): "Check that the appointment and the order it books are this patient's.",
    (ANOTHER_PATIENTS, "dispatched"): "Check that the order dispatched is this patient's.",
    (ANOTHER_PATIENTS, "draft"): "Check that the order being placed is this patient's.",
    (NOT_VALID, "booked"): "Correct the order in the EHR, then book again.",
    (NOT_VALID, "dispatched"): "Correct the order in the EHR, then dispatch it again.",
    (NOT_VALID, "open"): "Correct the order in the EHR.",
    (WHOSE_UNTOLD, "open"): "Check in the EHR whose order it is, and that it names the patient it is for.",
    (WHOSE_UNTOLD, "booked"): _WHOSE_APPOINTMENT,
    (WHOSE_UNTOLD, "appointment"): _WHOSE_APPOINTMENT,
}


def _which(unread: UnreadOrder) -> str:
    """Which order an UnreadOrder set aside is, as it was found: booked (an Appointment's order), draft, an
    encounter's open one, an Appointment based on no order (booked as the order itself: one whose patient
    cannot be told, service/appointments.py `whose_appointment`), or dispatched."""
    if unread.booked:
        return "booked"
    if unread.draft:
        return "draft"
    if unread.open:
        return "open"
    return "appointment" if unread.order.startswith("Appointment/") else "dispatched"


def _not_used_card(unread: UnreadOrder, label: str) -> dict[str, object]:
    """The card for an order that was read but is not to be judged (revoked, entered in error, another
    patient's, booked by another patient's appointment, a draft order of another patient, or one read from
    the EHR's FHIR server that is not valid): it says why in the summary (the reason's asides left out
    when it is too long, `_fitted`), and does not advise sending it again once it is available, as for an
    order that could not be read (ehr20 C1, M4). Which order it is, booked, draft (`UnreadOrder.draft`),
    an encounter's open one (`UnreadOrder.open`) or dispatched, is said as the order was found
    (service/call_orders.py), not by whether it is at hand."""
    which = _which(unread)
    subject = {"booked": "the order this appointment is for", "appointment": "the appointment"}.get(
        which, f"the {which} order"
    )
    reason = unread.reason
    said = f"{subject} {reason.removeprefix('it ')}" if reason.startswith("it ") else reason
    if unread.booked:
        what = f"The appointment ({plain(unread.appointment)}) is based on {plain(unread.order)}, but"
    elif which == "appointment":
        what = f"The appointment ({plain(unread.order)}) was not judged:"
    else:
        what = f"The {which} order ({plain(unread.order)}) was not judged:"
    return card(
        _fitted("Coverage not checked: ", said),
        f"{what} {plain(reason)}, so this service did not check the payer's coverage criteria for it. "
        + _NOT_USED_ADVICE[(unread.not_used or WITHDRAWN_ORDER, which)],
        label,
        "coverage-info",
        [unread.appointment],
        indicator="warning" if unread.not_used == ANOTHER_PATIENTS else "info",  # a wrong-patient order
    )


def external_reference_card(
    d: Determination,
    policy_url: str,
    published_url: str | None = None,
    orders: Iterable[str] = (),
    publisher: str = "",
) -> dict[str, object]:
    """A card linking to the policy as this service checks it (and to the policy as published, when
    known), about the `orders` that policy judged. The published policy is named as it names itself, by
    its `publisher` (the policy file's `payer`) and title, as its page here is: the NCD a payer's
    Medicare members are judged by is Medicare's, and "Kaiser Permanente Washington's published policy"
    named it the payer's (payer25 LOW)."""
    links = [
        {"label": f"{d.payer} policy as checked: {d.policy_title}", "url": policy_url, "type": "absolute"}
    ]
    if published_url:
        label = f"{publisher or d.payer}: {d.policy_title}, as published"
        links.append({"label": label, "url": published_url, "type": "absolute"})
    what = (
        f"The {d.payer} policy in its own words"
        if d.outcome == Outcome.NOT_APPLICABLE
        else f"The {d.payer} criteria for {d.kind_words} {aside(d.indication_words)}, with the policy's own "
        "words"
    )
    detail = f"{what}, how this service reads each criterion and the source text {aside(d.policy_version)}."
    if d.outcome == Outcome.NOT_APPLICABLE:  # as the decision card beside it says, with the reason
        detail += f" It has no criteria for {d.kind_words} {aside(d.indication_words)}."
    return card(f"{d.payer} policy: {d.policy_title}", detail, d.payer, "guideline", orders, links=links)


@dataclass(frozen=True)
class LineApproval:
    """An order line of an episode that holds an approval for each of its Coverages once the answer is
    applied: its order's reference (its line: two lines may share a billing code), the PA numbers (""
    for none), and whether this call issued any."""

    order: str
    numbers: tuple[str, ...]
    issued: bool


def next_steps(
    episode: Episode,
    auto_approved: bool = False,
    kept: tuple[str, ...] = (),
    partly: Sequence[LineApproval] = (),
) -> tuple[str, tuple[tuple[Step, str], ...]]:
    """(headline, steps) of the Instructions card: the decision card's missing items in its words,
    one step per thing to do naming the items it serves (`items.steps`), after what not being covered
    asks, else what to do next. `auto_approved`: the orders hold an approval once the answer is
    applied; `kept`: the PA numbers of those the orders came carrying (an earlier call's, or the
    payer's), which the card names instead of a new approval; `partly`: the lines holding one when
    not all do, which the card names, asking a prior authorization for the others only
    (`still_to_request`)."""
    headline, steps = _next_steps(episode, auto_approved, kept, partly)
    d = episode.lead
    if not d.deceased:
        return headline, steps
    # what the title says: the steps below, numbered after this one, are counted by no other headline
    return "patient recorded as deceased: check the chart first", (
        (Step.DECIDE, deceased_step(d.deceased_on)),
        *steps,
    )


def deceased_step(on: str) -> str:
    """The Instructions card's first step for a patient the chart records as deceased: why the answer
    proposes no order or form (no trial as a draft order, no documentation form as a Task:
    `cards.response`), and that every step below waits on the chart (session 20, defect 3: a trial
    was offered for a dead patient)."""
    when = f" ({human_as_written(on)})" if on else ""
    return (
        f"The chart records this patient as deceased{when}: no order or form is proposed; check the chart "
        "before any step below."
    )


# the Instructions headline where all that is open is a removal the chart's dates cannot place
# (`Episode.dates_unplaced`): not "records this service could not read", every one was read
DATES_TO_CHECK = "check in the chart whether a removal came later"


def _next_steps(
    episode: Episode, auto_approved: bool, kept: tuple[str, ...], partly: Sequence[LineApproval]
) -> tuple[str, tuple[tuple[Step, str], ...]]:
    """`next_steps`, whoever the patient is."""
    d, open_items = episode.lead, episode.missing
    open_steps = items.steps(open_items)
    if d.outcome == Outcome.DOES_NOT_MEET:
        failed = "; ".join(i.named for i in episode.failing)
        return f"before going ahead with {ORDERS}", (
            (Step.DECIDE, f"Review what {d.payer} does not accept before submitting: {failed}."),
            (Step.DECIDE, "If the order goes ahead, give the reason when you override the decision card."),
            *open_steps,
        )
    if open_items and episode.open_only(Step.RECHECK):
        if episode.dates_unplaced:  # every record read: only their dates leave it open (review31a)
            return DATES_TO_CHECK, open_steps
        if episode.chart_unreadable:
            return "check the chart's records this service could not read", open_steps
        return "check again once the EHR's data is available", open_steps
    if open_items:
        return _how_to(open_items, len(open_steps)), open_steps
    if d.outcome == Outcome.MEETS and auto_approved and kept:
        numbers = ", ".join(dict.fromkeys(n for n in kept if n)) or "satisfied"
        holder, its = (
            ("The orders already carry", "their")
            if len(episode.lines) > 1
            else ("The order already carries", "its")
        )
        return "approved, no prior authorization request needed", (
            (
                Step.ORDER,
                f"{holder} {d.payer}'s prior authorization approval ({numbers}) in {its} coverage "
                "information: no new prior authorization request is needed.",
            ),
        )
    if d.outcome == Outcome.MEETS and auto_approved:
        return "approved, no prior authorization request needed", (
            (
                Step.ORDER,
                f"{d.payer} approves orders that meet {d.policy_title}: no prior authorization request is "
                "needed; the approval number is in the order's coverage information.",
            ),
        )
    if d.outcome == Outcome.MEETS and partly:
        return "request prior authorization", _partly_approved(episode, partly)
    if d.outcome == Outcome.MEETS:
        return "request prior authorization", (
            (Step.ORDER, f"Request prior authorization from {d.payer}: every criterion is met."),
            (Step.ORDER, evidence_step(d)),
        )
    return "ask for a manual review", (
        (
            Step.ORDER,
            f"{d.payer}'s policy has no criteria for {d.kind_words} {aside(d.indication_words)}: ask "
            f"{d.payer} for a manual review.",
        ),
    )


def _how_to(open_items: Sequence[Item], steps: int) -> str:
    """The Instructions card's headline for open items: what to do with them, not their count alone, so
    that its title and the decision card's ("GEHA: 8 items to document for E0783 — B. Opioids > 6
    weeks") do not read alike in a list of titles (ehr20 C3); with how many numbered steps they take
    when several share one (`items.steps`): the card's title counts what the clinician reads (session
    20, defect 1). The steps come last, after a comma, so that they are all the items' ("how to
    document 9 items and leave 1 to the payer's reviewer for 62362, in 6 steps"), not the reviewer's
    alone (review20 L1)."""
    document, check, review = open_counts(open_items)
    if document:  # those to check again counted apart, as the decision card's summary does
        what, leave = f"how to document {counted(document)}", f"leave {review} to the payer's reviewer"
        if check and review:
            what += f", check {check} and {leave}"
        elif check:
            what += f" and check {check}"
        elif review:
            what += f" and {leave}"
    else:
        what = f"how to leave {counted(review)} to the payer's reviewer"
    return f"{what} for {ORDERS}" + (
        "" if steps == len(open_items) else f", in {steps} step{'s' if steps > 1 else ''}"
    )


def _partly_approved(episode: Episode, partly: Sequence[LineApproval]) -> tuple[tuple[Step, str], ...]:
    """The steps of an episode that meets when some of its lines hold an approval and others do not
    (fix-e, s17): which hold one (their numbers, or that this call issued it), and a prior
    authorization request for the others only."""
    d = episode.lead
    issued = [a for a in partly if a.issued]
    carried = [a for a in partly if not a.issued]
    steps: list[tuple[Step, str]] = []
    if carried:
        codes = approved_lines(episode, carried)
        numbers = approval_numbers(carried) or "satisfied"
        verb, its, it = ("carries", "its", "it") if len(carried) == 1 else ("carry", "their", "them")
        approval = f"{d.payer}'s prior authorization approval ({numbers})"
        steps.append(
            (
                Step.ORDER,
                f"{codes} already {verb} {approval} in {its} coverage information: no new request is "
                f"needed for {it}.",
            )
        )
    if issued:
        numbers_in = (
            "the approval number is in its" if len(issued) == 1 else "the approval numbers are in their"
        )
        steps.append(
            (
                Step.ORDER,
                f"{d.payer} approves {approved_lines(episode, issued)} as ordered: {numbers_in} coverage "
                "information.",
            )
        )
    others = _codes(episode, _to_request(episode, partly))
    return (
        *steps,
        (
            Step.ORDER,
            f"Request prior authorization from {d.payer} for {others}: every criterion is met.",
        ),
        (Step.ORDER, evidence_step(d)),
    )


def evidence_step(d: Determination) -> str:
    """What to send with a prior authorization request for an order that meets: the chart evidence of
    the criteria the chart documents, named; the criteria met with none documented against them
    (`items.none_documented`, contract §3 Absence: no infection, no other device) have no record to
    send, and the step says so rather than asking evidence "for each criterion" (cards23 LOW)."""
    absent, documented = items.met_by_kind(d)
    if not absent:
        return "Send the chart evidence for each criterion with the request."
    others = "it" if len(absent) == 1 else "them"
    if not documented:
        return f"No chart evidence to send: every criterion is met with none documented against {others}."
    rest = "The other criterion needs" if len(absent) == 1 else f"The other {len(absent)} criteria need"
    return (
        f"With the request, send the chart evidence for: {'; '.join(documented)}. "
        f"{rest} none: nothing is documented against {others}."
    )


def approval_numbers(approvals: Sequence[LineApproval]) -> str:
    """The approvals' numbers, each once, in order: "PA-1, PA-2" ("" when none has one)."""
    return ", ".join(dict.fromkeys(n for a in approvals for n in a.numbers if n))


def approved_lines(episode: Episode, approvals: Sequence[LineApproval]) -> str:
    """The lines of the episode holding `approvals`, by their billing codes (`line_names`): "62362 and
    62350"."""
    orders = {a.order for a in approvals}
    return _codes(episode, [x for x in episode.lines if x.order_reference in orders])


def _codes(episode: Episode, lines: Sequence[Determination]) -> str:
    """`lines` by their billing codes, each once, a line told apart from another of its code by its
    order's reference (`line_names`)."""
    return listing(list(dict.fromkeys(line_names(episode, lines, _code))))


def _to_request(episode: Episode, partly: Sequence[LineApproval]) -> tuple[Determination, ...]:
    """The episode's lines with no approval among `partly`: told apart by line, not by code (of two
    lines of one code, two 62362 orders, one approval leaves the other to request; review24d: it left
    none, so order-select raised on `listing([])`, a 500, and the card without an Instructions card
    said every line approved)."""
    approved = {a.order for a in partly}
    return tuple(x for x in episode.lines if x.order_reference not in approved)


def still_to_request(episode: Episode, partly: Sequence[LineApproval] = ()) -> tuple[str, ...]:
    """The billing codes of the episode's lines the Instructions card is about: with some lines holding
    an approval (`partly`) on an episode that meets, those still to request one; else all."""
    if not partly or episode.lead.outcome != Outcome.MEETS:
        return episode.codes
    return tuple(dict.fromkeys(x.billing_code for x in _to_request(episode, partly)))


def instructions_summary(episode: Episode, headline: str, partly: Sequence[LineApproval] = ()) -> str:
    """The Instructions card's title, as shown (the decision card points to it by these words): the
    headline naming the lines it is about (`still_to_request`) where it says `ORDERS`, else after it
    ("request prior authorization for 62362")."""
    codes = ", ".join(still_to_request(episode, partly))
    named = headline.replace(ORDERS, codes) if ORDERS in headline else f"{headline} for {codes}"
    return shortened(f"{episode.payer_lead}{named}", SUMMARY_LIMIT)


def instructions_card(
    episode: Episode,
    headline: str,
    steps: Sequence[tuple[Step, str]],
    partly: Sequence[LineApproval] = (),
) -> dict[str, object]:
    """A text-only card listing `steps` grouped by who does what, numbered across the groups so the
    count is plain; shared by the order lines (of one payer) that need the same steps; `partly`: as
    `next_steps` was given it. Each group's name is a paragraph of its own: CommonMark lets only a
    list starting at 1 interrupt a paragraph, so "**Document**" with "4. …" on the next line read as
    one paragraph, every step of the group run together on one line. A step's sub-items are indented
    under its text, however wide its number ("10. "), or they would stand outside the step."""
    first = episode.lead
    blocks: list[str] = []
    number = 0
    for step in Step:
        mine = [text for kind, text in steps if kind == step]
        numbered = []
        for text in mine:
            number += 1
            marker = f"{number}. "
            numbered.append(marker + text.replace("\n" + items.SUB_INDENT, "\n" + " " * len(marker)))
        if mine:
            blocks += [f"**{step.value}**", "\n".join(numbered)]
    return card(
        instructions_summary(episode, headline, partly),
        paragraphs(blocks),
        first.payer,
        "clinical-reminder",
        episode.orders,
    )
