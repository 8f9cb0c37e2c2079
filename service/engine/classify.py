"""Classification of a request: its indication and its final request kind (pure functions).

Follows criteria-and-codes.md §4.3 (indication: the infusate first, then the order's reason, then
the problem list) and the contract's §2 replacement rule (an implant code is a replacement when an
intrathecal pump is already in place).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from service.codes import CPT, HCPCS, Code, codings, first_display
from service.engine.context import EvaluationContext
from service.engine.removals import Read, Removals, Undone, Weighed
from service.facts import ConditionFact
from service.fhirdates import SPANS, human_date_to
from service.infusates import PUMP_DRUG
from service.orders import PumpOrder
from service.record import PatientRecord, condition_counts
from service.shapes import as_list
from service.terminology import Terminology, ValueSet

PAIN_INFUSATE_SETS = ("it-infusates",)
# The indications and request kinds the code itself names by id (here, service/next_steps.py and
# service/orders.py); the catalog checks at start-up that vocabulary.yaml defines each of them.
INDICATIONS_CLASSIFIED = ("non-malignant-pain", "cancer-pain", "spasticity", "dystonia")
DEFAULT_INDICATION = "non-malignant-pain"  # judged while nothing tells the indication (every policy has it)
KINDS_NAMED_IN_CODE = ("permanent-implant", "replacement", "catheter", "trial", "refill-analysis")
# the chart's records `idds_in_place` reads: while one kind could not be read, no pump found is no news
IN_PLACE_SOURCES = ("Device", "Procedure", "Condition")
# The value sets this module and the record read by id; the catalog checks they exist at start-up.
CLASSIFICATION_VALUE_SETS = (
    "spasticity",
    "dystonia",
    "malignancy",
    "chronic-pain",
    "pain-cause",
    "antispasmodic-infusates",
    "it-infusates",
    "idds-in-place",
)


def _reason_codes(ctx: EvaluationContext) -> list[Code]:
    """The codes of `_episode_reason`."""
    return _episode_reason(ctx)[1]


def _episode_reason(ctx: EvaluationContext) -> tuple[PumpOrder, list[Code]]:
    """`_find_episode_reason`, worked out once per order (the indication, whether it is evident and
    the policies' "applies" checks all read it)."""
    return ctx.memo(("reason-codes", ctx.order.reference), lambda: _find_episode_reason(ctx))


def _find_episode_reason(ctx: EvaluationContext) -> tuple[PumpOrder, list[Code]]:
    """The order whose reason tells the indication, and the codes of that reason (contract §2): the
    order's own; for an order whose reason tells no indication (none, or a code such as Z45.49
    device adjustment), the first of the episode's other pump orders, principal first, whose reason
    does (EHRs often put the reason on one order of an implant only): one episode, one indication.
    The first, not all of them pooled: a pooled pain cause on a catheter would outweigh the
    principal's malignancy (AMB-11) for the orders beside it."""
    own = _order_reason_codes(ctx, ctx.order)
    if _classify_codes(own, ctx.terminology) is not None:
        return ctx.order, own
    for other in ctx.episode_orders:
        if other is not ctx.order:
            codes = _order_reason_codes(ctx, other)
            if _classify_codes(codes, ctx.terminology) is not None:
                return other, codes
    return ctx.order, own


def reason_source(ctx: EvaluationContext) -> str:
    """The order whose reason tells the indication (`_episode_reason`), "" when none does: a test that
    reads the reason (`reason_diagnosis`) is that order's, not the call's (evaluate._run and the criteria
    memo key on it). A reason that tells no indication is of none of the value sets those tests read."""
    order, codes = _episode_reason(ctx)
    return order.reference if _classify_codes(codes, ctx.terminology) is not None else ""


def reason_diagnosis(ctx: EvaluationContext) -> ConditionFact | None:
    """The reason the order is for (`_episode_reason`) as a current diagnosis the clinician gives with
    it, for the checks that read the indication's diagnoses (contract §2: the order's reason is a
    form of the indication); None when the order gives no reason."""
    order, codes = _episode_reason(ctx)
    if not codes:
        return None
    return ConditionFact(
        order.reference, tuple(codes), first_display(None, codes), None, None, True, from_order=True
    )


def _order_reason_codes(ctx: EvaluationContext, order: PumpOrder) -> list[Code]:
    """The codes of one order's reason: its `reasonCode`, and the Conditions its `reasonReference`
    names, however the reference is written (relative, absolute, versioned, contained) and whichever
    copy of a repeated diagnosis it names; a Condition counts as the record's do (contract §3: not
    refuted, not resolved). One written as another FHIR server's URL names none of the record's
    (`PatientRecord.local`): that server's Condition of the same id is another."""
    resource = order.resource
    codes = [c for concept in as_list(resource.get("reasonCode")) for c in codings(concept)]
    codes += [c for cond in order.reasons if condition_counts(cond) for c in codings(cond.get("code"))]
    named = {ctx.record.local(ref) for ref in as_list(resource.get("reasonReference"))} - {None}
    if named:
        codes += [
            c
            for cond in ctx.record.conditions
            if cond.source in named or not named.isdisjoint(cond.duplicates)
            for c in cond.codes
        ]
    return codes


def _classify_codes(codes: list[Code], terminology: Terminology) -> str | None:
    if terminology["spasticity"].matches_any(codes):
        dystonia_only = all(
            terminology["dystonia"].matches(c) for c in codes if terminology["spasticity"].matches(c)
        )
        return "dystonia" if dystonia_only else "spasticity"
    cause = terminology["pain-cause"].matches_any(codes)
    if terminology["malignancy"].matches_any(codes) and not cause:
        return "cancer-pain"  # AMB-11: only a coded non-malignant cause outweighs the malignancy
    return "non-malignant-pain" if cause or terminology["chronic-pain"].matches_any(codes) else None


def classify_indication(ctx: EvaluationContext) -> str:
    """non-malignant-pain, cancer-pain, spasticity or dystonia."""
    if ctx.infusate_ingredients(("antispasmodic-infusates",)):
        by_reason = _classify_codes(_reason_codes(ctx), ctx.terminology)
        if by_reason in SPASM.indications:  # the order's reason first (contract §2)
            return by_reason
        by_record = _classify_codes(
            [c for cond in ctx.record.conditions for c in cond.codes], ctx.terminology
        )
        return "dystonia" if by_record == "dystonia" else "spasticity"
    by_reason = _told_by_reason(ctx)
    has = ctx.memo(("problem-list-classes",), lambda: _problem_list_classes(ctx))
    if by_reason is PAIN:  # the reason says chronic pain, not which: the problem list's malignancy does
        return "cancer-pain" if has["malignancy"] and not has["pain-cause"] else DEFAULT_INDICATION
    if by_reason is not None and not (ctx.infusates and by_reason in ("spasticity", "dystonia")):
        return by_reason
    conditions = ctx.record.conditions
    pain_drug = bool(ctx.infusate_ingredients(PAIN_INFUSATE_SETS))
    if has["spasticity"] and not pain_drug and not (has["chronic-pain"] or has["pain-cause"]):
        return (
            _classify_codes([c for cond in conditions for c in cond.codes], ctx.terminology) or "spasticity"
        )
    if has["malignancy"] and not has["pain-cause"]:
        return "cancer-pain"  # AMB-11: only a coded non-malignant cause outweighs the malignancy
    return DEFAULT_INDICATION


def _told_by_reason(ctx: EvaluationContext) -> str | Family | None:
    """What the order's reason tells of the indication: `_classify_codes` of it, except that a reason of
    chronic pain alone (a chronicity code such as SNOMED 82423001 "Chronic pain" or G89.29, with no
    coded cause and no malignancy) tells pain but not which kind: the PAIN family. Chronic pain is
    cancer pain too, so such a reason weighs as the same code on the problem list does, and only a coded
    non-malignant cause outweighs a malignancy (criteria-and-codes.md §4.3.2, AMB-11)."""
    codes = _reason_codes(ctx)
    told = _classify_codes(codes, ctx.terminology)
    if told == "non-malignant-pain" and not ctx.terminology["pain-cause"].matches_any(codes):
        return PAIN
    return told


def _problem_list_classes(ctx: EvaluationContext) -> dict[str, bool]:
    """Which of the indication's value sets the problem list holds a diagnosis of (read from the
    record alone, so shared by every order and policy of the call)."""
    return {
        name: any(ctx.terminology[name].matches_any(c.codes) for c in ctx.record.conditions)
        for name in ("spasticity", "malignancy", "chronic-pain", "pain-cause")
    }


def indication_evident(ctx: EvaluationContext) -> bool:
    """Whether the call or the chart tells the indication (a known pump drug, the order's reason, or a
    problem-list diagnosis that classifies it); if not, `classify_indication`'s non-malignant pain is
    only its default. A problem list with both a spasticity and a pain or cancer diagnosis tells
    neither, with no drug or reason to choose: a man with multiple sclerosis and central pain, or
    bone metastases, may be given either pump (peds review F3; session review s36, #4)."""
    if ctx.infusate_ingredients():
        return True
    if _classify_codes(_reason_codes(ctx), ctx.terminology) is not None:
        return True
    has = ctx.memo(("problem-list-classes",), lambda: _problem_list_classes(ctx))
    if has["spasticity"] and (has["chronic-pain"] or has["pain-cause"] or has["malignancy"]):
        return False
    conditions = [c for cond in ctx.record.conditions for c in cond.codes]
    return _classify_codes(conditions, ctx.terminology) is not None


# The chart data that can tell the indication, besides the call: the problem list, and the pump's
# current drug (the chart's intrathecal MedicationRequests, service/infusates.py); and the pump's drug
# orders, when one was left out (`PUMP_DRUG`: it carries a modifier extension).
INDICATION_SOURCES = ("Condition", "MedicationRequest", PUMP_DRUG)


@dataclass(frozen=True)
class Family:
    """Indications a pump's drug tells apart from the others but not from each other: which one, only
    the order's reason or the problem list says."""

    indications: frozenset[str]
    words: str  # how a card names the indication when only the family is known
    question: str  # the item a card lists for what would tell which


PAIN = Family(
    frozenset({"non-malignant-pain", "cancer-pain"}),
    "pain (cancer-related or not: the problem list could not be read)",
    "Whether the pain is cancer-related",
)
SPASM = Family(
    frozenset({"spasticity", "dystonia"}),
    "spasticity or dystonia (the problem list could not be read)",
    "Whether it is spasticity or dystonia",
)


def family_unread(ctx: EvaluationContext) -> Family | None:
    """The family of indications the pump's drug says it is for, when which of them is not told: the
    order's reason does not say, and the problem list, which would, could not be read. The indication
    `classify_indication` gives is then only the family's default."""
    if "Condition" not in ctx.record.unavailable:
        return None
    if ctx.infusate_ingredients(("antispasmodic-infusates",)):
        family: Family | None = SPASM
    else:
        family = PAIN if ctx.indication == "non-malignant-pain" and ctx.infusate_ingredients() else None
    told = _told_by_reason(ctx)  # a reason of another family tells nothing, nor one of the family alone
    if family is None or told in family.indications or _decided_by_what_was_read(ctx, family):
        return None
    return family


def _decided_by_what_was_read(ctx: EvaluationContext, family: Family) -> bool:
    """Whether the part of the problem list that was read (a first page, say) already decides which of
    the family it is, whatever the unread part holds: a spasticity that is not dystonia alone stays
    spasticity, and a coded cause of pain keeps pain non-malignant beside any malignancy (AMB-11)."""
    read = [c for cond in ctx.record.conditions for c in cond.codes]
    if family is SPASM:
        return _classify_codes(read, ctx.terminology) == "spasticity"
    return ctx.terminology["pain-cause"].matches_any(read)


def indication_unread(ctx: EvaluationContext) -> bool:
    """Whether chart data that could tell the indication (INDICATION_SOURCES) could not be read: an
    indication not evident is then unknown, not undocumented."""
    return any(resource_type in ctx.record.unavailable for resource_type in INDICATION_SOURCES)


def idds_in_place(record: PatientRecord, terminology: Terminology) -> list[str]:
    """References showing an intrathecal pump is already in place (contract §2), newest first."""
    return [source for source, _, _ in _idds_records(record, terminology)]


def in_place_unsure(record: PatientRecord, terminology: Terminology) -> str:
    """Why the pump `idds_in_place` finds cannot be told to be in place still, "" when it can (or none is
    found): every record showing it is a Procedure or a diagnosis a removal undoes (contract §2: "a completed
    Procedure 62360-62362 with no later 62365"; an active Device stands as written) and a removal that
    may undo it could not be read, or was read but the dates cannot tell whether it came after
    (engine/removals.py, the one rule the device check weighs removals by too). Whether the implant is a
    replacement or a first implant is then not known."""
    found = _idds_records(record, terminology)
    if not found or any(not unsure for _, _, unsure in found):
        return ""
    return found[0][2]


def _idds_records(record: PatientRecord, terminology: Terminology) -> list[tuple[str, datetime | None, str]]:
    """`idds_in_place`'s records, each with its date (a Device has none) and why it cannot be told to be in
    place still ("" when it can: `removals.weigh`; always for a Device, which stands as written): an active
    pump Device, and a diagnosis or Procedure of the value set that no later removal
    undoes (its `removals`: 62365 undoes an implant dated on an earlier day, a refill, a Z45.1 or a T85
    dated on its own day or before, contract §3's most recent form of one fact; an analysis, 62367/68, is in
    neither list: idds-in-place.yaml)."""
    in_place = terminology["idds-in-place"]
    removals = Removals(
        [
            Read(p.performed, p.precision, c.code, p.source)
            for p in record.procedures
            for c in p.codes
            if c.system == CPT and c.code in in_place.removals
        ],
        record,
    )

    def weighed(
        codes: set[str],
        performed: datetime | None,
        written_to: str,
        by: datetime | None = None,
        by_to: str = "time",
    ) -> Weighed[str]:
        # a removal undoes every one of a record's codes or none (a record also coded with one that no
        # removal undoes still shows the pump, as that code alone would): the removals of its codes weighed
        undoers = frozenset(code for code, undone in in_place.removals.items() if codes <= undone)
        return removals.weigh(_undone(codes, performed, written_to, in_place.replacing, by, by_to), undoers)

    found: list[tuple[str, datetime | None, str]] = [
        (d.source, None, "")
        for d in record.devices
        if in_place.matches_any(d.codes) or in_place.matches_text(d.text)
    ]
    for cond in record.conditions:
        codes = {in_place.listed_key(c) for c in cond.codes if in_place.matches(c)}
        # a Z45.1 or T85 is weighed as a pump Procedure is (the lead's decision, s31, of review31a M2): a
        # removal read after it clears it, one the dates cannot place or one left out leaves it open
        # an onsetPeriod's end alone dates it for the words only (`removals.Undone.by`)
        weighed_by = (cond.date, cond.precision, cond.onset_by, cond.onset_by_to)
        if codes and (removal := weighed(codes, *weighed_by)).removed is None:
            found.append((cond.source, cond.date, removal.unsure))
    for p in sorted(
        record.procedures, key=lambda p: (p.performed is not None, p.performed or 0), reverse=True
    ):
        codes = {in_place.listed_key(c) for c in p.codes if in_place.matches(c)}
        if codes and (removal := weighed(codes, p.performed, p.precision)).removed is None:
            found.append((p.source, p.performed, removal.unsure))
    return found


def _undone(
    codes: set[str],
    performed: datetime | None,
    written_to: str,
    replacing: frozenset[str],
    by: datetime | None = None,
    by_to: str = "time",
) -> Undone:
    """Whether a removal dated so (written to that precision) undoes a record of `codes` dated `performed`
    (`written_to`; `removals.Undone`: not told where either is undated, or written to a month or a year and
    the other's day falls within it): done on a later day or, for a record none of whose codes is an
    implant the value set lists as `replacing`, on the same day; the one rule for a removal read and one
    left out of the record (`PatientRecord.removal_unread`). By the day, not the hour, as forms of one fact
    are weighed (engine/forms): a pump replaced in one session (62362 and 62365 on one day) leaves a pump in
    place whichever was documented first, where a refill, a Z45.1 or a T85 of the removal's day is answered
    by it (on one day a chart contradicting itself claims nothing; review23c). Which day each is on is
    `chart_days.day_order`'s: two moments in different offsets whose own days contradict the order of their
    instants are one day's. A date written to a month or a year (`written_to`, fhirdates.precision) is each
    of its days: a removal dated "2022" may have come before a refill of March 2022 or after it, and one of
    15 February 2021 before or after an implant dated "2021-02", so whether the pump is in place is left
    open (the lead's decision, s32, of review31f L4; before, the removal undid both, review24c). `by`,
    `by_to`: a diagnosis's onsetPeriod end where it has no start (`ConditionFact.onset_by`), for the words
    only (`removals.may_be_later`)."""
    return Undone(performed, written_to, not codes & replacing, by, by_to)


def no_pump_words(record: PatientRecord, terminology: Terminology, on_a_pump: bool) -> str:
    """For an order that acts on a pump already implanted (`on_a_pump`: a refill, an analysis, a pump
    removal, as policies/order-codes.yaml lists them; synthea review s19, L3) when the chart shows none
    in place (contract §2, as `idds_in_place` reads it), and every record that could show one was read:
    the sentence saying so; else ""."""
    if not on_a_pump or any(source in record.unavailable for source in IN_PLACE_SOURCES):
        return ""
    if idds_in_place(record, terminology):
        return ""
    return no_pump_sentence(terminology["idds-in-place"])


def no_pump_sentence(in_place: ValueSet) -> str:
    """What `idds_in_place` looked for, as a card says none was found: written from the value set it
    reads (`idds-in-place`), so the codes a card names are the codes counted. Its CPT and HCPCS codes and
    diagnoses a removal undoes (the implants, refills and Z45.1) show a pump until a later removal,
    the others whatever follows them; its ICD-10-CM codes are the diagnoses."""
    cpt = in_place.codes.get(CPT, frozenset())
    undone = {code for codes in in_place.removals.values() for code in codes}
    procedures = sorted(cpt & undone) + sorted(in_place.codes.get(HCPCS, frozenset()) & undone)
    diagnoses = tuple(key for key in in_place.icd10_prefixes if key in undone)
    kept = tuple(key for key in in_place.icd10_prefixes if key not in undone)
    said = ["no active pump device"]
    removable = [f"pump implant or refill ({_code_runs(procedures)})"] if procedures else []
    if diagnoses:
        removable.append(f"diagnosis ({_diagnoses(diagnoses)})")
    if removable:
        removals = _code_runs(sorted(in_place.removals))
        said.append(f"no {' or '.join(removable)} without a later removal ({removals})")
    if kept:
        said.append(f"no pump or catheter diagnosis ({_diagnoses(kept)})")
    if others := sorted(cpt - undone):
        said.append(f"no earlier pump procedure ({_code_runs(others)})")
    return f"No intrathecal pump is on the chart: {', '.join(said[:-1])} and {said[-1]}."


def _diagnoses(keys: tuple[str, ...], most_named: int = 2) -> str:
    """ICD-10-CM codes by category, in the value set's order; a category of more than `most_named`
    codes as their count and span ("Z45.1, or one of 11 codes T85.610-T85.738"): a card names what it
    looked for without a line of codes."""
    categories: dict[str, list[str]] = {}
    for key in keys:
        categories.setdefault(key[:3], []).append(_dotted(key))
    said = [
        ", ".join(codes)
        if len(codes) <= most_named
        else f"one of {len(codes)} codes {min(codes)}-{max(codes)}"
        for codes in categories.values()
    ]
    return ", or ".join(said)


def _dotted(key: str) -> str:
    """An ICD-10-CM code as written, from its key (`icd10_key`: "Z451" is Z45.1)."""
    return f"{key[:3]}.{key[3:]}" if len(key) > 3 else key


def _code_runs(codes: list[str]) -> str:
    """Numeric codes, in order, a run of three or more consecutive ones as its first and last
    ("62360-62362"; "62369, 62370")."""
    runs: list[list[str]] = []
    for code in codes:
        if runs and code.isdigit() and runs[-1][-1].isdigit() and int(code) == int(runs[-1][-1]) + 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) >= 3 else ", ".join(run) for run in runs)


