"""The drugs the pump is to deliver (contract §2): those the call orders or names, else the pump's
current drug in the chart. Which orders are pump orders is service/orders.py's.

A drug order carrying a modifier extension (service/modifiers.py) is neither its drug nor none: it
is left out, as a chart record carrying one is (service/record.py), and the criteria that read the
pump's drug could not be checked (`PUMP_DRUG` in the record's `unavailable`), so the card says to
check it in the chart. A drug order of the call is walked whole (gather's `CallData.modifiers`), a
chart record where it is read, as every chart record is (`modifies`); each with the Medication it
names its drug by (`drug_resolver` finds it), which it is read through.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from service.codes import RXNORM, Code, Routes, codings, concept_text, neuraxial_order
from service.modifiers import modifies
from service.orders import DeviceFetcher, DraftOrders, OrderCodeTable, PumpOrder, billed_code, recognise
from service.record import MODIFIED, left_out
from service.references import chart_lookup
from service.shapes import as_list, dicts, medication_concept, reference_of, reference_target
from service.terminology import IngredientFinder, Terminology


@dataclass(frozen=True)
class Infusate:
    """A drug ordered for the pump: a draft MedicationRequest, or a drug a pump order names; or, when
    the call orders none, the pump's drug in the chart (`charted`: a card says where it was read)."""

    reference: str
    codes: tuple[Code, ...]
    text: str
    intrathecal_route: bool
    charted: bool = False


# `PatientRecord.unavailable`'s key for the drug orders the pump's drug is read from (checks/common.py
# names it for a card): what reads the pump's drug could not be checked when one of them was left out,
# or when they are the chart's and the chart's drug orders could not be read
PUMP_DRUG = "pump drug"
# the drugs a pump delivers (criteria-and-codes.md §3.3.1-2): a neuraxial drug order of none of them that
# the catalog names is no order for a pump (`for_a_pump`)
PUMP_DRUGS = "it-infusates"


@dataclass(frozen=True)
class PumpDrugs:
    """The pump's drugs (`found`), the drug orders they were to be read from that were left out
    because they carry a modifier extension (`left_out`, by reference), and, when they are the
    chart's, why its drug orders are not wholly available (`unread`: the search failed)."""

    found: tuple[Infusate, ...]
    left_out: tuple[str, ...] = ()
    unread: str | None = None

    @property
    def unavailable(self) -> dict[str, str]:
        """The record's `unavailable` entry for the orders left out, in the words of a chart's records
        left out (`unreadable_in_chart` knows them), and for the chart's unread; none when neither."""
        reasons = [left_out(len(self.left_out), MODIFIED)] if self.left_out else []
        reasons += [self.unread] if self.unread else []
        return {PUMP_DRUG: "; ".join(reasons)} if reasons else {}


@dataclass(frozen=True)
class _DrugOrders:
    """How a call reads a drug order: the Medication its `medicationReference` names (`resolve`,
    `drug_resolver`'s), and what a route says (`routes`, the catalog's route value sets)."""

    resolve: Callable[[str], Any]
    routes: Routes

    def neuraxial(self, resource: Mapping[str, Any]) -> bool | None:
        """Whether a drug order gives its drug intrathecally or epidurally, read as the record reads it
        (`codes.neuraxial_order`: by the routes it says, else its drug's words; None when neither says)."""
        text = concept_text(medication_concept(resource, self.resolve))
        return neuraxial_order(resource, text, self.routes)

    def could_be_the_pumps(self, resource: Mapping[str, Any]) -> bool:
        """Whether a drug order a pump order names (`reasonReference`) could be the pump's drug, the
        call's or the chart's alike: given intrathecally or epidurally, or by no route it says; a route
        present and not neuraxial (oral, intravenous) says it is another drug: the failed oral opioid a
        pump order names as its reason (session review s18 R-6)."""
        return self.neuraxial(resource) is not False

    def infusate(self, resource: Mapping[str, Any]) -> Infusate:
        concept = medication_concept(resource, self.resolve)
        codes = tuple(c for c in codings(concept) if c.system == RXNORM)
        text = concept_text(concept)
        return Infusate(
            reference_of(resource), codes, text, neuraxial_order(resource, text, self.routes) is True
        )


