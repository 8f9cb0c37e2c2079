"""What the cards say about a payer's decision: the criteria that fail or are missing, one item each,
in the words and the order that the decision card, the Instructions card and the CRD reason share.

One source keeps the three in step: the Instructions card lists exactly the decision card's missing
items (where the answer carries one: not beside a decision card that already says each of its steps,
`cards.render.says_every_step`), and the coverage-information reason names the same criteria. Criteria
that could not be checked because the EHR's data was unavailable are one item, not one per criterion:
the remedy is the same for all of them. A criterion the chart documents but the policy leaves to the
payer's reviewer (a trial relief below an example threshold) is an item with nothing to document. The
ways to meet one either/or are one item: any of them is enough. While nothing tells the pump's
indication, documenting it (or reading again what could tell it) comes first, beside only the criteria
that stand whatever it tells. A card that speaks for several order lines (an `Episode`) lists every
line's items, each once, naming the lines an item concerns when it is not all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from cards.markdown import plain
from service.codes import CPT, Code
from service.engine.model import (
    UNCHECKED_PREFIX,
    CriterionResult,
    Determination,
    Evidence,
    Outcome,
    Pending,
    Status,
    and_more,
    indications_left,
)
from service.facts import ProcedureFact
from service.fhir.server_share import not_asked
from service.fhirdates import human_as_written, human_date_to, parse_datetime
from service.next_steps import TrialOrder
from service.orders import BilledLine
from service.record import MODIFIED, dates_cannot_tell, unreadable_in_chart
from service.wording import aside

FOR_REVIEWER = (
    "recorded, for the payer's reviewer to judge: send the chart with the prior authorization request"
)
DOCUMENT_INDICATION = (
    "Record the diagnosis the pump treats (the pain or the spasticity) as the order's reason, or order "
    "the pump drug with the intrathecal or epidural route."
)


class Step(StrEnum):
    """Who does what to close a missing item, in the order the Instructions card groups them."""

    DECIDE = "Before going ahead"
    ORDER = "Order"
    DOCUMENT = "Document"
    ASK = "Ask the patient"
    RECHECK = "Check again"
    REVIEW = "Leave to the payer's reviewer"


@dataclass(frozen=True)
class Item:
    """One failing or missing criterion (or the criteria one cause left unchecked)."""

    status: Status
    label: str
    section: str
    finding: str
    todo: str | None
    step: Step
    criteria: tuple[str, ...]
    only_for: tuple[str, ...] = ()  # the billing codes it concerns, when not every line of its card
    # what it waits on, for a result a trial not yet done is to show (`trial_first`: "Order the trial
    # first (CPT 62322 or 62326)"), and what to do once it is done (`todo` says both); "" for none
    awaits: str = ""
    then: str | None = None
    # the finding naming what it concerns before why (a criterion left unchecked: "implant CPT 33206 (2 Feb
    # 2019), but some of the EHR's later removals could not be read (…)", its `finding` after what the
    # records not read may undo), fullest first ("… and 1 more, but …", then the latest alone), each said
    # on the decision card's line only where it fits whole; () for none
    in_full: tuple[str, ...] = ()
    # the finding in a few words, said on the decision card's line where not even MIN_FINDING of `finding`
    # fits beside what to do (an either/or's "any one is enough", its ways said by what to do; "not
    # recorded", where what to do names the one record the finding says is missing), so that what to do is
    # kept whole, and on a card short of room where what to do is said whole (`cards.render.BRIEF`); ""
    # for none
    brief: str = ""
    # what to do without the in-place condition `todo` begins with (`_if_in_place`: "If no pump is in
    # place, record …"), and `then` likewise: said on a decision card that says the condition once, for all
    # its items to document (`cards.render.condition_said_once`), so that each line keeps room for what to
    # do (wording30b, review30f L2); None for an item with no such condition
    unconditioned: str | None = None
    then_unconditioned: str | None = None

    @property
    def named(self) -> str:
        """Its label, with the order lines it concerns when a card speaks for others too."""
        return f"{self.label} (for {', '.join(self.only_for)} only)" if self.only_for else self.label

    @property
    def heading(self) -> str:
        """How the Instructions card names it: in the decision card's words, with the cause when the
        step is to check again, as Markdown."""
        return f"{self.named} ({plain(self.finding)})" if self.step == Step.RECHECK else self.named

    @property
    def instruction(self) -> str:
        """The Instructions card's step for it alone (`steps` gives one to items that share it)."""
        return f"{self.heading}: {self.todo}" if self.todo else self.heading

    @property
    def reason(self) -> str:
        """How the CRD reason names it: the policy section and the criterion in plain words."""
        return f"{self.label} {aside(self.section)}" if self.section else self.label


def payer_with_plan(payer: str, plan: str) -> str:
    """A payer as a card names it, with the plan judged when the answer judges two of its plans ("GEHA,
    Medicare plan"): the decision cards and the trial-first card say it alike."""
    return f"{payer}, {plan}" if plan else payer


# what to do about criteria left unchecked by records of the chart this service cannot read
CHECK_THE_CHART = "check those records in the chart: calling again reads the same"
WHAT_FOR = Item(
    Status.NOT_DOCUMENTED,
    "What the pump is for",
    "",
    "neither the order's reason nor its drug tells, and the problem list does not decide",
    DOCUMENT_INDICATION,
    Step.DOCUMENT,
    (),
)
UNREAD_INDICATION = Item(
    Status.NOT_DOCUMENTED,
    "What the pump is for",
    "",
    "the chart data that could tell it (the problem list, the pump's drug) could not be read",
    "call again once the EHR's data is available",
    Step.RECHECK,
    (),
)