def in_place_words(record: PatientRecord, terminology: Terminology, most: int = 2) -> str:
    """The first `most` records `idds_in_place` finds, as a card names them, in a clinician's words and
    no resource type's (cards26: "an active Device “…”", "Procedure 62362 on …"): the implanted pump by
    the first of its type and names, a diagnosis and a pump implant or refill by the code that shows the
    pump (`_shown`, `_procedure_words`) and its date: why an implant code reads as a replacement. Chart
    words: the card escapes and bounds them (cards.render.in_place_shown)."""
    in_place = terminology["idds-in-place"]
    named = {
        **{d.source: f"implanted pump “{d.label.split(' | ')[0]}”" for d in record.devices},
        **{
            c.source: _dated(
                f"diagnosis {_code(_shown(c.codes, in_place))}", c.date, "since", c.precision, c.undated_words
            )
            for c in record.conditions
        },
        **{
            p.source: _dated(_procedure_words(p.codes, in_place), p.performed, "on", p.precision)
            for p in record.procedures
        },
    }
    return "; ".join(named[source] for source in idds_in_place(record, terminology)[:most])


def _procedure_words(codes: tuple[Code, ...], in_place: ValueSet) -> str:
    """A procedure showing a pump in place, by what it was and the code it shows it by: an implant of
    the value set's `replacing` ("pump implant 62362"), else one of its other CPT or HCPCS codes, the
    contract's refill procedures (62369, 62370, 95990, 95991: "pump refill 95990"), else a pump
    procedure coded by a diagnosis of the value set."""
    shown = _shown(codes, in_place)
    if implants := [c for c in shown if in_place.listed_key(c) in in_place.replacing]:
        return f"pump implant {implants[0].code}"
    if refills := [c for c in shown if c.system in (CPT, HCPCS)]:
        return f"pump refill {refills[0].code}"
    return f"pump procedure {_code(shown)}"


