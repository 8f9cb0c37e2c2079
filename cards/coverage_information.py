"""The Da Vinci CRD coverage-information system action, rendered from Determinations.

One `update` action per resource that carries coverage information (every order in scope, and on
appointment-book each booked Appointment), carrying the complete resource with one
`ext-coverage-information` repetition per active Coverage added (existing extensions kept). An
Appointment judged under the order it is based on repeats that order's assertion, with its
assertion id and PA number (one service, one assertion: the claim carries one, CRD §resp-31). An
assertion's id and PA number name it: the hook, hookInstance and resource of the call that issued it
and what it asserts (`assertion_ids`), so a retry gets them again and nothing else does. An
order no policy here addresses gets an honest "no rules here" assertion (conditional, never
covered or not-covered); every resource of a call whose one Coverage is not active is `not-covered`
for it, CRD 2.2's reason `no-active-coverage` (2.0.1: its words alone). Unless the call asked for
CRD 2.2, only content valid under both CRD 2.0.1 and 2.2 is emitted (digest §6.3): `pa-needed`
whenever `covered` is not `not-covered`,
`info-needed` exactly when something is `conditional`, a `reason` whenever `doc-purpose` is
present, and no 2.2-only codes; a 2.2 call whose determination could not be made because the
EHR's data could not be read gets 2.2's `indeterminate` with reason `technical`, and a 2.2 call's
assertion that rests on a policy's criteria names it in a `detail` coded `policy-link` whose value
is this service's page of the policy (2.0.1 has no such code, no detail category, no url value).
An order that meets the policy of a payer configured for automatic approval gets
`pa-needed=satisfied` and a PA number, unless the call forbids unsolicited determinations (CRD
"what-if" calls set the `unsolicited-determ` option to false), or the assertion names no billing
code to bound it (the pump's drug: CRD §resp-30, qualifiers SHALL be part of the annotation).
Pure: dicts in, dicts out.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import Any

import orjson

from cards import items
from cards.items import Item, Step
from service.codes import CANONICAL_SYSTEM, Code
from service.engine.model import Determination, Outcome, Status
from service.record import dates_cannot_tell
from service.references import local_reference
from service.shapes import dicts, reference_target
from service.strict_json import DecimalText
from service.wording import aside

EXTENSION_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
ASSERTION_NAMESPACE = uuid.UUID("6b1f8a52-6c4e-4f0e-9a8e-2f6b8f6f1d10")
REASON_LIMIT = 3
CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
POLICY_LINK = {"system": CRD_TEMP, "code": "policy-link", "display": "Policy Link"}  # CRD 2.2's temp code
PA_PREFIX = "IDDS-"  # of the PA numbers this service issues (any other is another's approval)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # a repetition's date as `_asserted` writes it


@dataclass(frozen=True)
class CoverageJudgement:
    """What one Coverage's payer says about one resource: a Determination, or none, with
    `undecided` saying why there is none (no rules here for the payer, or for the order's code)."""

    coverage: str
    payer: str
    determination: Determination | None = None
    questionnaire: str | None = None  # canonical of the documentation form, asked for with doc-needed
    auto_approve: bool = False  # the payer approves what meets its policy and the call allows it
    dtr: bool = True  # the payer gathers documentation with DTR (doc-needed sends the EHR there)
    undecided: str = "this service holds no intrathecal pump coverage rules for this payer"
    policy_page: str | None = None  # this service's page of the determination's policy
    technical: bool = False  # (undecided) because the EHR's FHIR server failed: CRD 2.2 §resp-43
    inactive: str | None = None  # why the Coverage is not active: not covered, whatever was ordered


@dataclass(frozen=True)
class Detail:
    """A CRD 2.2 `detail` of an assertion: its category (coverage-information-codes), its code, a URL
    value and the words that qualify it."""

    category: str
    code: Mapping[str, str]
    url: str
    qualification: str


@dataclass(frozen=True)
class CoverageTarget:
    """A resource that gets coverage information, and the billing code its assertions are about.
    `of_order`: the order whose assertions it repeats (an Appointment judged under the order it is
    based on): one service, one assertion, so the order's assertion id and PA number."""

    reference: str
    resource: Mapping[str, Any]
    billing: Code | None
    judgements: tuple[CoverageJudgement, ...]
    of_order: CoverageTarget | None = None
    # False for a resource this service never judges (the hook's Encounter): what it carries for a
    # Coverage stands, whoever said it, unless the Coverage is known not active (`_kept_whatever_judged`)
    judged: bool = True


@dataclass(frozen=True)
class AssertionRules:
    """What the call allows an assertion to say: the hook's permissions and the CRD version; and the
    call's FHIR server, whose Coverages its assertions are about (a repetition naming another server's
    Coverage, whatever its id, is not this call's to replace)."""

    asks_documentation: bool  # primary hooks may ask for documentation (never order-select, §hook-19)
    crd_version: str = "2.0"
    may_approve: bool = False  # the call may carry an automatic approval (a primary hook, not a what-if)
    fhir_server: str | None = None  # the call's fhirServer (None: any absolute reference is its own)

    @property
    def indeterminate(self) -> bool:
        """CRD 2.2's `indeterminate` (with reason `technical`) may be used."""
        return self.crd_version == "2.2"

    @property
    def reason_codes(self) -> bool:
        """CRD 2.2's coverage assertion reason codes (`no-active-coverage`) may be sent; 2.0.1's value
        set has none of them, so its reason is the text alone."""
        return self.crd_version == "2.2"

    @property
    def policy_link(self) -> bool:
        """A `detail` coded `policy-link` (category `cat-other`, `valueUrl`) may be sent: CRD 2.2 only.
        In 2.0.1 the temp CodeSystem (content complete) and the detail code value set have no
        `policy-link`, a detail has no `category` and its value no `url` type."""
        return self.crd_version == "2.2"


@dataclass(frozen=True)
class HookCall:
    """The call that issues assertions: its hook and hookInstance (a retry has both the same).

    `made` holds the ids `assertion_ids` made for this call, by resource and what is asserted, so each
    is derived once. `issued` holds, by assertion id, each assertion `coverage_extension` built in this
    call (`Issued`): what the call issued is what it built, and nothing else (`built_for`, `issued_in`:
    in the actions, for the cards' approvals and in the audit record). An id alone cannot say so: it is
    derived from what the call's body says (hook, hookInstance, resource, content) under a namespace
    in the public source, so a caller can send, on its order, a repetition under the very id this call
    would give it (review32d H1: a forged approval recorded and exported as the service's own). It
    lives as long as the object, which each answer makes for itself: nothing is kept between calls."""

    hook: str
    hook_instance: str
    made: dict[tuple[str, bytes], AssertionIds] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    issued: dict[str, Issued] = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Issued:
    """An assertion a call built (`coverage_extension`): the resource it was built for, and the
    repetition as built, what the answer sends (`pinned`: the repetition but its date's value, as
    `_pinned` writes it, written only when another repetition is compared with it)."""

    reference: str
    extension: Mapping[str, Any] = field(compare=False)

    @cached_property
    def pinned(self) -> bytes | None:
        return _pinned(self.extension)


@dataclass(frozen=True)
class AssertionIds:
    """What names an assertion: its coverage-assertion-id and, were it an approval, its PA number."""

    assertion_id: str
    pa_number: str  # short enough for an X12 837 REF


@dataclass(frozen=True)
class HeldApproval:
    """An approval an order holds for one Coverage once an answer is applied: its PA number ("" for
    none), and whether the answer's call issued it (else the order came carrying it)."""

    number: str
    issued: bool


# what a repetition holds besides what it asserts: when it was made (a retry on the next day asserts
# the same), the ids themselves, and where the policy is read (a detail follows the call's CRD
# version and the address it was called at): what differs between calls that judge the same
_NOT_JUDGED = ("date", "coverage-assertion-id", "satisfied-pa-id", "detail")


def assertion_ids(call: HookCall, reference: str, subs: Any) -> AssertionIds:
    """The ids of the assertion whose sub-extensions are `subs`, on the resource `reference`, issued
    in `call`: named by the hook, the hookInstance, the resource and what it asserts (every
    sub-extension but the date, the ids and the policy-link detail: its Coverage, so distinct across
    Coverages, its codes, reason, billing code and form). A retry (the same hook, hookInstance and
    content) gets the same ids, on any day; a call of another hook, or one under the same
    hookInstance judging otherwise (a body edited, the chart changed), gets its own: one id never
    names two assertions (inferno review I-2). Anyone can derive them (the namespace is public): what
    a call issued is what it built (`HookCall.issued`), not what holds the id it would give."""
    said = b"\n".join(sorted(_written(sub) for sub in dicts(subs) if sub.get("url") not in _NOT_JUDGED))
    made = call.made.get((reference, said))
    if made is not None:
        return made
    content = hashlib.sha256(said).hexdigest()
    name = f"{call.hook}|{call.hook_instance}|{reference}|{content}"
    number = _uuid5_hex(f"pa|{name}")
    whole = _uuid5_hex(name)
    assertion_id = f"{whole[:8]}-{whole[8:12]}-{whole[12:16]}-{whole[16:20]}-{whole[20:]}"
    made = call.made[(reference, said)] = AssertionIds(assertion_id, PA_PREFIX + number[:16].upper())
    return made


_NAMESPACE_BYTES = ASSERTION_NAMESPACE.bytes


def _uuid5_hex(name: str) -> str:
    """`uuid.uuid5(ASSERTION_NAMESPACE, name).hex` (RFC 4122: the name's SHA-1 under the namespace, its
    version and variant bits set) without building a `uuid.UUID`, whose checks cost several times the
    digest: a call makes the ids of each assertion it builds, a dozen for demo-meets's order-sign."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return digest.hex()


def _written(sub: Mapping[str, Any]) -> bytes:
    """One sub-extension as the text its assertion's digest reads: keys sorted, a decimal as written
    (orjson, a call's few dozen of these costing what one `json` writing did); what orjson will not
    write (an integer past 64 bits, in what an EHR sent back) as `json` writes it."""
    try:
        return orjson.dumps(sub, default=_as_text, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(sub, sort_keys=True, separators=(",", ":"), default=str).encode()


def _as_text(value: Any) -> Any:
    return orjson.Fragment(value.text) if type(value) is DecimalText else str(value)


_BUILT_KEYS = frozenset(("url", "extension"))  # of a repetition `coverage_extension` builds
_DATE_KEYS = frozenset(("url", "valueDate"))  # of its one `date` (`_sub`)
_UNDATED = {"url": "date"}  # its date as `_pinned` writes it: whatever day it was made


def _pinned(extension: Mapping[str, Any]) -> bytes | None:
    """A repetition as `built_for` compares it with one a call built: its url, then its sub-extensions
    as `assertion_ids` writes them, sorted, its ids, PA number and policy-link detail included, each as
    often as sent; of its date, not the day: the same assertion, kept by a retry of the call on another
    day (an order carrying it again), was made then. None when it holds what a repetition the call
    builds never does, which no date stands for: a key beside `url` and `extension`, an item of
    `extension` that is no object, a `date` that is not one `valueDate` of a day (YYYY-MM-DD): such a
    one was not built by the call, whatever else it says (a second `date`, or text for it, was left out
    of the comparison, and kept whole in the row as the call's own: review32f)."""
    subs = extension.get("extension")
    if extension.keys() != _BUILT_KEYS or not isinstance(subs, list):
        return None
    written = []
    for sub in subs:
        if not isinstance(sub, dict):
            return None
        if sub.get("url") == "date":
            day = sub.get("valueDate")
            if sub.keys() != _DATE_KEYS or not isinstance(day, str) or _DAY.fullmatch(day) is None:
                return None
            sub = _UNDATED
        written.append(_written(sub))
    return b"\n".join([_written({"url": extension["url"]}), *sorted(written)])


def _issue(call: HookCall, reference: str, extension: Mapping[str, Any], assertion_id: str) -> None:
    """Keep the repetition `extension`, built by `call` for the resource `reference`, as one it issued."""
    call.issued[assertion_id] = Issued(reference, extension)


def built_for(call: HookCall, extension: Mapping[str, Any]) -> str | None:
    """The resource for which `call` built the repetition `extension` (`coverage_extension`), or None
    when it built none such: its assertion id is one the call made for an assertion it built, and it
    says exactly what that one says, with the same ids and PA number, each once, whatever its date
    (`_pinned`). Not one a resource came with that holds what the call would build, under the id the
    call gives it, with another PA number or an extra sub-extension, nor one holding a number where
    the call issued none (the id is computable by anyone: `HookCall`, review32d H1), nor one padded
    with what no date stands for (a second date, text for it, another key: `_pinned`)."""
    built = call.issued.get(_string_of(extension, "coverage-assertion-id") or "")
    if built is None:
        return None
    if extension is built.extension:  # the very one built, as the answer sends it: nothing to write
        return built.reference
    pinned = _pinned(extension)
    return built.reference if pinned is not None and pinned == built.pinned else None


def issued_in(call: HookCall, reference: str, extension: Mapping[str, Any]) -> bool:
    """Whether the repetition `extension` on the resource `reference` is an assertion `call` issued:
    one it built for that resource (`built_for`). One the resource came with (an earlier call's,
    another's, one under the id this call would give it: review32d H1) or repeats (an Appointment its
    order's, with the order's ids) is not."""
    return built_for(call, extension) == reference


def _named(found: tuple[Item, ...]) -> str:
    """The criteria themselves (plain words and policy section), the first REASON_LIMIT of them."""
    more = len(found) - REASON_LIMIT
    return "; ".join(i.reason for i in found[:REASON_LIMIT]) + (f"; and {more} more" if more > 0 else "")


def _failed(determination: Determination) -> str:
    return _named(items.failing(determination)) or determination.explanation


def _missing(determination: Determination) -> str:
    """The criteria to document, then apart those the chart records for the payer's reviewer."""
    found = items.missing(determination)
    to_document, for_reviewer = items.apart(found)
    if to_document and for_reviewer:
        return f"{_named(to_document)}; left to the payer's reviewer: {_named(for_reviewer)}"
    return _named(found) or determination.explanation


def _technical(determination: Determination) -> bool:
    """Whether the determination is open because the EHR's data could not be read: not for a removal read
    that the dates cannot place (`dates_cannot_tell`), where every record was (review31a)."""
    return any(
        leaf.unchecked_reason
        and leaf.status == Status.NOT_DOCUMENTED
        and not dates_cannot_tell(leaf.unchecked_reason)
        for c in determination.criteria
        for leaf in c.leaves()
    )


def _technical_reason(text: str) -> dict[str, Any]:
    """CRD 2.2's reason for an assertion a technical failure left open (§resp-43, q9)."""
    return {"coding": [{"system": CRD_TEMP, "code": "technical"}], "text": text}


def _undecided(text: str, technical: bool = False) -> tuple[list[tuple[str, Any]], str]:
    """No determination here: coverage and PA depend on the payer's own review. `technical` (CRD 2.2
    only): none could be made because the EHR's FHIR server failed, which §resp-43 answers with
    `indeterminate` and reason `technical` (2.0.1 has neither: conditional + OTH + the text there)."""
    if technical:
        return [
            ("covered", "indeterminate"),
            ("pa-needed", "indeterminate"),
            ("reason", _technical_reason(text)),
        ], text
    return [
        ("covered", "conditional"),
        ("pa-needed", "conditional"),
        ("info-needed", "OTH"),
        ("reason", text),
    ], text


def _not_active(payer: str, why: str, rules: AssertionRules) -> tuple[list[tuple[str, Any]], str]:
    """The Coverage is not active (`why`: "ended 2024-12-31", "cancelled"): `not-covered`, with CRD
    2.2's reason `no-active-coverage` ("the referenced insurance coverage for the member is not
    active, so no coverage information can be provided"); in 2.0.1 the same words as the reason's
    text alone (§6.7; inferno review s18 K-1)."""
    text = f"{payer}: the patient's coverage is not active ({why}), so no coverage information can be given"
    reason: Any = {"coding": [{"system": CRD_TEMP, "code": "no-active-coverage"}], "text": text}
    return [("covered", "not-covered"), ("reason", reason if rules.reason_codes else text)], text


def _policy_link(judgement: CoverageJudgement, rules: AssertionRules) -> list[tuple[str, Any]]:
    """The `detail` naming the policy whose criteria an assertion rests on, and where to read it as
    this service checks it (CRD 2.2 only; none without a determination or the policy's page)."""
    d = judgement.determination
    if d is None or judgement.policy_page is None or not rules.policy_link:
        return []
    words = f"{d.payer} policy as checked: {d.policy_title} {aside(d.policy_version)}"
    return [("detail", Detail("cat-other", POLICY_LINK, judgement.policy_page, words))]


def _assertion(
    judgement: CoverageJudgement, rules: AssertionRules, pa_number: str, billed: bool
) -> tuple[list[tuple[str, Any]], str]:
    """(sub-extension url, value) pairs beyond the common ones, and a one-line description. A PA
    number is issued only for an assertion bounded by its billing code (`billed`). An assertion made
    under a policy's criteria links the policy; one of no rules here, of a policy that does not
    address the order, or `indeterminate` (nothing decided: the EHR's data could not be read) does not."""
    if judgement.inactive is not None:
        return _not_active(judgement.payer, judgement.inactive, rules)
    d = judgement.determination
    if d is None:
        return _undecided(
            f"{judgement.payer}: {judgement.undecided}", rules.indeterminate and judgement.technical
        )
    link = _policy_link(judgement, rules)
    if d.outcome == Outcome.MEETS and judgement.auto_approve and billed:
        return [("covered", "covered"), ("pa-needed", "satisfied"), ("satisfied-pa-id", pa_number), *link], (
            f"{d.payer}: meets {d.policy_title}; prior authorization satisfied, number {pa_number}"
        )
    if d.outcome == Outcome.MEETS:
        return [("covered", "covered"), ("pa-needed", "auth-needed"), *link], (
            f"{d.payer}: meets {d.policy_title}; prior authorization needed"
        )
    if d.outcome == Outcome.DOES_NOT_MEET:
        text = f"{d.payer}: not covered under {d.policy_title} - not met: {_failed(d)}"
        return [("covered", "not-covered"), ("reason", text), *link], text
    if d.outcome == Outcome.INSUFFICIENT:
        technical = rules.indeterminate and _technical(d)
        if technical:
            text = f"{d.payer}: undecided under {d.policy_title} - the EHR's data could not be read"
            pairs: list[tuple[str, Any]] = [("covered", "indeterminate"), ("pa-needed", "auth-needed")]
        else:
            needed = (
                "left to the payer's reviewer under"
                if items.open_only(d, Step.REVIEW)
                else f"not checked, {items.DATES_UNPLACED}, under"
                if items.dates_unplaced(items.missing(d))
                else "not checked, the EHR's data could not be read, under"
                if items.open_only(d, Step.RECHECK)
                else "documentation needed for"
            )
            text = f"{d.payer}: {needed} {d.policy_title} - {_missing(d)}"
            by_default = bool(d.kind_unread) or not d.indication_evident  # engine/evaluate.py
            if by_default and (failing := items.failing(d)):
                text += f"; not met under the criteria judged by default: {_named(failing)}"
            pairs = [("covered", "conditional"), ("pa-needed", "auth-needed"), ("info-needed", "OTH")]
        # CRD §hook-19: never on secondary hooks; doc-needed launches DTR, so not for payers without it,
        # and only with the form that asks what the cards ask to document (§resp-38): never to retype
        # what the chart holds but could not be read this time (§resp-39), nor for what is left to the
        # payer's reviewer, nor with no form (DTR would pick its own)
        if rules.asks_documentation and judgement.dtr and judgement.questionnaire:
            pairs += [("doc-needed", "clinical"), ("doc-purpose", "withpa")]
            pairs.append(("questionnaire", judgement.questionnaire))
        reason = _technical_reason(text) if technical else text
        return [*pairs, ("reason", reason), *([] if technical else link)], text
    return _undecided(f"{d.payer}: {d.explanation}")


def _sub(url: str, value: Any) -> dict[str, Any]:
    if url == "coverage":
        return {"url": url, "valueReference": {"reference": value}}
    if url == "billingCode":
        return {"url": url, "valueCoding": value}
    if url == "reason":
        return {"url": url, "valueCodeableConcept": value if isinstance(value, dict) else {"text": value}}
    if url == "questionnaire":
        return {"url": url, "valueCanonical": value}
    if url == "date":
        return {"url": url, "valueDate": value}
    if url in ("coverage-assertion-id", "satisfied-pa-id"):
        return {"url": url, "valueString": value}
    if url == "detail":
        return {
            "url": url,
            "extension": [
                {"url": "category", "valueCode": value.category},
                {"url": "code", "valueCodeableConcept": {"coding": [dict(value.code)]}},
                {"url": "value", "valueUrl": value.url},
                {"url": "qualification", "valueString": value.qualification},
            ],
        }
    return {"url": url, "valueCode": value}


def coverage_extension(
    judgement: CoverageJudgement,
    target: CoverageTarget,
    rules: AssertionRules,
    call: HookCall,
    today: date,
) -> tuple[dict[str, Any], str]:
    """One Coverage's repetition on the target, and a one-line description. Its assertion id and PA
    number are made here, from the call, the target and what it asserts (`assertion_ids`); a target
    repeating an order's assertion (`of_order`) gets the repetition the order carries once this answer
    is applied (`_on_order`), in this call's CRD version; but when the order keeps what this call may
    not say (an approval, to a what-if call), this call's own judgement."""
    billed = target.billing is not None
    pairs, description = _assertion(judgement, rules, "", billed)  # the PA number: of what it asserts
    subs = _asserted(judgement, target, pairs, today)
    ids = assertion_ids(call, target.reference, subs)
    if any(url == "satisfied-pa-id" for url, _ in pairs):  # an approval, under its number
        pairs, description = _assertion(judgement, rules, ids.pa_number, billed)
        subs = _asserted(judgement, target, pairs, today)
    subs.append(_sub("coverage-assertion-id", ids.assertion_id))
    extension = {"url": EXTENSION_URL, "extension": subs}
    _issue(call, target.reference, extension, ids.assertion_id)
    if target.of_order is None:
        return extension, description
    carried = _on_order(judgement, target.of_order, rules, call, today)
    if carried is None:  # the order is not annotated for this Coverage: nothing to repeat
        return extension, description
    repeated = _in_version(carried, rules)
    if repeated is None:  # what the order carries, this call's version cannot say: its own judgement
        return extension, description
    if _assertion_content(carried) != _assertion_content(extension):  # the order keeps an earlier one
        if _not_restatable(carried, rules) is not None:  # not to be said again here: its own judgement
            return extension, description
        if (why := _kept_whatever_judged(carried, rules, judgement)) is not None:
            return repeated, f"{judgement.payer}: earlier coverage information kept ({why})"
        return repeated, f"{judgement.payer}: as {target.of_order.reference} carries it"
    number = _string_of(carried, "satisfied-pa-id") or ids.pa_number
    return repeated, _assertion(judgement, rules, number, billed)[1]


def _asserted(
    judgement: CoverageJudgement, target: CoverageTarget, pairs: list[tuple[str, Any]], today: date
) -> list[dict[str, Any]]:
    """A repetition's sub-extensions but its assertion id: the Coverage, what `_assertion` says, the
    billing code and the date."""
    subs = [_sub("coverage", judgement.coverage)]
    subs += [_sub(url, value) for url, value in pairs]
    if target.billing is not None:
        system = CANONICAL_SYSTEM[target.billing.system]
        subs.append(_sub("billingCode", {"system": system, "code": target.billing.code}))
    subs.append(_sub("date", today.isoformat()))
    return subs


def _on_order(
    judgement: CoverageJudgement,
    order: CoverageTarget,
    rules: AssertionRules,
    call: HookCall,
    today: date,
) -> dict[str, Any] | None:
    """The order's repetition for the judgement's Coverage once this answer is applied, by the rule
    `coverage_actions` applies to the order itself: this call's assertion, or the one the order keeps
    (the same assertion from an earlier call, with its ids and PA number, or an approval issued
    elsewhere). An Appointment judged under the order repeats it: one service, one assertion."""
    actions = coverage_actions([replace(order, judgements=(judgement,))], rules, call, today)
    carried = _repetition(actions[0]["resource"] if actions else order.resource, judgement.coverage, rules)
    return _copied(carried) if carried is not None else None  # never an object of the request


def coverage_named(subs: Any) -> str | None:
    """The reference a coverage-information repetition's sub-extensions `subs` name its Coverage by, as
    written: the first `coverage` whose `valueReference` holds one. Wherever a repetition's Coverage is
    read, it is read here: the answer took a repetition with two for the first's, the audit row for the
    last's (review32d H1, case E: an approval kept as another Coverage's was recorded as the judged one's)."""
    for sub in dicts(subs):
        if sub.get("url") == "coverage" and (ref := reference_target(sub.get("valueReference"))):
            return ref
    return None


def _coverage_of(extension: Mapping[str, Any], rules: AssertionRules) -> str | None:
    """`Coverage/id` of a repetition (`coverage_named`), however the reference was written (absolute,
    versioned); None when it names another server's Coverage (service/references.py, `local_reference`)."""
    ref = coverage_named(extension.get("extension"))
    return local_reference(ref, rules.fhir_server) if ref is not None else None


_DOCUMENTATION_REQUEST = ("doc-needed", "doc-purpose", "questionnaire")  # what only a primary hook asks


def _repetition(resource: Mapping[str, Any], coverage: str, rules: AssertionRules) -> dict[str, Any] | None:
    """The resource's coverage-information repetition for `coverage` (`Coverage/id`), if any."""
    return next(
        (
            e
            for e in dicts(resource.get("extension"))
            if e.get("url") == EXTENSION_URL and _coverage_of(e, rules) == coverage
        ),
        None,
    )


def _string_of(extension: Mapping[str, Any], url: str) -> str | None:
    """The `valueString` of a repetition's sub-extension `url` (an assertion id, a PA number)."""
    value = next(
        (s.get("valueString") for s in dicts(extension.get("extension")) if s.get("url") == url), None
    )
    return value if isinstance(value, str) else None


def _kept_whatever_judged(
    extension: Mapping[str, Any], rules: AssertionRules, judgement: CoverageJudgement, judged: bool = True
) -> str | None:
    """Why an earlier assertion stands whatever this call judges, or None when the call may replace it:
    an approval issued elsewhere is never taken back; a call cannot restate what it may not say
    (`_not_restatable`); a call that decided nothing does not take back what an earlier one
    decided (`_decided_nothing`); and on a resource this service does not judge (`judged` false: the hook's
    Encounter, where it says only that it holds no rules) any earlier assertion stands: another source's
    answer for the Coverage is the one that says something, and replacing it changes what the EHR holds
    (§resp-37); beside it, a second repetition for one Coverage under another id would be two assertions
    for it, which CRD 2.0.1 forbids (review29a L2). But an assertion for a Coverage the call knows is
    not active (`judgement.inactive`: ended, cancelled) never stands, whoever issued it: every hook answers
    `not-covered` for it (replacing an approval is taking it back, not restating it), as an approval,
    this service's or another's, is one under a plan that no longer covers the patient (session
    review s18 R-1)."""
    if judgement.inactive is not None:
        return None
    if not judged:
        return "the encounter keeps the coverage information it carries, which this service does not judge"
    number = _string_of(extension, "satisfied-pa-id")
    if number is not None and not number.startswith(PA_PREFIX):
        return f"prior authorization {number} issued elsewhere"
    if (why := _not_restatable(extension, rules)) is not None:
        return why
    if _decided_nothing(judgement, covered=_code_of(extension, "covered") == "covered"):
        return "this call could not read the EHR's data to judge it again"
    return None


def _taken_back(before: Mapping[str, Any] | None, judgement: CoverageJudgement) -> str:
    """What the description of an assertion for a Coverage that is not active adds when it replaces an
    approval the order carried (this service's or another's): that approval no longer stands."""
    number = _approval(before) if before is not None and judgement.inactive is not None else None
    if number is None:
        return ""
    return f"; replaces the approval it carried (prior authorization {number or 'satisfied'})"


def _code_of(extension: Mapping[str, Any], url: str) -> str | None:
    """The `valueCode` of a repetition's sub-extension `url` (what `covered` says)."""
    return next((s.get("valueCode") for s in dicts(extension.get("extension")) if s.get("url") == url), None)


def _decided_nothing(judgement: CoverageJudgement, covered: bool) -> bool:
    """Whether a call decided nothing about an earlier assertion (`covered`: one that the order is
    covered, an approval or not): it could not read the order or its Device (nothing was judged);
    no criterion was judged on data it read, every one left open by data not at hand this time (a
    search failed or timed out: `items.read_nothing`; ehr review s17, H-1); or, for a `covered`, all
    it lacks is such data (`items.open_for_now`: an order that "could not be checked" has not stopped
    meeting its policy, session review s37, S37-2). A gap the call did read (the trial gone from the
    chart) is a judgement, as is any other earlier assertion's basis read again (s38, S38-1), and so
    are records read but left out as unreadable or modified: calling again reads the same, they are
    the chart as it is."""
    d = judgement.determination
    if judgement.technical or d is None:
        return judgement.technical
    return items.read_nothing(d) or (covered and items.open_for_now(d))


def _approval(extension: Mapping[str, Any]) -> str | None:
    """The PA number of the approval a repetition asserts (`pa-needed` satisfied, or a
    `satisfied-pa-id`): "" for one without a number; None when it asserts none."""
    number = _string_of(extension, "satisfied-pa-id")
    satisfied = any(
        s.get("url") == "pa-needed" and s.get("valueCode") == "satisfied"
        for s in dicts(extension.get("extension"))
    )
    return number if number is not None else "" if satisfied else None


def approval_held(
    resource: Mapping[str, Any], reference: str, coverage: str, rules: AssertionRules, call: HookCall
) -> HeldApproval | None:
    """The approval the resource `reference` holds for `coverage` (`Coverage/id`), as `resource` is once
    the answer of `call` is applied (its `update` action's resource, else the resource as it came:
    an assertion kept is not sent again); None when it holds none. The cards read this, so they say
    what the coverage information says: an approval the order keeps is still an approval, whether or
    not this call may issue one (review s16 review2 F-3)."""
    repetition = _repetition(resource, coverage, rules)
    number = _approval(repetition) if repetition is not None else None
    if repetition is None or number is None:
        return None
    return HeldApproval(number, issued_in(call, reference, repetition))


def _not_restatable(extension: Mapping[str, Any], rules: AssertionRules) -> str | None:
    """What of an assertion a call may not say (service/registry.py, HookBehaviour), and so neither
    replace nor repeat: an approval when it may not approve, a request for documentation when it may
    not ask for any; None when it may say it all."""
    subs = dicts(extension.get("extension"))
    number = _approval(extension)
    if number is not None and not rules.may_approve:
        return f"prior authorization {number or 'satisfied'}, which this call may not restate"
    if not rules.asks_documentation and any(s.get("url") in _DOCUMENTATION_REQUEST for s in subs):
        return "its request for documentation, which this call may not restate"
    return None


def _unchanged(before: Mapping[str, Any], extension: Mapping[str, Any], own: bool) -> bool:
    """Whether the repetition a resource carries already says what this call would: the same content,
    and, where this call repeats another resource's assertion (an Appointment its order's; `own`:
    `extension` is this call's assertion on the resource), under that assertion's ids. An Appointment
    annotated with its own ids before it repeated its order's gets the order's (session review s37,
    S37-7)."""
    if _assertion_content(before) != _assertion_content(extension):
        return False
    ids = ("coverage-assertion-id", "satisfied-pa-id")
    return own or all(_string_of(before, url) == _string_of(extension, url) for url in ids)


def _assertion_content(extension: Mapping[str, Any]) -> list[Any]:
    return [s for s in dicts(extension.get("extension")) if s.get("url") not in _NOT_JUDGED]


def _in_version(extension: dict[str, Any], rules: AssertionRules) -> dict[str, Any] | None:
    """A repetition restated in this call's answer, without what its CRD version cannot carry (a 2.2
    policy-link detail in a 2.0 answer); None when what it says cannot be said in that version (2.2's
    `indeterminate`)."""
    subs = dicts(extension.get("extension"))
    if not rules.indeterminate and any(s.get("valueCode") == "indeterminate" for s in subs):
        return None
    if rules.policy_link:
        return extension
    return {**extension, "extension": [s for s in subs if s.get("url") != "detail"]}


def _copied(value: Any) -> Any:
    """A copy of a JSON value, so the answer never shares an object with the request; what JSON does
    not hold (never in a parsed order) is deep-copied."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if value is None or isinstance(value, str | int | float):  # bool too
        return value
    return copy.deepcopy(value)


def coverage_actions(
    targets: Iterable[CoverageTarget], rules: AssertionRules, call: HookCall, today: date
) -> list[dict[str, Any]]:
    """One `update` system action per target with at least one judged Coverage whose assertion is
    new or changed (CRD §resp-35). A resource that already carries an assertion for a Coverage
    (from an earlier hook) gets it replaced, so each Coverage has one repetition; an unchanged one
    is kept as it was, with its assertion id and any PA number, and so is one this call may not
    replace (`_kept_whatever_judged`)."""
    actions = []
    for target in targets:
        per_coverage = target.judgements
        if not per_coverage:
            continue
        resource = _copied(dict(target.resource))
        existing = dicts(resource.get("extension"))
        earlier = {_coverage_of(e, rules): e for e in existing if e.get("url") == EXTENSION_URL}
        judged = {j.coverage for j in per_coverage}
        added, descriptions, changed = [], [], False
        for judgement in per_coverage:
            extension, description = coverage_extension(judgement, target, rules, call, today)
            before = earlier.get(judgement.coverage)
            kept = None if before is None else _kept_whatever_judged(before, rules, judgement, target.judged)
            own = issued_in(call, target.reference, extension)
            if before is not None and (kept is not None or _unchanged(before, extension, own)):
                if kept is not None and _assertion_content(before) != _assertion_content(extension):
                    description = f"{judgement.payer}: earlier coverage information kept ({kept})"
                extension = before
            else:
                changed = True
                description += _taken_back(before, judgement)
            added.append(extension)
            descriptions.append(description)
        if not changed:
            continue
        listed = resource.get("extension")  # an order from prefetch or the server may hold what is not
        kept = [  # an extension: it goes back as it came (a draft order's is refused: hooks/models.py)
            e
            for e in (listed if isinstance(listed, list) else [])
            if not isinstance(e, dict)
            or e.get("url") != EXTENSION_URL
            or _coverage_of(e, rules) not in judged
        ]
        resource["extension"] = kept + added
        actions.append(
            {
                "type": "update",
                "description": f"Coverage information for {target.reference}: " + " | ".join(descriptions),
                "resource": resource,
            }
        )
    return actions
