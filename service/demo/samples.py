"""The packaged sample requests' prefetch, generated from the demo patient bundles.

A sample request is only self-contained when its prefetch holds everything the service declares in
discovery: then any running service answers it for real without a FHIR server. Written by hand,
that prefetch would drift from the patient bundles and from the templates (which follow the
policies' codes), so it is generated here: every discovery template of the request's hook is
rendered for its patient and run as a FHIR search over that patient's transaction Bundle, in
memory, with the few search parameters the templates use. A template this search does not
understand is an error, never an empty result.

`python -m service.demo.samples` rewrites the prefetch of every request file in
`service/demo/data/requests/`; `--check` only reports the files that differ (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from service.catalog import load_catalog
from service.fhir.prefetch import TOKEN
from service.fhir.queries import policy_templates, policy_trial_templates
from service.references import belongs_to_patient
from service.registry import discovery_document

DATA = Path(__file__).resolve().parent / "data"
PATIENTS = DATA / "patients"
REQUESTS = DATA / "requests"
EHR_BASE = "http://ehr.example.org/fhir"  # the fullUrl base of the sample searchsets (no real server)

Resource = dict[str, Any]

# The resource types the templates search (by `patient`, read as `belongs_to_patient` reads it).
SEARCHED_TYPES = frozenset(
    {
        "AllergyIntolerance",
        "Condition",
        "Coverage",
        "Device",
        "DeviceRequest",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Organization",
        "Procedure",
        "QuestionnaireResponse",
        "ServiceRequest",
    }
)

# `_include` targets (and `_has` reverse chains): the element of the searched resource whose
# references are included (the resources found by those references).
INCLUDES = {
    "Coverage:payor": "payor",
    "MedicationRequest:medication": "medicationReference",
    "MedicationStatement:medication": "medicationReference",
}


class UnsupportedTemplate(ValueError):
    """A prefetch template uses a search this in-memory search does not implement."""


def _first(resource: Mapping[str, Any], *paths: str) -> str:
    """The first present date of `paths` (`a.b` reads a nested element), or '' when none is."""
    for path in paths:
        value: Any = resource
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            return value
    return ""


SORT_DATES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "onset-date": lambda r: _first(r, "onsetDateTime", "onsetPeriod.start"),
    "authoredon": lambda r: _first(r, "authoredOn"),
    "date": lambda r: _first(
        r, "performedDateTime", "performedPeriod.start", "effectiveDateTime", "effectivePeriod.start"
    ),
}


def _references(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item["reference"] for item in items if isinstance(item, Mapping) and "reference" in item]


def _codings(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The codings `code` searches: a DeviceRequest's `codeCodeableConcept`, else `code`."""
    code = resource.get("codeCodeableConcept" if resource.get("resourceType") == "DeviceRequest" else "code")
    codings = code.get("coding", []) if isinstance(code, Mapping) else []
    return [(c.get("system", ""), c.get("code", "")) for c in codings]


def _token_matches(resource: Mapping[str, Any], tokens: str) -> bool:
    """FHIR token search on `code`: `system|code` (or `system|` for any code of the system), OR-ed."""
    wanted = [token.partition("|") for token in tokens.split(",")]
    return any(
        system == want_system and (not want_code or code == want_code)
        for system, code in _codings(resource)
        for want_system, _, want_code in wanted
    )