def _shown(codes: tuple[Code, ...], in_place: ValueSet) -> tuple[Code, ...]:
    """The codes of a record that show the pump in place (the value set's), else all of them: a record is
    named by what makes it one, not by its first coding ("diagnosis 1234567", a SNOMED CT concept id
    before its Z45.1, review26a)."""
    return tuple(c for c in codes if in_place.matches(c)) or codes


def _code(codes: tuple[Code, ...]) -> str:
    return codes[0].code if codes else "(uncoded)"


def _dated(
    words: str, when: datetime | None, preposition: str, written_to: str, undated: str = "undated"
) -> str:
    """`words` and when, no finer than the chart writes it ("on 1 Mar 2022", "in March 2022", "since
    2021"): a date written to a month or a year names no day (review24c LOW 4); none, "(undated)", as the
    device check says it (review31a L3: "a pump may be in place: pump implant 62362" hid that the dates are
    why a removal could not be placed), or a diagnosis's `undated` words ("(onset at age 60, no date)":
    `ConditionFact.undated_words`, review31f L1)."""
    if when is None:
        return f"{words} ({undated})"
    said = "in" if preposition == "on" and written_to in SPANS else preposition
    return f"{words} {said} {human_date_to(when, written_to)}"


ALWAYS = datetime.min.replace(tzinfo=UTC)  # `intrathecal_since` of a pump no record dates


