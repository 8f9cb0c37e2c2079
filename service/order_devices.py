"""The Device a DeviceRequest names (`codeReference`), where its code may be: found among the EHR's
prefetch, else read from the call's FHIR server within the call's deadline. A Device that cannot be
had is remembered with the reason, so that an order whose code could not be read is reported as not
checked rather than taken for an order this service holds no rules for. Each Device is asked for
once a call: recognising the orders, and looking at what they are read through for modifier
extensions (service/modifiers.py), ask again for the same one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from service.call_orders import prefetched_resources
from service.fhir.client import FhirClient, FhirError
from service.fhir.query_pool import FhirUse
from service.orders import DraftOrders, device_lookup, named_device
from service.references import belongs_to_patient, on_server, parse_reference

log = logging.getLogger(__name__)


class DeviceReader:
    """`reader(reference)`: the Device, or None when it cannot be had (then `failed[reference]` says
    why). A Device of another patient, or held on another server, is treated as unavailable, never
    used."""

    def __init__(
        self,
        client: FhirClient | None,
        patient_id: str,
        server: str | None = None,
        prefetch: Mapping[str, Any] | None = None,
        use: FhirUse | None = None,
    ) -> None:
        self._client, self._patient_id, self._server = client, patient_id, server
        self._use = use or FhirUse()  # where the call counts every query it makes
        self._prefetch = prefetch or {}
        self._prefetched: dict[str, dict[str, Any]] | None = None  # by `Type/id`, opened at the first ask
        self.failed: dict[str, str] = {}
        self.server_failed: set[str] = set()  # of `failed`, those the FHIR server failed to answer for
        self._asked: dict[str, dict[str, Any] | None] = {}  # each reference's answer: it is read once

    def __call__(self, reference: str) -> dict[str, Any] | None:
        if reference not in self._asked:
            self._asked[reference] = self._usable(reference)
        return self._asked[reference]

    def _usable(self, reference: str) -> dict[str, Any] | None:
        device = self._find(reference)
        if device is not None and not belongs_to_patient(
            device, self._patient_id, unlinked=True, server=self._server
        ):
            return self._unavailable(reference, "it is another patient's")
        return device

    def why_unavailable(self, order: Mapping[str, Any], drafts: DraftOrders) -> str | None:
        """Why the Device an order is coded by (`orders.device_lookup`) could not be had: as the call
        shows it, else as this reader found when it was asked; None when it was had, or the order
        names none."""
        device, why = device_lookup(order, drafts)
        if why is not None or device is not None:
            return why
        reference = named_device(order)
        return self.failed.get(reference) if reference is not None else None

    def _find(self, reference: str) -> dict[str, Any] | None:
        if self._prefetched is None:
            self._prefetched = prefetched_resources(self._prefetch)
        parsed = parse_reference(reference)
        if parsed is None:
            return None
        if not on_server(parsed, self._server):  # the prefetch is the call's server's too
            return self._unavailable(reference, "it is held on another FHIR server")
        device = self._prefetched.get(parsed.local)
        if device is not None:
            return device
        if self._client is None:
            return self._unavailable(reference, "the call gave no FHIR server to read it from")
        try:
            device = self._use.read(self._client, parsed.local)
        except FhirError as exc:
            self.server_failed.add(reference)
            return self._unavailable(reference, f"the EHR's FHIR server did not return it ({exc.reason})")
        if device is None:
            return self._unavailable(reference, "the EHR's FHIR server does not have it")
        return device

    def _unavailable(self, reference: str, why: str) -> None:
        log.warning("could not use %s: %s", reference, why)
        self.failed[reference] = why
        return None
