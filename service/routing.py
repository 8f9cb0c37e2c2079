"""Payer routing: which policy judges an order for each of the patient's active Coverages.

Follows clinical-data-contract.md §6: `Coverage.payor` → Organization (contained, an entry of the
request's Bundles by its `urn:uuid:` fullUrl, fetched, or only the reference's identifier/display)
→ its identifiers first, then its name, looked up in `policies/payers.yaml` (when a payor's own
identifier/display place no payer, who the payer is turns on its Organization: `placed_by_its_words`,
which gather asks). Every relevant Coverage is routed, not only the first: active, its `period`
not ended at the call's instant (a dateTime bound) or day (a date), and already begun when any is
(`relevant`); a Medicare product (decided by the coded `Coverage.type`, names only when no type is
coded) goes to the payer's `medicare_policy` when it has one; with none relevant, the call's one
Coverage that is not active is routed to be answered "no active coverage", judged by no policy. The
policy a payer names may be one version of a chain (a policy file's `supersedes`,
service/succession.py): the call is judged by the version in force on its date.
Pure: resources and the call's date and instant in, routes out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from service.call_day import midday
from service.codes import negated
from service.fhirdates import begun_by, end_words, not_over_by, parse_datetime
from service.references import ID_PATTERN, local_reference
from service.shapes import as_dict, as_str, contained_by_id, dicts, reference_of, reference_target
from service.succession import Succession, Successions
from service.yamlsource import Path_, SourceError, check_schema, element, load

IN_FORCE_UNTOLD = "whether the Coverage is in force cannot be told"
ANOTHER_WRITTEN_OTHERWISE = "is also the id of another Coverage of the call, written otherwise"
TWO_OF_ONE_ID = "which of the two its coverage information names cannot be told"

# PHDSC Source of Payment Typology: the contract's OID and the URL many EHRs send for it.
SOPT_SYSTEMS = frozenset({"urn:oid:2.16.840.1.113883.3.221.5", "https://nahdo.org/sopt"})
SOPT_MEDICARE = re.compile(r"1\d{0,2}")  # 1 MEDICARE and its children 1x, 1xx
MEDICARE_WORD = re.compile(r"\bmedicare\b", re.IGNORECASE)
NEGATED_MEDICARE = negated(r"medicare\b")  # "non-Medicare", "not Medicare", however hyphenated
# the Coverage.class types whose names name the product (contract §6: plan or group names)
PRODUCT_CLASSES = frozenset({"plan", "subplan", "group", "subgroup"})
ACTIVE_STATUSES = (None, "active")


class RoutingError(SourceError):
    """The payer table is invalid or names a policy that does not exist."""


@dataclass(frozen=True)
class ProductElsewhere:
    """A product of the payer that its policy does not apply to, and where its rules are (`url`: the
    address the policy gives for them)."""

    names: tuple[str, ...]
    refer_to: str
    url: str | None = None

    def named_in(self, words: Iterable[str]) -> bool:
        """Whether any of `words` names the product, by any of its names, as whole words; "non-FEP" or
        "not FEP" (however the hyphen is typed) names another product, as for Medicare."""
        return any(named.search(other.sub(" ", text)) for text in words for named, other in self._patterns)

    @cached_property
    def _patterns(self) -> tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]:
        """Per name: the pattern naming the product and the one negating it, compiled once."""
        return tuple(
            (re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE), negated(rf"{re.escape(name)}\b"))
            for name in self.names
        )


@dataclass(frozen=True)
class Payer:
    key: str
    name: str
    identifiers: frozenset[tuple[str, str]]
    names: frozenset[str]
    policy_id: str  # as payers.yaml names it: any version of its chain
    policies: Succession  # the chain of `policy_id`
    medicare_policy_id: str | None = None
    medicare_policies: Succession | None = None
    auto_approval: bool = False  # meets the policy → PA satisfied, no request needed
    uses_dtr: bool = True  # documentation is gathered with DTR, not with a form-completion Task
    products_elsewhere: tuple[ProductElsewhere, ...] = ()

    def policy_on(self, day: date, medicare: bool) -> str:
        """The policy judging its members' orders on `day`: the version in force then of its
        `medicare_policy` for a Medicare product when it has one, else of its `policy`."""
        chain = self.medicare_policies if medicare and self.medicare_policies else self.policies
        return chain.in_force(day)

    def product_elsewhere(self, coverage: Mapping[str, Any]) -> ProductElsewhere | None:
        """The product of `coverage` that this payer's policy sends elsewhere, if it is one (named in
        the Coverage's type or plan/group names, contract §6's product words)."""
        words = _names(coverage)
        return next((p for p in self.products_elsewhere if p.named_in(words)), None)


@dataclass(frozen=True)
class Route:
    """One active Coverage and the policy that judges orders for it (None: not a payer we know)."""

    coverage: str
    payer_display: str
    payer: Payer | None
    policy_id: str | None
    matched_by: str
    medicare: bool = False
    payer_reference: dict[str, Any] | None = None  # the payer Organization, as a Task requester
    product_elsewhere: ProductElsewhere | None = None  # a product the payer's policy sends elsewhere
    # why the Coverage is not active ("ended 2024-12-31", "cancelled"): the call's only Coverage, none
    # active, answered `not-covered` / `no-active-coverage` rather than judged (`route_coverages`)
    inactive: str | None = None

    @property
    def elsewhere(self) -> str | None:
        """Why the payer's policy does not judge this Coverage (None: it does, or no policy here)."""
        product = self.product_elsewhere
        if product is None:
            return None
        members = product.names[0]
        return f"this payer's policy does not apply to {members} members; refer to the {product.refer_to}"