def _dated(e: Evidence) -> str:
    """Evidence with its date no finer than the chart writes it (`Evidence.precision`: "(June 2025)",
    never its first day), unless its words carry it already ("(onset 2021)", "(March 2022)")."""
    if e.date is None:
        return e.text
    said = human_date_to(e.date, e.precision)
    return e.text if said in e.text else f"{e.text} ({said})"


def finding(c: CriterionResult) -> str:
    """A criterion's finding as a card states it; a fact documented in several forms adds the deciding
    record and the older forms it overrules."""
    if not c.overruled:
        return c.finding
    deciding = "; ".join(_dated(e) for e in c.evidence)
    return f"{c.finding}: {deciding}; overrules {'; '.join(_dated(e) for e in c.overruled)}"


def _ruled_out(c: CriterionResult) -> bool:
    """A group whose gate is not met: it does not apply to this patient (the block of the other kind
    of pain), so it failed on no merit of its own."""
    return any(child.gate and child.status == Status.NOT_MET for child in c.children)


def _failing_leaves(c: CriterionResult) -> list[CriterionResult]:
    """The not-met leaves reached through not-met parts (what actually fails), leaving out the parts
    that were ruled out, unless nothing else failed. Inside an either/or still open, the alternatives
    that fell short too (a trial with 40 % relief beside a waiver not yet documented): the card
    states them, and what is still missing beside them."""
    if c.status == Status.MET:
        return []
    if not c.children:
        return [c] if c.status == Status.NOT_MET else []
    failed = [child for child in c.children if child.status == Status.NOT_MET]
    applying = [child for child in failed if not _ruled_out(child)]
    if c.status == Status.NOT_MET:
        return [leaf for child in applying or failed for leaf in _failing_leaves(child)]
    within = [child for child in c.children if child in applying or child.status == Status.NOT_DOCUMENTED]
    return [leaf for child in within for leaf in _failing_leaves(child)]


def open_leaves(c: CriterionResult) -> list[CriterionResult]:
    """The undocumented leaves that documenting can still decide, reached through undocumented parts
    only: a part already met, or already not met (a ruled-out branch of an either/or), is settled."""
    if c.status != Status.NOT_DOCUMENTED:
        return []
    if not c.children:
        return [c]
    return [leaf for child in c.children for leaf in open_leaves(child)]


def _alternatives(
    result: CriterionResult, outer: CriterionResult | None = None
) -> dict[str, CriterionResult]:
    """Each open leaf at or below `result` that is itself one way to meet an undocumented either/or
    (a Kaiser 3.d therapy, an Ashworth or Modified Ashworth score), with that either/or: documenting
    any one of its ways closes it. An either/or of either/ors is one (Cohere's three replacement
    reasons, each a device status or a replacement reason): `outer`, the outermost. A way that
    needs several criteria together (a block of an indication) is not one fact to document, and
    its leaves are not."""
    if result.status != Status.NOT_DOCUMENTED:
        return {}
    either_or = (outer or result) if result.either_or else None
    found: dict[str, CriterionResult] = {}
    for child in result.children:
        if not child.children:
            if either_or is not None and child.status == Status.NOT_DOCUMENTED:
                found[child.id] = either_or
        else:
            found.update(_alternatives(child, either_or if child.either_or else None))
    return found


def _step(todo: str | None) -> Step:
    verb = (todo or "").split(" ", 1)[0].lower()
    return {"order": Step.ORDER, "ask": Step.ASK}.get(verb, Step.DOCUMENT)


def _failing(d: Determination) -> list[Item]:
    """What fails: first the criteria that fail (what decides "not covered"), then the alternatives
    that fell short inside an either/or still open, each in policy order. One that only the kind read
    brings while that kind could not be told (`Determination.in_place_only`) says on what it fails
    (`only_if_in_place`: "❌ Opioids or other analgesics for at least 6 months (if no pump is in place)",
    review30f: said bare under "Documentation needed", beside a pump Device that could not be read, it read
    as failing the order)."""
    deciding_first = sorted(d.criteria, key=lambda top: top.status != Status.NOT_MET)
    leaves = {leaf.id: leaf for top in deciding_first for leaf in _failing_leaves(top)}
    only = {r.id for top in d.criteria if top.id in d.in_place_only for r in top.walk()}
    return [
        Item(
            Status.NOT_MET,
            f"{leaf.label} {only_if_in_place(d)}" if leaf.id in only else leaf.label,
            leaf.section,
            finding(leaf),
            None,
            Step.DOCUMENT,
            (leaf.id,),
        )
        for leaf in leaves.values()
    ]


def _kind_item(d: Determination) -> Item:
    """The item for a pump whose criteria depend on which of its drug's family of indications it is for
    (cancer pain or not, spasticity or dystonia), which only the problem list could tell, and it could
    not be read."""
    return Item(
        Status.NOT_DOCUMENTED,
        d.kind_unread,
        "",
        "the problem list could not be read",
        "call again once the EHR's data is available",
        Step.RECHECK,
        (),
    )


IN_PLACE = "Whether the pump is still in place"  # the item asked first while it could not be checked
ALREADY_IN_PLACE = "Whether a pump is already in place"  # the same, where none was found (review30c)