@dataclass(frozen=True)
class _Named:
    """What the pump orders name in `reasonReference` (contract §2: "reasonReference naming it"): the
    call's draft resources (`drafted`), and the chart's drug orders the call does not carry (`charted`)."""

    drafted: tuple[Mapping[str, Any], ...]
    charted: tuple[Mapping[str, Any], ...]


def _one_of(resource: Mapping[str, Any], resources: Iterable[Mapping[str, Any]]) -> bool:
    """Whether `resource` is one of `resources` (the same record, not an equal one)."""
    return any(resource is other for other in resources)


def _named(
    orders: list[PumpOrder],
    drafts: DraftOrders,
    chart_orders: Callable[[Any], Any],
    read: _DrugOrders,
) -> _Named:
    """The drug orders the pump orders' `reasonReference`s name that could be the pump's drug
    (`could_be_the_pumps`: by no route but a neuraxial one; a drug order given orally is named as the
    pump's reason, not its drug): among the draft orders, else among the chart's MedicationRequests
    (`chart_orders`: those gathered, by reference; none is read one by one), there only an active one,
    as the chart's current pump drug is (one the record reads as history, stopped or completed, is not
    what the pump is to deliver)."""
    drafted: list[Mapping[str, Any]] = []
    charted: list[Mapping[str, Any]] = []
    for order in orders:
        for ref in map(reference_target, as_list(order.resource.get("reasonReference"))):
            if not ref:
                continue
            if (draft := drafts.get(ref)) is not None:
                drafted += [draft] if read.could_be_the_pumps(draft) else []
            elif (
                (found := chart_orders(ref)) is not None
                and found.get("status") == "active"
                and read.could_be_the_pumps(found)
            ):
                charted += [] if _one_of(found, charted) else [found]
    return _Named(tuple(drafted), tuple(charted))


def _ordered_infusates(
    drafts: DraftOrders,
    orders: list[PumpOrder],
    finder: IngredientFinder,
    read: _DrugOrders,
    named: _Named,
) -> list[tuple[Infusate, Mapping[str, Any] | None]]:
    """Draft MedicationRequests given intrathecally or epidurally (`neuraxial`: by their routes, else
    their drug's words), those a pump order names in `reasonReference` (`named`: drafted or the chart's,
    those that could be the pump's), drugs a pump order names in `orderDetail` (an RxNorm
    code, or a known ingredient in its text: "40 mL reservoir" names no drug), and the drug a pump
    order's code names (J0476, the baclofen of a trial). An oral drug drafted beside a pump order is
    not the pump's. Each with the drug order it is read from (None: read from the pump order)."""
    result = []
    for resource in drafts.resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        if read.neuraxial(resource) is not True and not _one_of(resource, named.drafted):
            continue
        result.append((read.infusate(resource), resource))
    result += [(read.infusate(resource), resource) for resource in named.charted]
    for order in orders:
        if order.drug:
            result.append((Infusate(f"{order.reference} code", (), order.drug, True), None))
        for detail in dicts(order.resource.get("orderDetail")):
            codes = tuple(c for c in codings(detail) if c.system == RXNORM)
            text = concept_text(detail)
            if codes or finder.names(text, ()):
                result.append((Infusate(f"{order.reference} orderDetail", codes, text, False), None))
    return result


def _chart_infusates(
    chart: Mapping[str, Iterable[Any]], read: _DrugOrders
) -> list[tuple[Infusate, Mapping[str, Any] | None]]:
    """The pump's current drug: the chart's active MedicationRequests given intrathecally or
    epidurally (a stopped order or a drug given by another route is not what the pump holds), each
    with its record."""
    return [
        (replace(read.infusate(resource), charted=True), resource)
        for resource in chart.get("MedicationRequest", ())
        if isinstance(resource, dict)
        and resource.get("status") == "active"
        and read.neuraxial(resource) is True
    ]