def _bundle_local(reference: str | None) -> bool:
    """Whether `reference` names a resource only within what the EHR sent: contained (`#id`), or an
    entry of the request's Bundles by its `urn:uuid:`/`urn:oid:` fullUrl."""
    return reference is not None and (reference.startswith("#") or reference.startswith("urn:"))


def _payer_reference(payor: Mapping[str, Any], org: Mapping[str, Any] | None, display: str) -> dict[str, Any]:
    """A Reference to the payer usable outside the Coverage (a contained one is not, nor a Bundle
    entry's `urn:uuid:`): its Organization's `Type/id` when known, else the payor's own reference, else
    only its name."""
    reference = reference_target(payor)
    if org is not None and org.get("id") and not (reference or "").startswith("#"):
        return {"reference": f"Organization/{org['id']}", "display": display}
    if reference and not _bundle_local(reference):
        return {"reference": reference, "display": display}
    logical: dict[str, Any] = {"type": "Organization", "display": display}
    identifier = as_dict(payor.get("identifier")) or next(iter(dicts(as_dict(org).get("identifier"))), {})
    if identifier.get("system") and identifier.get("value"):
        logical["identifier"] = {"system": identifier["system"], "value": identifier["value"]}
    return logical


def _name_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def _claims(raw: Mapping[str, Any], i: int) -> list[tuple[tuple[str, ...], str, Path_]]:
    """What payer entry `i` claims that no other entry may, each with its words and path: its key
    (the audit trail and metrics name a payer by it), and every identifier and name (as `_match`
    reads it) routing finds it by: routing takes the first entry that matches, so a second claim
    would silently send one payer's members to another's policy, or never be matched."""
    claims: list[tuple[tuple[str, ...], str, Path_]] = [
        (("key", raw["key"]), f"payer key '{raw['key']}'", ("payers", i, "key"))
    ]
    for j, identifier in enumerate(raw.get("identifiers", [])):
        system, value = identifier["system"], identifier["value"]
        claims.append(
            (("identifier", system, value), f"identifier {system}|{value}", ("payers", i, "identifiers", j))
        )
    names = [
        (("payers", i, "name"), raw["name"]),
        *((("payers", i, "names", j), n) for j, n in enumerate(raw.get("names", []))),
    ]
    for where, name in names:
        claims.append((("name", _name_key(name)), f"name '{name}'", where))
    return claims


