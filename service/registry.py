"""The registry of CDS services this server offers; discovery is generated from it.

Each service has a stable id and exactly one hook, and carries its own behaviour as data (where
its orders come from, whether it is a CRD primary hook that may approve and ask for documentation,
and so replace an assertion that does, whether its user places the order, which resources carry
coverage information: its orders, booked Appointments, the hook's Encounter), in the manner of HAPI
FHIR's CDS Hooks module: the pipeline reads these values and never asks which hook it is serving.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from service.orders import REQUEST_TYPES
from service.strict_json import whole_number

# Advertised: more than one, so a CRD 2.2 client SHALL name the one it wants (§dev-3), and a call that
# names none is a 2.0.1 client's, answered as 2.0 (crdver-1's pattern allows no "2.0" here).
CRD_VERSIONS = ("2.1", "2.2")
ANSWERED_VERSIONS = ("2.0", "2.1", "2.2")  # what a call may request; only 2.2 gets 2.2-only content
# CRD 2.2.1's own expressions for the patient and the Coverage (CRDServices.json; §found-29: a server
# needing those data SHALL use them, so the Coverage search includes nothing).
STANDARD_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}&status=active",
}
# Of those, what only a pump order's judgement reads (the Patient: whether it is recorded deceased, which the
# decision card says; service/record.py), as the clinical keys are: required, a 412 when neither prefetched
# nor readable, only by a call that judges a pump order or may (`ServiceDefinition.required_prefetch`); a call
# of other orders, whose answers read nothing of it, is answered without it. The Coverage, which every
# order's coverage information names, is required by any call about an order.
PUMP_ONLY_PREFETCH = frozenset({"patient"})
# The payer Organizations the patient's Coverages name (`Coverage.payor`, contract §6), under a key of
# their own: an R4 reverse chain (`_has`), so that a complete prefetch needs no FHIR request. Not
# required, and searched only with the Coverages (the same round): a Coverage prefetched without its
# payer (or an earlier `coverage` Bundle that `_include`d it) has only what is missing read by reference.
PAYER_PREFETCH = {
    "payerOrganizations": "Organization?_has:Coverage:payor:patient={{context.patientId}}",
}

# encounter-start/-discharge judge the patient's open orders in the EHR: the searches an EHR may
# prefetch (then the service queries none of them), by key. Not required: without them and without a
# fhirServer the call simply has no orders to judge.
OPEN_ORDERS_PREFETCH = {
    "openServiceRequests": "ServiceRequest?patient={{context.patientId}}&status=draft,active",
    "openDeviceRequests": "DeviceRequest?patient={{context.patientId}}&status=draft,active",
}
# encounter-start/-discharge put coverage information on the hook's Encounter too (`on_encounter`): read
# by CRD 2.2.1's own expression (CRDServices.json, the key the Inferno CRD kit's bodies prefetch), else
# from the EHR's FHIR server. Not required: without it the Encounter simply gets none.
ENCOUNTER_PREFETCH = {"encounter": "Encounter/{{context.encounterId}}"}
# The orders order-dispatch names, by CRD 2.2.1's own expressions (CRDServices.json; §found-29: a 2.2
# client resolves them, CDS Hooks 3.0's FHIRPath tokens), under keys of their own (CRD's names, such as
# `medicationRequests`, are the clinical keys' here); a prefetched order is found under any key.
DISPATCHED_PREFETCH = {
    f"dispatched{kind}s": f"{kind}?_id={{{{context.dispatchedOrders.resolve().ofType({kind}).id}}}}"
    for kind in sorted(REQUEST_TYPES)
}


class OrderSource(StrEnum):
    """Where a service finds the orders it judges."""

    DRAFT_ORDERS = "draftOrders"  # order-sign: every draft order of the call
    SELECTIONS = "selections"  # order-select: the selected draft orders
    APPOINTMENTS = "appointments"  # appointment-book: the orders the booked Appointments are based on
    DISPATCHED = "dispatched"  # order-dispatch: the orders named, from prefetch or the EHR
    CHART = "chart"  # encounter-start/-discharge: the patient's open pump orders in the EHR


@dataclass(frozen=True)
class HookBehaviour:
    """What a service does with a call, as data the pipeline and the card renderer read.

    `may_approve` and `asks_documentation` bound what the call's coverage information may say, and so
    what it may replace: an order that already carries coverage information for a Coverage (from an
    earlier call) has it replaced only by a call that may say all it says. One that may not approve
    (or, being a what-if call, does not) cannot restate an approval (`satisfied` and its PA number),
    one that may not ask for documentation cannot restate a request for it (`doc-needed`, the form):
    such a call leaves that assertion, its id and PA number as they are, whatever it judges (CRD
    §resp-35, §found-11; the assertion id is what the claim, DTR and PAS carry, §resp-31). A call
    that may say it all replaces it when its judgement differs, so an approval this service issued
    follows the chart there.

    `on_encounter`: the hook's Encounter (context.encounterId) gets coverage information of its own, one
    repetition per relevant Coverage, beside the orders': an honest "the payer's own requirements apply",
    as for an order no policy here addresses, since this service judges only intrathecal pump orders
    (the Inferno CRD kit looks for coverage information on the Encounter at encounter-start and
    encounter-discharge). The Encounter is declared in discovery (`ENCOUNTER_PREFETCH`), and read in
    gather from prefetch or the EHR's FHIR server (service/encounters.py); one that cannot be had gets
    none, and the call is answered as before.

    `places_order` says which cards the answer carries: the hook's user is the one placing the order
    (order-select, order-sign), so the ordering-time cards belong there: the proposal of orders to add
    (the trial first, requested by that user) and the Instructions card (what to document, then to
    request prior authorization). On the other hooks the order was placed before (and may have been
    carried out): the decision card, the policy link and the forms a primary hook asks for only.
    """

    orders_from: OrderSource
    may_approve: bool  # may carry an automatic approval (pa-needed=satisfied), and so replace one
    asks_documentation: bool  # may ask for documentation (doc-needed, forms; never on secondary hooks)
    places_order: bool  # the hook's user places the order: order proposals and the Instructions card
    every_order: bool = True  # every order in scope gets coverage information, not only pump orders
    on_appointments: bool = False  # coverage information also goes on each booked Appointment
    on_encounter: bool = False  # coverage information also goes on the hook's Encounter
    order_prefetch: tuple[tuple[str, str], ...] = ()  # (key, template) of the orders' own prefetch

    def annotates_encounter(self, only_orders_with_rules: bool) -> bool:
        """Whether the hook's Encounter gets coverage information where the service is deployed: where its
        behaviour says so (`on_encounter`), but not behind a payer's CRD gateway (`only_orders_with_rules`),
        which answers what this service holds no rules for, the encounter itself among them (review29a M1).
        What the pipeline reads and annotates and what discovery declares (the `encounter` prefetch, the
        description's sentence) both follow it: an EHR is not asked for what the service will not use."""
        return self.on_encounter and not only_orders_with_rules

    @property
    def primary(self) -> bool:
        """A CRD primary hook (appointment-book, order-sign, order-dispatch): the hooks that may ask
        for documentation (§hook-19), whose answer SHALL carry coverage information unless erroring
        (§hook-16; CRD 2.0.1 §8.1: "at minimum, return a Coverage Information system action")."""
        return self.asks_documentation


CONFIGURATION_OPTIONS = [
    {
        "code": "coverage-info",
        "type": "boolean",
        "name": "Coverage Information",
        "description": "Show whether the order meets the payer's coverage criteria, criterion by criterion.",
        "default": True,
    },
    {
        "code": "unsolicited-determ",
        "type": "boolean",
        "name": "Unsolicited determinations",
        "description": "Allow automatic prior authorization approvals (a PA number) for payers that "
        "grant them; false for what-if calls.",
        "default": True,
    },
    {
        "code": "guideline",
        "type": "boolean",
        "name": "Policy reference",
        "description": "Link to the payer policy as this service checks it.",
        "default": True,
    },
    {
        "code": "clinical-reminder",
        "type": "boolean",
        "name": "Documentation instructions",
        "description": "List exactly what to document next for the order to meet the policy.",
        "default": True,
    },
    {
        "code": "max-cards",
        "type": "integer",
        "name": "Maximum cards",
        "description": "The largest number of cards returned for one call.",
        "default": 10,
    },
]


@dataclass(frozen=True)
class CallOptions:
    """A call's `davinci-crd.configuration` as the service reads it: each option of
    CONFIGURATION_OPTIONS as the EHR gave it when it is of the declared type (a count not below
    zero), else its declared default."""

    coverage_info: bool
    unsolicited_determ: bool
    guideline: bool
    clinical_reminder: bool
    max_cards: int

    @property
    def no_card_type(self) -> bool:
        """Whether the EHR switched off every card type (and so the coverage information) offered."""
        return not (self.coverage_info or self.guideline or self.clinical_reminder)

    @classmethod
    def of(cls, configuration: Any) -> CallOptions:
        given = configuration if isinstance(configuration, dict) else {}
        values = {}
        for option in CONFIGURATION_OPTIONS:
            value = _OPTION_TYPES[option["type"]](given.get(option["code"]))
            values[str(option["code"]).replace("-", "_")] = option["default"] if value is None else value
        return cls(**values)


def _count(value: Any) -> int | None:
    whole = whole_number(value)
    return whole if whole is not None and whole >= 0 else None


# Each option's value as its type reads it, None for a value not of that type (the default is taken).
_OPTION_TYPES: dict[str, Callable[[Any], Any]] = {
    "boolean": lambda value: value if isinstance(value, bool) else None,
    "integer": _count,
}


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    behaviour: HookBehaviour
    prefetch: dict[str, str] = field(default_factory=lambda: {**STANDARD_PREFETCH, **PAYER_PREFETCH})

    def required_prefetch(self, judges_pump: bool) -> frozenset[str]:
        """The keys of `prefetch` a call about orders cannot be answered without (neither prefetched nor
        readable: 412): every one for a call that judges a pump order, or may (`judges_pump`), else those
        any order's answer reads (not `PUMP_ONLY_PREFETCH`)."""
        return frozenset(key for key in self.prefetch if judges_pump or key not in PUMP_ONLY_PREFETCH)

    def describe(self, only_orders_with_rules: bool = False) -> str:
        """What it does, as discovery says it where it is deployed: the hook's Encounter's coverage
        information is said where it is given (`HookBehaviour.annotates_encounter`)."""
        annotates = self.behaviour.annotates_encounter(only_orders_with_rules)
        return f"{self.description} {_ENCOUNTER}" if annotates else self.description

    def discovery_entry(
        self,
        clinical_prefetch: Mapping[str, str],
        trial_prefetch: Mapping[str, str] | None = None,
        only_orders_with_rules: bool = False,
    ) -> dict[str, Any]:
        """Its discovery entry; `trial_prefetch` (the open trial orders) only where the user places the
        order, the one place a trial is proposed (`HookBehaviour.places_order`); the hook's Encounter only
        where it is annotated in this deployment (`only_orders_with_rules`: behind a payer's gateway,
        `HookBehaviour.annotates_encounter`)."""
        ordering = dict(trial_prefetch or {}) if self.behaviour.places_order else {}
        annotates = self.behaviour.annotates_encounter(only_orders_with_rules)
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.describe(only_orders_with_rules),
            "prefetch": {
                **self.prefetch,
                **dict(self.behaviour.order_prefetch),
                **(ENCOUNTER_PREFETCH if annotates else {}),
                **clinical_prefetch,
                **ordering,
            },
            "extension": {
                "davinci-crd.version": list(CRD_VERSIONS),
                "davinci-crd.configuration-options": [dict(o) for o in CONFIGURATION_OPTIONS],
            },
        }