def in_place_label(d: Determination) -> str:
    """The label of `_in_place_item`: whether the pump found is still in place (`d.in_place`: read as a
    replacement), or whether one is already in place where none was found."""
    return IN_PLACE if d.in_place else ALREADY_IN_PLACE


def _in_place_item(d: Determination) -> Item:
    """The item for an implant whose kind could not be told (`Determination.in_place_unsure`): judged as a
    replacement while the pump it replaces may have been removed by a removal that could not be read, or as
    a first implant while records that could show a pump in place could not be read (review30c). Whether it
    is a replacement or a first implant decides which criteria apply (engine/evaluate.py), so it is asked
    first, and, where the payer asks the kind read what it does not ask the other (`in_place_only`), what
    the other reading makes of the order is said, in few words, so that the line keeps why whole (review30a:
    "…, which eviCore CMM-210 judges by other criteria" cut "this service does not understand")."""
    todo = _recheck([d.in_place_unsure])
    if d.in_place:
        other, finding = "it was removed", _removal_unread(d.in_place_unsure)
    else:
        other, finding = "one is", f"records that could show one could not be read ({d.in_place_unsure})"
    if d.in_place_only:
        todo += f"; if {other}, {d.payer} judges this order by other criteria"
    return Item(
        Status.NOT_DOCUMENTED,
        in_place_label(d),
        "",
        finding,
        todo,
        Step.RECHECK,
        (),
    )


def _removal_unread(reason: str) -> str:
    """Why whether the pump is still in place could not be checked, as what befell the records: a removal
    left out by its code (it carries a modifier extension) is "a removal record"; a Procedure that could not
    be read at all (its codes unknown) or procedures not fetched only may hold one (review30a: a malformed
    trial record, or an HTTP 503, read "a removal record could not be read"); a removal read whose date, or
    the pump record's, cannot tell whether it came after is said as that ("removal CPT 62365 (undated) may
    have come later", engine/removals.py)."""
    if dates_cannot_tell(reason):
        return reason
    if MODIFIED in reason:
        return f"a removal record could not be read ({reason})"
    if unreadable_in_chart(reason):
        return f"a procedure record that may be a removal could not be read ({reason})"
    return f"the EHR's procedure history was not available ({reason})"


IF_IN_PLACE = "If the pump is still in place"  # the condition of what only a pump in place asks
IF_NONE_IN_PLACE = "If no pump is in place"  # the condition of what only a first implant asks


def _if_in_place(item: Item, found: bool = True) -> Item:
    """An item of a criterion only the kind read brings, asked for only if it is that kind (`_in_place_item`
    first): "If the pump is still in place, record “state of the existing pump” …"; where no pump was found
    (`found` False), "If no pump is in place, …". An instruction that is itself a condition joins it ("If
    the pump is still in place and the device was not abused or neglected, nothing is needed; …", not "If
    the pump is still in place, if the device …": review30a)."""
    when = IF_IN_PLACE if found else IF_NONE_IN_PLACE
    if not item.todo:
        return replace(item, todo=f"{when}, document it", unconditioned="Document it")
    own = _CONDITION.match(item.todo)
    todo = f"{when} and {item.todo[own.end() :]}" if own else f"{when}, {lowered(item.todo)}"
    return replace(item, todo=todo, unconditioned=item.todo)


_CONDITION = re.compile(r"If\s+")  # an instruction that begins with its own condition


def only_if_in_place(d: Determination) -> str:
    """How a criterion only the kind read brings (`Determination.in_place_only`) is said to hold only for
    it where it is named, not asked (the met line, a ❌ line): "(if the pump is still in place)" of a pump
    found, "(if no pump is in place)" where none was found (`_if_in_place`'s condition)."""
    return aside((IF_IN_PLACE if d.in_place else IF_NONE_IN_PLACE).lower())


def _unchecked_item(d: Determination, leaves: list[CriterionResult]) -> Item:
    """One item for every criterion the EHR's missing data left open: how many, and why."""
    why = [(leaf.unchecked_reason or "").removeprefix(UNCHECKED_PREFIX) for leaf in leaves]
    reasons = list(dict.fromkeys(why))
    ids = tuple(dict.fromkeys(leaf.id for leaf in leaves))
    affected = [top for top in d.criteria if any(r.id in ids for r in top.walk())]
    if len(d.criteria) == 1:
        label = "its one criterion could not be checked"
    elif len(affected) == 1:  # named: which to check in the chart (review29f A-3), quoted: a name, where
        # said bare a label of what must hold read as a double negative ("No other implanted programmable
        # device could not be checked", review30a)
        label = f"“{affected[0].label}” could not be checked"
    else:
        label = f"{len(affected)} of {len(d.criteria)} criteria could not be checked"
    cause = reasons[0] if len(reasons) == 1 else f"{reasons[0]}, among others"
    # one criterion's: what the records not read may undo, where its result says (`_pending_forms`); of
    # several, the one criterion whose result names such a record, so that a documented record deciding
    # it (a Z95.0 beside procedures not fetched) is not hidden in the count (review31f M1)
    pending = leaves[0].pending if len(leaves) == 1 else None
    forms = tuple(f"{form}, but {cause}" for form in _pending_forms(pending)) if pending else ()
    named = [(leaf, top) for leaf in leaves if leaf.pending for top in affected if leaf in top.walk()]
    if len(leaves) > 1 and len(named) == 1:
        leaf, top = named[0]  # by its own cause: the others' are counted ("among others")
        own = (leaf.unchecked_reason or "").removeprefix(UNCHECKED_PREFIX)
        own = own if len(reasons) == 1 else f"{own}, among others"
        forms = tuple(
            f"{form} documented for “{top.label}”, but {own}" for form in _pending_forms(leaf.pending)
        )
    return Item(
        Status.NOT_DOCUMENTED,
        label,
        "",
        cause,
        _recheck(reasons),
        Step.RECHECK,
        ids,
        in_full=forms,
    )


