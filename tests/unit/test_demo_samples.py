"""The packaged sample requests are self-contained: each carries every prefetch key discovery declares,
generated from the patient bundles (so the files cannot drift from them), and each answers as the data
README's request table says with no FHIR server at all, and without asking one anything when it is named."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.demo.runner import patient_files, request_files
from service.demo.samples import PatientChart, UnsupportedTemplate, generated_samples
from service.fhir.prefetch import render
from service.hooks.models import parse_hook_request
from service.pipeline import default_client_factory
from service.registry import service_for_hook
from tests.demo_support import (
    README,
    answer,
    decisions_of,
    packaged_sample,
    readme_promises,
    refusing_fhir_server,
)
from tests.prefetch_support import CountingFactory
from tests.support import open_settings

SAMPLES = [path.stem for path in request_files()]
PROMISES = readme_promises()


@pytest.fixture(scope="module")
def offline_app() -> Flask:
    return create_app(open_settings())


@pytest.fixture(scope="module")
def refusing() -> Iterator[tuple[Flask, CountingFactory, str]]:
    """An app whose calls may name a FHIR server that refuses every connection, with its client
    calls counted."""
    with refusing_fhir_server() as url:
        settings = open_settings(url)
        factory = CountingFactory(default_client_factory(settings.fhir))
        yield create_app(settings, client_factory=factory), factory, url


def test_committed_samples_are_what_the_generator_writes() -> None:
    stale = [path.name for path, text in generated_samples().items() if path.read_text("utf-8") != text]
    assert stale == [], f"stale sample requests (run `python -m service.demo.samples`): {stale}"


def test_the_readme_promises_a_decision_for_every_sample_and_describes_every_patient() -> None:
    assert sorted(PROMISES) == sorted(SAMPLES)
    patients_table = README.read_text("utf-8").split("## Patients", 1)[1].split("###", 1)[0]
    described = set(re.findall(r"^\| [^|]+ \(`([a-z0-9-]+)`\)", patients_table, re.MULTILINE))
    assert described == {path.stem for path in patient_files()}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_key_discovery_declares_is_prefetched(offline_app: Flask, name: str) -> None:
    body = packaged_sample(name)
    services = offline_app.test_client().get("/cds-services").get_json()["services"]
    declared = next(s["prefetch"] for s in services if s["hook"] == body["hook"])
    request = parse_hook_request(body, service_for_hook(body["hook"]))
    needed = {key for key, template in declared.items() if render(template, request) is not None}
    assert needed <= set(body["prefetch"])  # a template naming no order of the call is not needed
    assert body["prefetch"]["patient"]["id"] == body["context"]["patientId"]
    coverage = [e["resource"] for e in body["prefetch"]["coverage"]["entry"]]
    assert {r["resourceType"] for r in coverage} == {"Coverage"}  # CRD's expression includes nothing
    payers = {f"Organization/{e['resource']['id']}" for e in body["prefetch"]["payerOrganizations"]["entry"]}
    payors = {p["reference"] for r in coverage for p in r["payor"]}
    assert payors and payors <= payers


@pytest.mark.parametrize("name", SAMPLES)
def test_without_a_fhir_server_each_sample_gets_the_promised_decision(offline_app: Flask, name: str) -> None:
    body = packaged_sample(name)
    assert "fhirServer" not in body
    outcome = answer(offline_app, body)
    assert outcome.status == 200
    promise = PROMISES[name]
    assert decisions_of(outcome) == ({} if promise.needs_fhir_server else promise.decisions)
    if outcome.data is not None:
        assert outcome.data.unavailable == {}, "prefetch left something to query"


@pytest.mark.parametrize("name", [n for n in SAMPLES if not PROMISES[n].needs_fhir_server])
def test_a_sample_naming_a_fhir_server_asks_it_nothing(
    refusing: tuple[Flask, CountingFactory, str], name: str
) -> None:
    app, factory, url = refusing
    factory.clients.clear()
    outcome = answer(app, dict(packaged_sample(name), fhirServer=url))
    assert factory.calls() == []
    assert decisions_of(outcome) == PROMISES[name].decisions


def _criterion(criteria: list[Any], wanted: str) -> dict[str, Any]:
    for criterion in criteria:
        if criterion["id"] == wanted:
            return dict(criterion)
        found = _criterion(criterion.get("children") or [], wanted)
        if found:
            return found
    return {}


def test_a_modified_ashworth_score_of_zero_after_the_trial_counts_as_zero(offline_app: Flask) -> None:
    """demo-kpwa-spasticity: `1+` before the baclofen trial, `0` after it at best, so 1.5 points (a
    0 must not be read as "no score" and leave a 0.5-point drop from the later `1`)."""
    outcome = answer(offline_app, packaged_sample("order-select-62362-demo-kpwa-spasticity"))
    [determination] = outcome.determinations
    criteria = json.loads(json.dumps(asdict(determination), default=str))["criteria"]
    assert "1.5 points" in _criterion(criteria, "kpwa.spasticity.trial-2pt-4h")["finding"]


@pytest.mark.parametrize(
    "query",
    [
        "Encounter?patient=demo-meets",
        "Condition?patient=demo-meets&clinical-status=active",
        "Organization?_has:Coverage:subscriber:patient=demo-meets",  # only the `_include`d references
        "Organization?_has:Coverage:payor=demo-meets",  # malformed
    ],
)
def test_a_template_the_generator_cannot_run_is_an_error_not_an_empty_result(query: str) -> None:
    chart = PatientChart(json.loads(next(p for p in patient_files() if p.stem == "demo-meets").read_text()))
    with pytest.raises(UnsupportedTemplate):
        chart.run(query)


def test_the_payers_reverse_chain_finds_the_organizations_the_patients_coverages_name() -> None:
    chart = PatientChart(json.loads(next(p for p in patient_files() if p.stem == "demo-meets").read_text()))
    found = chart.run("Organization?_has:Coverage:payor:patient=demo-meets")
    assert found is not None
    assert [e["resource"]["id"] for e in found["entry"]] == ["demo-meets-org-geha"]
    assert chart.run("Organization?_has:Coverage:payor:patient=someone-else") == {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 0,
    }
