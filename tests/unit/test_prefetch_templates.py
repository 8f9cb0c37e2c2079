"""The clinical prefetch templates of discovery are generated from the compiled catalog, and they
are the very searches the service runs when the EHR did not prefetch them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from flask import Flask

from service.app import create_app
from service.catalog import Catalog
from service.fhir.queries import TRIAL_ORDER_KEYS
from service.registry import DISPATCHED_PREFETCH, ENCOUNTER_PREFETCH, OPEN_ORDERS_PREFETCH
from tests.prefetch_support import catalog_with_observation_code, recorded_searches
from tests.support import open_settings, sign_body

NEW_CODE = "99999-9"


def discovery_prefetch(app: Flask, hook: str = "order-sign") -> dict[str, str]:
    services = app.test_client().get("/cds-services").get_json()["services"]
    prefetch: dict[str, str] = next(s["prefetch"] for s in services if s["hook"] == hook)
    return prefetch


def observation_codes(template: str) -> list[str]:
    return dict(parse_qsl(template.partition("?")[2]))["code"].split(",")


def test_a_new_loinc_code_in_the_value_set_shows_in_the_observation_template(
    tmp_path: Path, compiled_catalog: Catalog
) -> None:
    shipped = observation_codes(
        discovery_prefetch(create_app(open_settings(), compiled_catalog))["observations"]
    )
    variant = catalog_with_observation_code(tmp_path, NEW_CODE)
    extended = observation_codes(discovery_prefetch(create_app(open_settings(), variant))["observations"])
    assert f"http://loinc.org|{NEW_CODE}" not in shipped
    assert sorted(extended) == sorted([*shipped, f"http://loinc.org|{NEW_CODE}"])


def test_every_service_declares_the_same_clinical_templates(compiled_catalog: Catalog) -> None:
    """The same templates everywhere; the encounter services also their open orders' searches and
    their Encounter,
    order-dispatch its dispatched orders', order-select and order-sign the trials already ordered."""
    services = create_app(open_settings(), compiled_catalog).test_client().get("/cds-services").get_json()
    declared = {s["hook"]: s["prefetch"] for s in services["services"]}
    trials = {key: declared["order-sign"][key] for key in TRIAL_ORDER_KEYS}
    common = {k: v for k, v in declared["order-sign"].items() if k not in trials}
    for hook, prefetch in declared.items():
        own = {**OPEN_ORDERS_PREFETCH, **ENCOUNTER_PREFETCH} if hook.startswith("encounter-") else {}
        own = DISPATCHED_PREFETCH if hook == "order-dispatch" else own
        own = trials if hook in ("order-select", "order-sign") else own
        assert prefetch == {**common, **own}, hook


def test_each_template_rendered_is_the_search_the_service_runs(tmp_path: Path) -> None:
    """Every clinical template is run as rendered; `painScores` narrowed further by time only (the
    recent scores first, score_window.py), never by anything the template does not say."""
    variant = catalog_with_observation_code(tmp_path, NEW_CODE)
    body = sign_body()
    patient = body["context"]["patientId"]
    searches = recorded_searches(variant, body)
    templates = discovery_prefetch(create_app(open_settings(), variant))
    assert "Coverage" not in {resource_type for resource_type, _ in searches}  # the sample prefetched it
    assert "Organization" not in {resource_type for resource_type, _ in searches}  # and its payers
    for key, template in templates.items():
        if key in ("patient", "coverage", "payerOrganizations"):
            continue
        resource_type, _, query = template.replace("{{context.patientId}}", patient).partition("?")
        wanted = dict(parse_qsl(query))
        if key == "painScores":
            recent = next(p for t, p in searches if t == resource_type and p["code"] == wanted["code"])
            assert {name: value for name, value in recent.items() if name != "date"} == wanted
            assert recent["date"].startswith("ge")
        else:
            assert (resource_type, wanted) in searches, key
    observations = dict(parse_qsl(templates["observations"].partition("?")[2]))
    assert f"http://loinc.org|{NEW_CODE}" in observations["code"].split(",")


def test_pain_scores_have_their_own_template_and_the_other_observations_keep_the_old_key(
    compiled_catalog: Catalog,
) -> None:
    templates = discovery_prefetch(create_app(open_settings(), compiled_catalog))
    pain = compiled_catalog.terminology["pain-score"].codes["loinc"]
    assert sorted(observation_codes(templates["painScores"])) == sorted(f"http://loinc.org|{c}" for c in pain)
    others = observation_codes(templates["observations"])
    assert not {f"http://loinc.org|{c}" for c in pain} & set(others)
    assert "http://idds-crd.org/fhir/CodeSystem/idds-assessment|" in others
    assert "http://loinc.org|75327-7" in others  # life expectancy stays with the few coded Observations