def _pending_forms(pending: Pending) -> tuple[str, ...]:
    """What records not read may undo (`CriterionResult.pending`, engine/evaluate.py), fullest first, as a
    line has room: the latest implant, its day and the others counted ("implant CPT 33207 (3 Mar 2019) and
    1 more", review30a L6), then the count in fewer words ("+1 more"), then without the day, and only last
    the one named alone (review30f: that a second implant needs checking is dropped last, where "and 1 more"
    went before the day); one implant by its code alone where its day leaves why no room ("implant SNOMED
    441509002, but …")."""
    dated = f"{pending.named} ({pending.when})"
    if not pending.more:
        return (dated, pending.named)
    more = and_more(pending.more, short=True)
    return (pending.words, f"{dated}{more}", f"{pending.named}{more}", pending.named)


def _recheck(reasons: list[str]) -> str:
    """What to do about criteria the EHR's data left unchecked, by why it was not available."""
    if all(not_asked(reason) for reason in reasons):
        return "call again in a moment"
    if all(unreadable_in_chart(reason) for reason in reasons):
        return CHECK_THE_CHART
    return "call again once the EHR's data is available"


def _missing(d: Determination) -> list[Item]:
    documentable: list[CriterionResult] = []
    unchecked: list[CriterionResult] = []
    for top in d.by_status(Status.NOT_DOCUMENTED):
        for leaf in open_leaves(top):
            bucket = unchecked if leaf.unchecked_reason else documentable
            if all(leaf.id != known.id for known in bucket):
                bucket.append(leaf)
    rechecks = [_unchecked_item(d, unchecked)] if unchecked else []
    if not d.indication_evident and d.outcome == Outcome.DOES_NOT_MEET:
        return rechecks  # failed whatever the pump is for: what it is for decides nothing
    if not d.indication_evident:  # then only the criteria whatever it is for (`_standing`)
        standing = _items(d, _standing(d, documentable))
        if unknown_for_now(d):  # reading again comes first: what could not be read may tell it
            return [UNREAD_INDICATION, *rechecks, *standing]
        return [WHAT_FOR, *standing]
    kind_open = bool(d.kind_unread) and d.outcome == Outcome.INSUFFICIENT
    if kind_open and d.by_status(Status.NOT_MET):
        # failed under the default: what the problem list tells decides (late review 2, F3); of the
        # other criteria, those whatever it tells, while some indication is left for the order
        return [_kind_item(d), *_items(d, _standing(d, documentable)), *rechecks]
    # the unread problem list, when no criterion it left unchecked says so already
    kind_unread = [_kind_item(d)] if kind_open and not unchecked else []
    # a pump that may have been removed: which criteria apply is open, whatever else is
    in_place = [_in_place_item(d)] if d.in_place_unsure and d.outcome == Outcome.INSUFFICIENT else []
    documented = _items(d, documentable)
    if in_place:  # what only a pump in place asks is asked once it is found in place (CMM-210.5)
        only = {r.id for top in d.criteria if top.id in d.in_place_only for r in top.walk()}
        documented = [
            _if_in_place(i, bool(d.in_place)) if only.intersection(i.criteria) else i for i in documented
        ]
    return in_place + kind_unread + documented + rechecks


def _items(d: Determination, documentable: list[CriterionResult]) -> list[Item]:
    """One item per leaf to document, except that the ways to meet one either/or are one item (any of
    them is enough: three of them are not three items to document); one item per leaf the chart
    records for the payer's reviewer."""
    alternatives = {leaf_id: group for top in d.criteria for leaf_id, group in _alternatives(top).items()}
    ways: dict[str, list[CriterionResult]] = {}
    for leaf in documentable:
        if not leaf.for_reviewer and leaf.id in alternatives:
            ways.setdefault(alternatives[leaf.id].id, []).append(leaf)
    items: list[Item] = []
    done: set[str] = set()
    for leaf in documentable:
        group = alternatives.get(leaf.id)
        if leaf.for_reviewer or group is None or len(ways[group.id]) < 2:
            items.append(_leaf_item(leaf))
        elif group.id not in done:
            done.add(group.id)
            items.append(_either_or_item(group, ways[group.id]))
    return items


def _either(instructions: Iterable[str | None]) -> str | None:
    """Instructions as alternatives: "Record A; or record B." (None when there are none)."""
    said = [i.rstrip(".") for i in dict.fromkeys(i for i in instructions if i)]
    if not said:
        return None
    return "; or ".join([said[0], *(i[:1].lower() + i[1:] for i in said[1:])]) + "."


# how a finding left to the payer's reviewer says so at its end, which FOR_REVIEWER says after it
_REVIEWER_NOTE = re.compile(r"[,;:]\s*for the reviewer$")


# a finding that only says a record is missing, which its instruction names ("no “X” recorded" beside
# "Record “X” …"), said in few words where the line has no room for both (`Item.brief`)
_ONLY_MISSING = re.compile(r"no (“[^”]+”) recorded")
NOT_RECORDED = "not recorded"


