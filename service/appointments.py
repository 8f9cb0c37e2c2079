"""appointment-book: the orders behind the Appointments being booked.

An appointment-book call carries Appointments, not orders. CRD puts coverage information for an
Appointment that is `basedOn` a ServiceRequest on that ServiceRequest, so this module finds those
ServiceRequests (in the call's Bundle, or read from the EHR's FHIR server) and hands the rest of
the pipeline the same kind of order Bundle order-sign would send. An Appointment based on no order
codes what is booked on itself (CRD 2.2 profile-appointment-no-order: `serviceType`), so it is
handed on as an order of its own. An order that cannot be had is reported, with the reason, so the
answer can say what it could not check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.codes import not_the_patients_role
from service.fhir.client import FhirError
from service.hooks.models import malformed_order
from service.modifiers import MODIFIER, Carried
from service.orders import DraftOrders
from service.references import (
    Resolve,
    local_reference,
    may_name_an_untold_patient,
    names_another_patient,
    on_server,
    parse_reference,
    whom_it_names,
)
from service.shapes import contained_by_id, dicts, reference_of, reference_target

Reader = Callable[[str], dict[str, Any] | None]
CANCELLED = ("cancelled", "noshow", "entered-in-error")
# an order in one of these states will not be carried out: nothing to judge, and no coverage
# information is written on it (a booking or dispatch naming one is reported, never judged)
WITHDRAWN = {"revoked": "it was revoked", "entered-in-error": "it was entered in error"}


def withdrawn(order: Mapping[str, Any]) -> str | None:
    """Why the order will not be carried out (its status), or None when it may be."""
    status = order.get("status")
    return WITHDRAWN.get(status) if isinstance(status, str) else None


# why an order that was read is not judged (`UnreadOrder.not_used`): what to do next is then not to
# send it again once it can be read. NOT_VALID: read from the EHR's FHIR server, and not one this service
# can read as it says and send back (service/hooks/models.py `malformed_order`; the call's own would be a
# 400, but the server's data is not the call's)
WITHDRAWN_ORDER, ANOTHER_PATIENTS, NOT_VALID = "withdrawn", "another patient's", "not valid"
# an encounter hook's open order given as the patient's whose patient link names no Patient this service can
# tell (a Group, an identifier or a name alone, a contained Patient): R4's `patient` search parameter
# (`subject.where(resolve() is Patient)`) never finds one, so whose it is cannot be told (review29e)
WHOSE_UNTOLD = "whose it is cannot be told"
# why an Appointment booked is not checked whose participants name no Patient this service can tell, and may
# name one (`whose_appointment`: an identifier or a name alone; subject29b)
UNTOLD_APPOINTMENT = "names no patient by its participants, so whose appointment it is cannot be told"
# a path to an element that a reason may quote (`.subject`, `.extension[1]`): the server's own keys are not
_QUOTABLE_PATH = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}|\[[0-9]{1,6}\]){1,8}")


def not_to_judge(
    order: Mapping[str, Any],
    patient_id: str,
    server: str | None,
    resolve: Resolve | None = None,
    read: bool = False,
) -> tuple[str, str] | None:
    """(why, `UnreadOrder.not_used`) when an order found (dispatched or booked) is not to be judged:
    another patient's (`names_another_patient`), or one `not_to_judge_as_held` sets aside; None when it is
    to be judged. The one rule of order-dispatch and appointment-book (the encounter hooks' open orders,
    another patient's left out before, are asked `not_to_judge_as_held` alone)."""
    if names_another_patient(order, patient_id, server, resolve):
        return "it is an order for another patient", ANOTHER_PATIENTS
    return not_to_judge_as_held(order, read)


def not_to_judge_as_held(order: Mapping[str, Any], read: bool) -> tuple[str, str] | None:
    """(why, `UnreadOrder.not_used`) when an order found is, as it is written, not to be judged: one that
    will not be carried out (`withdrawn`, asked before validity: a withdrawn order is reported whatever it
    is), or one `read` as the EHR holds it (from its FHIR server, or an encounter hook's open orders
    prefetched) that is not valid (`malformed_order`: judged, it was sent back with a `subject: null`); None
    when it is to be judged. Every order must hold the patient link R4 requires of its type
    (`malformed_order`, `REQUIRED_PATIENT_LINKS`): one the call hands over without it (a draft, a dispatched
    order prefetched, a booked one in the call's Bundle) is a 400, one `read` as the EHR holds it is set
    aside here. An
    order holding a `modifierExtension` of its own (one this service does not understand, or one that
    is none of FHIR's) is not read as withdrawn: the modifier may change what its status means, and FHIR
    forbids reading a resource past a modifier not understood (extensibility.html#modifierExtension); it
    is not valid, or judged (and reported as not understood), as one with any other status is."""
    if MODIFIER not in order and (why := withdrawn(order)) is not None:
        return why, WITHDRAWN_ORDER
    if read and (found := malformed_order(order)) is not None:
        where, must = found
        element = where[1:] if _QUOTABLE_PATH.fullmatch(where) else "an element"
        return f"it is not valid FHIR as the EHR's FHIR server holds it ({element} {must})", NOT_VALID
    return None


# why a dispatched or booked order is set aside that a card reports whatever the order orders: what the EHR
# holds of the order itself, to be acted on there (not to send a withdrawn order again, to correct one not
# valid), where the answer can carry no coverage information for it (none is written on a withdrawn order,
# and one not valid cannot be sent back valid, CRD §resp-47): without the card a primary hook answered an
# office visit so held with nothing at all (`{"cards": []}`, CRD §hook-16; ehr27, review27c)
REPORTED_WHATEVER_ORDERED = (WITHDRAWN_ORDER, NOT_VALID)


def at_hand_when_set_aside(order: Mapping[str, Any], not_used: str) -> Mapping[str, Any] | None:
    """The order an UnreadOrder set aside by `not_to_judge` keeps at hand: none for a withdrawn one or one
    not valid (`REPORTED_WHATEVER_ORDERED`), so it is reported whatever it orders; the order itself else
    (another patient's), so it is reported only when it is one this service has rules for
    (service/pipeline.py)."""
    return None if not_used in REPORTED_WHATEVER_ORDERED else order


CONTAINED = "it is contained in the appointment, not an order of its own that can carry coverage information"


@dataclass(frozen=True)
class UnreadOrder:
    """An order this call could not use, and why: one an Appointment (`appointment`) is based on, or
    a dispatched order itself (`appointment` is then the order). `resource` is the order when it is at
    hand (a contained one, a draft, dispatched or booked order read and not to be judged), so the caller
    can tell whether it mattered (service/pipeline.py: one this service has rules for)."""

    appointment: str
    order: str
    reason: str
    resource: Mapping[str, Any] | None = None
    searched: bool = False  # not one order: the search for the patient's open orders failed
    device: str | None = None  # the order is at hand, but not the Device it is coded by (this one)
    others_searched: bool = False  # (searched) the patient's other open orders were found and judged
    # the request element naming an order that was neither prefetched nor readable (the call names no
    # FHIR server): when no order of the call is at hand, the call cannot be answered (412)
    needed_at: str | None = None
    technical: bool = False  # the EHR's FHIR server failed to answer (not: it has no such resource)
    # the order is at hand, but carries these modifier extensions (or what it is read through does)
    modifiers: Carried = field(default_factory=Carried)
    # the order (or the appointment booking it) was read, and is not to be judged: WITHDRAWN_ORDER,
    # ANOTHER_PATIENTS, NOT_VALID or WHOSE_UNTOLD; None when it could not be read or used as an order at all
    not_used: str | None = None
    draft: bool = False  # a draft order of the call (order-select/-sign), not one dispatched or booked
    open: bool = False  # an open order of the patient's an encounter hook found (service/call_orders.py)
    # a card reports it (service/pipeline.py: an order at hand, when this service has rules for it); one
    # booked not reported still says why its Appointment was not checked, in its coverage information
    reported: bool = True

    @property
    def booked(self) -> bool:
        """Whether the order is one an Appointment being booked is based on."""
        return self.appointment != self.order


def _order_reference(reference: str, fhir_server: str | None) -> tuple[str | None, str]:
    """(`ServiceRequest/id`, "") for a reference to a ServiceRequest this call can read, (None, why
    not) for one it cannot, (None, "") for a reference to something else."""
    parsed = parse_reference(reference)
    if parsed is None:
        return None, "the reference is not a valid FHIR reference" if "ServiceRequest/" in reference else ""
    if parsed.type != "ServiceRequest":
        return None, ""
    if not on_server(parsed, fhir_server):
        return None, "it is held on another FHIR server than the one this call names"
    return parsed.local, ""


def _may_be_order(target: str, in_call: DraftOrders, fhir_server: str | None) -> bool:
    """Whether a `basedOn` reference names an order (a ServiceRequest, contained, in the call or on a
    server), or one that cannot be told (then reported unread); not: a reference to anything else."""
    order = in_call.get(target)
    if target.startswith("#") or (order is not None and order.get("resourceType") == "ServiceRequest"):
        return True
    reference, reason = _order_reference(target, fhir_server)
    return reference is not None or bool(reason)


def based_on(appointment: Mapping[str, Any], booking: DraftOrders, server: str | None = None) -> list[str]:
    """`Type/id` of each order the Appointment is `basedOn`: the order in the `booking`'s Bundle
    the reference resolves to (by its fullUrl too), else the order the reference names on the call's
    FHIR `server` (one named as another server's is another order, whatever its id)."""
    orders = []
    for target in (reference_target(b) for b in dicts(appointment.get("basedOn"))):
        order = booking.get(target) if target else None
        reference = reference_of(order) if order is not None else local_reference(target, server)
        if reference:
            orders.append(reference)
    return orders


def whose_appointment(
    appointment: Mapping[str, Any],
    patient_id: str,
    server: str | None = None,
    resolve: Resolve | None = None,
) -> bool | None:
    """Whether the Appointment is for the call's patient: True when one of its participants names that
    patient, or none names a Patient nor may (a Practitioner and a Location alone: it names no patient at
    all); False when one names another Patient and none this one; None when whose it is cannot be told: no
    participant names a Patient this service can tell, and one whose `type` says no role only another takes
    (`codes.not_the_patients_role`: an attender, a translator) may name one (`may_name_an_untold_patient`:
    an identifier or a name alone, a `urn:uuid:` the call's Bundle does not give to a Patient with an id, a
    contained Patient). Each actor is read as an order's patient link is (`whom_it_names`): a Patient of the
    same id held on another FHIR server than the call's is another person, and a `urn:uuid:` is looked up
    in the call's Bundle (`resolve`, as a draft's subject is: review29e). subject29b: an identifier-only
    participant was the call's patient's, as a draft's subject so written is; an Appointment, unlike a
    draft, says whose it is only by its participants, and an identifier (another patient's MRN) names no
    Patient this service can tell."""
    participants = dicts(appointment.get("participant"))
    actors = [p.get("actor") for p in participants]
    whom = {whom_it_names(actor, patient_id, server, resolve) for actor in actors}
    if True in whom:
        return True
    if False in whom:
        return False
    inside = contained_by_id(appointment)

    def within(target: str) -> Mapping[str, Any] | None:
        """What a reference names in the Appointment (`#id`) or the call's Bundle (`resolve`)."""
        if target.startswith("#"):
            return inside.get(target[1:])
        return resolve(target) if resolve is not None else None

    # a participant whose `type` says a role only another takes (an attender, a translator) is not the
    # patient (review30c item 4: a display-only attender beside a Practitioner or a HealthcareService made
    # the Appointment one whose patient cannot be told), unless its actor says it is a Patient: then its role
    # is the one misstated (review31c: another patient's MRN typed the attender was judged as the call's)
    maybe_the_patients = [
        p.get("actor")
        for p in participants
        if not not_the_patients_role(p.get("type")) or _says_a_patient(p.get("actor"), within)
    ]
    return None if any(may_name_an_untold_patient(actor, within) for actor in maybe_the_patients) else True


def _says_a_patient(actor: Any, within: Resolve) -> bool:
    """Whether a participant's actor says it is a Patient: its `type` does, or it refers to a Patient the
    Appointment contains or the call's Bundle gives (`within`), whatever its participant's role says."""
    if not isinstance(actor, Mapping):
        return False
    kind = actor.get("type")
    if isinstance(kind, str) and kind.strip().rsplit("/", 1)[-1] == "Patient":
        return True
    target = reference_target(actor)
    named = within(target.strip()) if isinstance(target, str) else None
    return isinstance(named, Mapping) and named.get("resourceType") == "Patient"


def for_patient(
    appointment: Mapping[str, Any],
    patient_id: str,
    server: str | None = None,
    resolve: Resolve | None = None,
) -> bool:
    """Whether the Appointment is for the call's patient (`whose_appointment`; one whose patient cannot be
    told is not)."""
    return whose_appointment(appointment, patient_id, server, resolve) is True


def appointment_orders(
    appointments: Mapping[str, Any], patient_id: str, read: Reader | None, fhir_server: str | None = None
) -> tuple[dict[str, Any], list[UnreadOrder]]:
    """(a collection Bundle of the ServiceRequests the booked Appointments are based on, and of the
    patient's Appointments based on none, the orders that could not be read). Cancelled appointments
    are skipped; each order appears once."""
    in_call = DraftOrders(appointments, fhir_server)
    found: dict[str, dict[str, Any]] = {}
    unread: list[UnreadOrder] = []
    for appointment in in_call.resources:
        if appointment.get("resourceType") != "Appointment" or appointment.get("status") in CANCELLED:
            continue
        based = (reference_target(b) for b in dicts(appointment.get("basedOn")))
        targets = [t for t in based if t and _may_be_order(t, in_call, fhir_server)]
        whose = whose_appointment(appointment, patient_id, fhir_server, in_call.get)
        if not targets:  # based on no order: it is the order (profile-appointment-no-order)
            if whose is True:
                found.setdefault(reference_of(appointment), appointment)
            elif whose is None:  # said on a card (another patient's is left out, as before)
                where = reference_of(appointment)
                unread.append(
                    UnreadOrder(where, where, f"it {UNTOLD_APPOINTMENT}", appointment, not_used=WHOSE_UNTOLD)
                )
            continue
        if whose is not True:
            reason, not_used = (
                ("the appointment is for another patient", ANOTHER_PATIENTS)
                if whose is False
                else (f"the appointment {UNTOLD_APPOINTMENT}", WHOSE_UNTOLD)
            )
            unread += [UnreadOrder(reference_of(appointment), t, reason, not_used=not_used) for t in targets]
            continue
        inside_by_id = contained_by_id(appointment)
        for target in targets:
            where = reference_of(appointment)
            if target.startswith("#"):
                inside = inside_by_id.get(target[1:])
                unread.append(UnreadOrder(where, target, CONTAINED, inside))
                continue
            order, technical, not_used, from_server = in_call.get(target), False, None, False
            if order is not None and order.get("resourceType") == "ServiceRequest":
                reference, reason = reference_of(order), ""
            else:
                reference, reason = _order_reference(target, fhir_server)
                if reference is None:
                    if reason:
                        unread.append(UnreadOrder(where, target, reason))
                    continue
                if reference in found:
                    continue
                order, reason, technical = _read(read, reference)
                from_server = True
            at_hand = None  # an order read, not to be judged: reported when it is one with rules here
            set_aside = (
                None
                if order is None
                else not_to_judge(order, patient_id, fhir_server, in_call.get, from_server)
            )
            if set_aside is not None:
                reason, not_used = set_aside
                at_hand, order = at_hand_when_set_aside(order, not_used), None
            if order is None:
                unread.append(
                    UnreadOrder(where, reference, reason, at_hand, technical=technical, not_used=not_used)
                )
            else:
                found[reference] = order
    entries = [{"resource": order} for order in found.values()]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, unread


def _read(read: Reader | None, reference: str) -> tuple[dict[str, Any] | None, str, bool]:
    """(the order, why not, whether why is the FHIR server's failure)."""
    if read is None:
        return None, "the call gave no FHIR server to read it from", False
    try:
        order = read(reference)
    except FhirError as exc:
        return None, f"the EHR's FHIR server did not return it ({exc.reason})", True
    if order is None or order.get("resourceType") != "ServiceRequest":
        return None, "the EHR's FHIR server does not have it", False
    return order, "", False