_SECONDARY = HookBehaviour(
    OrderSource.SELECTIONS, may_approve=False, asks_documentation=False, places_order=True
)
_PRIMARY = HookBehaviour(
    OrderSource.DRAFT_ORDERS, may_approve=True, asks_documentation=True, places_order=True
)
_CHART = HookBehaviour(
    OrderSource.CHART,
    may_approve=False,
    asks_documentation=False,
    places_order=False,
    every_order=False,
    on_encounter=True,
    order_prefetch=tuple(OPEN_ORDERS_PREFETCH.items()),
)
_JUDGES = "shows whether they meet the patient's payer coverage criteria, criterion by criterion, with the "
_ENCOUNTER = "The encounter itself gets coverage information saying the payer's own requirements apply."
_CODES = "intrathecal drug delivery system order (CPT 62320-62370, HCPCS E0782/E0783 and related codes)"

SERVICES: tuple[ServiceDefinition, ...] = (
    ServiceDefinition(
        id="idds-crd-order-select",
        hook="order-select",
        title="Intrathecal pump coverage requirements (order select)",
        description=f"When an {_CODES} is selected, shows whether it meets the patient's payer coverage "
        "criteria, criterion by criterion, with the evidence from the chart.",
        behaviour=_SECONDARY,
    ),
    ServiceDefinition(
        id="idds-crd-order-sign",
        hook="order-sign",
        title="Intrathecal pump coverage requirements (order sign)",
        description=f"When intrathecal drug delivery system orders are signed, {_JUDGES}evidence from the "
        "chart; every order of the call gets coverage information.",
        behaviour=_PRIMARY,
    ),
    ServiceDefinition(
        id="idds-crd-order-dispatch",
        hook="order-dispatch",
        title="Intrathecal pump coverage requirements (order dispatch)",
        description=f"When intrathecal drug delivery system orders are dispatched to a performer, {_JUDGES}"
        "evidence from the chart, as on order-sign.",
        behaviour=HookBehaviour(
            OrderSource.DISPATCHED,
            may_approve=True,
            asks_documentation=True,
            places_order=False,
            order_prefetch=tuple(DISPATCHED_PREFETCH.items()),
        ),
    ),
    ServiceDefinition(
        id="idds-crd-appointment-book",
        hook="appointment-book",
        title="Intrathecal pump coverage requirements (appointment book)",
        description="When a trial or implant of an intrathecal drug delivery system is booked (an "
        "Appointment based on the pump ServiceRequest), shows whether the order meets the patient's payer "
        "coverage criteria and records the coverage information on the Appointment and the ServiceRequest.",
        behaviour=HookBehaviour(
            OrderSource.APPOINTMENTS,
            may_approve=True,
            asks_documentation=True,
            places_order=False,
            on_appointments=True,
        ),
    ),
    ServiceDefinition(
        id="idds-crd-encounter-start",
        hook="encounter-start",
        title="Intrathecal pump coverage requirements (encounter start)",
        description="When an encounter starts, judges the patient's open intrathecal pump orders (draft or "
        f"active) in the EHR; {_JUDGES}evidence from the chart. No cards when there are none.",
        behaviour=_CHART,
    ),
    ServiceDefinition(
        id="idds-crd-encounter-discharge",
        hook="encounter-discharge",
        title="Intrathecal pump coverage requirements (encounter discharge)",
        description="When a patient is discharged, judges the patient's open intrathecal pump orders (draft "
        f"or active) in the EHR; {_JUDGES}evidence from the chart. No cards when there are none.",
        behaviour=_CHART,
    ),
)


def find_service(service_id: str) -> ServiceDefinition | None:
    return next((s for s in SERVICES if s.id == service_id), None)


def service_for_hook(hook: object) -> ServiceDefinition:
    """The service answering `hook`; order-select when the hook is unknown (validation then names it)."""
    return next((s for s in SERVICES if s.hook == hook), SERVICES[0])


def discovery_document(
    clinical_prefetch: Mapping[str, str] | None = None,
    trial_prefetch: Mapping[str, str] | None = None,
    only_orders_with_rules: bool = False,
) -> dict[str, Any]:
    """Discovery; `clinical_prefetch` are the templates of the clinical searches, generated from the
    compiled catalog (`DataGatherer.clinical_templates`), declared by every service; `trial_prefetch`
    the open trial orders' (`DataGatherer.trial_templates`), declared by the services placing orders;
    `only_orders_with_rules` the deployment's setting (behind a payer's gateway: no Encounter declared)."""
    entries = [
        s.discovery_entry(clinical_prefetch or {}, trial_prefetch, only_orders_with_rules) for s in SERVICES
    ]
    return {"services": entries}
