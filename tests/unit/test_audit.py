"""The audit trail (CRD §found-37): one record per hook call with who called, about whom, what was
judged and answered, without the FHIR access token or any JWT; refused calls recorded too; a 200
that cannot be recorded becomes 503; `idds-crd audit show|export|purge`."""

from __future__ import annotations

import copy
import json
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text, update

from cards.coverage_information import EXTENSION_URL as COVERAGE_INFORMATION
from service import audit_entry, routes
from service.app import create_app
from service.caller import Caller, set_caller
from service.catalog import Catalog, compile_catalog
from service.cli import main
from service.metrics import metric_data
from service.settings import SettingsError, StoreSettings, settings_from_mapping
from service.shapes import reference_of
from service.store.tables import audit_records
from tests.audit_support import (
    A_JWT,
    ChartFactory,
    approving,
    coverage_infos,
    metric_problems,
    secret_call,
    settled_at_once,
    stored_text,
)
from tests.builders import meeting_chart
from tests.catalog_support import copy_policies
from tests.demo_support import packaged_sample
from tests.number_support import numbered_extensions, with_literals
from tests.observability_support import scrape, total
from tests.support import (
    FHIR_SERVER,
    assert_outcome,
    load_sample,
    no_client,
    open_settings,
    post_json,
    with_fhir,
)

ISS = "https://ehr.example.org"


@pytest.fixture(autouse=True)
def _exports_read_up_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    settled_at_once(monkeypatch)


def audited_app(catalog: Catalog, url: str = "sqlite://", factory: Any = no_client) -> Flask:
    """An app on the database at `url` whose calls come from an authenticated client (as the JWT
    guard would set it), with a fresh jti per request."""
    app = create_app(open_settings(store=StoreSettings(url=url)), catalog, client_factory=factory)
    counter = iter(range(1_000_000))

    @app.before_request
    def authenticated() -> None:
        set_caller(Caller(ISS, f"jti-{next(counter)}", (FHIR_SERVER,)))

    return app


def trail(app: Flask) -> Any:
    return app.extensions["idds_crd"].stores.audit


def call(app: Flask, name: str) -> tuple[dict[str, Any], Any, str]:
    """(request body, response, token) of a packaged sample call carrying its own secrets."""
    path, body, token = secret_call(name)
    return body, post_json(app.test_client(), path, body), token


def test_the_record_names_the_rules_that_decided_beyond_the_payers_version_label(tmp_path: Path) -> None:
    """The payer's version label of a policy names the document, not this service's reading of it,
    which changes between releases: a reviewer holding a record must tell which rules decided (UM
    review, UM-4)."""
    root = copy_policies(tmp_path)
    shipped = compile_catalog(root)
    path = root / "geha.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("months: 6", "months: 7", 1), encoding="utf-8")
    changed = compile_catalog(root)
    policy = "geha-idds-chronic-pain"
    assert changed.policies[policy].version == shipped.policies[policy].version
    assert (
        changed.rules_digest
        != shipped.rules_digest
        == compile_catalog(copy_policies(tmp_path / "again")).rules_digest
    )


def test_a_hook_call_is_recorded_with_everything_it_decided(compiled_catalog: Catalog) -> None:
    app = audited_app(compiled_catalog, factory=ChartFactory(meeting_chart()))
    body, response, _ = call(app, "order-sign-implant-demo-meets")
    assert response.status_code == 200
    [record] = trail(app).find(body["hookInstance"])
    assert (record["service_id"], record["hook"], record["http_status"]) == (
        "idds-crd-order-sign",
        "order-sign",
        200,
    )
    assert (record["client_iss"], record["client_jti"]) == (ISS, "jti-0")
    assert record["patient_id"] == body["context"]["patientId"]
    assert record["response"] == response.get_json()
    assert record["latency_ms"] >= 0
    assert record["received_at"] <= record["answered_at"]
    [payer] = record["payers"]
    policy = compiled_catalog.policies[payer["policy_id"]]
    assert (payer["payer"], payer["policy_version"]) == ("geha", policy.version)
    assert payer["rules_digest"] == compiled_catalog.rules_digest
    assert payer["not_judged_because"] is None
    drafts = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in body["context"]["draftOrders"]["entry"]
    }
    assert {o["reference"] for o in record["orders"]} == drafts
    judged = {d["order_reference"] for d in record["determinations"]}
    assert judged and judged <= drafts
    criteria = [c for d in record["determinations"] for c in d["criteria"]]
    assert {c["status"] for c in criteria} <= {"met", "not-met", "not-documented"}
    evidence = [e["reference"] for c in criteria for e in c["evidence"] if e["reference"]]
    assert evidence, "criterion results keep their evidence references"
    issued = [
        s["valueString"]
        for a in response.get_json()["systemActions"]
        for e in a["resource"]["extension"]
        for s in e.get("extension", [])
        if s["url"] == "coverage-assertion-id"
    ]
    assert sorted(a["assertion_id"] for a in record["assertions"]) == sorted(issued)
    assert record["request"]["context"] == body["context"]
    assert record["request"]["fhirAuthorization"]["access_token"] == "[removed]"
    assert record["request"]["fhirAuthorization"]["scope"] == "patient/*.read"


def test_a_pa_number_issued_is_recorded_found_and_exported(compiled_catalog: Catalog) -> None:
    app = audited_app(approving(compiled_catalog, "geha"), factory=ChartFactory(meeting_chart()))
    body, response, _ = call(app, "order-sign-implant-demo-meets")
    issued = {
        s["valueString"]
        for a in response.get_json()["systemActions"]
        for e in a["resource"]["extension"]
        for s in e.get("extension", [])
        if s["url"] == "satisfied-pa-id"
    }
    assert issued, "GEHA approves a chart that meets its policy"
    [record] = trail(app).find(body["hookInstance"])
    assert {a.get("satisfied_pa_id") for a in record["assertions"]} - {None} == issued
    for number in issued:
        assert [r["id"] for r in trail(app).find(number)] == [record["id"]]
    [metric] = metric_data(record)
    assert metric_problems(metric) == []
    exported = {i.get("satisfiedId") for i in coverage_infos(metric)}
    assert exported - {None} == issued


def test_a_call_asking_for_no_coverage_information_is_told_of_no_approval(compiled_catalog: Catalog) -> None:
    """An approval and its number are issued in the coverage information: a call that switched it
    off (`coverage-info: false`) gets none, and no card may say the order was approved."""
    app = audited_app(approving(compiled_catalog, "geha"), factory=ChartFactory(meeting_chart()))
    path, body, _ = secret_call("order-sign-implant-demo-meets")
    body["extension"] = {"davinci-crd.configuration": {"coverage-info": False}}
    answer = post_json(app.test_client(), path, body).get_json()
    assert answer["cards"] and "systemActions" not in answer
    assert not [c["summary"] for c in answer["cards"] if "approv" in (c["summary"] + c["detail"]).lower()]
    [record] = trail(app).find(body["hookInstance"])
    assert record["assertions"] == []
    [metric] = metric_data(record)  # each order exported with its code, not only its name
    assert metric_problems(metric) == []
    details = {r["orderDetail"]["coding"][0]["code"] for r in metric["request"]}
    assert {"62362", "62350", "E0783"} <= details