def _brief(found: str, todo: str | None) -> str:
    """The few words of a leaf's finding (`Item.brief`): "not recorded" where the finding says only that the
    record its instruction names is missing (engine/checks/observations.py), so that a line short of room
    says what to do whole, not the record's name twice (KPWA's 3.g: its instruction, its parent's, names
    “function increased during the trial” among the trial's records); "" for any other."""
    missing = _ONLY_MISSING.fullmatch(found)
    return NOT_RECORDED if missing and todo and missing.group(1) in todo else ""


def _leaf_item(leaf: CriterionResult) -> Item:
    found = finding(leaf)
    todo = FOR_REVIEWER if leaf.for_reviewer else leaf.how_to_document
    return Item(
        Status.NOT_DOCUMENTED,
        leaf.label,
        leaf.section,
        # said once: "…, below the policy's example — recorded, for the payer's reviewer to judge: …"
        # (cardfix20 F4d: "…, for the reviewer — recorded, for the payer's reviewer to judge")
        _REVIEWER_NOTE.sub("", found) if leaf.for_reviewer else found,
        todo,
        Step.REVIEW if leaf.for_reviewer else _step(leaf.how_to_document),
        (leaf.id,),
        brief="" if leaf.for_reviewer else _brief(found, todo),
    )


def _either_or_item(group: CriterionResult, ways: list[CriterionResult]) -> Item:
    """The item for an either/or none of whose ways is documented: what each way found (a score on
    record but unreadable, or from when a pump was in place, is said), and what documents any of
    them (each way's own instruction, when the either/or gives none)."""
    todo = group.how_to_document or _either(way.how_to_document for way in ways)
    found = "; ".join(f"{way.label}: {finding(way)}" for way in ways)
    return Item(
        Status.NOT_DOCUMENTED,
        group.label,
        group.section,
        f"{ANY_ONE}: {found}",
        todo,
        _step(todo),
        tuple(way.id for way in ways),
        brief=ANY_ONE,  # what each way lacks, what to do says (review30a L5: Cohere's lost what to do)
    )


ANY_ONE = "any one is enough"


def unknown_for_now(d: Determination) -> bool:
    """Whether what the pump is for is not known because chart data that may tell it could not be
    read: not undocumented, only unread for now."""
    return not d.indication_evident and d.indication_unread


def _standing(d: Determination, documentable: list[CriterionResult]) -> list[CriterionResult]:
    """The undocumented criteria that stand whichever indication the order turns out to be for, of
    those it may be for that no failure has closed: a gap the clinician can close before what could
    not be read is read again (Synthea A/B review, U5; late review 3, #5). None when the order may be
    for an indication the policy does not address (a GEHA pain criterion for what may be a baclofen
    pump: Synthea A/B review 36, F1), or when every indication has failed: documenting cannot make the
    order covered."""
    possible = frozenset(d.possible_indications)
    if not possible <= frozenset(d.policy_indications):
        return []
    left = indications_left(d.by_status(Status.NOT_MET), possible)
    return [leaf for leaf in documentable if left and left <= (leaf.written_for or possible)]


def failing(d: Determination) -> tuple[Item, ...]:
    """What fails, what decides first (`_failing`)."""
    return tuple(_failing(d)) if d.outcome != Outcome.NOT_APPLICABLE else ()


def missing(d: Determination) -> tuple[Item, ...]:
    """What is missing: the items to document, then the criteria left unchecked (one item)."""
    if d.outcome in (Outcome.NOT_APPLICABLE, Outcome.MEETS):
        return ()
    return tuple(_missing(d))


def to_document(d: Determination) -> frozenset[str]:
    """The criteria the cards ask to document (what a documentation form may ask): not those left to
    the payer's reviewer or to a recheck."""
    return frozenset(c for i in missing(d) if i.step not in (Step.REVIEW, Step.RECHECK) for c in i.criteria)


def steps(open_items: Iterable[Item]) -> tuple[tuple[Step, str], ...]:
    """The Instructions card's steps for `open_items`: one per thing to do, not per criterion (synthea
    review s19, M1: one 250-character instruction printed under five criteria). Items that share
    what to do are one step, where the first of them stands, naming each of them once (a label two
    branches share, once), so every criterion stays traceable to its step; an item with nothing to
    do but its name is a step of its own. The items that wait on a trial not yet done (`Item.awaits`)
    are one step, in the group of what to do about the trial, each of their own steps a sub-item of it
    (`_once_done`: the lead-in said once, stop note 43)."""
    found: dict[tuple[Step, str | None, str | None], list[str]] = {}
    awaiting: dict[str, dict[str | None, list[str]]] = {}  # lead → what to do once done → its items
    for item in open_items:
        if item.awaits:
            found.setdefault((_step(item.awaits), item.awaits, _AWAITED), [])
            headings = awaiting.setdefault(item.awaits, {}).setdefault(item.then, [])
        else:
            headings = found.setdefault((item.step, item.todo, None if item.todo else item.heading), [])
        headings += [] if item.heading in headings else [item.heading]
    return tuple(
        (step, _once_done(todo, awaiting[todo]) if key == _AWAITED and todo else _step_text(headings, todo))
        for (step, todo, key), headings in found.items()
    )


SUB_INDENT = "   "  # a step's sub-item, under "1. " (the Instructions card indents it under its number)
_AWAITED = "\0awaited"  # the key of the one step of what a trial not yet done is to show (`steps`)


def _step_text(headings: Sequence[str], todo: str | None) -> str:
    return f"{'; '.join(headings)}: {todo}" if todo else headings[0]