def intrathecal_since(record: PatientRecord, terminology: Terminology) -> datetime | None:
    """When the patient with a pump in place (`idds_in_place`) is known to have been on intrathecal
    therapy: the earliest date of the records showing the pump and of the intrathecal baclofen orders
    and statements; ALWAYS when none of them is dated (no score can be shown to be from before it).
    None: no pump in place. A score from then on measures the therapy, not the patient's baseline."""
    pump = _idds_records(record, terminology)
    if not pump:
        return None
    baclofen = terminology["antispasmodic-infusates"]
    dates = [when for _, when, _ in pump if when is not None]
    dates += [
        m.start
        for m in record.medications
        if m.neuraxial and m.start is not None and baclofen.holds_drug(m.ingredients, m.codes)
    ]
    return min(dates, default=ALWAYS)


IMPLANT_KINDS = frozenset({"permanent-implant", "replacement"})


def final_request_kind(base_kind: str, episode_kinds: frozenset[str], in_place: bool) -> str:
    """criteria-and-codes.md §4.2: an implant is a replacement when a pump is in place (`in_place`:
    `idds_in_place` found one); a catheter ordered with a pump is part of that implant, and alone
    with a pump in place a revision."""
    if base_kind == "permanent-implant":
        return "replacement" if in_place else base_kind
    if base_kind == "catheter":
        if episode_kinds & IMPLANT_KINDS:
            return "replacement" if in_place else "permanent-implant"
        return "replacement" if revision(base_kind, episode_kinds, in_place) else "catheter"
    return base_kind


def revision(base_kind: str, episode_kinds: frozenset[str], in_place: bool) -> bool:
    """criteria-and-codes.md §4.2: whether the order is a revision judged as a replacement without being
    one: a catheter alone with a pump in place (with an implant it is part of that replacement)."""
    return base_kind == "catheter" and in_place and not episode_kinds & IMPLANT_KINDS