def infusates(
    drafts: DraftOrders,
    terminology: Terminology,
    orders: Iterable[PumpOrder] = (),
    chart: Mapping[str, Iterable[Any]] | None = None,
    modified: Collection[str] = (),
    chart_unread: str | None = None,
    server: str | None = None,
) -> PumpDrugs:
    """The drugs the pump is to deliver (contract §2): those the call orders or names (a pump order's
    `reasonReference` may name a drug order of the call or of the chart), else, when it
    orders none (a catheter, replacement, refill or removal), the patient's active intrathecal or
    epidural MedicationRequests in `chart` (the gathered resources by type). `terminology` tells which
    known ingredients a text names, and which words name a route other than a neuraxial one. A drug
    order of the call among `modified` (those carrying a modifier extension, by reference), or a chart
    record carrying one where it is read, is left out;
    one of the call's left out is still a drug the call orders (the chart's does not stand in for it).
    `chart_unread`: why the chart's MedicationRequests are not wholly available, which leaves the
    pump's current drug unknown when the call orders none. `server`: the call's FHIR server, which
    `chart` was read from (`drug_resolver`)."""
    chart = chart or {}
    resolve = drug_resolver(drafts, chart, server)
    read = _DrugOrders(resolve, terminology.routes)
    orders = list(orders)
    named = _named(orders, drafts, chart_lookup(chart.get("MedicationRequest", ()), server), read)
    ordered = _ordered_infusates(drafts, orders, terminology.ingredient_finder, read, named)
    if ordered:  # the call's drug orders as the call's (`modified`), the chart's as the chart's

        def modifying(order: Mapping[str, Any]) -> bool:
            if _one_of(order, named.charted):
                return modifies(order, resolve)
            return reference_of(order) in modified

        return _read_as_the_pumps(ordered, modifying)
    chart_drugs = _chart_infusates(chart, read)
    return replace(_read_as_the_pumps(chart_drugs, lambda r: modifies(r, resolve)), unread=chart_unread)


def for_a_pump(
    resource: Mapping[str, Any],
    drafts: DraftOrders,
    table: OrderCodeTable,
    terminology: Terminology,
    fetch_device: DeviceFetcher | None = None,
) -> bool:
    """Whether an order of the call is one this service has rules for, by the order alone (before any
    chart is read): a pump order (`recognise`), or a drug order for the pump, coded with an order code
    (`billed_code`: J0476 baclofen for a trial, J2274 morphine) or giving its drug intrathecally or
    epidurally (contract §2's infusate: by its routes, else its drug's words, the Medication it names
    read among the call's orders, as `_ordered_infusates` reads a draft). An order the call cannot
    use (another patient's) is reported when it is one of these (call25 L2), and no other (an
    office visit, an oral drug). A neuraxial drug the catalog knows, none of whose ingredients is a
    pump's (`PUMP_DRUGS`), is not for a pump: an epidural steroid injection (methylprednisolone), which
    the record does not read as an intrathecal trial either (AMB-34, the `steroids` value set); a drug
    it cannot name (a brand, "Infumorph"; a Medication not at hand) is, by its route."""
    if recognise(resource, drafts, table, fetch_device) is not None:
        return True
    if resource.get("resourceType") != "MedicationRequest":
        return False
    if billed_code(resource, table) is not None:
        return True
    if _DrugOrders(drafts.get, terminology.routes).neuraxial(resource) is not True:
        return False
    concept = medication_concept(resource, drafts.get)
    codes = tuple(codings(concept))
    named = terminology.ingredient_finder.names(concept_text(concept), codes)
    return not named or terminology[PUMP_DRUGS].holds_drug(named, codes)


def drug_resolver(
    drafts: DraftOrders, chart: Mapping[str, Iterable[Any]], server: str | None = None
) -> Callable[[str], Any]:
    """What a drug order's `medicationReference` names: among the draft orders, else the chart's
    Medications (`chart`: the gathered resources by type, prefetched or read from the call's FHIR
    `server`; a reference written as another server's URL names none of them)."""
    medication = chart_lookup(chart.get("Medication", ()), server)
    return lambda reference: drafts.get(reference) or medication(reference)


def _read_as_the_pumps(
    drugs: list[tuple[Infusate, Mapping[str, Any] | None]], modifying: Callable[[Mapping[str, Any]], bool]
) -> PumpDrugs:
    """The drugs, but those whose drug order carries a modifier extension (`modifying`) left out."""
    kept = [drug for drug, order in drugs if order is None or not modifying(order)]
    left = [drug.reference for drug, order in drugs if order is not None and modifying(order)]
    return PumpDrugs(tuple(kept), tuple(dict.fromkeys(left)))
