"""CRD 2.2 CRDMetricData from audit records: the user's and organization's NPIs when the call
carries them (data-absent otherwise), one record per routed payer with its own coverage
information, and a checker that rejects what the logical model forbids."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.catalog import Catalog
from service.metrics import metric_data
from tests.audit_support import ChartFactory, coverage_infos, metric_problems, secret_call
from tests.builders import meeting_chart
from tests.support import no_client, open_settings, post_json

NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.fixture
def app(compiled_catalog: Catalog) -> Flask:
    return create_app(open_settings(), compiled_catalog, client_factory=no_client)


def recorded(app: Flask, body: dict[str, Any], path: str) -> dict[str, Any]:
    assert post_json(app.test_client(), path, body).status_code == 200
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    return dict(record)


def test_the_npis_of_a_practitioner_role_user_and_its_organization(app: Flask) -> None:
    path, body, _ = secret_call("order-select-62362-demo-meets")
    body["context"]["userId"] = "PractitionerRole/role-1"
    body["prefetch"]["user"] = {
        "resourceType": "PractitionerRole",
        "id": "role-1",
        "practitioner": {
            "reference": "Practitioner/p-1",
            "identifier": {"system": NPI, "value": "1234567893"},
        },
        "organization": {"reference": "Organization/clinic-1"},
    }
    body["prefetch"]["clinic"] = {
        "resourceType": "Organization",
        "id": "clinic-1",
        "identifier": [{"system": NPI, "value": "1992753880"}],
    }
    [metric] = metric_data(recorded(app, body, path))
    assert metric_problems(metric) == []
    assert metric["providerId"] == {"system": NPI, "value": "1234567893"}
    assert metric["groupId"] == {"system": NPI, "value": "1992753880"}


def test_npis_the_call_does_not_carry_are_data_absent(app: Flask) -> None:
    path, body, _ = secret_call("order-select-62362-demo-meets")
    [metric] = metric_data(recorded(app, body, path))
    assert metric_problems(metric) == []
    assert "value" not in metric["providerId"]
    assert metric["providerId"]["_value"]["extension"][0]["valueCode"] == "unknown"


def test_a_crd_2_2_technical_assertion_is_exported_as_the_model_allows(compiled_catalog: Catalog) -> None:
    """Under CRD 2.2 a technical failure is `covered: indeterminate` (§resp-43), a code of the
    CRDMetricData binding (CRD 2.2.1 CRDCoveredInfo, the coverage-information extension's own).
    Before, the checker knew only CRD 2.0.1's three codes and rejected this export (audit review,
    "not a finding, noted")."""
    app = create_app(
        open_settings(),
        compiled_catalog,
        client_factory=ChartFactory(meeting_chart(), failing=("Procedure",)),
    )
    path, body, _ = secret_call("order-sign-implant-demo-meets")
    body["extension"]["davinci-crd.requestedVersion"] = "2.2"
    [metric] = metric_data(recorded(app, body, path))
    assert "indeterminate" in [i.get("covered") for i in coverage_infos(metric)]
    assert metric_problems(metric) == []


def test_a_call_routed_to_two_payers_gives_one_record_per_payer(app: Flask) -> None:
    path, body, _ = secret_call("order-select-62362-demo-meets")
    record = recorded(app, body, path)
    [payer] = record["payers"]
    [assertion] = record["assertions"]
    second = {**payer, "coverage": "Coverage/second", "identifier": {"system": "urn:payer", "value": "other"}}
    record["payers"].append(second)
    record["assertions"].append(
        {**assertion, "coverage": "Coverage/second", "assertion_id": "second-assertion"}
    )
    metrics = list(metric_data(record))
    assert [m["payerId"]["value"] for m in metrics] == [payer["identifier"]["value"], "other"]
    for metric, expected in zip(metrics, [assertion["assertion_id"], "second-assertion"], strict=True):
        assert metric_problems(metric) == []
        assert [i["assertionId"] for i in coverage_infos(metric)] == [expected]


def test_the_assertions_on_the_coverage_of_a_payer_without_rules_here_are_exported_too(app: Flask) -> None:
    """A call with a GEHA Coverage and one of a payer this service holds no policy for answers both
    (the second "no rules here"): both assertions were issued, so both are in the metric data, the
    second on a line whose payerId is data-absent (before: only GEHA's line, the other lost)."""
    path, body, _ = secret_call("order-select-62362-demo-meets")
    record = recorded(app, body, path)
    [payer] = record["payers"]
    [assertion] = record["assertions"]
    unknown = {**payer, "coverage": "Coverage/other", "payer": None, "identifier": None, "policy_id": None}
    record["payers"].append(unknown)
    record["assertions"].append(
        {**assertion, "coverage": "Coverage/other", "assertion_id": "other-assertion"}
    )
    metrics = list(metric_data(record))
    assert [m["payerId"].get("value") for m in metrics] == [payer["identifier"]["value"], None]
    for metric, expected in zip(metrics, [assertion["assertion_id"], "other-assertion"], strict=True):
        assert metric_problems(metric) == []
        assert [i["assertionId"] for i in coverage_infos(metric)] == [expected]
    assert [m["payerId"]["value"] for m in metric_data(record, "geha")] == ["geha"]


def test_one_payer_named_without_an_identifier_is_exported_alone(app: Flask) -> None:
    """payers.yaml may name a payer by its names only (no `identifiers`): `--payer` with its key
    gives its own line, payerId data-absent, and not the other payer's (before: a TypeError)."""
    path, body, _ = secret_call("order-select-62362-demo-meets")
    record = recorded(app, body, path)
    [payer] = record["payers"]
    [assertion] = record["assertions"]
    unnamed = {**payer, "coverage": "Coverage/acme", "payer": "acme", "identifier": None}
    record["payers"].append(unnamed)
    record["assertions"].append({**assertion, "coverage": "Coverage/acme", "assertion_id": "acme-assertion"})
    [metric] = metric_data(record, "acme")
    assert "value" not in metric["payerId"]
    assert [i["assertionId"] for i in coverage_infos(metric)] == ["acme-assertion"]
    assert [m["payerId"]["value"] for m in metric_data(record, "geha")] == ["geha"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.pop("hookInstance"), "CRDMetricData.hookInstance is required"),
        (lambda m: m.update(tokenUse="maybe"), "tokenUse"),
        (lambda m: m.pop("request"), "CRDMetricData.request is required"),
        (lambda m: m["request"][0].pop("orderDetail"), "request.orderDetail is required"),
        (lambda m: m.update(requestTime="yesterday"), "requestTime"),
        (lambda m: m["payerId"].pop("system"), "payerId.system is required"),
        (lambda m: coverage_infos(m)[0].update(covered="unknown"), "coverageInfo.covered"),
        (lambda m: coverage_infos(m)[0].update(paNeeded="maybe"), "coverageInfo.paNeeded"),
        (lambda m: coverage_infos(m)[0].update(docNeeded="both"), "coverageInfo.docNeeded"),
        (lambda m: coverage_infos(m)[0].update(infoNeeded="payer"), "coverageInfo.infoNeeded"),
    ],
)
def test_the_checker_finds_what_the_model_forbids(app: Flask, change: Any, problem: str) -> None:
    path, body, _ = secret_call("order-select-62362-demo-meets")
    [metric] = metric_data(recorded(app, body, path))
    broken = copy.deepcopy(metric)
    change(broken)
    assert any(problem in p for p in metric_problems(broken))