def _once_done(lead: str, shows: Mapping[str | None, Sequence[str]]) -> str:
    """The one step of everything a trial not yet done is to show (stop note 43: its lead-in said on
    each item): what to do about the trial (`lead`), then, one sub-item each, what to do with each of
    its results once it is done."""
    results = [f"{SUB_INDENT}- {_step_text(headings, then)}" for then, headings in shows.items()]
    return "\n".join([f"{lead}; once the trial is done:", *results])


def apart(open_items: tuple[Item, ...]) -> tuple[tuple[Item, ...], tuple[Item, ...]]:
    """(the items to act on, those left to the payer's reviewer), each in its order."""
    return (
        tuple(i for i in open_items if i.step != Step.REVIEW),
        tuple(i for i in open_items if i.step == Step.REVIEW),
    )


# what a card and the coverage information say of a chart whose dates alone leave it open (`dates_unplaced`)
DATES_UNPLACED = "the chart's dates cannot tell whether a removal came later"


def dates_unplaced(open_items: Sequence[Item]) -> bool:
    """Whether all that is open is records of the chart to check (`CHECK_THE_CHART`), each a removal read
    whose date, or the implant's, cannot tell whether it came after the implant (engine/removals.py): no
    record was left unread (`DATES_UNPLACED`)."""
    return bool(open_items) and all(
        (i.todo or "").startswith(CHECK_THE_CHART) and dates_cannot_tell(i.finding) for i in open_items
    )


def open_only(d: Determination, step: Step) -> bool:
    """Open only for items of one step: RECHECK, the EHR's data could not be read (nothing to
    document, only to check again); REVIEW, what is recorded is the payer's reviewer's to judge."""
    open_items = missing(d)
    return bool(open_items) and all(i.step == step for i in open_items)


def unread_for_now(leaf: CriterionResult) -> bool:
    """Whether a criterion is open only because the data it reads was not at hand this time (a FHIR
    search that failed, timed out or was not asked, a key neither prefetched nor fetchable): asking
    again once the EHR's data is available may decide it. Records that were read but left out (they
    could not be read, or carry a modifier extension) are the chart as it is: asking again reads the
    same, so a criterion they leave open was judged on the chart as read."""
    reason = leaf.unchecked_reason
    return leaf.status == Status.NOT_DOCUMENTED and bool(reason) and not unreadable_in_chart(reason or "")


def read_nothing(d: Determination) -> bool:
    """Whether no criterion of an insufficient determination was judged on data read: every one is
    open only because the data it reads was not at hand (`unread_for_now`), so its outcome tells
    nothing of the chart."""
    found = [leaf for top in d.criteria for leaf in top.leaves()]
    return d.outcome == Outcome.INSUFFICIENT and bool(found) and all(unread_for_now(leaf) for leaf in found)


def open_for_now(d: Determination) -> bool:
    """Whether all that keeps an insufficient determination open is data not at hand this time: no
    criterion read fails or is to document, and every criterion left open is `unread_for_now`."""
    unchecked = [leaf for top in d.criteria for leaf in open_leaves(top) if leaf.unchecked_reason]
    return (
        d.outcome == Outcome.INSUFFICIENT
        and open_only(d, Step.RECHECK)
        and all(unread_for_now(leaf) for leaf in unchecked)
    )


def met_count(d: Determination) -> int:
    return len(d.by_status(Status.MET))


def none_documented(d: Determination) -> tuple[str, ...]:
    """The labels of the criteria met because nothing in the chart shows what they rule out (a
    contraindication, "no X": contract §3, Absence), in the policy's order: the criteria as the card
    counts them ("N of M criteria met"), not their parts, each met on absence alone (not one met by a
    record, such as a cancer diagnosis, beside an absence: review s17 F-4). One judged only because the pump
    reads as in place (`Determination.in_place_only`) says so: "No evidence of abuse or neglect of the device
    (if the pump is still in place)" (review30a L3: "3 of 4 criteria met" read as if the order were nearly
    covered, where a removal not read would bring other criteria); one only a first implant brings, where no
    pump was found, "(if no pump is in place)" (`only_if_in_place`)."""
    return tuple(
        f"{top.label} {only_if_in_place(d)}" if top.id in d.in_place_only else top.label
        for top in d.criteria
        if top.status == Status.MET and _met_by_absence(top)
    )