def load_payers(path: Path, chains: Successions, today: date) -> tuple[Payer, ...]:
    """The payer table; each policy it names must have a version in force on `today`."""
    try:
        source = load(path)
        check_schema(source, "payers.schema.json")
    except SourceError as exc:
        raise RoutingError(str(exc)) from None
    payers: list[Payer] = []
    claimed: dict[tuple[str, ...], tuple[int, str, int]] = {}  # -> the entry, its key and line
    for i, raw in enumerate(source.data["payers"]):
        for key in ("policy", "medicare_policy"):
            if key in raw and (problem := chains.problem(raw[key], today)):
                raise RoutingError(f"{source.at(('payers', i, key))}: {problem}")
        for claim, what, path in _claims(raw, i):
            first, owner, line = claimed.setdefault(claim, (i, raw["key"], source.line(path)))
            if first != i:
                where = f"{source.at(path)}: {element(path)}"
                raise RoutingError(f"{where}: {what} is already used by payer '{owner}' (line {line})")
        payers.append(
            Payer(
                key=raw["key"],
                name=raw["name"],
                identifiers=frozenset((i_["system"], i_["value"]) for i_ in raw.get("identifiers", [])),
                names=frozenset(_name_key(n) for n in [raw["name"], *raw.get("names", [])]),
                policy_id=raw["policy"],
                policies=chains[raw["policy"]],
                medicare_policy_id=raw.get("medicare_policy"),
                medicare_policies=chains[raw["medicare_policy"]] if "medicare_policy" in raw else None,
                auto_approval=raw.get("auto_approval", False),
                uses_dtr=raw.get("dtr", True),
                products_elsewhere=tuple(
                    ProductElsewhere(tuple(p["names"]), p["refer_to"], p.get("refer_to_url"))
                    for p in raw.get("products_elsewhere", [])
                ),
            )
        )
    return tuple(payers)