THEIRS = {  # another CRD server's approval, for a Coverage no call here is routed to
    "url": COVERAGE_INFORMATION,
    "extension": [
        {"url": "coverage", "valueReference": {"reference": "Coverage/other-payer"}},
        {"url": "covered", "valueCode": "covered"},
        {"url": "pa-needed", "valueCode": "satisfied"},
        {"url": "satisfied-pa-id", "valueString": "OTHERPAYER-123"},
        {"url": "date", "valueDate": "2026-01-02"},
        {"url": "coverage-assertion-id", "valueString": "their-assertion"},
    ],
}
PUMP = "ServiceRequest/demo-meets-sign-sr-62362"


def approved_orders(app: Flask) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The pump's assertion (with its PA number) of an order-sign that GEHA approves, and the orders
    as that answer leaves them, by id."""
    path, body, _ = secret_call("order-sign-implant-demo-meets")
    answer = post_json(app.test_client(), path, body).get_json()
    [approval] = [a for a in audit_entry.coverage_assertions(answer) if a["order"] == PUMP]
    assert approval["satisfied_pa_id"], "GEHA approves a chart that meets its policy"
    return approval, {a["resource"]["id"]: a["resource"] for a in answer["systemActions"]}


def signed_again(approved: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any], str]:
    """`secret_call` of the order-sign again, its orders as `approved` left them."""
    path, body, token = secret_call("order-sign-implant-demo-meets")
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"] = copy.deepcopy(approved.get(entry["resource"]["id"], entry["resource"]))
    return path, body, token


def test_each_later_call_that_keeps_an_approval_is_found_by_it_and_does_not_export_it(
    compiled_catalog: Catalog,
) -> None:
    """Later calls judge the approved pump again and keep its approval (nothing new, no system
    action): the order as signed again, as dispatched (prefetched) and as found open in the chart at
    encounter-start (read from the EHR). A reviewer finds each of them by the PA number and the
    assertion id, their records hold it as carried, and their metric lines do not issue it again.
    Before, only the call that issued it was found (audit review AR-3)."""
    factory = ChartFactory(meeting_chart())
    app = audited_app(approving(compiled_catalog, "geha"), factory=factory)
    approval, approved = approved_orders(app)
    pump = {**approved[PUMP.split("/")[1]], "status": "active"}
    dispatch_path, dispatch, _ = secret_call("order-dispatch-62362-demo-meets")
    dispatch["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"] = pump
    encounter_path, encounter, _ = secret_call("encounter-start-demo-meets")
    assert "openServiceRequests" not in encounter["prefetch"]  # searched for in the EHR's chart
    factory.chart = [*meeting_chart(), pump]
    later = [signed_again(approved)[:2], (dispatch_path, dispatch), (encounter_path, encounter)]
    for path, body in later:
        answer = post_json(app.test_client(), path, body).get_json()
        updated = [reference_of(a["resource"]) for a in answer.get("systemActions", [])]
        # (encounter-start annotates its Encounter too: the payer's own requirements, the pump's kept)
        assert answer["cards"] and PUMP not in updated, answer
    found = trail(app).find(approval["satisfied_pa_id"])
    assert [r["hook"] for r in found] == ["order-sign", "order-sign", "order-dispatch", "encounter-start"]
    assert [r["hook_instance"] for r in found[1:]] == [body["hookInstance"] for _, body in later]
    assert trail(app).find(approval["assertion_id"]) == found
    for record in found[1:]:
        [kept] = [a for a in record["assertions"] if a["assertion_id"] == approval["assertion_id"]]
        assert (kept["order"], kept["satisfied_pa_id"], kept["carried"]) == (
            PUMP,
            approval["satisfied_pa_id"],
            True,
        )
        [line] = metric_data(record)
        issued = coverage_infos(line)  # encounter-start's: its Encounter's own assertion, not the approval
        assert metric_problems(line) == [] and len(issued) == (record["hook"] == "encounter-start")
        assert approval["assertion_id"] not in [i["assertionId"] for i in issued]


def test_a_kept_assertion_is_indexed_only_for_a_coverage_the_call_judged_and_without_secrets(
    compiled_catalog: Catalog,
) -> None:
    """The pump signed again carries another server's approval beside GEHA's, whose PA number the EHR
    has overwritten with the call's access token: both are kept, neither restated. GEHA's is indexed,
    its PA number scrubbed like every key; the other server's is not this call's to index."""
    app = audited_app(approving(compiled_catalog, "geha"), factory=ChartFactory(meeting_chart()))
    approval, approved = approved_orders(app)
    path, body, token = signed_again(approved)
    [pump] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if f"ServiceRequest/{e['resource']['id']}" == PUMP
    ]
    [ours] = pump["extension"]
    [number] = [s for s in ours["extension"] if s["url"] == "satisfied-pa-id"]
    number["valueString"] = token
    pump["extension"].append(THEIRS)
    answer = post_json(app.test_client(), path, body).get_json()
    assert "systemActions" not in answer, answer
    assert [r["hook_instance"] for r in trail(app).find(approval["assertion_id"])][1:] == [
        body["hookInstance"]
    ]
    assert trail(app).find("OTHERPAYER-123") == trail(app).find("their-assertion") == []
    [record] = trail(app).find(body["hookInstance"])
    assert {a["coverage"] for a in record["assertions"]} == {"Coverage/demo-meets-coverage-geha"}
    assert token not in stored_text(app.extensions["idds_crd"].stores.database.engine)


@pytest.mark.parametrize(
    "coverage",
    [
        "Coverage/other-payer",
        # another FHIR server's Coverage of the same id as this call's: another Coverage (review F-4)
        "https://other-ehr.example.com/fhir/Coverage/demo-meets-coverage-geha",
    ],
)
def test_an_assertion_another_server_put_on_the_order_is_not_recorded_as_this_calls(
    compiled_catalog: Catalog, coverage: str
) -> None:
    """The answer keeps coverage information the order already carried for a Coverage this call did
    not judge (another CRD server's); the audit must not index its PA number as one this call issued.
    Before, the record's assertions were read back from the answer, that one included."""
    app = audited_app(approving(compiled_catalog, "geha"), factory=ChartFactory(meeting_chart()))
    path, body, _ = secret_call("order-sign-implant-demo-meets")
    theirs = copy.deepcopy(THEIRS)
    theirs["extension"][0]["valueReference"]["reference"] = coverage
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"].setdefault("extension", []).append(theirs)
    answer = post_json(app.test_client(), path, body).get_json()
    assert "OTHERPAYER-123" in json.dumps(answer["systemActions"]), "the order keeps what it carried"
    [record] = trail(app).find(body["hookInstance"])
    assert record["assertions"], "GEHA's own assertions are recorded"
    assert {a["coverage"] for a in record["assertions"]} == {"Coverage/demo-meets-coverage-geha"}
    assert trail(app).find("OTHERPAYER-123") == trail(app).find("their-assertion") == []


def test_no_token_and_no_jwt_anywhere_in_any_column(compiled_catalog: Catalog) -> None:
    app = audited_app(compiled_catalog)
    tokens = []
    for name in ("order-select-62362-demo-meets", "order-sign-implant-demo-meets", "order-select-non-pump"):
        _, response, token = call(app, name)
        assert response.status_code == 200
        tokens.append(token)
    path, refused, token = secret_call("order-select-62362-demo-meets")
    refused["context"]["selections"] = ["ServiceRequest/not-a-draft"]
    assert post_json(app.test_client(), path, refused).status_code == 400
    tokens.append(token)
    everything = stored_text(app.extensions["idds_crd"].stores.database.engine)
    assert trail(app).count() == 4
    for token in tokens:
        assert token not in everything
    assert A_JWT not in everything and "eyJ" not in everything
    assert "[removed]" in everything


def test_the_record_keeps_a_decimal_as_written_where_a_secret_was_scrubbed(compiled_catalog: Catalog) -> None:
    """The request and answer columns keep an order's `12345.50` as the EHR wrote it, also when the
    record is walked to take out a token the body repeated (the walk read it back as a float)."""
    app = audited_app(compiled_catalog)
    path, body, _ = secret_call("order-select-62362-demo-meets")
    body["context"]["draftOrders"]["entry"][0]["resource"]["quantityQuantity"] = {"value": 12345.5}
    raw = json.dumps(body).replace("12345.5", "12345.50")
    assert app.test_client().post(path, data=raw, content_type="application/json").status_code == 200
    with app.extensions["idds_crd"].stores.database.engine.connect() as connection:
        [(request, response)] = connection.execute(text("SELECT request, response FROM audit_records")).all()
    assert '"value":12345.50' in request and '"value":12345.50' in response


def test_a_refused_call_is_recorded_with_its_operation_outcome(compiled_catalog: Catalog) -> None:
    app = audited_app(compiled_catalog)
    path, body, _ = secret_call("order-select-62362-demo-meets")
    body["context"]["selections"] = ["ServiceRequest/not-a-draft"]
    response = post_json(app.test_client(), path, body)
    issue = assert_outcome(response, 400, "context.selections[0]")
    [record] = trail(app).find(body["hookInstance"])
    assert record["http_status"] == 400
    assert record["response"]["issue"][0] == issue
    assert record["patient_id"] == body["context"]["patientId"]
    assert record["assertions"] == [] and record["determinations"] == []


def test_a_412_is_recorded(compiled_catalog: Catalog) -> None:
    app = audited_app(compiled_catalog)
    body = load_sample("order-select-62362-demo-meets.json")
    del body["prefetch"]["coverage"]
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-select", body)
    assert_outcome(response, 412, "prefetch.coverage", mention="coverage")
    [record] = trail(app).find(body["hookInstance"])
    assert record["http_status"] == 412


def test_what_is_no_hook_call_is_not_recorded(compiled_catalog: Catalog) -> None:
    app = audited_app(compiled_catalog)
    client = app.test_client()
    assert (
        client.post(
            "/cds-services/idds-crd-order-select", data=b"{", content_type="application/json"
        ).status_code
        == 400
    )
    assert (
        post_json(client, "/cds-services/nope", load_sample("order-select-non-pump.json")).status_code == 404
    )
    assert trail(app).count() == 0


def test_an_answer_that_cannot_be_recorded_is_not_sent(
    compiled_catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    app = audited_app(compiled_catalog)
    with app.extensions["idds_crd"].stores.database.engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_records"))  # the database now refuses every write
    counted = total(scrape(app), "idds_crd_determinations_total")
    _, response, _ = call(app, "order-select-62362-demo-meets")
    issue = assert_outcome(response, 503, None)
    # not answered, so no determination was made for anyone (audit review AR-4)
    assert total(scrape(app), "idds_crd_determinations_total") == counted
    assert "audit trail unavailable" in issue["diagnostics"]
    assert "systemActions" not in response.get_json()
    assert "could not be recorded" in caplog.text
    path, refused, _ = secret_call("order-select-62362-demo-meets")
    refused["context"]["selections"] = ["ServiceRequest/not-a-draft"]
    assert_outcome(
        post_json(app.test_client(), path, refused), 400, "context.selections[0]"
    )  # issues nothing


def test_retention_days_is_a_positive_whole_number() -> None:
    assert settings_from_mapping({}).store.retention_days == 2555
    assert settings_from_mapping({"store": {"retention_days": 30}}).store.retention_days == 30
    with pytest.raises(SettingsError, match=r"store\.retention_days"):
        settings_from_mapping({"store": {"retention_days": 0}})


# The command line, on a database file


def config_for(tmp_path: Path, **store: Any) -> str:
    path = tmp_path / "config.yaml"
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    lines = [f"store:\n  url: {url}\n"] + [f"  {k}: {v}\n" for k, v in store.items()]
    path.write_text("auth:\n  required: false\n" + "".join(lines), encoding="utf-8")
    return str(path)


def file_app(catalog: Catalog, config: str) -> Flask:
    from service.settings import load_settings

    return audited_app(catalog, load_settings(config).store.url)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_audit_show_by_hook_instance_assertion_id_and_card(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path)
    app = file_app(compiled_catalog, config)
    body, response, _ = call(app, "order-select-62362-demo-insufficient")
    answer = response.get_json()
    call(app, "order-select-62362-demo-meets")  # another record, never shown
    assertion = next(
        s["valueString"]
        for e in answer["systemActions"][0]["resource"]["extension"]
        for s in e.get("extension", [])
        if s["url"] == "coverage-assertion-id"
    )
    for key in (body["hookInstance"], assertion, answer["cards"][0]["uuid"]):
        status, out, _ = cli(capsys, "audit", "show", key, "--config", config)
        assert status == 0
        shown = json.loads(out)
        assert shown["hook_instance"] == body["hookInstance"]
        assert shown["response"] == answer
    status, _, err = cli(capsys, "audit", "show", "no-such-key", "--config", config)
    assert status == 1 and "no record" in err
    assert (
        post_json(app.test_client(), "/cds-services/idds-crd-order-select", body).status_code == 200
    )  # a retry
    status, out, _ = cli(capsys, "audit", "show", body["hookInstance"], "--config", config)
    assert [r["hook_instance"] for r in json.loads(out)] == [body["hookInstance"]] * 2


@pytest.mark.parametrize("option", [(), ("--patient",)])
def test_audit_show_refuses_a_key_that_is_not_utf8_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: tuple[str, ...]
) -> None:
    """review28e L4: bytes that are not UTF-8 reach Python's argv as lone surrogates, and looking them up
    ended in a UnicodeEncodeError's stack trace."""
    not_utf8 = b"PA\xff123".decode("utf-8", "surrogateescape")
    status, _, err = cli(capsys, "audit", "show", *option, not_utf8, "--config", config_for(tmp_path))
    assert status == 2 and "is not valid UTF-8" in err and "Traceback" not in err


def test_audit_show_by_patient_lists_that_patients_records_oldest_first_within_the_days_asked(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reviewer starts from the member and a date (audit20 L2: only a hookInstance, assertion id or
    card found a record)."""
    config = config_for(tmp_path)
    app = file_app(compiled_catalog, config)
    first, _, _ = call(app, "order-select-62362-demo-meets")
    call(app, "order-select-62362-demo-insufficient")  # another patient, never shown
    second, _, _ = call(app, "order-sign-implant-demo-meets")
    patient = first["context"]["patientId"]
    status, out, _ = cli(capsys, "audit", "show", "--patient", patient, "--config", config)
    assert status == 0
    shown = json.loads(out)
    assert [r["hook_instance"] for r in shown] == [first["hookInstance"], second["hookInstance"]]
    assert {r["patient_id"] for r in shown} == {patient}
    status, _, err = cli(
        capsys, "audit", "show", "--patient", patient, "--since", "2999-01-01", "--config", config
    )
    assert status == 1 and f"no record about patient {patient}" in err
    status, _, err = cli(
        capsys, "audit", "show", first["hookInstance"], "--patient", patient, "--config", config
    )
    assert status == 2 and "give one of a key, --patient or --purges" in err
    status, _, err = cli(
        capsys, "audit", "show", first["hookInstance"], "--since", "2020-01-01", "--config", config
    )
    assert status == 2 and "--since and --until go with --patient" in err


@pytest.mark.parametrize("command", [["show", "some-key"], ["export"], ["purge"]])
def test_the_audit_commands_never_make_a_new_empty_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Run without the service's --config, from a directory with no trail: told so, nothing made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IDDS_CRD_CONFIG", raising=False)
    status, _, err = cli(capsys, "audit", *command)
    assert status == 2 and "no audit trail at" in err and "--config" in err
    assert list(tmp_path.iterdir()) == []


def test_an_audit_store_url_that_cannot_be_read_is_told_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("store:\n  url: not a url\n", encoding="utf-8")
    status, _, err = cli(capsys, "audit", "export", "--config", str(config))
    assert status == 2 and "cannot open the database" in err and "Traceback" not in err


def test_an_sqlite_file_in_a_folder_that_does_not_exist_is_named_so(tmp_path: Path) -> None:
    """A copied container configuration names the image's volume (/var/lib/idds-crd): the message
    says the folder is missing, not only the kind of failure."""
    from service.store.database import DatabaseError, open_database

    with pytest.raises(DatabaseError) as caught:
        open_database("sqlite:////nonexistent-idds-folder/idds-crd.sqlite3")
    assert str(caught.value) == (
        "cannot open the database sqlite:////nonexistent-idds-folder/idds-crd.sqlite3: the folder "
        "/nonexistent-idds-folder does not exist (store.url names an SQLite file in it)"
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("", encoding="utf-8")
    with pytest.raises(DatabaseError, match=f"the folder {a_file} is not a folder"):
        open_database(f"sqlite:///{a_file}/idds-crd.sqlite3")


def test_an_audit_trail_named_by_a_sqlite_uri_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.settings import StoreSettings
    from service.store.stores import open_stores

    open_stores(StoreSettings(url=f"sqlite:///{tmp_path / 'trail.db'}")).database.close()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"store:\n  url: 'sqlite:///file:{tmp_path / 'trail.db'}?mode=rw&uri=true'\n", encoding="utf-8"
    )
    status, out, err = cli(capsys, "audit", "export", "--config", str(config))
    assert (status, out) == (0, ""), err


def test_audit_export_writes_crd_metric_data(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path)
    app = file_app(compiled_catalog, config)
    names = (
        "order-select-62362-demo-insufficient",
        "order-select-62362-demo-kaiser-medicare",
        "order-sign-implant-demo-meets",
    )
    calls = [call(app, name) for name in names]
    card = calls[0][1].get_json()["cards"][0]["uuid"]
    feedback = {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"userComment": "in the paper chart"},
        "outcomeTimestamp": "2026-11-21T10:05:31Z",
    }
    assert (
        post_json(
            app.test_client(), "/cds-services/idds-crd-order-select/feedback", {"feedback": [feedback]}
        ).status_code
        == 200
    )
    status, out, _ = cli(capsys, "audit", "export", "--config", config)
    assert status == 0
    metrics = [json.loads(line) for line in out.splitlines()]
    assert len(metrics) == len(names)
    for metric in metrics:
        assert metric_problems(metric) == [], metric
        assert metric["source"] == "payer-src"
        assert metric["httpResponse"] == 200
    by_instance = {m["hookInstance"]: m for m in metrics}
    first = by_instance[calls[0][0]["hookInstance"]]
    assert first["hookType"] == "order-select"
    assert first["payerId"]["value"]
    [request] = first["request"]
    assert request["type"] == "ServiceRequest"
    assert request["orderDetail"]["coding"][0]["code"] == "62362"
    engaged = [r for r in request["response"] if r.get("engagement")]
    assert [r["engagement"] for r in engaged] == ["override"]
    [info] = [i for r in request["response"] for i in r.get("coverageInfo", [])]
    assert info["assertionId"] and info["covered"] == "conditional"
    medicare = by_instance[calls[1][0]["hookInstance"]]
    assert any(i.get("businessLine") for i in coverage_infos(medicare))
    signed = by_instance[calls[2][0]["hookInstance"]]
    assert len(signed["request"]) == len(calls[2][0]["context"]["draftOrders"]["entry"])
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert cli(capsys, "audit", "export", "--since", tomorrow, "--config", config)[1] == ""
    assert len(cli(capsys, "audit", "export", "--until", tomorrow, "--config", config)[1].splitlines()) == 3


def test_each_payers_metric_line_holds_its_own_cards_and_its_policy_card(compiled_catalog: Catalog) -> None:
    """Two Coverages, two payers: each CRDMetricData line lists the cards about the order of its own
    payer only, its policy-link (External Reference) card among them. Before, each line listed both
    payers' cards and the policy cards were in none (UM review UM-7)."""
    app = audited_app(compiled_catalog)
    body, response, _ = call(app, "order-select-62362-demo-two-coverages")
    assert response.status_code == 200
    [record] = trail(app).find(body["hookInstance"])
    lines = list(metric_data(record))
    assert len(lines) == 2
    by_uuid = {c["uuid"]: c for c in response.get_json()["cards"]}
    labels = {
        c["source"]["label"] for c in by_uuid.values() if c["source"]["topic"]["code"] == "coverage-info"
    }
    assert len(labels) == 2
    for line in lines:
        [request] = line["request"]
        types = [r.get("type") for r in request["response"]]
        assert types.count("coverage-info") == 2  # its decision card and its coverage information
        assert "guideline" in types
    assert all(metric_problems(line) == [] for line in lines)


def test_a_refused_call_exports_its_issue(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path)
    app = file_app(compiled_catalog, config)
    path, body, _ = secret_call("order-select-62362-demo-meets")
    body["context"]["selections"] = ["ServiceRequest/not-a-draft"]
    assert post_json(app.test_client(), path, body).status_code == 400
    [metric] = [
        json.loads(line) for line in cli(capsys, "audit", "export", "--config", config)[1].splitlines()
    ]
    assert metric_problems(metric) == []
    assert (metric["httpResponse"], metric["issue"]) == (400, [{"code": "invalid"}])
    assert metric["tokenUse"] == "not-used"


def age(app: Flask, hook_instance: str, days: int, record_id: int | None = None) -> None:
    """Make the records of `hook_instance` (only the one `record_id`, when given) `days` old."""
    chosen = update(audit_records).where(audit_records.c.hook_instance == hook_instance)
    if record_id is not None:
        chosen = chosen.where(audit_records.c.id == record_id)
    with app.extensions["idds_crd"].stores.database.engine.begin() as connection:
        connection.execute(
            chosen.values(received_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days))
        )


def test_a_retried_call_exports_each_assertion_once_from_the_first_record(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An EHR retrying a call whose answer it lost (the same hookInstance and body) gets the same
    assertions, under the same deterministic ids, and both calls are recorded. The export issues each
    assertion once, from the first record, whether or not that record is in the export's window; the
    retry's line is still written (it was a call), its orders and cards without coverage information.
    Before, each assertionId was exported twice (audit review AR-6)."""
    config = config_for(tmp_path)
    app = file_app(compiled_catalog, config)
    body, first, _ = call(app, "order-sign-implant-demo-meets")
    retried = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    issued = sorted(a["assertion_id"] for a in audit_entry.coverage_assertions(first.get_json()))
    assert issued == sorted(a["assertion_id"] for a in audit_entry.coverage_assertions(retried.get_json()))
    status, out, _ = cli(capsys, "audit", "show", body["hookInstance"], "--config", config)
    assert status == 0 and [r["hook_instance"] for r in json.loads(out)] == [body["hookInstance"]] * 2

    def exported(*window: str) -> list[list[str]]:
        """The assertion ids of each line `audit export` writes, every line conforming; the orders and
        cards of every line the same."""
        status, out, _ = cli(capsys, "audit", "export", *window, "--config", config)
        lines = [json.loads(line) for line in out.splitlines()]
        assert status == 0 and [metric_problems(m) for m in lines] == [[]] * len(lines)
        assert {m["hookInstance"] for m in lines} == {body["hookInstance"]}
        cards = [
            [
                (r["orderDetail"], [x for x in r.get("response", []) if "coverageInfo" not in x])
                for r in m["request"]
            ]
            for m in lines
        ]
        assert all(c == cards[0] and any(responses for _, responses in c) for c in cards)
        return [sorted(i["assertionId"] for i in coverage_infos(m)) for m in lines]

    assert exported() == [issued, []]
    [earlier, retry] = trail(app).find(body["hookInstance"])
    assert {a.get("retry_of") for a in earlier["assertions"]} == {None}
    assert {a.get("retry_of") for a in retry["assertions"]} == {earlier["id"]}  # as `audit show` shows it
    age(app, body["hookInstance"], 2, earlier["id"])
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert exported("--since", yesterday) == [[]]  # issued by the first record, outside the window
    assert exported("--until", yesterday) == [issued]


NUMBERS = ("12345.50", "-0")


def numbers_call(app: Flask, with_token: bool) -> tuple[dict[str, Any], str]:
    """(request body, token) of an order-select whose order carries NUMBERS as written, the token
    repeated in the body (the record is then walked to remove it) or not sent at all."""
    path, body, token = secret_call("order-select-62362-demo-meets")
    if not with_token:
        body["extension"].pop("x-echo")
        body.pop("fhirAuthorization")
        body.pop("fhirServer")
    extensions, literals = numbered_extensions(NUMBERS)
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["extension"] = [*order.get("extension", []), *extensions]
    response = app.test_client().post(
        path, data=with_literals(body, literals), content_type="application/json"
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return body, token


@pytest.mark.parametrize("with_token", [False, True], ids=["as-written", "walked-for-a-token"])
def test_the_record_keeps_the_orders_numbers_as_written(compiled_catalog: Catalog, with_token: bool) -> None:
    """Walked to remove a token or not, the stored request and response hold `12345.50` and `-0`
    (the walk once wrote the integer `-0` as `0`: review S39-8)."""
    app = audited_app(compiled_catalog)
    _, token = numbers_call(app, with_token)
    with app.extensions["idds_crd"].stores.database.engine.connect() as connection:
        [(request, response)] = connection.execute(text("SELECT request, response FROM audit_records")).all()
    assert token not in request
    for column in (request, response):
        assert [n in column for n in ('"valueDecimal":12345.50}', '"valueDecimal":-0}')] == [True, True]


@pytest.mark.parametrize("with_token", [False, True], ids=["as-written", "walked-for-a-token"])
def test_audit_show_prints_the_numbers_the_record_stores(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str], with_token: bool
) -> None:
    """`12345.50` and `-0` as the record stores them, never by value (`12345.5`, `0`: review S39-9)."""
    config = config_for(tmp_path)
    body, _ = numbers_call(file_app(compiled_catalog, config), with_token)
    status, out, _ = cli(capsys, "audit", "show", body["hookInstance"], "--config", config)
    assert status == 0 and json.loads(out)["hook_instance"] == body["hookInstance"]
    assert (
        out.count('"valueDecimal": 12345.50\n') == out.count('"valueDecimal": -0\n') == 2
    )  # request, response


def test_a_second_call_judged_otherwise_is_issued_under_its_own_ids(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same hookInstance, the second chart without its pain scores: the assertions say otherwise,
    so they are other assertions, under other ids, and the export gives both determinations; a third
    call, the second's retry, issues nothing anew (review S39-10). An assertion id names one assertion:
    before, the second call's carried the first's ids (inferno review I-2), and `audit show` of one
    gave both calls as its originals."""
    config = config_for(tmp_path)
    app = file_app(compiled_catalog, config)
    body = {**packaged_sample("order-sign-implant-demo-meets"), "hookInstance": str(uuid.uuid4())}
    second = copy.deepcopy(body)
    second["prefetch"]["painScores"]["entry"] = []
    answers = [
        post_json(app.test_client(), "/cds-services/idds-crd-order-sign", b) for b in (body, second, second)
    ]
    said = [
        {a["assertion_id"]: (a.get("covered"), a["info_needed"]) for a in audit_entry.coverage_assertions(r)}
        for r in (answer.get_json() for answer in answers)
    ]
    issued = [sorted(said[0]), sorted(said[1])]
    assert len(said[0]) == len(said[1]) == 4 and not said[0].keys() & said[1].keys()
    assert sorted(said[0].values()) != sorted(said[1].values()) and said[1] == said[2]
    status, out, _ = cli(capsys, "audit", "export", "--config", config)
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [metric_problems(m) for m in lines] == [[]] * 3
    assert [sorted(i["assertionId"] for i in coverage_infos(m)) for m in lines] == [*issued, []]
    [first, judged_otherwise, retry] = trail(app).find(body["hookInstance"])
    assert {a.get("retry_of") for a in retry["assertions"]} == {judged_otherwise["id"]}
    assert {a.get("retry_of") for a in judged_otherwise["assertions"]} == {None}
    for assertion_id in issued[0]:
        assert [r["id"] for r in trail(app).find(assertion_id)] == [first["id"]]


def test_the_same_orders_on_another_hook_under_the_same_hook_instance_are_no_retry(
    compiled_catalog: Catalog, tmp_path: Path
) -> None:
    """A client reusing a hookInstance on order-select for the drafts it sent on order-sign: the
    assertions say the same, but another hook issued them, under its own ids, each its own call's
    (issued, not carried) and none a retry of order-sign's. Before, they were filed as its retry
    (inferno review I-2)."""
    app = file_app(compiled_catalog, config_for(tmp_path))
    signed = {**packaged_sample("order-sign-implant-demo-meets"), "hookInstance": str(uuid.uuid4())}
    selected = {**copy.deepcopy(signed), "hook": "order-select"}
    drafts = selected["context"]["draftOrders"]["entry"]
    selected["context"]["selections"] = [
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in drafts
    ]
    answers = [
        post_json(app.test_client(), f"/cds-services/idds-crd-{b['hook']}", b).get_json()
        for b in (signed, selected)
    ]
    said = [{a["order"]: a for a in audit_entry.coverage_assertions(answer)} for answer in answers]

    def content(assertion: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in assertion.items() if k != "assertion_id"}

    assert said[0].keys() == said[1].keys() and len(said[0]) == 4
    same = [order for order in said[0] if content(said[0][order]) == content(said[1][order])]
    assert same, "some order is told the same on both hooks"
    assert all(said[0][o]["assertion_id"] != said[1][o]["assertion_id"] for o in said[0])
    [_, on_select] = trail(app).find(signed["hookInstance"])
    assert on_select["hook"] == "order-select" and len(on_select["assertions"]) == 4
    assert all(a.get("retry_of") is None and not a.get("carried") for a in on_select["assertions"])


def test_purge_removes_records_past_retention_with_their_cards_and_feedback(
    compiled_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, retention_days=30)
    app = file_app(compiled_catalog, config)
    old, old_response, _ = call(app, "order-select-62362-demo-insufficient")
    recent, _, _ = call(app, "order-select-62362-demo-meets")
    old_card = old_response.get_json()["cards"][0]["uuid"]
    feedback = {
        "card": old_card,
        "outcome": "overridden",
        "overrideReason": {"userComment": "seen"},
        "outcomeTimestamp": "2026-11-21T10:05:31Z",
    }
    post_json(app.test_client(), "/cds-services/idds-crd-order-select/feedback", {"feedback": [feedback]})
    age(app, old["hookInstance"], 31)
    age(app, recent["hookInstance"], 29)
    status, out, err = cli(capsys, "audit", "show", "--purges", "--config", config)
    assert (status, json.loads(out)) == (0, []) and "no purge kept" in err  # review22a L2/L3
    status, out, _ = cli(capsys, "audit", "purge", "--config", config)
    assert status == 0 and "removed 1 record" in out
    assert trail(app).find(old["hookInstance"]) == []
    assert trail(app).find(old_card) == []
    assert len(trail(app).find(recent["hookInstance"])) == 1
    everything = stored_text(app.extensions["idds_crd"].stores.database.engine)
    assert old_card not in everything and old["hookInstance"] not in everything
    # feedback on a purged card is feedback on a card the trail no longer knows
    response = post_json(
        app.test_client(), "/cds-services/idds-crd-order-select/feedback", {"feedback": [feedback]}
    )
    assert_outcome(response, 404, "feedback[0].card")
    status, _, err = cli(capsys, "audit", "purge", "--days", "10", "--config", config)
    assert status == 2 and "--below-retention" in err  # 10 days is below the 30 retention keeps
    assert trail(app).count() == 1
    status, out, _ = cli(capsys, "audit", "purge", "--days", "10", "--below-retention", "--config", config)
    assert "removed 1 record" in out
    assert trail(app).count() == 0
    status, out, _ = cli(capsys, "audit", "purge", "--days", "40", "--config", config)  # above: as asked
    assert status == 0 and "removed 0 record" in out
    # each purge that ran is kept, with who ran it, its cut-off and what it removed; the refused one is not
    status, out, _ = cli(capsys, "audit", "show", "--purges", "--config", config)
    purges = json.loads(out)
    assert status == 0 and [p["removed"] for p in purges] == [1, 1, 0]
    assert [p["last_record_id"] for p in purges] == [1, 2, None]
    assert all(p["operator"].endswith("@" + socket.gethostname()) for p in purges)
    kept_days = [
        (datetime.fromisoformat(p["started_at"]) - datetime.fromisoformat(p["older_than"])).days
        for p in purges
    ]
    assert kept_days == [30, 10, 40]
    status, _, err = cli(capsys, "audit", "show", "--purges", "--patient", "p", "--config", config)
    assert status == 2 and "one of" in err
    status, out, err = cli(capsys, "audit", "purge", "--days", "9999999", "--config", config)
    assert status == 2 and "--days 9999999 reaches back before the year 1" in err  # attack22 L3, no traceback


@pytest.mark.parametrize("token", ["tok3n", "opaque-ehr-token-7f3a9c2e1b"])
def test_a_token_put_in_the_fhir_servers_query_is_refused_and_not_kept(
    compiled_catalog: Catalog, token: str
) -> None:
    app = audited_app(compiled_catalog, factory=ChartFactory(meeting_chart()))
    body = load_sample("order-sign-implant-demo-meets.json")
    body["fhirServer"] = f"https://ehr.example.org/fhir?access_token={token}#{token}"
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert_outcome(response, 400, "fhirServer")
    [record] = trail(app).find(body["hookInstance"])
    assert record["request"]["fhirServer"] == "https://ehr.example.org/fhir?[removed]"
    assert token not in stored_text(app.extensions["idds_crd"].stores.database.engine)


def with_server(body: dict[str, Any], server: str) -> dict[str, Any]:
    return {**body, "fhirServer": server}


def with_token(body: dict[str, Any], token: str) -> dict[str, Any]:
    return {**body, "fhirAuthorization": {**body["fhirAuthorization"], "access_token": token}}


REFUSED_SHAPES = {  # how a refused call may carry a credential, with what the record keeps of fhirServer
    "userinfo": lambda body, secret: with_server(body, f"https://crd:{secret}@ehr.example.org/fhir"),
    "user-name": lambda body, secret: with_server(body, f"https://{secret}@ehr.example.org/fhir"),
    "path-parameter": lambda body, secret: with_server(body, f"https://ehr.example.org/fhir;token={secret}"),
    "array-body": lambda body, secret: [with_token(body, secret)],
    "array-body-userinfo": lambda body, secret: [
        with_server(body, f"https://crd:{secret}@ehr.example.org/fhir")
    ],
    "nested-body": lambda body, secret: {"request": {"calls": [with_token(body, secret)]}},
}


@pytest.mark.parametrize("shape", REFUSED_SHAPES)
@pytest.mark.parametrize("secret", ["pw7", "opaque-ehr-secret-7f3a9c2e1b"])
def test_no_credential_of_a_refused_call_is_kept_whatever_its_shape(
    compiled_catalog: Catalog, shape: str, secret: str
) -> None:
    """A password in fhirServer's user information, a token in its path parameters, a token inside a
    body that is not a request object (an array around one): refused, and recorded without them."""
    app = audited_app(compiled_catalog, factory=ChartFactory(meeting_chart()))
    body = REFUSED_SHAPES[shape](with_fhir(load_sample("order-sign-implant-demo-meets.json")), secret)
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert response.status_code == 400
    assert trail(app).count() == 1
    stored = stored_text(app.extensions["idds_crd"].stores.database.engine)
    assert secret not in stored
    assert "[removed]" in stored


def test_a_body_carrying_thousands_of_tokens_keeps_none_and_scrubs_the_first_elsewhere() -> None:
    """Every credential leaves the stored request; only the first `MOST_CARRIED_SECRETS` are also
    looked for in the record's other columns (each one a search through every column's text)."""
    tokens = [f"crafted-token-{n:05d}" for n in range(5000)]
    body = [{"fhirAuthorization": {"access_token": tokens}, "echo": [tokens[0], tokens[-1]]}]
    kept = audit_entry._kept_request(body, None)
    request, carried = kept.value, kept.carried
    assert carried == tokens[: audit_entry.MOST_CARRIED_SECRETS]
    assert request[0]["fhirAuthorization"] == {"access_token": "[removed]"}
    assert tokens[0] not in str(audit_entry._scrubbed(request, carried))


@pytest.mark.parametrize("nested", ["fhirAuthorization", "fhirServer", "none"])
def test_credentials_below_a_requests_own_are_taken_out_too(nested: str) -> None:
    """A body whose own fhirServer and fhirAuthorization are taken out without walking it (each key
    occurs once in its text) still loses one written deeper, beside a string that merely reads like one."""
    body = with_fhir(load_sample("order-sign-implant-demo-meets.json"))
    body["fhirServer"] = "https://crd:top-secret-password@ehr.example.org/fhir"
    deeper = {
        "fhirAuthorization": {"access_token": "nested-secret-token-0123456789"},
        "fhirServer": "https://crd:nested-secret-password@ehr.example.org/fhir",
        "none": "fhirAuthorization",
    }
    body["context"]["echo"] = [{nested: deeper[nested]}]
    kept = audit_entry._kept_request(body, None)
    request, carried = kept.value, kept.carried
    written = json.dumps(request)
    assert "top-secret-password" not in written and body["fhirAuthorization"]["access_token"] not in written
    assert "nested-secret" not in written
    assert request["context"]["echo"] == [
        {
            nested: {
                "fhirServer": "https://[removed]@ehr.example.org/fhir",
                "fhirAuthorization": {"access_token": "[removed]"},
            }.get(nested, "fhirAuthorization")
        }
    ]
    assert "top-secret-password" in carried


def test_a_refused_fhir_server_is_kept_without_its_user_information(compiled_catalog: Catalog) -> None:
    app = audited_app(compiled_catalog, factory=ChartFactory(meeting_chart()))
    body = load_sample("order-sign-implant-demo-meets.json")
    body["fhirServer"] = "https://crd:pw7@ehr.example.org/fhir"
    assert_outcome(post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body), 400, "fhirServer")
    [record] = trail(app).find(body["hookInstance"])
    assert record["request"]["fhirServer"] == "https://[removed]@ehr.example.org/fhir"


@pytest.mark.parametrize("token", ["http", "-", "a"])
def test_a_short_token_does_not_decide_what_the_record_loses(compiled_catalog: Catalog, token: str) -> None:
    app = audited_app(compiled_catalog, factory=ChartFactory(meeting_chart()))
    body = with_fhir(load_sample("order-sign-implant-demo-meets.json"), token=token)
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert response.status_code == 200
    sent = response.get_json()
    [record] = trail(app).find(body["hookInstance"])
    assert record["response"] == sent
    assert record["request"]["fhirAuthorization"]["access_token"] == "[removed]"
    assertion = record["assertions"][0]["assertion_id"]
    assert [r["hook_instance"] for r in trail(app).find(assertion)] == [body["hookInstance"]]


def test_a_call_that_fails_inside_is_recorded_and_answered_500(
    compiled_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug in one policy's evaluation")

    monkeypatch.setattr(routes, "handle_hook", fails)
    app = audited_app(compiled_catalog)
    body = load_sample("order-sign-implant-demo-meets.json")
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert response.status_code == 500 and "KeyError" not in response.get_data(as_text=True)
    [record] = trail(app).find(body["hookInstance"])
    assert record["http_status"] == 500
    assert record["response"] == response.get_json()


_SECRETS = ["short", "a-long-access-token-0123456789", 'quote"and\\backslash-token-000']
_TEXTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from([*_SECRETS, A_JWT, f"Bearer {_SECRETS[1]}", f"see {A_JWT} here", "x\n" + _SECRETS[2]]),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXTS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON)
def test_the_quick_check_never_keeps_what_the_walk_would_remove(value: Any) -> None:
    """The record's scrubber skips its string-by-string walk when one search of the JSON text finds
    nothing; whatever the value, the result is the walk's."""
    scrubbed = json.loads(audit_entry._scrubbed(value, _SECRETS))
    assert scrubbed == json.loads(json.dumps(audit_entry._walked(value, _SECRETS), allow_nan=False))


def test_of_a_prefetched_chart_the_record_keeps_references_the_parties_whole_and_of_the_patient_no_identifier(
    compiled_catalog: Catalog,
) -> None:
    """Of the Patient the record keeps what the service reads (audit20 M6: a Synthea patient's SSN,
    licence and passport numbers were kept in every record for seven years)."""
    app = audited_app(compiled_catalog)
    body = packaged_sample("order-select-62362-demo-meets")
    body["hookInstance"] = str(uuid.uuid4())
    body["prefetch"]["conditions"]["entry"][0]["resource"]["meta"] = {"versionId": "3"}
    patient = body["prefetch"]["patient"]
    patient["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-85-3615"}]
    patient["address"] = [{"line": ["12 Hidden Lane"], "city": "Springfield"}]
    patient["deceasedDateTime"] = "2026-11-30"
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-select", body)
    assert response.status_code == 200
    [record] = trail(app).find(body["hookInstance"])
    kept = record["request"]["prefetch"]
    assert kept["patient"] == {
        "resourceType": "Patient",
        "id": patient["id"],
        "deceasedDateTime": "2026-11-30",
        **({"meta": patient["meta"]} if "meta" in patient else {}),
    }
    assert "999-85-3615" not in json.dumps(record) and "Hidden Lane" not in json.dumps(record)
    assert kept["coverage"] == body["prefetch"]["coverage"]
    sent = body["prefetch"]["conditions"]["entry"]
    first = sent[0]["resource"]
    assert kept["conditions"]["entry"][0] == {"reference": f"Condition/{first['id']}/_history/3"}
    assert [e["reference"] for e in kept["conditions"]["entry"][1:]] == [
        f"Condition/{e['resource']['id']}" for e in sent[1:]
    ]
    assert kept["conditions"]["type"] == "searchset"
    sent_chart = [e for key in ("conditions", "procedures") for e in body["prefetch"][key]["entry"]]
    chart = [json.dumps(e["resource"]) for e in sent_chart]
    assert not any(text in json.dumps(record["request"]) for text in chart)
    assert record["request"]["context"] == body["context"]