def met_by_kind(d: Determination) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(`none_documented(d)`, the labels of the other criteria met: those met on what the chart records,
    whose evidence a prior authorization request sends), in the policy's order, each met criterion's
    leaves walked once (the Instructions card's evidence step walked them once for each)."""
    absent: list[str] = []
    documented: list[str] = []
    for top in d.criteria:
        if top.status == Status.MET:
            (absent if _met_by_absence(top) else documented).append(top.label)
    return tuple(absent), tuple(documented)


def _met_by_absence(top: CriterionResult) -> bool:
    met = [leaf for leaf in top.leaves() if leaf.status == Status.MET]
    return bool(met) and all(leaf.by_absence for leaf in met)


_SEVERITY = (Outcome.DOES_NOT_MEET, Outcome.INSUFFICIENT, Outcome.MEETS, Outcome.NOT_APPLICABLE)


@dataclass(frozen=True)
class JoinedOrder:
    """An order of the call judged as a pump order it joins (`Decisions.episode_orders`: the pump's
    drug), not billed as a line of it: the card speaking for that order names it among the resources
    it is about, and in its title when the call's selection holds it and none of the card's lines
    (`alone`: order-select of the drug, its pump order unselected context; ehr20 C2)."""

    reference: str
    name: str  # how a card names it ("morphine sulfate")
    joins: str  # the pump order whose judgement it is
    alone: bool = False


@dataclass(frozen=True)
class Episode:
    """The order lines one decision card speaks for (a payer's decision on one episode), the line
    that leads it, and the items of all of them: nothing one line lacks goes missing from the card
    because another line leads it."""

    lines: tuple[Determination, ...]
    lead: Determination
    failing: tuple[Item, ...]
    missing: tuple[Item, ...]
    billed: tuple[BilledLine, ...] = ()  # orders billed as lines of these (a J2274 drug order)
    joined: tuple[JoinedOrder, ...] = ()  # orders judged as these, not billed with them (the pump's drug)
    # which of the payer's plans was judged, where the answer judges two of one payer ("Medicare plan")
    plan: str = ""

    @classmethod
    def of(
        cls,
        group: Sequence[Determination],
        rank: Callable[[str], int] = lambda kind: 0,
        awaiting: Mapping[str, str] | None = None,
        billed: Iterable[BilledLine] = (),
        joined: Iterable[JoinedOrder] = (),
        before_trial: frozenset[str] = frozenset(),
    ) -> Episode:
        """The lead is the most severe line, so a card never says "meets" while one of its lines does
        not; among equally severe lines, the episode's principal kind of order (`rank`: the
        vocabulary's precedence, a pump implant before its trial or hardware), then the line judged
        against the most criteria, then policy order. `awaiting`: criterion id → the words naming
        the trial ordered in the EHR that is to document it (`trial_first`). `billed`: the orders
        billed as lines of the call's pump orders (service/billed_lines.py), those of these lines
        kept: they share these lines' coverage information, and the card names them; `joined`: the
        same for the orders judged as the call's pump orders (`JoinedOrder`). `before_trial`: the
        criteria asked before a trial not yet begun, said before it (`trial_first`)."""
        lines = tuple(group)
        lead = min(lines, key=lambda d: (_SEVERITY.index(d.outcome), rank(d.request_kind), -len(d.criteria)))
        ordered = (lead, *(d for d in lines if d is not lead))
        open_items = trial_first(_merged(ordered, missing), awaiting or {}, before_trial)
        references = {d.order_reference for d in lines}
        its_billed = tuple(b for b in billed if b.joins in references)
        its_joined = tuple(j for j in joined if j.joins in references)
        return cls(lines, lead, _merged(ordered, failing), open_items, its_billed, its_joined)

    @property
    def codes(self) -> tuple[str, ...]:
        """The billing codes of the lines the card speaks for, those billed with them last."""
        return tuple(dict.fromkeys([*(d.billing_code for d in self.lines), *(b.code for b in self.billed)]))

    @property
    def orders(self) -> tuple[str, ...]:
        """The references of the orders the card speaks for, those billed with or judged as its lines
        last."""
        joined = (*(b.reference for b in self.billed), *(j.reference for j in self.joined))
        return tuple(dict.fromkeys([*(d.order_reference for d in self.lines), *joined]))

    @property
    def payer_lead(self) -> str:
        """How a card title of this episode opens: the payer (and its plan: `payer`), and the selected
        orders it is for when none of its lines is (`JoinedOrder.alone`): "GEHA, for the morphine
        sulfate order: "."""
        alone = list(dict.fromkeys(j.name for j in self.joined if j.alone))
        if not alone:
            return f"{self.payer}: "
        orders = "order" if len(alone) == 1 else "orders"
        return f"{self.payer}, for the {' and '.join(alone)} {orders}: "

    @property
    def payer(self) -> str:
        """The payer, and which of its plans was judged when the answer judges two (`plan`)."""
        return payer_with_plan(self.lead.payer, self.plan)

    @property
    def chart_unreadable(self) -> bool:
        """Whether all that is open is criteria left unchecked by records of the chart this service
        cannot read: asking again reads the same (`CHECK_THE_CHART`, what to do first: the pump's item
        says after it what a removal would make of the order, `_in_place_item`)."""
        return bool(self.missing) and all((i.todo or "").startswith(CHECK_THE_CHART) for i in self.missing)

    @property
    def dates_unplaced(self) -> bool:
        """Whether all that is open (`chart_unreadable`) is a removal read whose date, or the implant's,
        cannot tell whether it came after the implant (engine/removals.py): no record was left unread."""
        return dates_unplaced(self.missing)

    def open_only(self, step: Step) -> bool:
        """`open_only` over every line's open items."""
        return bool(self.missing) and all(i.step == step for i in self.missing)


def _merged(
    lines: Sequence[Determination], pick: Callable[[Determination], tuple[Item, ...]]
) -> tuple[Item, ...]:
    """`pick`'s items of each line, each once in the first line's words; an item that concerns only
    some of the lines names them. The criteria left unchecked are one item for all lines. An item one
    line asks only if a pump is (or is not) in place (`Item.unconditioned`: `_if_in_place`) and another
    asks whatever is in place (a trial beside the implant) is asked whatever is: in the words of a line
    that asks it so (review31a L2: "Items to document are asked only if no pump is in place" covered a
    trial's items too)."""
    found: dict[tuple[object, ...], tuple[Item, list[str]]] = {}
    for d in lines:
        for item in pick(d):
            key = (  # the criteria left unchecked are one item, what would tell the indication another
                (item.status, item.step, bool(item.criteria))
                if item.step == Step.RECHECK
                else (item.status, item.criteria, item.label)
            )
            first, codes = found.setdefault(key, (item, []))
            if first.unconditioned is not None and item.unconditioned is None:
                found[key] = (item, codes)
            codes.append(d.billing_code)
    every = {d.billing_code for d in lines}
    return tuple(
        item if set(codes) >= every else replace(item, only_for=tuple(dict.fromkeys(codes)))
        for item, codes in found.values()
    )


def trial_order_words(orders: Iterable[TrialOrder]) -> str:
    """How a card names the trials ordered in the EHR and not yet done: each one's trial code (the
    coding it was recognised by, not its first: service/next_steps.py `trial_code`), the day it was
    written, no finer than the order writes it, and, when not active, its status ("62323, 30 Nov 2026";
    "62322, on hold"; "C2626, 1 Dec 2026"; "62324, November 2026")."""
    named = []
    for trial in orders:
        order = trial.resource
        authored = order.get("authoredOn")
        status = str(order.get("status") or "").replace("-", " ")
        parts = [
            trial.code.code,
            *([human_as_written(authored)] if parse_datetime(authored) is not None else []),
            *([status] if status and status != "active" else []),
        ]
        named.append(", ".join(parts))
    return "; ".join(dict.fromkeys(named))


def trial_first(
    open_items: Sequence[Item], awaiting: Mapping[str, str], before: frozenset[str] = frozenset()
) -> tuple[Item, ...]:
    """The items whose criteria a trial that has not happened is to document, with what to do about
    the trial first (`awaiting`: criterion id → those words): one ordered in the EHR and not yet done
    is named, as the order card no longer proposes one (review2 N-9, `trial_awaited`); with none
    anywhere, the one the answer proposes is to be ordered first (`trial_to_order`), which puts the
    item among the orders: "document the trial" alone, beside a card proposing to order it, read as if
    a trial had been done (cards21). What to do with the result follows. An item sharing what to do
    with such an item is one step with it (`steps`: the trial's relief, side effects and the patient's
    tolerance in one instruction), so it says the same. An item of a criterion the policy asks before
    the trial (`before`: the opioid reduction agreement, "prior to undergoing an intrathecal opiate
    trial"; given while no trial has begun) comes first, "Before going ahead", not after the trial's
    step."""
    own = {
        id(i): lead
        for i in open_items
        if (lead := next((awaiting[c] for c in i.criteria if c in awaiting), None))
    }
    shared = {i.todo: own[id(i)] for i in open_items if id(i) in own and i.todo}
    return tuple(
        _after_trial(item, lead)
        if (lead := own.get(id(item)) or (shared.get(item.todo) if item.todo else None))
        else replace(item, step=Step.DECIDE)
        if before.intersection(item.criteria) and item.step not in (Step.REVIEW, Step.RECHECK)
        else item
        for item in open_items
    )


def _after_trial(item: Item, lead: str) -> Item:
    """`item` with what to do about the trial (`lead`) first, then what to do with its result."""
    todo = item.todo or "record its result"
    said = f"{lead}: once done, {lowered(todo)}"
    step = _step(said) if item.step == Step.DOCUMENT else item.step
    bare = item.unconditioned  # the same, without the in-place condition (`Item.unconditioned`)
    unconditioned = f"{lead}: once done, {lowered(bare)}" if bare is not None else None
    return replace(
        item,
        todo=said,
        step=step,
        awaits=lead,
        then=todo,
        unconditioned=unconditioned,
        then_unconditioned=bare,
    )


def lowered(text: str) -> str:
    """`text` with its first letter small, to follow other words ("once done, record …")."""
    return f"{text[:1].lower()}{text[1:]}"


# What an item says first when no trial is anywhere and the answer proposes none (`trial_first`): its
# result cannot be documented yet (review21 L4: "Document the trial" read as if one had been done).
TRIAL_NOT_DONE = "No completed trial on the chart yet"


def trial_awaited(orders: Iterable[TrialOrder]) -> str:
    """What an item says first of the trials ordered in the EHR and not yet done (`trial_first`)."""
    return f"Trial already ordered ({trial_order_words(orders)})"


def trial_under_way(procedures: Sequence[ProcedureFact]) -> str:
    """What an item says first of the trials under way on the chart (`trial_first`; a trial Procedure in
    progress or on hold: "Trial under way (CPT 62324, since 5 Dec 2026)"; only in preparation: "Trial in
    preparation (CPT 62324, 7 Dec 2026)"): a trial coming, named as a trial already ordered is, whose
    result is not yet on the chart (review21b M2)."""
    begun = [p for p in procedures if p.status != "preparation"]
    named = []
    for p in begun or procedures:
        cpt = next((c.code for c in p.codes if c.system == CPT), None)
        when = human_date_to(p.performed, p.precision) if p.performed is not None else ""
        parts = [
            f"CPT {cpt}" if cpt else p.label,
            *([f"since {when}" if begun else when] if when else []),
            *(["on hold"] if p.status == "on-hold" else []),
        ]
        named.append(", ".join(parts))
    words = "; ".join(dict.fromkeys(named))
    return f"Trial under way ({words})" if begun else f"Trial in preparation ({words})"


def trial_to_order(trials: Iterable[Code]) -> str:
    """What an item says first when no trial is anywhere and the answer proposes `trials` as draft
    orders (`trial_first`): "Order the trial first (CPT 62322 or 62326)"."""
    codes = list(dict.fromkeys(t.code for t in trials))
    return f"Order the trial first (CPT {' or '.join(codes)})"