def _type_codes(coverage: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(system, code) of every coding of `Coverage.type` that carries a code, in any system."""
    found = []
    for coding in dicts(as_dict(coverage.get("type")).get("coding")):
        code = as_str(coding.get("code"))
        if code and code.strip():
            found.append(((as_str(coding.get("system")) or "").strip(), code.strip()))
    return found


def _names(coverage: Mapping[str, Any]) -> list[str]:
    """The words naming the product (contract §6): the type's text and displays, and the names of the
    Coverage's plan and group classes (an Rx plan's name says nothing of the medical product)."""
    kind = as_dict(coverage.get("type"))
    names = [as_str(kind.get("text")), *(as_str(c.get("display")) for c in dicts(kind.get("coding")))]
    names += [as_str(item.get("name")) for item in dicts(coverage.get("class")) if _product_class(item)]
    return [name for name in names if name]


def _product_class(item: Mapping[str, Any]) -> bool:
    """A Coverage.class that is a plan or group (its type coded in the coverage-class system, or said)."""
    kind = as_dict(item.get("type"))
    words = [as_str(c.get("code")) for c in dicts(kind.get("coding"))] + [as_str(kind.get("text"))]
    return any(w is not None and w.strip().lower() in PRODUCT_CLASSES for w in words)


def is_medicare(coverage: Mapping[str, Any]) -> bool:
    """A Medicare product (contract §6). A coded `Coverage.type` decides: a coding with a code, in any
    system, makes the type coded, and it is Medicare only when a SOPT coding is 1, 1x or 1xx (a
    type coded only in another system, e.g. v3 ActCode, says nothing of Medicare, so is not). Only
    a type without any code falls back to the names, where "non-Medicare" / "not Medicare" never
    count."""
    coded = _type_codes(coverage)
    if coded:
        return any(system in SOPT_SYSTEMS and SOPT_MEDICARE.fullmatch(code) for system, code in coded)
    return any(MEDICARE_WORD.search(NEGATED_MEDICARE.sub(" ", name)) for name in _names(coverage))


def _payer_organizations(
    coverage: Mapping[str, Any],
    organizations: Mapping[str, Mapping[str, Any]],
    server: str | None,
    bundle_local: Mapping[str, Mapping[str, Any]],
) -> list[tuple[dict[str, Any], Mapping[str, Any] | None]]:
    """Each payor of `coverage` with the Organization it names: contained, else the entry of the
    request's Bundles whose `urn:` fullUrl it is (`bundle_local`), else among `organizations` (the
    call's FHIR `server`'s: a payor written as another server's URL names another Organization,
    whatever its id, and is matched by what the payor itself says)."""
    found = []
    inside = contained_by_id(coverage)
    for payor in dicts(coverage.get("payor")):
        ref = reference_target(payor)
        organization: Mapping[str, Any] | None = None
        if ref and ref.startswith("#"):
            organization = inside.get(ref[1:])
        elif ref and ref.startswith("urn:"):
            entry = bundle_local.get(ref)
            organization = entry if as_dict(entry).get("resourceType") == "Organization" else None
        elif ref:
            organization = organizations.get(local_reference(ref, server) or "")
        found.append((payor, organization))
    return found


def placed_by_its_words(payers: tuple[Payer, ...], payor: Mapping[str, Any]) -> bool:
    """Whether routing finds a payer of `payers` by what `payor` says itself (its identifier, its
    display), without the Organization it references: when it does not, who the payer is turns on that
    Organization (contract §6), which the call needs (service/fhir/gather.py)."""
    return _match(payers, payor, None)[0] is not None


def _match(
    payers: tuple[Payer, ...], payor: Mapping[str, Any], org: Mapping[str, Any] | None
) -> tuple[Payer | None, str]:
    identifiers = [as_dict(payor.get("identifier")), *dicts(as_dict(org).get("identifier"))]
    for identifier in identifiers:
        pair = (as_str(identifier.get("system")), as_str(identifier.get("value")))
        for payer in payers:
            if pair in payer.identifiers:
                return payer, f"identifier {pair[0]}|{pair[1]}"
    names = [as_str(as_dict(org).get("name")), as_str(payor.get("display"))]
    names += [a for a in as_dict(org).get("alias", []) if isinstance(a, str)]
    for name in filter(None, names):
        for payer in payers:
            if _name_key(name) in payer.names:
                return payer, f"name '{name}'"
    return None, "no payer identifier or name in the routing table"


def not_ended(coverage: Mapping[str, Any], today: date, now: datetime) -> bool:
    """Whether the Coverage's `period` has not ended for a call at `now`, on `today` (contract §6,
    "the single relevant Coverage": one that ended 30 days ago is not the patient's coverage for this
    order). A dateTime end is an instant, a date covers its day and a partial date its whole month or
    year (fhirdates.not_over_by); an end that cannot be read bounds nothing (a call with orders to
    answer for is not answered for an active Coverage so written: `unanswerable`). A Coverage that
    begins later is relevant: an order placed in December is often carried out in January, under the plan
    that begins then (session review s17 F-2)."""
    return not_over_by(as_dict(coverage.get("period")).get("end"), today, now) is not False


def unanswerable(coverage: Mapping[str, Any]) -> tuple[str, Any, str, str] | None:
    """Where an active Coverage cannot be answered for as written, as a path from it (`.id`, `.period`,
    `.period.start`, `.period.end`), with the value written there, what it is not and what follows; None
    when it can, or the Coverage is not active (its status decides). Coverage information names its Coverage
    (`Coverage/<id>`), so one with no FHIR id cannot be named (review29b: `Coverage/None` was answered).
    A start or end in a form R4 does not allow (`2025-06-30 00:00:00`, `20250630`:
    fhirdates.parse_datetime reads R4's forms alone, eb5dd49) bounds nothing as read (`not_ended`,
    `relevant`): an ended plan read as in force, beside next year's two relevant Coverages (review28f
    L1). Whether such a Coverage is in force cannot be told: the call is not answered for it
    (service/pipeline.py `_coverage_unread`)."""
    if coverage.get("status") not in ACTIVE_STATUSES:
        return None
    if (unnamed := _unnamed(coverage)) is not None:
        return unnamed
    if "period" not in coverage:
        return None
    period = coverage["period"]
    if not isinstance(period, dict):
        return ".period", period, "is not a FHIR Period", IN_FORCE_UNTOLD
    for bound in ("start", "end"):
        if bound in period and parse_datetime(period[bound]) is None:
            return f".period.{bound}", period[bound], "is not a FHIR date or dateTime", IN_FORCE_UNTOLD
    return None


def unanswerable_of(
    coverages: Sequence[Mapping[str, Any]], today: date, now: datetime
) -> tuple[Mapping[str, Any], tuple[str, Any, str, str]] | None:
    """The first of a call's Coverages that cannot be answered for as written, with where and why
    (`unanswerable`): an active one, or the one a call with none relevant is answered `not-covered` for
    (`routed`: its one recorded Coverage that is not active, cancelled or ended), whose coverage
    information names it as much: with no FHIR id it could not (review29d: a cancelled Coverage with
    none was answered `Coverage/None`). Any other that is not active is read by its status alone. Then one
    of those whose id another Coverage of the call carries, written otherwise (`_written_twice`)."""
    for coverage in coverages:
        if (found := unanswerable(coverage)) is not None:
            return coverage, found
    answered = routed(coverages, today, now)
    for coverage in answered:
        if (found := _unnamed(coverage)) is not None:
            return coverage, found
    named = {reference_of(c) for c in coverages if c.get("status") in ACTIVE_STATUSES}
    return _written_twice(coverages, named | {reference_of(c) for c in answered})


def _written_twice(
    coverages: Sequence[Mapping[str, Any]], named: Collection[str]
) -> tuple[Mapping[str, Any], tuple[str, Any, str, str]] | None:
    """The first Coverage that shares its `Type/id` with an earlier one of `coverages` written otherwise,
    where that is a Coverage the call may answer for (`named`: active, or routed), with `.id` and why; None
    when there is none. Coverage information names its Coverage by `Type/id`, so of two resources so
    named it could not tell which it answers for (review29d L8: both were answered, two repetitions
    naming one Coverage, under two payers). The same Coverage given twice as written is one, answered
    once (`relevant`, `_distinct`)."""
    first: dict[str, Mapping[str, Any]] = {}
    for coverage in coverages:
        reference = reference_of(coverage)
        earlier = first.setdefault(reference, coverage)
        if earlier is not coverage and _as_written(earlier) != _as_written(coverage) and reference in named:
            return coverage, (".id", coverage.get("id"), ANOTHER_WRITTEN_OTHERWISE, TWO_OF_ONE_ID)
    return None


# What says nothing of the coverage itself: the server's version and bookkeeping (R4 `meta`: versionId,
# lastUpdated, tags) and the narrative generated from the rest (`text`)
_NOT_THE_COVERAGE = frozenset({"meta", "text"})


def _as_written(coverage: Mapping[str, Any]) -> dict[str, Any]:
    """A Coverage as `_written_twice` compares it: without `meta` and `text` (`_NOT_THE_COVERAGE`). Two
    versions of one Coverage a server returned (a paged search whose pages the Coverage's update straddled)
    that differ there alone are one Coverage, answered once, not a call refused (review30c: a 400 or 412)."""
    return {key: value for key, value in coverage.items() if key not in _NOT_THE_COVERAGE}


def _distinct(coverages: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`coverages` with each `Type/id` once, the first of it: the same Coverage given twice (a prefetch
    Bundle or a search listing it twice) is answered once (review29d L8), as coverage information names
    a Coverage by `Type/id`; two written otherwise are refused before (`_written_twice`)."""
    kept: dict[str, Mapping[str, Any]] = {}
    for coverage in coverages:
        kept.setdefault(reference_of(coverage), coverage)
    return list(kept.values())


def _unnamed(coverage: Mapping[str, Any]) -> tuple[str, Any, str, str] | None:
    """`.id` and the id written there, when a Coverage has no FHIR id its coverage information could name
    it by (`Coverage/<id>`); None when it has one."""
    rid = coverage.get("id")
    if not isinstance(rid, str) or not ID_PATTERN.fullmatch(rid):
        return ".id", rid, "is not a FHIR id", "its coverage information could not name it"
    return None


def relevant(coverages: Iterable[Mapping[str, Any]], today: date, now: datetime) -> list[Mapping[str, Any]]:
    """The relevant Coverages for a call at `now`, on `today` (contract §6): the active ones that have
    not ended (`not_ended`); of those, the ones already begun (fhirdates.begun_by) when any has, else
    the ones that begin later (a plan recorded ahead of its year is not a second Coverage beside the
    one in force: review2 N-3, a CRD 2.2 call refused for "2 active Coverages" during a plan change).
    Each once (`_distinct`): the same Coverage given twice is answered once."""
    found = _distinct(c for c in coverages if c.get("status") in ACTIVE_STATUSES and not_ended(c, today, now))
    begun = [c for c in found if begun_by(as_dict(c.get("period")).get("start"), today, now) is not False]
    return begun or found


def not_active(coverage: Mapping[str, Any], today: date, now: datetime) -> str:
    """Why a Coverage `relevant` leaves out is not the patient's coverage for a call at `now` on
    `today`, in a few words for a clinician: its status ("cancelled"), else when its period ended
    (`end_words`: "ended 2024-12-31", the last day a date covers; "ended 2026-12-05 17:00 UTC", the
    instant a dateTime names)."""
    status = coverage.get("status")
    if status not in ACTIVE_STATUSES:
        return "cancelled" if status == "cancelled" else f"status {status}"
    end = as_dict(coverage.get("period")).get("end")
    if not_over_by(end, today, now) is False:
        return f"ended {end_words(end)}"
    return "not active"


def coverage_not_answered(routes: Iterable[Route], one_coverage: bool = True) -> str | None:
    """Why a call cannot be answered for its Coverage, or None when it can. With no Coverage sent or
    found, or several none of which is active, none can (coverage information names one); nor with
    one that is not active (`Route.inactive`, answered `no-active-coverage`) of a payer this service
    does not serve: it cannot say for another payer that the member is not covered. Under CRD 2.2
    (`one_coverage`, §hook-13: the client sends the one primary Coverage) neither can one sent for
    several, or for one whose payer this service does not serve. Each is a bad request."""
    found = list(routes)
    coverages = {r.coverage for r in found}
    if not coverages:
        return "no active Coverage was sent or found"
    inactive = next((r.inactive for r in found if r.inactive), None)
    if inactive is not None and any(r.payer is None for r in found):
        return f"the Coverage is not active ({inactive}) and its payer is not one this service answers for"
    if not one_coverage:
        return None
    if len(coverages) > 1:
        return f"{len(coverages)} active Coverages were sent or found, not one"
    if any(r.payer is None for r in found):
        return "the Coverage's payer is not one this service answers for"
    return None


def route_coverages(
    coverages: Iterable[Mapping[str, Any]],
    organizations: Iterable[Mapping[str, Any]],
    payers: tuple[Payer, ...],
    today: date,
    server: str | None = None,
    now: datetime | None = None,
    bundle_local: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Route]:
    """A Route for every Coverage relevant to a call at `now` on `today` (`relevant`; `now` None:
    call_day.midday) and every payor it names, to the policies in force `today`; `organizations` are
    the call's FHIR `server`'s, `bundle_local` the entries of the request's Bundles by their `urn:`
    fullUrl. With none relevant, the routes of the call's one Coverage that is not active (ended,
    cancelled), if it has exactly one (one entered in error is none), each saying why
    (`Route.inactive`) and judged by no policy: the call is answered `not-covered`, reason
    `no-active-coverage` (CRD §resp-45; inferno review s18 K-1)."""
    by_ref = {reference_of(o): o for o in organizations if isinstance(o, Mapping)}
    where = _Where(by_ref, server, bundle_local or {})
    now = now or midday(today)
    found = relevant(coverages, today, now)
    routes = [r for c in found for r in _routes_of(c, where, payers, today)]
    if routes or not (lone := _lone_recorded(coverages)):
        return routes
    [coverage] = lone
    why = not_active(coverage, today, now)
    return [replace(r, policy_id=None, inactive=why) for r in _routes_of(coverage, where, payers, today)]


def routed(coverages: Sequence[Mapping[str, Any]], today: date, now: datetime) -> list[Mapping[str, Any]]:
    """The Coverages `route_coverages` routes for a call at `now` on `today`: the relevant ones, else the
    call's one recorded Coverage that is not active, whose payer decides the answer as much (GEHA's:
    `not-covered`, no-active-coverage; an unserved payer's: none, or a 400): gather needs the payers'
    Organizations of these, and of no other (review24e: the lone ended Coverage's was not asked)."""
    return relevant(coverages, today, now) or _lone_recorded(coverages)


def _lone_recorded(coverages: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The call's one recorded Coverage (one entered in error is none), in a list; else none."""
    recorded = {reference_of(c): c for c in coverages if c.get("status") != "entered-in-error"}
    return list(recorded.values()) if len(recorded) == 1 else []


@dataclass(frozen=True)
class _Where:
    """Where a payor's Organization is found: the call's server's by `Type/id` (`by_ref`, of `server`),
    the request's Bundles' by `urn:` fullUrl (`bundle_local`)."""

    by_ref: Mapping[str, Mapping[str, Any]]
    server: str | None
    bundle_local: Mapping[str, Mapping[str, Any]]


def _routes_of(
    coverage: Mapping[str, Any], where: _Where, payers: tuple[Payer, ...], today: date
) -> list[Route]:
    """A Route for every payor `coverage` names, to the policies in force `today`."""
    routes = []
    medicare = is_medicare(coverage)
    found = _payer_organizations(coverage, where.by_ref, where.server, where.bundle_local)
    for payor, org in found or [({}, None)]:
        payer, how = _match(payers, payor, org)
        display = as_str(as_dict(org).get("name")) or as_str(payor.get("display")) or "unnamed payer"
        policy = elsewhere = None
        if payer is not None:
            policy = payer.policy_on(today, medicare)
            elsewhere = None if medicare and payer.medicare_policy_id else payer.product_elsewhere(coverage)
        name = payer.name if payer else display
        routes.append(
            Route(
                reference_of(coverage),
                name,
                payer,
                None if elsewhere else policy,
                how,
                medicare,
                _payer_reference(payor, org, display),
                elsewhere,
            )
        )
    return routes