def test_the_pump_drugs_order_is_recorded_as_judged_as_its_pump_order(compiled_catalog: Catalog) -> None:
    """audit20 M5: the infusate's coverage information is the principal pump order's judgement, yet the
    record had no determination for it and nothing tying the two: a reviewer could only guess the
    link from the reason text. Its order entry now names the pump order, and the CRD metric export
    still validates."""
    app = audited_app(compiled_catalog, factory=ChartFactory(meeting_chart()))
    body, response, _ = call(app, "order-sign-implant-demo-meets")
    assert response.status_code == 200
    [record] = trail(app).find(body["hookInstance"])
    entries = {o["reference"]: o for o in record["orders"]}
    drug = entries["MedicationRequest/demo-meets-sign-mr-infusate"]
    assert drug["judged_as"] == "ServiceRequest/demo-meets-sign-sr-62362"
    assert drug["judged_as"] in {d["order_reference"] for d in record["determinations"]}
    assert not any("judged_as" in o for r, o in entries.items() if r != drug["reference"])
    [decision] = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "coverage-info"]
    about = [r["reference"] for r in decision["extension"]["davinci-crd.associated-resource"]]
    assert drug["reference"] in about
    for line in metric_data(record):
        assert metric_problems(line) == []


def test_a_call_that_keeps_an_earlier_assertion_still_records_the_order_its_cards_are_about(
    compiled_catalog: Catalog,
) -> None:
    """The order comes back carrying this service's assertion and the call judges the same: no system
    action (nothing new, §resp-35), yet its cards are about the order, so the record names it and the
    CRD metric line has its request (audit review AR-2: none before, `request is required`)."""
    app = audited_app(compiled_catalog)
    path, first_body, _ = secret_call("order-dispatch-62362-demo-meets")
    first = post_json(app.test_client(), path, first_body).get_json()
    [action] = first["systemActions"]
    path, again, _ = secret_call("order-dispatch-62362-demo-meets")
    again["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"] = action["resource"]
    answer = post_json(app.test_client(), path, again).get_json()
    assert "systemActions" not in answer and answer["cards"]
    [record] = trail(app).find(again["hookInstance"])
    assert [o["reference"] for o in record["orders"]] == [f"ServiceRequest/{action['resource']['id']}"]
    [line] = metric_data(record)
    assert metric_problems(line) == []
    [request] = line["request"]
    assert request["type"] == "ServiceRequest" and request["response"]