class PatientChart:
    """One patient's resources (from a transaction Bundle), searchable as a FHIR server would."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.resources: list[Resource] = [entry["resource"] for entry in bundle.get("entry", [])]
        self.by_reference = {f"{r['resourceType']}/{r['id']}": r for r in self.resources}

    def read(self, reference: str) -> Resource | None:
        return self.by_reference.get(reference)

    def search(self, resource_type: str, params: Iterable[tuple[str, str]]) -> Resource:
        """The searchset a server returns for `resource_type?params` (matches first, then includes)."""
        if resource_type not in SEARCHED_TYPES:
            raise UnsupportedTemplate(f"no search of {resource_type} in the sample generator")
        matches = [r for r in self.resources if r["resourceType"] == resource_type]
        includes: list[str] = []
        sort: str | None = None
        for name, value in params:
            if name == "patient":
                patient_id = value.removeprefix("Patient/")
                matches = [r for r in matches if belongs_to_patient(r, patient_id, unlinked=False)]
            elif name == "status":
                matches = [r for r in matches if r.get("status") in value.split(",")]
            elif name == "code":
                matches = [r for r in matches if _token_matches(r, value)]
            elif name.startswith("_has:"):
                referenced = self._referenced_by(name, value)
                matches = [r for r in matches if f"{r['resourceType']}/{r['id']}" in referenced]
            elif name == "_include" and value in INCLUDES:
                includes.append(INCLUDES[value])
            elif name == "_sort" and value.lstrip("-") in SORT_DATES:
                sort = value
            else:
                raise UnsupportedTemplate(f"{resource_type}?{name}={value} is not implemented")
        if sort is not None:
            date = SORT_DATES[sort.lstrip("-")]
            matches.sort(key=lambda r: r["id"])
            matches.sort(key=date, reverse=sort.startswith("-"))
        included = self._included(matches, includes)
        entries = [_entry(r, "match") for r in matches] + [_entry(r, "include") for r in included]
        bundle: Resource = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
        if entries:  # FHIR JSON has no empty arrays: an empty searchset has no `entry`
            bundle["entry"] = entries
        return bundle

    def _referenced_by(self, name: str, value: str) -> set[str]:
        """`_has:<type>:<param>:<child>` = `value`: what `<param>` references in the `<type>` resources
        that `<child>=value` finds (`_has:Coverage:payor:patient=p1`: the payers of p1's Coverages)."""
        parts = name.split(":", 3)
        element = INCLUDES.get(":".join(parts[1:3])) if len(parts) == 4 else None
        if element is None:
            raise UnsupportedTemplate(f"{name}={value} is not implemented")
        found = self.search(parts[1], [(parts[3], value)]).get("entry", [])
        return {
            ref
            for e in found
            if e["search"]["mode"] == "match"
            for ref in _references(e["resource"].get(element))
        }

    def _included(self, matches: list[Resource], elements: list[str]) -> list[Resource]:
        found: dict[str, Resource] = {}
        for resource in matches:
            for element in elements:
                for reference in _references(resource.get(element)):
                    target = self.read(reference)
                    if target is not None:
                        found.setdefault(reference, target)
        return list(found.values())

    def run(self, query: str) -> Resource | None:
        """A rendered template: `Type/id` is a read (None when absent), `Type?params` a search."""
        path, question, query_string = query.partition("?")
        if not question and path.count("/") == 1:
            return self.read(path)
        return self.search(path, parse_qsl(query_string, keep_blank_values=True))


def _entry(resource: Resource, mode: str) -> Resource:
    return {
        "fullUrl": f"{EHR_BASE}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def discovery_templates() -> dict[str, dict[str, str]]:
    """Each hook's prefetch templates, as the shipped catalog's discovery document declares them."""
    catalog = load_catalog()
    document = discovery_document(
        policy_templates(catalog.terminology), policy_trial_templates(catalog.order_codes)
    )
    return {service["hook"]: service.get("prefetch", {}) for service in document["services"]}


def prefetch_for(body: Mapping[str, Any], chart: PatientChart, templates: Mapping[str, str]) -> Resource:
    """The complete prefetch of `body`: every template rendered for its patient (and encounter) and run
    on `chart`; but those of the orders the call is about (order-dispatch's), which no patient bundle
    holds: the sample carries them itself (under a key of its own)."""
    context = body["context"]
    # the context's plain ids a template may name (the encounter hooks' Encounter: `encounterId`)
    ids = {f"context.{name}": context[name] for name in ("patientId", "encounterId") if name in context}
    prefetch: Resource = {}
    for key, template in templates.items():
        if any(token.startswith("context.dispatchedOrders.") for token in TOKEN.findall(template)):
            continue
        rendered = TOKEN.sub(lambda m: ids.get(m.group(1), "\0"), template)
        if "\0" in rendered:
            raise UnsupportedTemplate(f"prefetch {key}: only {', '.join(sorted(ids))} are filled in")
        prefetch[key] = chart.run(rendered)
    return prefetch


def chart_of(patient_id: str) -> PatientChart:
    path = PATIENTS / f"{patient_id}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no demo patient bundle {path.name} for a sample request")
    return PatientChart(json.loads(path.read_text(encoding="utf-8")))


def with_booked_orders(context: Mapping[str, Any], chart: PatientChart) -> Resource:
    """appointment-book's context with the orders its Appointments are based on beside them, copied
    from the chart: no prefetch template can carry them, and without them the service must read
    them from the EHR. An order already in the Bundle is kept as it is."""
    bundle = dict(context["appointments"])
    entries = list(bundle.get("entry", []))
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries}
    for appointment in [e["resource"] for e in entries if e["resource"]["resourceType"] == "Appointment"]:
        for reference in _references(appointment.get("basedOn")):
            order = chart.read(reference)
            if order is not None and reference not in present:
                present.add(reference)
                entries.append({"fullUrl": f"{EHR_BASE}/{reference}", "resource": order})
    return {**context, "appointments": {**bundle, "entry": entries}}


def with_prefetch(body: Mapping[str, Any], templates: Mapping[str, dict[str, str]]) -> Resource:
    """`body` with the prefetch of its hook's templates generated (and, for appointment-book, the
    booked orders); prefetch keys it fills itself (order-dispatch's `dispatchedServiceRequests`, the
    orders the call is about) and the other members are kept as they are, in order."""
    chart = chart_of(body["context"]["patientId"])
    generated = prefetch_for(body, chart, templates[body["hook"]])
    own = {key: value for key, value in body.get("prefetch", {}).items() if key not in generated}
    context = body["context"]
    if "appointments" in context:
        context = with_booked_orders(context, chart)
    return {**body, "context": context, "prefetch": {**generated, **own}}


def serialise(body: Mapping[str, Any]) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def generated_samples(directory: Path = REQUESTS) -> dict[Path, str]:
    """Every request file of `directory` with its prefetch generated, as the text it should hold."""
    templates = discovery_templates()
    return {
        path: serialise(with_prefetch(json.loads(path.read_text(encoding="utf-8")), templates))
        for path in sorted(directory.glob("*.json"))
    }


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m service.demo.samples", description=summary)
    parser.add_argument("--check", action="store_true", help="report stale files instead of writing them")
    args = parser.parse_args(argv)
    stale = [(path, text) for path, text in generated_samples().items() if path.read_text("utf-8") != text]
    for path, text in stale:
        if args.check:
            print(f"stale: {path.name}")
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
