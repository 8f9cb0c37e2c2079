"""What each hook's context holds about who and where, as the hook's definition says: one row per hook.

The request check (`models.parse_hook_request`) and the OpenAPI description read this table; which
orders a call carries (draftOrders, selections, appointments, dispatchedOrders) follows from where
its service finds them (`OrderSource`) and is checked there.

Sources, per row:
- the hook definitions of the CDS Hooks library (HL7/cds-hooks-library `input/pagecontent/<hook>.md`
  and `input/fsh/logicals/CDSHook<Hook>Context.fsh`): order-select/-sign 1.0, appointment-book 1.0,
  encounter-start/-discharge 1.0, order-dispatch 1.1; `ord-1`: a reference is `{type}/{id}`;
- the Inferno CRD kit's checks of the same (`cross_suite/hook_request_field_validation.rb`:
  `context_required_fields_by_hook`, `context_user_types_by_hook`, `order_dispatch_context_check`);
- CRD `hooks.md` for the request types order-dispatch carries (`REQUEST_TYPES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from service.orders import REQUEST_TYPES

CLINICIANS = ("Practitioner", "PractitionerRole")  # CRD hooks.md: administrative staff included


@dataclass(frozen=True)
class HookContextRules:
    """One hook's context rules: whom `userId` may name, whether `encounterId` is REQUIRED, and for
    order-dispatch the performer and the types of the orders dispatched."""

    user_types: tuple[str, ...]  # the types `context.userId` may name; () when the hook has no userId
    encounter_required: bool = False  # else OPTIONAL (a bare id when present)
    performer: bool = False  # `context.performer`, REQUIRED: a `{type}/{id}` reference of any type
    order_types: frozenset[str] = frozenset()  # the request types `context.dispatchedOrders` may name


HOOK_CONTEXTS: Mapping[str, HookContextRules] = MappingProxyType(
    {
        "order-select": HookContextRules(CLINICIANS),
        "order-sign": HookContextRules(CLINICIANS),
        # the user books for a patient, or the patient or their proxy books (portal self-scheduling)
        "appointment-book": HookContextRules((*CLINICIANS, "Patient", "RelatedPerson")),
        "encounter-start": HookContextRules(CLINICIANS, encounter_required=True),
        "encounter-discharge": HookContextRules(CLINICIANS, encounter_required=True),
        # no userId: the performer is whom the orders are dispatched to (any type: "Practitioner,
        # PractitionerRole, Organization, CareTeam, etc."); the orders are the CRD request types
        "order-dispatch": HookContextRules((), performer=True, order_types=REQUEST_TYPES),
    }
)


def context_rules(hook: str) -> HookContextRules:
    """The rules of `hook`'s context (every hook a service of the registry answers has a row)."""
    return HOOK_CONTEXTS[hook]