def test_of_a_refused_calls_prefetch_the_record_keeps_references_too(compiled_catalog: Catalog) -> None:
    """A call refused 400 sent its chart as well: the record keeps it as an answered call's is kept,
    each chart resource as its reference (docs/api.md, "Audit trail"), not whole."""
    app = audited_app(compiled_catalog)
    body = packaged_sample("order-select-62362-demo-meets")
    body["hookInstance"] = str(uuid.uuid4())
    body["context"]["selections"] = ["ServiceRequest/not-a-draft"]
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-select", body)
    assert_outcome(response, 400, "context.selections[0]")
    [record] = trail(app).find(body["hookInstance"])
    kept = record["request"]["prefetch"]
    sent = body["prefetch"]["conditions"]["entry"]
    assert [e["reference"] for e in kept["conditions"]["entry"]] == [
        f"Condition/{e['resource']['id']}" for e in sent
    ]
    assert not any(json.dumps(e["resource"]) in json.dumps(record["request"]) for e in sent)
    assert kept["coverage"] == body["prefetch"]["coverage"]
    assert record["request"]["context"] == body["context"]


def test_of_a_refused_calls_prefetch_what_is_no_resource_is_named_by_its_shape(
    compiled_catalog: Catalog,
) -> None:
    """Often why the call was refused: kept as what it was (review20 L8: "None/p1", the record no longer
    showed what was sent), never its content (it may be a chart's all the same)."""
    app = audited_app(compiled_catalog)
    body = packaged_sample("order-select-62362-demo-meets")
    body["hookInstance"] = str(uuid.uuid4())
    body["prefetch"]["patient"] = {"id": "p1", "name": [{"family": "Hidden"}]}
    body["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": {"id": "c1"}}
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-select", body)
    assert response.status_code == 412  # a prefetch the service cannot use
    [record] = trail(app).find(body["hookInstance"])
    kept = record["request"]["prefetch"]
    assert kept["patient"] == "[not a FHIR resource: an object with keys id, name]"
    assert kept["conditions"]["entry"] == "[not a FHIR resource: an object with keys id]"
    assert "Hidden" not in json.dumps(record)


def test_a_prefetched_bundle_sent_without_entries_is_recorded_without_an_entry_key() -> None:
    """An empty searchset may come without `entry` (a Synthea-sized call's trial-order prefetch does): the
    record said the EHR sent `"entry": null`, and that null made the whole request be written a second time
    (strict_json's null check) — 3.3 M instructions of a 12 M audit row. One sent as null stays null."""
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    digest = audit_entry._PrefetchDigest.of({"trials": empty, "nulled": {**empty, "entry": None}})
    assert digest.references["trials"] == empty
    assert digest.references["nulled"] == {**empty, "entry": None}
